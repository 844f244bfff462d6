//! The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat, server-side assignment) with real
//! clients: Kafka 4.1.1 Java consumers (`tests/java/GroupMember.java` with `group.protocol=consumer`)
//! and a librdkafka consumer (confluent-kafka, `group.protocol=consumer`) on a 12-partition topic under
//! a continuous producer. Members join and leave one at a time and one is killed (kill -9); every
//! member logs its rebalance callbacks with wall-clock times, and the test checks that no partition
//! was ever owned by two members at once (a moved partition is revoked before it is assigned), that
//! every partition is owned at the end, and that every produced record was consumed with no offset
//! skipped.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::cluster::{self, Cluster};
use common::group_members::*;
use common::*;

const TOPIC: &str = "events";
const PARTS: i32 = 12;
/// The broker fences a member after this long without a heartbeat (Kafka's default is 45 s).
const SESSION_MS: &str = "6000";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn java_member(classpath: &str, broker: &Broker, dir: &Path, name: &str, strategy: &str) -> Proc {
    java_member_on(classpath, broker, dir, name, TOPIC, strategy)
}

/// A Java member subscribed to `topic` (or `regex:<pattern>`) in group `kip848`.
fn java_member_on(classpath: &str, broker: &Broker, dir: &Path, name: &str, topic: &str, strategy: &str) -> Proc {
    java_member_full(classpath, broker, dir, name, topic, strategy, "-")
}

/// A Java member of group `kip848`; `instance` is its `group.instance.id` ("-": dynamic).
fn java_member_full(
    classpath: &str,
    broker: &Broker,
    dir: &Path,
    name: &str,
    topic: &str,
    strategy: &str,
    instance: &str,
) -> Proc {
    let leave = dir.join(format!("{name}.leave"));
    let args = [
        "GroupMember",
        &broker.bootstrap(),
        topic,
        "kip848",
        strategy,
        "-",
        instance,
        leave.to_str().unwrap(),
    ];
    java_spawn(classpath, dir, name, &args)
}

/// librdkafka's admin client describes the group (ConsumerGroupDescribe): its type, state, assignor
/// and each member's partition count, as `type state assignor n,n,n`.
const PY_DESCRIBE: &str = r#"
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": BOOTSTRAP})
d = a.describe_consumer_groups([os.environ["GROUP"]])[os.environ["GROUP"]].result(30)
counts = sorted(len(m.assignment.topic_partitions) for m in d.members)
print(d.type.name, d.state.name, d.partition_assignor, ",".join(str(c) for c in counts))
"#;

/// Kafka 4.1.1's `kafka-consumer-groups` sees the group of three members as Kafka would show it:
/// listed as a consumer group (ListGroups type filter), its state and assignor, three members with
/// four partitions each, and every partition with an owner and its offsets.
fn check_consumer_groups_tool(broker: &Broker, assignor: &str) {
    let listed = consumer_groups_tool(broker, &["--list", "--type", "consumer"]);
    assert!(
        listed.lines().any(|l| l.split_whitespace().next() == Some("kip848")),
        "{listed}"
    );
    let classic = consumer_groups_tool(broker, &["--list", "--type", "classic"]);
    assert!(!classic.contains("kip848"), "{classic}");
    let state = consumer_groups_tool(broker, &["--describe", "--group", "kip848", "--state"]);
    let row: Vec<&str> = state
        .lines()
        .find(|l| l.starts_with("kip848 "))
        .unwrap_or_else(|| panic!("no state row:\n{state}"))
        .split_whitespace()
        .collect();
    assert!(
        row.contains(&assignor) && row.contains(&"Stable") && row.last() == Some(&"3"),
        "{state}"
    );
    let members = consumer_groups_tool(broker, &["--describe", "--group", "kip848", "--members"]);
    let counts: Vec<&str> = members
        .lines()
        .filter(|l| l.starts_with("kip848 "))
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    assert_eq!(counts, ["4", "4", "4"], "{members}");
    let offsets = consumer_groups_tool(broker, &["--describe", "--group", "kip848"]);
    let rows: Vec<Vec<&str>> = offsets
        .lines()
        .filter(|l| l.starts_with("kip848 "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), PARTS as usize, "{offsets}");
    for row in &rows {
        assert!(
            row.len() >= 9 && row[6] != "-",
            "partition without an owner: {row:?}\n{offsets}"
        );
    }
}

