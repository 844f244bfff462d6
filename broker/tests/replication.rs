//! Replication (issue 9), with real processes (3 coordinators, 3 brokers: `common/cluster.rs`) and
//! clients no one here wrote (Apache Kafka's Java tools and producer, kcat/librdkafka):
//!
//! - `kafka-topics --create --replication-factor 3` gives every partition three replicas, and
//!   `--describe` shows the full ISR once the followers have caught up;
//! - acks=all records survive a kill -9 of the partition leader: a new leader is elected from the ISR,
//!   the ISR shrinks, writes continue, the restarted broker catches up and rejoins the ISR, and it alone
//!   can then serve every record;
//! - `min.insync.replicas`: acks=all is refused (NOT_ENOUGH_REPLICAS) while the ISR is smaller, acks=1
//!   is not;
//! - Apache Kafka's idempotent Java producer (acks=all) rides out a leader kill -9 with RF 3: every
//!   number exactly once and in order, without waiting for the dead broker to return.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;

/// Waits until every partition of `topic` has `replicas` replicas and exactly `isr` in its ISR, as
/// `kafka-topics --describe` shows it; returns partition -> (leader, isr).
#[track_caller]
fn wait_isr(
    cluster: &Cluster,
    topic: &str,
    partitions: usize,
    isr: &[i32],
    timeout: Duration,
) -> BTreeMap<i32, (i32, Vec<i32>)> {
    let mut want = isr.to_vec();
    want.sort_unstable();
    cluster.wait_until(
        &format!("the ISR of every partition of {topic} to be {want:?}"),
        timeout,
        || {
            let out = cluster.topics(&["--describe", "--topic", topic]);
            let text = output_text(&out);
            let rows: Vec<BTreeMap<String, String>> = text
                .lines()
                .map(describe_fields)
                .filter(|f| f.contains_key("Partition"))
                .collect();
            let mut result = BTreeMap::new();
            for f in &rows {
                let list = |k: &str| -> Vec<i32> {
                    let mut v: Vec<i32> = f
                        .get(k)
                        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
                        .unwrap_or_default();
                    v.sort_unstable();
                    v
                };
                let leader = f.get("Leader").and_then(|l| l.parse().ok()).unwrap_or(-1);
                if list("Isr") != want || leader < 0 {
                    return Err(format!("not yet:\n{text}"));
                }
                result.insert(f["Partition"].parse().unwrap_or(-1), (leader, list("Isr")));
            }
            if result.len() == partitions {
                Ok(result)
            } else {
                Err(format!("{} partitions described:\n{text}", result.len()))
            }
        },
    )
}

