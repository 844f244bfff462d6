//! `GroupCoordinator`: the runtime around the pure group state machine. It owns every group and every
//! parked JoinGroup/SyncGroup behind one lock, performs the state machine's effects (answer waiting
//! requests through oneshot channels, append group metadata to `__consumer_offsets`), appends offset
//! commits before it answers them, and runs the clock (`tick`, called periodically by the runtime).
//!
//! Owned by `Broker` (`broker.groups`); request handlers and the periodic tick call it. Appends happen
//! under the lock, so the order of records in the log is the order of changes to the groups.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::classic_group::{Group, GroupState};
use super::config::GroupConfig;
use super::consumer::records as consumer_records;
use super::host::GroupHost;
use super::offsets::CommittedOffset;
use super::records::partition_for;
use super::records::{
    encode_group_value, encode_key, encode_offset_value, GroupMetadataValue, MemberMetadataValue, RecordKey,
};
use super::state::{Effect, JoinRequest, JoinResult, LeaveOutcome, SyncRequest, SyncResult, WaiterId};
use crate::log::batch::BatchBuilder;
use crate::log::{AppendError, TopicPartition};
use crate::replication::AppendFailure;
use crate::util::now_ms;

/// Kafka's internal topic for committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub struct GroupCoordinator {
    pub config: GroupConfig,
    /// Share groups (KIP-932) and the share partitions of this broker's partitions.
    pub share: super::ShareCoordinator,
    inner: Mutex<Inner>,
    /// `__consumer_offsets` exists (created at first use or found at start-up).
    ready: AtomicBool,
    /// The "replication factor too high" error was logged.
    warned: AtomicBool,
    /// Shutting down: nothing waits any more (see `shutdown`).
    closed: AtomicBool,
    /// Failed `__consumer_offsets` appends, logged once per interval with a count (a commit loop into
    /// a full disk must not log a line per commit).
    errors: crate::util::RateLimitedLog,
}

/// Everything behind the coordinator's one lock.
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) groups: HashMap<String, Group>,
    /// Parked JoinGroup and SyncGroup requests, answered by `Effect::CompleteJoin`/`CompleteSync`.
    pub(super) joins: HashMap<WaiterId, oneshot::Sender<JoinResult>>,
    pub(super) syncs: HashMap<WaiterId, oneshot::Sender<SyncResult>>,
    next_waiter: WaiterId,
    /// When expired offsets were last removed.
    last_cleanup_ms: i64,
}

/// One row of ListGroups.
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Kafka's name of the group's state (classic: `GroupState`; consumer: `ConsumerGroupState`).
    pub state: &'static str,
    /// KIP-1043's group type: `classic` or `consumer`.
    pub group_type: &'static str,
}

/// A record for `__consumer_offsets`: key and value (None: tombstone).
pub(super) type OffsetsRecord = (Vec<u8>, Option<Vec<u8>>);

