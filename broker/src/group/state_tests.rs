//! Unit tests of the group state machine: join/sync/heartbeat/leave flows, KIP-394, the initial
//! delay, rebalance and session timeouts, static membership and protocol selection.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::classic_group::{Group, GroupState};
use super::member::{subscription, Protocol};
use super::state::{Effect, JoinRequest, JoinResult, SyncRequest, SyncResult, WaiterId};
use super::GroupConfig;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;
/// When `stable_group_of` groups become Stable.
const T0: i64 = 6000;

fn config(delay: i64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: delay,
        ..GroupConfig::default()
    }
}

fn protocols(names: &[&str]) -> Vec<Protocol> {
    names
        .iter()
        .map(|n| Protocol {
            name: n.to_string(),
            metadata: subscription(&["t"]),
        })
        .collect()
}

/// A consumer's JoinGroup: `member_id` empty for a first join (then `fresh-<waiter>` is its new id).
pub(crate) fn consumer_join(waiter: WaiterId, member_id: &str, require_known: bool) -> JoinRequest {
    JoinRequest {
        waiter,
        member_id: member_id.to_string(),
        group_instance_id: None,
        fresh_member_id: if member_id.is_empty() {
            format!("fresh-{waiter}")
        } else {
            member_id.to_string()
        },
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols(&["range"]),
        require_known_member_id: require_known,
    }
}

fn static_join(waiter: WaiterId, member_id: &str, instance: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.to_string()),
        fresh_member_id: format!("{instance}-{waiter}"),
        ..consumer_join(waiter, member_id, true)
    }
}

fn sync(waiter: WaiterId, member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        waiter,
        member_id: member_id.to_string(),
        group_instance_id: None,
        generation_id: generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect(),
    }
}

fn joins(fx: &[Effect]) -> Vec<(WaiterId, JoinResult)> {
    fx.iter()
        .filter_map(|e| {
            if let Effect::CompleteJoin(w, r) = e {
                Some((*w, r.clone()))
            } else {
                None
            }
        })
        .collect()
}

fn syncs(fx: &[Effect]) -> Vec<(WaiterId, SyncResult)> {
    fx.iter()
        .filter_map(|e| {
            if let Effect::CompleteSync(w, r) = e {
                Some((*w, r.clone()))
            } else {
                None
            }
        })
        .collect()
}

fn join_of(fx: &[Effect], waiter: WaiterId) -> JoinResult {
    joins(fx)
        .into_iter()
        .find(|(w, _)| *w == waiter)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no answer for {waiter}: {fx:?}"))
}

/// A Stable group of `n` dynamic members at generation 1 (no initial delay); member ids in join order.
pub(crate) fn stable_group_of(n: usize) -> (Group, Vec<String>) {
    let c = config(3000);
    let mut g = Group::new("g", 0);
    let mut ids = Vec::new();
    for i in 0..n as u64 {
        g.join(&c, consumer_join(i + 1, "", false), 0);
        ids.push(format!("fresh-{}", i + 1));
    }
    // With several members the initial delay is extended once.
    let mut fx = g.tick(&c, 3000);
    fx.extend(g.tick(&c, T0));
    assert_eq!(joins(&fx).len(), n);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let leader = g.leader_id.clone().unwrap();
    let assignments: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), "a")).collect();
    g.sync(&c, sync(100, &leader, 1, &assignments), T0);
    assert_eq!(g.state, GroupState::Stable);
    (g, ids)
}

#[test]
fn kip_394_new_member_gets_its_id_then_rejoins() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    let fx = g.join(&c, consumer_join(1, "", true), 0);
    let r = join_of(&fx, 1);
    assert_eq!(r.error, Some(ResponseError::MemberIdRequired));
    assert_eq!(r.member_id, "fresh-1");
    assert_eq!(g.state, GroupState::Empty);
    assert!(g.pending_members.contains_key("fresh-1"));

    let fx = g.join(&c, consumer_join(2, "fresh-1", true), 10);
    let r = join_of(&fx, 2);
    assert_eq!(r.error, None);
    assert_eq!(
        (r.generation_id, r.leader.as_str(), r.member_id.as_str()),
        (1, "fresh-1", "fresh-1")
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1, "the leader gets the members");
    assert_eq!(g.state, GroupState::CompletingRebalance);
}

