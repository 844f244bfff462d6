//! dump-log (`oxka tool dump-log`) against Kafka 4.x's tool over the same segment files, offline:
//! batches of every codec written by the native producer and keyed records with headers written by
//! kcat into an oxka broker's log, and a segment of Apache Kafka's log; no flag, `--deep-iteration`,
//! `--print-data-log`, `--skip-record-metadata`; outputs equal line by line.

use std::process::{Command, Output};
use std::time::Duration;

use super::common::tools_compare::{native, stdout};
use super::common::{self, serial, Broker, Target};
use super::java;

fn produce_native(bootstrap: &str, topic: &str, extra: &[&str], input: &str) {
    let mut cmd = Command::new(common::oxka_bin());
    cmd.args([
        "tool",
        "console-producer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
    ]);
    cmd.args(extra);
    let out: Output = common::run(cmd, input.as_bytes(), Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
}

/// Both tools dump `file` alike with every flag; returns the `--print-data-log` dump.
fn assert_same_dump(file: &str) -> String {
    let mut last = String::new();
    for flags in [
        &[][..],
        &["--deep-iteration"],
        &["--print-data-log"],
        &["--print-data-log", "--skip-record-metadata"],
    ] {
        let mut args = vec!["--files", file];
        args.extend_from_slice(flags);
        let mut n_args = vec!["dump-log"];
        n_args.extend_from_slice(&args);
        let (n, j) = (native(&n_args), java("dump-log", &args));
        assert!(
            n.status.success() && j.status.success(),
            "{flags:?}\nnative: {n:?}\njava: {j:?}"
        );
        assert_eq!(stdout(&n), stdout(&j), "dump-log {flags:?}");
        if flags == ["--print-data-log"] {
            last = stdout(&n);
        }
    }
    last
}

fn segment(broker: &Broker, topic: &str) -> String {
    let files = broker.segment_files(topic, 0);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].display().to_string()
}

#[test]
fn dump_log_matches_kafkas_tool_on_oxka_and_apache_kafka_segments() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let out = native(&["topics", "--bootstrap-server", &b, "--create", "--topic", "dl"]);
    assert!(out.status.success(), "{out:?}");
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        produce_native(
            &b,
            "dl",
            &["--compression-codec", codec],
            &format!("{codec} one\n{codec} two\n"),
        );
    }
    produce_native(
        &b,
        "dl",
        &[
            "--property",
            "parse.key=true",
            "--property",
            "parse.headers=true",
            "--property",
            "null.marker=NUL",
        ],
        "h1:a,h2:b\tkey\tvalue\nNUL\tNUL\tNUL\n",
    );
    let kcat = common::kcat(
        &["-P", "-b", &b, "-t", "dl", "-K", ":", "-H", "x=y"],
        b"k:v\n:empty-key\n",
    );
    assert!(kcat.status.success(), "{kcat:?}");
    let dumped = assert_same_dump(&segment(&broker, "dl"));
    assert!(
        dumped.contains("compresscodec: zstd") && dumped.contains("payload: zstd two"),
        "{dumped}"
    );
    assert!(
        dumped.contains("headerKeys: [h1,h2] key: key payload: value"),
        "{dumped}"
    );

    // An index file is not dumped natively: one line says so, and the run goes on.
    let index = segment(&broker, "dl").replace(".log", ".index");
    let out = native(&["dump-log", "--files", &index]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only .log segment files"),
        "{out:?}"
    );
    drop(broker);

    let kafka = Broker::start_target(Target::ApacheKafka, &[]);
    let k = kafka.bootstrap();
    let out = native(&["topics", "--bootstrap-server", &k, "--create", "--topic", "kdl"]);
    assert!(out.status.success(), "{out:?}");
    produce_native(&k, "kdl", &["--compression-codec", "lz4"], "a\nb\nc\n");
    let kcat = common::kcat(&["-P", "-b", &k, "-t", "kdl", "-K", ":"], b"k:v\n");
    assert!(kcat.status.success(), "{kcat:?}");
    assert_same_dump(&segment(&kafka, "kdl"));
}
