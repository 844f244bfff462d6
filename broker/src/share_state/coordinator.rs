//! `ShareStateCoordinator`: Kafka's share coordinator (KIP-932) on this broker. It owns the
//! share-partition state of the `__share_group_state` partitions this broker leads: loaded from
//! the log when it becomes their leader (`load_partitions`, like `__transaction_state`), dropped
//! when it stops (`unload_partitions`). Read/Write/DeleteShareGroupState (`api/*_share_group_state.rs`,
//! or `persister` in-process) call it; a write is appended with acks=all and installed only once
//! the in-sync replicas have it, so a state it answered for survives the failover of its own
//! partition.
//!
//! Fencing: each state remembers the leader epoch of the share partition's topic partition that
//! last wrote or read it. A read with a newer epoch (a new leader taking over) records that epoch
//! first, so writes of the old leader (an older epoch) get FENCED_LEADER_EPOCH, as in Kafka.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::records::{
    decode_key, decode_value, encode_key, encode_value, partition_for, RecordError, SharePartitionKey, ShareSnapshot,
    SHARE_GROUP_STATE_TOPIC,
};
use crate::broker::Broker;
use crate::log::batch::BatchBuilder;
use crate::log::plain_records::for_each_keyed_record;
use crate::log::TopicPartition;

/// How long a state write may wait for the in-sync replicas (Kafka: `request.timeout.ms`).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// `share.coordinator.state.topic.*`, read from the broker's settings.
#[derive(Debug, Clone, Copy)]
pub struct ShareStateConfig {
    /// `share.coordinator.state.topic.num.partitions` (50).
    pub num_partitions: i32,
    /// `share.coordinator.state.topic.replication.factor` (3). As in Kafka, the topic is not created
    /// while fewer brokers are live: a single broker sets it to 1 (config/server.properties does, as
    /// Kafka's own does), never silently, so a cluster never ends up with share state on one replica.
    pub replication_factor: i16,
    /// `share.coordinator.state.topic.min.isr` (2): the topic's `min.insync.replicas`.
    pub min_isr: i32,
}

impl ShareStateConfig {
    pub fn from_settings(settings: &BTreeMap<String, String>) -> ShareStateConfig {
        let get = |key: &str| settings.get(key).and_then(|v| v.trim().parse::<i64>().ok());
        ShareStateConfig {
            num_partitions: get("share.coordinator.state.topic.num.partitions")
                .map_or(50, |v| v.clamp(1, 1_000_000) as i32),
            replication_factor: get("share.coordinator.state.topic.replication.factor")
                .map_or(3, |v| v.clamp(1, i16::MAX as i64) as i16),
            min_isr: get("share.coordinator.state.topic.min.isr").map_or(2, |v| v.clamp(1, i32::MAX as i64) as i32),
        }
    }
}

/// Owned by `Broker` (its `share_state` field).
pub struct ShareStateCoordinator {
    pub config: ShareStateConfig,
    inner: Mutex<Inner>,
    /// `__share_group_state` exists.
    ready: AtomicBool,
    /// The "cannot create the topic" error was logged.
    warned: AtomicBool,
    /// One read-modify-write of a share partition's state at a time, so a fencing check and the
    /// append it guards are not interleaved with another's.
    key_locks: Mutex<HashMap<SharePartitionKey, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Default)]
struct Inner {
    /// The partitions loaded here, with the leader epoch each was loaded at.
    owned: HashMap<i32, i32>,
    states: HashMap<SharePartitionKey, ShareSnapshot>,
}

/// ReadShareGroupStateSummary's answer for one share partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub state_epoch: i32,
    pub leader_epoch: i32,
    pub start_offset: i64,
}

/// What a load found, for the log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadSummary {
    pub partitions: usize,
    pub records: usize,
    pub skipped: usize,
    pub states: usize,
}

impl ShareStateCoordinator {
    pub fn new(config: ShareStateConfig) -> ShareStateCoordinator {
        ShareStateCoordinator {
            config,
            inner: Mutex::default(),
            ready: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            key_locks: Mutex::default(),
        }
    }

