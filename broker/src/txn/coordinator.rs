//! `TxnCoordinator`: the runtime around the pure transaction state (`state`). It owns every
//! transactional id of the `__transaction_state` partitions this broker leads, behind one lock; turns
//! requests into transitions; writes each transition to the log with acks=all before it is installed
//! and answered; and completes decided transactions by having their markers written (`markers`).
//!
//! What holds: at most one write per transactional id is in flight (`Entry::pending`; a second request
//! meanwhile gets CONCURRENT_TRANSACTIONS); memory only ever holds what the log holds; a transaction
//! in PrepareCommit/PrepareAbort always has a task writing its markers while this broker coordinates it
//! (started by EndTxn, by a timeout abort, by a fenced producer, or by loading the partition).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::host::TxnHost;
use super::markers;
use super::records::{encode_key, encode_value, TRANSACTION_STATE_TOPIC};
use super::state::{InitDecision, TxnMetadata, TxnState};
use crate::group::partition_for;
use crate::log::batch::BatchBuilder;
use crate::log::TopicPartition;
use crate::metrics::TxnCounters;
use crate::replication::AppendFailure;
use crate::util::now_ms;
use crate::util::RateLimitedLog;

/// The `transaction.*` settings.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub min_isr: i32,
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
    pub abort_check_interval_ms: i64,
    pub expiry_check_interval_ms: i64,
}

impl TxnConfig {
    pub fn from_broker(c: &crate::config::BrokerConfig) -> TxnConfig {
        TxnConfig {
            num_partitions: c.transaction_state_log_num_partitions,
            replication_factor: c.transaction_state_log_replication_factor,
            min_isr: c.transaction_state_log_min_isr,
            max_timeout_ms: c.transaction_max_timeout_ms,
            id_expiration_ms: c.transactional_id_expiration_ms,
            abort_check_interval_ms: c.transaction_abort_timed_out_transaction_cleanup_interval_ms as i64,
            expiry_check_interval_ms: c.transaction_remove_expired_transaction_cleanup_interval_ms as i64,
        }
    }
}

pub struct TxnCoordinator {
    pub config: TxnConfig,
    inner: Mutex<Inner>,
    /// `__transaction_state` exists.
    ready: AtomicBool,
    /// The "cannot create the topic" error was logged.
    warned: AtomicBool,
    pub(crate) errors: RateLimitedLog,
    metrics: TxnCounters,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) txns: HashMap<String, Entry>,
    /// The `__transaction_state` partitions loaded here, with the coordinator epoch each was loaded at
    /// (the partition's leader epoch): markers carry it, and a marker task stops when it changes.
    pub(crate) owned: HashMap<i32, i32>,
    last_abort_check_ms: i64,
    last_expiry_check_ms: i64,
}

