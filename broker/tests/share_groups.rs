//! Share groups (KIP-932) with the Kafka 4.1.1 Java `KafkaShareConsumer` (`tests/java/ShareMember.java`,
//! explicit acknowledgement): two members share one partition and no record is delivered to both;
//! released records come back, rejected ones and those past `group.share.delivery.count.limit` never
//! do; a member killed while it holds records has them redelivered to another after
//! `group.share.record.lock.duration.ms`; and acknowledged records stay acknowledged, held ones are
//! delivered again, across a broker restart and across the failover of the partition's leader in a
//! three-broker cluster (the state is in `__share_group_state`, replicated); the group itself (members,
//! epochs, assignment, initialized share partitions) survives a restart in `__consumer_offsets`, and a
//! member's subscription initializes every partition's start offset before any fetch. Also ApiVersions
//! and `kafka-share-groups --list/--describe`.
//!
//! A share group starts at the partition's end (`share.auto.offset.reset=latest`, Kafka's default), when
//! its member subscribes (oxka, where the group coordinator leads the partition) or at its first
//! ShareFetch (Kafka 4.1): the tests produce only once the members have fetched (on oxka: the share
//! partition's state is in `__share_group_state`, which its log says).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::group_members::*;
use common::*;

const TOPIC: &str = "jobs";

fn share_broker(extra: &[(&str, &str)]) -> Broker {
    let mut overrides = vec![
        ("group.coordinator.rebalance.protocols", "classic,consumer,share"),
        ("offsets.topic.num.partitions", "1"),
    ];
    overrides.extend_from_slice(extra);
    Broker::start(&overrides)
}

/// Produces `values` to partition 0 of `topic` with librdkafka (acks=all).
fn produce_values(bootstrap: &str, topic: &str, values: &[String]) {
    produce_to(bootstrap, topic, 0, values)
}

/// Produces `values` to `partition` of `topic` with librdkafka (acks=all).
fn produce_to(bootstrap: &str, topic: &str, partition: i32, values: &[String]) {
    let script = r#"
import os
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
for v in os.environ["VALUES"].split(","):
    p.produce(os.environ["TOPIC"], value=v, partition=int(os.environ["PARTITION"]))
if p.flush(60) != 0:
    fail("records left unacknowledged")
"#;
    let partition = partition.to_string();
    python_env_ok(
        script,
        bootstrap,
        &[
            ("TOPIC", topic),
            ("VALUES", &values.join(",")),
            ("PARTITION", &partition),
        ],
    );
}

/// A delivery a member printed: partition, offset, value, delivery count.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    partition: i32,
    offset: i64,
    value: String,
    count: i32,
}

fn deliveries(dir: &Path, name: &str) -> Vec<Delivery> {
    lines(dir, name)
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 5 && f[0] == "REC").then(|| Delivery {
                partition: f[1].parse().unwrap(),
                offset: f[2].parse().unwrap(),
                value: f[3].to_string(),
                count: f[4].parse().unwrap(),
            })
        })
        .collect()
}

fn start_member(cp: &str, dir: &Path, bootstrap: &str, name: &str, group: &str, mode: &str) -> Proc {
    start_member_with(cp, dir, bootstrap, name, group, mode, "")
}

/// `start_member` with consumer properties (`key=value,key=value`).
fn start_member_with(cp: &str, dir: &Path, bootstrap: &str, name: &str, group: &str, mode: &str, props: &str) -> Proc {
    let stop = dir.join(format!("{name}.stop"));
    let mut args = vec!["ShareMember", bootstrap, TOPIC, group, mode, stop.to_str().unwrap()];
    if !props.is_empty() {
        args.push(props);
    }
    java_spawn(cp, dir, name, &args)
}

/// Waits until `name` has polled and the share partition of `group` exists (its first ShareFetch set
/// its start offset), so records produced from now on are delivered.
fn wait_fetching(broker: &Broker, dir: &Path, name: &str, group: &str) {
    wait_for(&format!("{name} polling"), Duration::from_secs(60), || {
        lines(dir, name).iter().any(|l| l == "POLLED")
    });
    match target() {
        Target::Oxka => {
            let loaded = format!("loaded share partition {group}:");
            wait_for("the share partition's state", Duration::from_secs(30), || {
                broker.log_text().contains(&loaded)
            });
        }
        Target::ApacheKafka => std::thread::sleep(Duration::from_secs(5)),
    }
}

fn stop_member(dir: &Path, name: &str, member: Proc) {
    std::fs::write(dir.join(format!("{name}.stop")), b"").unwrap();
    wait_for(&format!("{name} closed"), Duration::from_secs(60), || {
        lines(dir, name).iter().any(|l| l == "CLOSED")
    });
    drop(member);
}

