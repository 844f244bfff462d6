//! Unit tests of online migration (pure state): a classic group with members becomes a consumer
//! group, its classic members join / sync / heartbeat inside it while a consumer-protocol member
//! takes partitions from them (revoke before assign), the group turns classic again when the last
//! consumer-protocol member leaves or a classic static member replaces it, and the policy can
//! refuse; the edge cases: the sync timeout, replayed session timeouts, a ConsumerGroupHeartbeat
//! carrying a classic member's id, a consumer static member replacing its classic incarnation.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::classic_member::ClassicJoin;
use super::migration::{from_classic, into_classic, should_downgrade, validate_online_upgrade};
use super::records::{decode_member_metadata, encode_member_metadata, MemberMetadata};
use super::*;
use crate::group::classic_group::{Group, GroupState};
use crate::group::config::{GroupConfig, MigrationPolicy};
use crate::group::consumer_protocol::{decode_assignment, encode_assignment, encode_subscription, TopicPartitions};
use crate::group::member::{Member, Protocol};

const TOPIC: Uuid = Uuid::from_u128(7);
const GENERATION: i32 = 3;

/// One topic `t` of 6 partitions.
struct OneTopic;

impl TopicSource for OneTopic {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        (name == "t").then_some(TopicInfo {
            id: TOPIC,
            partitions: 6,
            partition_racks: Vec::new(),
        })
    }

    fn topic_names(&self) -> Vec<String> {
        vec!["t".to_string()]
    }
}

fn by_name(ps: &[i32]) -> TopicPartitions {
    if ps.is_empty() {
        return TopicPartitions::new();
    }
    BTreeMap::from([("t".to_string(), ps.iter().copied().collect())])
}

fn by_id(ps: &[i32]) -> Assignment {
    if ps.is_empty() {
        return Assignment::new();
    }
    BTreeMap::from([(TOPIC, ps.iter().copied().collect())])
}

fn protocols(owned: &[i32]) -> Vec<Protocol> {
    vec![Protocol {
        name: "range".to_string(),
        metadata: encode_subscription(&["t"], &by_name(owned), None),
    }]
}

/// A Stable classic group at generation 3 whose members own the given partitions of `t`.
fn classic_group(members: &[(&str, &[i32])]) -> Group {
    let mut g = Group::new("g", 0);
    g.protocol_type = Some("consumer".to_string());
    g.protocol_name = Some("range".to_string());
    g.generation_id = GENERATION;
    for (id, owned) in members {
        g.add_member(Member {
            member_id: id.to_string(),
            group_instance_id: None,
            client_id: "c".to_string(),
            client_host: "/127.0.0.1".to_string(),
            rebalance_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            protocol_type: "consumer".to_string(),
            protocols: protocols(owned),
            assignment: encode_assignment(1, &by_name(owned)),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            last_heartbeat_ms: 0,
        });
    }
    g.transition(GroupState::Stable, 0);
    g
}