/// One partition's OffsetFetch answer: the committed offset if any, or why it is not given.
pub type FetchedOffset = Result<Option<CommittedOffset>, ResponseError>;

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator {
            share: super::ShareCoordinator::new(&config),
            config,
            inner: Mutex::new(Inner::default()),
            ready: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            errors: crate::util::RateLimitedLog::new(std::time::Duration::from_secs(30)),
        }
    }

    /// Whether the runtime is shutting down (nothing is accepted any more).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn with_inner<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock())
    }

    /// Makes sure `__consumer_offsets` exists, having the controller create it on first use as Kafka does
    /// (FindCoordinator). Fails with COORDINATOR_NOT_AVAILABLE when it cannot be created.
    pub async fn ensure_offsets_topic(&self, broker: &impl GroupHost) -> Result<(), ResponseError> {
        if self.ready(broker).is_ok() {
            return Ok(());
        }
        let rf = broker.offsets_topic_replication_factor();
        let configs = [
            ("cleanup.policy", "compact"),
            ("compression.type", "producer"),
            ("segment.bytes", "104857600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let created = broker
            .create_topic(
                OFFSETS_TOPIC,
                broker.offsets_topic_num_partitions(),
                rf.max(1),
                configs,
                Vec::new(),
                false,
            )
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.error == ResponseError::TopicAlreadyExists => {}
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "cannot create {OFFSETS_TOPIC} (offsets.topic.replication.factor={rf}, \
                         offsets.topic.num.partitions={}): {}; consumer groups are unavailable until it can be",
                        broker.offsets_topic_num_partitions(),
                        e.message
                    );
                }
                return Err(ResponseError::CoordinatorNotAvailable);
            }
        }
        self.ready(broker)
    }

    /// Whether `__consumer_offsets` exists (groups can be coordinated at all).
    pub fn ready(&self, broker: &impl GroupHost) -> Result<(), ResponseError> {
        if self.ready.load(Ordering::Acquire) || broker.topic(OFFSETS_TOPIC).is_some() {
            self.ready.store(true, Ordering::Release);
            return Ok(());
        }
        Err(ResponseError::CoordinatorNotAvailable)
    }

    /// The broker that coordinates `group_id`: the leader of its `__consumer_offsets` partition.
    pub fn coordinator_of(&self, broker: &impl GroupHost, group_id: &str) -> Result<i32, ResponseError> {
        let partition = self.partition_of(broker, group_id);
        match broker.leader_of(OFFSETS_TOPIC, partition) {
            Some(leader) if leader >= 0 => Ok(leader),
            _ => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// What every group API checks first: groups are available, the group id is valid, and this broker
    /// is the group's coordinator (else NOT_COORDINATOR: the client looks it up again).
    pub fn check_group(&self, broker: &impl GroupHost, group_id: &str) -> Result<(), ResponseError> {
        self.ready(broker)?;
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if self.coordinator_of(broker, group_id)? != broker.broker_id() {
            return Err(ResponseError::NotCoordinator);
        }
        Ok(())
    }

    /// The `__consumer_offsets` partition that holds `group_id`.
    pub fn partition_of(&self, broker: &impl GroupHost, group_id: &str) -> i32 {
        let partitions = broker
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions)
            .unwrap_or(broker.offsets_topic_num_partitions());
        partition_for(group_id, partitions)
    }

    /// Whether a classic or consumer group has this id (a share group may not use it).
    pub fn holds_group(&self, group_id: &str) -> bool {
        self.inner.lock().groups.contains_key(group_id)
    }

    pub async fn join(&self, broker: &impl GroupHost, group_id: &str, mut request: JoinRequest) -> JoinResult {
        let member_id = request.member_id.clone();
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.inner.lock();
            if self.closed.load(Ordering::Acquire) {
                return JoinResult::error(&member_id, ResponseError::NotCoordinator);
            }
            if self.share.has_group(group_id) {
                // A share group has this id: Kafka 4.1 answers GROUP_ID_NOT_FOUND ("not a classic group").
                return JoinResult::error(&member_id, ResponseError::GroupIdNotFound);
            }
            if !request.member_id.is_empty() && !inner.groups.contains_key(group_id) {
                return JoinResult::error(&member_id, ResponseError::UnknownMemberId);
            }
            if let Some(group) = inner.groups.get_mut(group_id) {
                if group.has_consumer_members() {
                    // A classic member of a consumer group (KIP-848's online migration).
                    return self.classic_join_to_consumer(broker, &mut inner, group_id, request);
                }
                // An empty consumer group becomes a classic one, as in Kafka.
                if let Some(consumer) = group.consumer.take() {
                    let records = consumer_records::changes(group_id, Some(&consumer), None);
                    if let Err(e) = self.append(broker, group_id, records) {
                        group.consumer = Some(consumer);
                        return JoinResult::error(&member_id, e);
                    }
                }
            }
            request.waiter = inner.waiter();
            inner.joins.insert(request.waiter, tx);
            let now = now_ms();
            let group = inner
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id, now));
            let effects = group.join(&self.config, request, now);
            self.perform(broker, &mut inner, group_id, effects);
            inner.forget_if_unused(group_id);
        }
        rx.await
            .unwrap_or_else(|_| JoinResult::error(&member_id, ResponseError::CoordinatorNotAvailable))
    }

    pub async fn sync(&self, broker: &impl GroupHost, group_id: &str, mut request: SyncRequest) -> SyncResult {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.inner.lock();
            if self.closed.load(Ordering::Acquire) {
                return SyncResult::error(ResponseError::NotCoordinator);
            }
            request.waiter = inner.waiter();
            inner.syncs.insert(request.waiter, tx);
            let now = now_ms();
            let effects = match inner.groups.get_mut(group_id) {
                Some(group) if group.consumer.is_some() => {
                    let consumer = group.consumer.as_mut().expect("checked");
                    let result = Self::classic_sync_to_consumer(consumer, &request);
                    vec![Effect::CompleteSync(request.waiter, result)]
                }
                Some(group) => group.sync(&self.config, request, now),
                None => vec![Effect::CompleteSync(
                    request.waiter,
                    SyncResult::error(ResponseError::UnknownMemberId),
                )],
            };
            self.perform(broker, &mut inner, group_id, effects);
        }
        rx.await
            .unwrap_or_else(|_| SyncResult::error(ResponseError::CoordinatorNotAvailable))
    }

    pub fn heartbeat(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Option<ResponseError> {
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if let Some(consumer) = group.consumer.as_mut() {
            return consumer
                .classic_heartbeat(member_id, instance_id, generation_id, now_ms())
                .err();
        }
        let (error, effects) = group.heartbeat(&self.config, member_id, instance_id, generation_id, now_ms());
        self.perform(broker, &mut inner, group_id, effects);
        error
    }

    /// LeaveGroup: a group-level error, or one outcome per leaving member.
    pub fn leave(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<LeaveOutcome>, ResponseError> {
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Ok(members.iter().map(|_| Some(ResponseError::UnknownMemberId)).collect());
        };
        if group.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if group.consumer.is_some() {
            return self.classic_leave_to_consumer(broker, &mut inner, group_id, members);
        }
        let (outcomes, effects) = group.leave(&self.config, members, now_ms());
        self.perform(broker, &mut inner, group_id, effects);
        Ok(outcomes)
    }

    /// At shutdown: answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR (as Kafka does when
    /// it stops coordinating a group), so clients look for the coordinator again instead of holding
    /// requests open while the broker drains; later ones get the same answer at once.
    pub fn shutdown(&self) {
        let mut inner = self.inner.lock();
        self.closed.store(true, Ordering::Release);
        for (_, tx) in inner.joins.drain() {
            let _ = tx.send(JoinResult::error("", ResponseError::NotCoordinator));
        }
        for (_, tx) in inner.syncs.drain() {
            let _ = tx.send(SyncResult::error(ResponseError::NotCoordinator));
        }
    }

    /// Forgets the groups of `__consumer_offsets` partitions this broker no longer leads (Kafka's
    /// `onResignation`): their parked JoinGroup and SyncGroup requests are answered NOT_COORDINATOR, so
    /// the members find the new coordinator, which loads the groups from its replica of the log.
    pub fn unload_partitions(&self, broker: &impl GroupHost, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        self.share
            .unload_groups(|g| partitions.contains(&self.partition_of(broker, g)));
        let mut inner = self.inner.lock();
        let gone: Vec<String> = inner
            .groups
            .keys()
            .filter(|g| partitions.contains(&self.partition_of(broker, g)))
            .cloned()
            .collect();
        for group_id in gone {
            let Some(group) = inner.groups.remove(&group_id) else {
                continue;
            };
            for member in group.members.values() {
                if let Some(tx) = member.awaiting_join.and_then(|w| inner.joins.remove(&w)) {
                    let _ = tx.send(JoinResult::error(&member.member_id, ResponseError::NotCoordinator));
                }
                if let Some(tx) = member.awaiting_sync.and_then(|w| inner.syncs.remove(&w)) {
                    let _ = tx.send(SyncResult::error(ResponseError::NotCoordinator));
                }
            }
        }
    }

    /// Runs every group's clock (session timeouts, rebalance timeouts, the initial delay).
    pub fn tick(&self, broker: &impl GroupHost) {
        let now = now_ms();
        let mut inner = self.inner.lock();
        let ids: Vec<String> = inner
            .groups
            .iter()
            .filter(|(_, g)| {
                g.join_timer.is_some()
                    || !g.members.is_empty()
                    || !g.pending_members.is_empty()
                    || g.has_consumer_members()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let effects = match inner.groups.get_mut(&id) {
                Some(group) => group.tick(&self.config, now),
                None => continue,
            };
            self.perform(broker, &mut inner, &id, effects);
            self.tick_consumer_group(broker, &mut inner, &id, now);
            inner.forget_if_unused(&id);
        }
        if now - inner.last_cleanup_ms >= self.config.offsets_retention_check_interval_ms {
            inner.last_cleanup_ms = now;
            self.cleanup(broker, &mut inner, now);
        }
    }

    /// Kafka's `cleanupGroupMetadata`: removes expired offsets (tombstones first), then groups left
    /// empty with no offsets.
    fn cleanup(&self, broker: &impl GroupHost, inner: &mut Inner, now: i64) {
        let ids: Vec<String> = inner.groups.keys().cloned().collect();
        for id in ids {
            let Some(group) = inner.groups.get_mut(&id) else {
                continue;
            };
            let expired = group.expired_offsets(now, self.config.offsets_retention_ms);
            let gone = group.is(GroupState::Empty)
                && !group.has_consumer_members()
                && group.pending_members.is_empty()
                && group.pending_txn_offsets.is_empty()
                && group.offsets.len() == expired.len();
            let mut records: Vec<OffsetsRecord> = expired.iter().map(|tp| (offset_key(&id, tp), None)).collect();
            if gone {
                records.push((encode_key(&RecordKey::Group { group: id.clone() }), None));
                records.extend(consumer_records::changes(&id, group.consumer.as_deref(), None));
            }
            if records.is_empty() {
                continue;
            }
            if self.append(broker, &id, records).is_err() {
                continue;
            }
            for tp in &expired {
                group.offsets.remove(tp);
            }
            if gone {
                inner.groups.remove(&id);
            }
            tracing::info!(group = %id, expired = expired.len(), removed = gone, "removed expired offsets");
        }
    }

    /// OffsetCommit for partitions the handler found to exist. Returns one outcome per partition, in order.
    pub fn commit_offsets(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Vec<Option<ResponseError>> {
        let mut inner = self.inner.lock();
        let outcomes = self.commit_locked(
            broker,
            &mut inner,
            group_id,
            generation_id,
            member_id,
            instance_id,
            offsets,
        );
        // A standalone commit that failed must not leave an empty group behind.
        inner.forget_if_unused(group_id);
        outcomes
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_locked(
        &self,
        broker: &impl GroupHost,
        inner: &mut Inner,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Vec<Option<ResponseError>> {
        let now = now_ms();
        let all = |e: ResponseError| offsets.iter().map(|_| Some(e)).collect::<Vec<_>>();
        if !inner.groups.contains_key(group_id) {
            if generation_id >= 0 {
                // A member of a generation that this coordinator does not know.
                return all(ResponseError::IllegalGeneration);
            }
            inner.groups.insert(group_id.to_string(), Group::new(group_id, now));
        }
        let group = inner.groups.get_mut(group_id).expect("present");
        let valid = match &group.consumer {
            Some(consumer) => consumer.validate_member_epoch(member_id, generation_id),
            None => group.validate_offset_commit(generation_id, member_id, instance_id, now),
        };
        if let Err(e) = valid {
            return all(e);
        }
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut outcomes: Vec<Option<ResponseError>> = offsets
            .iter()
            .map(|(_, o)| (o.metadata.len() > max_metadata).then_some(ResponseError::OffsetMetadataTooLarge))
            .collect();
        let records: Vec<OffsetsRecord> = offsets
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_none())
            .map(|((tp, o), _)| (offset_key(group_id, tp), Some(encode_offset_value(o))))
            .collect();
        if records.is_empty() {
            return outcomes;
        }
        let base_offset = match self.append(broker, group_id, records) {
            Ok(base_offset) => base_offset,
            Err(e) => {
                for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
                    *outcome = Some(e);
                }
                return outcomes;
            }
        };
        let appended = offsets
            .into_iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_none());
        for (record_offset, ((tp, mut offset), _)) in (base_offset..).zip(appended) {
            offset.record_offset = record_offset;
            group.offsets.insert(tp, offset);
        }
        outcomes
    }

    /// OffsetFetch: the committed offsets of `partitions` (None: every partition with one). Pending
    /// transactional offsets are never shown; with `require_stable` (KIP-447) a partition that has
    /// one is answered UNSTABLE_OFFSET_COMMIT instead, so the consumer retries until the transaction
    /// ends (Kafka answers per partition, in both the listed and the all-partitions form).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<TopicPartition>>,
        require_stable: bool,
    ) -> Vec<(TopicPartition, FetchedOffset)> {
        let inner = self.inner.lock();
        let group = inner.groups.get(group_id).filter(|g| !g.is(GroupState::Dead));
        let answer = |tp: &TopicPartition, offset: Option<&CommittedOffset>| -> FetchedOffset {
            if require_stable && group.is_some_and(|g| g.has_pending_txn_offset(tp)) {
                Err(ResponseError::UnstableOffsetCommit)
            } else {
                Ok(offset.cloned())
            }
        };
        match partitions {
            None => group
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|(tp, o)| (tp.clone(), answer(tp, Some(o))))
                        .collect()
                })
                .unwrap_or_default(),
            Some(list) => list
                .into_iter()
                .map(|tp| {
                    let offset = answer(&tp, group.and_then(|g| g.offsets.get(&tp)));
                    (tp, offset)
                })
                .collect(),
        }
    }

    pub fn list_groups(&self) -> Vec<ListedGroup> {
        let inner = self.inner.lock();
        let mut out: Vec<ListedGroup> = inner
            .groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .map(|g| match &g.consumer {
                Some(consumer) => ListedGroup {
                    group_id: g.group_id.clone(),
                    protocol_type: "consumer".to_string(),
                    state: consumer.state().name(),
                    group_type: "consumer",
                },
                None => ListedGroup {
                    group_id: g.group_id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state.name(),
                    group_type: "classic",
                },
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// A copy of the group for DescribeGroups (None if it does not exist).
    pub fn describe(&self, group_id: &str) -> Option<Group> {
        self.inner
            .lock()
            .groups
            .get(group_id)
            .filter(|g| !g.is(GroupState::Dead))
            .cloned()
    }

    /// DeleteGroups for one group: writes tombstones for its offsets and metadata, then forgets it.
    /// Partitions that have only a pending transactional offset get a tombstone too (as Kafka's
    /// `deleteAllOffsets` writes): a tombstone removes pending offsets, so a replay of the log does
    /// not bring them back when their transaction commits after the deletion.
    pub fn delete_group(&self, broker: &impl GroupHost, group_id: &str) -> Option<ResponseError> {
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get(group_id) else {
            return Some(ResponseError::GroupIdNotFound);
        };
        if let Some(e) = group.delete_rejection() {
            return Some(e);
        }
        let mut records: Vec<OffsetsRecord> = group
            .offsets
            .keys()
            .chain(&group.pending_only_partitions())
            .map(|tp| (offset_key(group_id, tp), None))
            .collect();
        records.push((
            encode_key(&RecordKey::Group {
                group: group_id.to_string(),
            }),
            None,
        ));
        records.extend(consumer_records::changes(group_id, group.consumer.as_deref(), None));
        if let Err(e) = self.append(broker, group_id, records) {
            return Some(e);
        }
        inner.groups.remove(group_id);
        tracing::info!(group = group_id, "deleted group");
        None
    }

    /// OffsetDelete: a group-level error, or one outcome per (topic, partition).
    pub fn delete_offsets(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, Option<ResponseError>)>, ResponseError> {
        let mut inner = self.inner.lock();
        let group = inner.groups.get_mut(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        if let Some(e) = group.offset_delete_rejection() {
            return Err(e);
        }
        let outcomes: Vec<(TopicPartition, Option<ResponseError>)> = partitions
            .into_iter()
            .map(|tp| {
                let e = group.offset_delete_error(&tp.topic);
                (tp, e)
            })
            .collect();
        let doomed: Vec<&TopicPartition> = outcomes
            .iter()
            .filter(|(tp, e)| e.is_none() && group.offsets.contains_key(tp))
            .map(|(tp, _)| tp)
            .collect();
        if !doomed.is_empty() {
            let records = doomed.iter().map(|tp| (offset_key(group_id, tp), None)).collect();
            self.append(broker, group_id, records)?;
            for tp in doomed {
                // Also any transaction's pending offset of it, as a replay of the tombstone does.
                group.remove_offset(tp);
            }
        }
        Ok(outcomes)
    }

    /// Performs a state-machine step's effects in order.
    pub(super) fn perform(&self, broker: &impl GroupHost, inner: &mut Inner, group_id: &str, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::CompleteJoin(waiter, result) => {
                    if let Some(tx) = inner.joins.remove(&waiter) {
                        let _ = tx.send(result);
                    }
                }
                Effect::CompleteSync(waiter, result) => {
                    if let Some(tx) = inner.syncs.remove(&waiter) {
                        let _ = tx.send(result);
                    }
                }
                Effect::StoreGroup => {
                    let Some(group) = inner.groups.get(group_id) else {
                        continue;
                    };
                    let key = encode_key(&RecordKey::Group {
                        group: group_id.to_string(),
                    });
                    let value = (!group.is(GroupState::Dead)).then(|| encode_group_value(&metadata_value(group)));
                    if let Err(e) = self.append(broker, group_id, vec![(key, value)]) {
                        // The group lives on in memory; only a restart would lose this generation.
                        if let Some(count) = self.errors.should_log("persist") {
                            tracing::error!(
                                group = group_id,
                                "could not persist group metadata: {e}{}",
                                self.errors.repeats(count)
                            );
                        }
                    }
                }
            }
        }
    }

    /// Appends records for `group_id` to its `__consumer_offsets` partition as one batch, without
    /// waiting for followers: the API handlers answer once the in-sync replicas have it
    /// (`api::group_writes`). Returns the batch's base offset (its records follow one by one).
    pub(super) fn append(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        records: Vec<OffsetsRecord>,
    ) -> Result<i64, ResponseError> {
        self.append_batch(broker, group_id, &records, None)
            .map_err(|failure| match &failure.append_error {
                Some(e) => commit_error(e),
                None => ResponseError::NotCoordinator,
            })
    }

    /// Appends `records` as one batch to `group_id`'s `__consumer_offsets` partition: a plain batch,
    /// or with `txn` (producer id, epoch) one transactional batch of that producer with
    /// `baseSequence` -1, appended as the group coordinator's own (`append_as_coordinator`). Logs a
    /// failure; returns the base offset.
    pub(super) fn append_batch(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        records: &[OffsetsRecord],
        txn: Option<(i64, i16)>,
    ) -> Result<i64, AppendFailure> {
        let partition = self.partition_of(broker, group_id);
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let mut batch = BatchBuilder::new(now_ms());
        for (key, value) in records {
            batch = batch.record(Some(key), value.as_deref(), 0);
        }
        let appended = match txn {
            None => broker.append_now(&tp, &batch.build(), 1),
            Some((producer_id, producer_epoch)) => {
                batch = batch.producer(producer_id, producer_epoch, -1);
                batch.transactional = true;
                broker.append_as_coordinator(&tp, &batch.build())
            }
        };
        appended.inspect_err(|failure| {
            if let Some(count) = self.errors.should_log(&format!("append {:?}", failure.error)) {
                let message = failure.message.as_deref().unwrap_or_default();
                tracing::error!(
                    group = group_id,
                    partition,
                    "append to {OFFSETS_TOPIC} failed: {:?} {message}{}",
                    failure.error,
                    self.errors.repeats(count)
                );
            }
        })
    }
}

impl Inner {
    fn waiter(&mut self) -> WaiterId {
        self.next_waiter += 1;
        self.next_waiter
    }

    /// Drops a group that never got anywhere (a refused first JoinGroup, an expired MEMBER_ID_REQUIRED):
    /// no generation, no members, no offsets, nothing persisted.
    pub(super) fn forget_if_unused(&mut self, group_id: &str) {
        let unused = self.groups.get(group_id).is_some_and(|g| {
            g.is(GroupState::Empty)
                && g.generation_id == 0
                && g.members.is_empty()
                && g.pending_members.is_empty()
                && g.offsets.is_empty()
                && g.pending_txn_offsets.is_empty()
                && g.consumer.is_none()
        });
        if unused {
            self.groups.remove(group_id);
        }
    }
}

/// Kafka's mapping of append failures to OffsetCommit errors: too large stays a client error,
/// anything else sends the client to find its group coordinator again.
fn commit_error(e: &AppendError) -> ResponseError {
    let code = e.kafka_error_code();
    if code == ResponseError::MessageTooLarge.code() || code == ResponseError::RecordListTooLarge.code() {
        ResponseError::InvalidCommitOffsetSize
    } else {
        ResponseError::NotCoordinator
    }
}

pub(super) fn offset_key(group_id: &str, tp: &TopicPartition) -> Vec<u8> {
    encode_key(&RecordKey::Offset {
        group: group_id.to_string(),
        topic: tp.topic.clone(),
        partition: tp.partition,
    })
}

/// The `GroupMetadataValue` of a group: members with their metadata for the selected protocol.
pub(crate) fn metadata_value(group: &Group) -> GroupMetadataValue {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    GroupMetadataValue {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation_id,
        protocol: group.protocol_name.clone(),
        leader: group.leader_id.clone(),
        current_state_timestamp_ms: group.state_timestamp_ms,
        members: group
            .members
            .values()
            .map(|m| MemberMetadataValue {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}