    fn key_lock(&self, key: &SharePartitionKey) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.key_locks.lock().entry(key.clone()).or_default().clone()
    }

    /// Makes sure `__share_group_state` exists, having the controller create it on first use (as
    /// Kafka's share coordinator does). COORDINATOR_NOT_AVAILABLE when it cannot be created.
    pub async fn ensure_topic(&self, broker: &Broker) -> Result<(), ResponseError> {
        if self.ready.load(Ordering::Acquire) || broker.metadata.topic(SHARE_GROUP_STATE_TOPIC).is_some() {
            self.ready.store(true, Ordering::Release);
            return Ok(());
        }
        let rf = self.config.replication_factor;
        let min_isr = self.config.min_isr;
        // Kafka uses cleanup.policy=delete and prunes what newer snapshots replaced; oxka writes only
        // whole snapshots under one key per share partition, so compaction keeps the latest of each.
        let configs: BTreeMap<String, String> = [
            ("cleanup.policy", "compact".to_string()),
            ("compression.type", "producer".to_string()),
            ("min.insync.replicas", min_isr.to_string()),
            ("segment.bytes", "104857600".to_string()),
            ("unclean.leader.election.enable", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        match broker
            .create_topic(
                SHARE_GROUP_STATE_TOPIC,
                self.config.num_partitions,
                rf,
                configs,
                Vec::new(),
                false,
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.error == ResponseError::TopicAlreadyExists => {}
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "cannot create {SHARE_GROUP_STATE_TOPIC} (share.coordinator.state.topic.replication.factor={rf}, \
                         share.coordinator.state.topic.num.partitions={}): {}; share groups are unavailable until it can be \
                         (with fewer brokers than that, lower share.coordinator.state.topic.replication.factor and \
                         share.coordinator.state.topic.min.isr, as a single broker sets them to 1)",
                        self.config.num_partitions,
                        e.message
                    );
                }
                return Err(ResponseError::CoordinatorNotAvailable);
            }
        }
        if broker.metadata.topic(SHARE_GROUP_STATE_TOPIC).is_some() {
            self.ready.store(true, Ordering::Release);
            Ok(())
        } else {
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }

    /// The `__share_group_state` partition of a share partition.
    pub fn partition_of(&self, broker: &Broker, key: &SharePartitionKey) -> i32 {
        let partitions = broker
            .metadata
            .topic(SHARE_GROUP_STATE_TOPIC)
            .map_or(self.config.num_partitions, |t| t.partitions);
        partition_for(&super::records::coordinator_key(key), partitions)
    }

    /// The broker that is the share coordinator of a share partition: its partition's leader.
    pub fn coordinator_of(&self, broker: &Broker, key: &SharePartitionKey) -> Result<i32, ResponseError> {
        let partition = self.partition_of(broker, key);
        match broker.metadata.leader_of(SHARE_GROUP_STATE_TOPIC, partition) {
            Some(leader) if leader >= 0 => Ok(leader),
            _ => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// This broker's load of the key's partition: (partition, load epoch), else NOT_COORDINATOR.
    fn owner(&self, broker: &Broker, key: &SharePartitionKey) -> Result<(i32, i32), ResponseError> {
        let partition = self.partition_of(broker, key);
        match self.inner.lock().owned.get(&partition) {
            Some(&epoch) => Ok((partition, epoch)),
            None => Err(ResponseError::NotCoordinator),
        }
    }

    /// ReadShareGroupState: the state of a share partition (`None`: never written, or deleted).
    /// A read by a newer leader epoch than the state's records that epoch first (acks=all), so the
    /// former leader's writes are fenced from then on.
    pub async fn read(
        &self,
        broker: &Broker,
        key: &SharePartitionKey,
        leader_epoch: i32,
    ) -> Result<Option<ShareSnapshot>, ResponseError> {
        let lock = self.key_lock(key);
        let _one_at_a_time = lock.lock().await;
        let (partition, epoch) = self.owner(broker, key)?;
        let Some(state) = self.inner.lock().states.get(key).cloned() else {
            return Ok(None);
        };
        if leader_epoch >= 0 && leader_epoch < state.leader_epoch {
            return Err(ResponseError::FencedLeaderEpoch);
        }
        if leader_epoch > state.leader_epoch {
            let mut next = state;
            next.leader_epoch = leader_epoch;
            return self.append(broker, partition, epoch, key, Some(next)).await.map(Some);
        }
        Ok(Some(state))
    }

    /// WriteShareGroupState: replaces a share partition's state with `next` (its snapshot epoch,
    /// create and write times are set here). `next.leader_epoch` -1 is an administrative write
    /// (AlterShareGroupOffsets): it keeps the recorded leader epoch and starts a new state epoch.
    pub async fn write(
        &self,
        broker: &Broker,
        key: &SharePartitionKey,
        mut next: ShareSnapshot,
    ) -> Result<(), ResponseError> {
        let lock = self.key_lock(key);
        let _one_at_a_time = lock.lock().await;
        let (partition, epoch) = self.owner(broker, key)?;
        let current = self.inner.lock().states.get(key).cloned();
        let now = crate::util::now_ms();
        match &current {
            Some(c) if next.leader_epoch >= 0 && next.leader_epoch < c.leader_epoch => {
                return Err(ResponseError::FencedLeaderEpoch);
            }
            // The state was initialized anew (AlterShareGroupOffsets) since the writer loaded it:
            // what it holds is stale, it must load the share partition again.
            Some(c) if next.leader_epoch >= 0 && next.state_epoch < c.state_epoch => {
                return Err(ResponseError::FencedStateEpoch);
            }
            Some(c) => {
                next.snapshot_epoch = c.snapshot_epoch.wrapping_add(1);
                next.create_timestamp = c.create_timestamp;
                if next.leader_epoch < 0 {
                    next.leader_epoch = c.leader_epoch;
                    next.state_epoch = c.state_epoch.wrapping_add(1);
                } else {
                    next.state_epoch = c.state_epoch;
                }
            }
            None => {
                next.snapshot_epoch = 0;
                next.create_timestamp = now;
                next.leader_epoch = next.leader_epoch.max(0);
            }
        }
        next.write_timestamp = now;
        self.append(broker, partition, epoch, key, Some(next)).await.map(|_| ())
    }

    /// InitializeShareGroupState: the share partition's state starts anew at `start_offset` with
    /// nothing in flight and `state_epoch`, which must not be older than the current one
    /// (FENCED_STATE_EPOCH). The group coordinator initializes with a new state epoch when it sets
    /// a start offset (AlterShareGroupOffsets); a share partition's leader holding the older epoch
    /// is then fenced at its next write, and reloads when a share session opens
    /// (`persister::revalidate`). The recorded leader epoch is kept, so former leaders stay fenced.
    pub async fn initialize(
        &self,
        broker: &Broker,
        key: &SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<(), ResponseError> {
        let lock = self.key_lock(key);
        let _one_at_a_time = lock.lock().await;
        let (partition, epoch) = self.owner(broker, key)?;
        let current = self.inner.lock().states.get(key).cloned();
        let now = crate::util::now_ms();
        if current.as_ref().is_some_and(|c| c.state_epoch > state_epoch) {
            return Err(ResponseError::FencedStateEpoch);
        }
        let next = ShareSnapshot {
            snapshot_epoch: current.as_ref().map_or(0, |c| c.snapshot_epoch.wrapping_add(1)),
            state_epoch,
            leader_epoch: current.as_ref().map_or(0, |c| c.leader_epoch),
            start_offset,
            create_timestamp: current.as_ref().map_or(now, |c| c.create_timestamp),
            write_timestamp: now,
            state_batches: Vec::new(),
        };
        self.append(broker, partition, epoch, key, Some(next)).await.map(|_| ())
    }

    /// ReadShareGroupStateSummary: a share partition's state epoch, leader epoch and start offset,
    /// without its batches and without recording a leader epoch (DescribeShareGroupOffsets asks
    /// it, and leaders checking whether the state was initialized anew). `None`: no state.
    pub async fn read_summary(
        &self,
        broker: &Broker,
        key: &SharePartitionKey,
    ) -> Result<Option<Summary>, ResponseError> {
        self.owner(broker, key)?;
        Ok(self.inner.lock().states.get(key).map(|s| Summary {
            state_epoch: s.state_epoch,
            leader_epoch: s.leader_epoch,
            start_offset: s.start_offset,
        }))
    }

    /// DeleteShareGroupState: a tombstone; the share partition starts anew at its next fetch.
    pub async fn delete(&self, broker: &Broker, key: &SharePartitionKey) -> Result<(), ResponseError> {
        let lock = self.key_lock(key);
        let _one_at_a_time = lock.lock().await;
        let (partition, epoch) = self.owner(broker, key)?;
        if !self.inner.lock().states.contains_key(key) {
            return Ok(());
        }
        self.append(broker, partition, epoch, key, None).await.map(|_| ())
    }

    /// Appends the state (or a tombstone) with acks=all and installs it, unless the partition was
    /// unloaded or reloaded meanwhile (then NOT_COORDINATOR: that load read the log).
    async fn append(
        &self,
        broker: &Broker,
        partition: i32,
        epoch: i32,
        key: &SharePartitionKey,
        state: Option<ShareSnapshot>,
    ) -> Result<ShareSnapshot, ResponseError> {
        let tp = TopicPartition::new(SHARE_GROUP_STATE_TOPIC, partition);
        let value = state.as_ref().map(encode_value);
        let batch = BatchBuilder::new(crate::util::now_ms())
            .record(Some(&encode_key(key)), value.as_deref(), 0)
            .build();
        let written = broker.replicas.append_as_leader(&tp, &batch, -1, WRITE_TIMEOUT).await;
        let mut inner = self.inner.lock();
        if inner.owned.get(&partition) != Some(&epoch) {
            return Err(ResponseError::NotCoordinator);
        }
        if let Err(failure) = written {
            tracing::debug!(partition, "a share-partition state write failed: {:?}", failure.error);
            return Err(match failure.error {
                ResponseError::NotLeaderOrFollower => ResponseError::NotCoordinator,
                other => other,
            });
        }
        match state {
            Some(s) => {
                inner.states.insert(key.clone(), s.clone());
                Ok(s)
            }
            None => {
                inner.states.remove(key);
                Ok(ShareSnapshot {
                    snapshot_epoch: -1,
                    state_epoch: -1,
                    leader_epoch: -1,
                    start_offset: -1,
                    create_timestamp: -1,
                    write_timestamp: -1,
                    state_batches: Vec::new(),
                })
            }
        }
    }

    /// This broker leads these `__share_group_state` partitions (each with its leader epoch):
    /// reads their logs, the last record of each share partition winning, and takes them over.
    pub fn load_partitions(&self, broker: &Broker, partitions: &[(i32, i32)]) -> Result<LoadSummary, String> {
        let mut summary = LoadSummary::default();
        let mut found: HashMap<SharePartitionKey, Option<ShareSnapshot>> = HashMap::new();
        for &(partition, _) in partitions {
            let Some(p) = broker.partition(SHARE_GROUP_STATE_TOPIC, partition) else {
                continue;
            };
            summary.partitions += 1;
            let mut offset = p.log.lock().log_start_offset();
            loop {
                let read = {
                    let log = p.log.lock();
                    log.read(offset, 1 << 20, log.log_end_offset(), true)
                };
                let fail =
                    |e: String| format!("cannot read {SHARE_GROUP_STATE_TOPIC}-{partition} at offset {offset}: {e}");
                let slice = read.map_err(|e| fail(e.to_string()))?;
                if slice.is_empty() {
                    break;
                }
                let bytes = slice.read().map_err(|e| fail(e.to_string()))?;
                let next = replay(&bytes, &mut found, &mut summary);
                if next <= offset {
                    break;
                }
                offset = next;
            }
        }
        let mut inner = self.inner.lock();
        for &(partition, epoch) in partitions {
            inner.owned.insert(partition, epoch);
        }
        for (key, state) in found {
            match state {
                Some(s) => {
                    summary.states += 1;
                    inner.states.insert(key, s);
                }
                None => {
                    inner.states.remove(&key);
                }
            }
        }
        Ok(summary)
    }

    /// This broker stopped leading these partitions: their states are dropped.
    pub fn unload_partitions(&self, broker: &Broker, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        let count = broker
            .metadata
            .topic(SHARE_GROUP_STATE_TOPIC)
            .map_or(self.config.num_partitions, |t| t.partitions);
        let mut inner = self.inner.lock();
        for p in partitions {
            inner.owned.remove(p);
        }
        inner
            .states
            .retain(|key, _| !partitions.contains(&partition_for(&super::records::coordinator_key(key), count)));
    }
}

/// Applies every whole batch in `bytes`; returns the offset after the last one read.
fn replay(
    bytes: &[u8],
    found: &mut HashMap<SharePartitionKey, Option<ShareSnapshot>>,
    summary: &mut LoadSummary,
) -> i64 {
    let (next, unreadable) = for_each_keyed_record(bytes, |base_offset, key, value| {
        let decoded = decode_key(key).and_then(|k| {
            let state = value.map(decode_value).transpose()?;
            Ok::<_, RecordError>((k, state))
        });
        match decoded {
            Ok((k, state)) => {
                summary.records += 1;
                found.insert(k, state);
            }
            Err(e) => {
                tracing::warn!(
                    offset = base_offset,
                    "skipping a record in {SHARE_GROUP_STATE_TOPIC}: {e}"
                );
                summary.skipped += 1;
            }
        }
    });
    summary.skipped += unreadable;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share_state::records::StateBatch;

    #[test]
    fn replay_keeps_the_last_state_and_tombstones_forget() {
        let a = ("g".to_string(), uuid::Uuid::from_u128(7), 0);
        let b = ("g".to_string(), uuid::Uuid::from_u128(7), 1);
        let state = |start: i64| ShareSnapshot {
            snapshot_epoch: 0,
            state_epoch: 0,
            leader_epoch: 1,
            start_offset: start,
            create_timestamp: 1,
            write_timestamp: 2,
            state_batches: vec![StateBatch {
                first_offset: start,
                last_offset: start + 1,
                delivery_state: 0,
                delivery_count: 1,
            }],
        };
        let bytes = BatchBuilder::new(0)
            .record(Some(&encode_key(&a)), Some(&encode_value(&state(5))), 0)
            .record(Some(&encode_key(&b)), Some(&encode_value(&state(9))), 0)
            .record(Some(&encode_key(&a)), Some(&encode_value(&state(6))), 0)
            .record(Some(&encode_key(&b)), None, 0)
            .build();
        let mut found = HashMap::new();
        let mut summary = LoadSummary::default();
        assert_eq!(replay(&bytes, &mut found, &mut summary), 4);
        assert_eq!(summary.records, 4);
        assert_eq!(found[&a], Some(state(6)));
        assert_eq!(found[&b], None);
    }
}
