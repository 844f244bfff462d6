//! Transactions (KIP-98) on a replicated cluster (fixture: `common/cluster.rs`, three brokers, every
//! topic with replication factor 3 and min.insync.replicas=2, `__transaction_state` and
//! `__consumer_offsets` too): Apache Kafka's Java transactional producer (`tests/java/TxnProducer.java
//! paced`) runs many small transactions over three partitions led by different brokers (so markers go
//! to remote partition leaders) while the broker that coordinates its transactional id is killed -9
//! and later restarted. The producer finishes on the new coordinator, and read_committed consumers
//! (librdkafka and Kafka's console consumer) see exactly the records of the transactions it reported
//! committed, each once and in order per partition, and none of the aborted ones.
//!
//! The tests are `#[ignore]`d in a plain `cargo test`: `scripts/test-all.sh` runs them with `--ignored`
//! beside the fault checker, where their minutes of waiting on failovers and timeouts cost CI no time.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;

const TXN_STATE: &str = "__transaction_state";
/// `transaction.state.log.num.partitions` (Kafka's default).
const TXN_STATE_PARTITIONS: i32 = 50;

const BROKER_CONFIG: &[(&str, &str)] = &[
    ("min.insync.replicas", "2"),
    ("transaction.state.log.replication.factor", "3"),
    ("transaction.state.log.min.isr", "2"),
    ("offsets.topic.replication.factor", "3"),
];

/// Kafka's `String.hashCode`-based partition of a transactional id in `__transaction_state` (and of
/// a group id in `__consumer_offsets`: both have 50 partitions here).
fn txn_state_partition(transactional_id: &str) -> i32 {
    let hash = transactional_id
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32));
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % TXN_STATE_PARTITIONS
}

/// A librdkafka read_committed consumer reading `topic` (`partitions`) from the beginning while the
/// producer runs, until `<work>/stop` exists and it has reached the last stable offset each partition
/// had then; prints `<partition> <values,...>` lines as `librdkafka_values` does.
/// Whatever it read while transactions were open and leaders moved must be committed data only.
const TAIL_CONSUMER: &str = r#"
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
topic, parts, stop = os.environ["TOPIC"], int(os.environ["PARTITIONS"]), os.environ["STOP"]
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "txn-tail", "enable.auto.commit": False,
              "isolation.level": "read_committed", "check.crcs": True, "enable.partition.eof": True})
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
# at_end: where each partition's last _PARTITION_EOF was (librdkafka reports one per arrival there).
out, at_end, ends = {p: [] for p in range(parts)}, {}, None
deadline = time.time() + 600
while time.time() < deadline:
    if ends is None and os.path.exists(stop):
        # The last stable offsets now (ListOffsets at read_committed): read up to them, then stop.
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(parts)}
        deadline = min(deadline, time.time() + 60)
    if ends is not None and all(at_end.get(p, -1) >= ends[p] for p in range(parts)):
        break
    for m in c.consume(num_messages=1000, timeout=0.5):
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                at_end[m.partition()] = m.offset()
                continue
            print(f"consumer error (retrying): {m.error()}", file=sys.stderr)
            continue
        out[m.partition()].append(m.value().decode())
else:
    fail(f"did not reach the last stable offsets {ends}: at the end of {at_end}")
c.close()
for p in range(parts):
    print(f"{p} " + ",".join(out[p]))
"#;

/// [`TAIL_CONSUMER`] running in the background.
struct TailConsumer {
    child: Child,
    work: std::path::PathBuf,
}

impl TailConsumer {
    fn start(work: &Path, bootstrap: &str, topic: &str, partitions: u32) -> TailConsumer {
        let stop = work.join("stop");
        let stop = stop.display().to_string();
        let partitions = partitions.to_string();
        let child = python_spawn(
            TAIL_CONSUMER,
            bootstrap,
            &[("TOPIC", topic), ("PARTITIONS", &partitions), ("STOP", &stop)],
            work,
            "tail",
        );
        TailConsumer {
            child,
            work: work.to_path_buf(),
        }
    }

    /// Tells it to read up to the end and stop; what it read, partition -> values in offset order.
    #[track_caller]
    fn stop(mut self) -> BTreeMap<i32, Vec<String>> {
        std::fs::write(self.work.join("stop"), "").unwrap();
        let status = wait_child(&mut self.child, Duration::from_secs(90));
        assert!(
            status.success(),
            "the tailing consumer exited with {status}:\n{}",
            tail(&std::fs::read(self.work.join("tail.err")).unwrap_or_default(), 30)
        );
        let out = std::fs::read_to_string(self.work.join("tail.out")).unwrap();
        let mut read = BTreeMap::new();
        for line in out.lines() {
            let (partition, list) = line.split_once(' ').unwrap_or((line, ""));
            let values = list.split(',').filter(|v| !v.is_empty()).map(str::to_string);
            read.insert(partition.parse().unwrap(), values.collect());
        }
        read
    }
}