/// `wait_for`, showing the members' output and errors when it times out.
fn wait_members(dir: &Path, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !check() {
        if std::time::Instant::now() > deadline {
            let mut shown = String::new();
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.ends_with(".out") || name.ends_with(".err") {
                    let text = std::fs::read(entry.path()).unwrap_or_default();
                    shown.push_str(&format!("---- {name}\n{}\n", tail(&text, 30)));
                }
            }
            panic!("timed out after {timeout:?} waiting for {what}\n{shown}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn share_apis_are_announced_only_when_enabled() {
    let _serial = serial();
    for (protocols, announced) in [("classic,consumer,share", true), ("classic,consumer", false)] {
        let broker = Broker::start(&[("group.coordinator.rebalance.protocols", protocols)]);
        let out = kafka_tool("4", "broker-api-versions", &["--bootstrap-server", &broker.bootstrap()]);
        let text = expect_success("kafka-broker-api-versions", &out);
        for api in [
            "ShareGroupHeartbeat(76)",
            "ShareGroupDescribe(77)",
            "ShareFetch(78)",
            "ShareAcknowledge(79)",
        ] {
            let line = text
                .lines()
                .find(|l| l.contains(api))
                .unwrap_or_else(|| panic!("{api} missing:\n{text}"));
            assert_eq!(!line.contains("UNSUPPORTED"), announced, "{protocols}: {line}");
        }
    }
}

#[test]
fn two_members_share_one_partition() {
    let _serial = serial();
    let broker = share_broker(&[]);
    create_topic(&broker, TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember"]);
    let a = start_member(&cp, dir.path(), &broker.bootstrap(), "a", "workers", "accept");
    let b = start_member(&cp, dir.path(), &broker.bootstrap(), "b", "workers", "accept");
    wait_fetching(&broker, dir.path(), "a", "workers");
    wait_fetching(&broker, dir.path(), "b", "workers");
    let n = 300;
    for round in 0..6 {
        produce_values(&broker.bootstrap(), TOPIC, &values(&format!("r{round}-"), n / 6));
    }
    wait_for("every record delivered", Duration::from_secs(60), || {
        deliveries(dir.path(), "a").len() + deliveries(dir.path(), "b").len() >= n
    });
    // Both members are in the group and both are assigned the one partition (kafka-share-groups).
    let out = kafka_tool(
        "4",
        "share-groups",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--describe",
            "--group",
            "workers",
            "--members",
        ],
    );
    let text = expect_success("kafka-share-groups --describe --members", &out);
    assert_eq!(
        text.lines().filter(|l| l.contains(&format!("{TOPIC}:0"))).count(),
        2,
        "{text}"
    );
    let list = expect_success(
        "kafka-share-groups --list",
        &kafka_tool(
            "4",
            "share-groups",
            &["--bootstrap-server", &broker.bootstrap(), "--list"],
        ),
    );
    assert!(list.lines().any(|l| l.trim() == "workers"), "{list}");
    std::thread::sleep(Duration::from_secs(2));
    let (da, db) = (deliveries(dir.path(), "a"), deliveries(dir.path(), "b"));
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for d in da.iter().chain(&db) {
        *seen.entry(d.offset).or_default() += 1;
        assert_eq!(d.count, 1, "accepted records are delivered once: {d:?}");
    }
    assert_eq!(seen.len(), n, "every offset delivered");
    assert!(seen.values().all(|c| *c == 1), "no record went to both members");
    // Every record accepted: the share partition starts at the end (DescribeShareGroupOffsets).
    let offsets = expect_success(
        "kafka-share-groups --describe",
        &kafka_tool(
            "4",
            "share-groups",
            &[
                "--bootstrap-server",
                &broker.bootstrap(),
                "--describe",
                "--group",
                "workers",
            ],
        ),
    );
    assert!(
        offsets.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4 && f[0] == "workers" && f[1] == TOPIC && f[2] == "0" && f[3] == n.to_string()
        }),
        "{offsets}"
    );
    stop_member(dir.path(), "a", a);
    stop_member(dir.path(), "b", b);
}

