//! Unit tests of the consumer protocol's pure state: assignors, reconciliation (revoke before
//! assign), heartbeats (join, epochs, fencing, leave) and the clock.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::assignor::{assign, MemberSpec, TopicLayout};
use super::*;
use crate::group::config::GroupConfig;

const TOPIC: Uuid = Uuid::from_u128(7);

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
        vec!["t".to_string(), "__consumer_offsets".to_string()]
    }
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.get(&TOPIC).cloned().unwrap_or_default()
}

fn owned(ps: &[i32]) -> Assignment {
    let mut a = Assignment::new();
    if !ps.is_empty() {
        a.insert(TOPIC, ps.iter().copied().collect());
    }
    a
}

fn layout(partitions: i32) -> TopicLayout {
    TopicLayout {
        partitions,
        partition_racks: Vec::new(),
    }
}

/// A topic whose partition p has its one replica in rack `racks[p]`.
fn racked(racks: &[&str]) -> TopicLayout {
    TopicLayout {
        partitions: racks.len() as i32,
        partition_racks: racks.iter().map(|r| BTreeSet::from([r.to_string()])).collect(),
    }
}

fn member<'a>(id: &'a str, rack: Option<&'a str>, current: Option<&'a Assignment>) -> MemberSpec<'a> {
    MemberSpec {
        member_id: id,
        rack,
        topics: [TOPIC].into(),
        current,
    }
}

fn join(id: &str) -> Heartbeat {
    Heartbeat {
        member_id: id.to_string(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".to_string()]),
        owned: Some(Assignment::new()),
        ..Heartbeat::default()
    }
}

fn beat(id: &str, epoch: i32, owned_now: &[i32]) -> Heartbeat {
    Heartbeat {
        member_id: id.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned(owned_now)),
        ..Heartbeat::default()
    }
}

#[test]
fn uniform_is_balanced_and_sticky() {
    let partitions = BTreeMap::from([(TOPIC, layout(12))]);
    let topics: BTreeSet<Uuid> = [TOPIC].into();
    let a_had = owned(&(0..6).collect::<Vec<_>>());
    let b_had = owned(&(6..12).collect::<Vec<_>>());
    let members = [
        MemberSpec {
            member_id: "a",
            rack: None,
            topics: topics.clone(),
            current: Some(&a_had),
        },
        MemberSpec {
            member_id: "b",
            rack: None,
            topics: topics.clone(),
            current: Some(&b_had),
        },
        MemberSpec {
            member_id: "c",
            rack: None,
            topics,
            current: None,
        },
    ];
    let target = assign("uniform", &members, &partitions);
    for m in ["a", "b", "c"] {
        assert_eq!(parts(&target[m]).len(), 4, "{m}: {target:?}");
    }
    assert!(parts(&target["a"]).is_subset(&parts(&a_had)), "a keeps what it had");
    assert!(parts(&target["b"]).is_subset(&parts(&b_had)), "b keeps what it had");
}

#[test]
fn range_gives_contiguous_ranges() {
    let partitions = BTreeMap::from([(TOPIC, layout(7))]);
    let topics: BTreeSet<Uuid> = [TOPIC].into();
    let members = [
        MemberSpec {
            member_id: "a",
            rack: None,
            topics: topics.clone(),
            current: None,
        },
        MemberSpec {
            member_id: "b",
            rack: None,
            topics,
            current: None,
        },
    ];
    let target = assign("range", &members, &partitions);
    assert_eq!(parts(&target["a"]), (0..4).collect());
    assert_eq!(parts(&target["b"]), (4..7).collect());
}

#[test]
fn with_racks_partitions_go_to_members_in_their_replicas_rack() {
    // Partitions 0..6 on racks a, b, c, a, b, c; one member per rack.
    let topics = BTreeMap::from([(TOPIC, racked(&["a", "b", "c", "a", "b", "c"]))]);
    let members = [
        member("m1", Some("c"), None),
        member("m2", Some("a"), None),
        member("m3", Some("b"), None),
    ];
    for assignor in ["uniform", "range"] {
        let target = assign(assignor, &members, &topics);
        assert_eq!(parts(&target["m1"]), BTreeSet::from([2, 5]), "{assignor}: {target:?}");
        assert_eq!(parts(&target["m2"]), BTreeSet::from([0, 3]), "{assignor}: {target:?}");
        assert_eq!(parts(&target["m3"]), BTreeSet::from([1, 4]), "{assignor}: {target:?}");
    }
    // Without the members' racks it is the plain assignment: range's contiguous ranges.
    let plain = [
        member("m1", None, None),
        member("m2", None, None),
        member("m3", None, None),
    ];
    let target = assign("range", &plain, &topics);
    assert_eq!(parts(&target["m1"]), BTreeSet::from([0, 1]));
}

