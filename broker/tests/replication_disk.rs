//! A full disk on one broker of three (issue 9; Kafka's log dir failure, KIP-112 / KIP-858, as oxka
//! handles it), with real processes (`common/cluster.rs`) and librdkafka (kcat) as the client:
//!
//! - broker 3's log dir is a small tmpfs; it is filled while RF 3 / min.insync.replicas 2 topics take
//!   acks=all writes, one partition led by broker 3 and one where it follows;
//! - the broker asks the controller to take it out of service at once: it leaves every ISR and its
//!   leadership moves, so acks=all writes keep being acknowledged within seconds, not after
//!   `replica.lag.time.max.ms` (30 s) as for a follower that merely stopped fetching;
//! - when space frees, the broker notices by itself, comes back, catches up and rejoins every ISR, and
//!   every acknowledged record is there.
//!
//! Mounting a tmpfs needs root (CI runs as root); elsewhere the test says so and passes without running.

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::disk::*;
use common::*;

/// partition -> (leader, sorted ISR), from `kafka-topics --describe`.
fn leaders_and_isr(cluster: &Cluster, topic: &str) -> Vec<(i32, Option<i32>, Vec<i32>)> {
    let (rows, _) = cluster.describe(topic);
    rows.into_iter()
        .map(|r| {
            let mut isr = r.isr;
            isr.sort_unstable();
            (r.partition, r.leader, isr)
        })
        .collect()
}

#[test]
fn a_full_disk_takes_a_broker_out_of_service_until_space_frees() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs this test as root)");
        return;
    }
    let _serial = serial();
    let mut cluster = Cluster::start();
    let data = cluster.broker(3).data_dir();
    cluster.broker_mut(3).stop();
    let disk = Tmpfs::mount_over(&data, 48);
    cluster.broker_mut(3).restart();
    cluster.wait_registered(&[1, 2, 3]);

    let topic = "full-disk";
    // Partition 0 is led by broker 3, partition 1 by broker 1 with broker 3 following.
    cluster.topics_ok(&[
        "--create",
        "--topic",
        topic,
        "--replica-assignment",
        "3:1:2,1:2:3",
        "--config",
        "min.insync.replicas=2",
    ]);
    let all = [1, 2, 3];
    cluster.wait_until("a full ISR", Duration::from_secs(30), || {
        let rows = leaders_and_isr(&cluster, topic);
        if rows.len() == 2 && rows.iter().all(|(_, l, isr)| l.is_some() && isr == &all) {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    let acks_all = ["acks=all", "retries=1000000", "retry.backoff.ms=100"];
    let mut acknowledged = Vec::new();
    for p in 0..2 {
        acknowledged.extend(kcat_produce_with(&cluster, topic, p, "before", 500, &acks_all));
    }

    disk.fill();
    let filled = Instant::now();
    // Writes go on: first to partition 1, where broker 3 follows (its fetcher's append fails), then to
    // partition 0, which broker 3 led when its disk filled.
    for p in [1, 0] {
        acknowledged.extend(kcat_produce_with(&cluster, topic, p, "full", 500, &acks_all));
    }
    let writes_took = filled.elapsed();
    let out_of_service = cluster.wait_until(
        "broker 3 to leave every ISR and lead nothing",
        Duration::from_secs(20),
        || {
            let rows = leaders_and_isr(&cluster, topic);
            if rows
                .iter()
                .all(|(_, l, isr)| *l != Some(3) && l.is_some() && isr == &[1, 2])
            {
                Ok(filled.elapsed())
            } else {
                Err(format!("{rows:?}"))
            }
        },
    );
    eprintln!(
        "disk full: 1,000 acks=all records acknowledged in {writes_took:?}; broker 3 out of every ISR \
         {out_of_service:?} after the disk filled"
    );
    assert!(
        writes_took < Duration::from_secs(15),
        "acks=all writes waited {writes_took:?} for a broker whose disk is full\n{}",
        cluster.logs()
    );
    let log = cluster.broker(3).log_text();
    assert!(
        log.contains("log dir") && log.contains("failed a write"),
        "broker 3 does not say that its log dir failed:\n{}",
        cluster.broker(3).log_tail(40)
    );

    disk.free();
    let freed = Instant::now();
    cluster.wait_until("broker 3 back in every ISR", Duration::from_secs(60), || {
        let rows = leaders_and_isr(&cluster, topic);
        if rows.iter().all(|(_, _, isr)| isr == &all) {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    eprintln!("space freed: broker 3 back in every ISR after {:?}", freed.elapsed());
    for p in 0..2 {
        acknowledged.extend(kcat_produce_with(&cluster, topic, p, "after", 500, &acks_all));
    }

    for line in cluster.broker(3).log_text().lines() {
        if line.contains("log dir") || line.contains("fenced") {
            eprintln!("broker 3: {line}");
        }
    }

    // Broker 3 alone must now serve every acknowledged record: stop the other two (a controlled
    // shutdown hands it their leadership).
    cluster.broker_mut(1).stop();
    cluster.broker_mut(2).stop();
    let read = sorted(kcat_consume_via(&cluster, &cluster.broker(3).bootstrap(), topic));
    let expected = sorted(acknowledged);
    assert_eq!(read.len(), expected.len(), "records read back from broker 3");
    assert_eq!(read, expected, "every acknowledged record, once, from broker 3");
    drop(cluster);
    drop(disk);
}
