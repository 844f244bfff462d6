//! `ReplicaManager`: every partition this broker holds a replica of, and what it does as leader or
//! follower (Kafka's `ReplicaManager`).
//!
//! Data enters three ways: `append_as_leader` (Produce and the group coordinator: append, move the high
//! watermark, and for acks=all wait until the ISR has the records), `follower_fetch` (a follower's Fetch
//! arriving at this leader: record how far it is, move the high watermark, let it join the ISR), and the
//! fetchers (`fetcher.rs`) appending what leaders send. Roles follow metadata: `apply_image` makes this
//! broker leader or follower of each assigned partition as the controller's image says, starting or
//! stopping fetchers. ISR changes go to the controller with AlterPartition (`isr.rs`); `shrink_isrs`
//! runs periodically.
//!
//! Owned by `Broker`; handlers, the metadata follower and the periodic tasks call it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;
use tokio::sync::watch;

use super::fetcher::{FetchTarget, FetcherManager};
use super::hosted::{advance_high_watermark, HostedPartition, Role};
use super::isr::IsrClient;
use super::partition_state::{LeaderState, PartitionAssignment};
use super::quota::ReplicationQuotas;
use crate::config::ReplicationConfig;
use crate::coordinator::ClusterImage;
use crate::log::{AppendError, AppendInfo, AppendOrigin, Partition, TopicPartition, VerificationGuard};
use crate::log_dir_health::LogDirHealth;
use crate::metrics::{ReplicationCounters, ReplicationSnapshot};

/// Threads that write new leaders' epoch checkpoints when an image makes many leaders at once.
const LEADER_EPOCH_WRITERS: usize = 8;

/// A transaction marker to write: which producer's transaction it ends, how, and the epoch of the
/// transaction coordinator that decided it.
#[derive(Debug, Clone, Copy)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Why an append as leader failed, as the client is told.
#[derive(Debug)]
pub struct AppendFailure {
    pub error: ResponseError,
    pub message: Option<String>,
    /// The append itself failed (the records were not written).
    pub append_error: Option<AppendError>,
}

impl AppendFailure {
    fn of(error: ResponseError, message: Option<String>) -> Self {
        AppendFailure {
            error,
            message,
            append_error: None,
        }
    }
}

/// What a follower's fetch may read, as the leader decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerRead {
    /// The follower's log diverges: it must truncate to where epoch `.0` ends here (`.1`) first.
    pub diverging: Option<(i32, i64)>,
    /// The leader-side replication throttle holds this partition back: no records this time.
    pub throttled: bool,
}

/// Partitions whose role changed in one `apply_image`, for the group coordinator.
#[derive(Debug, Default)]
pub struct RoleChanges {
    pub became_leader: Vec<TopicPartition>,
    pub became_follower: Vec<TopicPartition>,
    /// Partitions of existing topics this broker is no longer a replica of (a reassignment moved
    /// them away): no longer served or fetched; their logs are the broker's to delete.
    pub removed: Vec<TopicPartition>,
}

pub struct ReplicaManager {
    local_id: i32,
    config: ReplicationConfig,
    partitions: RwLock<HashMap<TopicPartition, Arc<HostedPartition>>>,
    fetchers: FetcherManager,
    isr: Arc<IsrClient>,
    /// Bumped after every append or high-watermark move here; long-polling fetches watch it.
    appended: watch::Sender<u64>,
    /// Bumped when this broker becomes the leader of partitions: a follower's long-polling fetch
    /// returns then, so that its next one asks for them too. Otherwise an acks=all write to a
    /// partition that just moved here (a controlled shutdown) waits for the follower's fetch already
    /// in flight, up to `replica.fetch.wait.max.ms` (500 ms), before the follower even asks for it.
    leaderships: watch::Sender<u64>,
    counters: ReplicationCounters,
    quotas: Arc<ReplicationQuotas>,
    /// Told of every write that fails with an I/O error (the log dir goes offline).
    log_dirs: Arc<LogDirHealth>,
}

pub(crate) use crate::util::now_ms;

