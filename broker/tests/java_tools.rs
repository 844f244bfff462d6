//! Apache Kafka's own command-line tools, of the seed's release line (2.8) and of the current one
//! (4.x), against an oxka broker: every scenario runs once per version.

mod common;

use std::collections::BTreeMap;

use common::*;

/// Generates `<scenario>::kafka_2_8` and `<scenario>::kafka_4` tests calling `scenario(version)`.
macro_rules! with_both_versions {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn kafka_2_8() {
                super::$scenario("2.8")
            }
            #[test]
            fn kafka_4() {
                super::$scenario("4")
            }
        }
    )*};
}

with_both_versions!(
    broker_api_versions,
    topics_lifecycle,
    console_round_trip,
    producer_perf_test_million_records,
    get_offsets,
    configs_describe_and_alter,
    consumer_groups_describe,
    delete_records,
    log_dirs_describe,
    dump_log_reads_segments,
);

/// One row of `kafka-broker-api-versions`: `Produce(0): 0 to 11 [usable: 9],`.
#[derive(Debug)]
struct ApiRow {
    key: i16,
    /// The version the tool would use (client and broker ranges intersected); None = UNSUPPORTED.
    usable: Option<i16>,
}

fn parse_api_versions(stdout: &str) -> BTreeMap<String, ApiRow> {
    let mut rows = BTreeMap::new();
    for line in stdout.lines().map(str::trim) {
        let Some((name, rest)) = line.split_once('(') else {
            continue;
        };
        let Some((key, rest)) = rest.split_once("): ") else {
            continue;
        };
        let Ok(key) = key.parse::<i16>() else {
            continue;
        };
        // `UNSUPPORTED`, or `0 to 11 [usable: 9]`; APIs the tool does not know print no usable version.
        let usable = rest.split_once("usable: ").map(|(_, u)| {
            u.trim_end_matches([',', ']'])
                .parse()
                .unwrap_or_else(|_| panic!("bad usable version in {line:?}"))
        });
        rows.insert(name.to_string(), ApiRow { key, usable });
    }
    rows
}

fn broker_api_versions(version: &str) {
    let broker = Broker::start(&[]);
    let out = kafka_tool(
        version,
        "broker-api-versions",
        &["--bootstrap-server", &broker.bootstrap()],
    );
    let stdout = expect_success("kafka-broker-api-versions", &out);
    // The first line names the broker as Metadata returned it: id 0 at the advertised address.
    let header = stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with(&format!("{} (id: 0 rack: null", broker.bootstrap())),
        "unexpected header line {header:?} in:\n{stdout}"
    );
    let rows = parse_api_versions(&stdout);
    // What the tools, the Java client and librdkafka need for topics, produce, consume and groups.
    let required = [
        ("Produce", 0),
        ("Fetch", 1),
        ("ListOffsets", 2),
        ("Metadata", 3),
        ("OffsetCommit", 8),
        ("OffsetFetch", 9),
        ("FindCoordinator", 10),
        ("JoinGroup", 11),
        ("Heartbeat", 12),
        ("LeaveGroup", 13),
        ("SyncGroup", 14),
        ("DescribeGroups", 15),
        ("ListGroups", 16),
        ("ApiVersions", 18),
        ("CreateTopics", 19),
        ("DeleteTopics", 20),
        ("InitProducerId", 22),
        ("DescribeConfigs", 32),
        ("ElectLeaders", 43),
    ];
    let mut problems = Vec::new();
    for (name, key) in required {
        match rows.get(name) {
            None => problems.push(format!("{name}({key}) is not listed")),
            Some(row) if row.key != key => problems.push(format!("{name} has key {} (expected {key})", row.key)),
            Some(ApiRow { usable: None, .. }) => problems.push(format!("{name}({key}) is UNSUPPORTED")),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "kafka-broker-api-versions {version}: {}\n{stdout}",
        problems.join("; ")
    );
    // Record batches (magic v2) need Produce >= 3 and Fetch >= 4.
    assert!(
        rows["Produce"].usable.unwrap() >= 3,
        "Produce usable version < 3:\n{stdout}"
    );
    assert!(
        rows["Fetch"].usable.unwrap() >= 4,
        "Fetch usable version < 4:\n{stdout}"
    );
}