pub(crate) struct Entry {
    pub(crate) meta: TxnMetadata,
    /// A write of this id's next state is in flight.
    pub(crate) pending: bool,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig, metrics: TxnCounters) -> TxnCoordinator {
        TxnCoordinator {
            config,
            inner: Mutex::new(Inner::default()),
            ready: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            errors: RateLimitedLog::new(Duration::from_secs(30)),
            metrics,
        }
    }

    pub(crate) fn with_inner<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock())
    }

    /// Makes sure `__transaction_state` exists, having the controller create it at the first
    /// FindCoordinator as Kafka does. COORDINATOR_NOT_AVAILABLE when it cannot be created.
    pub async fn ensure_topic(&self, host: &impl TxnHost) -> Result<(), ResponseError> {
        if self.ready.load(Ordering::Acquire) || host.topic(TRANSACTION_STATE_TOPIC).is_some() {
            self.ready.store(true, Ordering::Release);
            return Ok(());
        }
        let rf = self.config.replication_factor;
        let configs: BTreeMap<String, String> = [
            ("cleanup.policy", "compact".to_string()),
            ("compression.type", "uncompressed".to_string()),
            ("min.insync.replicas", self.config.min_isr.to_string()),
            ("segment.bytes", "104857600".to_string()),
            ("unclean.leader.election.enable", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        match host
            .create_topic(TRANSACTION_STATE_TOPIC, self.config.num_partitions, rf, configs)
            .await
        {
            Ok(_) => {}
            Err(e) if e.error == ResponseError::TopicAlreadyExists => {}
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "cannot create {TRANSACTION_STATE_TOPIC} (transaction.state.log.replication.factor={rf}, \
                         transaction.state.log.num.partitions={}): {}; transactions are unavailable until it can be",
                        self.config.num_partitions,
                        e.message
                    );
                }
                return Err(ResponseError::CoordinatorNotAvailable);
            }
        }
        if host.topic(TRANSACTION_STATE_TOPIC).is_some() {
            self.ready.store(true, Ordering::Release);
            Ok(())
        } else {
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }

    /// The `__transaction_state` partition of `transactional_id` (Kafka's hash of the id).
    pub fn partition_of(&self, host: &impl TxnHost, transactional_id: &str) -> i32 {
        let partitions = host
            .topic(TRANSACTION_STATE_TOPIC)
            .map(|t| t.partitions)
            .unwrap_or(self.config.num_partitions);
        partition_for(transactional_id, partitions)
    }

    /// The broker that coordinates `transactional_id`: the leader of its partition.
    pub fn coordinator_of(&self, host: &impl TxnHost, transactional_id: &str) -> Result<i32, ResponseError> {
        let partition = self.partition_of(host, transactional_id);
        match host.leader_of(TRANSACTION_STATE_TOPIC, partition) {
            Some(leader) if leader >= 0 => Ok(leader),
            _ => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// This broker coordinates `transactional_id` (its partition is loaded here): the partition and the
    /// coordinator epoch. Else NOT_COORDINATOR, and the client looks the coordinator up again.
    fn owner(&self, host: &impl TxnHost, transactional_id: &str) -> Result<(i32, i32), ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        let partition = self.partition_of(host, transactional_id);
        match self.inner.lock().owned.get(&partition) {
            Some(&epoch) => Ok((partition, epoch)),
            None => Err(ResponseError::NotCoordinator),
        }
    }

    /// InitProducerId with a transactional id: the producer id and a new epoch, fencing every older
    /// producer of the id; an open transaction of an older producer is aborted first.
    pub async fn init_producer_id<H: TxnHost>(
        &self,
        host: &Arc<H>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        let (partition, epoch) = self.owner(&**host, transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        // A new id needs a producer id, and so does an exhausted epoch.
        let needs_id = self
            .inner
            .lock()
            .txns
            .get(transactional_id)
            .is_none_or(|e| e.meta.epoch_exhausted());
        let fresh = if needs_id {
            Some(host.allocate_producer_id().await?)
        } else {
            None
        };
        let now = now_ms();
        let decision = {
            let mut inner = self.inner.lock();
            // The partition may have moved (or moved away and back) while a producer id was allocated.
            if inner.owned.get(&partition) != Some(&epoch) {
                return Err(ResponseError::NotCoordinator);
            }
            let entry = inner.txns.entry(transactional_id.to_string()).or_insert_with(|| Entry {
                meta: TxnMetadata::new(transactional_id, fresh.unwrap_or(-1), timeout_ms, now),
                pending: false,
            });
            if entry.pending {
                return Err(ResponseError::ConcurrentTransactions);
            }
            // Exhausted meanwhile (another producer's init): the client retries.
            let decision = entry.meta.init_producer_id(
                timeout_ms,
                expected,
                || fresh.ok_or(ResponseError::ConcurrentTransactions),
                now,
            )?;
            entry.pending = true;
            decision
        };
        match decision {
            InitDecision::Write(next) => {
                let answer = (next.producer_id, next.producer_epoch);
                self.write(&**host, partition, epoch, next).await?;
                Ok(answer)
            }
            InitDecision::AbortFirst(next) => {
                tracing::info!(
                    transactional_id,
                    producer_id = next.producer_id,
                    epoch = next.producer_epoch,
                    "a new producer fences the open transaction of an older one: aborting it"
                );
                self.write(&**host, partition, epoch, next).await?;
                markers::complete_later(host, transactional_id);
                Err(ResponseError::ConcurrentTransactions)
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn with the group's `__consumer_offsets` partition).
    pub async fn add_partitions<H: TxnHost>(
        &self,
        host: &Arc<H>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<(), ResponseError> {
        let now = now_ms();
        self.transition(host, transactional_id, |meta| {
            meta.add_partitions(producer_id, producer_epoch, partitions, now)
        })
        .await
        .map(|_| ())
    }

    /// EndTxn: the transaction is decided (written as PrepareCommit/PrepareAbort) and answered; its
    /// markers are written afterwards, as Kafka does.
    pub async fn end_txn<H: TxnHost>(
        &self,
        host: &Arc<H>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let now = now_ms();
        let wrote = self
            .transition(host, transactional_id, |meta| {
                meta.end_txn(producer_id, producer_epoch, commit, now)
            })
            .await?;
        if wrote {
            markers::complete_later(host, transactional_id);
        }
        Ok(())
    }

    /// KIP-890's verification (AddPartitionsToTxn with `verify_only`): whether each partition is in
    /// the ongoing transaction of this producer id and epoch. Nothing is written. Per partition:
    /// `None` when it is, else INVALID_TXN_STATE; the whole request fails (Err) when the id is unknown
    /// here or belongs to another producer.
    pub fn verify(
        &self,
        host: &impl TxnHost,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.owner(host, transactional_id)?;
        let inner = self.inner.lock();
        let entry = inner
            .txns
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let meta = &entry.meta;
        if meta.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch != producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                (meta.state != TxnState::Ongoing || !meta.partitions.contains(tp))
                    .then_some(ResponseError::InvalidTxnState)
            })
            .collect())
    }

    /// Runs one transition of an existing id: decide under the lock, write, install. Returns whether
    /// anything was written.
    async fn transition<H: TxnHost>(
        &self,
        host: &Arc<H>,
        transactional_id: &str,
        decide: impl FnOnce(&TxnMetadata) -> Result<Option<TxnMetadata>, ResponseError>,
    ) -> Result<bool, ResponseError> {
        let (partition, epoch) = self.owner(&**host, transactional_id)?;
        let next = {
            let mut inner = self.inner.lock();
            let Some(entry) = inner.txns.get_mut(transactional_id) else {
                return Err(ResponseError::InvalidProducerIdMapping);
            };
            if entry.pending {
                return Err(ResponseError::ConcurrentTransactions);
            }
            let Some(next) = decide(&entry.meta)? else {
                return Ok(false);
            };
            entry.pending = true;
            next
        };
        self.write(&**host, partition, epoch, next).await?;
        Ok(true)
    }

    /// Writes `next` to the id's `__transaction_state` partition (acks=all) and installs it; a failed
    /// write leaves memory as it was. The id's entry is marked pending by the caller, who found the
    /// partition loaded at coordinator epoch `epoch`.
    ///
    /// When the partition was unloaded or reloaded meanwhile (moved away, and perhaps back: another
    /// epoch), memory belongs to that load, which read the log: this write neither installs its state
    /// nor clears the pending mark of a write started since, and answers NOT_COORDINATOR, as Kafka's
    /// `TransactionStateManager.appendTransactionToLog` does when the cached coordinator epoch changed.
    pub(crate) async fn write(
        &self,
        host: &impl TxnHost,
        partition: i32,
        epoch: i32,
        next: TxnMetadata,
    ) -> Result<(), ResponseError> {
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition);
        let batch = BatchBuilder::new(now_ms())
            .record(Some(&encode_key(&next.transactional_id)), Some(&encode_value(&next)), 0)
            .build();
        let written = host.append_replicated(&tp, batch).await;
        let mut inner = self.inner.lock();
        let id = next.transactional_id.clone();
        if inner.owned.get(&partition) != Some(&epoch) {
            if let Err(failure) = &written {
                tracing::debug!(transactional_id = %id, partition, "a transaction state write failed after the partition moved: {:?}", failure.error);
            }
            return Err(ResponseError::NotCoordinator);
        }
        match written {
            Ok(()) => {
                inner.txns.insert(
                    id,
                    Entry {
                        meta: next,
                        pending: false,
                    },
                );
                Ok(())
            }
            Err(failure) => {
                let error = append_error(&failure);
                if let Some(count) = self.errors.should_log(&format!("write {partition}")) {
                    tracing::warn!(
                        transactional_id = %id,
                        partition,
                        count,
                        "cannot write transaction state: {:?} {}; answering {error:?}",
                        failure.error,
                        failure.message.as_deref().unwrap_or_default()
                    );
                }
                match inner.txns.get_mut(&id) {
                    // A new id that never reached the log is forgotten.
                    Some(e) if e.meta.producer_epoch == super::state::NO_PRODUCER_EPOCH => {
                        inner.txns.remove(&id);
                    }
                    Some(e) => e.pending = false,
                    None => {}
                }
                Err(error)
            }
        }
    }

    /// The current state of `transactional_id`, if this broker coordinates it.
    pub fn describe(&self, host: &impl TxnHost, transactional_id: &str) -> Result<TxnMetadata, ResponseError> {
        self.owner(host, transactional_id)?;
        self.inner
            .lock()
            .txns
            .get(transactional_id)
            .map(|e| e.meta.clone())
            .ok_or(ResponseError::TransactionalIdNotFound)
    }

    /// Every transactional id this broker coordinates (ListTransactions).
    pub fn list(&self) -> Vec<TxnMetadata> {
        let inner = self.inner.lock();
        let mut out: Vec<TxnMetadata> = inner
            .txns
            .values()
            .filter(|e| e.meta.producer_epoch != super::state::NO_PRODUCER_EPOCH)
            .map(|e| e.meta.clone())
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// The transaction of `transactional_id` is in PrepareCommit/PrepareAbort at `epoch` of this
    /// coordinator's partition: the producer id, epoch, decision and partitions its markers go to.
    pub(crate) fn preparing(&self, host: &impl TxnHost, transactional_id: &str) -> Option<(TxnMetadata, i32, i32)> {
        let partition = self.partition_of(host, transactional_id);
        let inner = self.inner.lock();
        let entry = inner.txns.get(transactional_id)?;
        if !entry.meta.state.is_preparing() || entry.pending {
            return None;
        }
        let epoch = *inner.owned.get(&partition)?;
        Some((entry.meta.clone(), partition, epoch))
    }

    /// Whether partition `partition` is still coordinated here at `epoch`.
    pub(crate) fn still_owns(&self, partition: i32, epoch: i32) -> bool {
        self.inner.lock().owned.get(&partition) == Some(&epoch)
    }

    /// Markers of a decided transaction are all written: write its completion.
    pub(crate) async fn complete<H: TxnHost>(
        &self,
        host: &Arc<H>,
        transactional_id: &str,
        decided: &TxnMetadata,
    ) -> Result<(), ResponseError> {
        let now = now_ms();
        let wrote = self
            .transition(host, transactional_id, |meta| {
                if meta.state != decided.state || meta.producer_epoch != decided.producer_epoch {
                    return Ok(None);
                }
                Ok(meta.complete(now))
            })
            .await?;
        if wrote {
            self.metrics.completed(decided.state == TxnState::PrepareCommit);
        }
        Ok(())
    }

    /// Open transactions here and how long the oldest has been open (ms; 0 when none).
    pub fn open_transactions(&self, now_ms: i64) -> (usize, i64) {
        let inner = self.inner.lock();
        inner
            .txns
            .values()
            .filter(|e| {
                matches!(
                    e.meta.state,
                    TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
                )
            })
            .fold((0, 0), |(n, oldest), e| {
                (n + 1, oldest.max(now_ms.saturating_sub(e.meta.txn_start_ms)))
            })
    }

    /// The periodic work: aborts open transactions past their timeout (fencing their producer, as
    /// Kafka does) and forgets idle ids past `transactional.id.expiration.ms`.
    pub async fn tick<H: TxnHost>(&self, host: &Arc<H>) {
        let now = now_ms();
        let (timed_out, expired) = {
            let mut inner = self.inner.lock();
            let mut timed_out = Vec::new();
            let mut expired = Vec::new();
            if now - inner.last_abort_check_ms >= self.config.abort_check_interval_ms {
                inner.last_abort_check_ms = now;
                timed_out = inner
                    .txns
                    .values()
                    .filter(|e| !e.pending && e.meta.timed_out(now))
                    .map(|e| e.meta.transactional_id.clone())
                    .collect();
            }
            if now - inner.last_expiry_check_ms >= self.config.expiry_check_interval_ms {
                inner.last_expiry_check_ms = now;
                expired = inner
                    .txns
                    .values()
                    .filter(|e| !e.pending && e.meta.expired(now, self.config.id_expiration_ms))
                    .map(|e| e.meta.transactional_id.clone())
                    .collect();
            }
            (timed_out, expired)
        };
        for id in timed_out {
            let wrote = self
                .transition(host, &id, |meta| {
                    if meta.timed_out(now) {
                        Ok(Some(meta.fence_and_abort(now)))
                    } else {
                        Ok(None)
                    }
                })
                .await;
            if let Ok(true) = wrote {
                self.metrics.timed_out.inc();
                tracing::info!(transactional_id = %id, "aborting a transaction open longer than its timeout");
                markers::complete_later(host, &id);
            }
        }
        for id in expired {
            self.expire(&**host, &id).await;
        }
    }

    /// Writes a tombstone for an expired id and forgets it.
    async fn expire(&self, host: &impl TxnHost, transactional_id: &str) {
        let Ok((partition, epoch)) = self.owner(host, transactional_id) else {
            return;
        };
        {
            let mut inner = self.inner.lock();
            match inner.txns.get_mut(transactional_id) {
                Some(e) if !e.pending => e.pending = true,
                _ => return,
            }
        }
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition);
        let batch = BatchBuilder::new(now_ms())
            .record(Some(&encode_key(transactional_id)), None, 0)
            .build();
        let written = host.append_replicated(&tp, batch).await;
        let mut inner = self.inner.lock();
        if inner.owned.get(&partition) != Some(&epoch) {
            // Moved meanwhile: memory belongs to the new load.
        } else if written.is_ok() {
            inner.txns.remove(transactional_id);
            tracing::info!(
                transactional_id,
                "forgot a transactional id idle past transactional.id.expiration.ms"
            );
        } else if let Some(e) = inner.txns.get_mut(transactional_id) {
            e.pending = false;
        }
    }

    /// This broker stopped leading these `__transaction_state` partitions: their ids are dropped (the
    /// new leader loads them), and their marker tasks stop.
    pub fn unload_partitions(&self, host: &impl TxnHost, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        let count = host
            .topic(TRANSACTION_STATE_TOPIC)
            .map_or(self.config.num_partitions, |t| t.partitions);
        let mut inner = self.inner.lock();
        for p in partitions {
            inner.owned.remove(p);
        }
        inner
            .txns
            .retain(|id, _| !partitions.contains(&partition_for(id, count)));
    }
}

/// Kafka's mapping of a failed `__transaction_state` write to the client's error
/// (`TransactionStateManager.appendTransactionToLog`).
fn append_error(failure: &AppendFailure) -> ResponseError {
    match failure.error {
        ResponseError::UnknownTopicOrPartition
        | ResponseError::NotEnoughReplicas
        | ResponseError::NotEnoughReplicasAfterAppend
        | ResponseError::RequestTimedOut => ResponseError::CoordinatorNotAvailable,
        ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => ResponseError::NotCoordinator,
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => ResponseError::UnknownServerError,
        other => other,
    }
}