#[test]
fn released_records_return_and_rejected_do_not() {
    let _serial = serial();
    let broker = share_broker(&[]);
    create_topic(&broker, TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember"]);
    let m = start_member(&cp, dir.path(), &broker.bootstrap(), "m", "mixed", "value");
    wait_fetching(&broker, dir.path(), "m", "mixed");
    let mut all = values("ok-", 10);
    all.extend(values("release-", 10));
    all.extend(values("reject-", 10));
    produce_values(&broker.bootstrap(), TOPIC, &all);
    wait_members(
        dir.path(),
        "released records delivered again",
        Duration::from_secs(60),
        || deliveries(dir.path(), "m").len() >= 40,
    );
    std::thread::sleep(Duration::from_secs(3));
    let got = deliveries(dir.path(), "m");
    for v in &all {
        let counts: Vec<i32> = got.iter().filter(|d| &d.value == v).map(|d| d.count).collect();
        let want: &[i32] = if v.starts_with("release") { &[1, 2] } else { &[1] };
        assert_eq!(counts, want, "deliveries of {v}");
    }
    stop_member(dir.path(), "m", m);
}

#[test]
fn records_past_the_delivery_limit_are_archived() {
    let _serial = serial();
    let broker = share_broker(&[("group.share.delivery.count.limit", "3")]);
    create_topic(&broker, TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember"]);
    let m = start_member(&cp, dir.path(), &broker.bootstrap(), "m", "limited", "release");
    wait_fetching(&broker, dir.path(), "m", "limited");
    produce_values(&broker.bootstrap(), TOPIC, &values("v", 5));
    wait_for("three deliveries each", Duration::from_secs(60), || {
        deliveries(dir.path(), "m").len() >= 15
    });
    std::thread::sleep(Duration::from_secs(3));
    let got = deliveries(dir.path(), "m");
    for v in values("v", 5) {
        let counts: Vec<i32> = got.iter().filter(|d| d.value == v).map(|d| d.count).collect();
        assert_eq!(counts, [1, 2, 3], "deliveries of {v}");
    }
    stop_member(dir.path(), "m", m);
}

/// The acquisition lock is released on time by the broker's timer, not by the next fetch: a member
/// acquires records and stops polling (then is killed -9); another member that joined meanwhile and
/// waits in a long poll (`fetch.max.wait.ms` 20 s, so its own fetches cannot release the lock) gets
/// them within the lock duration and a small margin, as their second delivery.
#[test]
fn a_killed_members_records_are_redelivered_after_the_lock_expires() {
    const LOCK_MS: u64 = 6000;
    let _serial = serial();
    let broker = share_broker(&[("group.share.record.lock.duration.ms", &LOCK_MS.to_string())]);
    create_topic(&broker, TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember"]);
    let bootstrap = broker.bootstrap();
    let mut holder = start_member(&cp, dir.path(), &bootstrap, "holder", "locks", "hold");
    // The worker's JVM and consumer start now; it subscribes once the holder holds records.
    let go = dir.path().join("worker.go");
    let w = start_member_with(
        &cp,
        dir.path(),
        &bootstrap,
        "worker",
        "locks",
        "accept",
        &format!(
            "fetch.max.wait.ms=20000,request.timeout.ms=40000,await.file={}",
            go.display()
        ),
    );
    wait_fetching(&broker, dir.path(), "holder", "locks");
    produce_values(&bootstrap, TOPIC, &values("job", 20));
    wait_members(dir.path(), "the holder holds records", Duration::from_secs(60), || {
        lines(dir.path(), "holder").iter().any(|l| l == "HOLDING")
    });
    let locked_at = std::time::Instant::now();
    std::fs::write(&go, b"").unwrap();
    let held = deliveries(dir.path(), "holder");
    assert!(!held.is_empty());
    holder.kill9();
    if target() == Target::Oxka {
        wait_for("the worker joined", Duration::from_secs(30), || {
            broker.log_text().matches("share group member joined").count() >= 2
        });
        let joined_after = locked_at.elapsed();
        eprintln!("the worker joined {joined_after:?} after the records were locked");
        assert!(
            joined_after < Duration::from_millis(LOCK_MS - 1500),
            "the worker joined {joined_after:?} after the records were locked, too late to wait for them: \
             the test proves nothing (a slow machine? raise LOCK_MS)"
        );
    }
    let redelivered = |got: &[Delivery]| held.iter().all(|h| got.iter().any(|d| d.offset == h.offset));
    wait_members(
        dir.path(),
        "the held records redelivered",
        Duration::from_secs(60),
        || redelivered(&deliveries(dir.path(), "worker")),
    );
    let after = locked_at.elapsed();
    assert!(
        after < Duration::from_millis(LOCK_MS + 2000),
        "the held records came back {after:?} after they were locked (lock {LOCK_MS} ms): not released on time"
    );
    assert!(
        after >= Duration::from_millis(LOCK_MS - 1000),
        "the held records came back {after:?} after they were locked, before the lock expired"
    );
    eprintln!("held records redelivered {after:?} after they were locked (lock {LOCK_MS} ms)");
    wait_for("every record delivered to the worker", Duration::from_secs(60), || {
        deliveries(dir.path(), "worker").len() >= 20
    });
    let got = deliveries(dir.path(), "worker");
    for h in &held {
        let again = got
            .iter()
            .find(|d| d.offset == h.offset)
            .expect("held record redelivered");
        assert_eq!(again.count, 2, "{again:?} is its second delivery");
    }
    // Not closed: a close would wait for its long poll to end.
    drop(w);
}

#[test]
fn share_state_survives_a_broker_restart() {
    let _serial = serial();
    let mut broker = share_broker(&[("group.share.record.lock.duration.ms", "60000")]);
    create_topic(&broker, TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember"]);
    // First: 10 records accepted.
    let a = start_member(&cp, dir.path(), &broker.bootstrap(), "a", "durable", "accept");
    wait_fetching(&broker, dir.path(), "a", "durable");
    produce_values(&broker.bootstrap(), TOPIC, &values("first", 10));
    wait_for("the first records accepted", Duration::from_secs(60), || {
        deliveries(dir.path(), "a").len() >= 10
    });
    stop_member(dir.path(), "a", a);
    // Then: 10 records held by a member killed before it acknowledges (a lock of 60 s: only the
    // restart gives them back).
    let mut holder = start_member(&cp, dir.path(), &broker.bootstrap(), "holder", "durable", "hold");
    wait_fetching(&broker, dir.path(), "holder", "durable");
    produce_values(&broker.bootstrap(), TOPIC, &values("second", 10));
    wait_members(dir.path(), "the holder holds records", Duration::from_secs(60), || {
        lines(dir.path(), "holder").iter().any(|l| l == "HOLDING")
    });
    let held = deliveries(dir.path(), "holder");
    holder.kill9();
    broker.restart();
    // With no member heartbeating, the group is still there (its records in __consumer_offsets) and
    // still shows its topic and start offset: the first ten records accepted.
    let list = expect_success(
        "kafka-share-groups --list",
        &kafka_tool(
            "4",
            "share-groups",
            &["--bootstrap-server", &broker.bootstrap(), "--list"],
        ),
    );
    assert!(list.lines().any(|l| l.trim() == "durable"), "{list}");
    assert_eq!(
        described_start_offsets(&broker.bootstrap(), "durable"),
        BTreeMap::from([(0, "10".to_string())])
    );
    produce_values(&broker.bootstrap(), TOPIC, &values("third", 10));
    let b = start_member(&cp, dir.path(), &broker.bootstrap(), "b", "durable", "accept");
    wait_for("the rest delivered after the restart", Duration::from_secs(90), || {
        deliveries(dir.path(), "b").len() >= 20
    });
    std::thread::sleep(Duration::from_secs(2));
    let got = deliveries(dir.path(), "b");
    let mut values_got: Vec<&str> = got.iter().map(|d| d.value.as_str()).collect();
    values_got.sort();
    let mut want: Vec<String> = values("second", 10);
    want.extend(values("third", 10));
    want.sort();
    assert_eq!(
        values_got, want,
        "accepted records stay accepted; held and new ones are delivered once"
    );
    for h in &held {
        let again = got
            .iter()
            .find(|d| d.offset == h.offset)
            .expect("held record redelivered");
        assert_eq!(again.count, 2, "{again:?}: the delivery count survived");
    }
    stop_member(dir.path(), "b", b);
    if target() == Target::Oxka {
        assert_dump_log_decodes(&broker, "durable");
        assert_offsets_decoder_reads_share_records(&broker, "durable");
    }
}

/// Kafka's `kafka-dump-log --offsets-decoder` reads the share group's records oxka wrote to
/// `__consumer_offsets` (Kafka 4.1's record types and value layouts).
fn assert_offsets_decoder_reads_share_records(broker: &Broker, group: &str) {
    let files: Vec<String> = broker
        .segment_files("__consumer_offsets", 0)
        .into_iter()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .map(|f| f.display().to_string())
        .collect();
    let out = kafka_tool(
        "4",
        "dump-log",
        &["--files", &files.join(","), "--offsets-decoder", "--print-data-log"],
    );
    let text = expect_success("kafka-dump-log --offsets-decoder", &out);
    let decoded = |record_type: u8| {
        text.lines()
            .filter(|l| {
                l.contains(&format!(
                    "key: {{\"type\":\"{record_type}\",\"data\":{{\"groupId\":\"{group}\""
                ))
            })
            .count()
    };
    for record_type in 10..=15 {
        assert!(decoded(record_type) > 0, "no record of type {record_type}:\n{text}");
    }
    assert!(text.contains("\"metadataHash\":0"), "{text}");
    assert!(text.contains("\"initializedTopics\":[{\"topicId\""), "{text}");
    assert!(
        !text.contains("Could not") && !text.contains("Exception") && !text.contains("Error"),
        "{text}"
    );
}

/// Kafka's `kafka-dump-log --share-group-state-decoder` reads oxka's `__share_group_state` segments:
/// ShareSnapshot records of `group` with their state batches.
fn assert_dump_log_decodes(broker: &Broker, group: &str) {
    let files: Vec<String> = (0..50)
        .flat_map(|p| broker.segment_files("__share_group_state", p))
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .map(|f| f.display().to_string())
        .collect();
    assert!(!files.is_empty(), "no __share_group_state segment has data");
    let out = kafka_tool(
        "4",
        "dump-log",
        &[
            "--files",
            &files.join(","),
            "--share-group-state-decoder",
            "--print-data-log",
        ],
    );
    let text = expect_success("kafka-dump-log --share-group-state-decoder", &out);
    let decoded: Vec<&str> = text.lines().filter(|l| l.contains("snapshotEpoch")).collect();
    assert!(!decoded.is_empty(), "no decoded ShareSnapshot:\n{text}");
    assert!(
        decoded
            .iter()
            .all(|l| l.contains(&format!("\"groupId\":\"{group}\"")) && l.contains("stateBatches")),
        "{text}"
    );
    assert!(!text.contains("Could not") && !text.contains("Exception"), "{text}");
}

/// Runs `tests/java/ShareOffsets.java` (the Admin client's alter/deleteShareGroupOffsets).
fn share_offsets(cp: &str, broker: &Broker, group: &str, op: &[&str]) -> String {
    let mut cmd = std::process::Command::new("java");
    cmd.arg("-cp")
        .arg(cp)
        .args(["ShareOffsets", &broker.bootstrap(), group, TOPIC])
        .args(op);
    String::from_utf8_lossy(&run(cmd, b"", Duration::from_secs(120)).stdout).to_string()
}

#[test]
fn an_empty_groups_offsets_can_be_altered_and_deleted() {
    let _serial = serial();
    let mut broker = share_broker(&[]);
    create_topic(&broker, TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember", "ShareOffsets"]);
    let a = start_member(&cp, dir.path(), &broker.bootstrap(), "a", "resets", "accept");
    wait_fetching(&broker, dir.path(), "a", "resets");
    produce_values(&broker.bootstrap(), TOPIC, &values("x", 10));
    wait_members(dir.path(), "the records accepted", Duration::from_secs(60), || {
        deliveries(dir.path(), "a").len() >= 10
    });
    // Refused while the group has a member.
    let refused = share_offsets(&cp, &broker, "resets", &["alter", "0"]);
    assert!(
        refused.contains("ERROR") && refused.contains("GroupNotEmpty"),
        "{refused}"
    );
    stop_member(dir.path(), "a", a);
    assert_eq!(share_offsets(&cp, &broker, "resets", &["alter", "3"]).trim(), "OK");
    let b = start_member(&cp, dir.path(), &broker.bootstrap(), "b", "resets", "accept");
    wait_members(
        dir.path(),
        "the records from offset 3 delivered again",
        Duration::from_secs(60),
        || deliveries(dir.path(), "b").len() >= 7,
    );
    std::thread::sleep(Duration::from_secs(2));
    let got = deliveries(dir.path(), "b");
    assert_eq!(
        got.iter().map(|d| d.offset).collect::<Vec<_>>(),
        (3..10).collect::<Vec<_>>()
    );
    assert!(
        got.iter().all(|d| d.count == 1),
        "an altered start begins afresh: {got:?}"
    );
    stop_member(dir.path(), "b", b);
    assert_eq!(share_offsets(&cp, &broker, "resets", &["delete"]).trim(), "OK");
    let offsets = kafka_tool(
        "4",
        "share-groups",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--describe",
            "--group",
            "resets",
        ],
    );
    let text = expect_success("kafka-share-groups --describe", &offsets);
    assert!(
        !text.lines().any(|l| l.split_whitespace().nth(3) == Some("10")),
        "{text}"
    );
    if target() == Target::ApacheKafka {
        return;
    }
    // DeleteGroups of the empty group: gone, also after a restart (its records' tombstones).
    let listed = |broker: &Broker| {
        expect_success(
            "kafka-share-groups --list",
            &kafka_tool(
                "4",
                "share-groups",
                &["--bootstrap-server", &broker.bootstrap(), "--list"],
            ),
        )
        .lines()
        .any(|l| l.trim() == "resets")
    };
    assert!(listed(&broker));
    let deleted = kafka_tool(
        "4",
        "share-groups",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--delete",
            "--group",
            "resets",
        ],
    );
    let text = expect_success("kafka-share-groups --delete", &deleted);
    assert!(
        text.contains("Deletion of requested share groups ('resets') was successful."),
        "{text}"
    );
    assert!(!listed(&broker), "deleted");
    broker.restart();
    assert!(!listed(&broker), "still deleted after a restart");
}

/// The share partition's state is in `__share_group_state` (replication factor 3): when the leader of
/// the share partition's topic partition is killed -9, the new leader loads it from the share
/// coordinator. Nothing is skipped, acknowledged records are not delivered again, and delivery counts
/// carry over: with `group.share.delivery.count.limit=2`, a record a killed member held (delivery 1)
/// is delivered once more (delivery 2) and, released then, never again. Share groups are on by
/// default here (no `group.coordinator.rebalance.protocols` set).
#[test]
fn share_state_survives_the_partition_leaders_failover() {
    let _serial = serial();
    let mut cluster = common::cluster::Cluster::start_with(common::cluster::Options {
        broker_config: &[
            ("min.insync.replicas", "2"),
            ("group.share.delivery.count.limit", "2"),
            ("group.share.record.lock.duration.ms", "60000"),
        ],
        ..Default::default()
    });
    cluster.create_topic(TOPIC, 1, 3);
    let leader = cluster.wait_all_led(TOPIC, 1)[&0];
    let all: String = (1..=3)
        .map(|id| cluster.broker(id).bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember"]);
    let loaded = |id: i32| {
        cluster
            .broker(id)
            .log_text()
            .contains("loaded share partition failover:")
    };
    // First: 10 records accepted.
    let a = start_member(&cp, dir.path(), &all, "a", "failover", "accept");
    wait_for("a polling", Duration::from_secs(60), || {
        lines(dir.path(), "a").iter().any(|l| l == "POLLED")
    });
    wait_for(
        "the share partition loaded on its leader",
        Duration::from_secs(30),
        || loaded(leader),
    );
    produce_values(&all, TOPIC, &values("first", 10));
    wait_for("the first records accepted", Duration::from_secs(60), || {
        deliveries(dir.path(), "a").len() >= 10
    });
    stop_member(dir.path(), "a", a);
    // Then: 10 records, some held by a member killed before it acknowledges (a lock of 60 s).
    let mut holder = start_member(&cp, dir.path(), &all, "holder", "failover", "hold");
    wait_for("holder polling", Duration::from_secs(60), || {
        lines(dir.path(), "holder").iter().any(|l| l == "POLLED")
    });
    produce_values(&all, TOPIC, &values("second", 10));
    wait_members(dir.path(), "the holder holds records", Duration::from_secs(60), || {
        lines(dir.path(), "holder").iter().any(|l| l == "HOLDING")
    });
    let held: Vec<String> = deliveries(dir.path(), "holder").into_iter().map(|d| d.value).collect();
    assert!(!held.is_empty());
    holder.kill9();
    // The partition's leader dies; another in-sync replica takes over.
    cluster.broker_mut(leader).kill9();
    let survivor = if leader == 1 { 2 } else { 1 };
    let new_leader = cluster.wait_until("a new leader of the partition", Duration::from_secs(30), || {
        let m = cluster.try_metadata_via(survivor)?;
        match common::cluster::partition_leaders(&m, TOPIC).get(&0) {
            Some(&l) if l >= 0 && l != leader => Ok(l),
            other => Err(format!("leader {other:?}")),
        }
    });
    let live: String = (1..=3)
        .filter(|id| *id != leader)
        .map(|id| cluster.broker(id).bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    produce_values(&live, TOPIC, &values("third", 10));
    let b = start_member(&cp, dir.path(), &live, "b", "failover", "release");
    // Each held record once more; every other second and third record up to twice.
    wait_for("the rest delivered after the failover", Duration::from_secs(90), || {
        let got = deliveries(dir.path(), "b");
        let values: std::collections::BTreeSet<&str> = got.iter().map(|d| d.value.as_str()).collect();
        values.len() >= 20 && got.iter().filter(|d| d.count == 2).count() >= 20
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        cluster
            .broker(new_leader)
            .log_text()
            .contains("loaded share partition failover:"),
        "the new leader loaded the share partition"
    );
    let got = deliveries(dir.path(), "b");
    let mut by_value: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for d in &got {
        by_value.entry(d.value.clone()).or_default().push(d.count);
    }
    let mut want: Vec<String> = values("second", 10);
    want.extend(values("third", 10));
    assert_eq!(
        by_value.keys().cloned().collect::<Vec<_>>(),
        {
            let mut w = want.clone();
            w.sort();
            w
        },
        "every record not accepted before the failover is delivered, none skipped, no accepted one again: {got:?}"
    );
    for v in &held {
        assert_eq!(
            by_value[v],
            [2],
            "{v} was held (delivery 1): its delivery count carried over"
        );
    }
    for v in values("third", 10) {
        assert_eq!(
            by_value[&v],
            [1, 2],
            "{v}: delivered until the delivery limit, then archived"
        );
    }
    for (v, counts) in &by_value {
        assert!(counts == &[1, 2] || counts == &[2], "{v}: {counts:?}");
    }
    stop_member(dir.path(), "b", b);
}

/// `kafka-share-groups --describe --offsets` of a group: start offset by partition of `TOPIC`.
fn described_start_offsets(bootstrap: &str, group: &str) -> BTreeMap<i32, String> {
    let out = kafka_tool(
        "4",
        "share-groups",
        &[
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--offsets",
            "--group",
            group,
        ],
    );
    let text = expect_success("kafka-share-groups --describe --offsets", &out);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0] == group && f[1] == TOPIC).then(|| (f[2].parse().unwrap(), f[3].to_string()))
        })
        .collect()
}

/// In a three-broker cluster, the group coordinator answers `kafka-share-groups --describe` from the
/// share coordinators' durable state (ReadShareGroupStateSummary), so partitions led by other brokers
/// show their start offsets too; and resetting the offsets to the start (the Admin client's
/// alterShareGroupOffsets: InitializeShareGroupState with a new state epoch) makes the leaders on
/// other brokers load the reset state, so the group gets the records again from the start of every
/// partition.
#[test]
fn share_offsets_are_described_and_reset_across_the_cluster() {
    const GROUP: &str = "spread";
    let _serial = serial();
    let cluster = common::cluster::Cluster::start_with(common::cluster::Options {
        broker_config: &[("min.insync.replicas", "2")],
        ..Default::default()
    });
    cluster.create_topic(TOPIC, 2, 3);
    let leaders = cluster.wait_all_led(TOPIC, 2);
    assert_ne!(
        leaders[&0], leaders[&1],
        "the partitions' leaders are spread: {leaders:?}"
    );
    let idle = (1..=3).find(|id| !leaders.values().any(|l| l == id)).unwrap();
    let all: String = (1..=3)
        .map(|id| cluster.broker(id).bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember", "ShareOffsets"]);
    let a = start_member(&cp, dir.path(), &all, "a", GROUP, "accept");
    wait_for("a polling", Duration::from_secs(60), || {
        lines(dir.path(), "a").iter().any(|l| l == "POLLED")
    });
    wait_for(
        "both share partitions loaded on their leaders",
        Duration::from_secs(30),
        || {
            leaders.values().all(|&id| {
                cluster
                    .broker(id)
                    .log_text()
                    .contains(&format!("loaded share partition {GROUP}:"))
            })
        },
    );
    for p in 0..2 {
        produce_to(&all, TOPIC, p, &values(&format!("p{p}-"), 5));
    }
    wait_for("the records accepted", Duration::from_secs(60), || {
        deliveries(dir.path(), "a").len() >= 10
    });
    stop_member(dir.path(), "a", a);
    let idle_bootstrap = cluster.broker(idle).bootstrap();
    let described = described_start_offsets(&idle_bootstrap, GROUP);
    assert_eq!(
        described,
        BTreeMap::from([(0, "5".to_string()), (1, "5".to_string())]),
        "every partition's start offset, wherever its leader is (leaders {leaders:?}, asked broker {idle})"
    );
    // kafka-share-groups 4.1.1 has no --reset-offsets yet ("not yet implemented"): the Admin
    // client's alterShareGroupOffsets, as the tool of later versions calls it.
    let mut cmd = std::process::Command::new("java");
    cmd.arg("-cp")
        .arg(&cp)
        .args(["ShareOffsets", &idle_bootstrap, GROUP, TOPIC, "alter", "0", "2"]);
    let reset = String::from_utf8_lossy(&run(cmd, b"", Duration::from_secs(120)).stdout).to_string();
    assert_eq!(reset.trim(), "OK");
    assert_eq!(
        described_start_offsets(&idle_bootstrap, GROUP),
        BTreeMap::from([(0, "0".to_string()), (1, "0".to_string())]),
        "the reset start offsets"
    );
    let b = start_member(&cp, dir.path(), &all, "b", GROUP, "accept");
    wait_members(
        dir.path(),
        "every record delivered again",
        Duration::from_secs(60),
        || deliveries(dir.path(), "b").len() >= 10,
    );
    std::thread::sleep(Duration::from_secs(1));
    let got = deliveries(dir.path(), "b");
    for p in 0..2 {
        let offsets: Vec<i64> = got.iter().filter(|d| d.partition == p).map(|d| d.offset).collect();
        assert_eq!(
            offsets,
            (0..5).collect::<Vec<_>>(),
            "partition {p} (leader {}) from its start",
            leaders[&p]
        );
    }
    assert!(got.iter().all(|d| d.count == 1), "a reset state begins afresh: {got:?}");
    drop(b);
}

/// A group id a classic (or consumer) group holds cannot be a share group's: the share consumer's
/// heartbeat is refused with GROUP_ID_NOT_FOUND, "Group <id> is not a share group.", as Kafka 4.1
/// answers (and JoinGroup or ConsumerGroupHeartbeat for a share group's id likewise).
#[test]
fn a_classic_groups_id_is_not_a_share_groups() {
    let _serial = serial();
    let broker = share_broker(&[]);
    create_topic(&broker, TOPIC, 1);
    let commit = r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "taken", "enable.auto.commit": False})
c.commit(offsets=[TopicPartition("jobs", 0, 0)], asynchronous=False)
c.close()
"#;
    python_ok(commit, &broker.bootstrap());
    let dir = tempfile::tempdir().unwrap();
    let cp = java_classpath(dir.path(), &["ShareMember"]);
    let mut m = start_member(&cp, dir.path(), &broker.bootstrap(), "m", "taken", "accept");
    let err = dir.path().join("m.err");
    // Its heartbeat manager logs the error, then poll() throws it.
    wait_for("the share consumer refused", Duration::from_secs(60), || {
        std::fs::read_to_string(&err)
            .is_ok_and(|e| e.contains("Group taken is not a share group.") && e.contains("GroupIdNotFoundException"))
    });
    assert!(!lines(dir.path(), "m").iter().any(|l| l.starts_with("REC ")));
    m.kill9();
}

/// ShareGroupHeartbeat v1 written by hand: `member` of `group` at `epoch`, subscribing to `topics`
/// (when given). Retried while the group coordinator is not ready.
fn share_heartbeat(
    conn: &mut raw::Connection,
    group: &str,
    member: &str,
    epoch: i32,
    topics: Option<&[&str]>,
) -> kafka_protocol::messages::ShareGroupHeartbeatResponse {
    use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, GroupId, ShareGroupHeartbeatRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_member_epoch(epoch)
        .with_subscribed_topic_names(topics.map(|ts| {
            ts.iter()
                .map(|t| TopicName(StrBytes::from_string(t.to_string())))
                .collect()
        }));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        conn.send(ApiKey::ShareGroupHeartbeat, 1, &request);
        let (_, response): (_, kafka_protocol::messages::ShareGroupHeartbeatResponse) =
            raw::decode(ApiKey::ShareGroupHeartbeat, 1, raw::read_frame(&mut conn.stream));
        // COORDINATOR_NOT_AVAILABLE (15), NOT_COORDINATOR (16), COORDINATOR_LOAD_IN_PROGRESS (14).
        if ![14, 15, 16].contains(&response.error_code) || std::time::Instant::now() > deadline {
            return response;
        }
        // FindCoordinator, as a client asks first: it creates `__consumer_offsets`.
        let find = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())]);
        conn.send(ApiKey::FindCoordinator, 4, &find);
        raw::read_frame(&mut conn.stream);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A member subscribes (a heartbeat written by hand, so no ShareFetch follows): the group coordinator
