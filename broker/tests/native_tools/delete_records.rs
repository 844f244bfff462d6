//! delete-records (`oxka tool delete-records`) against Kafka 4.x's tool on the same broker: each tool
//! deletes on a topic of its own and the outputs are equal with the names swapped (lines sorted:
//! Kafka's tool prints partitions in hash-map order); an offset beyond the high watermark prints an
//! error line; files Kafka's tool refuses are refused alike.

use std::process::Output;

use super::common::tools_compare::{native, stdout};
use super::common::{self, serial, Broker, Target};
use super::java;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn produce(bootstrap: &str, topic: &str, partition: &str, lines: &str) {
    let out = common::kcat(
        &["-P", "-b", bootstrap, "-t", topic, "-p", partition, "-K", ":"],
        lines.as_bytes(),
    );
    assert!(out.status.success(), "kcat: {out:?}");
}

fn delete_file(broker: &Broker, name: &str, json: &str) -> String {
    let path = broker.temp_dir().join(name);
    std::fs::write(&path, json).unwrap();
    path.display().to_string()
}

/// delete-records run once by each tool on its own topics (`T-` named `n-` and `j-`): the same output
/// with the names swapped, the same exit status.
fn assert_same_delete(broker: &Broker, json: &str) -> String {
    let b = broker.bootstrap();
    let n_file = delete_file(broker, "n.json", &json.replace("T-", "n-"));
    let j_file = delete_file(broker, "j.json", &json.replace("T-", "j-"));
    let n = native(&[
        "delete-records",
        "--bootstrap-server",
        &b,
        "--offset-json-file",
        &n_file,
    ]);
    let j = java(
        "delete-records",
        &["--bootstrap-server", &b, "--offset-json-file", &j_file],
    );
    assert_eq!(
        n.status.success(),
        j.status.success(),
        "{json}\nnative: {n:?}\njava: {j:?}"
    );
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(stdout(&n).replace("n-", "j-")), sorted(stdout(&j)), "{json}");
    stdout(&n)
}

#[test]
fn delete_records_matches_kafkas_tool_on_one_oxka_broker() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    for topic in ["n-d", "j-d"] {
        let out = native(&[
            "topics",
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            topic,
            "--partitions",
            "2",
        ]);
        assert!(out.status.success(), "{out:?}");
        produce(&b, topic, "0", "a:1\nb:2\nc:3\nd:4\ne:5\n");
        produce(&b, topic, "1", "f:6\n");
    }
    let deleted = assert_same_delete(
        &broker,
        r#"{"partitions":[{"topic":"T-d","partition":0,"offset":3},{"topic":"T-d","partition":1,"offset":-1}],"version":1}"#,
    );
    assert_eq!(
        deleted,
        "Executing records delete operation\nRecords delete operation completed:\npartition: n-d-0\tlow_watermark: 3\npartition: n-d-1\tlow_watermark: 1\n"
    );
    // Beyond the high watermark: an error line, exit 0 (as Kafka's).
    assert_same_delete(&broker, r#"{"partitions":[{"topic":"T-d","partition":0,"offset":99}]}"#);
    // An unknown topic: Kafka 4.1's tool retries Metadata until its 60 s API timeout and prints a
    // TimeoutException; the native one names the missing topic at once (docs/tools.md).
    let file = delete_file(
        &broker,
        "nope.json",
        r#"{"partitions":[{"topic":"nope","partition":0,"offset":1}]}"#,
    );
    let out = native(&["delete-records", "--bootstrap-server", &b, "--offset-json-file", &file]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).ends_with("partition: nope-0\terror: org.apache.kafka.common.errors.UnknownTopicOrPartitionException: Failed to fetch metadata for partition nope-0 because metadata for topic `nope` could not be found\n"), "{out:?}");
    // Files Kafka's tool refuses: the message on stderr, exit 1.
    for (json, message) in [
        ("{", "The input string is not a valid JSON"),
        (
            r#"{"version":2,"partitions":[]}"#,
            "Not supported version field value 2",
        ),
        (
            r#"{"partitions":[{"topic":"n-d","partition":0,"offset":1},{"topic":"n-d","partition":0,"offset":2}]}"#,
            "Offset json file contains duplicate topic partitions: n-d-0",
        ),
    ] {
        let file = delete_file(&broker, "bad.json", json);
        let n = native(&["delete-records", "--bootstrap-server", &b, "--offset-json-file", &file]);
        let j = java(
            "delete-records",
            &["--bootstrap-server", &b, "--offset-json-file", &file],
        );
        assert_eq!(
            (n.status.code(), j.status.code()),
            (Some(1), Some(1)),
            "{json}\n{n:?}\n{j:?}"
        );
        assert!(
            stderr(&n).contains(message) && stderr(&j).contains(message),
            "{json}\n{n:?}\n{j:?}"
        );
    }
    assert!(stdout(&native(&["delete-records", "--help"])).contains("--offset-json-file"));
}

#[test]
fn delete_records_matches_kafkas_tool_on_apache_kafka() {
    let _serial = serial();
    let kafka = Broker::start_target(Target::ApacheKafka, &[]);
    let b = kafka.bootstrap();
    for topic in ["n-d", "j-d"] {
        let out = native(&["topics", "--bootstrap-server", &b, "--create", "--topic", topic]);
        assert!(out.status.success(), "{out:?}");
        produce(&b, topic, "0", "a:1\nb:2\nc:3\n");
    }
    let deleted = assert_same_delete(&kafka, r#"{"partitions":[{"topic":"T-d","partition":0,"offset":2}]}"#);
    assert!(deleted.contains("partition: n-d-0\tlow_watermark: 2\n"), "{deleted}");
}
