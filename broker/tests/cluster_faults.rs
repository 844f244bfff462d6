//! Issue 4's acceptance, broker failures (fixture: `common/cluster.rs`):
//!
//! 3. a broker killed -9 is fenced within its session timeout (it leaves Metadata and its partitions lose
//!    their leader), the other partitions keep taking writes, and the restarted broker rejoins, leads its
//!    partitions again and serves every record produced before the kill; a Java idempotent producer
//!    rides out such a kill with every record exactly once; a topic deleted and re-created while a
//!    broker was down does not get that broker's old data.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;

// ------------------------------------------------------------------------------------------------
// 3. A killed broker is fenced, and rejoins with its data
// ------------------------------------------------------------------------------------------------

#[test]
fn killed_broker_is_fenced_and_rejoins_with_its_data() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topic = "keyed";
    cluster.create_topic(topic, 6, 1);
    let leaders = cluster.wait_all_led(topic, 6);
    let on_2: BTreeSet<i32> = leaders.iter().filter(|(_, l)| **l == 2).map(|(p, _)| *p).collect();
    assert!(
        !on_2.is_empty(),
        "broker 2 leads none of the 6 partitions: {leaders:?}\n{}",
        cluster.logs()
    );
    for id in [1, 2, 3] {
        let health = common::http_get(cluster.broker(id).metrics_port(), "/health");
        assert!(
            health.starts_with("HTTP/1.1 200") && health.contains("registered (broker epoch"),
            "broker {id} /health should say it is registered and unfenced:\n{health}"
        );
    }
    let mut produced: Vec<Record> = Vec::new();
    for p in 0..6 {
        produced.extend(kcat_produce(&cluster, topic, p, "before", 20));
    }

    // kill -9 broker 2: within its session timeout (plus slack) broker 1 no longer names it, and its
    // partitions have no leader (replication factor 1: nowhere to move them).
    let killed_at = Instant::now();
    cluster.broker_mut(2).kill9();
    let limit = cluster.session_timeout + Duration::from_secs(6);
    cluster.wait_until(
        "broker 2 to leave Metadata via broker 1 and its partitions to lose their leader",
        limit,
        || {
            let m = cluster.try_metadata_via(1)?;
            let brokers = broker_ids(&m);
            let leaders = partition_leaders(&m, topic);
            let offline = on_2.iter().all(|p| leaders.get(p) == Some(&-1));
            let others_led = leaders.iter().all(|(p, l)| on_2.contains(p) || (*l >= 0 && *l != 2));
            if !brokers.contains(&2) && offline && others_led && leaders.len() == 6 {
                Ok(())
            } else {
                Err(format!(
                    "brokers {brokers:?}, leaders {leaders:?} (broker 2 led {on_2:?})"
                ))
            }
        },
    );
    eprintln!("broker 2 fenced {:?} after its kill -9", killed_at.elapsed());
    let (rows, text) = cluster.describe(topic);
    for r in &rows {
        if on_2.contains(&r.partition) {
            assert_eq!(
                r.leader, None,
                "partition {} of the dead broker 2:\n{text}",
                r.partition
            );
        } else {
            assert!(
                r.leader.is_some_and(|l| l != 2),
                "partition {} should keep its leader:\n{text}",
                r.partition
            );
        }
    }

    // The other partitions keep taking writes.
    for p in (0..6).filter(|p| !on_2.contains(p)) {
        produced.extend(kcat_produce(&cluster, topic, p, "during", 10));
    }

    // Broker 2 restarts (the harness waits until it accepts connections, i.e. has registered), rejoins
    // and leads its partitions again.
    let restarted_at = Instant::now();
    cluster.broker_mut(2).restart();
    cluster.wait_until(
        "broker 2 to be back in Metadata via broker 1, leading its partitions",
        Duration::from_secs(15),
        || {
            let m = cluster.try_metadata_via(1)?;
            let brokers = broker_ids(&m);
            let now = partition_leaders(&m, topic);
            if brokers == BTreeSet::from([1, 2, 3]) && now == leaders {
                Ok(())
            } else {
                Err(format!(
                    "brokers {brokers:?}, leaders {now:?} (before the kill: {leaders:?})"
                ))
            }
        },
    );
    eprintln!("broker 2 rejoined {:?} after its restart", restarted_at.elapsed());
    cluster.wait_registered(&[1, 2, 3]);

    let read = sorted(kcat_consume(&cluster, topic));
    let expected = sorted(produced);
    assert_eq!(
        per_partition(&read),
        per_partition(&expected),
        "records per partition read (left) vs produced (right)\n{}",
        cluster.logs()
    );
    assert_eq!(read, expected, "records read vs produced");
}