/// initializes the share partitions of the topic at once (recorded in ShareGroupStatePartitionMetadata,
/// InitializeShareGroupState at the end of each partition, `share.auto.offset.reset=latest`), so
/// `kafka-share-groups --describe` shows every partition's start offset before anything is fetched.
#[test]
fn subscribing_initializes_every_partitions_start_offset() {
    let _serial = serial();
    let broker = share_broker(&[]);
    create_topic(&broker, TOPIC, 2);
    produce_to(&broker.bootstrap(), TOPIC, 0, &values("p0-", 3));
    produce_to(&broker.bootstrap(), TOPIC, 1, &values("p1-", 5));
    let mut conn = raw::Connection::connect(&broker.bootstrap());
    let joined = share_heartbeat(&mut conn, "early", "member-1", 0, Some(&[TOPIC]));
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let assigned: Vec<i32> = joined
        .assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter().flat_map(|t| t.partitions.clone()))
        .collect();
    assert_eq!(assigned, [0, 1], "{joined:?}");
    if target() == Target::ApacheKafka {
        // Kafka 4.1 initializes a new topic's share partitions without a start offset (-1), which
        // their leaders set at the first ShareFetch: nothing to compare before a fetch.
        return;
    }
    let want = BTreeMap::from([(0, "3".to_string()), (1, "5".to_string())]);
    let mut described = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while described != want && std::time::Instant::now() < deadline {
        described = described_start_offsets(&broker.bootstrap(), "early");
    }
    assert_eq!(
        described, want,
        "every partition's start offset, right after the assignment"
    );
    assert!(
        !broker.log_text().contains("loaded share partition early:"),
        "no ShareFetch loaded a share partition"
    );
    let left = share_heartbeat(&mut conn, "early", "member-1", -1, None);
    assert_eq!(left.error_code, 0, "{left:?}");
}

