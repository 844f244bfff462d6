//! Unit tests of a share group's records: each step (join, epoch bump, leave, initialization) written
//! as Kafka's records and replayed back to the same group; the layout of the values; a deleted
//! group's tombstones; and that the classic/consumer loader makes no group of a share group's records.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::group::{ShareGroup, ShareHeartbeat, TopicPartitionsInfo};
use super::records::{changes, decode_metadata_hash, encode_group_epoch, Record, ReplayedShare};
use crate::group::records::{decode_key, RecordKey, ShareRecordKind};

fn topics() -> BTreeMap<String, (Uuid, i32)> {
    BTreeMap::from([
        ("one".to_string(), (Uuid::from_u128(1), 1)),
        ("four".to_string(), (Uuid::from_u128(4), 4)),
    ])
}

fn hb(member: &str, epoch: i32, topics: Option<&[&str]>) -> ShareHeartbeat {
    ShareHeartbeat {
        member_id: member.to_string(),
        member_epoch: epoch,
        rack_id: (member == "a").then(|| "rack-1".to_string()),
        subscribed_topic_names: topics.map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        client_id: format!("client-{member}"),
        client_host: "/127.0.0.1".to_string(),
    }
}

/// Replays `log` (records of group "g" only) into the group it describes, sessions starting at `now`.
fn replay(log: &[Record], now: i64) -> Option<ShareGroup> {
    let mut r = ReplayedShare::default();
    for (key, value) in log {
        match decode_key(key).unwrap() {
            RecordKey::Share { kind, group, member } => {
                assert_eq!(group, "g");
                r.apply(kind, member, value.as_deref()).unwrap();
            }
            other => panic!("not a share group's record: {other:?}"),
        }
    }
    r.rebuild(now)
}

/// The group as a load brings it back: every member's session starts at `now`.
fn as_loaded(g: &ShareGroup, now: i64) -> ShareGroup {
    let mut g = g.clone();
    for m in g.members.values_mut() {
        m.last_heartbeat_ms = now;
    }
    g
}

/// Applies a step to `g` and appends its records to `log`; checks that the log replays to `g`.
fn step(g: &mut ShareGroup, log: &mut Vec<Record>, f: impl FnOnce(&mut ShareGroup)) -> Vec<Record> {
    let before = (*g != ShareGroup::default()).then(|| g.clone());
    f(g);
    let records = changes("g", before.as_ref(), Some(g));
    log.extend(records.iter().cloned());
    assert_eq!(
        replay(log, 77),
        Some(as_loaded(g, 77)),
        "the log replays to the group in memory"
    );
    records
}

