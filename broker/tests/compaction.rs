//! Log compaction end to end: a real client (confluent-kafka, i.e. librdkafka) writes 100,000
//! updates over 1,000 keys plus deletes to compacted topics, and a consumer reading from the
//! start must converge to exactly the latest value of every key, with tombstones kept for
//! `delete.retention.ms` (KIP-534: counted from the cleaning that first keeps them) and then gone.
//! A kill -9 between cleanings must not change the outcome. Runs against Apache Kafka too
//! (`OXKA_TEST_TARGET=kafka`).

mod common;

use std::collections::BTreeMap;

use common::*;

/// Keys k0000..k0999 get 100 rounds of values; d000..d099 get one value, then a tombstone.
/// Afterwards ~1.2 MB of records under the key `sentinel` push everything out of the active
/// segment (which is never cleaned). `phase2` adds another 1.2 MB of sentinels: a second
/// cleaning, which drops tombstones whose delete horizon has passed.
const PRODUCE: &str = r#"
from confluent_kafka import Producer
topics = os.environ["TOPICS"].split(",")
phase = os.environ["PHASE"]
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 20,
              "compression.type": "lz4", "batch.num.messages": 500})
def send(key, value):
    for t in topics:
        while True:
            try:
                p.produce(t, key=key.encode(), value=value, partition=0)
                break
            except BufferError:
                p.poll(0.1)
if phase == "data":
    for r in range(100):
        for k in range(1000):
            key = f"k{k:04}"
            send(key, f"{key}:{r}:".ljust(100, "x").encode())
        if r == 0:
            for d in range(100):
                send(f"d{d:03}", b"doomed")
        p.poll(0)
    for d in range(100):
        send(f"d{d:03}", None)
for i in range(1200):
    send("sentinel", os.urandom(1000))  # incompressible, so it really fills a segment
if p.flush(120) != 0:
    fail("records were not delivered")
print("produced")
"#;

/// Reads each topic's partition 0 from the log start to the high watermark; prints one JSON line
/// per topic: live keys, tombstones, and whatever breaks compaction's contract.
const SCAN: &str = r#"
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
def scan(topic):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "compaction-check", "enable.auto.commit": False,
                  "check.crcs": True, "enable.partition.eof": False})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    seen, last, dup, order = {}, -1, [], True
    deadline = time.time() + 60
    while last + 1 < high and time.time() < deadline:
        for m in c.consume(num_messages=10000, timeout=0.5):
            if m.error():
                fail(f"consumer error on {topic}: {m.error()}")
            if m.offset() <= last:
                order = False
            last = m.offset()
            k = m.key().decode()
            if k == "sentinel":
                continue
            if k in seen:
                dup.append(k)
            seen[k] = m.value()
    c.close()
    if last + 1 < high:
        fail(f"{topic}: read up to {last} of high watermark {high}")
    live = {k: v for k, v in seen.items() if v is not None}
    wrong = [k for k, v in live.items()
             if not (k.startswith("k") and v.decode().startswith(f"{k}:99:"))]
    return {"topic": topic, "live": len(live), "tombstones": len(seen) - len(live),
            "tombstone_keys_ok": all(k.startswith("d") for k, v in seen.items() if v is None),
            "duplicates": len(dup), "wrong_values": wrong[:5], "ordered": order}
for t in os.environ["TOPICS"].split(","):
    print(json.dumps(scan(t)))
"#;

/// The same check through kafka-python (a pure Python protocol implementation): the compacted
/// batches (offset gaps, empty batches, KIP-534 delete horizons) must decode there too.
const SCAN_KAFKA_PYTHON: &str = r#"
from kafka import KafkaConsumer, TopicPartition
topic = os.environ["TOPICS"].split(",")[0]
tp = TopicPartition(topic, 0)
c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, check_crcs=True,
                  consumer_timeout_ms=10000, max_partition_fetch_bytes=10485760)
c.assign([tp])
c.seek_to_beginning(tp)
high = c.end_offsets([tp])[tp]
seen, last = {}, -1
for m in c:
    last = m.offset
    k = m.key.decode()
    if k != "sentinel":
        if k in seen:
            fail(f"kafka-python: {k} twice")
        seen[k] = m.value
    if last + 1 >= high:
        break
c.close()
if last + 1 < high:
    fail(f"kafka-python: read up to {last} of {high}")
live = sum(1 for v in seen.values() if v is not None)
ok = all(v.decode().startswith(f"{k}:99:") for k, v in seen.items() if v is not None)
print(json.dumps({"live": live, "tombstones": len(seen) - live, "values_ok": ok}))
"#;

const KEEP: &str = "compacted-keep";
const PURGE: &str = "compacted-purge";