#[test]
fn an_rf3_topic_keeps_acknowledged_records_through_a_leader_kill() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topic = "replicated";
    cluster.topics_ok(&[
        "--create",
        "--topic",
        topic,
        "--partitions",
        "3",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ]);
    let (rows, text) = cluster.describe(topic);
    for r in &rows {
        let mut replicas = r.replicas.clone();
        replicas.sort_unstable();
        assert_eq!(replicas, vec![1, 2, 3], "partition {} replicas:\n{text}", r.partition);
    }
    let before = wait_isr(&cluster, topic, 3, &[1, 2, 3], Duration::from_secs(20));
    let mut produced = Vec::new();
    for p in 0..3 {
        produced.extend(kcat_produce_with(&cluster, topic, p, "before", 200, &["acks=all"]));
    }

    // kill -9 the leader of partition 0 (never broker 1: clients bootstrap from it).
    let victim = before[&0].0;
    let victim = if victim == 1 {
        before.values().map(|(l, _)| *l).find(|l| *l != 1).unwrap_or(2)
    } else {
        victim
    };
    let killed = Instant::now();
    cluster.broker_mut(victim).kill9();
    let survivors: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != victim).collect();
    let after = wait_isr(
        &cluster,
        topic,
        3,
        &survivors,
        cluster.session_timeout + Duration::from_secs(20),
    );
    eprintln!(
        "ISR shrank to {survivors:?} {:?} after broker {victim}'s kill -9",
        killed.elapsed()
    );
    assert!(
        after.values().all(|(l, _)| *l != victim),
        "leaders after the kill: {after:?}"
    );

    // The leaders report it on their Prometheus endpoint: all three partitions under-replicated.
    let metric = |cluster: &Cluster, ids: &[i32], name: &str| -> i64 {
        ids.iter()
            .map(|id| common::metric_value(cluster.broker(*id).metrics_port(), name) as i64)
            .sum()
    };
    assert_eq!(
        metric(
            &cluster,
            &survivors,
            "kafka_server_replicamanager_underreplicatedpartitions"
        ),
        3,
        "every partition lost a replica"
    );
    assert!(metric(&cluster, &survivors, "kafka_server_replicamanager_isrshrinks_total") >= 1);

    // Writes go on with acks=all (two in-sync replicas meet min.insync.replicas=2).
    for p in 0..3 {
        produced.extend(kcat_produce_with(&cluster, topic, p, "during", 200, &["acks=all"]));
    }

    // The victim returns, catches up and rejoins the ISR of every partition.
    let restarted = Instant::now();
    cluster.broker_mut(victim).restart();
    wait_isr(&cluster, topic, 3, &[1, 2, 3], Duration::from_secs(30));
    eprintln!(
        "broker {victim} back in every ISR {:?} after its restart",
        restarted.elapsed()
    );
    cluster.wait_until(
        "the leaders to count no under-replicated partition",
        Duration::from_secs(10),
        || match metric(
            &cluster,
            &[1, 2, 3],
            "kafka_server_replicamanager_underreplicatedpartitions",
        ) {
            0 => Ok(()),
            n => Err(format!("{n} under-replicated")),
        },
    );
    assert!(metric(&cluster, &[1, 2, 3], "kafka_server_replicamanager_isrexpands_total") >= 3);

    let expected = sorted(produced);
    assert_eq!(
        sorted(kcat_consume(&cluster, topic)),
        expected,
        "records read vs produced\n{}",
        cluster.logs()
    );

    // The restarted broker has every record itself: with the two others stopped (controlled
    // shutdown), it leads everything and serves it all. Bootstrap through it.
    for other in survivors.iter().rev() {
        let status = cluster.broker_mut(*other).stop();
        assert!(
            status.success(),
            "broker {other} exited with {status}\n{}",
            cluster.logs()
        );
    }
    let via = cluster.broker(victim).bootstrap();
    let out = kcat_timeout(
        &[
            "-C",
            "-b",
            &via,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p\t%k\t%s\n",
        ],
        b"",
        Duration::from_secs(60),
    );
    let text = cluster.expect_ok("kcat -C via the restarted broker", &out);
    let mut read: Vec<Record> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.splitn(3, '\t').collect();
            (cols[0].parse().unwrap(), cols[1].to_string(), cols[2].to_string())
        })
        .collect();
    read.sort();
    assert_eq!(
        read,
        expected,
        "the restarted replica alone serves every record\n{}",
        cluster.logs()
    );
}

#[test]
fn acks_all_is_refused_below_min_insync_replicas() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topic = "strict";
    cluster.topics_ok(&[
        "--create",
        "--topic",
        topic,
        "--partitions",
        "1",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=3",
    ]);
    let isr = wait_isr(&cluster, topic, 1, &[1, 2, 3], Duration::from_secs(20));
    kcat_produce_with(&cluster, topic, 0, "full", 10, &["acks=all"]);
    let victim = [2, 3].into_iter().find(|b| *b != isr[&0].0).unwrap();
    cluster.broker_mut(victim).kill9();
    let rest: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != victim).collect();
    wait_isr(
        &cluster,
        topic,
        1,
        &rest,
        cluster.session_timeout + Duration::from_secs(20),
    );

    let bootstrap = cluster.bootstrap();
    let out = kcat_timeout(
        &[
            "-P",
            "-b",
            &bootstrap,
            "-t",
            topic,
            "-p",
            "0",
            "-X",
            "acks=all",
            "-X",
            "message.timeout.ms=5000",
            // librdkafka retries a retriable error until the timeout; without retries it reports it.
            "-X",
            "retries=0",
        ],
        b"refused\n",
        Duration::from_secs(30),
    );
    let text = output_text(&out);
    assert!(
        text.contains("Not enough in-sync replicas") || text.contains("NOT_ENOUGH_REPLICAS"),
        "acks=all below min.insync.replicas must fail with NOT_ENOUGH_REPLICAS:\n{text}\n{}",
        cluster.logs()
    );
    // acks=1 is not bound by min.insync.replicas.
    kcat_produce_with(&cluster, topic, 0, "one", 5, &["acks=1"]);
    let read = kcat_consume(&cluster, topic);
    assert_eq!(
        read.len(),
        15,
        "10 acks=all + 5 acks=1 records, and not the refused one: {read:?}"
    );
}

