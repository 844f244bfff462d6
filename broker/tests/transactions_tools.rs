//! `kafka-transactions describe-producers`, `abort` and `find-hanging` (KIP-664; Apache Kafka's 4.x
//! tool) against transactions left open by Apache Kafka's Java producer (`tests/java/TxnProducer.java
//! hang`, killed with its transaction open).
//!
//! `describe-producers` and `abort --start-offset` use DescribeProducers on the partition leader, then
//! `abort` has the leader write an ABORT marker (WriteTxnMarkers with the producer's epoch and
//! coordinator epoch); the last stable offset then moves past the aborted records, so a librdkafka
//! read_committed consumer reads a transaction committed after it. `find-hanging --broker-id 0` lists
//! the topics (Metadata), asks broker 0 for the producers of each partition it holds
//! (DescribeProducers), and, for the open transactions older than `--max-transaction-timeout`
//! minutes, asks the transaction coordinators about their producer ids (ListTransactions, then
//! DescribeTransactions): a transaction its coordinator still has open on that partition is not
//! hanging. A really hanging transaction is made by losing the coordinator's state: the broker is
//! stopped and its `__transaction_state` partitions deleted (a lost disk), so no coordinator knows
//! the transaction any more. With Kafka's StandardAuthorizer, DescribeProducers needs READ on the
//! topic and `abort` CLUSTER_ACTION, as in Kafka.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// How far in the past the open transactions' records are stamped (CreateTime): older than
/// find-hanging's default `--max-transaction-timeout` of 15 minutes, so they are its candidates.
const AGE_MS: u64 = 20 * 60 * 1000;

/// Runs `kafka-transactions --bootstrap-server <broker> <args>`, which must succeed; its stdout.
fn transactions(broker: &Broker, args: &[&str]) -> String {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
    all.extend_from_slice(args);
    let out = kafka_tool("4", "transactions", &all);
    let stdout = expect_success(&format!("kafka-transactions {}", args.join(" ")), &out);
    eprintln!("kafka-transactions {}:\n{stdout}", args.join(" "));
    stdout
}