fn consumer_join(id: &str) -> Heartbeat {
    Heartbeat {
        member_id: id.to_string(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".to_string()]),
        owned: Some(Assignment::new()),
        ..Heartbeat::default()
    }
}

fn consumer_beat(id: &str, epoch: i32, owned: &[i32]) -> Heartbeat {
    Heartbeat {
        member_id: id.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(by_id(owned)),
        ..Heartbeat::default()
    }
}

fn classic_join(id: &str, owned: &[i32]) -> ClassicJoin {
    ClassicJoin {
        member_id: id.to_string(),
        unknown_member: false,
        instance_id: None,
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".to_string(),
        protocols: protocols(owned),
    }
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.get(&TOPIC).cloned().unwrap_or_default()
}

/// No partition is owned (assigned or pending revocation) by two members.
fn assert_single_owners(g: &ConsumerGroup) {
    let mut seen = BTreeMap::new();
    for m in g.members.values() {
        for p in parts(&m.assigned).iter().chain(&parts(&m.pending_revocation)) {
            if let Some(other) = seen.insert(*p, m.member_id.clone()) {
                panic!("partition {p} owned by {other} and {}", m.member_id);
            }
        }
    }
}

#[test]
fn a_classic_group_with_members_becomes_a_consumer_group_of_classic_members() {
    let classic = classic_group(&[("a", &[0, 1, 2]), ("b", &[3, 4, 5])]);
    assert_eq!(validate_online_upgrade(&GroupConfig::default(), &classic), Ok(()));
    let g = from_classic(&classic, &OneTopic, 1000).unwrap();
    assert_eq!((g.group_epoch, g.assignment_epoch), (GENERATION, GENERATION));
    let a = &g.members["a"];
    assert_eq!((a.member_epoch, a.state), (GENERATION, MemberState::Stable));
    assert_eq!(parts(&a.assigned), BTreeSet::from([0, 1, 2]));
    assert_eq!(parts(&g.target["b"]), BTreeSet::from([3, 4, 5]));
    assert_eq!(a.subscribed_topic_names, BTreeSet::from(["t".to_string()]));
    let classic_meta = a.classic.as_ref().unwrap();
    assert_eq!(classic_meta.session_timeout_ms, 10_000);
    assert_eq!(classic_meta.supported_protocols[0].name, "range");
    assert_eq!(a.session_deadline_ms, 11_000);
    assert!(g.subscribed_topics.contains_key("t"));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
}

#[test]
fn the_policy_and_the_protocol_type_can_refuse_the_upgrade() {
    let classic = classic_group(&[("a", &[0])]);
    for policy in [MigrationPolicy::Disabled, MigrationPolicy::Downgrade] {
        let config = GroupConfig {
            consumer_migration_policy: policy,
            ..GroupConfig::default()
        };
        assert_eq!(
            validate_online_upgrade(&config, &classic),
            Err("the online upgrade is disabled")
        );
    }
    let mut connect = classic.clone();
    connect.protocol_type = Some("connect".to_string());
    assert!(validate_online_upgrade(&GroupConfig::default(), &connect).is_err());
    let small = GroupConfig {
        consumer_max_size: 0,
        ..GroupConfig::default()
    };
    assert!(validate_online_upgrade(&small, &classic).is_err());
    assert_eq!(
        migration::not_a_consumer_group("g"),
        (
            ResponseError::GroupIdNotFound,
            "Group g is not a consumer group.".to_string()
        )
    );
}

#[test]
fn classic_members_revoke_by_rejoining_before_a_consumer_member_gets_their_partitions() {
    let config = GroupConfig::default();
    let mut g = from_classic(&classic_group(&[("a", &[0, 1, 2]), ("b", &[3, 4, 5])]), &OneTopic, 0).unwrap();
    // A consumer-protocol member joins: a new group epoch, but every partition is still owned.
    let answer = g.heartbeat(&config, &consumer_join("c"), &OneTopic, 0).unwrap();
    assert_eq!(g.group_epoch, GENERATION + 1);
    assert_eq!(answer.assignment, Some(Assignment::new()));
    assert_eq!(g.members["c"].state, MemberState::UnreleasedPartitions);
    assert_single_owners(&g);

    // The classic members learn it from their heartbeat, and rejoin.
    assert_eq!(
        g.classic_heartbeat("a", None, GENERATION, 10),
        Err(ResponseError::RebalanceInProgress)
    );
    let joined = g
        .classic_join(&config, &classic_join("a", &[0, 1, 2]), &OneTopic, 20)
        .unwrap();
    // It must revoke first: same generation, state unrevoked, SyncGroup gives it what it keeps.
    assert_eq!(joined.generation_id, GENERATION);
    assert_eq!(joined.protocol_name, "range");
    assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
    let kept = g
        .classic_sync("a", None, GENERATION, Some("consumer"), Some("range"), 30)
        .unwrap();
    assert_eq!(parts(&kept).len(), 2);
    assert_single_owners(&g);
    // The revoked partition is not the consumer member's yet.
    let c_epoch = g.members["c"].member_epoch;
    let answer = g
        .heartbeat(&config, &consumer_beat("c", c_epoch, &[]), &OneTopic, 40)
        .unwrap();
    assert!(answer.assignment.is_none_or(|a| a.is_empty()));

    // It revoked (a cooperative consumer rejoins after revoking): now at the new epoch.
    let kept_now: Vec<i32> = parts(&kept).into_iter().collect();
    let joined = g
        .classic_join(&config, &classic_join("a", &kept_now), &OneTopic, 50)
        .unwrap();
    assert_eq!(joined.generation_id, GENERATION + 1);
    assert_eq!(
        g.classic_sync("a", None, GENERATION, None, None, 55),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.classic_sync("a", None, GENERATION + 1, None, None, 60).unwrap(),
        by_id(&kept_now)
    );
    assert_eq!(g.classic_heartbeat("a", None, GENERATION + 1, 70), Ok(()));
    // The freed partition goes to the consumer member on its next heartbeat.
    let answer = g
        .heartbeat(&config, &consumer_beat("c", c_epoch, &[]), &OneTopic, 80)
        .unwrap();
    assert_eq!(parts(&answer.assignment.unwrap()).len(), 1);
    assert_single_owners(&g);
    // Errors of the classic APIs.
    assert_eq!(
        g.classic_heartbeat("nobody", None, 1, 90),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        g.classic_heartbeat("c", None, g.members["c"].member_epoch, 90),
        Err(ResponseError::UnknownMemberId),
        "a consumer-protocol member has no classic heartbeat"
    );
    let mut wrong = classic_join("d", &[]);
    wrong.protocol_type = "connect".to_string();
    assert_eq!(
        g.classic_join(&config, &wrong, &OneTopic, 100),
        Err(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn the_group_turns_classic_when_the_last_consumer_member_leaves() {
    let config = GroupConfig::default();
    let mut group = classic_group(&[("a", &[0, 1, 2]), ("b", &[3, 4, 5])]);
    let mut consumer = from_classic(&group, &OneTopic, 0).unwrap();
    let answer = consumer.heartbeat(&config, &consumer_join("c"), &OneTopic, 0).unwrap();
    let leave = Heartbeat {
        member_id: "c".to_string(),
        member_epoch: -1,
        ..Heartbeat::default()
    };
    assert!(!should_downgrade(&config, &consumer));
    consumer.heartbeat(&config, &leave, &OneTopic, 10).unwrap();
    assert!(answer.member_epoch > 0);
    assert!(should_downgrade(&config, &consumer));
    let disabled = GroupConfig {
        consumer_migration_policy: MigrationPolicy::Upgrade,
        ..GroupConfig::default()
    };
    assert!(!should_downgrade(&disabled, &consumer));
    let epoch = consumer.group_epoch;
    let targets: BTreeMap<String, Assignment> = consumer.target.clone();
    group.members.clear();
    group.consumer = Some(Box::new(consumer));
    into_classic(&mut group, 20);
    assert!(group.consumer.is_none());
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.generation_id, epoch);
    assert_eq!(group.protocol_name.as_deref(), Some("range"));
    assert_eq!(group.members.len(), 2);
    assert!(group.leader_id.is_some());
    for (id, m) in &group.members {
        let assigned = decode_assignment(&m.assignment).unwrap();
        let want: TopicPartitions = targets[id].values().map(|ps| ("t".to_string(), ps.clone())).collect();
        assert_eq!(assigned, want, "member {id} gets its target assignment");
        assert_eq!(m.session_timeout_ms, 10_000);
    }
    // And the rebalance that follows.
    let mut fx = Vec::new();
    group.maybe_prepare_rebalance(&config, 30, &mut fx);
    assert_eq!(group.state, GroupState::PreparingRebalance);
}

#[test]
fn classic_member_metadata_round_trips_through_its_record() {
    let g = from_classic(&classic_group(&[("a", &[1])]), &OneTopic, 0).unwrap();
    let meta = MemberMetadata::of(&g.members["a"]);
    assert!(meta.classic.is_some());
    let bytes = encode_member_metadata(&meta);
    assert_eq!(decode_member_metadata(&bytes).unwrap(), meta);
    // Without it, the record ends with an empty tagged-field section, as before.
    let plain = MemberMetadata {
        classic: None,
        ..meta.clone()
    };
    let plain_bytes = encode_member_metadata(&plain);
    assert_eq!(plain_bytes.last(), Some(&0));
    assert_eq!(decode_member_metadata(&plain_bytes).unwrap(), plain);
    // The tagged field: count 1, tag 0, size, then the present-struct marker 1.
    let tail = &bytes[plain_bytes.len() - 1..];
    assert_eq!(&tail[..2], &[1, 0]);
    assert_eq!(tail[3], 1);
}

/// A static classic member (instance `instance`) joining with its known id `id`.
fn static_classic_join(id: &str, instance: &str, owned: &[i32]) -> ClassicJoin {
    ClassicJoin {
        instance_id: Some(instance.to_string()),
        ..classic_join(id, owned)
    }
}

#[test]
fn a_classic_member_that_never_syncs_is_fenced_after_its_rebalance_timeout() {
    let config = GroupConfig::default();
    let mut g = from_classic(&classic_group(&[("a", &[0, 1, 2]), ("b", &[3, 4, 5])]), &OneTopic, 0).unwrap();
    // Both rejoin (nothing changes: same generation); only b follows with SyncGroup.
    for (id, owned) in [("a", &[0, 1, 2]), ("b", &[3, 4, 5])] {
        let joined = g.classic_join(&config, &classic_join(id, owned), &OneTopic, 0).unwrap();
        assert_eq!(joined.generation_id, GENERATION);
    }
    assert_eq!(
        g.members["a"].sync_deadline_ms,
        Some(30_000),
        "the JoinGroup's rebalance timeout"
    );
    g.classic_sync("b", None, GENERATION, None, None, 1_000).unwrap();
    assert_eq!(g.members["b"].sync_deadline_ms, None);
    // Both keep their 10 s sessions alive with heartbeats; a's SyncGroup never comes.
    for t in [8_000, 16_000, 24_000] {
        assert_eq!(g.classic_heartbeat("a", None, GENERATION, t), Ok(()));
        assert_eq!(g.classic_heartbeat("b", None, GENERATION, t), Ok(()));
    }
    assert!(g.tick(29_999).is_empty());
    let fenced = g.tick(30_000);
    assert_eq!(fenced.len(), 1, "{fenced:?}");
    assert_eq!(fenced[0].member_id, "a");
    assert!(fenced[0].reason.contains("sync"), "{}", fenced[0].reason);
    assert!(g.members.contains_key("b") && !g.members.contains_key("a"));
    assert_eq!(g.group_epoch, GENERATION + 1);
}

#[test]
fn a_classic_static_member_replacing_the_last_consumer_member_turns_the_group_classic() {
    let config = GroupConfig::default();
    let mut group = classic_group(&[("a", &[0, 1, 2]), ("b", &[3, 4, 5])]);
    let mut consumer = from_classic(&group, &OneTopic, 0).unwrap();
    // A consumer-protocol static member k (instance i) joins; it is waiting for partitions.
    let k_join = Heartbeat {
        instance_id: Some("i".to_string()),
        ..consumer_join("k")
    };
    consumer.heartbeat(&config, &k_join, &OneTopic, 0).unwrap();
    let before = consumer.clone();
    assert!(!parts(&before.target["k"]).is_empty());
    // Its instance restarts with group.protocol=classic: a JoinGroup without member id.
    let mut join = static_classic_join("k2", "i", &[]);
    join.unknown_member = true;
    let answer = consumer.classic_join(&config, &join, &OneTopic, 10).unwrap();
    assert_eq!(answer.member_id, "k2");
    assert!(migration::should_downgrade_replacing(&config, &before, "k"));
    // Not while another consumer-protocol member stays, nor when the policy forbids downgrades.
    let mut two = before.clone();
    two.heartbeat(&config, &consumer_join("c"), &OneTopic, 0).unwrap();
    assert!(!migration::should_downgrade_replacing(&config, &two, "k"));
    let upgrade_only = GroupConfig {
        consumer_migration_policy: MigrationPolicy::Upgrade,
        ..GroupConfig::default()
    };
    assert!(!migration::should_downgrade_replacing(&upgrade_only, &before, "k"));

    // The classic group: a, b and k2 with k's target, at the group epoch, Stable (no rebalance).
    let replaced = migration::with_replacement(&before, "k", &consumer.members["k2"]);
    group.members.clear();
    group.consumer = Some(Box::new(replaced));
    into_classic(&mut group, 20);
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.generation_id, before.group_epoch);
    let ids: Vec<&str> = group.members.keys().map(String::as_str).collect();
    assert_eq!(ids, ["a", "b", "k2"]);
    assert_eq!(group.static_members.get("i").map(String::as_str), Some("k2"));
    let k2 = &group.members["k2"];
    assert_eq!(k2.session_timeout_ms, 10_000);
    let want: TopicPartitions = by_name(&parts(&before.target["k"]).into_iter().collect::<Vec<_>>());
    assert_eq!(decode_assignment(&k2.assignment).unwrap(), want);
}

#[test]
fn replayed_classic_members_keep_their_own_session_timeout() {
    use super::records::{encode_current_assignment, encode_epoch, CurrentAssignment};
    use super::replay::ReplayedConsumer;
    use crate::group::records::ConsumerRecordKind;

    let config = GroupConfig::default();
    let mut g = from_classic(&classic_group(&[("a", &[0, 1, 2])]), &OneTopic, 0).unwrap();
    g.heartbeat(&config, &consumer_join("k"), &OneTopic, 0).unwrap();
    let mut replayed = ReplayedConsumer::default();
    replayed
        .apply(ConsumerRecordKind::Metadata, None, Some(&encode_epoch(g.group_epoch)))
        .unwrap();
    for m in g.members.values() {
        let id = Some(m.member_id.clone());
        let meta = encode_member_metadata(&MemberMetadata::of(m));
        replayed
            .apply(ConsumerRecordKind::MemberMetadata, id.clone(), Some(&meta))
            .unwrap();
        let current = encode_current_assignment(&CurrentAssignment::of(m));
        replayed
            .apply(ConsumerRecordKind::CurrentMemberAssignment, id, Some(&current))
            .unwrap();
    }
    let rebuilt = replayed.rebuild(1_000, 45_000).unwrap();
    assert_eq!(
        rebuilt.members["a"].session_deadline_ms, 11_000,
        "a's 10 s from JoinGroup"
    );
    assert_eq!(
        rebuilt.members["k"].session_deadline_ms, 46_000,
        "the consumer session timeout"
    );
}

#[test]
fn a_consumer_heartbeat_with_a_classic_members_id_makes_it_a_consumer_member() {
    let config = GroupConfig::default();
    let mut g = from_classic(&classic_group(&[("a", &[0, 1, 2]), ("b", &[3, 4, 5])]), &OneTopic, 0).unwrap();
    // At another epoch: fenced, with Kafka's message.
    let stale = g
        .heartbeat(&config, &consumer_beat("a", GENERATION + 1, &[0, 1, 2]), &OneTopic, 0)
        .unwrap_err();
    assert_eq!(stale.error, ResponseError::FencedMemberEpoch);
    assert!(stale
        .message
        .starts_with("The consumer group member has a greater member epoch (4)"));
    assert!(g.members["a"].uses_classic_protocol());
    // At its epoch: accepted, and a is a consumer-protocol member from now on (Kafka drops its
    // ClassicMemberMetadata), so its classic Heartbeat is refused and it counts against a downgrade.
    let answer = g
        .heartbeat(&config, &consumer_beat("a", GENERATION, &[0, 1, 2]), &OneTopic, 0)
        .unwrap();
    assert_eq!(answer.member_epoch, GENERATION);
    assert!(!g.members["a"].uses_classic_protocol());
    assert_eq!(
        g.classic_heartbeat("a", None, GENERATION, 10),
        Err(ResponseError::UnknownMemberId)
    );
    let leave_b = g.classic_leave("b", None);
    assert_eq!(leave_b, Ok(()));
    assert!(!should_downgrade(&config, &g));
}

#[test]
fn a_consumer_static_member_replaces_its_classic_incarnation_at_once() {
    let config = GroupConfig::default();
    let mut classic = classic_group(&[("a", &[0, 1, 2]), ("b", &[3, 4, 5])]);
    classic.members.get_mut("a").unwrap().group_instance_id = Some("ia".to_string());
    classic.static_members.insert("ia".to_string(), "a".to_string());
    let mut g = from_classic(&classic, &OneTopic, 0).unwrap();
    // The instance restarted with group.protocol=consumer: Kafka checks the release (epoch -2)
    // only when both incarnations use the consumer protocol.
    let join = Heartbeat {
        instance_id: Some("ia".to_string()),
        ..consumer_join("a2")
    };
    let answer = g.heartbeat(&config, &join, &OneTopic, 0).unwrap();
    assert_eq!(answer.member_id, "a2");
    assert!(!g.members.contains_key("a"));
    assert_eq!(g.static_members["ia"], "a2");
    let a2 = &g.members["a2"];
    assert!(!a2.uses_classic_protocol());
    assert_eq!(
        parts(&a2.assigned),
        BTreeSet::from([0, 1, 2]),
        "it keeps its partitions"
    );
    assert_single_owners(&g);
}
