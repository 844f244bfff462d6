//! Online migration between classic and consumer groups (KIP-848's upgrade path, Kafka 4.x's
//! `group.consumer.migration.policy=bidirectional` default) with real clients: three Kafka 4.1.1
//! Java consumers (`tests/java/GroupMember.java`) on a 12-partition topic under a continuous
//! producer start with `group.protocol=classic` (cooperative-sticky); they are restarted one at a
//! time with `group.protocol=consumer` (the first one turns the running classic group into a
//! consumer group whose other members stay classic), then one at a time back to classic (the last
//! consumer-protocol member, a static one, is replaced by its instance on the classic protocol,
//! which turns the group classic again). Checked: at every moment the
//! members' rebalance callbacks show, no partition has two owners; every produced record is consumed
//! with no offset skipped; `kafka-consumer-groups` lists the group as consumer after the upgrade
//! and as classic after the downgrade; in the mixed phase `--describe --members --verbose` marks
//! the one consumer-protocol member UPGRADED and DescribeGroups answers "not a classic group".

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::group_members::*;
use common::*;

const TOPIC: &str = "events";
const GROUP: &str = "rolling";
const PARTS: i32 = 12;

/// A Java member of `GROUP`: `protocol` is a classic assignment strategy (`cooperative-sticky`) or
/// `consumer` (KIP-848); `instance` its `group.instance.id` ("-": a dynamic member).
fn member(classpath: &str, broker: &Broker, dir: &Path, name: &str, protocol: &str, instance: &str) -> Proc {
    let leave = dir.join(format!("{name}.leave"));
    let args = [
        "GroupMember",
        &broker.bootstrap(),
        TOPIC,
        GROUP,
        protocol,
        "6000",
        instance,
        leave.to_str().unwrap(),
    ];
    java_spawn(classpath, dir, name, &args)
}

/// `kafka-consumer-groups --list --type <kind>` lists the group (KIP-1043's type filter).
fn assert_listed_as(broker: &Broker, kind: &str) {
    let listed = consumer_groups_tool(broker, &["--list", "--type", kind]);
    assert!(
        listed.lines().any(|l| l.split_whitespace().next() == Some(GROUP)),
        "{GROUP} is not listed as a {kind} group:\n{listed}"
    );
}

/// `kafka-consumer-groups --describe --state`: the group's row (state, member count).
fn state_row(broker: &Broker) -> String {
    let out = consumer_groups_tool(broker, &["--describe", "--group", GROUP, "--state"]);
    out.lines()
        .find(|l| l.starts_with(&format!("{GROUP} ")))
        .unwrap_or_else(|| panic!("no state row:\n{out}"))
        .to_string()
}

/// DescribeGroups v6 on the group while it is a consumer group (with classic members): Kafka 4.1
/// answers it only for classic groups (`GroupMetadataManager.describeGroups`): Dead,
/// GROUP_ID_NOT_FOUND, "Group … is not a classic group.", no members.
fn assert_not_a_classic_group(broker: &Broker) {
    use common::raw::{decode, Connection};
    use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
    use kafka_protocol::protocol::StrBytes;

    let mut connection = Connection::connect(&broker.bootstrap());
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_static_str(GROUP))]);
    connection.send(ApiKey::DescribeGroups, 6, &request);
    let frame = common::raw::read_frame(&mut connection.stream);
    let (_, response): (i32, DescribeGroupsResponse) = decode(ApiKey::DescribeGroups, 6, frame);
    let group = &response.groups[0];
    assert_eq!(group.error_code, 69, "GROUP_ID_NOT_FOUND: {group:?}");
    assert_eq!(group.group_state.as_str(), "Dead");
    assert_eq!(
        group.error_message.as_ref().map(|m| m.to_string()).as_deref(),
        Some("Group rolling is not a classic group.")
    );
    assert!(group.members.is_empty());
}