#[test]
fn balance_comes_before_racks() {
    // Every partition is in rack a, but only one of two members is: each still gets half.
    let topics = BTreeMap::from([(TOPIC, racked(&["a"; 6]))]);
    let members = [member("m1", Some("a"), None), member("m2", Some("b"), None)];
    for assignor in ["uniform", "range"] {
        let target = assign(assignor, &members, &topics);
        assert_eq!(parts(&target["m1"]).len(), 3, "{assignor}: {target:?}");
        assert_eq!(parts(&target["m2"]).len(), 3, "{assignor}: {target:?}");
    }
}

#[test]
fn uniform_moves_a_partition_to_its_rack_but_stays_sticky_otherwise() {
    // m1 (rack a) had 0..3, m2 (rack b) had 3..6; partitions 0, 1 are in rack b and 4, 5 in rack a.
    let topics = BTreeMap::from([(TOPIC, racked(&["b", "b", "a", "b", "a", "a"]))]);
    let (had1, had2) = (owned(&[0, 1, 2]), owned(&[3, 4, 5]));
    let members = [
        member("m1", Some("a"), Some(&had1)),
        member("m2", Some("b"), Some(&had2)),
    ];
    let target = assign("uniform", &members, &topics);
    assert_eq!(parts(&target["m1"]), BTreeSet::from([2, 4, 5]), "{target:?}");
    assert_eq!(parts(&target["m2"]), BTreeSet::from([0, 1, 3]), "{target:?}");
    // Once local, the same target is kept.
    let members = [
        member("m1", Some("a"), target.get("m1")),
        member("m2", Some("b"), target.get("m2")),
    ];
    assert_eq!(assign("uniform", &members, &topics), target);
}

#[test]
fn a_moved_partition_is_revoked_before_it_is_assigned() {
    let config = GroupConfig::default();
    let mut g = ConsumerGroup::default();
    let a = g.heartbeat(&config, &join("a"), &OneTopic, 0).unwrap();
    assert_eq!((a.member_epoch, parts(a.assignment.as_ref().unwrap()).len()), (1, 6));
    // b joins: the group epoch moves to 2 but b gets nothing a still owns.
    let b = g.heartbeat(&config, &join("b"), &OneTopic, 0).unwrap();
    assert_eq!(b.member_epoch, 2);
    assert!(parts(b.assignment.as_ref().unwrap()).is_empty());
    // a is told to revoke half, staying at epoch 1.
    let a = g
        .heartbeat(&config, &beat("a", 1, &[0, 1, 2, 3, 4, 5]), &OneTopic, 0)
        .unwrap();
    assert_eq!(a.member_epoch, 1);
    let kept = parts(a.assignment.as_ref().unwrap());
    assert_eq!(kept.len(), 3);
    assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
    // Until a confirms, b still gets nothing.
    let b = g.heartbeat(&config, &beat("b", 2, &[]), &OneTopic, 0).unwrap();
    assert!(b.assignment.is_none() && g.members["b"].assigned.is_empty());
    // a confirms (owns only what it kept): it advances to epoch 2; then b gets the rest.
    let kept_list: Vec<i32> = kept.iter().copied().collect();
    let a = g.heartbeat(&config, &beat("a", 1, &kept_list), &OneTopic, 0).unwrap();
    assert_eq!(a.member_epoch, 2);
    let b = g.heartbeat(&config, &beat("b", 2, &[]), &OneTopic, 0).unwrap();
    let got = parts(b.assignment.as_ref().unwrap());
    assert_eq!(got.len(), 3);
    assert!(got.is_disjoint(&kept));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
}

#[test]
fn epochs_are_checked() {
    let config = GroupConfig::default();
    let mut g = ConsumerGroup::default();
    g.heartbeat(&config, &join("a"), &OneTopic, 0).unwrap();
    let err = |r: Result<HeartbeatAnswer, HeartbeatError>| r.unwrap_err().error;
    assert_eq!(
        err(g.heartbeat(&config, &beat("a", 5, &[]), &OneTopic, 0)),
        ResponseError::FencedMemberEpoch
    );
    assert_eq!(
        err(g.heartbeat(&config, &beat("x", 1, &[]), &OneTopic, 0)),
        ResponseError::UnknownMemberId
    );
    // The previous epoch with a subset of the assignment is accepted (a lost answer).
    g.members.get_mut("a").unwrap().member_epoch = 2;
    g.members.get_mut("a").unwrap().previous_member_epoch = 1;
    assert!(g.heartbeat(&config, &beat("a", 1, &[0]), &OneTopic, 0).is_ok());
}