/// Clients recover from leadership changes: Apache Kafka's Java producer (idempotent, acks=all, the
/// defaults) sends numbered records through broker 1 to six partitions while broker 2 is killed with
/// SIGKILL and restarted. Its partitions are offline meanwhile (NOT_LEADER_OR_FOLLOWER /
/// LEADER_NOT_AVAILABLE); the producer waits, finds the leader again and every number is in the topic
/// exactly once, in order per partition.
#[test]
fn java_producer_rides_out_a_broker_kill() {
    let _serial = serial();
    const COUNT: u64 = 500_000;
    let mut cluster = Cluster::start();
    let topic = "numbers";
    cluster.create_topic(topic, 6, 1);
    cluster.wait_all_led(topic, 6);
    let work = tempfile::tempdir().unwrap();
    let mut producer = NumberedProducer::start(&cluster.bootstrap(), topic, COUNT, None, work.path());
    // Early, so the kill lands while most records are still to be sent (a fast producer finishes
    // 500,000 in a few seconds).
    wait_for("the first records", Duration::from_secs(120), || {
        high_watermark_total(&cluster.bootstrap(), topic, 6) >= (COUNT / 25) as i64
    });
    assert!(
        producer.is_running(),
        "the producer finished before broker 2 was killed: the test would prove nothing"
    );
    cluster.broker_mut(2).kill9();
    std::thread::sleep(Duration::from_secs(2));
    // Still not done two seconds after the kill: some records wait for broker 2's partitions.
    assert!(
        producer.is_running(),
        "the producer finished while broker 2 was down: the test would prove nothing"
    );
    cluster.broker_mut(2).restart();

    producer.expect_all_acknowledged(Duration::from_secs(240), &cluster.logs());
    let out = check_numbered(&cluster.bootstrap(), topic, COUNT, 6);
    assert_eq!(out.trim(), format!("ok {COUNT}"));
}

/// A topic deleted and created again (same name, new topic id) while one of its brokers was down must
/// not get that broker's old records: the broker sees the id in `partition.metadata` differ and drops
/// the old data when it returns.
#[test]
fn recreated_topic_does_not_resurrect_old_data() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topic = "reborn";
    cluster.topics_ok(&["--create", "--topic", topic, "--replica-assignment", "2,2,2"]);
    cluster.wait_all_led(topic, 3);
    for p in 0..3 {
        kcat_produce(&cluster, topic, p, "old", 10);
    }
    let status = cluster.broker_mut(2).stop();
    assert!(status.success(), "broker 2 exited with {status}\n{}", cluster.logs());
    cluster.topics_ok(&["--delete", "--topic", topic]);
    cluster.wait_until("the deletion to reach broker 1", Duration::from_secs(10), || {
        let m = cluster.try_metadata_via(1)?;
        match topic_names(&m).contains(topic) {
            false => Ok(()),
            true => Err("still listed".into()),
        }
    });
    cluster.topics_ok(&["--create", "--topic", topic, "--replica-assignment", "2,2,2"]);
    cluster.broker_mut(2).restart();
    cluster.wait_all_led(topic, 3);
    let read = kcat_consume(&cluster, topic);
    assert!(
        read.is_empty(),
        "the re-created topic must start empty, but returned the old topic's records: {:?}\n{}",
        &read[..read.len().min(5)],
        cluster.logs()
    );
    let log = cluster.broker(2).log_text();
    assert!(
        log.contains("belongs to an earlier topic of the same name"),
        "broker 2 should say why it dropped the old data\n{}",
        cluster.logs()
    );
    kcat_produce(&cluster, topic, 0, "new", 5);
    assert_eq!(kcat_consume(&cluster, topic).len(), 5, "{}", cluster.logs());
}

/// A broker whose coordinator lost its data (a wiped `dataDir`: a new, empty cluster) refuses that
/// cluster's metadata and stops with the reason; none of its partitions' data is touched. (It used to
/// install the empty image before registration was refused, and removed every partition as "deleted".)
#[test]
fn a_wiped_ensemble_never_gets_a_brokers_data_deleted() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data_dir = dir.path().join("zk");
    let props = format!("dataDir={}\nclientPort={port}\nmetrics.port=-1\n", data_dir.display());
    let mut zk = common::coordinator::Coordinator::start(dir.path(), "zk", &props, port);
    let connect = zk.address();
    let mut broker = Broker::start(&[
        ("zookeeper.connect", connect.as_str()),
        ("initial.broker.registration.timeout.ms", "8000"),
    ]);
    create_topic(&broker, "precious", 2);
    for p in ["0", "1"] {
        let out = kcat(
            &["-P", "-b", &broker.bootstrap(), "-t", "precious", "-p", p],
            b"one\ntwo\nthree\n",
        );
        expect_success("kcat -P", &out);
    }
    let sizes = |broker: &Broker| -> Vec<u64> {
        (0..2)
            .map(|p| {
                broker
                    .segment_files("precious", p)
                    .iter()
                    .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
                    .sum()
            })
            .collect()
    };
    let before = sizes(&broker);
    assert!(before.iter().all(|s| *s > 0), "records were written: {before:?}");
    broker.stop();
    zk.stop();

    std::fs::remove_dir_all(&data_dir).unwrap();
    zk.spawn();
    broker.relaunch();
    let status = broker.wait_exit(Duration::from_secs(40));
    let log = broker.log_text();
    assert!(
        status.is_some_and(|s| !s.success()),
        "the broker must refuse the wiped ensemble's cluster and stop ({status:?})\n{}",
        tail(log.as_bytes(), 30)
    );
    assert!(
        log.contains("cluster"),
        "the reason names the cluster mismatch:\n{}",
        tail(log.as_bytes(), 30)
    );
    assert_eq!(
        sizes(&broker),
        before,
        "the partitions' data must be untouched\n{}",
        tail(log.as_bytes(), 30)
    );
}