/// `Key: value` fields of a tab-separated `kafka-topics --describe` line.
fn describe_fields(line: &str) -> BTreeMap<String, String> {
    line.split('\t')
        .filter_map(|f| f.trim().split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn topics_lifecycle(version: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "lifecycle";
    let topics = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", b.as_str()];
        all.extend_from_slice(args);
        let out = kafka_tool(version, "topics", &all);
        expect_success(&format!("kafka-topics {}", args.join(" ")), &out)
    };
    let created = topics(&[
        "--create",
        "--topic",
        topic,
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ]);
    assert!(
        created.contains(&format!("Created topic {topic}.")),
        "create printed:\n{created}"
    );

    let list = topics(&["--list"]);
    assert!(
        list.lines().any(|l| l.trim() == topic),
        "--list does not show {topic}:\n{list}"
    );

    let describe = topics(&["--describe", "--topic", topic]);
    let lines: Vec<BTreeMap<String, String>> = describe.lines().map(describe_fields).collect();
    let summary = lines
        .iter()
        .find(|f| f.contains_key("PartitionCount"))
        .unwrap_or_else(|| panic!("no summary line:\n{describe}"));
    assert_eq!(summary.get("Topic").map(String::as_str), Some(topic), "{describe}");
    assert_eq!(summary["PartitionCount"], "3", "{describe}");
    assert_eq!(summary["ReplicationFactor"], "1", "{describe}");
    let mut partitions: Vec<(String, String)> = lines
        .iter()
        .filter(|f| f.contains_key("Partition") && f.contains_key("Leader"))
        .map(|f| (f["Partition"].clone(), f["Leader"].clone()))
        .collect();
    partitions.sort();
    assert_eq!(
        partitions,
        vec![
            ("0".into(), "0".into()),
            ("1".into(), "0".into()),
            ("2".into(), "0".into())
        ],
        "every partition led by broker 0:\n{describe}"
    );
    for f in lines.iter().filter(|f| f.contains_key("Partition")) {
        assert_eq!(f.get("Replicas").map(String::as_str), Some("0"), "{describe}");
        assert_eq!(f.get("Isr").map(String::as_str), Some("0"), "{describe}");
    }

    // Creating it again is refused with TopicExistsException (exit code non-zero).
    let again = kafka_tool(
        version,
        "topics",
        &[
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            topic,
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ],
    );
    assert!(!again.status.success(), "second --create of {topic} succeeded");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        text.contains("already exists"),
        "second --create should say the topic exists:\n{text}"
    );

    topics(&["--delete", "--topic", topic]);
    wait_for(
        "the deleted topic to leave --list",
        std::time::Duration::from_secs(30),
        || !topics(&["--list"]).lines().any(|l| l.trim() == topic),
    );
}

fn console_round_trip(version: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "console";
    create_topic(&broker, topic, 1);
    let mut lines: Vec<String> = (0..300).map(|i| format!("line {i:05} ünïcödé ✓ \t tab")).collect();
    lines.push("x".repeat(20_000)); // larger than one default batch would hold in a single line
    lines.push("last line".into());
    let input = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let out = kafka_tool_stdin(
        version,
        "console-producer",
        &["--bootstrap-server", &b, "--topic", topic],
        input.as_bytes(),
        120,
    );
    expect_success("kafka-console-producer", &out);
    assert!(
        out.stderr.is_empty() || !String::from_utf8_lossy(&out.stderr).contains("ERROR"),
        "producer logged errors:\n{}",
        tail(&out.stderr, 40)
    );

    let n = lines.len().to_string();
    let out = kafka_tool(
        version,
        "console-consumer",
        &[
            "--bootstrap-server",
            &b,
            "--topic",
            topic,
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--max-messages",
            &n,
            "--timeout-ms",
            "60000",
        ],
    );
    let stdout = expect_success("kafka-console-consumer", &out);
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        got.len(),
        lines.len(),
        "consumed {} of {} lines; stderr:\n{}",
        got.len(),
        lines.len(),
        tail(&out.stderr, 20)
    );
    for (i, (got, want)) in got.iter().zip(&lines).enumerate() {
        assert_eq!(got, want, "line {i} differs");
    }
}