#[test]
fn validation_follows_kafka() {
    let config = GroupConfig::default();
    let mut hb = join("a");
    hb.rebalance_timeout_ms = -1;
    assert_eq!(
        validate(&hb, 1, &config).unwrap_err().error,
        ResponseError::InvalidRequest
    );
    let mut hb = join("");
    assert_eq!(
        validate(&hb, 1, &config).unwrap_err().error,
        ResponseError::InvalidRequest
    );
    assert!(
        validate(&hb, 0, &config).is_ok(),
        "v0: the coordinator names the member"
    );
    hb.server_assignor = Some("sticky".to_string());
    assert_eq!(
        validate(&hb, 0, &config).unwrap_err().error,
        ResponseError::UnsupportedAssignor
    );
}

#[test]
fn leaving_and_session_timeout_free_partitions() {
    let config = GroupConfig {
        consumer_session_timeout_ms: 1000,
        ..GroupConfig::default()
    };
    let mut g = ConsumerGroup::default();
    g.heartbeat(&config, &join("a"), &OneTopic, 0).unwrap();
    g.heartbeat(&config, &join("b"), &OneTopic, 0).unwrap();
    let epoch = g.group_epoch;
    let left = g
        .heartbeat(
            &config,
            &Heartbeat {
                member_epoch: -1,
                ..beat("b", 2, &[])
            },
            &OneTopic,
            10,
        )
        .unwrap();
    assert_eq!(left.member_epoch, -1);
    assert_eq!(g.group_epoch, epoch + 1);
    assert!(!g.members.contains_key("b"));
    let fenced = g.tick(2000);
    assert_eq!(fenced.len(), 1);
    assert!(g.members.is_empty());
    assert_eq!(g.state(), ConsumerGroupState::Empty);
}

#[test]
fn offset_commits_need_the_current_member_epoch() {
    let config = GroupConfig::default();
    let mut g = ConsumerGroup::default();
    assert!(
        g.validate_member_epoch("", -1).is_ok(),
        "an empty group takes admin commits"
    );
    g.heartbeat(&config, &join("a"), &OneTopic, 0).unwrap();
    assert_eq!(g.validate_member_epoch("", -1), Err(ResponseError::UnknownMemberId));
    assert_eq!(g.validate_member_epoch("a", 0), Err(ResponseError::StaleMemberEpoch));
    assert!(g.validate_member_epoch("a", 1).is_ok());
}

#[test]
fn records_round_trip_and_follow_each_step() {
    use super::records::*;
    let m = MemberMetadata {
        instance_id: Some("i".into()),
        rack_id: None,
        client_id: "c".into(),
        client_host: "/1.2.3.4".into(),
        subscribed_topic_names: vec!["t".into(), "u".into()],
        subscribed_topic_regex: None,
        rebalance_timeout_ms: 300_000,
        server_assignor: Some("range".into()),
        classic: None,
    };
    assert_eq!(decode_member_metadata(&encode_member_metadata(&m)).unwrap(), m);
    let c = CurrentAssignment {
        member_epoch: 5,
        previous_member_epoch: 4,
        state: 1,
        assigned: owned(&[0, 2]),
        pending_revocation: owned(&[1]),
    };
    assert_eq!(decode_current_assignment(&encode_current_assignment(&c)).unwrap(), c);
    assert_eq!(
        decode_target_member(&encode_target_member(&owned(&[3]))).unwrap(),
        owned(&[3])
    );
    assert_eq!(decode_epoch(&encode_epoch(9)).unwrap(), 9);

    // A join writes the member, the group epoch, the target and the current assignment; a leave
    // writes tombstones for the member's records and the new group epoch.
    let config = GroupConfig::default();
    let mut g = ConsumerGroup::default();
    g.heartbeat(&config, &join("a"), &OneTopic, 0).unwrap();
    let joined = changes("g", None, Some(&g));
    assert_eq!(joined.len(), 5, "{joined:?}");
    assert!(joined.iter().all(|(_, v)| v.is_some()));
    let before = g.clone();
    g.heartbeat(
        &config,
        &Heartbeat {
            member_epoch: -1,
            ..beat("a", 1, &[])
        },
        &OneTopic,
        0,
    )
    .unwrap();
    let left = changes("g", Some(&before), Some(&g));
    assert_eq!(left.iter().filter(|(_, v)| v.is_none()).count(), 3, "{left:?}");
    assert!(changes("g", None, None).is_empty());
}