/// Every broker's address: the producer must find the cluster whichever broker is down.
fn all_bootstrap(cluster: &Cluster) -> String {
    cluster
        .brokers
        .iter()
        .map(|b| b.bootstrap())
        .collect::<Vec<_>>()
        .join(",")
}

/// The leader of `__transaction_state` partition `partition` in Metadata via broker `via`.
fn txn_coordinator(cluster: &Cluster, via: i32, partition: i32) -> Result<i32, String> {
    let m = cluster.try_metadata_via(via)?;
    match partition_leaders(&m, TXN_STATE).get(&partition) {
        Some(&leader) if leader >= 0 => Ok(leader),
        other => Err(format!("{TXN_STATE}-{partition} has leader {other:?} via broker {via}")),
    }
}

/// How many TCP connections to `ports` on this machine were closed by their client side within the
/// last minute (sockets in TIME_WAIT, which Linux keeps 60 s): a broker that opened a connection per
/// inter-broker request leaves one per request.
fn recently_closed_connections_to(ports: &[u16]) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htan", "state", "time-wait"])
        .output()
        .expect("run ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last()?.rsplit_once(':')?.1.parse::<u16>().ok())
        .filter(|port| ports.contains(port))
        .count()
}

/// `TxnProducer paced` running in the background, its stdout in `<work>/paced.out`.
struct PacedProducer {
    child: Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl PacedProducer {
    fn start(work: &Path, bootstrap: &str, topic: &str, id: &str, transactions: u32, per: u32, pause_ms: u32) -> Self {
        let (out, err) = (work.join("paced.out"), work.join("paced.err"));
        let child = java_program(
            work,
            "TxnProducer",
            &[
                bootstrap,
                topic,
                id,
                "paced",
                &transactions.to_string(),
                &per.to_string(),
                &pause_ms.to_string(),
                // Longer than a failover can take on a loaded machine: a transaction that outlives its
                // timeout is aborted by the (new) coordinator, which fences the producer, as in Kafka.
                "60000",
            ],
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start java");
        PacedProducer { child, out, err }
    }

    /// Transaction -> committed, for every transaction the producer has ended so far.
    fn outcomes(&self) -> BTreeMap<u64, bool> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut words = l.split(' ');
                match (words.next(), words.next(), words.next()) {
                    (Some("txn"), Some(i), Some(outcome)) => Some((i.parse().ok()?, outcome == "committed")),
                    _ => None,
                }
            })
            .collect()
    }

    fn stderr_tail(&self) -> String {
        tail(&std::fs::read(&self.err).unwrap_or_default(), 40)
    }

    /// Waits until the producer has ended `count` transactions; fails if it exits first.
    #[track_caller]
    fn wait_ended(&mut self, cluster: &Cluster, count: usize, timeout: Duration) {
        cluster.wait_until(&format!("the producer to end {count} transactions"), timeout, || {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "the producer exited with {status} after {} transactions:\n{}\n{}",
                    self.outcomes().len(),
                    self.stderr_tail(),
                    cluster.logs()
                );
            }
            let ended = self.outcomes().len();
            if ended >= count {
                Ok(())
            } else {
                Err(format!("{ended} ended; stderr:\n{}", self.stderr_tail()))
            }
        });
    }

    /// Waits for the producer to exit 0 and print its totals; returns transaction -> committed.
    #[track_caller]
    fn finish(mut self, cluster: &Cluster, transactions: u32, timeout: Duration) -> BTreeMap<u64, bool> {
        let status = wait_child(&mut self.child, timeout);
        let outcomes = self.outcomes();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let committed = outcomes.values().filter(|c| **c).count();
        let totals = format!("committed={committed} aborted={}", outcomes.len() - committed);
        assert!(
            status.success() && outcomes.len() == transactions as usize && text.trim_end().ends_with(&totals),
            "the producer exited with {status} after {} of {transactions} transactions:\n{}\n{}",
            outcomes.len(),
            self.stderr_tail(),
            cluster.logs()
        );
        outcomes
    }
}

