//! `ShareCoordinator`: the runtime of share groups (KIP-932) on this broker. It owns, behind one
//! lock, the share groups whose group coordinator this broker is (membership, `share::group`), the
//! share partitions of the partitions this broker leads (`share::partition`, one per group, topic
//! id and partition) and the members' share sessions (`share::session`). The API handlers
//! (`api/share_*.rs`) call it with the clock and the topic metadata; reading the log is theirs.
//!
//! Durability: each share partition is loaded at a leader epoch of its topic partition, from the
//! state its share coordinator keeps in `__share_group_state` (`share_state::persister::load`),
//! before it serves anything; one loaded at an older epoch (this broker led it before) is loaded
//! again. Every change bumps the share partition's version; `share_state::persister::flush` writes
//! the versions not yet written (one writer per share partition at a time, under `write_lock`)
//! before the request that made the change is answered. Changes no request waits for (expired
//! acquisition locks, what a leaving member held) are released and written by the share-partition
//! timer (`group::share_timer`), which this runtime wakes (`timer_wake`) and which tells long-polling
//! ShareFetches that records became available (`subscribe_available`).

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::Mutex;
use uuid::Uuid;

use super::config::GroupConfig;
use super::share::group::ShareGroup;
use super::share::partition::{AckError, Acquired, LogBatch, RecordState, ShareLimits, SharePartition};
use super::share::session::{SessionError, SessionPartition, SessionStep, ShareSessions};
use crate::share_state::records::{ShareSnapshot, StateBatch};

mod membership;

/// A share partition's key: group id, topic id, partition.
pub type SharePartitionKey = (String, Uuid, i32);