fn producer_perf_test_million_records(version: &str) {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "perf";
    create_topic(&broker, topic, 1);
    let n: u64 = 1_000_000;
    let num = n.to_string();
    let bootstrap_prop = format!("bootstrap.servers={b}");
    let out = kafka_tool_timeout(
        version,
        "producer-perf-test",
        &[
            "--topic",
            topic,
            "--num-records",
            &num,
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            &bootstrap_prop,
            "acks=all",
        ],
        600,
    );
    let stdout = expect_success("kafka-producer-perf-test", &out);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains("records sent"))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    assert!(
        summary.starts_with(&format!("{n} records sent")),
        "perf test summary: {summary}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Exception"),
        "producer-perf-test reported errors:\n{}",
        tail(&out.stderr, 40)
    );
    eprintln!("kafka {version} producer-perf-test against oxka: {summary}");

    // Every record is there, complete and in order: offsets 0..n-1 contiguous, 100-byte A-Z values.
    let script = format!(
        r#"
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
n = {n}
c = Consumer({{"bootstrap.servers": BOOTSTRAP, "group.id": "perf-check", "enable.auto.commit": False,
              "check.crcs": True, "fetch.max.bytes": 52428800}})
c.assign([TopicPartition("{topic}", 0, OFFSET_BEGINNING)])
expected = 0
deadline = time.time() + 240
while expected < n and time.time() < deadline:
    for m in c.consume(num_messages=20000, timeout=0.5):
        if m.error():
            fail(f"consumer error at offset {{expected}}: {{m.error()}}")
        if m.offset() != expected:
            fail(f"offset {{m.offset()}} where {{expected}} was expected")
        v = m.value()
        if len(v) != 100 or not v.isalpha() or not v.isupper():
            fail(f"record {{expected}} has a bad value {{v!r}}")
        expected += 1
c.close()
if expected != n:
    fail(f"read {{expected}} of {{n}} records")
print("ok", expected)
"#
    );
    let checked = python_ok(&script, &b);
    assert!(checked.contains(&format!("ok {n}")), "{checked}");
}

fn get_offsets(version: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "offsets";
    create_topic(&broker, topic, 2);
    // 5 records to partition 0 and 7 to partition 1, with kafka-python.
    python_ok(
        &format!(
            r#"
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
for partition, count in ((0, 5), (1, 7)):
    for i in range(count):
        p.send("{topic}", value=f"{{partition}}-{{i}}".encode(), partition=partition).get(timeout=30)
p.close()
"#
        ),
        &b,
    );
    let run_get_offsets = |time: &str| {
        let mut args: Vec<&str> = if version == "2.8" {
            vec!["--broker-list", &b]
        } else {
            vec!["--bootstrap-server", &b]
        };
        args.extend_from_slice(&["--topic", topic, "--time", time]);
        let out = kafka_tool(version, "get-offsets", &args);
        let stdout = expect_success("kafka-get-offsets", &out);
        let mut lines: Vec<String> = stdout
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        run_get_offsets("-1"),
        vec![format!("{topic}:0:5"), format!("{topic}:1:7")],
        "latest offsets"
    );
    assert_eq!(
        run_get_offsets("-2"),
        vec![format!("{topic}:0:0"), format!("{topic}:1:0")],
        "earliest offsets"
    );
}