/// Checks values read at read_committed (partition -> values in offset order) against the producer's
/// outcomes: exactly the numbers of committed transactions, each once, ascending within a partition.
fn check_committed(read: &BTreeMap<i32, Vec<String>>, outcomes: &BTreeMap<u64, bool>, per: u64, who: &str) {
    let mut seen = BTreeSet::new();
    for (partition, values) in read {
        let mut last = None;
        for v in values {
            let n: u64 = v.parse().unwrap_or_else(|_| panic!("{who}: not a number: {v}"));
            let txn = n / per;
            assert!(seen.insert(n), "{who}: {n} read twice");
            assert_eq!(
                outcomes.get(&txn),
                Some(&true),
                "{who}: {n} of transaction {txn}, which the producer did not report committed"
            );
            assert!(last < Some(n), "{who}: partition {partition}: {n} after {last:?}");
            last = Some(n);
        }
    }
    let expected: BTreeSet<u64> = outcomes
        .iter()
        .filter(|(_, committed)| **committed)
        .flat_map(|(txn, _)| txn * per..(txn + 1) * per)
        .collect();
    let missing: Vec<&u64> = expected.difference(&seen).take(10).collect();
    assert!(
        missing.is_empty(),
        "{who}: {} committed records missing (read {}), first {missing:?}",
        expected.difference(&seen).count(),
        seen.len()
    );
}

#[test]
#[ignore = "run by scripts/test-all.sh beside the fault checker: cargo test --test transactions_cluster -- --ignored"]
fn transactions_ride_out_a_kill_of_their_coordinator_on_a_replicated_cluster() {
    let _serial = serial();
    let started = Instant::now();
    let mut cluster = Cluster::start_with(Options {
        broker_config: BROKER_CONFIG,
        // The restarted broker soon leads its preferred partitions again: the coordination moves back
        // to it while the producer runs, away from a live broker this time.
        coordinator_config: "leader.imbalance.check.interval.seconds=2\nleader.imbalance.per.broker.percentage=0",
        ..Options::default()
    });
    let topic = "tx";
    cluster.create_topic(topic, 3, 3);
    let leaders = cluster.wait_all_led(topic, 3);
    let work = tempfile::tempdir().unwrap();
    let id = "cluster-app";
    let txn_partition = txn_state_partition(id);
    const TRANSACTIONS: u32 = 200;
    const PER: u32 = 10;
    let bootstrap = all_bootstrap(&cluster);
    let tail_consumer = TailConsumer::start(work.path(), &bootstrap, topic, 3);
    let mut producer = PacedProducer::start(work.path(), &bootstrap, topic, id, TRANSACTIONS, PER, 100);

    // Some transactions in, find the coordinator: the leader of the id's __transaction_state
    // partition, which kafka-transactions (FindCoordinator) must agree with.
    producer.wait_ended(&cluster, 20, Duration::from_secs(120));
    let coordinator = cluster.wait_until(
        "the coordinator's partition to have a leader",
        Duration::from_secs(10),
        || txn_coordinator(&cluster, 1, txn_partition),
    );
    let describe = cluster.expect_ok(
        "kafka-transactions describe",
        &kafka_tool(
            "4",
            "transactions",
            &["--bootstrap-server", &bootstrap, "describe", "--transactional-id", id],
        ),
    );
    let described: Vec<BTreeMap<String, String>> = describe_table(&describe);
    assert_eq!(
        described.first().and_then(|row| row.get("CoordinatorId")).map(String::as_str),
        Some(coordinator.to_string().as_str()),
        "kafka-transactions describe names another coordinator than the leader of {TXN_STATE}-{txn_partition}:\n{describe}"
    );
    let remote: Vec<i32> = leaders
        .iter()
        .filter(|(_, l)| **l != coordinator)
        .map(|(p, _)| *p)
        .collect();
    assert!(
        !remote.is_empty(),
        "the coordinator {coordinator} leads every partition of {topic} ({leaders:?}): no remote markers"
    );
    eprintln!("coordinator of {id}: broker {coordinator}; {topic} leaders {leaders:?}");

    // kill -9 the coordinator mid-transaction (the producer pauses inside each transaction).
    let ended_at_kill = producer.outcomes().len();
    cluster.broker_mut(coordinator).kill9();
    let killed_at = Instant::now();
    eprintln!("killed broker {coordinator} after {ended_at_kill} transactions");
    let survivor = [1, 2, 3].into_iter().find(|b| *b != coordinator).unwrap();
    producer.wait_ended(&cluster, ended_at_kill + 20, Duration::from_secs(120));
    let moved_to = txn_coordinator(&cluster, survivor, txn_partition).unwrap();
    assert_ne!(moved_to, coordinator, "the coordination moved off the killed broker");
    eprintln!(
        "the producer ended 20 more transactions {:?} after the kill, coordinator now broker {moved_to}",
        killed_at.elapsed()
    );

    // The killed broker comes back, catches up as a follower and, as the preferred replica, leads its
    // partitions again: the coordination moves back to it from the live broker.
    cluster.broker_mut(coordinator).restart();
    cluster.wait_registered(&[1, 2, 3]);
    let restarted_at = Instant::now();
    cluster.wait_until(
        &format!("broker {coordinator} to coordinate {id} again"),
        Duration::from_secs(60),
        || match txn_coordinator(&cluster, survivor, txn_partition)? {
            leader if leader == coordinator => Ok(()),
            leader => Err(format!("coordinator: broker {leader}")),
        },
    );
    let ended_at_move = producer.outcomes().len();
    eprintln!(
        "broker {coordinator} coordinates {id} again {:?} after its restart, {ended_at_move} transactions ended",
        restarted_at.elapsed()
    );
    assert!(
        ended_at_move + 20 < TRANSACTIONS as usize,
        "the producer was almost done ({ended_at_move}) when the coordination moved back"
    );
    producer.wait_ended(&cluster, ended_at_move + 20, Duration::from_secs(120));
    let outcomes = producer.finish(&cluster, TRANSACTIONS, Duration::from_secs(240));
    let ports: Vec<u16> = cluster.brokers.iter().map(|b| b.port()).collect();
    let closed = recently_closed_connections_to(&ports);
    eprintln!("connections to the brokers closed by their clients in the last minute: {closed}");
    // A coordinator that connected for every WriteTxnMarkers to a remote leader closed two per
    // transaction here (~400); the clients' and this harness's own are a few dozen.
    assert!(
        closed < TRANSACTIONS as usize / 2,
        "{closed} connections to the brokers were closed within a minute: the coordinator does not keep \
         its connections for WriteTxnMarkers"
    );
    let committed = outcomes.values().filter(|c| **c).count();
    eprintln!(
        "the producer committed {committed} and aborted {} transactions",
        outcomes.len() - committed
    );

    verify_reads(&cluster, &bootstrap, topic, id, &outcomes, PER as u64, tail_consumer);
    eprintln!("whole scenario took {:?}", started.elapsed());
}