/// A failover of the share group's coordinator (issue 14): three brokers, `__consumer_offsets` at RF 3.
/// A member joins by hand (its ShareGroupHeartbeat is answered once the group's records are on the
/// in-sync replicas) and the subscription's partitions are initialized; then the broker leading the
/// group's `__consumer_offsets` partition is killed -9. Its successor loads the group from its
/// replica: it knows the member at the epoch it was given, and describes the same start offsets.
#[test]
fn a_share_group_survives_its_coordinators_failover() {
    const GROUP: &str = "moving";
    let _serial = serial();
    let mut cluster = common::cluster::Cluster::start();
    cluster.create_topic(TOPIC, 2, 3);
    cluster.wait_all_led(TOPIC, 2);
    let coordinator = cluster.group_coordinator(1, GROUP, None);
    let mut conn = raw::Connection::connect(&cluster.broker(coordinator).bootstrap());
    let joined = share_heartbeat(&mut conn, GROUP, "member-1", 0, Some(&[TOPIC]));
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert!(joined.member_epoch > 0, "{joined:?}");
    let live: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != coordinator).collect();
    let bootstrap = live
        .iter()
        .map(|b| cluster.broker(*b).bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let mut before = BTreeMap::new();
    wait_for("both partitions initialized", Duration::from_secs(30), || {
        before = described_start_offsets(&bootstrap, GROUP);
        before.len() == 2
    });

    cluster.broker_mut(coordinator).kill9();
    let successor = cluster.group_coordinator(live[0], GROUP, Some(coordinator));
    let mut conn = raw::Connection::connect(&cluster.broker(successor).bootstrap());
    let answer = share_heartbeat(&mut conn, GROUP, "member-1", joined.member_epoch, None);
    assert_eq!(
        answer.error_code,
        0,
        "broker {successor} knows member-1 at epoch {} after broker {coordinator} was killed: {answer:?}\n{}",
        joined.member_epoch,
        cluster.logs()
    );
    assert_eq!(answer.member_epoch, joined.member_epoch, "{answer:?}");
    assert_eq!(
        described_start_offsets(&bootstrap, GROUP),
        before,
        "the initialized partitions' start offsets after the failover"
    );
}