fn configs_describe_and_alter(version: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "configured";
    create_topic(&broker, topic, 1);
    let configs = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", b.as_str()];
        all.extend_from_slice(args);
        expect_success(
            &format!("kafka-configs {}", args.join(" ")),
            &kafka_tool(version, "configs", &all),
        )
    };
    let topic_describe = ["--describe", "--entity-type", "topics", "--entity-name", topic];
    let before = configs(&topic_describe);
    assert!(
        before.contains(&format!("Dynamic configs for topic {topic} are:")),
        "topic describe printed:\n{before}"
    );
    assert!(
        !before.contains("retention.ms=1000"),
        "retention.ms already set?\n{before}"
    );

    let broker_describe = configs(&["--describe", "--entity-type", "brokers", "--entity-name", "0"]);
    assert!(
        broker_describe.contains("Dynamic configs for broker 0 are:"),
        "broker describe printed:\n{broker_describe}"
    );
    let broker_all = configs(&["--describe", "--entity-type", "brokers", "--entity-name", "0", "--all"]);
    assert!(
        broker_all.contains("All configs for broker 0 are:"),
        "broker describe --all printed:\n{broker_all}"
    );
    assert!(
        broker_all.lines().skip(1).any(|l| l.contains('=')),
        "broker describe --all lists no config:\n{broker_all}"
    );

    let altered = configs(&[
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        topic,
        "--add-config",
        "retention.ms=1000",
    ]);
    assert!(
        altered.contains(&format!("Completed updating config for topic {topic}")),
        "alter printed:\n{altered}"
    );
    let after = configs(&topic_describe);
    assert!(
        after.contains("retention.ms=1000"),
        "describe after alter does not show retention.ms=1000:\n{after}"
    );

    let deleted = configs(&[
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        topic,
        "--delete-config",
        "retention.ms",
    ]);
    assert!(
        deleted.contains(&format!("Completed updating config for topic {topic}")),
        "delete-config printed:\n{deleted}"
    );
    let cleared = configs(&topic_describe);
    assert!(
        !cleared.contains("retention.ms=1000"),
        "retention.ms still set after --delete-config:\n{cleared}"
    );
}

fn consumer_groups_describe(version: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "grouped";
    let group = "tool-group";
    create_topic(&broker, topic, 1);
    // Produce 10 records and commit offset 6 for the group, with confluent-kafka.
    python_ok(
        &format!(
            r#"
from confluent_kafka import Producer, Consumer, TopicPartition
p = Producer({{"bootstrap.servers": BOOTSTRAP, "acks": "all"}})
for i in range(10):
    p.produce("{topic}", value=str(i).encode(), partition=0)
if p.flush(30) != 0:
    fail("produce did not complete")
c = Consumer({{"bootstrap.servers": BOOTSTRAP, "group.id": "{group}", "enable.auto.commit": False}})
commit_offsets(c, [TopicPartition("{topic}", 0, 6)])
c.close()
"#
        ),
        &b,
    );
    let groups = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", b.as_str()];
        all.extend_from_slice(args);
        expect_success(
            &format!("kafka-consumer-groups {}", args.join(" ")),
            &kafka_tool(version, "consumer-groups", &all),
        )
    };
    let list = groups(&["--list"]);
    assert!(
        list.lines().any(|l| l.trim() == group),
        "--list does not show {group}:\n{list}"
    );
    let describe = groups(&["--describe", "--group", group]);
    // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    let row = describe
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() >= 6 && cols[0] == group && cols[1] == topic)
        .unwrap_or_else(|| panic!("no row for {group}/{topic} in:\n{describe}"));
    assert_eq!(
        &row[2..6],
        &["0", "6", "10", "4"],
        "partition, committed offset, log end offset, lag:\n{describe}"
    );
}

fn delete_records(version: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "trimmed";
    create_topic(&broker, topic, 1);
    let input: String = (0..100).map(|i| format!("r{i}\n")).collect();
    let out = kafka_tool_stdin(
        version,
        "console-producer",
        &["--bootstrap-server", &b, "--topic", topic],
        input.as_bytes(),
        120,
    );
    expect_success("kafka-console-producer", &out);
    let json = broker.temp_dir().join("delete.json");
    std::fs::write(
        &json,
        format!(r#"{{"partitions":[{{"topic":"{topic}","partition":0,"offset":40}}],"version":1}}"#),
    )
    .unwrap();
    let out = kafka_tool(
        version,
        "delete-records",
        &["--bootstrap-server", &b, "--offset-json-file", json.to_str().unwrap()],
    );
    let stdout = expect_success("kafka-delete-records", &out);
    assert!(
        stdout.contains("low_watermark: 40"),
        "kafka-delete-records printed:\n{stdout}"
    );
    // The log start offset moved: a consumer from the beginning starts at 40.
    let out = kafka_tool(
        version,
        "console-consumer",
        &[
            "--bootstrap-server",
            &b,
            "--topic",
            topic,
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--max-messages",
            "60",
            "--timeout-ms",
            "30000",
        ],
    );
    let stdout = expect_success("kafka-console-consumer", &out);
    let got: Vec<&str> = stdout.lines().collect();
    let want: Vec<String> = (40..100).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want, "records after delete-records");
}

