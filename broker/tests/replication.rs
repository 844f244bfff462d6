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
            .map(|id| {
                let text = common::http_get(cluster.broker(*id).metrics_port(), "/metrics");
                text.lines()
                    .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("{name} missing from broker {id}'s /metrics:\n{text}"))
                    as i64
            })
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
    let classpath = numbered_producer_classpath(work.path());
    let log4j = tool_cache().join("kafka-4/log4j2.properties");
    let (out_path, err_path) = (work.path().join("producer.out"), work.path().join("producer.err"));
    let mut producer = std::process::Command::new("java")
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(&classpath)
        .arg("NumberedProducer")
        .arg(cluster.bootstrap())
        .arg(topic)
        .arg(COUNT.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start java");
    let progress = |cluster: &Cluster| -> i64 {
        let script = r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "progress"})
total = 0
for p in range(6):
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition("numbers", p), timeout=5)
        total += hi
    except Exception:
        pass
print(total)
"#;
        String::from_utf8_lossy(&python(script, &cluster.bootstrap()).stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    wait_for("the first records", Duration::from_secs(120), || {
        progress(&cluster) >= (COUNT / 20) as i64
    });
    assert!(
        producer.try_wait().expect("try_wait").is_none(),
        "the producer finished before the kill: the test would prove nothing"
    );
    cluster.broker_mut(victim).kill9();
    let status = wait_child(&mut producer, Duration::from_secs(240));
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success() && stdout.trim() == format!("acked={COUNT} failed=0"),
        "the producer did not get every record acknowledged: {stdout}\n{}\n{}",
        tail(stderr.as_bytes(), 30),
        cluster.logs()
    );
    let out = check_numbered(&cluster.bootstrap(), topic, COUNT, 6);
    assert_eq!(out.trim(), format!("ok {COUNT}"));
}