fn scan(broker: &Broker) -> BTreeMap<String, serde_json::Value> {
    let out = python_env_ok(SCAN, &broker.bootstrap(), &[("TOPICS", &format!("{KEEP},{PURGE}"))]);
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("scan prints JSON");
            (v["topic"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Scans until `done` holds for both topics or two minutes pass; returns the last scan.
fn converge(
    broker: &Broker,
    done: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
) -> BTreeMap<String, serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let s = scan(broker);
        if done(&s[KEEP], &s[PURGE]) || std::time::Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn clean(v: &serde_json::Value) -> bool {
    v["duplicates"] == 0 && v["live"] == 1000 && v["wrong_values"].as_array().is_some_and(Vec::is_empty)
}

#[test]
fn compacted_topics_converge_to_the_latest_value_of_every_key() {
    let _serial = serial();
    let mut broker = Broker::start(&[("log.cleaner.backoff.ms", "200")]);
    let topic_configs = |delete_retention: &'static str| {
        [
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1048576"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", delete_retention),
        ]
    };
    create_topic_with(&broker, KEEP, 1, &topic_configs("86400000"));
    create_topic_with(&broker, PURGE, 1, &topic_configs("0"));
    let topics = format!("{KEEP},{PURGE}");
    let out = python_env_ok(PRODUCE, &broker.bootstrap(), &[("TOPICS", &topics), ("PHASE", "data")]);
    assert!(out.contains("produced"), "{out}");

    // Phase 1: all updates compacted away; the tombstones of the kept topic are still there.
    let s = converge(&broker, |keep, _| clean(keep) && keep["tombstones"] == 100);
    let keep = &s[KEEP];
    assert_eq!(keep["live"], 1000, "{keep}");
    assert_eq!(keep["tombstones"], 100, "{keep}");
    assert_eq!(keep["duplicates"], 0, "{keep}");
    assert_eq!(keep["wrong_values"], serde_json::json!([]), "{keep}");
    assert_eq!(keep["ordered"], true, "{keep}");
    assert_eq!(keep["tombstone_keys_ok"], true, "{keep}");

    // Phase 2: one more cleaning; with delete.retention.ms=0 the tombstones are now gone, with
    // the default they stay. A kill -9 right after producing (the cleaner is likely mid-way
    // through a cleaning) must not matter: recovery completes or discards its output.
    let out = python_env_ok(PRODUCE, &broker.bootstrap(), &[("TOPICS", &topics), ("PHASE", "more")]);
    assert!(out.contains("produced"), "{out}");
    broker.kill9();
    broker.restart();
    let s = converge(&broker, |keep, purge| {
        clean(keep) && keep["tombstones"] == 100 && clean(purge) && purge["tombstones"] == 0
    });
    for (topic, tombstones) in [(KEEP, 100), (PURGE, 0)] {
        let v = &s[topic];
        assert_eq!(v["live"], 1000, "{v}");
        assert_eq!(v["tombstones"], tombstones, "{v}");
        assert_eq!(v["duplicates"], 0, "{v}");
        assert_eq!(v["wrong_values"], serde_json::json!([]), "{v}");
        assert_eq!(v["ordered"], true, "{v}");
    }
    let out = python_env_ok(SCAN_KAFKA_PYTHON, &broker.bootstrap(), &[("TOPICS", KEEP)]);
    assert!(
        out.contains(r#"{"live": 1000, "tombstones": 100, "values_ok": true}"#),
        "kafka-python sees: {out}"
    );
    if broker.target() == Target::Oxka {
        assert!(
            broker.log_text().contains("cleaned log"),
            "the broker never logged a cleaning"
        );
        check_segments_with_kafka_dump_log(&mut broker);
    }
}

/// Kafka's own `kafka-dump-log` must read the cleaned segments (every batch valid, KIP-534 delete
/// horizons where tombstones are) and find their indexes sane.
fn check_segments_with_kafka_dump_log(broker: &mut Broker) {
    broker.stop();
    let segments = broker.segment_files(KEEP, 0);
    let cleaned: Vec<&str> = segments[..segments.len() - 1]
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect();
    let out = kafka_tool("4", "dump-log", &["--files", &cleaned.join(","), "--print-data-log"]);
    let stdout = expect_success("kafka-dump-log", &out);
    assert!(
        !stdout.contains("isvalid: false"),
        "invalid batches:\n{}",
        tail(&out.stdout, 30)
    );
    assert!(
        stdout.contains("deleteHorizonMs: OptionalLong["),
        "no batch carries a delete horizon:\n{}",
        tail(&out.stdout, 30)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("key: k0999 ") && l.contains("payload: k0999:99:")),
        "the latest value of k0999 is not in the cleaned segments:\n{}",
        tail(&out.stdout, 30)
    );
    let first = cleaned[0];
    let indexes = format!(
        "{},{}",
        first.replace(".log", ".index"),
        first.replace(".log", ".timeindex")
    );
    let out = kafka_tool("4", "dump-log", &["--files", &indexes, "--index-sanity-check"]);
    let stdout = expect_success("kafka-dump-log --index-sanity-check", &out);
    assert_eq!(stdout.matches("passed sanity check").count(), 2, "{stdout}");
}

#[test]
fn compacted_topic_refuses_records_without_a_key() {
    let broker = Broker::start(&[]);
    create_topic_with(&broker, "compacted-keys", 1, &[("cleanup.policy", "compact")]);
    let out = python_ok(
        r#"
from confluent_kafka import Producer, KafkaError
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "retries": 0})
errors = []
def report(err, msg):
    errors.append(err)
# One at a time: a batch holding a keyless record is refused as a whole.
p.produce("compacted-keys", value=b"no key", on_delivery=report)
p.flush(60)
p.produce("compacted-keys", key=b"k", value=b"keyed", on_delivery=report)
if p.flush(60) != 0 or len(errors) != 2:
    fail("not all delivery reports arrived")
print("keyless", errors[0].code() == KafkaError.INVALID_RECORD if errors[0] else "accepted")
print("keyed", "ok" if errors[1] is None else errors[1])
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("keyless True"), "{out}");
    assert!(out.contains("keyed ok"), "{out}");
}