fn scenario(strategy: &str) {
    let _serial = serial();
    let broker = Broker::start(&[
        ("group.consumer.session.timeout.ms", SESSION_MS),
        ("group.consumer.heartbeat.interval.ms", "500"),
    ]);
    create_topic(&broker, TOPIC, PARTS as u32);
    let dir = broker.temp_dir().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember"]);
    let stop = dir.join("producer.stop");
    let mut producer = Proc(python_spawn(
        PY_PRODUCER,
        &broker.bootstrap(),
        &[("STOP", stop.to_str().unwrap()), ("TOPIC", TOPIC)],
        &dir,
        "producer",
    ));
    let settle = Duration::from_secs(60);

    // Three Java members join one at a time.
    let m1 = java_member(&classpath, &broker, &dir, "m1", strategy);
    wait_one_owner_each(&dir, &["m1"], PARTS, settle);
    let m2 = java_member(&classpath, &broker, &dir, "m2", strategy);
    wait_one_owner_each(&dir, &["m1", "m2"], PARTS, settle);
    let mut m3 = java_member(&classpath, &broker, &dir, "m3", strategy);
    wait_one_owner_each(&dir, &["m1", "m2", "m3"], PARTS, settle);
    // One owner each can hold mid-way (m3 has some, the others still revoke): wait for the balance.
    wait_for("each of three members to own 4 of 12 partitions", settle, || {
        ["m1", "m2", "m3"].iter().all(|m| owned(&dir, m).len() == 4)
    });
    let assignor = strategy.split_once(':').map_or("uniform", |(_, a)| a);
    let described = python_env_ok(PY_DESCRIBE, &broker.bootstrap(), &[("GROUP", "kip848")]);
    assert_eq!(described.trim(), format!("CONSUMER STABLE {assignor} 4,4,4"));
    check_consumer_groups_tool(&broker, assignor);

    // A librdkafka member joins; then m2 leaves the group.
    let rdk = py_member(&broker, &dir, "rdk", TOPIC, "kip848", "consumer", SESSION_MS);
    wait_one_owner_each(&dir, &["m1", "m2", "m3", "rdk"], PARTS, settle);
    java_leave(&dir, "m2", m2);
    wait_one_owner_each(&dir, &["m1", "m3", "rdk"], PARTS, settle);

    // m3 is killed: its partitions move once the broker fences it (session timeout).
    let killed_at = now_ms();
    m3.kill9();
    wait_one_owner_each(&dir, &["m1", "rdk"], PARTS, Duration::from_secs(6 + 20));
    eprintln!("partitions moved {} ms after the kill", now_ms() - killed_at);

    let all = ["m1", "m2", "m3", "rdk"];
    let died = BTreeMap::from([("m3", killed_at)]);
    assert_one_owner_at_a_time(&dir, &all, &died);
    for m in all {
        let events = ownership_events(&dir, m);
        eprintln!("{m}: {} rebalance callbacks: {events:?}", events.len());
    }
    stop_producer_and_check_consumed(&dir, &mut producer, &stop, &all, Duration::from_secs(30));
    drop((m1, rdk));
}

#[test]
fn kip848_java_and_librdkafka_members_uniform() {
    scenario("consumer");
}

#[test]
fn kip848_java_members_range() {
    scenario("consumer:range");
}

