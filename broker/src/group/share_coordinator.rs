//! `ShareCoordinator`: the runtime of share groups (KIP-932) on this broker. It owns, behind one
//! lock, the share groups whose group coordinator this broker is (membership, `share::group`), the
//! share partitions of the partitions this broker leads (`share::partition`, one per group, topic
//! id and partition) and the members' share sessions (`share::session`). The API handlers
//! (`api/share_*.rs`) call it with the clock and the topic metadata; reading the log is theirs.
//!
//! Durability: the share partitions' state is written to `share_state::ShareStateStore` (when one is
//! attached) after every change, before the request that made it is answered, and read back the
//! first time a share partition is used after a restart.

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::Mutex;
use uuid::Uuid;

use super::config::GroupConfig;
use super::share::group::{ShareGroup, ShareHeartbeat, ShareHeartbeatAnswer, ShareHeartbeatError};
use super::share::partition::{AckError, Acquired, LogBatch, ShareLimits, SharePartition};
use super::share::session::{SessionError, SessionPartition, SessionStep, ShareSessions};
use super::share::store::ShareStateStore;

/// A share partition's key: group id, topic id, partition.
pub type SharePartitionKey = (String, Uuid, i32);

/// Owned by the `GroupCoordinator` (its `share` field), used by the share APIs' handlers.
pub struct ShareCoordinator {
    limits: ShareLimits,
    session_timeout_ms: i64,
    max_size: usize,
    max_sessions: usize,
    inner: Mutex<Inner>,
    store: Option<ShareStateStore>,
}

#[derive(Default)]
struct Inner {
    groups: BTreeMap<String, ShareGroup>,
    partitions: BTreeMap<SharePartitionKey, SharePartition>,
    sessions: ShareSessions,
}