/// Apache Kafka's Java producer (idempotent, acks=all: its defaults) sends numbered records through
/// broker 1 to six RF 3 partitions while the leader of some of them is killed with SIGKILL. Leadership
/// moves to an in-sync follower, so the producer carries on without the dead broker (it is never
/// restarted); every number is in the topic exactly once, in order per partition.
#[test]
fn java_idempotent_producer_rides_out_a_leader_kill_without_waiting_for_it() {
    let _serial = serial();
    const COUNT: u64 = 300_000;
    let mut cluster = Cluster::start();
    let topic = "numbers";
    cluster.create_topic(topic, 6, 3);
    let leaders = wait_isr(&cluster, topic, 6, &[1, 2, 3], Duration::from_secs(20));
    let victim = leaders.values().map(|(l, _)| *l).find(|l| *l != 1).unwrap_or(2);
    let work = tempfile::tempdir().unwrap();
    let mut producer = NumberedProducer::start(&cluster.bootstrap(), topic, COUNT, None, work.path());
    wait_for("the first records", Duration::from_secs(120), || {
        high_watermark_total(&cluster.bootstrap(), topic, 6) >= (COUNT / 20) as i64
    });
    assert!(
        producer.is_running(),
        "the producer finished before the kill: the test would prove nothing"
    );
    cluster.broker_mut(victim).kill9();
    producer.expect_all_acknowledged(Duration::from_secs(240), &cluster.logs());
    let out = check_numbered(&cluster.bootstrap(), topic, COUNT, 6);
    assert_eq!(out.trim(), format!("ok {COUNT}"));
}

/// A librdkafka consumer group (confluent-kafka) and a Java consumer group (Kafka's console consumer)
/// keep consuming through a kill -9 of the broker that leads their `__consumer_offsets` partition
/// (RF 3): the new leader loads the groups from its replica, both resume from their committed offsets,
/// and every record produced is consumed by each group. The librdkafka consumer commits after every
/// batch, so after the failover it re-reads at most what it had not committed.
#[test]
fn consumer_groups_carry_on_when_their_coordinator_is_killed() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topic = "events";
    cluster.create_topic(topic, 3, 3);
    wait_isr(&cluster, topic, 3, &[1, 2, 3], Duration::from_secs(20));
    // Two groups on the same __consumer_offsets partition (50 partitions, the default).
    let rd_group = "librdkafka-group".to_string();
    let target = offsets_partition(&rd_group, 50);
    let java_group = (0..10_000)
        .map(|i| format!("java-group-{i}"))
        .find(|g| offsets_partition(g, 50) == target)
        .expect("a Java group name on the same partition");
    let all = [1, 2, 3].map(|id| cluster.broker(id).bootstrap()).join(",");

    // A producer thread: 30 rounds of 200 acks=all records, one round every 0.4 s.
    let work = tempfile::tempdir().unwrap();
    let rd_script = r#"
from confluent_kafka import Consumer
seen = {}
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": os.environ["GROUP"], "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 10000})
c.subscribe([os.environ["TOPIC"]])
want = int(os.environ["WANT"])
deadline = time.time() + 150
progress = open(os.environ["PROGRESS"], "w")
while time.time() < deadline and len(seen) < want:
    msgs = c.consume(num_messages=100, timeout=0.5)
    batch = [m for m in msgs if not m.error()]
    for m in batch:
        v = m.value().decode()
        seen[v] = seen.get(v, 0) + 1
    if batch:
        retry_coordinator(lambda: c.commit(asynchronous=False), "commit", timeout=60)
        progress.write(f"{len(seen)}\n"); progress.flush()
    time.sleep(0.05)