/// Topics `orders-eu`, `orders-us` (created later) and `other`.
struct Orders {
    with_us: bool,
}

impl TopicSource for Orders {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        let id = match name {
            "orders-eu" => 1,
            "orders-us" if self.with_us => 2,
            "other" => 3,
            _ => return None,
        };
        Some(TopicInfo {
            id: Uuid::from_u128(id),
            partitions: 2,
            partition_racks: Vec::new(),
        })
    }

    fn topic_names(&self) -> Vec<String> {
        let mut names = vec!["orders-eu", "other", "__consumer_offsets"];
        if self.with_us {
            names.push("orders-us");
        }
        names.into_iter().map(String::from).collect()
    }
}

#[test]
fn a_regex_subscription_picks_up_a_new_topic() {
    let config = GroupConfig::default();
    let mut g = ConsumerGroup::default();
    let hb = Heartbeat {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some("orders-.*".into()),
        ..join("a")
    };
    let a = g.heartbeat(&config, &hb, &Orders { with_us: false }, 0).unwrap();
    let topics: Vec<Uuid> = a.assignment.unwrap().keys().copied().collect();
    assert_eq!(topics, [Uuid::from_u128(1)]);
    let a = g
        .heartbeat(&config, &beat("a", 1, &[]), &Orders { with_us: true }, 0)
        .unwrap();
    assert_eq!(a.member_epoch, 2, "a new matching topic bumps the group epoch");
    let topics: Vec<Uuid> = a.assignment.unwrap().keys().copied().collect();
    assert_eq!(topics, [Uuid::from_u128(1), Uuid::from_u128(2)]);
    let bad = Heartbeat {
        subscribed_topic_regex: Some("orders-(".into()),
        ..join("b")
    };
    assert_eq!(
        validate(&bad, 1, &config).unwrap_err().error,
        ResponseError::InvalidRegularExpression
    );
}

#[test]
fn a_static_member_that_left_for_a_while_gets_its_partitions_back() {
    let config = GroupConfig::default();
    let mut g = ConsumerGroup::default();
    let s1 = Heartbeat {
        instance_id: Some("s1".into()),
        ..join("a")
    };
    g.heartbeat(&config, &s1, &OneTopic, 0).unwrap();
    g.heartbeat(&config, &join("b"), &OneTopic, 0).unwrap();
    // a revokes what b is to get; b takes it.
    let a = g
        .heartbeat(&config, &beat("a", 1, &[0, 1, 2, 3, 4, 5]), &OneTopic, 0)
        .unwrap();
    let kept: Vec<i32> = parts(a.assignment.as_ref().unwrap()).into_iter().collect();
    g.heartbeat(&config, &beat("a", 1, &kept), &OneTopic, 0).unwrap();
    g.heartbeat(&config, &beat("b", 2, &[]), &OneTopic, 0).unwrap();
    let epoch = g.group_epoch;
    // A new incarnation while the old one is live: refused.
    let again = Heartbeat {
        instance_id: Some("s1".into()),
        ..join("a2")
    };
    assert_eq!(
        g.heartbeat(&config, &again, &OneTopic, 0).unwrap_err().error,
        ResponseError::UnreleasedInstanceId
    );
    // The old one leaves for a while (-2), the new one takes its place and partitions.
    let leave = Heartbeat {
        member_epoch: -2,
        instance_id: Some("s1".into()),
        ..beat("a", 2, &kept)
    };
    assert_eq!(g.heartbeat(&config, &leave, &OneTopic, 0).unwrap().member_epoch, -2);
    assert_eq!(
        g.group_epoch, epoch,
        "a static member leaving for a while changes no assignment"
    );
    let back = g.heartbeat(&config, &again, &OneTopic, 0).unwrap();
    assert_eq!(parts(back.assignment.as_ref().unwrap()), kept.iter().copied().collect());
    assert_eq!(g.group_epoch, epoch);
    assert!(!g.members.contains_key("a"));
    // The old id is fenced from now on.
    let old = Heartbeat {
        instance_id: Some("s1".into()),
        ..beat("a", 2, &kept)
    };
    assert_eq!(
        g.heartbeat(&config, &old, &OneTopic, 0).unwrap_err().error,
        ResponseError::FencedInstanceId
    );
}
