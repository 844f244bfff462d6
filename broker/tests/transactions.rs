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
    // Timed-out transactions are looked for every second (Kafka's default: 10 s).
    let mut broker = Broker::start(&[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000")]);
    create_topic(&broker, "open", 1);
    let stdout = broker.temp_dir().join("hang.out");
    let mut hanging = java_program(
        broker.temp_dir(),
        "TxnProducer",
        &[&broker.bootstrap(), "open", "app-3", "hang", "20", "5000"],
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
    // having reloaded the open transaction from __transaction_state, aborts it at its 5 s timeout.
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

/// KIP-890 part 1, on the wire: a transactional batch for a partition that is not in the producer's
/// ongoing transaction (never added, or sent after the transaction was aborted, as a zombie's late
/// retry would be) is refused with INVALID_TXN_STATE instead of opening a transaction no coordinator
/// will end, which would hold every read_committed consumer back for good.
#[test]
fn a_late_transactional_produce_is_refused_instead_of_hanging_the_partition() {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use oxka_broker::network::client::ClientConnection;

    let _serial = serial();
    let broker = Broker::start(&[]);
    create_topic(&broker, "late", 1);
    let bootstrap = broker.bootstrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s = |v: &str| StrBytes::from_string(v.to_string());
        let mut c = ClientConnection::connect(&bootstrap, "late-test", Duration::from_secs(5), 1 << 20)
            .await
            .unwrap();
        let timeout = Duration::from_secs(30);
        // FindCoordinator creates __transaction_state; InitProducerId once the coordinator has loaded it.
        let mut init = None;
        for _ in 0..100 {
            let find = FindCoordinatorRequest::default()
                .with_key(s("late-id"))
                .with_key_type(1);
            c.call(ApiKey::FindCoordinator, 3, &RequestKind::FindCoordinator(find), timeout)
                .await
                .unwrap();
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("late-id"))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let ResponseKind::InitProducerId(r) = c
                .call(
                    ApiKey::InitProducerId,
                    4,
                    &RequestKind::InitProducerId(request),
                    timeout,
                )
                .await
                .unwrap()
            else {
                panic!("not an InitProducerId response")
            };
            if r.error_code == 0 {
                init = Some((r.producer_id.0, r.producer_epoch));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (pid, epoch) = init.expect("InitProducerId succeeds once the coordinator is ready");
        let mut seq = 0;
        let invalid_txn_state = 48;
        assert_eq!(
            produce_txn(&mut c, pid, epoch, &mut seq).await,
            invalid_txn_state,
            "a partition never added is refused"
        );
        let add = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("late-id")))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("late")))
                .with_partitions(vec![0])]);
        c.call(
            ApiKey::AddPartitionsToTxn,
            3,
            &RequestKind::AddPartitionsToTxn(add),
            timeout,
        )
        .await
        .unwrap();
        assert_eq!(produce_txn(&mut c, pid, epoch, &mut seq).await, 0, "added: accepted");
        let end = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("late-id")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(false);
        c.call(ApiKey::EndTxn, 3, &RequestKind::EndTxn(end), timeout)
            .await
            .unwrap();
        // Once the abort marker is written, a late batch of the same epoch is refused.
        let mut late = 0;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            late = produce_txn(&mut c, pid, epoch, &mut seq).await;
            if late == invalid_txn_state {
                break;
            }
        }
        assert_eq!(late, invalid_txn_state, "a late batch after the abort is refused");
    });
    let open = librdkafka_values(&broker.bootstrap(), "late", 1, "read_committed", 0);
    assert!(
        open.is_empty(),
        "nothing committed, and nothing holds the partition open: {open:?}"
    );
}

/// Sends one transactional batch of `late-id` to `late-0` (acks=all); the partition's error code.
async fn produce_txn(
    c: &mut oxka_broker::network::client::ClientConnection,
    pid: i64,
    epoch: i16,
    seq: &mut i32,
) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let mut batch = oxka_broker::log::batch::BatchBuilder::new(0)
        .producer(pid, epoch, *seq)
        .record(None, Some(b"x"), 0);
    batch.transactional = true;
    *seq += 1;
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("late-id"))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("late")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.build().into()))])]);
    let ResponseKind::Produce(r) = c
        .call(
            ApiKey::Produce,
            9,
            &RequestKind::Produce(request),
            Duration::from_secs(30),
        )
        .await
        .unwrap()
    else {
        panic!("not a Produce response")
    };
    r.responses[0].partition_responses[0].error_code
}

#[test]
fn transactions_through_a_broker_restart_and_a_kill_lose_and_repeat_nothing() {
    let _serial = serial();
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "survive", 3);
    const TXNS: u64 = 150;
    const PER: u64 = 20;
    let out_path = broker.temp_dir().join("survive.out");
    let err_path = broker.temp_dir().join("survive.err");
    let mut producer = java_program(
        broker.temp_dir(),
        "TxnProducer",
        &[
            &broker.bootstrap(),
            "survive",
            "app-5",
            "paced",
            &TXNS.to_string(),
            &PER.to_string(),
            "30",
        ],
    )
    .stdout(std::fs::File::create(&out_path).unwrap())
    .stderr(std::fs::File::create(&err_path).unwrap())
    .spawn()
    .expect("start java");
    let ended = || {
        std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("txn "))
            .count() as u64
    };
    wait_for("30 transactions", Duration::from_secs(120), || ended() >= 30);
    broker.restart();
    eprintln!("restarted the broker after {} transactions", ended());
    let before_kill = ended();
    wait_for("30 more transactions", Duration::from_secs(120), || {
        ended() >= before_kill + 30
    });
    broker.kill9();
    broker.restart();
    eprintln!("killed and restarted the broker after {} transactions", ended());
    let status = wait_child(&mut producer, Duration::from_secs(300));
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "the producer failed: {}", tail(stderr.as_bytes(), 30));
    let lines = std::fs::read_to_string(&out_path).unwrap();
    let committed: Vec<u64> = lines
        .lines()
        .filter_map(|l| l.strip_prefix("txn ")?.strip_suffix(" committed"))
        .map(|i| i.parse().unwrap())
        .collect();
    assert_eq!(ended(), TXNS, "every transaction ended");
    assert!(
        committed.len() as u64 >= TXNS / 2,
        "most transactions committed: {committed:?}\n{}",
        tail(stderr.as_bytes(), 20)
    );
    let expected: std::collections::BTreeSet<u64> = committed.iter().flat_map(|i| i * PER..(i + 1) * PER).collect();
    let partitions = librdkafka_partition_values(&broker.bootstrap(), "survive", 3, "read_committed", expected.len());
    let mut seen = std::collections::BTreeSet::new();
    for values in partitions.values() {
        let values: Vec<u64> = values.iter().map(|v| v.parse().unwrap()).collect();
        for w in values.windows(2) {
            assert!(w[0] < w[1], "{} after {} in a partition: out of order", w[1], w[0]);
        }
        for v in values {
            assert!(seen.insert(v), "{v} read twice");
        }
    }
    assert_eq!(seen, expected, "exactly the records of the committed transactions");
    // Kafka's Java consumer agrees.
    let out = kafka_tool(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            "survive",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--max-messages",
            &expected.len().to_string(),
            "--timeout-ms",
            "30000",
        ],
    );
    let java: Vec<u64> = expect_success("console-consumer", &out)
        .lines()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(
        java.len(),
        expected.len(),
        "the Java consumer reads each committed record once"
    );
    let java: std::collections::BTreeSet<u64> = java.into_iter().collect();
    assert_eq!(java, expected, "the Java consumer reads the same committed records");
}
