//! Transactions (KIP-98) with real clients: Apache Kafka's Java transactional producer
//! (`tests/java/TxnProducer.java`, Kafka 4.x client) commits and aborts; read_committed consumers
//! (Kafka's Java console consumer and librdkafka through confluent-kafka) see exactly the committed
//! records, each once and in order; read_uncommitted consumers see the aborted ones too; an older
//! producer of the same transactional id is fenced; `kafka-transactions` lists and describes.

mod common;

use std::time::Duration;

use common::*;

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
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        expected,
        "the committed records, each once"
    );
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
            &[
                &broker.bootstrap(),
                "tx",
                "app-1",
                "run",
                &TXNS.to_string(),
                &PER.to_string(),
            ],
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

    // kafka-transactions lists and describes the transactional id (its last transaction, 11, aborted).
    let list = expect_success(
        "kafka-transactions list",
        &kafka_tool(
            "4",
            "transactions",
            &["--bootstrap-server", &broker.bootstrap(), "list"],
        ),
    );
    assert!(
        list.contains("app-1") && list.contains("CompleteAbort"),
        "kafka-transactions list: {list}"
    );
    let describe = expect_success(
        "kafka-transactions describe",
        &kafka_tool(
            "4",
            "transactions",
            &[
                "--bootstrap-server",
                &broker.bootstrap(),
                "describe",
                "--transactional-id",
                "app-1",
            ],
        ),
    );
    assert!(
        describe.contains("CompleteAbort") && describe.contains("app-1"),
        "kafka-transactions describe: {describe}"
    );
}

#[test]
fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    create_topic(&broker, "fence", 1);
    let out = run(
        java_program(
            broker.temp_dir(),
            "TxnProducer",
            &[&broker.bootstrap(), "fence", "app-2", "fence"],
        ),
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

#[test]
fn an_open_transaction_survives_a_broker_kill_and_is_aborted_at_its_timeout() {
    let _serial = serial();
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "open", 1);
    let stdout = broker.temp_dir().join("hang.out");
    let mut hanging = java_program(
        broker.temp_dir(),
        "TxnProducer",
        &[&broker.bootstrap(), "open", "app-3", "hang", "20"],
    )
    .stdout(std::fs::File::create(&stdout).unwrap())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("start java");
    wait_for("the open transaction", Duration::from_secs(120), || {
        std::fs::read_to_string(&stdout).unwrap_or_default().contains("open")
    });
    // The producer and the broker die with the transaction open (decided by no one).
    let _ = hanging.kill();
    let _ = hanging.wait();
    broker.kill9();
    broker.restart();

    // A committed transaction after the open one waits behind it (the LSO), until the coordinator,
    // having reloaded the open transaction from __transaction_state, aborts it at its 20 s timeout.
    let out = run(
        java_program(
            broker.temp_dir(),
            "TxnProducer",
            &[&broker.bootstrap(), "open", "app-4", "run", "1", "10"],
        ),
        b"",
        Duration::from_secs(180),
    );
    assert_eq!(expect_success("TxnProducer run", &out).trim(), "committed=10 aborted=0");
    let committed = librdkafka_values(&broker.bootstrap(), "open", 1, "read_committed", 10);
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(
        committed, expected,
        "the open transaction's records were aborted, the later commit is visible"
    );
    let all = librdkafka_values(&broker.bootstrap(), "open", 1, "read_uncommitted", 30);
    assert_eq!(all.len(), 30, "the aborted records stay in the log: {all:?}");
    assert!(
        broker
            .log_tail(100_000)
            .contains("aborting a transaction open longer than its timeout"),
        "the coordinator aborted it"
    );
}

#[test]
fn consume_transform_produce_copies_exactly_once_through_kills_of_the_app_and_the_broker() {
    let _serial = serial();
    const COUNT: u64 = 20_000;
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "in", 3);
    create_topic(&broker, "out", 3);
    produce_numbers(&broker.bootstrap(), "in", COUNT);
    let copy = |broker: &Broker, n: u32| {
        let log = broker.temp_dir().join(format!("copy-{n}.err"));
        java_program(
            broker.temp_dir(),
            "TxnProducer",
            &[&broker.bootstrap(), "in", "copier", "copy", "out", "copy-group"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start java")
    };
    let copied = |broker: &Broker| high_watermark_total(&broker.bootstrap(), "out", 3);
    // First run: killed -9 part-way.
    let mut app = copy(&broker, 1);
    wait_for("some records copied", Duration::from_secs(120), || {
        copied(&broker) > 3000
    });
    let _ = app.kill();
    let at = copied(&broker);
    eprintln!("killed the app with {at} records in the output log");
    assert!(at < COUNT as i64, "the kill came after the whole copy ({at})");
    let _ = app.wait();
    // Second run: the broker is killed -9 under it and restarted; the app is restarted whenever it
    // gives up, as an orchestrator would.
    let mut app = copy(&broker, 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while copied(&broker) <= 9000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second run copies nothing more: {}\n{}",
            tail(
                &std::fs::read(broker.temp_dir().join("copy-2.err")).unwrap_or_default(),
                40
            ),
            broker.log_tail(60)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.kill9();
    eprintln!("killed the broker");
    broker.restart();
    let mut runs = 2;
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        let committed = librdkafka_values(&broker.bootstrap(), "out", 3, "read_committed", 0).len() as u64;
        if committed >= COUNT {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {committed} of {COUNT} copied"
        );
        if app.try_wait().expect("try_wait").is_some() {
            runs += 1;
            app = copy(&broker, runs);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let _ = app.kill();
    let _ = app.wait();
    eprintln!("copied by {runs} runs of the app");
    let values = librdkafka_values(&broker.bootstrap(), "out", 3, "read_committed", COUNT as usize);
    let mut seen = std::collections::BTreeSet::new();
    for v in &values {
        assert!(seen.insert(v.parse::<u64>().unwrap()), "{v} copied twice");
    }
    assert_eq!(seen.len() as u64, COUNT, "every input record copied exactly once");
    assert_eq!(*seen.last().unwrap(), COUNT - 1);
}