/// Checks what read_committed consumers see once the producer is done: the tailing consumer (what it
/// read while transactions were open and leaders moved), then librdkafka and Kafka's console consumer
/// from the beginning, each exactly the committed transactions' records; and that the id's last
/// transaction is complete on its coordinator.
fn verify_reads(
    cluster: &Cluster,
    bootstrap: &str,
    topic: &str,
    id: &str,
    outcomes: &BTreeMap<u64, bool>,
    per: u64,
    tail_consumer: TailConsumer,
) {
    let committed = outcomes.values().filter(|c| **c).count();
    // Exactly the committed transactions' records: for librdkafka reading along as they were written,
    // then for librdkafka and Kafka's Java consumer from the beginning.
    let tailed = tail_consumer.stop();
    check_committed(&tailed, outcomes, per, "librdkafka read_committed while producing");
    let expected = committed * per as usize;
    let read = librdkafka_partition_values(bootstrap, topic, 3, "read_committed", expected);
    check_committed(&read, outcomes, per, "librdkafka read_committed");
    let out = kafka_tool(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--property",
            "print.partition=true",
            "--max-messages",
            &expected.to_string(),
            "--timeout-ms",
            "30000",
        ],
    );
    let stdout = cluster.expect_ok("console-consumer read_committed", &out);
    let mut java: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for line in stdout.lines() {
        // "Partition:1\t42"
        let (partition, value) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("console-consumer line {line:?}"));
        let partition = partition.trim_start_matches("Partition:").parse().unwrap();
        java.entry(partition).or_default().push(value.to_string());
    }
    check_committed(&java, outcomes, per, "console-consumer read_committed");

    // Nothing is left open: the id's last transaction is complete on its (new) coordinator.
    let describe = cluster.expect_ok(
        "kafka-transactions describe",
        &kafka_tool(
            "4",
            "transactions",
            &["--bootstrap-server", bootstrap, "describe", "--transactional-id", id],
        ),
    );
    let state = describe_table(&describe)
        .first()
        .and_then(|row| row.get("TransactionState").cloned());
    assert!(
        matches!(state.as_deref(), Some("CompleteCommit" | "CompleteAbort")),
        "the last transaction is complete:\n{describe}"
    );
}