fn log_dirs_describe(version: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = "sized";
    create_topic(&broker, topic, 2);
    let input: String = (0..50).map(|i| format!("value {i}\n")).collect();
    let out = kafka_tool_stdin(
        version,
        "console-producer",
        &["--bootstrap-server", &b, "--topic", topic],
        input.as_bytes(),
        120,
    );
    expect_success("kafka-console-producer", &out);
    let out = kafka_tool(
        version,
        "log-dirs",
        &["--bootstrap-server", &b, "--describe", "--topic-list", topic],
    );
    let stdout = expect_success("kafka-log-dirs", &out);
    // {"version":1,"brokers":[{"broker":0,"logDirs":[{"logDir":"...","error":null,"partitions":[{"partition":"sized-0","size":..
    let json = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in:\n{stdout}"));
    assert!(json.contains(r#""broker":0"#), "{json}");
    assert!(
        json.contains(&format!(r#""logDir":"{}""#, broker.data_dir().display())),
        "log dir not reported:\n{json}"
    );
    for p in 0..2 {
        assert!(
            json.contains(&format!(r#""partition":"{topic}-{p}""#)),
            "{topic}-{p} missing:\n{json}"
        );
    }
    let total: u64 = json
        .split(r#""size":"#)
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    assert!(
        total > 50 * 7,
        "partition sizes add up to {total} bytes after 50 records:\n{json}"
    );
}

/// Kafka's offline `kafka-dump-log` reads oxka's segment and index files: the on-disk format is Kafka's.
fn dump_log_reads_segments(version: &str) {
    let mut broker = Broker::start(&[]);
    let topic = "dumped";
    create_topic(&broker, topic, 1);
    python_ok(
        r#"
from confluent_kafka import Producer
for codec in ("none", "gzip", "zstd"):
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "compression.type": codec, "linger.ms": 5})
    for i in range(100):
        p.produce("dumped", key=f"k{i}".encode(), value=f"{codec}-{i}".encode(), partition=0)
    if p.flush(30) != 0:
        fail("not delivered")
# Enough batches (linger 0) past index.interval.bytes (4096) for the offset index to get entries.
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 0})
for i in range(300):
    p.produce("dumped", value=b"b" * 1000, partition=0)
    p.flush(10)
"#,
        &broker.bootstrap(),
    );
    broker.stop();
    let segment = broker
        .segment_files(topic, 0)
        .into_iter()
        .next()
        .expect("a segment file");
    let seg = segment.to_str().unwrap();
    let out = kafka_tool(version, "dump-log", &["--files", seg, "--print-data-log"]);
    let stdout = expect_success("kafka-dump-log", &out);
    for codec in ["none", "gzip", "zstd"] {
        for i in [0, 99] {
            let payload = format!("payload: {codec}-{i}");
            assert!(
                stdout.lines().any(|l| l.ends_with(&payload)),
                "kafka-dump-log did not show {payload:?}:\n{}",
                tail(&out.stdout, 30)
            );
        }
    }
    assert!(
        stdout.contains("baseOffset: 0 lastOffset:"),
        "no batch at offset 0:\n{}",
        tail(&out.stdout, 30)
    );
    assert!(
        !stdout.contains("Found ") || !stdout.contains("invalid"),
        "kafka-dump-log found invalid bytes:\n{stdout}"
    );
    let index = seg.replace(".log", ".index");
    let time_index = seg.replace(".log", ".timeindex");
    let out = kafka_tool(
        version,
        "dump-log",
        &["--files", &format!("{index},{time_index}"), "--index-sanity-check"],
    );
    let stdout = expect_success("kafka-dump-log --index-sanity-check", &out);
    assert!(
        stdout.contains(&format!("{index} passed sanity check")),
        "index check:\n{stdout}\n{}",
        tail(&out.stderr, 20)
    );
    assert!(
        stdout.contains(&format!("{time_index} passed sanity check")),
        "time index check:\n{stdout}\n{}",
        tail(&out.stderr, 20)
    );
}
