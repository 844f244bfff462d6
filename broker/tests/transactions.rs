//! Transactions (KIP-98) with real clients: Apache Kafka's Java transactional producer
//! (`tests/java/TxnProducer.java`, Kafka 4.x client) commits and aborts; read_committed consumers
//! (Kafka's Java console consumer and librdkafka through confluent-kafka) see exactly the committed
//! records, each once and in order; read_uncommitted consumers see the aborted ones too; an older
//! producer of the same transactional id is fenced; `kafka-transactions` lists and describes.

mod common;

use std::time::Duration;

use common::*;

/// Reads every partition of `topic` with librdkafka at `isolation`; returns the values in partition
/// order (data records only: librdkafka skips control records and, at read_committed, aborted data).
fn librdkafka_values(bootstrap: &str, topic: &str, partitions: u32, isolation: &str, expected: usize) -> Vec<String> {
    let script = r#"
import os
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
topic, expected = os.environ["TOPIC"], int(os.environ["EXPECTED"])
parts = int(os.environ["PARTITIONS"])
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "txn-check", "enable.auto.commit": False,
              "isolation.level": os.environ["ISOLATION"], "check.crcs": True, "enable.partition.eof": True})
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
out, eof = {p: [] for p in range(parts)}, set()
deadline = time.time() + 60
while (len(eof) < parts or sum(len(v) for v in out.values()) < expected) and time.time() < deadline:
    for m in c.consume(num_messages=1000, timeout=0.5):
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            fail(f"consumer error: {m.error()}")
        out[m.partition()].append(m.value().decode())
c.close()
for p in range(parts):
    print(f"{p} " + ",".join(out[p]))
"#;
    let (partitions_s, expected_s) = (partitions.to_string(), expected.to_string());
    let stdout = python_env_ok(
        script,
        bootstrap,
        &[
            ("TOPIC", topic),
            ("PARTITIONS", &partitions_s),
            ("ISOLATION", isolation),
            ("EXPECTED", &expected_s),
        ],
    );
    let mut values = Vec::new();
    for line in stdout.lines() {
        let (_, list) = line.split_once(' ').unwrap_or((line, ""));
        values.extend(list.split(',').filter(|v| !v.is_empty()).map(str::to_string));
    }
    values
}

/// Every number of the committed transactions of `TxnProducer run` (transaction i aborted when
/// i % 3 == 2), exactly once, and in order within each partition (`per_partition`).
fn check_committed(values: &[String], transactions: u64, per_txn: u64) {
    let mut seen = std::collections::BTreeSet::new();
    for v in values {
        let n: u64 = v.parse().unwrap_or_else(|_| panic!("not a number: {v}"));
        assert!(seen.insert(n), "{n} read twice");
        assert!((n / per_txn) % 3 != 2, "{n} is from an aborted transaction");
    }
    let expected: Vec<u64> = (0..transactions * per_txn).filter(|n| (n / per_txn) % 3 != 2).collect();
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), expected, "the committed records, each once");
}

#[test]
fn java_transactions_commit_and_abort_and_consumers_see_only_committed_records() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    create_topic(&broker, "tx", 3);
    const TXNS: u64 = 12;
    const PER: u64 = 50;
    let out = run(
        java_program(
            broker.temp_dir(),
            "TxnProducer",
            &[&broker.bootstrap(), "tx", "app-1", "run", &TXNS.to_string(), &PER.to_string()],
        ),
        b"",
        Duration::from_secs(180),
    );
    let stdout = expect_success("TxnProducer run", &out);
    assert_eq!(stdout.trim(), "committed=400 aborted=200");

    // librdkafka at read_committed: exactly the committed records; at read_uncommitted: all of them.
    let committed = librdkafka_values(&broker.bootstrap(), "tx", 3, "read_committed", 400);
    check_committed(&committed, TXNS, PER);
    let all = librdkafka_values(&broker.bootstrap(), "tx", 3, "read_uncommitted", 600);
    assert_eq!(all.len(), 600, "read_uncommitted sees the aborted records too");

    // Kafka's Java console consumer at read_committed.
    let out = kafka_tool(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            "tx",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--max-messages",
            "400",
            "--timeout-ms",
            "30000",
        ],
    );
    let stdout = expect_success("console-consumer read_committed", &out);
    let java: Vec<String> = stdout.lines().map(str::to_string).collect();
    check_committed(&java, TXNS, PER);

    // kafka-transactions lists and describes the transactional id.
    let list = expect_success(
        "kafka-transactions list",
        &kafka_tool("4", "transactions", &["--bootstrap-server", &broker.bootstrap(), "list"]),
    );
    assert!(
        list.contains("app-1") && list.contains("CompleteCommit"),
        "kafka-transactions list: {list}"
    );
    let describe = expect_success(
        "kafka-transactions describe",
        &kafka_tool(
            "4",
            "transactions",
            &["--bootstrap-server", &broker.bootstrap(), "describe", "--transactional-id", "app-1"],
        ),
    );
    assert!(describe.contains("CompleteCommit"), "kafka-transactions describe: {describe}");
}

#[test]
fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    create_topic(&broker, "fence", 1);
    let out = run(
        java_program(broker.temp_dir(), "TxnProducer", &[&broker.bootstrap(), "fence", "app-2", "fence"]),
        b"",
        Duration::from_secs(180),
    );
    let stdout = expect_success("TxnProducer fence", &out);
    assert_eq!(stdout.trim(), "fenced=true live=10", "{}", tail(&out.stderr, 20));
    let committed = librdkafka_values(&broker.bootstrap(), "fence", 1, "read_committed", 10);
    let expected: Vec<String> = (0..10).map(|i| format!("live-{i}")).collect();
    assert_eq!(committed, expected, "only the live producer's records are committed");
    let all = librdkafka_values(&broker.bootstrap(), "fence", 1, "read_uncommitted", 20);
    assert_eq!(all.len(), 20, "the zombie's records are in the log, aborted");
}