/// Owned by the `GroupCoordinator` (its `share` field), used by the share APIs' handlers.
pub struct ShareCoordinator {
    limits: ShareLimits,
    session_timeout_ms: i64,
    max_size: usize,
    max_sessions: usize,
    inner: Mutex<Inner>,
    /// Failed loads and writes of share-partition state, logged once per interval with a count.
    pub persist_errors: crate::util::RateLimitedLog,
    /// One writer of a share partition's state at a time (`share_state::persister`).
    write_locks: Mutex<BTreeMap<SharePartitionKey, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped whenever records may have become available again (released, lock expired, member
    /// left): a ShareFetch waiting for records looks again.
    available: tokio::sync::watch::Sender<u64>,
    /// Wakes the share-partition timer: a change to persist that no request will write.
    pub timer_wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Inner {
    groups: BTreeMap<String, ShareGroup>,
    partitions: BTreeMap<SharePartitionKey, SharePartition>,
    /// Per share partition: the leader epoch it was loaded at, its version (bumped by every change)
    /// and the version last persisted.
    loaded: BTreeMap<SharePartitionKey, Loaded>,
    sessions: ShareSessions,
    /// Share partitions whose InitializeShareGroupState this broker has under way (not durable:
    /// after a failover the new group coordinator tries the initializing ones again).
    initializing_now: BTreeSet<SharePartitionKey>,
    /// Initializations claimed after a takeover (`initialize_after_takeover`), for the share-partition
    /// timer to start: group, group epoch, partitions.
    takeover_inits: Vec<(String, i32, super::share::group::TopicPartitionsInfo)>,
}

#[derive(Debug, Clone, Copy)]
struct Loaded {
    leader_epoch: i32,
    /// The state epoch of the persisted state it was loaded from (0 for a new one): writes carry
    /// it, and a newer one at the share coordinator means the state was initialized anew.
    state_epoch: i32,
    version: u64,
    persisted: u64,
}

impl ShareCoordinator {
    pub fn new(config: &GroupConfig) -> ShareCoordinator {
        ShareCoordinator {
            limits: ShareLimits {
                lock_duration_ms: i64::from(config.share_record_lock_duration_ms),
                delivery_count_limit: config.share_delivery_count_limit,
                max_in_flight: config.share_partition_max_record_locks,
            },
            session_timeout_ms: i64::from(config.share_session_timeout_ms),
            max_size: config.share_max_size,
            max_sessions: config.share_max_sessions,
            inner: Mutex::new(Inner::default()),
            write_locks: Mutex::default(),
            available: tokio::sync::watch::channel(0).0,
            timer_wake: tokio::sync::Notify::new(),
            persist_errors: crate::util::RateLimitedLog::new(std::time::Duration::from_secs(30)),
        }
    }

    pub fn limits(&self) -> ShareLimits {
        self.limits
    }

    fn release_member(&self, inner: &mut Inner, group_id: &str, member: &str) {
        inner.sessions.remove_member(group_id, member);
        let limits = self.limits;
        let mut changed = Vec::new();
        for (key, sp) in inner.partitions.iter_mut().filter(|(k, _)| k.0 == group_id) {
            if sp.release_member(member, limits) > 0 {
                changed.push(key.clone());
            }
        }
        let released = !changed.is_empty();
        for key in changed {
            inner.touch(&key);
        }
        if released {
            self.records_released();
        }
    }

    /// Records may be available again: long-polling fetches look again, and the timer persists
    /// the change (no request of the member that gave them back will).
    fn records_released(&self) {
        self.available.send_modify(|n| *n = n.wrapping_add(1));
        self.timer_wake.notify_one();
    }

    /// What a ShareFetch waiting for records watches, besides appends.
    pub fn subscribe_available(&self) -> tokio::sync::watch::Receiver<u64> {
        self.available.subscribe()
    }

    /// The share-partition timer's step: releases every expired acquisition lock here (records
    /// become available, or archived at the delivery count limit); returns how many.
    pub fn expire_locks(&self, now_ms: i64) -> usize {
        let mut inner = self.inner.lock();
        let limits = self.limits;
        let mut changed = Vec::new();
        let mut released = 0;
        for (key, sp) in inner.partitions.iter_mut() {
            let n = sp.expire_locks(now_ms, limits);
            if n > 0 {
                released += n;
                changed.push(key.clone());
            }
        }
        for key in &changed {
            inner.touch(key);
        }
        drop(inner);
        if released > 0 {
            self.available.send_modify(|n| *n = n.wrapping_add(1));
        }
        released
    }

    /// The earliest acquisition-lock expiry here, when the timer must look next. A walk over the
    /// in-flight records (at most `group.share.partition.max.record.locks` per share partition).
    pub fn next_lock_expiry(&self) -> Option<i64> {
        let inner = self.inner.lock();
        inner
            .partitions
            .values()
            .filter_map(SharePartition::next_lock_expiry)
            .min()
    }

    /// The share partitions with a change not persisted yet.
    pub fn unpersisted_keys(&self) -> Vec<SharePartitionKey> {
        let inner = self.inner.lock();
        inner
            .loaded
            .iter()
            .filter(|(_, l)| l.version > l.persisted)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The state epoch a loaded share partition was loaded with; `None` when it is not loaded.
    pub fn loaded_state_epoch(&self, key: &SharePartitionKey) -> Option<i32> {
        self.inner.lock().loaded.get(key).map(|l| l.state_epoch)
    }

    /// A copy of a share group (ShareGroupDescribe), `None` when there is none. Members whose
    /// session ended leave at the share-partition timer's next step (`expire_members`, within a second).
    pub fn describe(&self, group_id: &str) -> Option<ShareGroup> {
        self.inner.lock().groups.get(group_id).cloned()
    }

    /// Every share group here with its state name (ListGroups).
    pub fn list(&self) -> Vec<(String, &'static str)> {
        let inner = self.inner.lock();
        inner
            .groups
            .iter()
            .map(|(id, g)| (id.clone(), g.state_name()))
            .collect()
    }

    /// Steps the member's share session with a ShareFetch's partitions.
    pub fn session_step(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
        added: &[SessionPartition],
        forgotten: &[SessionPartition],
    ) -> Result<SessionStep, SessionError> {
        let mut inner = self.inner.lock();
        let step = inner
            .sessions
            .step(group_id, member_id, epoch, added, forgotten, self.max_sessions);
        if step == Ok(SessionStep::Closed) {
            self.release_member(&mut inner, group_id, member_id);
        }
        step
    }

    /// Checks a ShareAcknowledge's session epoch.
    pub fn session_ack(&self, group_id: &str, member_id: &str, epoch: i32) -> Result<SessionStep, SessionError> {
        let mut inner = self.inner.lock();
        let step = inner.sessions.check_ack(group_id, member_id, epoch);
        if step == Ok(SessionStep::Closed) {
            self.release_member(&mut inner, group_id, member_id);
        }
        step
    }

    /// Whether the share partition must be loaded (again) before it serves at `leader_epoch`.
    pub fn needs_load(&self, key: &SharePartitionKey, leader_epoch: i32) -> bool {
        self.inner
            .lock()
            .loaded
            .get(key)
            .is_none_or(|l| l.leader_epoch != leader_epoch)
    }

    /// Installs a share partition loaded at `leader_epoch`: from its persisted state, or (none)
    /// starting at `initial_offset` (`share.auto.offset.reset`: latest, the high watermark), which
    /// is then a change to persist.
    pub fn install(
        &self,
        key: &SharePartitionKey,
        leader_epoch: i32,
        state: Option<&ShareSnapshot>,
        initial_offset: i64,
    ) {
        let mut inner = self.inner.lock();
        let (sp, version, state_epoch) = match state {
            // Initialized without a start offset (-1): it starts as a new one would, and says so.
            Some(s) if s.start_offset < 0 => (SharePartition::new(initial_offset), 1, s.state_epoch.max(0)),
            Some(s) => (from_snapshot(s), 0, s.state_epoch.max(0)),
            None => (SharePartition::new(initial_offset), 1, 0),
        };
        inner.partitions.insert(key.clone(), sp);
        inner.loaded.insert(
            key.clone(),
            Loaded {
                leader_epoch,
                state_epoch,
                version,
                persisted: 0,
            },
        );
    }

    /// The share partition's state to persist, with its version, when a change is not persisted yet.
    pub fn unpersisted(&self, key: &SharePartitionKey) -> Option<(ShareSnapshot, u64)> {
        let inner = self.inner.lock();
        let loaded = inner.loaded.get(key)?;
        if loaded.version <= loaded.persisted {
            return None;
        }
        let sp = inner.partitions.get(key)?;
        let mut snapshot = to_snapshot(sp, loaded.leader_epoch);
        snapshot.state_epoch = loaded.state_epoch;
        Some((snapshot, loaded.version))
    }

    /// `version` of the share partition is durable.
    pub fn persisted(&self, key: &SharePartitionKey, version: u64) {
        if let Some(l) = self.inner.lock().loaded.get_mut(key) {
            l.persisted = l.persisted.max(version);
        }
    }

    /// The lock one writer of the share partition's state holds while it writes.
    pub fn write_lock(&self, key: &SharePartitionKey) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.write_locks.lock().entry(key.clone()).or_default().clone()
    }

    /// Where the next fetch of a share partition reads the log, after its expired locks are released
    /// and its start follows the log's; `None` when it is not loaded at `leader_epoch`.
    pub fn fetch_offset(
        &self,
        key: &SharePartitionKey,
        leader_epoch: i32,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Option<i64> {
        let mut inner = self.inner.lock();
        if inner.loaded.get(key).is_none_or(|l| l.leader_epoch != leader_epoch) {
            return None;
        }
        let limits = self.limits;
        let sp = inner.partitions.get_mut(key)?;
        let before = sp.start_offset();
        let expired = sp.expire_locks(now_ms, limits);
        sp.follow_log_start(log_start_offset);
        let offset = sp.next_fetch_offset();
        if expired > 0 || sp.start_offset() != before {
            inner.touch(key);
        }
        Some(offset)
    }

    /// Acquires records of `batches` for `member`.
    pub fn acquire(
        &self,
        key: &SharePartitionKey,
        leader_epoch: i32,
        member: &str,
        batches: &[LogBatch],
        max_records: usize,
        now_ms: i64,
    ) -> Vec<Acquired> {
        let mut inner = self.inner.lock();
        let limits = self.limits;
        if inner.loaded.get(key).is_none_or(|l| l.leader_epoch != leader_epoch) {
            return Vec::new();
        }
        let Some(sp) = inner.partitions.get_mut(key) else {
            return Vec::new();
        };
        let before = (sp.start_offset(), sp.end_offset());
        let acquired = sp.acquire(member, batches, max_records, now_ms, limits);
        if !acquired.is_empty() || (sp.start_offset(), sp.end_offset()) != before {
            inner.touch(key);
        }
        acquired
    }

    /// Applies a member's acknowledgement batches to one share partition; the first refused batch's
    /// error (the rest still apply, as Kafka does per batch).
    pub fn acknowledge(
        &self,
        key: &SharePartitionKey,
        leader_epoch: i32,
        member: &str,
        batches: &[(i64, i64, Vec<i8>)],
    ) -> Result<(), AckError> {
        let mut inner = self.inner.lock();
        let limits = self.limits;
        let current = inner.loaded.get(key).is_some_and(|l| l.leader_epoch == leader_epoch);
        let Some(sp) = inner.partitions.get_mut(key).filter(|_| current) else {
            return Err(AckError::InvalidRecordState(format!(
                "Member {member} holds no records of partition {} here.",
                key.2
            )));
        };
        let mut result = Ok(());
        for (first, last, types) in batches {
            if let Err(e) = sp.acknowledge(member, *first, *last, types, limits) {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        inner.touch(key);
        drop(inner);
        // A release makes records available to members waiting in a ShareFetch.
        self.available.send_modify(|n| *n = n.wrapping_add(1));
        result
    }

    /// The share partitions of a group here: key, SPSO (DescribeShareGroupOffsets).
    pub fn start_offsets(&self, group_id: &str) -> BTreeMap<(Uuid, i32), i64> {
        let inner = self.inner.lock();
        inner
            .partitions
            .iter()
            .filter(|(k, _)| k.0 == group_id)
            .map(|(k, sp)| ((k.1, k.2), sp.start_offset()))
            .collect()
    }

    /// The topics with share-partition state of a share group (its `ShareGroupStatePartitionMetadata`:
    /// what DescribeShareGroupOffsets reports when asked for all topics).
    pub fn state_topics(&self, group_id: &str) -> BTreeSet<String> {
        self.inner
            .lock()
            .groups
            .get(group_id)
            .map(ShareGroup::state_topic_names)
            .unwrap_or_default()
    }

    /// Whether the group has no members (its offsets may be altered or deleted only then).
    pub fn is_empty_group(&self, group_id: &str) -> bool {
        self.inner
            .lock()
            .groups
            .get(group_id)
            .is_none_or(|g| g.members.is_empty())
    }

    /// Forgets a share partition here (AlterShareGroupOffsets and DeleteShareGroupOffsets change
    /// its persisted state): its next fetch loads it again.
    pub fn forget(&self, key: &SharePartitionKey) {
        let mut inner = self.inner.lock();
        inner.partitions.remove(key);
        inner.loaded.remove(key);
    }

    /// Whether any share group has members here (tests, ListGroups).
    pub fn group_ids(&self) -> BTreeSet<String> {
        self.inner.lock().groups.keys().cloned().collect()
    }

    /// Whether a share group has this id (a classic or consumer group may not use it).
    pub fn has_group(&self, group_id: &str) -> bool {
        self.inner.lock().groups.contains_key(group_id)
    }
}

impl Inner {
    /// A change of the share partition, to persist.
    fn touch(&mut self, key: &SharePartitionKey) {
        if let Some(l) = self.loaded.get_mut(key) {
            l.version += 1;
        }
    }
}

/// The persisted form of a share partition (acquired records as available: locks do not survive).
pub fn to_snapshot(sp: &SharePartition, leader_epoch: i32) -> ShareSnapshot {
    ShareSnapshot {
        snapshot_epoch: 0,
        state_epoch: 0,
        leader_epoch,
        start_offset: sp.start_offset(),
        create_timestamp: 0,
        write_timestamp: 0,
        state_batches: sp
            .state_batches()
            .into_iter()
            .map(|(first, last, state, count)| StateBatch {
                first_offset: first,
                last_offset: last,
                delivery_state: state.code(),
                delivery_count: count,
            })
            .collect(),
    }
}

/// A share partition from its persisted state; a batch of an unknown delivery state comes back
/// available (delivered again rather than lost).
pub fn from_snapshot(s: &ShareSnapshot) -> SharePartition {
    let batches: Vec<(i64, i64, RecordState, i16)> = s
        .state_batches
        .iter()
        .filter(|b| b.last_offset >= b.first_offset)
        .map(|b| {
            let state = RecordState::from_code(b.delivery_state).unwrap_or(RecordState::Available);
            (b.first_offset, b.last_offset, state, b.delivery_count)
        })
        .collect();
    SharePartition::restore(s.start_offset.max(0), &batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::share::group::ShareHeartbeat;

    fn heartbeat(member: &str, epoch: i32) -> ShareHeartbeat {
        ShareHeartbeat {
            member_id: member.to_string(),
            member_epoch: epoch,
            rack_id: None,
            subscribed_topic_names: (epoch == 0).then(|| vec!["jobs".to_string()]),
            client_id: "c".to_string(),
            client_host: "/127.0.0.1".to_string(),
        }
    }

    /// A share partition loaded at leader epoch 3 (state epoch 2), where `member` holds offsets
    /// 0..=4 (delivery 1) and everything is persisted.
    fn held(member: &str) -> (ShareCoordinator, SharePartitionKey, BTreeMap<String, (Uuid, i32)>) {
        let sc = ShareCoordinator::new(&GroupConfig::default());
        let topic = Uuid::from_u128(9);
        let topics = BTreeMap::from([("jobs".to_string(), (topic, 1))]);
        let key: SharePartitionKey = ("g".to_string(), topic, 0);
        sc.heartbeat("g", heartbeat(member, 0), &topics, 0, |_| Ok(())).unwrap();
        let persisted = ShareSnapshot {
            snapshot_epoch: 0,
            state_epoch: 2,
            leader_epoch: 3,
            start_offset: 0,
            create_timestamp: 0,
            write_timestamp: 0,
            state_batches: Vec::new(),
        };
        sc.install(&key, 3, Some(&persisted), 0);
        let batch = LogBatch {
            base_offset: 0,
            last_offset: 4,
            control: false,
        };
        assert_eq!(sc.acquire(&key, 3, member, &[batch], 100, 0).len(), 1);
        let (_, version) = sc.unpersisted(&key).expect("the acquisition is a change");
        sc.persisted(&key, version);
        assert!(sc.unpersisted_keys().is_empty());
        (sc, key, topics)
    }

    #[test]
    fn a_leaving_members_release_is_a_change_the_timer_persists() {
        let (sc, key, topics) = held("m");
        let available = sc.subscribe_available();
        sc.heartbeat("g", heartbeat("m", -1), &topics, 10, |_| Ok(())).unwrap();
        // The timer's next step writes it: the records available, delivered once, the state epoch
        // the share partition was loaded with (else its share coordinator would fence the write).
        assert_eq!(sc.unpersisted_keys(), vec![key.clone()]);
        let (state, _) = sc.unpersisted(&key).unwrap();
        assert_eq!(state.state_epoch, 2);
        assert_eq!(state.leader_epoch, 3);
        assert_eq!(state.state_batches.len(), 1);
        let b = state.state_batches[0];
        assert_eq!((b.first_offset, b.last_offset), (0, 4));
        assert_eq!(b.delivery_state, RecordState::Available.code());
        assert_eq!(b.delivery_count, 1);
        assert!(available.has_changed().unwrap(), "waiting fetches look again");
        // A closed share session releases likewise.
        let (sc, key, _) = held("n");
        sc.session_step("g", "n", 0, &[(key.1, 0)], &[]).unwrap();
        sc.session_step("g", "n", -1, &[], &[]).unwrap();
        assert_eq!(sc.unpersisted_keys(), vec![key]);
    }

    #[test]
    fn expired_locks_are_released_by_the_timer_step() {
        let (sc, key, _) = held("m");
        let expiry = sc.next_lock_expiry().expect("a lock is held");
        assert_eq!(expiry, sc.limits().lock_duration_ms);
        let available = sc.subscribe_available();
        assert_eq!(sc.expire_locks(expiry - 1), 0);
        assert!(sc.unpersisted_keys().is_empty());
        assert!(!available.has_changed().unwrap());
        assert_eq!(sc.expire_locks(expiry), 5);
        assert_eq!(sc.unpersisted_keys(), vec![key]);
        assert!(available.has_changed().unwrap());
        assert_eq!(sc.next_lock_expiry(), None);
    }
}