#[test]
fn classic_members_roll_to_the_consumer_protocol_and_back_online() {
    let _serial = serial();
    let broker = Broker::start(&[
        ("group.consumer.session.timeout.ms", "20000"),
        ("group.consumer.heartbeat.interval.ms", "500"),
        ("group.initial.rebalance.delay.ms", "0"),
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
    let settle = Duration::from_secs(30);
    let started = std::time::Instant::now();
    let mut all: Vec<String> = Vec::new();
    let mut running: Vec<(String, Proc)> = Vec::new();

    // Three classic members.
    for name in ["c1", "c2", "c3"] {
        running.push((
            name.to_string(),
            member(&classpath, &broker, &dir, name, "cooperative-sticky", "-"),
        ));
        all.push(name.to_string());
    }
    let names = |running: &[(String, Proc)]| running.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let wait_owned = |running: &[(String, Proc)]| {
        let current = names(running);
        let refs: Vec<&str> = current.iter().map(String::as_str).collect();
        wait_one_owner_each(&dir, &refs, PARTS, settle);
    };
    wait_owned(&running);
    eprintln!("{:?}: three classic members", started.elapsed());

    // Upgrade: each classic member in turn is replaced by a consumer-protocol member.
    for (i, name) in ["k1", "k2", "k3"].iter().enumerate() {
        // The replacement's JVM starts while the old member leaves (a rolling restart, overlapped).
        let (old, proc) = running.remove(0);
        // k3 is a static member (instance s3), replaced below by a classic static member.
        let instance = if *name == "k3" { "s3" } else { "-" };
        running.push((
            name.to_string(),
            member(&classpath, &broker, &dir, name, "consumer", instance),
        ));
        java_leave(&dir, &old, proc);
        all.push(name.to_string());
        wait_owned(&running);
        eprintln!("{:?}: {name} replaced {old}", started.elapsed());
        if i == 0 {
            // A consumer group now, with two classic members and one consumer-protocol member.
            assert_listed_as(&broker, "consumer");
            // Kafka 4.1's tool describes it with ConsumerGroupDescribe; its UPGRADED column (the
            // member type, KIP-1099) says which member speaks the consumer protocol.
            let members = consumer_groups_tool(&broker, &["--describe", "--group", GROUP, "--members", "--verbose"]);
            eprintln!("{members}");
            let upgraded: Vec<&str> = members
                .lines()
                .filter(|l| l.starts_with(&format!("{GROUP} ")))
                .filter_map(|l| l.split_whitespace().last())
                .collect();
            assert_eq!(upgraded.len(), 3, "{members}");
            assert_eq!(upgraded.iter().filter(|u| **u == "true").count(), 1, "{members}");
            assert_eq!(upgraded.iter().filter(|u| **u == "false").count(), 2, "{members}");
            assert_not_a_classic_group(&broker);
        }
    }
    // A consumer group shows its server-side assignor.
    let row = state_row(&broker);
    eprintln!("after the upgrade: {row}");
    assert!(row.contains(" uniform ") && row.trim_end().ends_with(" 3"), "{row}");

    // Downgrade: each consumer-protocol member in turn is replaced by a classic member. The last
    // one, k3, is static: it leaves for a while (epoch -2, keeping its partitions) and its
    // instance comes back on the classic protocol, which turns the group classic at once
    // (Kafka's static-replacement downgrade: no rebalance, d3 takes k3's assignment).
    for name in ["d1", "d2", "d3"] {
        let (old, proc) = running.remove(0);
        if name == "d3" {
            java_leave(&dir, &old, proc);
            running.push((
                name.to_string(),
                member(&classpath, &broker, &dir, name, "cooperative-sticky", "s3"),
            ));
        } else {
            running.push((
                name.to_string(),
                member(&classpath, &broker, &dir, name, "cooperative-sticky", "-"),
            ));
            java_leave(&dir, &old, proc);
        }
        all.push(name.to_string());
        wait_owned(&running);
        eprintln!("{:?}: {name} replaced {old}", started.elapsed());
    }
    let log = broker.log_text();
    assert!(
        log.contains("static member replaced the last consumer-protocol member using the classic protocol"),
        "d3 did not replace k3 as a static member: {}",
        broker.log_tail(60)
    );
    assert_listed_as(&broker, "classic");
    let row = state_row(&broker);
    eprintln!("after the downgrade: {row}");
    assert!(
        row.contains("cooperative-sticky") && row.trim_end().ends_with(" 3"),
        "{row}"
    );

    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_one_owner_at_a_time(&dir, &refs, &BTreeMap::new());
    for m in &refs {
        eprintln!("{m}: {:?}", ownership_events(&dir, m));
    }
    let produced = stop_producer_and_check_consumed(&dir, &mut producer, &stop, &refs, Duration::from_secs(30));
    eprintln!("{:?}: {produced} records produced, all consumed", started.elapsed());
    drop(running);
}