/// A broker restart under a stable consumer-protocol group: the group's records in
/// `__consumer_offsets` bring back the member epochs and assignments, so the members carry on
/// (no rebalance callback, same epoch) and no record is skipped.
#[test]
fn kip848_group_survives_a_broker_restart() {
    let _serial = serial();
    let mut broker = Broker::start(&[
        ("group.consumer.session.timeout.ms", "10000"),
        ("group.consumer.heartbeat.interval.ms", "500"),
    ]);
    create_topic(&broker, TOPIC, PARTS as u32);
    let dir = broker.temp_dir().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember"]);
    let stop = dir.join("producer.stop");
    let mut producer = Proc(python_spawn(
        PY_PRODUCER,
        &broker.bootstrap(),
        &[("STOP", stop.to_str().unwrap()), ("TOPIC", TOPIC)],
        &dir,
        "producer",
    ));
    let names = ["m1", "m2", "m3"];
    let members: Vec<Proc> = names
        .iter()
        .map(|n| java_member(&classpath, &broker, &dir, n, "consumer"))
        .collect();
    wait_one_owner_each(&dir, &names, PARTS, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    one_owner_each(&dir, &names, PARTS).expect("a stable group");
    let epochs = |n: &str| generations_after(&dir, n, 0);
    let before: Vec<(Vec<i32>, usize)> = names
        .iter()
        .map(|n| (epochs(n), ownership_events(&dir, n).len()))
        .collect();

    broker.restart();
    // Past a few heartbeats and well past where a rebalance would have shown.
    std::thread::sleep(Duration::from_secs(8));
    one_owner_each(&dir, &names, PARTS).expect("the same owners after the restart");
    for (n, (epochs_before, events_before)) in names.iter().zip(&before) {
        let events = ownership_events(&dir, n);
        assert_eq!(
            events.len(),
            *events_before,
            "{n} saw a rebalance after the restart: {:?}",
            &events[*events_before..]
        );
        assert_eq!(
            epochs(n).last(),
            epochs_before.last(),
            "{n}'s member epoch changed across the restart"
        );
    }
    stop_producer_and_check_consumed(&dir, &mut producer, &stop, &names, Duration::from_secs(30));
    drop(members);
}

/// A failover of the group's coordinator (issue 14): three brokers, `__consumer_offsets` and the topic
/// at RF 3, a stable consumer-protocol group of three Java members under a producer; the broker that
/// leads the group's `__consumer_offsets` partition is killed -9. Its successor loads the group's
/// records from its replica, so the members carry on with their member epochs and assignments (no
/// rebalance callback) and no record is skipped.
#[test]
fn kip848_group_survives_its_coordinators_failover() {
    let _serial = serial();
    let mut cluster = Cluster::start_with(cluster::Options {
        broker_config: &[
            ("group.consumer.session.timeout.ms", "15000"),
            ("group.consumer.heartbeat.interval.ms", "500"),
        ],
        ..Default::default()
    });
    cluster.create_topic(TOPIC, PARTS as u32, 3);
    cluster.wait_all_led(TOPIC, PARTS as usize);
    let all = [1, 2, 3].map(|id| cluster.broker(id).bootstrap()).join(",");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember"]);
    let stop = dir.join("producer.stop");
    let mut producer = Proc(python_spawn(
        PY_PRODUCER,
        &all,
        &[("STOP", stop.to_str().unwrap()), ("TOPIC", TOPIC)],
        &dir,
        "producer",
    ));
    let names = ["m1", "m2", "m3"];
    let members: Vec<Proc> = names
        .iter()
        .map(|n| java_member(&classpath, cluster.broker(1), &dir, n, "consumer"))
        .collect();
    wait_one_owner_each(&dir, &names, PARTS, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(3));
    one_owner_each(&dir, &names, PARTS).expect("a stable group");
    let epochs = |n: &str| generations_after(&dir, n, 0);
    let before: Vec<(Vec<i32>, usize)> = names
        .iter()
        .map(|n| (epochs(n), ownership_events(&dir, n).len()))
        .collect();

    let offsets_leaders = cluster::partition_leaders(&cluster.metadata_via(1), "__consumer_offsets");
    let coordinator = offsets_leaders[&cluster::offsets_partition("kip848", 50)];
    assert!(
        coordinator > 0,
        "the group's partition has a leader: {offsets_leaders:?}"
    );
    cluster.broker_mut(coordinator).kill9();
    // Past the broker session timeout (the controller moves leadership), a new coordinator's load,
    // and many heartbeats.
    std::thread::sleep(Duration::from_secs(15));
    one_owner_each(&dir, &names, PARTS).expect("the same owners after the failover");
    for (n, (epochs_before, events_before)) in names.iter().zip(&before) {
        let events = ownership_events(&dir, n);
        assert_eq!(
            events.len(),
            *events_before,
            "{n} saw a rebalance after broker {coordinator} (its coordinator) was killed: {:?}\n{}",
            &events[*events_before..],
            cluster.logs()
        );
        assert_eq!(
            epochs(n).last(),
            epochs_before.last(),
            "{n}'s member epoch changed across the failover"
        );
    }
    let now_leader = cluster::partition_leaders(
        &cluster.metadata_via(if coordinator == 1 { 2 } else { 1 }),
        "__consumer_offsets",
    )[&cluster::offsets_partition("kip848", 50)];
    assert!(
        now_leader > 0 && now_leader != coordinator,
        "the group's partition moved to a live broker: {now_leader}"
    );
    stop_producer_and_check_consumed(&dir, &mut producer, &stop, &names, Duration::from_secs(60));
    drop(members);
}

/// A subscription by regex (`SubscriptionPattern`, resolved by the broker with RE2 semantics) picks up
/// a topic created after the member joined, and never a topic it does not match.
#[test]
fn kip848_regex_subscription_picks_up_a_new_topic() {
    let _serial = serial();
    let broker = Broker::start(&[("group.consumer.heartbeat.interval.ms", "500")]);
    let bootstrap = broker.bootstrap();
    create_topic(&broker, "orders-eu", 3);
    create_topic(&broker, "other", 1);
    produce_numbers(&bootstrap, "orders-eu", 100);
    produce_numbers(&bootstrap, "other", 5000);
    let dir = broker.temp_dir().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember"]);
    let member = java_member_on(&classpath, &broker, &dir, "m1", "regex:orders-.*", "consumer");
    let values = || -> std::collections::BTreeSet<usize> {
        records(&dir, &["m1"])
            .into_iter()
            .map(|(_, _, v)| v.parse().unwrap())
            .collect()
    };
    wait_for("orders-eu to be consumed", Duration::from_secs(60), || {
        values().len() == 100
    });
    create_topic(&broker, "orders-us", 2);
    produce_numbers(&bootstrap, "orders-us", 1000);
    wait_for(
        "the new topic orders-us to be consumed",
        Duration::from_secs(60),
        || values() == (0..1000).collect(),
    );
    assert_eq!(
        owned(&dir, "m1"),
        (0..3).collect(),
        "partitions 0-2 of orders-eu and 0-1 of orders-us"
    );
    drop(member);
}

/// A static member (`group.instance.id`) that closes (leaving with epoch -2) and starts again within
/// its session gets the same partitions back, and the other member sees no rebalance.
#[test]
fn kip848_static_member_restart_keeps_its_assignment() {
    let _serial = serial();
    let broker = Broker::start(&[
        ("group.consumer.session.timeout.ms", "20000"),
        ("group.consumer.heartbeat.interval.ms", "500"),
    ]);
    create_topic(&broker, TOPIC, PARTS as u32);
    let dir = broker.temp_dir().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember"]);
    let s1 = java_member_full(&classpath, &broker, &dir, "s1", TOPIC, "consumer", "static-1");
    let other = java_member(&classpath, &broker, &dir, "m2", "consumer");
    wait_for("two members with 6 partitions each", Duration::from_secs(60), || {
        owned(&dir, "s1").len() == 6 && owned(&dir, "m2").len() == 6
    });
    let before = owned(&dir, "s1");
    let m2_events = ownership_events(&dir, "m2").len();
    java_leave(&dir, "s1", s1);
    let again = java_member_full(&classpath, &broker, &dir, "s1-again", TOPIC, "consumer", "static-1");
    wait_for(
        "the restarted static member to own partitions",
        Duration::from_secs(30),
        || !owned(&dir, "s1-again").is_empty(),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        owned(&dir, "s1-again"),
        before,
        "the static member got other partitions back"
    );
    let events = ownership_events(&dir, "m2");
    assert_eq!(
        events.len(),
        m2_events,
        "the other member saw a rebalance: {:?}",
        &events[m2_events..]
    );
    assert_one_owner_at_a_time(&dir, &["s1", "s1-again", "m2"], &BTreeMap::new());
    drop((again, other));
}

/// Rack-aware assignment: three brokers in racks a, b and c, a topic of 6 partitions with one replica
/// each (spread over the racks by placement), and three Java members with `client.rack` a, b and c.
/// Each member gets exactly the partitions whose replica is in its rack, with `uniform` and `range`.
#[test]
fn kip848_members_get_the_partitions_in_their_rack() {
    let _serial = serial();
    const RACKS: [&str; 3] = ["a", "b", "c"];
    let cluster = Cluster::start_with(cluster::Options {
        racks: Some(RACKS),
        ..Default::default()
    });
    cluster.create_topic("local", 6, 1);
    let leaders = cluster.wait_all_led("local", 6);
    let mut expected: BTreeMap<&str, std::collections::BTreeSet<i32>> = BTreeMap::new();
    for (p, leader) in &leaders {
        expected.entry(RACKS[*leader as usize - 1]).or_default().insert(*p);
    }
    assert!(
        expected.len() == 3 && expected.values().all(|ps| ps.len() == 2),
        "placement spreads the 6 single-replica partitions over the 3 racks: {leaders:?}"
    );
    let broker = cluster.broker(1);
    let dir = broker.temp_dir().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember"]);
    for assignor in ["uniform", "range"] {
        let strategy = format!("consumer:{assignor}");
        let group = format!("racks-{assignor}");
        let members: Vec<Proc> = RACKS
            .iter()
            .map(|rack| {
                let name = format!("{assignor}-{rack}");
                let rack_arg = format!("-Doxka.client.rack={rack}");
                let leave = dir.join(format!("{name}.leave"));
                let args = [
                    rack_arg.as_str(),
                    "GroupMember",
                    &broker.bootstrap(),
                    "local",
                    &group,
                    &strategy,
                    "-",
                    "-",
                    leave.to_str().unwrap(),
                ];
                java_spawn(&classpath, &dir, &name, &args)
            })
            .collect();
        wait_for(
            &format!("{assignor}: each member to own the partitions in its rack {expected:?}"),
            Duration::from_secs(60),
            || {
                RACKS
                    .iter()
                    .all(|rack| owned(&dir, &format!("{assignor}-{rack}")) == expected[rack])
            },
        );
        drop(members);
    }
}

/// ConsumerGroupHeartbeat and ConsumerGroupDescribe are announced in ApiVersions only while
/// `group.coordinator.rebalance.protocols` contains `consumer` (Kafka's `kafka-broker-api-versions`
/// reads the table).
#[test]
fn kip848_apis_are_announced_only_when_enabled() {
    for (protocols, announced) in [("classic,consumer", true), ("classic", false)] {
        let broker = Broker::start(&[("group.coordinator.rebalance.protocols", protocols)]);
        let out = kafka_tool("4", "broker-api-versions", &["--bootstrap-server", &broker.bootstrap()]);
        let text = expect_success("kafka-broker-api-versions", &out);
        for api in ["ConsumerGroupHeartbeat(68)", "ConsumerGroupDescribe(69)"] {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(api))
                .unwrap_or_else(|| panic!("no {api} line in:\n{text}"));
            assert_eq!(!line.contains("UNSUPPORTED"), announced, "{protocols}: {line}");
        }
    }
}