impl ShareCoordinator {
    pub fn new(config: &GroupConfig, store: Option<ShareStateStore>) -> ShareCoordinator {
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
            store,
        }
    }

    pub fn limits(&self) -> ShareLimits {
        self.limits
    }

    /// One ShareGroupHeartbeat. Members whose session expired leave first; a member that leaves
    /// gives back what it holds in this broker's share partitions.
    pub fn heartbeat(
        &self,
        group_id: &str,
        hb: ShareHeartbeat,
        topics: &BTreeMap<String, (Uuid, i32)>,
        now_ms: i64,
    ) -> Result<ShareHeartbeatAnswer, ShareHeartbeatError> {
        let mut inner = self.inner.lock();
        let leaving = (hb.member_epoch == -1).then(|| hb.member_id.clone());
        let group = inner.groups.entry(group_id.to_string()).or_default();
        let mut gone = group.expire_members(now_ms, self.session_timeout_ms, topics);
        let answer = group.heartbeat(hb, topics, self.max_size, now_ms);
        gone.extend(leaving);
        for member in gone {
            tracing::info!(group = group_id, member, "share group member left");
            self.release_member(&mut inner, group_id, &member);
        }
        answer
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
        for key in changed {
            self.persist(inner, &key);
        }
    }

    /// A copy of a share group (ShareGroupDescribe), `None` when there is none.
    pub fn describe(&self, group_id: &str, topics: &BTreeMap<String, (Uuid, i32)>, now_ms: i64) -> Option<ShareGroup> {
        let mut inner = self.inner.lock();
        let group = inner.groups.get_mut(group_id)?;
        let gone = group.expire_members(now_ms, self.session_timeout_ms, topics);
        let copy = group.clone();
        for member in gone {
            self.release_member(&mut inner, group_id, &member);
        }
        Some(copy)
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

    /// Where the next fetch of a share partition reads the log, after its expired locks are released
    /// and its start follows the log's. A share partition used for the first time starts at its
    /// persisted state, else at `initial_offset` (`share.auto.offset.reset`: latest, the high watermark).
    pub fn fetch_offset(
        &self,
        key: &SharePartitionKey,
        log_start_offset: i64,
        initial_offset: i64,
        now_ms: i64,
    ) -> i64 {
        let mut inner = self.inner.lock();
        self.ensure_loaded(&mut inner, key, initial_offset);
        let limits = self.limits;
        let sp = inner.partitions.get_mut(key).expect("loaded above");
        let before = sp.start_offset();
        let expired = sp.expire_locks(now_ms, limits);
        sp.follow_log_start(log_start_offset);
        let offset = sp.next_fetch_offset();
        if expired > 0 || sp.start_offset() != before {
            self.persist(&inner, key);
        }
        offset
    }

    fn ensure_loaded(&self, inner: &mut Inner, key: &SharePartitionKey, initial_offset: i64) {
        if inner.partitions.contains_key(key) {
            return;
        }
        let restored = self.store.as_ref().and_then(|store| match store.read(key) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(group = key.0, topic_id = %key.1, partition = key.2, "cannot read share-partition state, starting from the log: {e}");
                None
            }
        });
        let sp = restored.unwrap_or_else(|| SharePartition::new(initial_offset));
        inner.partitions.insert(key.clone(), sp);
        if self.store.is_some() {
            self.persist(inner, key);
        }
    }

    /// Acquires records of `batches` for `member`.
    pub fn acquire(
        &self,
        key: &SharePartitionKey,
        member: &str,
        batches: &[LogBatch],
        max_records: usize,
        now_ms: i64,
    ) -> Vec<Acquired> {
        let mut inner = self.inner.lock();
        let limits = self.limits;
        let Some(sp) = inner.partitions.get_mut(key) else {
            return Vec::new();
        };
        let before = (sp.start_offset(), sp.end_offset());
        let acquired = sp.acquire(member, batches, max_records, now_ms, limits);
        if !acquired.is_empty() || (sp.start_offset(), sp.end_offset()) != before {
            self.persist(&inner, key);
        }
        acquired
    }

    /// Applies a member's acknowledgement batches to one share partition; the first refused batch's
    /// error (the rest still apply, as Kafka does per batch).
    pub fn acknowledge(
        &self,
        key: &SharePartitionKey,
        member: &str,
        batches: &[(i64, i64, Vec<i8>)],
    ) -> Result<(), AckError> {
        let mut inner = self.inner.lock();
        let limits = self.limits;
        let Some(sp) = inner.partitions.get_mut(key) else {
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
        self.persist(&inner, key);
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

    /// Whether the group has no members (its offsets may be altered or deleted only then).
    pub fn is_empty_group(&self, group_id: &str) -> bool {
        self.inner
            .lock()
            .groups
            .get(group_id)
            .is_none_or(|g| g.members.is_empty())
    }

    /// Sets a share partition's start offset (AlterShareGroupOffsets): nothing in flight, the next
    /// fetch reads from `start_offset`.
    pub fn alter_start_offset(&self, key: &SharePartitionKey, start_offset: i64) -> Result<(), String> {
        let mut inner = self.inner.lock();
        inner.partitions.insert(key.clone(), SharePartition::new(start_offset));
        match &self.store {
            Some(store) => store.write(key, &inner.partitions[key]).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Forgets a group's share partitions of a topic (DeleteShareGroupOffsets): the next fetch starts
    /// them as new ones.
    /// `partitions` is the topic's partition count (the state of partitions not loaded since the
    /// last restart is in the store only).
    pub fn delete_topic_state(&self, group_id: &str, topic_id: Uuid, partitions: i32) -> Result<(), String> {
        let mut inner = self.inner.lock();
        for p in 0..partitions {
            let key = (group_id.to_string(), topic_id, p);
            inner.partitions.remove(&key);
            if let Some(store) = &self.store {
                store.remove(&key).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Whether any share group has members here (tests, ListGroups).
    pub fn group_ids(&self) -> BTreeSet<String> {
        self.inner.lock().groups.keys().cloned().collect()
    }

    fn persist(&self, inner: &Inner, key: &SharePartitionKey) {
        let (Some(store), Some(sp)) = (&self.store, inner.partitions.get(key)) else {
            return;
        };
        if let Err(e) = store.write(key, sp) {
            tracing::error!(group = key.0, topic_id = %key.1, partition = key.2, "cannot write share-partition state: {e}");
        }
    }
}