/// How many requests of `api` (its name in ApiKey) the broker has answered.
fn requests(broker: &Broker, api: &str) -> f64 {
    let name = format!("kafka_network_requestmetrics_requests_total{{request=\"{api}\"}} ");
    http_get(broker.metrics_port(), "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(&name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The data rows of a table the tool printed (its header line left out), split into columns.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// `describe-producers` of `topic`-0: one row per producer (ProducerId, ProducerEpoch,
/// LatestCoordinatorEpoch, LastSequence, LastTimestamp, CurrentTransactionStartOffset).
fn describe_producers(broker: &Broker, topic: &str) -> Vec<Vec<String>> {
    let table = transactions(broker, &["describe-producers", "--topic", topic, "--partition", "0"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("ProducerId") && header.contains("CurrentTransactionStartOffset"),
        "describe-producers: {table}"
    );
    rows(&table)
}

/// `find-hanging --broker-id 0` with `extra` arguments: its rows (Topic, Partition, ProducerId,
/// ProducerEpoch, CoordinatorEpoch, StartOffset, LastTimestamp, Duration(min)).
fn find_hanging(broker: &Broker, extra: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["find-hanging", "--broker-id", "0"];
    args.extend_from_slice(extra);
    let table = transactions(broker, &args);
    assert!(table.starts_with("Topic"), "find-hanging printed no table: {table}");
    rows(&table)
}

/// Starts `TxnProducer hang` on partition 0 of `topic` (5 records stamped `AGE_MS` in the past, a
/// transaction timeout of `timeout_ms`), waits until its records are written, and kills it: the
/// transaction stays open.
fn leave_transaction_open(broker: &Broker, topic: &str, transactional_id: &str, timeout_ms: u32) {
    let stdout = broker.temp_dir().join(format!("hang-{transactional_id}.out"));
    let (age, timeout) = (AGE_MS.to_string(), timeout_ms.to_string());
    let mut producer = java_program(
        broker.temp_dir(),
        "TxnProducer",
        &[
            &broker.bootstrap(),
            topic,
            transactional_id,
            "hang",
            "5",
            &timeout,
            &age,
        ],
    )
    .stdout(std::fs::File::create(&stdout).unwrap())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("start java");
    wait_for("the open transaction", Duration::from_secs(120), || {
        std::fs::read_to_string(&stdout).unwrap_or_default().contains("open")
    });
    let _ = producer.kill();
    let _ = producer.wait();
}

/// Commits one transaction of the numbers 0..9 on `topic` (one partition) with the Java producer.
fn commit_numbers(broker: &Broker, topic: &str, transactional_id: &str) {
    let out = run(
        java_program(
            broker.temp_dir(),
            "TxnProducer",
            &[&broker.bootstrap(), topic, transactional_id, "run", "1", "10"],
        ),
        b"",
        Duration::from_secs(180),
    );
    assert_eq!(expect_success("TxnProducer run", &out).trim(), "committed=10 aborted=0");
}

/// Everything a librdkafka read_committed consumer reads from partition 0 of `topic` up to the end
/// it is given (the last stable offset).
fn read_committed(broker: &Broker, topic: &str) -> Vec<String> {
    let script = r#"
import os
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "tools-check", "enable.auto.commit": False,
              "isolation.level": "read_committed", "enable.partition.eof": True})
c.assign([TopicPartition(os.environ["TOPIC"], 0, OFFSET_BEGINNING)])
out, eof, deadline = [], False, time.time() + 60
while not eof and time.time() < deadline:
    for m in c.consume(num_messages=100, timeout=0.5):
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof = True
                continue
            fail(f"consumer error: {m.error()}")
        out.append(m.value().decode())
c.close()
if not eof:
    fail("no end of partition within 60 s")
print(",".join(out))
"#;
    let stdout = python_env_ok(script, &broker.bootstrap(), &[("TOPIC", topic)]);
    stdout
        .trim()
        .split(',')
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn numbers() -> Vec<String> {
    (0..10).map(|i| i.to_string()).collect()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The row of the producer whose transaction starts at `start_offset`.
fn producer_at<'a>(producers: &'a [Vec<String>], start_offset: &str) -> &'a Vec<String> {
    producers
        .iter()
        .find(|r| r[5] == start_offset)
        .unwrap_or_else(|| panic!("no producer with a transaction at {start_offset}: {producers:?}"))
}

#[test]
fn describe_producers_shows_an_open_transaction_and_abort_moves_the_last_stable_offset() {
    let _serial = serial();
    // The coordinator checks for timed-out transactions every second (Kafka: every 10 s).
    let broker = Broker::start(&[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000")]);
    create_topic(&broker, "stuck", 1);
    let before = now_ms();
    // Open for 60 s: long enough for the tools to find and abort it before its coordinator does.
    leave_transaction_open(&broker, "stuck", "app-open", 60_000);
    let after = now_ms();

    // The open transaction's producer: epoch 0, no marker yet, sequences 0..4, started at offset 0.
    let producers = describe_producers(&broker, "stuck");
    assert_eq!(producers.len(), 1, "{producers:?}");
    let open = producer_at(&producers, "0").clone();
    let (producer_id, last_timestamp): (i64, u64) = (open[0].parse().unwrap(), open[4].parse().unwrap());
    assert!(producer_id >= 0, "{open:?}");
    assert_eq!(&open[1..4], ["0", "-1", "4"], "epoch, coordinator epoch, last sequence");
    assert!(
        (before - AGE_MS..=after - AGE_MS).contains(&last_timestamp),
        "the records' timestamp, {AGE_MS} ms old: {open:?}"
    );

    // Its coordinator still has it open on stuck-0: not hanging, however old it looks. The tool
    // found the partitions (Metadata), the open transaction (DescribeProducers), its transactional id
    // (ListTransactions) and the coordinator's state of it (DescribeTransactions).
    let apis = [
        "Metadata",
        "DescribeProducers",
        "ListTransactions",
        "DescribeTransactions",
    ];
    let counts: Vec<f64> = apis.iter().map(|api| requests(&broker, api)).collect();
    assert_eq!(find_hanging(&broker, &[]), Vec::<Vec<String>>::new());
    for (api, before) in apis.iter().zip(counts) {
        assert!(requests(&broker, api) > before, "find-hanging sent no {api}");
    }
    assert_eq!(
        find_hanging(&broker, &["--max-transaction-timeout", "0"]),
        Vec::<Vec<String>>::new()
    );

    // A transaction committed after it is not readable at read_committed: the open one holds the
    // last stable offset at 0.
    commit_numbers(&broker, "stuck", "app-later");
    assert_eq!(read_committed(&broker, "stuck"), Vec::<String>::new());

    transactions(
        &broker,
        &["abort", "--topic", "stuck", "--partition", "0", "--start-offset", "0"],
    );
    let producers = describe_producers(&broker, "stuck");
    let aborted = producers
        .iter()
        .find(|r| r[0] == producer_id.to_string())
        .unwrap_or_else(|| panic!("the aborted producer is gone: {producers:?}"));
    assert_eq!(aborted[5], "None", "its transaction ended: {producers:?}");
    assert!(producers.iter().all(|r| r[5] == "None"), "{producers:?}");
    assert_eq!(
        read_committed(&broker, "stuck"),
        numbers(),
        "the later commit is readable"
    );

    // The coordinator, which still had the transaction open, aborts it at its timeout: its marker
    // (the producer's epoch bumped, the same coordinator epoch) is accepted after the tool's one,
    // and the transaction completes.
    wait_for("the coordinator's abort", Duration::from_secs(120), || {
        transactions(&broker, &["describe", "--transactional-id", "app-open"]).contains("CompleteAbort")
    });
    let producers = describe_producers(&broker, "stuck");
    let fenced = producers.iter().find(|r| r[0] == producer_id.to_string()).unwrap();
    assert_eq!(
        &fenced[1..3],
        ["1", "0"],
        "epoch bumped by the coordinator's abort: {producers:?}"
    );
    assert_eq!(fenced[5], "None", "{producers:?}");
    assert_eq!(read_committed(&broker, "stuck"), numbers());

    // Aborting again finds nothing open at that offset.
    let bootstrap = broker.bootstrap();
    let again = kafka_tool(
        "4",
        "transactions",
        &[
            "--bootstrap-server",
            &bootstrap,
            "abort",
            "--topic",
            "stuck",
            "--partition",
            "0",
            "--start-offset",
            "0",
        ],
    );
    assert!(!again.status.success(), "a second abort succeeded");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("Could not find any open transactions starting at offset 0")
            || String::from_utf8_lossy(&again.stdout)
                .contains("Could not find any open transactions starting at offset 0"),
        "{}",
        tail(&again.stderr, 10)
    );
}

#[test]
fn find_hanging_lists_a_transaction_its_coordinator_lost_and_abort_ends_it() {
    let _serial = serial();
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "lost", 1);
    leave_transaction_open(&broker, "lost", "app-lost", 600_000);
    let producers = describe_producers(&broker, "lost");
    let producer_id = producer_at(&producers, "0")[0].clone();

    // The coordinator's log is lost while the broker is down: no coordinator knows the transaction.
    broker.stop();
    let mut removed = 0;
    for entry in std::fs::read_dir(broker.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("__transaction_state-") {
            std::fs::remove_dir_all(&path).unwrap();
            removed += 1;
        }
    }
    assert!(
        removed > 0,
        "no __transaction_state partition in {}",
        broker.data_dir().display()
    );
    broker.restart();

    let hanging = find_hanging(&broker, &[]);
    assert_eq!(hanging.len(), 1, "{hanging:?}");
    let row = &hanging[0];
    assert_eq!(
        &row[..6],
        ["lost", "0", producer_id.as_str(), "0", "-1", "0"],
        "topic, partition, producer id, epoch, coordinator epoch, start offset"
    );
    let minutes: u64 = row[7].parse().unwrap();
    assert!((20..30).contains(&minutes), "duration in minutes: {row:?}");
    // Younger than a 30-minute maximum timeout: not a candidate; older than 1 minute: hanging.
    assert_eq!(
        find_hanging(&broker, &["--max-transaction-timeout", "30"]),
        Vec::<Vec<String>>::new()
    );
    assert_eq!(find_hanging(&broker, &["--max-transaction-timeout", "1"]), hanging);

    // A new producer gets a new producer id (the ids come from the cluster metadata, not from the
    // lost log), so its transaction is a second one on the partition, stuck behind the hanging one.
    commit_numbers(&broker, "lost", "app-after");
    let producers = describe_producers(&broker, "lost");
    assert_eq!(producers.len(), 2, "{producers:?}");
    assert_eq!(producer_at(&producers, "0")[0], producer_id, "{producers:?}");
    assert_eq!(read_committed(&broker, "lost"), Vec::<String>::new());
    transactions(
        &broker,
        &["abort", "--topic", "lost", "--partition", "0", "--start-offset", "0"],
    );
    assert_eq!(find_hanging(&broker, &[]), Vec::<Vec<String>>::new());
    assert_eq!(read_committed(&broker, "lost"), numbers());
}

/// With Kafka's StandardAuthorizer: DescribeProducers needs READ on the topic (DESCRIBE is not
/// enough), and `abort` (WriteTxnMarkers) needs CLUSTER_ACTION on the cluster, as in Kafka.
#[test]
fn describe_producers_needs_read_and_abort_needs_cluster_action() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let sasl_port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let plain = "org.apache.kafka.common.security.plain.PlainLoginModule";
    let jaas = format!("{plain} required user_admin=\"admin-secret\" user_alice=\"alice-secret\";");
    let _broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        ("inter.broker.listener.name", "PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", &jaas),
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("super.users", "User:admin"),
    ]);
    let sasl = format!("127.0.0.1:{sasl_port}");
    let login = |user: &str| {
        let file = dir.path().join(format!("{user}.properties"));
        let text = format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config={plain} required username=\"{user}\" password=\"{user}-secret\";\n\
             default.api.timeout.ms=20000\nrequest.timeout.ms=15000\n"
        );
        std::fs::write(&file, text).unwrap();
        file
    };
    let (admin, alice) = (login("admin"), login("alice"));
    let tool =
        |tool: &str, config: &std::path::Path, args: &[&str]| common::secured::admin_tool(tool, &sasl, config, args);
    let ok = |what: &str, out: std::process::Output| {
        let text = common::secured::text(&out);
        assert!(out.status.success(), "{what}: {text}");
        text
    };
    for topic in ["readable", "described"] {
        ok(
            "admin creates a topic",
            tool("topics", &admin, &["--create", "--topic", topic, "--partitions", "1"]),
        );
    }
    for (operation, topic) in [("Read", "readable"), ("Describe", "described")] {
        ok(
            "kafka-acls --add",
            tool(
                "acls",
                &admin,
                &[
                    "--add",
                    "--allow-principal",
                    "User:alice",
                    "--operation",
                    operation,
                    "--topic",
                    topic,
                ],
            ),
        );
    }
    let describe = |topic: &str| {
        tool(
            "transactions",
            &alice,
            &["describe-producers", "--topic", topic, "--partition", "0"],
        )
    };
    let table = ok("alice describes the producers of readable", describe("readable"));
    assert!(table.contains("ProducerId"), "{table}");
    // DESCRIBE lets the tool find the leader (Metadata), but DescribeProducers itself is refused
    // (the admin client words the partition's TOPIC_AUTHORIZATION_FAILED so).
    let refused = describe("described");
    let text = common::secured::text(&refused);
    assert!(
        !refused.status.success() && text.contains("due to authorization failure on topic `described`"),
        "alice describes the producers of described: {text}"
    );
    // `abort` with the producer named (no lookup): the leader refuses WriteTxnMarkers.
    let abort = tool(
        "transactions",
        &alice,
        &[
            "abort",
            "--topic",
            "readable",
            "--partition",
            "0",
            "--producer-id",
            "5",
            "--producer-epoch",
            "0",
            "--coordinator-epoch",
            "0",
        ],
    );
    let text = common::secured::text(&abort);
    assert!(
        !abort.status.success() && text.contains("failed due to cluster authorization error"),
        "alice aborts: {text}"
    );
}