/// ConsumerGroupHeartbeat v1 written by hand on `conn`: `member` of `group` at `epoch`, subscribing to
/// the topic when it joins (epoch 0). Returns the answer and how long it took.
fn group_heartbeat(
    conn: &mut raw::Connection,
    group: &str,
    member: &str,
    epoch: i32,
) -> (kafka_protocol::messages::ConsumerGroupHeartbeatResponse, Duration) {
    use kafka_protocol::messages::{ApiKey, ConsumerGroupHeartbeatRequest, GroupId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let joining = epoch == 0;
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if joining { 30_000 } else { -1 })
        .with_subscribed_topic_names(joining.then(|| vec![TopicName(StrBytes::from_static_str(TOPIC))]))
        .with_topic_partitions(joining.then(Vec::new));
    let started = std::time::Instant::now();
    conn.send(ApiKey::ConsumerGroupHeartbeat, 1, &request);
    let (_, response) = raw::decode(ApiKey::ConsumerGroupHeartbeat, 1, raw::read_frame(&mut conn.stream));
    (response, started.elapsed())
}

/// Issue 14: the group coordinator answers a heartbeat only once the records behind the answer are on
/// every in-sync replica of the group's `__consumer_offsets` partition (Kafka's coordinator runtime
/// completes a write at the high watermark). With both followers of that partition frozen (SIGSTOP,
/// still in the ISR), a joining member's heartbeat waits and is answered COORDINATOR_NOT_AVAILABLE
/// after the write timeout, instead of an epoch that a failover could take back. Once the followers
/// run again, a join is answered, the coordinator is killed -9, and its successor knows the member
/// at the epoch it was given.
#[test]
fn a_group_heartbeat_is_answered_only_once_the_in_sync_replicas_have_its_records() {
    let _serial = serial();
    let mut cluster = Cluster::start_with(cluster::Options {
        // Frozen followers stay registered (and in the ISR) for the length of the wait.
        session_timeout_ms: 12_000,
        broker_config: &[("replica.lag.time.max.ms", "60000")],
        ..Default::default()
    });
    cluster.create_topic(TOPIC, 3, 3);
    cluster.wait_all_led(TOPIC, 3);
    let group = "acked-epochs";
    let coordinator = cluster.group_coordinator(1, group, None);
    let followers: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != coordinator).collect();
    for f in &followers {
        cluster.broker(*f).pause();
    }
    let mut conn = raw::Connection::connect(&cluster.broker(coordinator).bootstrap());
    let (frozen, took) = group_heartbeat(&mut conn, group, "member-a", 0);
    for f in &followers {
        cluster.broker(*f).resume();
    }
    assert_eq!(
        frozen.error_code, 15,
        "with the followers frozen the join is not acknowledged (COORDINATOR_NOT_AVAILABLE), \
         answered after {took:?}: {frozen:?}"
    );
    assert!(
        took >= Duration::from_secs(4),
        "the answer waited for the followers: {took:?}"
    );

    // The followers run again: a join is answered, with the records on every in-sync replica.
    let joined = cluster.wait_until("the join answered", Duration::from_secs(30), || {
        let (r, _) = group_heartbeat(&mut conn, group, "member-b", 0);
        if r.error_code == 0 {
            Ok(r)
        } else {
            Err(format!("error {}", r.error_code))
        }
    });
    assert!(joined.member_epoch > 0, "{joined:?}");
    cluster.broker_mut(coordinator).kill9();
    let successor = followers[0];
    let now = cluster.group_coordinator(successor, group, Some(coordinator));
    let mut conn = raw::Connection::connect(&cluster.broker(now).bootstrap());
    let answer = cluster.wait_until("the new coordinator's answer", Duration::from_secs(30), || {
        let (r, _) = group_heartbeat(&mut conn, group, "member-b", joined.member_epoch);
        // COORDINATOR_LOAD_IN_PROGRESS (14), COORDINATOR_NOT_AVAILABLE (15), NOT_COORDINATOR (16).
        if [14, 15, 16].contains(&r.error_code) {
            Err(format!("error {}", r.error_code))
        } else {
            Ok(r)
        }
    });
    assert_eq!(
        answer.error_code, 0,
        "the new coordinator knows member-b at epoch {}: {answer:?}",
        joined.member_epoch
    );
    assert!(answer.member_epoch >= joined.member_epoch, "{answer:?}");
}