#[test]
fn pending_member_that_never_rejoins_expires() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    g.join(&c, consumer_join(1, "", true), 0);
    g.tick(&c, SESSION as i64 + 1);
    assert!(g.pending_members.is_empty());
    let fx = g.join(&c, consumer_join(2, "fresh-1", true), SESSION as i64 + 2);
    assert_eq!(join_of(&fx, 2).error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn initial_delay_waits_for_more_members() {
    let c = config(3000);
    let mut g = Group::new("g", 0);
    assert!(g.join(&c, consumer_join(1, "", false), 0).is_empty());
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(g.join(&c, consumer_join(2, "", false), 1000).is_empty());
    // A member joined during the delay: it is extended once more.
    assert!(g.tick(&c, 3000).is_empty());
    let fx = g.tick(&c, 6000);
    assert_eq!(joins(&fx).len(), 2);
    assert_eq!(g.generation_id, 1);
    let leader = g.leader_id.clone().unwrap();
    for (_, r) in joins(&fx) {
        assert_eq!(r.members.len(), if r.member_id == leader { 2 } else { 0 });
    }
}

#[test]
fn sync_delivers_the_leaders_assignment_to_everyone() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    g.join(&c, consumer_join(1, "", false), 0);
    // The group completed with one member; a second one joins: rebalance.
    let fx = g.join(&c, consumer_join(2, "", false), 1);
    assert!(joins(&fx).is_empty());
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let fx = g.join(&c, consumer_join(3, "fresh-1", false), 2);
    assert_eq!(joins(&fx).len(), 2);
    assert_eq!(g.generation_id, 2);

    let follower = if g.is_leader("fresh-1") { "fresh-2" } else { "fresh-1" };
    let leader = g.leader_id.clone().unwrap();
    assert!(
        g.sync(&c, sync(10, follower, 2, &[]), 3).is_empty(),
        "the follower waits for the leader"
    );
    let fx = g.sync(&c, sync(11, &leader, 2, &[("fresh-1", "a1"), ("fresh-2", "a2")]), 4);
    assert_eq!(fx[0], Effect::StoreGroup);
    let got = syncs(&fx);
    assert_eq!(got.len(), 2);
    let a = |w| got.iter().find(|(x, _)| *x == w).unwrap().1.assignment.clone();
    assert_eq!(a(10), Bytes::from(if follower == "fresh-1" { "a1" } else { "a2" }));
    assert_eq!(g.state, GroupState::Stable);
    // A resent SyncGroup in Stable answers at once.
    let fx = g.sync(&c, sync(12, follower, 2, &[]), 5);
    assert_eq!(syncs(&fx)[0].1.assignment, a(10));
}