c.close()
dups = sum(n - 1 for n in seen.values())
print(json.dumps({"distinct": len(seen), "duplicates": dups}))
"#;
    let want = 30 * 200;
    let want_s = want.to_string();
    let progress = work.path().join("progress");
    let progress_s = progress.display().to_string();
    let mut rd = python_spawn(
        rd_script,
        &all,
        &[
            ("GROUP", &rd_group),
            ("TOPIC", topic),
            ("WANT", &want_s),
            ("PROGRESS", &progress_s),
        ],
        work.path(),
        "rdkafka",
    );
    let java_out = std::fs::File::create(work.path().join("java.out")).unwrap();
    let java_err = std::fs::File::create(work.path().join("java.err")).unwrap();
    let mut java = std::process::Command::new(repo_root().join("scripts/kafka"))
        .args([
            "4",
            "console-consumer",
            "--bootstrap-server",
            &all,
            "--topic",
            topic,
            "--group",
            &java_group,
            "--from-beginning",
            "--timeout-ms",
            "20000",
            "--consumer-property",
            "auto.commit.interval.ms=500",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(java_out)
        .stderr(java_err)
        .spawn()
        .expect("start the Java console consumer");

    let mut produced = Vec::new();
    let mut victim = None;
    for round in 0..30 {
        produced.extend(kcat_produce_with(
            &cluster,
            topic,
            round % 3,
            &format!("r{round}"),
            200,
            &["acks=all"],
        ));
        if round == 10 {
            let m = cluster.metadata_via(1);
            let leaders = partition_leaders(&m, "__consumer_offsets");
            let leader = leaders[&target];
            eprintln!("killing broker {leader}, leader of __consumer_offsets-{target}");
            cluster.broker_mut(leader).kill9();
            victim = Some(leader);
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let victim = victim.unwrap();
    let status = wait_child(&mut rd, Duration::from_secs(200));
    let rd_out = std::fs::read_to_string(work.path().join("rdkafka.out")).unwrap_or_default();
    let rd_err = std::fs::read_to_string(work.path().join("rdkafka.err")).unwrap_or_default();
    assert!(
        status.success(),
        "librdkafka group consumer failed:\n{rd_out}\n{rd_err}\n{}",
        cluster.logs()
    );
    let summary: BTreeMap<String, i64> = rd_out
        .trim()
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| (k.trim().trim_matches('"').to_string(), v.trim().parse().unwrap_or(-1)))
        .collect();
    assert_eq!(
        summary.get("distinct"),
        Some(&(want as i64)),
        "librdkafka group: {rd_out}\n{rd_err}"
    );
    // Commits after every batch of at most 100: a failover re-reads at most the uncommitted batches.
    assert!(
        summary.get("duplicates").is_some_and(|d| *d <= 300),
        "the librdkafka group re-read too much after the failover (not resuming from its commits): {rd_out}"
    );

    let status = wait_child(&mut java, Duration::from_secs(200));
    let java_text = std::fs::read_to_string(work.path().join("java.out")).unwrap_or_default();
    let java_err = std::fs::read_to_string(work.path().join("java.err")).unwrap_or_default();
    let seen: std::collections::BTreeSet<&str> = java_text.lines().filter(|l| !l.is_empty()).collect();
    let missing: Vec<&str> = produced
        .iter()
        .map(|(_, _, v)| v.as_str())
        .filter(|v| !seen.contains(v))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "the Java group missed records (first {missing:?}); exit {status}\n{}\n{}",
        tail(java_err.as_bytes(), 20),
        cluster.logs()
    );
    eprintln!(
        "after killing broker {victim}: librdkafka group {rd_out}, Java group read {} lines for {} records",
        java_text.lines().count(),
        produced.len()
    );
    // Both groups' committed offsets reached the end, on the new coordinator.
    let describe = cluster.expect_ok(
        "kafka-consumer-groups --describe",
        &kafka_tool(
            "4",
            "consumer-groups",
            &[
                "--bootstrap-server",
                &cluster.bootstrap(),
                "--describe",
                "--group",
                &java_group,
            ],
        ),
    );
    let lags: Vec<String> = describe
        .lines()
        .filter(|l| l.contains(topic))
        .filter_map(|l| l.split_whitespace().nth(5).map(str::to_string))
        .collect();
    assert!(
        lags.len() == 3 && lags.iter().all(|lag| lag == "0"),
        "the Java group's committed offsets are at the end (LAG 0):\n{describe}"
    );
}

/// Apache Kafka's `kafka-producer-perf-test --producer-props acks=all` keeps writing to an RF 3 /
/// min.insync.replicas=2 topic through a rolling restart of all three brokers (SIGTERM: a controlled
/// shutdown hands leadership to another in-sync replica; each broker is back in every ISR before the
/// next one stops): every record is acknowledged and no error reaches the application.
#[test]
fn producer_perf_test_with_acks_all_rides_out_a_rolling_restart() {
    let _serial = serial();
    const RECORDS: u64 = 150_000;
    let mut cluster = Cluster::start();
    let topic = "rolling";
    cluster.topics_ok(&[
        "--create",
        "--topic",
        topic,
        "--partitions",
        "6",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ]);
    wait_isr(&cluster, topic, 6, &[1, 2, 3], Duration::from_secs(20));
    let all = [1, 2, 3].map(|id| cluster.broker(id).bootstrap()).join(",");
    let work = tempfile::tempdir().unwrap();
    let mut perf = spawn_producer_perf_test(&all, topic, RECORDS, 5000, work.path());
    std::thread::sleep(Duration::from_secs(3));
    for id in [1, 2, 3] {
        let stopped = Instant::now();
        let status = cluster.broker_mut(id).stop();
        assert!(
            status.success(),
            "broker {id} exited with {status} on SIGTERM\n{}",
            cluster.logs()
        );
        cluster.broker_mut(id).restart();
        wait_isr(&cluster, topic, 6, &[1, 2, 3], Duration::from_secs(40));
        eprintln!("broker {id} rolled and back in every ISR in {:?}", stopped.elapsed());
        assert!(
            perf.try_wait().expect("try_wait").is_none() || id == 3,
            "the perf test finished during the roll: the test would prove less than it says"
        );
    }
    let status = wait_child(&mut perf, Duration::from_secs(180));
    let out = std::fs::read_to_string(work.path().join("perf.out")).unwrap_or_default();
    let err = std::fs::read_to_string(work.path().join("perf.err")).unwrap_or_default();
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        status.success() && summary.starts_with(&format!("{RECORDS} records sent")),
        "perf test: {status}\n{}\n{}",
        tail(out.as_bytes(), 5),
        tail(err.as_bytes(), 30)
    );
    // What reaches the application: the perf test prints a failed send's exception (a stack trace) from
    // its callback. The client's own log lines ("[...] WARN ... retrying") name the retriable errors it
    // handled itself (NOT_LEADER_OR_FOLLOWER from a leader that handed over with acks=all requests
    // still waiting, as Kafka's DelayedProduce answers): those never reach the application.
    let reached: Vec<&str> = err
        .lines()
        .chain(out.lines())
        .filter(|l| !l.starts_with('[') && l.contains("Exception"))
        .collect();
    assert!(
        reached.is_empty(),
        "an error reached the producer application:\n{}\n{}",
        reached.join("\n"),
        tail(err.as_bytes(), 30)
    );
    let retried = err.lines().filter(|l| l.contains("retrying")).count();
    eprintln!("the producer retried {retried} times on its own (its WARN lines)");
    eprintln!("perf test through the roll: {summary}");
    let offsets = cluster.expect_ok(
        "get-offsets",
        &kafka_tool(
            "4",
            "get-offsets",
            &["--bootstrap-server", &cluster.bootstrap(), "--topic", topic],
        ),
    );
    let total: u64 = offsets
        .lines()
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum();
    assert!(
        total >= RECORDS,
        "the topic holds {total} records, fewer than the {RECORDS} acknowledged:\n{offsets}"
    );
}