/// The rows of a whitespace-aligned table with a header line, as `kafka-transactions` prints it.
fn describe_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split_whitespace().collect();
    lines
        .map(|l| {
            columns
                .iter()
                .zip(l.split_whitespace())
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The log end offset and, at read_committed, the last stable offset of `topic`-`partition`, as
/// librdkafka's consumers query them (ListOffsets at each isolation level).
fn offsets(bootstrap: &str, topic: &str, partition: i32) -> Result<(i64, i64), String> {
    let script = r#"
from confluent_kafka import Consumer, TopicPartition
tp = TopicPartition(os.environ["TOPIC"], int(os.environ["PARTITION"]))
ends = []
for isolation in ("read_uncommitted", "read_committed"):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "offsets", "isolation.level": isolation})
    ends.append(c.get_watermark_offsets(tp, timeout=10)[1])
    c.close()
print(ends[0], ends[1])
"#;
    let partition_s = partition.to_string();
    let out = python_env(script, bootstrap, &[("TOPIC", topic), ("PARTITION", &partition_s)]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace().map(str::parse::<i64>);
    match (out.status.success(), words.next(), words.next()) {
        (true, Some(Ok(end)), Some(Ok(stable))) => Ok((end, stable)),
        _ => Err(format!("offsets query failed: {text}{}", tail(&out.stderr, 10))),
    }
}

/// An open transaction whose producer is gone keeps its records (and everything after them) from
/// read_committed consumers on the partition's new leader after its leader, which is also the
/// transaction's coordinator, is killed -9: the new leader's last stable offset is the transaction's
/// first offset, rebuilt from what it replicated. The new coordinator, having loaded the open
/// transaction from `__transaction_state`, aborts it at its timeout with markers on the new leader;
/// then the records written after it are visible and its own are not.
#[test]
#[ignore = "run by scripts/test-all.sh beside the fault checker: cargo test --test transactions_cluster -- --ignored"]
fn an_open_transaction_stays_invisible_on_a_new_leader_until_the_new_coordinator_aborts_it() {
    let _serial = serial();
    let mut cluster = Cluster::start_with(Options {
        broker_config: BROKER_CONFIG,
        ..Options::default()
    });
    let topic = "open";
    cluster.create_topic(topic, 1, 3);
    let leader = cluster.wait_all_led(topic, 1)[&0];
    // FindCoordinator creates __transaction_state; pick an id that the partition's leader coordinates.
    let bootstrap = all_bootstrap(&cluster);
    let _ = kafka_tool(
        "4",
        "transactions",
        &[
            "--bootstrap-server",
            &bootstrap,
            "describe",
            "--transactional-id",
            "none",
        ],
    );
    cluster.wait_all_led(TXN_STATE, TXN_STATE_PARTITIONS as usize);
    let id = (0..)
        .map(|n| format!("hanging-{n}"))
        .find(|id| txn_coordinator(&cluster, 1, txn_state_partition(id)) == Ok(leader))
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let stdout = work.path().join("hang.out");
    let mut hanging = java_program(work.path(), "TxnProducer", &[&bootstrap, topic, &id, "hang", "10"])
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start java");
    wait_for("the open transaction", Duration::from_secs(120), || {
        std::fs::read_to_string(&stdout).unwrap_or_default().contains("open")
    });
    let _ = hanging.kill();
    let _ = hanging.wait();
    let after = kcat_produce_with(&cluster, topic, 0, "after", 10, &["acks=all"]);
    assert_eq!(
        offsets(&bootstrap, topic, 0),
        Ok((20, 0)),
        "end and last stable offset before the kill"
    );

    cluster.broker_mut(leader).kill9();
    let killed_at = Instant::now();
    let survivor = [1, 2, 3].into_iter().find(|b| *b != leader).unwrap();
    let survivors: String = cluster
        .brokers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as i32 + 1 != leader)
        .map(|(_, b)| b.bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let new_leader = cluster.wait_until(
        &format!("{topic}-0 and {id}'s coordination to move off broker {leader}"),
        Duration::from_secs(30),
        || {
            let m = cluster.try_metadata_via(survivor)?;
            let now = partition_leaders(&m, topic)[&0];
            let coordinator = txn_coordinator(&cluster, survivor, txn_state_partition(&id))?;
            if now >= 0 && now != leader && coordinator >= 0 && coordinator != leader {
                Ok(now)
            } else {
                Err(format!("{topic}-0 led by {now}, {id} coordinated by {coordinator}"))
            }
        },
    );
    eprintln!(
        "broker {new_leader} leads {topic}-0 {:?} after the kill",
        killed_at.elapsed()
    );
    // Its high watermark reaches the records acknowledged before the kill once its follower has
    // fetched; its last stable offset stays at the open transaction's first offset.
    cluster.wait_until(
        "the new leader's end offset to be 20 and its last stable offset 0",
        Duration::from_secs(20),
        || match offsets(&survivors, topic, 0)? {
            (20, 0) => Ok(()),
            other => Err(format!("(end, last stable) = {other:?}")),
        },
    );
    let read = librdkafka_values(&survivors, topic, 1, "read_committed", 0);
    assert!(read.is_empty(), "read_committed on the new leader reads {read:?}");

    // The new coordinator aborts the transaction at its 20 s timeout; its markers go to the new leader.
    let expected: Vec<String> = after.iter().map(|(_, _, v)| v.clone()).collect();
    cluster.wait_until("the open transaction to be aborted", Duration::from_secs(60), || {
        let read = librdkafka_values(&survivors, topic, 1, "read_committed", 10);
        if read == expected {
            Ok(())
        } else {
            Err(format!("read_committed reads {read:?}"))
        }
    });
    eprintln!("aborted {:?} after the kill", killed_at.elapsed());
    let all = librdkafka_values(&survivors, topic, 1, "read_uncommitted", 20);
    assert_eq!(all.len(), 20, "the aborted records stay in the log: {all:?}");

    // The killed broker comes back as a follower and serves the same at read_committed once it
    // leads again (the abort marker replicated to it).
    cluster.broker_mut(leader).restart();
    cluster.wait_registered(&[1, 2, 3]);
    assert_eq!(offsets(&bootstrap, topic, 0).map(|(_, stable)| stable), Ok(21));
}

/// Consume-transform-produce on the cluster (`TxnProducer copy`: read_committed consumer in a group,
/// transactional producer, sendOffsetsToTransaction): the group's offsets are committed through
/// TxnOffsetCommit and made visible by markers on `__consumer_offsets`, whose leader (the group
/// coordinator) is another broker than the transaction coordinator or not. The group coordinator's
/// broker is killed -9 mid-copy and restarted; the app is restarted whenever it gives up, as an
/// orchestrator would. Every input record is in the output exactly once at read_committed: no
/// committed offsets were lost on the new group coordinator (that would copy records again) and no
/// transaction was half-applied.
#[test]
#[ignore = "run by scripts/test-all.sh beside the fault checker: cargo test --test transactions_cluster -- --ignored"]
fn consume_transform_produce_copies_exactly_once_through_a_kill_of_the_group_coordinator() {
    let _serial = serial();
    const COUNT: u64 = 20_000;
    let mut cluster = Cluster::start_with(Options {
        broker_config: BROKER_CONFIG,
        ..Options::default()
    });
    cluster.create_topic("in", 3, 3);
    cluster.create_topic("out", 3, 3);
    cluster.wait_all_led("in", 3);
    cluster.wait_all_led("out", 3);
    let bootstrap = all_bootstrap(&cluster);
    produce_numbers(&bootstrap, "in", COUNT);
    let work = tempfile::tempdir().unwrap();
    let copy = |n: u32| {
        let log = work.path().join(format!("copy-{n}.err"));
        java_program(
            work.path(),
            "TxnProducer",
            &[&bootstrap, "in", "copier", "copy", "out", "copy-group"],
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start java")
    };
    let copied = || high_watermark_total(&bootstrap, "out", 3);
    let mut app = copy(1);
    let mut runs = 1;
    cluster.wait_until("some records copied", Duration::from_secs(120), || {
        let at = copied();
        if at > 2000 {
            Ok(())
        } else {
            Err(format!("{at} in the output log"))
        }
    });
    let group_coordinator = partition_leader(&cluster, "__consumer_offsets", txn_state_partition("copy-group"));
    let txn_coordinator = partition_leader(&cluster, TXN_STATE, txn_state_partition("copier"));
    eprintln!("group coordinator: broker {group_coordinator}, transaction coordinator: broker {txn_coordinator}");
    let at = copied();
    cluster.broker_mut(group_coordinator).kill9();
    eprintln!("killed broker {group_coordinator} with {at} records in the output log");
    // Restart the killed broker once the copy has gone on without it.
    cluster.wait_until(
        "the copy to go on without the group coordinator",
        Duration::from_secs(120),
        || {
            if app.try_wait().expect("try_wait").is_some() {
                runs += 1;
                app = copy(runs);
            }
            match copied() {
                now if now > at + 500 => Ok(()),
                now => Err(format!("{now} records in the output log")),
            }
        },
    );
    cluster.broker_mut(group_coordinator).restart();
    cluster.wait_registered(&[1, 2, 3]);
    eprintln!(
        "restarted broker {group_coordinator} with {} records in the output log",
        copied()
    );
    let committed = || librdkafka_values(&bootstrap, "out", 3, "read_committed", 0).len() as u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let now = committed();
        if now >= COUNT {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {now} of {COUNT} copied; last app run's stderr:\n{}\n{}",
            tail(
                &std::fs::read(work.path().join(format!("copy-{runs}.err"))).unwrap_or_default(),
                40
            ),
            cluster.logs()
        );
        if app.try_wait().expect("try_wait").is_some() {
            runs += 1;
            app = copy(runs);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let _ = app.kill();
    let _ = app.wait();
    eprintln!("copied by {runs} run(s) of the app");
    let values = librdkafka_values(&bootstrap, "out", 3, "read_committed", COUNT as usize);
    let mut seen = BTreeSet::new();
    for v in &values {
        assert!(
            seen.insert(v.parse::<u64>().unwrap()),
            "{v} copied twice\n{}",
            cluster.logs()
        );
    }
    assert_eq!(seen.len() as u64, COUNT, "every input record copied exactly once");
}

/// The leader of `topic`-`partition` in Metadata via broker 1 (waiting up to 10 s for one).
#[track_caller]
fn partition_leader(cluster: &Cluster, topic: &str, partition: i32) -> i32 {
    cluster.wait_until(
        &format!("{topic}-{partition} to have a leader"),
        Duration::from_secs(10),
        || {
            let m = cluster.try_metadata_via(1)?;
            match partition_leaders(&m, topic).get(&partition) {
                Some(&leader) if leader >= 0 => Ok(leader),
                other => Err(format!("leader {other:?}")),
            }
        },
    )
}

/// A coordinator that hangs (SIGSTOP) instead of dying: it is fenced, its partitions (the id's
/// `__transaction_state` partition among them) move, and the producer goes on with the new
/// coordinator. Then it resumes as a zombie, still believing for a moment that it coordinates the id,
/// with whatever requests and marker sends were queued when it stopped; the coordinator epoch (the
/// partition's leader epoch, carried by markers) and its lost leadership keep it from disturbing the
/// transactions that went on meanwhile. Consumers see exactly the committed transactions.
#[test]
#[ignore = "run by scripts/test-all.sh beside the fault checker: cargo test --test transactions_cluster -- --ignored"]
fn a_hung_coordinator_that_resumes_after_losing_its_partitions_changes_nothing() {
    let _serial = serial();
    let cluster = Cluster::start_with(Options {
        broker_config: BROKER_CONFIG,
        ..Options::default()
    });
    let topic = "tx";
    cluster.create_topic(topic, 3, 3);
    cluster.wait_all_led(topic, 3);
    let work = tempfile::tempdir().unwrap();
    let id = "zombie-app";
    let txn_partition = txn_state_partition(id);
    const TRANSACTIONS: u32 = 150;
    const PER: u32 = 10;
    let bootstrap = all_bootstrap(&cluster);
    let tail_consumer = TailConsumer::start(work.path(), &bootstrap, topic, 3);
    let mut producer = PacedProducer::start(work.path(), &bootstrap, topic, id, TRANSACTIONS, PER, 100);
    producer.wait_ended(&cluster, 20, Duration::from_secs(120));
    let coordinator = partition_leader(&cluster, TXN_STATE, txn_partition);
    let survivor = [1, 2, 3].into_iter().find(|b| *b != coordinator).unwrap();

    cluster.broker(coordinator).pause();
    let paused_at = Instant::now();
    let ended_at_pause = producer.outcomes().len();
    eprintln!("paused broker {coordinator} after {ended_at_pause} transactions");
    let moved_to = cluster.wait_until(
        &format!("{id}'s coordination to move off the hung broker {coordinator}"),
        Duration::from_secs(30),
        || match txn_coordinator(&cluster, survivor, txn_partition)? {
            leader if leader != coordinator => Ok(leader),
            leader => Err(format!("coordinator: broker {leader}")),
        },
    );
    producer.wait_ended(&cluster, ended_at_pause + 15, Duration::from_secs(120));
    eprintln!(
        "broker {moved_to} coordinates {id}; 15 more transactions ended {:?} after the pause",
        paused_at.elapsed()
    );

    cluster.broker(coordinator).resume();
    let ended_at_resume = producer.outcomes().len();
    producer.wait_ended(&cluster, ended_at_resume + 15, Duration::from_secs(120));
    cluster.wait_registered(&[1, 2, 3]);
    let outcomes = producer.finish(&cluster, TRANSACTIONS, Duration::from_secs(240));
    let committed = outcomes.values().filter(|c| **c).count();
    eprintln!(
        "the producer committed {committed} and aborted {} transactions",
        outcomes.len() - committed
    );
    verify_reads(&cluster, &bootstrap, topic, id, &outcomes, PER as u64, tail_consumer);
}

/// `kafka-configs --alter` of one topic config, through `bootstrap`.
#[track_caller]
fn set_topic_config(cluster: &Cluster, bootstrap: &str, topic: &str, config: &str) {
    let out = kafka_tool(
        "4",
        "configs",
        &[
            "--bootstrap-server",
            bootstrap,
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
            "--add-config",
            config,
        ],
    );
    cluster.expect_ok(&format!("kafka-configs --alter {topic} {config}"), &out);
}

/// The `TransactionState` kafka-transactions describes for `id`, or why there is none.
fn transaction_state(bootstrap: &str, id: &str) -> Result<String, String> {
    let out = kafka_tool(
        "4",
        "transactions",
        &["--bootstrap-server", bootstrap, "describe", "--transactional-id", id],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    describe_table(&text)
        .first()
        .and_then(|row| row.get("TransactionState").cloned())
        .ok_or_else(|| format!("kafka-transactions describe: {text}{}", tail(&out.stderr, 10)))
}

/// A transaction the producer committed (EndTxn answered: PrepareCommit is in `__transaction_state`)
/// whose markers cannot be written yet (its partitions refuse acks=all writes: min.insync.replicas
/// above the replication factor) is completed by the next coordinator: the broker that decided it is
/// killed -9, the new leader of its `__transaction_state` partition loads it in PrepareCommit and keeps
/// retrying its markers, on partition leaders that moved too, until the partitions take them; then the
/// records are visible at read_committed and the transaction is CompleteCommit.
#[test]
#[ignore = "run by scripts/test-all.sh beside the fault checker: cargo test --test transactions_cluster -- --ignored"]
fn a_decided_transaction_is_completed_by_the_next_coordinator_after_a_kill() {
    let _serial = serial();
    let mut cluster = Cluster::start_with(Options {
        broker_config: BROKER_CONFIG,
        ..Options::default()
    });
    let topic = "decided";
    cluster.create_topic(topic, 3, 3);
    cluster.wait_all_led(topic, 3);
    let bootstrap = all_bootstrap(&cluster);
    let id = "decided-app";
    let work = tempfile::tempdir().unwrap();
    let stdout = work.path().join("prepare.out");
    let mut producer = java_program(work.path(), "TxnProducer", &[&bootstrap, topic, id, "prepare", "30"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(work.path().join("prepare.err")).unwrap())
        .spawn()
        .expect("start java");
    let said = |what: &str| std::fs::read_to_string(&stdout).unwrap_or_default().contains(what);
    wait_for("the records to be sent", Duration::from_secs(120), || said("sent"));

    // From now on the partitions refuse acks=all appends, markers included.
    set_topic_config(&cluster, &bootstrap, topic, "min.insync.replicas=4");
    std::thread::sleep(Duration::from_secs(3)); // every broker applies the config from metadata
    {
        use std::io::Write as _;
        let mut stdin = producer.stdin.take().unwrap();
        stdin.write_all(b"commit\n").unwrap();
    }
    wait_for("EndTxn to be answered", Duration::from_secs(60), || said("committed"));
    let status = wait_child(&mut producer, Duration::from_secs(60));
    assert!(status.success(), "the producer exited with {status}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        transaction_state(&bootstrap, id).as_deref(),
        Ok("PrepareCommit"),
        "decided, markers not written\n{}",
        cluster.logs()
    );
    assert!(
        librdkafka_values(&bootstrap, topic, 3, "read_committed", 0).is_empty(),
        "nothing is visible before the markers"
    );

    let coordinator = partition_leader(&cluster, TXN_STATE, txn_state_partition(id));
    cluster.broker_mut(coordinator).kill9();
    let survivor = [1, 2, 3].into_iter().find(|b| *b != coordinator).unwrap();
    let survivors: String = [1, 2, 3]
        .into_iter()
        .filter(|b| *b != coordinator)
        .map(|b| cluster.broker(b).bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let new_coordinator = cluster.wait_until(
        &format!("{id}'s coordination to move off broker {coordinator}"),
        Duration::from_secs(30),
        || match txn_coordinator(&cluster, survivor, txn_state_partition(id))? {
            leader if leader != coordinator => Ok(leader),
            leader => Err(format!("coordinator: broker {leader}")),
        },
    );
    eprintln!("killed broker {coordinator}; broker {new_coordinator} coordinates {id}");
    cluster.wait_until(
        "the new coordinator to have loaded the decided transaction",
        Duration::from_secs(30),
        || match transaction_state(&survivors, id)? {
            state if state == "PrepareCommit" => Ok(()),
            state => Err(format!("state {state}")),
        },
    );

    // The partitions take acks=all appends again: the new coordinator's markers get through.
    set_topic_config(&cluster, &survivors, topic, "min.insync.replicas=2");
    let expected: BTreeSet<String> = (0..30).map(|i| format!("prepared-{i}")).collect();
    cluster.wait_until(
        "the transaction's records to be visible",
        Duration::from_secs(60),
        || {
            let read: BTreeSet<String> = librdkafka_values(&survivors, topic, 3, "read_committed", 30)
                .into_iter()
                .collect();
            if read == expected {
                Ok(())
            } else {
                Err(format!("read_committed reads {} records", read.len()))
            }
        },
    );
    cluster.wait_until(
        "the transaction to be complete",
        Duration::from_secs(30),
        || match transaction_state(&survivors, id)? {
            state if state == "CompleteCommit" => Ok(()),
            state => Err(format!("state {state}")),
        },
    );
    assert!(
        cluster.broker(new_coordinator).log_text().contains("completing=1"),
        "broker {new_coordinator} loaded the transaction as one to complete"
    );
    cluster.broker_mut(coordinator).restart();
    cluster.wait_registered(&[1, 2, 3]);
    let read = librdkafka_values(&bootstrap, topic, 3, "read_committed", 30);
    assert_eq!(read.len(), 30, "each record once: {read:?}");
}