#[test]
fn sync_errors() {
    let (mut g, ids) = stable_group_of(1);
    let c = config(3000);
    let fx = g.sync(&c, sync(1, &ids[0], 9, &[]), 1);
    assert_eq!(syncs(&fx)[0].1.error, Some(ResponseError::IllegalGeneration));
    let fx = g.sync(&c, sync(2, "nobody", 1, &[]), 1);
    assert_eq!(syncs(&fx)[0].1.error, Some(ResponseError::UnknownMemberId));
    let mut wrong = sync(3, &ids[0], 1, &[]);
    wrong.protocol_name = Some("roundrobin".into());
    assert_eq!(
        syncs(&g.sync(&c, wrong, 1))[0].1.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    g.join(&c, consumer_join(4, "", false), 2);
    let fx = g.sync(&c, sync(5, &ids[0], 1, &[]), 3);
    assert_eq!(syncs(&fx)[0].1.error, Some(ResponseError::RebalanceInProgress));
}

#[test]
fn heartbeat_semantics() {
    let (mut g, ids) = stable_group_of(2);
    let c = config(3000);
    assert_eq!(g.heartbeat(&c, &ids[0], None, 1, 10).0, None);
    assert_eq!(
        g.heartbeat(&c, &ids[0], None, 0, 10).0,
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat(&c, "nobody", None, 1, 10).0,
        Some(ResponseError::UnknownMemberId)
    );
    // A new member starts a rebalance; the others learn it from their heartbeats.
    g.join(&c, consumer_join(9, "", false), 20);
    assert_eq!(
        g.heartbeat(&c, &ids[1], None, 1, 30).0,
        Some(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        Group::new("e", 0).heartbeat(&c, "m", None, 0, 0).0,
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn rebalance_timeout_removes_members_that_did_not_rejoin() {
    let (mut g, ids) = stable_group_of(2);
    let c = config(3000);
    let start = T0 + 100;
    let fx = g.join(&c, consumer_join(20, &ids[0], false), start);
    assert!(joins(&fx).is_empty());
    // ids[1] keeps heartbeating but never rejoins.
    for t in (start..start + REBALANCE as i64).step_by(5000) {
        assert_eq!(
            g.heartbeat(&c, &ids[1], None, 1, t).0,
            Some(ResponseError::RebalanceInProgress)
        );
    }
    assert!(g.tick(&c, start + REBALANCE as i64 - 1).is_empty());
    let fx = g.tick(&c, start + REBALANCE as i64);
    let r = join_of(&fx, 20);
    assert_eq!((r.generation_id, r.leader.as_str()), (2, ids[0].as_str()));
    assert_eq!(r.members.len(), 1);
    assert!(!g.members.contains_key(&ids[1]));
}

#[test]
fn session_timeout_expires_a_silent_member() {
    let (mut g, ids) = stable_group_of(2);
    let c = config(3000);
    assert_eq!(g.heartbeat(&c, &ids[0], None, 1, T0 + 9000).0, None);
    g.tick(&c, T0 + SESSION as i64 - 1);
    assert_eq!(g.members.len(), 2);
    g.tick(&c, T0 + SESSION as i64);
    assert!(!g.members.contains_key(&ids[1]), "silent member removed");
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let fx = g.join(&c, consumer_join(30, &ids[0], false), T0 + SESSION as i64 + 100);
    assert_eq!(join_of(&fx, 30).generation_id, 2);
}

#[test]
fn members_that_never_sync_are_removed() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    g.join(&c, consumer_join(1, "", false), 0);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    g.tick(&c, REBALANCE as i64);
    assert!(g.members.is_empty());
    assert_eq!(g.state, GroupState::Empty);
}

#[test]
fn leaving_rebalances_and_the_last_leaver_empties_the_group() {
    let (mut g, ids) = stable_group_of(2);
    let c = config(3000);
    let leaving = vec![(ids[1].clone(), None), ("nobody".to_string(), None)];
    let (outcomes, _) = g.leave(&c, &leaving, 10);
    assert_eq!(outcomes, vec![None, Some(ResponseError::UnknownMemberId)]);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let (outcomes, fx) = g.leave(&c, &[(ids[0].clone(), None)], 20);
    assert_eq!(outcomes, vec![None]);
    assert_eq!(g.state, GroupState::Empty);
    assert!(fx.contains(&Effect::StoreGroup));
    assert_eq!(g.generation_id, 2);
}

#[test]
fn static_member_restart_keeps_a_stable_group_stable() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    let fx = g.join(&c, static_join(1, "", "i1"), 0);
    let first = join_of(&fx, 1).member_id;
    assert_eq!(first, "i1-1", "static members skip MEMBER_ID_REQUIRED");
    g.sync(&c, sync(2, &first, 1, &[(&first, "a")]), 1);
    assert_eq!(g.state, GroupState::Stable);

    // Restarted without its member id, same subscription: new id, same generation, no rebalance.
    let fx = g.join(&c, static_join(3, "", "i1"), 100);
    let r = join_of(&fx, 3);
    assert_eq!(r.error, None);
    assert_eq!((r.member_id.as_str(), r.generation_id), ("i1-3", 1));
    assert_eq!(r.leader, first, "the old leader id, so the member does not reassign");
    assert!(fx.contains(&Effect::StoreGroup));
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(
        g.heartbeat(&c, &first, Some("i1"), 1, 101).0,
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(g.heartbeat(&c, "i1-3", Some("i1"), 1, 101).0, None);
    let fx = g.sync(
        &c,
        SyncRequest {
            group_instance_id: Some("i1".into()),
            ..sync(4, "i1-3", 1, &[])
        },
        102,
    );
    assert_eq!(syncs(&fx)[0].1.assignment, Bytes::from("a"));

    // With another protocol the selection changes: rebalance.
    let mut changed = static_join(5, "", "i1");
    changed.protocols = protocols(&["roundrobin", "range"]);
    g.join(&c, changed, 200);
    assert_eq!(
        g.state,
        GroupState::CompletingRebalance,
        "single member completes at once"
    );
    assert_eq!(g.generation_id, 2);
}

#[test]
fn static_member_rejoin_fences_the_old_pending_join() {
    let (mut g, ids) = stable_group_of(1);
    let c = config(3000);
    g.join(&c, static_join(10, "", "s"), 10);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let fx = g.join(&c, static_join(11, "", "s"), 20);
    assert_eq!(join_of(&fx, 10).error, Some(ResponseError::FencedInstanceId));
    assert!(g.members.contains_key("s-11"));
    let fx = g.join(&c, consumer_join(12, &ids[0], false), 30);
    assert_eq!(joins(&fx).len(), 2);
}

#[test]
fn join_validation() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    let mut bad = consumer_join(1, "", false);
    bad.session_timeout_ms = 10;
    assert_eq!(
        join_of(&g.join(&c, bad, 0), 1).error,
        Some(ResponseError::InvalidSessionTimeout)
    );
    g.join(&c, consumer_join(2, "", false), 0);
    let mut other = consumer_join(3, "", false);
    other.protocol_type = "connect".into();
    assert_eq!(
        join_of(&g.join(&c, other, 0), 3).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    let mut other = consumer_join(4, "", false);
    other.protocols = protocols(&["sticky"]);
    assert_eq!(
        join_of(&g.join(&c, other, 0), 4).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        join_of(&g.join(&c, consumer_join(5, "ghost", false), 0), 5).error,
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn protocol_selected_by_vote() {
    let c = config(3000);
    let mut g = Group::new("g", 0);
    for (w, prefs) in [(1, vec!["x", "y"]), (2, vec!["y", "x"]), (3, vec!["y", "x", "z"])] {
        let mut j = consumer_join(w, "", false);
        j.protocols = protocols(&prefs);
        g.join(&c, j, 0);
    }
    g.tick(&c, 3000);
    g.tick(&c, 6000);
    assert_eq!(g.protocol_name.as_deref(), Some("y"));
}

#[test]
fn leader_rejoin_in_stable_triggers_a_rebalance_and_follower_rejoin_does_not() {
    let (mut g, ids) = stable_group_of(2);
    let c = config(3000);
    let leader = g.leader_id.clone().unwrap();
    let follower = ids.iter().find(|i| **i != leader).unwrap().clone();
    let fx = g.join(&c, consumer_join(40, &follower, false), 10);
    assert_eq!(join_of(&fx, 40).generation_id, 1);
    assert_eq!(g.state, GroupState::Stable);
    g.join(&c, consumer_join(41, &leader, false), 20);
    assert_eq!(g.state, GroupState::PreparingRebalance);
}

#[test]
fn batch_leave_by_instance_id() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    let fx = g.join(&c, static_join(1, "", "i1"), 0);
    let id = join_of(&fx, 1).member_id;
    g.sync(&c, sync(2, &id, 1, &[(&id, "a")]), 1);
    // KIP-345: an admin removes static members by instance id (empty member id).
    let leaving = vec![
        (String::new(), Some("i1".to_string())),
        (String::new(), Some("unknown".to_string())),
    ];
    let (outcomes, fx) = g.leave(&c, &leaving, 10);
    assert_eq!(outcomes, vec![None, Some(ResponseError::UnknownMemberId)]);
    assert!(g.members.is_empty() && g.static_members.is_empty());
    assert_eq!(g.state, GroupState::Empty);
    assert!(fx.contains(&Effect::StoreGroup));
    // A member id that does not match the instance id is fenced.
    let fx = g.join(&c, static_join(3, "", "i2"), 20);
    let id2 = join_of(&fx, 3).member_id;
    let (outcomes, _) = g.leave(&c, &[("other".to_string(), Some("i2".to_string()))], 30);
    assert_eq!(outcomes, vec![Some(ResponseError::FencedInstanceId)]);
    assert!(g.members.contains_key(&id2));
}

#[test]
fn resent_join_during_completing_rebalance_gets_the_same_generation() {
    let c = config(0);
    let mut g = Group::new("g", 0);
    g.join(&c, consumer_join(1, "", false), 0);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let fx = g.join(&c, consumer_join(2, "fresh-1", false), 5);
    let r = join_of(&fx, 2);
    assert_eq!((r.error, r.generation_id, r.members.len()), (None, 1, 1));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    // The leader's assignment for a member that is not in the group is ignored.
    let fx = g.sync(&c, sync(3, "fresh-1", 1, &[("fresh-1", "a"), ("ghost", "b")]), 6);
    assert_eq!(syncs(&fx)[0].1.assignment, Bytes::from("a"));
    assert!(!g.members.contains_key("ghost"));
}