/// `kafka-reassign-partitions --execute` moves two partitions off broker 1 while Apache Kafka's
/// idempotent Java producer writes to them: the new replicas catch up and join the ISR, the
/// reassignment completes (`--verify`), leadership moves off the removed replica, broker 1 deletes its
/// copies, and every number is there exactly once, in order.
#[test]
fn kafka_reassign_partitions_moves_partitions_under_a_running_producer() {
    let _serial = serial();
    const COUNT: u64 = 60_000;
    let cluster = Cluster::start();
    let topic = "moving";
    cluster.topics_ok(&["--create", "--topic", topic, "--replica-assignment", "1:2,1:2"]);
    cluster.wait_all_led(topic, 2);
    wait_isr(&cluster, topic, 2, &[1, 2], Duration::from_secs(20));
    let work = tempfile::tempdir().unwrap();
    let mut producer = NumberedProducer::start(&cluster.bootstrap(), topic, COUNT, Some(4000), work.path());
    std::thread::sleep(Duration::from_secs(4));
    let plan = work.path().join("plan.json");
    std::fs::write(
        &plan,
        format!(
            r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":[3,2]}},{{"topic":"{topic}","partition":1,"replicas":[2,3]}}]}}"#
        ),
    )
    .unwrap();
    let plan_s = plan.display().to_string();
    let bootstrap = cluster.bootstrap();
    let started = Instant::now();
    let execute = cluster.expect_ok(
        "kafka-reassign-partitions --execute",
        &kafka_tool(
            "4",
            "reassign-partitions",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--reassignment-json-file",
                &plan_s,
                "--execute",
            ],
        ),
    );
    assert!(
        execute.contains("Successfully started partition reassignment"),
        "--execute:\n{execute}"
    );
    assert!(
        producer.is_running(),
        "the producer finished before the reassignment started: the test would prove less than it says"
    );
    let verified = cluster.wait_until(
        "--verify to report both reassignments complete",
        Duration::from_secs(60),
        || {
            let out = kafka_tool(
                "4",
                "reassign-partitions",
                &[
                    "--bootstrap-server",
                    &bootstrap,
                    "--reassignment-json-file",
                    &plan_s,
                    "--verify",
                ],
            );
            let text = output_text(&out);
            let done = [0, 1]
                .iter()
                .all(|p| text.contains(&format!("Reassignment of partition {topic}-{p} is completed")));
            // Kafka's tool then clears throttles (IncrementalAlterConfigs on brokers and the topic).
            if done && out.status.success() && !text.contains("Error") {
                Ok(text)
            } else {
                Err(text)
            }
        },
    );
    eprintln!("reassignment completed in {:?}:\n{verified}", started.elapsed());
    let (rows, text) = cluster.describe(topic);
    assert_eq!(rows[0].replicas, vec![3, 2], "partition 0:\n{text}");
    assert_eq!(rows[1].replicas, vec![2, 3], "partition 1:\n{text}");
    assert!(
        rows.iter().all(|r| r.leader.is_some_and(|l| l != 1)),
        "broker 1 leads nothing of {topic}:\n{text}"
    );
    cluster.wait_until("broker 1 to delete its copies", Duration::from_secs(10), || {
        let left: Vec<i32> = [0, 1]
            .into_iter()
            .filter(|p| cluster.broker(1).partition_dir(topic, *p).exists())
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("still on broker 1: {left:?}"))
        }
    });

    producer.expect_all_acknowledged(Duration::from_secs(120), &cluster.logs());
    assert_eq!(
        check_numbered(&cluster.bootstrap(), topic, COUNT, 2).trim(),
        format!("ok {COUNT}")
    );
    cluster.topics_ok(&["--describe", "--topic", topic]);
    // The finished reassignment is no longer listed.
    let listed = cluster.expect_ok(
        "kafka-reassign-partitions --list",
        &kafka_tool(
            "4",
            "reassign-partitions",
            &["--bootstrap-server", &bootstrap, "--list"],
        ),
    );
    assert!(!listed.contains(topic), "--list after completion:\n{listed}");
}