fn kinds(records: &[Record]) -> Vec<(ShareRecordKind, Option<String>, bool)> {
    records
        .iter()
        .map(|(k, v)| match decode_key(k).unwrap() {
            RecordKey::Share { kind, member, .. } => (kind, member, v.is_some()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn join_epoch_bump_and_leave_are_written_and_replayed() {
    use ShareRecordKind::*;
    let mut g = ShareGroup::default();
    let mut log = Vec::new();
    let t = topics();
    // a joins: its metadata, the group epoch, its target, the assignment epoch, its assignment.
    let first = step(&mut g, &mut log, |g| {
        g.heartbeat(hb("a", 0, Some(&["one", "four"])), &t, 10, 0).unwrap();
    });
    let a = Some("a".to_string());
    assert_eq!(
        kinds(&first),
        [
            (MemberMetadata, a.clone(), true),
            (Metadata, None, true),
            (TargetAssignmentMember, a.clone(), true),
            (TargetAssignmentMetadata, None, true),
            (CurrentMemberAssignment, a.clone(), true),
        ]
    );
    // A heartbeat that changes nothing writes nothing.
    let quiet = step(&mut g, &mut log, |g| {
        g.heartbeat(hb("a", 1, None), &t, 10, 5).unwrap();
    });
    assert!(quiet.is_empty(), "{:?}", kinds(&quiet));
    // b joins: the epoch moves for both, the partitions of "four" are split.
    step(&mut g, &mut log, |g| {
        g.heartbeat(hb("b", 0, Some(&["four"])), &t, 10, 6).unwrap();
    });
    assert_eq!(g.group_epoch, 2);
    assert_eq!(g.members["a"].previous_member_epoch, 1);
    // The share partitions are initializing, then initialized.
    let four: TopicPartitionsInfo =
        BTreeMap::from([(Uuid::from_u128(4), ("four".to_string(), BTreeSet::from([0, 1, 2, 3])))]);
    let init = step(&mut g, &mut log, |g| assert!(g.mark_initializing(&four)));
    assert_eq!(kinds(&init), [(StatePartitionMetadata, None, true)]);
    step(&mut g, &mut log, |g| assert!(g.mark_initialized(&four)));
    assert!(g
        .partitions_to_initialize(&t)
        .keys()
        .all(|id| *id == Uuid::from_u128(1)));
    // a leaves: tombstones for its records, a new epoch, b's new assignment.
    let leave = step(&mut g, &mut log, |g| {
        g.heartbeat(hb("a", -1, None), &t, 10, 7).unwrap();
    });
    let gone: Vec<_> = kinds(&leave).into_iter().filter(|(_, _, v)| !v).collect();
    assert_eq!(
        gone,
        [
            (CurrentMemberAssignment, a.clone(), false),
            (TargetAssignmentMember, a.clone(), false),
            (MemberMetadata, a, false),
        ]
    );
    let back = replay(&log, 1000).unwrap();
    assert_eq!(back.group_epoch, 3);
    assert_eq!(back.members.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(back.members["b"].member_epoch, 3);
    assert_eq!(back.members["b"].assignment[&Uuid::from_u128(4)].len(), 4);
    assert_eq!(back.state_topic_names(), BTreeSet::from(["four".to_string()]));
    // Replayed members expire by their session timeout, counted from the load.
    let mut loaded = back;
    assert!(loaded.expire_members(1000 + 45_000, 45_000, &t).is_empty());
    assert_eq!(loaded.expire_members(1000 + 45_001, 45_000, &t), ["b"]);
}

#[test]
fn a_deleted_group_leaves_only_tombstones() {
    let mut g = ShareGroup::default();
    let mut log = Vec::new();
    let t = topics();
    step(&mut g, &mut log, |g| {
        g.heartbeat(hb("a", 0, Some(&["one"])), &t, 10, 0).unwrap();
    });
    let leave = step(&mut g, &mut log, |g| {
        g.heartbeat(hb("a", -1, None), &t, 10, 1).unwrap();
    });
    assert_eq!(
        g.group_epoch, 2,
        "the last member leaving moves the group epoch, as in Kafka"
    );
    assert!(kinds(&leave).contains(&(ShareRecordKind::Metadata, None, true)));
    let one: TopicPartitionsInfo = BTreeMap::from([(Uuid::from_u128(1), ("one".to_string(), BTreeSet::from([0])))]);
    step(&mut g, &mut log, |g| {
        g.mark_initialized(&one);
    });
    assert!(g.members.is_empty());
    let deleted = changes("g", Some(&g), None);
    assert!(deleted.iter().all(|(_, v)| v.is_none()));
    log.extend(deleted);
    assert_eq!(replay(&log, 0), None, "nothing of the group is left");
}

#[test]
fn values_are_in_kafkas_layout() {
    // ShareGroupMetadataValue v0: version, epoch, metadata hash, no tagged fields.
    let v = encode_group_epoch(7);
    assert_eq!(v, [0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(decode_metadata_hash(&v), Ok(0));
    // Keys: record type 11 (ShareGroupMetadataKey), then the group id as an i16-length string.
    let (key, _) = &changes("g", None, Some(&ShareGroup::default()))[0];
    assert_eq!(key, &[0, 11, 0, 1, b'g']);
}

#[test]
fn the_group_loader_makes_no_classic_group_of_a_share_groups_records() {
    let mut g = ShareGroup::default();
    g.heartbeat(hb("a", 0, Some(&["one"])), &topics(), 10, 0).unwrap();
    let mut builder = crate::log::batch::BatchBuilder::new(1);
    for (k, v) in changes("g", None, Some(&g)) {
        builder = builder.record(Some(&k), v.as_deref(), 0);
    }
    let mut batch = builder.build();
    crate::log::batch::assign_offset_and_epoch(&mut batch, 0, 0);
    assert!(crate::group::load::replay_partition(&batch).is_empty());
}
