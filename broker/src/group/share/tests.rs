//! Unit tests of the pure share-group state: share partitions, membership, sessions, the persisted form of a share partition.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::group::{ShareGroup, ShareHeartbeat, ShareHeartbeatError};
use super::partition::{AckError, LogBatch, RecordState, ShareLimits, SharePartition};
use super::session::{SessionError, SessionStep, ShareSessions};

const LIMITS: ShareLimits = ShareLimits {
    lock_duration_ms: 1000,
    delivery_count_limit: 3,
    max_in_flight: 100,
};

fn batch(base: i64, last: i64) -> LogBatch {
    LogBatch {
        base_offset: base,
        last_offset: last,
        control: false,
    }
}

fn ranges(acquired: &[super::partition::Acquired]) -> Vec<(i64, i64, i16)> {
    acquired
        .iter()
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

#[test]
fn records_are_acquired_by_one_member_at_a_time() {
    let mut sp = SharePartition::new(0);
    let a = sp.acquire("a", &[batch(0, 4)], 10, 0, LIMITS);
    assert_eq!(ranges(&a), [(0, 4, 1)]);
    assert_eq!(sp.next_fetch_offset(), 5);
    // b reads the same batch: nothing is free in it.
    assert!(sp.acquire("b", &[batch(0, 4)], 10, 0, LIMITS).is_empty());
    let b = sp.acquire("b", &[batch(5, 9)], 3, 0, LIMITS);
    assert_eq!(ranges(&b), [(5, 7, 1)], "max records");
    assert_eq!(sp.end_offset(), 8);
    assert_eq!(sp.start_offset(), 0);
}

#[test]
fn accept_release_reject_and_the_start_offset() {
    let mut sp = SharePartition::new(10);
    sp.acquire("a", &[batch(10, 14)], 10, 0, LIMITS);
    // 1 accept, 2 release, 3 reject, 0 gap: per offset.
    sp.acknowledge("a", 10, 14, &[1, 2, 3, 0, 1], LIMITS).unwrap();
    assert_eq!(sp.start_offset(), 11, "offset 10 settled; 11 is available again");
    assert_eq!(sp.record(11).unwrap().state, RecordState::Available);
    assert_eq!(sp.record(12).unwrap().state, RecordState::Archived);
    assert_eq!(sp.next_fetch_offset(), 11);
    let again = sp.acquire("b", &[batch(10, 14)], 10, 0, LIMITS);
    assert_eq!(
        ranges(&again),
        [(11, 11, 2)],
        "only the released record, second delivery"
    );
    sp.acknowledge("b", 11, 11, &[1], LIMITS).unwrap();
    assert_eq!(sp.start_offset(), 15);
    assert_eq!(sp.in_flight(), 0);
}

#[test]
fn only_the_holder_may_acknowledge() {
    let mut sp = SharePartition::new(0);
    sp.acquire("a", &[batch(0, 1)], 10, 0, LIMITS);
    assert!(matches!(
        sp.acknowledge("b", 0, 1, &[1], LIMITS),
        Err(AckError::InvalidRecordState(_))
    ));
    assert!(matches!(
        sp.acknowledge("a", 0, 1, &[1, 1, 1], LIMITS),
        Err(AckError::InvalidRequest(_))
    ));
    assert!(matches!(
        sp.acknowledge("a", 0, 1, &[7], LIMITS),
        Err(AckError::InvalidRequest(_))
    ));
    // All or nothing: offset 2 was never acquired.
    assert!(sp.acknowledge("a", 0, 2, &[1], LIMITS).is_err());
    assert_eq!(sp.record(0).unwrap().state, RecordState::Acquired);
    sp.acknowledge("a", 0, 1, &[1], LIMITS).unwrap();
    assert!(matches!(
        sp.acknowledge("a", 0, 0, &[1], LIMITS),
        Err(AckError::InvalidRecordState(_))
    ));
}

#[test]
fn expired_locks_release_and_the_delivery_limit_archives() {
    let mut sp = SharePartition::new(0);
    for delivery in 1..=3 {
        let got = sp.acquire("a", &[batch(0, 0)], 10, delivery * 10_000, LIMITS);
        assert_eq!(ranges(&got), [(0, 0, delivery as i16)]);
        assert_eq!(sp.expire_locks(delivery * 10_000 + 999, LIMITS), 0, "lock still held");
        assert_eq!(sp.expire_locks(delivery * 10_000 + 1000, LIMITS), 1);
    }
    assert_eq!(sp.start_offset(), 1, "third delivery reached the limit: archived");
    assert!(sp.acquire("a", &[batch(0, 0)], 10, 50_000, LIMITS).is_empty());
}

#[test]
fn a_leaving_member_releases_what_it_holds() {
    let mut sp = SharePartition::new(0);
    sp.acquire("a", &[batch(0, 2)], 10, 0, LIMITS);
    sp.acquire("b", &[batch(3, 4)], 10, 0, LIMITS);
    assert_eq!(sp.release_member("a", LIMITS), 3);
    assert_eq!(sp.next_fetch_offset(), 0);
    assert_eq!(sp.record(3).unwrap().state, RecordState::Acquired);
}

#[test]
fn control_batches_and_gaps_are_never_delivered() {
    let mut sp = SharePartition::new(0);
    let control = LogBatch {
        base_offset: 2,
        last_offset: 2,
        control: true,
    };
    let got = sp.acquire("a", &[batch(0, 1), control, batch(5, 6)], 10, 0, LIMITS);
    assert_eq!(ranges(&got), [(0, 1, 1), (5, 6, 1)]);
    sp.acknowledge("a", 0, 1, &[1], LIMITS).unwrap();
    assert_eq!(sp.start_offset(), 5);
}

#[test]
fn in_flight_records_are_bounded() {
    let limits = ShareLimits {
        max_in_flight: 4,
        ..LIMITS
    };
    let mut sp = SharePartition::new(0);
    assert_eq!(ranges(&sp.acquire("a", &[batch(0, 9)], 100, 0, limits)), [(0, 3, 1)]);
    sp.acknowledge("a", 0, 1, &[1], limits).unwrap();
    assert_eq!(ranges(&sp.acquire("a", &[batch(0, 9)], 100, 0, limits)), [(4, 5, 1)]);
}

#[test]
fn the_log_start_offset_moves_the_share_partition() {
    let mut sp = SharePartition::new(0);
    sp.acquire("a", &[batch(0, 5)], 10, 0, LIMITS);
    sp.follow_log_start(4);
    assert_eq!(sp.start_offset(), 4);
    assert!(sp.record(3).is_none());
}

#[test]
fn state_round_trips_through_its_persisted_batches() {
    let mut sp = SharePartition::new(0);
    sp.acquire("a", &[batch(0, 5)], 10, 0, LIMITS);
    sp.acknowledge("a", 1, 2, &[1], LIMITS).unwrap();
    sp.acknowledge("a", 3, 3, &[3], LIMITS).unwrap();
    let batches = sp.state_batches();
    assert_eq!(
        batches,
        [
            (0, 0, RecordState::Available, 1),
            (1, 2, RecordState::Acknowledged, 1),
            (3, 3, RecordState::Archived, 1),
            (4, 5, RecordState::Available, 1),
        ]
    );
    let back = SharePartition::restore(sp.start_offset(), &batches);
    // Acquired records come back available, with their delivery counts.
    assert_eq!(back.record(0).unwrap().state, RecordState::Available);
    assert_eq!(back.record(0).unwrap().delivery_count, 1);
    assert_eq!(back.record(1).unwrap().state, RecordState::Acknowledged);
    assert_eq!(back.end_offset(), 6);
}

fn topics() -> BTreeMap<String, (Uuid, i32)> {
    BTreeMap::from([
        ("one".to_string(), (Uuid::from_u128(1), 1)),
        ("four".to_string(), (Uuid::from_u128(4), 4)),
    ])
}

fn join(member: &str, topics: &[&str]) -> ShareHeartbeat {
    ShareHeartbeat {
        member_id: member.to_string(),
        member_epoch: 0,
        rack_id: None,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
    }
}

#[test]
fn members_share_a_partition_and_move_to_the_group_epoch() {
    let mut g = ShareGroup::default();
    let a = g.heartbeat(join("a", &["one"]), &topics(), 10, 0).unwrap();
    assert_eq!(a.member_epoch, 1);
    assert_eq!(
        a.assignment.unwrap()[&Uuid::from_u128(1)]
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [0]
    );
    let b = g.heartbeat(join("b", &["one"]), &topics(), 10, 0).unwrap();
    assert_eq!(b.member_epoch, 2);
    assert_eq!(
        b.assignment.unwrap()[&Uuid::from_u128(1)].len(),
        1,
        "b shares partition 0"
    );
    // a heartbeats with its old epoch: fenced (its epoch moved to 2 with the group).
    let mut hb = join("a", &["one"]);
    hb.member_epoch = 1;
    hb.subscribed_topic_names = None;
    assert!(matches!(
        g.heartbeat(hb.clone(), &topics(), 10, 0),
        Err(ShareHeartbeatError::FencedMemberEpoch(_))
    ));
    hb.member_epoch = 2;
    let again = g.heartbeat(hb, &topics(), 10, 0).unwrap();
    assert_eq!(
        (again.member_epoch, again.assignment),
        (2, None),
        "nothing changed: no assignment"
    );
    assert_eq!(g.members["a"].assignment, g.members["b"].assignment);
}

#[test]
fn partitions_are_spread_when_there_are_enough() {
    let mut g = ShareGroup::default();
    g.heartbeat(join("a", &["four"]), &topics(), 10, 0).unwrap();
    g.heartbeat(join("b", &["four"]), &topics(), 10, 0).unwrap();
    let t = Uuid::from_u128(4);
    let a: Vec<i32> = g.members["a"].assignment[&t].iter().copied().collect();
    let b: Vec<i32> = g.members["b"].assignment[&t].iter().copied().collect();
    assert_eq!((a, b), (vec![0, 2], vec![1, 3]));
}

#[test]
fn leaving_expiry_and_limits() {
    let mut g = ShareGroup::default();
    g.heartbeat(join("a", &["one"]), &topics(), 1, 0).unwrap();
    assert!(matches!(
        g.heartbeat(join("b", &["one"]), &topics(), 1, 0),
        Err(ShareHeartbeatError::GroupMaxSizeReached(_))
    ));
    let mut unknown = join("z", &["one"]);
    unknown.member_epoch = 5;
    assert!(matches!(
        g.heartbeat(unknown, &topics(), 10, 0),
        Err(ShareHeartbeatError::UnknownMemberId(_))
    ));
    g.heartbeat(join("b", &["one"]), &topics(), 10, 0).unwrap();
    assert_eq!(g.expire_members(40_000, 45_000, &topics()), Vec::<String>::new());
    assert_eq!(g.expire_members(45_001, 45_000, &topics()), ["a", "b"]);
    assert_eq!(g.state_name(), "Empty");
    let mut leave = join("c", &["one"]);
    g.heartbeat(leave.clone(), &topics(), 10, 0).unwrap();
    leave.member_epoch = -1;
    assert_eq!(g.heartbeat(leave, &topics(), 10, 0).unwrap().member_epoch, -1);
    assert!(g.members.is_empty());
}

#[test]
fn share_session_epochs() {
    let mut s = ShareSessions::default();
    let t = Uuid::from_u128(1);
    assert_eq!(s.step("g", "m", 1, &[], &[], 10), Err(SessionError::NotFound));
    assert_eq!(
        s.step("g", "m", 0, &[(t, 0)], &[], 10),
        Ok(SessionStep::Open {
            partitions: [(t, 0)].into()
        })
    );
    assert_eq!(s.step("g", "m", 2, &[], &[], 10), Err(SessionError::InvalidEpoch));
    assert_eq!(
        s.step("g", "m", 1, &[(t, 1)], &[(t, 0)], 10),
        Ok(SessionStep::Open {
            partitions: [(t, 1)].into()
        })
    );
    assert_eq!(
        s.check_ack("g", "m", 2),
        Ok(SessionStep::Open {
            partitions: [(t, 1)].into()
        })
    );
    assert_eq!(s.check_ack("g", "m", 0), Err(SessionError::InvalidEpoch));
    assert_eq!(s.step("g", "other", 0, &[], &[], 1), Err(SessionError::LimitReached));
    assert_eq!(s.step("g", "m", -1, &[], &[], 10), Ok(SessionStep::Closed));
    assert!(s.is_empty());
}

#[test]
fn a_leaving_member_moves_the_group_epoch_but_fences_no_one() {
    let mut g = ShareGroup::default();
    g.heartbeat(join("a", &["one"]), &topics(), 10, 0).unwrap();
    g.heartbeat(join("b", &["one"]), &topics(), 10, 0).unwrap();
    assert_eq!(g.group_epoch, 2);
    let mut leave = join("a", &["one"]);
    leave.member_epoch = -1;
    g.heartbeat(leave, &topics(), 10, 1).unwrap();
    assert_eq!(g.group_epoch, 3, "Kafka bumps the group epoch when a member leaves");
    // b shared the one partition and still has it: it keeps its epoch and its heartbeat is accepted.
    let mut hb = join("b", &["one"]);
    hb.member_epoch = 2;
    hb.subscribed_topic_names = None;
    let answer = g.heartbeat(hb, &topics(), 10, 2).unwrap();
    assert_eq!(answer.member_epoch, 2);
    assert_eq!(answer.assignment, None, "nothing changed for b");
}