impl ReplicaManager {
    pub fn new(
        local_id: i32,
        config: ReplicationConfig,
        isr: Arc<IsrClient>,
        broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
        counters: ReplicationCounters,
        log_dirs: Arc<LogDirHealth>,
    ) -> Self {
        let quotas = Arc::new(ReplicationQuotas::new(
            config.quota_window_num,
            config.quota_window_size_seconds as i64 * 1000,
        ));
        let fetchers = FetcherManager::new(
            local_id,
            config.clone(),
            broker_epoch,
            counters.clone(),
            quotas.clone(),
            log_dirs.clone(),
        );
        ReplicaManager {
            local_id,
            config,
            partitions: RwLock::default(),
            fetchers,
            isr,
            appended: watch::channel(0).0,
            leaderships: watch::channel(0).0,
            counters,
            quotas,
            log_dirs,
        }
    }

    /// The replication throttles (`quota.rs`), as the latest metadata sets them.
    pub fn quotas(&self) -> &ReplicationQuotas {
        &self.quotas
    }

    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Changes when this broker becomes the leader of more partitions (see `leaderships`).
    pub fn subscribe_leaderships(&self) -> watch::Receiver<u64> {
        self.leaderships.subscribe()
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<HostedPartition>> {
        self.partitions.read().get(tp).cloned()
    }

    pub fn hosted(&self) -> Vec<Arc<HostedPartition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// The partition if this broker leads it at the epoch the caller expects (-1: any).
    pub fn leader(&self, tp: &TopicPartition) -> Option<Arc<HostedPartition>> {
        self.get(tp).filter(|h| h.leader_epoch().1)
    }

    /// Makes every partition assigned to this broker follow `image`: leader where the image names this
    /// broker leader, follower of the named leader otherwise, offline where no leader is elected.
    /// `logs` finds the partition's log (the broker has created the logs of assigned partitions
    /// first); partitions without a log here are left out until the next image. Partitions no longer
    /// assigned here stop being served and fetched.
    pub fn apply_image(
        &self,
        image: &ClusterImage,
        logs: impl Fn(&TopicPartition) -> Option<Arc<Partition>>,
    ) -> RoleChanges {
        let now = now_ms();
        self.quotas.update(image, self.local_id);
        self.record_new_leader_epochs(image, &logs);
        let mut changes = RoleChanges::default();
        let mut assigned = std::collections::HashSet::new();
        let mut to_fetch: Vec<(i32, FetchTarget)> = Vec::new();
        let mut stop_fetching = Vec::new();
        for (name, topic) in &image.topics {
            for (index, p) in topic.partitions.iter().enumerate() {
                if !p.replicas.contains(&self.local_id) {
                    continue;
                }
                let tp = TopicPartition::new(name.clone(), index as i32);
                let Some(log) = logs(&tp) else {
                    continue;
                };
                assigned.insert(tp.clone());
                let assignment = PartitionAssignment {
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                };
                let hosted = self.hosted_for(&tp, topic.topic_id, log);
                let outcome = self.follow(&hosted, &assignment, now);
                match outcome {
                    Transition::BecameLeader => {
                        stop_fetching.push(tp.clone());
                        changes.became_leader.push(tp);
                    }
                    Transition::BecameFollower => {
                        to_fetch.push((
                            p.leader,
                            FetchTarget {
                                hosted: hosted.clone(),
                                leader_epoch: p.leader_epoch,
                            },
                        ));
                        changes.became_follower.push(tp);
                    }
                    Transition::WentOffline => stop_fetching.push(tp),
                    Transition::Unchanged => {}
                }
                hosted.maybe_advance_high_watermark();
                hosted.notify_changed();
            }
        }
        let removed: Vec<Arc<HostedPartition>> = {
            let mut partitions = self.partitions.write();
            let gone: Vec<TopicPartition> = partitions
                .keys()
                .filter(|tp| !assigned.contains(*tp))
                .cloned()
                .collect();
            gone.into_iter().filter_map(|tp| partitions.remove(&tp)).collect()
        };
        for hosted in &removed {
            stop_fetching.push(hosted.tp.clone());
            *hosted.role.lock() = Role::Offline { leader_epoch: i32::MAX };
            hosted.notify_changed();
            changes.became_follower.push(hosted.tp.clone());
            let topic_exists = image
                .topics
                .get(&hosted.tp.topic)
                .is_some_and(|t| t.topic_id == hosted.topic_id && (hosted.tp.partition as usize) < t.partitions.len());
            if topic_exists {
                changes.removed.push(hosted.tp.clone());
            }
        }
        self.fetchers.remove_partitions(&stop_fetching);
        for (leader, target) in to_fetch {
            let address = image
                .brokers
                .get(&leader)
                .and_then(|b| b.address(&self.config.inter_broker_listener));
            match address {
                Some(address) => self.fetchers.add_partition(leader, address, target),
                None => tracing::warn!(
                    partition = %target.hosted.tp,
                    leader,
                    "the leader has no registered endpoint; not fetching until metadata names one"
                ),
            }
        }
        if !changes.became_leader.is_empty() {
            self.leaderships.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.notify_appended();
        changes
    }

    /// Writes the leader epoch of every partition this broker starts leading in `image` to its log
    /// (`leader-epoch-checkpoint`, fsynced) before the role changes, with a few threads: a new topic of
    /// thousands of partitions makes as many checkpoint writes, which one thread would do one fsync
    /// at a time. `follow` then finds the epoch recorded.
    fn record_new_leader_epochs(
        &self,
        image: &ClusterImage,
        logs: &impl Fn(&TopicPartition) -> Option<Arc<Partition>>,
    ) {
        let mut new_leaders = Vec::new();
        for (name, topic) in &image.topics {
            for (index, p) in topic.partitions.iter().enumerate() {
                if p.leader != self.local_id || !p.replicas.contains(&self.local_id) {
                    continue;
                }
                let tp = TopicPartition::new(name.clone(), index as i32);
                let role_epoch = self.get(&tp).map_or(-1, |h| h.leader_epoch().0);
                if p.leader_epoch <= role_epoch {
                    continue;
                }
                if let Some(log) = logs(&tp) {
                    new_leaders.push((log, p.leader_epoch));
                }
            }
        }
        if new_leaders.len() < 2 {
            return; // `follow` records it
        }
        crate::log::parallel::for_each(&new_leaders, LEADER_EPOCH_WRITERS, 16, |(partition, epoch)| {
            let mut log = partition.log.lock();
            let log_end_offset = log.log_end_offset();
            if log.latest_epoch().is_none_or(|e| e < *epoch) {
                if let Err(e) = log.assign_leader_epoch(*epoch, log_end_offset) {
                    // `follow` tries again and reports it.
                    tracing::debug!(partition = %partition.topic_partition(), "cannot record leader epoch {epoch}: {e}");
                }
            }
        });
    }

    fn hosted_for(&self, tp: &TopicPartition, topic_id: uuid::Uuid, log: Arc<Partition>) -> Arc<HostedPartition> {
        let mut partitions = self.partitions.write();
        let existing = partitions
            .get(tp)
            .filter(|h| Arc::ptr_eq(&h.log, &log) && h.topic_id == topic_id);
        if let Some(h) = existing {
            return h.clone();
        }
        // A new replica (or a new log for it: the topic was re-created) starts with no role; `follow`
        // gives it one.
        let hosted = Arc::new(HostedPartition::new(
            tp.clone(),
            topic_id,
            log,
            Role::Offline { leader_epoch: -1 },
        ));
        partitions.insert(tp.clone(), hosted.clone());
        hosted
    }

    /// One partition's role transition (Kafka's `makeLeader` / `makeFollower`).
    fn follow(&self, hosted: &HostedPartition, assignment: &PartitionAssignment, now: i64) -> Transition {
        let mut role = hosted.role.lock();
        let current_epoch = role.leader_epoch();
        if assignment.leader_epoch < current_epoch {
            return Transition::Unchanged;
        }
        let same_epoch = assignment.leader_epoch == current_epoch;
        if assignment.leader == self.local_id {
            if let (true, Role::Leader(state)) = (same_epoch, &mut *role) {
                let log_end_offset = hosted.log.log.lock().log_end_offset();
                let before = state.isr.len();
                state.update_assignment(assignment, log_end_offset, now);
                // The controller changed the ISR (it removes fenced brokers itself).
                match state.isr.len().cmp(&before) {
                    std::cmp::Ordering::Less => self.counters.isr_shrinks.inc(),
                    std::cmp::Ordering::Greater => self.counters.isr_expands.inc(),
                    std::cmp::Ordering::Equal => 0,
                };
                return Transition::Unchanged;
            }
            let mut log = hosted.log.log.lock();
            let log_end_offset = log.log_end_offset();
            if log.latest_epoch().is_none_or(|e| e < assignment.leader_epoch) {
                if let Err(e) = log.assign_leader_epoch(assignment.leader_epoch, log_end_offset) {
                    tracing::error!(partition = %hosted.tp, "cannot record leader epoch {}: {e}", assignment.leader_epoch);
                }
            }
            drop(log);
            tracing::info!(
                partition = %hosted.tp,
                leader_epoch = assignment.leader_epoch,
                isr = ?assignment.isr,
                log_end_offset,
                "leading"
            );
            *role = Role::Leader(LeaderState::new(self.local_id, assignment, log_end_offset, now));
            return Transition::BecameLeader;
        }
        if assignment.leader < 0 {
            if matches!(*role, Role::Offline { .. }) && same_epoch {
                return Transition::Unchanged;
            }
            *role = Role::Offline {
                leader_epoch: assignment.leader_epoch,
            };
            return Transition::WentOffline;
        }
        if let (true, Role::Follower { leader, .. }) = (same_epoch, &*role) {
            if *leader == assignment.leader {
                return Transition::Unchanged;
            }
        }
        tracing::info!(
            partition = %hosted.tp,
            leader = assignment.leader,
            leader_epoch = assignment.leader_epoch,
            "following"
        );
        *role = Role::Follower {
            leader: assignment.leader,
            leader_epoch: assignment.leader_epoch,
        };
        Transition::BecameFollower
    }

    /// Appends client records as the leader of `tp` and, for acks=all (-1), waits until every ISR
    /// member has them or `timeout` passes (Kafka's delayed produce). The topic's `min.insync.replicas`
    /// applies to acks=all: below it the append is refused (NOT_ENOUGH_REPLICAS), or answered
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below it while waiting. A duplicate of an
    /// idempotent producer's batch waits for its original records the same way.
    pub async fn append_as_leader(
        &self,
        tp: &TopicPartition,
        records: &[u8],
        acks: i16,
        timeout: Duration,
    ) -> Result<AppendInfo, AppendFailure> {
        let (hosted, info, leader_epoch) = self.append_now(tp, records, acks)?;
        if acks != -1 {
            return Ok(info);
        }
        self.await_replication(&hosted, leader_epoch, info.last_offset + 1, timeout)
            .await
            .map(|()| info)
    }

    /// The append of `append_as_leader` without the wait: writes the records at this broker's leader
    /// epoch and moves the high watermark as far as the ISR allows. Returns the partition, what was
    /// appended and the leader epoch.
    pub fn append_now(
        &self,
        tp: &TopicPartition,
        records: &[u8],
        acks: i16,
    ) -> Result<(Arc<HostedPartition>, AppendInfo, i32), AppendFailure> {
        self.append_with(tp, acks, |log, leader_epoch, now| {
            log.append_as_leader(records, leader_epoch, now)
        })
    }

    /// `append_now` for a transactional produce the transaction coordinator verified (KIP-890): the
    /// batch that starts the producer's transaction here needs `guard` to be still valid.
    pub fn append_verified(
        &self,
        tp: &TopicPartition,
        records: &[u8],
        acks: i16,
        guard: VerificationGuard,
    ) -> Result<(Arc<HostedPartition>, AppendInfo, i32), AppendFailure> {
        self.append_with(tp, acks, |log, leader_epoch, now| {
            log.append_verified(records, leader_epoch, now, guard)
        })
    }

    /// `append_now` (acks=1) for records of this broker's own coordinators (TxnOffsetCommit's
    /// transactional batches): the producer epoch is checked, not the sequence (Kafka's
    /// `AppendOrigin.COORDINATOR`).
    pub fn append_as_coordinator(
        &self,
        tp: &TopicPartition,
        records: &[u8],
    ) -> Result<(Arc<HostedPartition>, AppendInfo, i32), AppendFailure> {
        self.append_with(tp, 1, |log, leader_epoch, now| {
            log.append_as_leader_from(records, leader_epoch, now, AppendOrigin::Coordinator)
        })
    }

    /// Writes a transaction marker (a control batch ending `producer_id`'s transaction) as the leader
    /// of `tp` and waits, as acks=all, until the in-sync replicas have it (Kafka's WriteTxnMarkers).
    pub async fn append_marker(
        &self,
        tp: &TopicPartition,
        marker: TxnMarker,
        timeout: Duration,
    ) -> Result<(), AppendFailure> {
        let (hosted, info, leader_epoch) = self.append_with(tp, -1, |log, leader_epoch, now| {
            log.append_control_marker(
                marker.producer_id,
                marker.producer_epoch,
                marker.commit,
                marker.coordinator_epoch,
                leader_epoch,
                now,
            )
        })?;
        self.await_replication(&hosted, leader_epoch, info.last_offset + 1, timeout)
            .await
    }

    /// The append of `append_now` with what is appended left to `append` (given the log, the leader
    /// epoch and the time).
    fn append_with(
        &self,
        tp: &TopicPartition,
        acks: i16,
        append: impl FnOnce(&mut crate::log::Log, i32, i64) -> Result<AppendInfo, AppendError>,
    ) -> Result<(Arc<HostedPartition>, AppendInfo, i32), AppendFailure> {
        let hosted = self
            .get(tp)
            .ok_or_else(|| AppendFailure::of(ResponseError::NotLeaderOrFollower, None))?;
        let (info, leader_epoch) = {
            let role = hosted.role.lock();
            let Role::Leader(state) = &*role else {
                return Err(AppendFailure::of(ResponseError::NotLeaderOrFollower, None));
            };
            let mut log = hosted.log.log.lock();
            let min_insync = log.config().min_insync_replicas;
            if acks == -1 && (state.isr.len() as i32) < min_insync {
                return Err(AppendFailure::of(
                    ResponseError::NotEnoughReplicas,
                    Some(format!(
                        "the in-sync replicas {:?} are fewer than min.insync.replicas={min_insync} required for acks=all",
                        state.isr
                    )),
                ));
            }
            let info = append(&mut log, state.leader_epoch, now_ms())
                .inspect_err(|e| {
                    if e.is_io_failure() {
                        self.log_dirs.write_failed(log.dir(), e);
                    }
                })
                .map_err(|e| AppendFailure {
                    error: ResponseError::try_from_code(e.kafka_error_code())
                        .unwrap_or(ResponseError::UnknownServerError),
                    message: Some(e.to_string()),
                    append_error: Some(e),
                })?;
            advance_high_watermark(state, &mut log);
            (info, state.leader_epoch)
        };
        hosted.notify_changed();
        self.notify_appended();
        Ok((hosted, info, leader_epoch))
    }

    /// Waits until everything written to `tp` so far is on every in-sync replica (the high watermark
    /// reaches the current log end offset), for records appended with `append_now` whose answer must
    /// wait for replication (offset commits, as Kafka's group coordinator appends with acks=all).
    pub async fn await_replication_of_log_end(
        &self,
        tp: &TopicPartition,
        timeout: Duration,
    ) -> Result<(), AppendFailure> {
        let hosted = self
            .get(tp)
            .ok_or_else(|| AppendFailure::of(ResponseError::NotLeaderOrFollower, None))?;
        let (leader_epoch, leads) = hosted.leader_epoch();
        if !leads {
            return Err(AppendFailure::of(ResponseError::NotLeaderOrFollower, None));
        }
        let end = hosted.log.log.lock().log_end_offset();
        self.await_replication(&hosted, leader_epoch, end, timeout).await
    }

    /// Waits until the high watermark reaches `required_offset` with enough in-sync replicas, as long as
    /// this broker still leads at `leader_epoch`, for at most `timeout`.
    pub async fn await_replication(
        &self,
        hosted: &HostedPartition,
        leader_epoch: i32,
        required_offset: i64,
        timeout: Duration,
    ) -> Result<(), AppendFailure> {
        let mut changed = hosted.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changed.borrow_and_update();
            {
                let role = hosted.role.lock();
                let Role::Leader(state) = &*role else {
                    return Err(AppendFailure::of(
                        ResponseError::NotLeaderOrFollower,
                        Some("leadership moved before the in-sync replicas had the records".into()),
                    ));
                };
                if state.leader_epoch != leader_epoch {
                    return Err(AppendFailure::of(ResponseError::NotLeaderOrFollower, None));
                }
                let log = hosted.log.log.lock();
                let min_insync = log.config().min_insync_replicas;
                match state.enough_replicas(log.high_watermark(), required_offset, min_insync) {
                    Some(true) => return Ok(()),
                    Some(false) => {
                        return Err(AppendFailure::of(
                            ResponseError::NotEnoughReplicasAfterAppend,
                            Some(format!(
                                "the records were written, but the in-sync replicas {:?} fell below \
                                 min.insync.replicas={min_insync} before they were replicated",
                                state.isr
                            )),
                        ))
                    }
                    None => {}
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(AppendFailure::of(
                        ResponseError::RequestTimedOut,
                        Some(format!("the in-sync replicas did not all have the records within {timeout:?}")),
                    ));
                }
                changed = changed.changed() => if changed.is_err() {
                    return Err(AppendFailure::of(ResponseError::NotLeaderOrFollower, None));
                }
            }
        }
    }

    /// A follower's fetch arrived for `tp` (Kafka's `updateFollowerFetchState`): checks that this broker
    /// leads at `current_leader_epoch`, checks the follower's log against this one
    /// (`last_fetched_epoch`), records its progress, moves the high watermark and proposes adding it to
    /// the ISR when it has caught up. `eligible` says whether the follower may join the ISR (the
    /// controller has it registered and unfenced).
    #[allow(clippy::too_many_arguments)]
    pub fn follower_fetch(
        &self,
        tp: &TopicPartition,
        follower: i32,
        fetch_offset: i64,
        follower_log_start_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
        eligible: bool,
    ) -> Result<FollowerRead, ResponseError> {
        let hosted = self.get(tp).ok_or(ResponseError::NotLeaderOrFollower)?;
        let now = now_ms();
        let mut proposal = None;
        let read = {
            let mut role = hosted.role.lock();
            check_epoch(role.leader_epoch(), current_leader_epoch)?;
            let Role::Leader(state) = &mut *role else {
                return Err(ResponseError::NotLeaderOrFollower);
            };
            let mut log = hosted.log.log.lock();
            if let Some(diverging) = diverging_epoch(&log, fetch_offset, last_fetched_epoch) {
                return Ok(FollowerRead {
                    diverging: Some(diverging),
                    throttled: false,
                });
            }
            let log_end_offset = log.log_end_offset();
            state
                .record_fetch(follower, fetch_offset, log_end_offset, now)
                .map_err(|_| ResponseError::NotLeaderOrFollower)?;
            state.record_log_start_offset(follower, follower_log_start_offset);
            advance_high_watermark(state, &mut log);
            let hw = log.high_watermark();
            drop(log);
            if let Some(p) = state.isr_expansion(follower, hw, eligible) {
                state.begin_isr_change(&p);
                proposal = Some(p);
            }
            // Kafka's `shouldLeaderThrottle`: only replicas out of sync, only throttled ones, only
            // while the leader's throttled bytes are above the limit.
            let throttled = !state.isr.contains(&follower)
                && self.quotas.leader.is_throttled(tp)
                && self.quotas.leader.is_quota_exceeded(now);
            FollowerRead {
                diverging: None,
                throttled,
            }
        };
        hosted.notify_changed();
        self.notify_appended();
        self.counters.follower_fetched(follower);
        if let Some(p) = proposal {
            tracing::info!(partition = %tp, follower, isr = ?p.isr, "a follower caught up: adding it to the ISR");
            self.isr.submit(hosted, p);
        }
        Ok(read)
    }

    /// The partition's low watermark if this broker leads it (`LeaderState::low_watermark`).
    pub fn low_watermark(&self, tp: &TopicPartition, alive: impl Fn(i32) -> bool) -> Option<i64> {
        let hosted = self.get(tp)?;
        let role = hosted.role.lock();
        let Role::Leader(state) = &*role else {
            return None;
        };
        let leader_log_start = hosted.log.log.lock().log_start_offset();
        Some(state.low_watermark(leader_log_start, alive))
    }

    /// The leader's half of a consumer fetch that names the epoch of its last record (Fetch v12+): where
    /// the consumer's view diverges from this log, if it does.
    pub fn consumer_divergence(
        &self,
        hosted: &HostedPartition,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> Option<(i32, i64)> {
        let log = hosted.log.log.lock();
        diverging_epoch(&log, fetch_offset, last_fetched_epoch)
    }

    /// Drops followers that have not caught up for `replica.lag.time.max.ms` from the ISR of every
    /// partition this broker leads (Kafka's `maybeShrinkIsr`, run every half lag time).
    pub fn shrink_isrs(&self) {
        let now = now_ms();
        for hosted in self.hosted() {
            let proposal = {
                let mut role = hosted.role.lock();
                let Role::Leader(state) = &mut *role else {
                    continue;
                };
                let log_end_offset = hosted.log.log.lock().log_end_offset();
                let proposal = state.isr_shrink(log_end_offset, now, self.config.lag_time_max_ms);
                if let Some(p) = &proposal {
                    state.begin_isr_change(p);
                }
                proposal
            };
            if let Some(p) = proposal {
                tracing::info!(partition = %hosted.tp, isr = ?p.isr, "followers fell behind: shrinking the ISR");
                self.isr.submit(hosted, p);
            }
        }
    }

    /// The replication gauges: partitions led here that are under-replicated or under
    /// `min.insync.replicas`, how many are led here, the largest follower lag, and the throttled byte
    /// rates (offline partitions are counted from metadata by the caller).
    pub fn snapshot(&self) -> ReplicationSnapshot {
        let now = now_ms();
        let mut s = ReplicationSnapshot {
            leader_throttled_rate: self.quotas.leader.rate(now) as i64,
            follower_throttled_rate: self.quotas.follower.rate(now) as i64,
            ..ReplicationSnapshot::default()
        };
        for hosted in self.hosted() {
            let role = hosted.role.lock();
            let Role::Leader(state) = &*role else {
                continue;
            };
            let log = hosted.log.log.lock();
            s.leaders += 1;
            if state.isr.len() < state.replicas.len() {
                s.under_replicated += 1;
            }
            if (state.isr.len() as i32) < log.config().min_insync_replicas {
                s.under_min_isr += 1;
            }
            s.max_lag = s.max_lag.max(state.max_follower_lag(log.log_end_offset()));
        }
        s
    }

    /// Stops every fetcher (shutdown).
    pub async fn shutdown(&self) {
        self.fetchers.shutdown().await;
    }
}

enum Transition {
    BecameLeader,
    BecameFollower,
    WentOffline,
    Unchanged,
}

/// KIP-320: a request naming an older leader epoch than this replica's is fenced, a newer one means
/// this broker's metadata is behind (-1: the client names none).
pub fn check_epoch(local: i32, requested: i32) -> Result<(), ResponseError> {
    if requested < 0 || requested == local {
        Ok(())
    } else if requested < local {
        Err(ResponseError::FencedLeaderEpoch)
    } else {
        Err(ResponseError::UnknownLeaderEpoch)
    }
}

/// Whether a fetcher whose last record is of `last_fetched_epoch` and who fetches from `fetch_offset`
/// has a log that diverges from `log` (Kafka's `Partition.fetchRecords` check): this log ends that epoch
/// earlier, or does not have it; then `(epoch, end offset)` to truncate to.
fn diverging_epoch(log: &crate::log::Log, fetch_offset: i64, last_fetched_epoch: i32) -> Option<(i32, i64)> {
    diverging_epoch_with(
        |epoch| log.end_offset_for_epoch(epoch),
        fetch_offset,
        last_fetched_epoch,
    )
}

/// `diverging_epoch` over any log's `end_offset_for_epoch` (the replication simulator calls it with an
/// in-memory log's epoch cache, so it checks exactly this decision).
pub(crate) fn diverging_epoch_with(
    end_offset_for_epoch: impl Fn(i32) -> Option<(i32, i64)>,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    match end_offset_for_epoch(last_fetched_epoch) {
        Some((epoch, end)) if epoch < last_fetched_epoch || end < fetch_offset => Some((epoch, end)),
        Some(_) => None,
        // This log knows no epoch that old (its start was removed): nothing to compare against.
        None => None,
    }
}
