//! `Broker`: the state every handler shares: config, partition logs, the cluster metadata this broker
//! follows, its channel to the controller and its session there, metrics, the memory budget, and the
//! append notifier that wakes long-polling fetches.
//!
//! Topic administration is in `admin.rs`. Logs follow metadata: `install_metadata` creates the logs of
//! partitions assigned to this broker, applies config changes and removes deleted topics' data (checking
//! each partition's `partition.metadata` topic id) before the new metadata becomes visible.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ControllerChannel, MetadataView, Session};
use crate::config::BrokerConfig;
use crate::coordinator::ClusterImage;
use crate::group::OFFSETS_TOPIC;
use crate::group::{GroupConfig, GroupCoordinator, GroupHost};
use crate::log::{partition_metadata, LogConfig, LogManager, Partition, TopicPartition};
use crate::log_dir_health::LogDirHealth;
use crate::metrics::Metrics;
use crate::network::MemoryBudget;
use crate::quota::ClientQuotas;
use crate::replication::{self, HostedPartition, IsrClient, ReplicaManager, RoleChanges};
use crate::share_state::{ShareStateConfig, ShareStateCoordinator, SHARE_GROUP_STATE_TOPIC};
use crate::topic_error::storage_error;
pub use crate::topic_error::TopicError;
use crate::txn::{TxnConfig, TxnCoordinator, TRANSACTION_STATE_TOPIC};

/// Threads `reconcile_logs` uses to create and check partitions' logs (each waits on fsyncs mostly).
const RECONCILE_THREADS: usize = 8;

pub struct Broker {
    pub config: BrokerConfig,
    /// Broker-wide log defaults; each topic's `LogConfig` is this plus the topic's overrides.
    pub default_log_config: LogConfig,
    pub logs: LogManager,
    /// Cluster metadata as last received from the controller.
    pub metadata: Arc<MetadataView>,
    pub controller: Arc<ControllerChannel>,
    pub session: Arc<Session>,
    /// Every partition replica here, as leader or follower, and the fetchers copying from leaders.
    pub replicas: ReplicaManager,
    /// Which log dirs failed a write (and are probed until they take writes again).
    pub log_dirs: Arc<LogDirHealth>,
    pub metrics: Metrics,
    pub budget: MemoryBudget,
    /// The measured byte rates of clients with a quota (`quota`).
    pub client_quotas: ClientQuotas,
    /// The group coordinator of the consumer groups whose `__consumer_offsets` partition this broker leads.
    pub groups: GroupCoordinator,
    /// The transaction coordinator of the transactional ids whose `__transaction_state` partition this
    /// broker leads.
    pub txns: TxnCoordinator,
    /// The share coordinator of the share partitions whose `__share_group_state` partition this broker
    /// leads (their durable state; the share partitions themselves are `groups.share`).
    pub share_state: ShareStateCoordinator,
    /// Connections kept to other brokers for WriteTxnMarkers and KIP-890 verifications.
    pub(crate) inter_broker: crate::inter_broker::InterBrokerConnections,
    /// Serializes installing metadata (log changes follow metadata in order).
    installing: tokio::sync::Mutex<()>,
    /// The producer ids InitProducerId hands out, from blocks the controller allocates.
    pub producer_ids: crate::producer_ids::ProducerIds,
    /// Stops the background work of this broker's membership (heartbeats, metadata, embedded coordinator).
    pub background: CancellationToken,
    /// Partitions that are assigned elsewhere but have a log here (warned about once).
    strays: Mutex<std::collections::HashSet<TopicPartition>>,
    /// The task following the metadata log (awaited at shutdown).
    pub follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// A cluster id whose metadata was refused (logged once per id).
    refused_cluster: Mutex<Option<String>>,
    /// The last metadata could not be applied to the logs; `retry_following_metadata` tries again.
    logs_behind: crate::logs_behind::LogsBehind,
    /// Partitions whose `partition.metadata` is known to name the current topic id (checked once).
    verified: Mutex<std::collections::HashMap<TopicPartition, uuid::Uuid>>,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        default_log_config: LogConfig,
        logs: LogManager,
        controller: ControllerChannel,
        session: Session,
        metrics: Metrics,
    ) -> Self {
        let budget = MemoryBudget::new(config.heap_bytes);
        let client_quotas = ClientQuotas::new(config.quota_window_num, config.quota_window_size_seconds as i64 * 1000);
        let groups = GroupCoordinator::new(GroupConfig::from_settings(&config.static_settings));
        let share_state = ShareStateCoordinator::new(ShareStateConfig::from_settings(&config.static_settings));
        let txns = TxnCoordinator::new(TxnConfig::from_broker(&config), metrics.txn());
        let metadata = Arc::new(MetadataView::new());
        let controller = Arc::new(controller);
        let session = Arc::new(session);
        let broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync> = {
            let session = session.clone();
            Arc::new(move || session.epoch())
        };
        let member_epochs: Arc<dyn Fn(i32) -> i64 + Send + Sync> = {
            let metadata = metadata.clone();
            Arc::new(move |id| metadata.image().brokers.get(&id).map_or(-1, |b| b.epoch))
        };
        let isr = Arc::new(IsrClient::new(
            config.broker_id.0,
            controller.clone(),
            broker_epoch.clone(),
            member_epochs,
            metrics.replication(),
        ));
        let log_dirs = Arc::new(LogDirHealth::new(config.log_dirs.clone()));
        let replicas = ReplicaManager::new(
            config.broker_id.0,
            config.replication.clone(),
            isr,
            broker_epoch,
            metrics.replication(),
            log_dirs.clone(),
        );
        let producer_ids =
            crate::producer_ids::ProducerIds::new(config.broker_id.0, controller.clone(), session.clone());
        Broker {
            config,
            default_log_config,
            logs,
            metadata,
            controller,
            session,
            replicas,
            client_quotas,
            log_dirs,
            metrics,
            budget,
            groups,
            txns,
            share_state,
            inter_broker: Default::default(),
            installing: tokio::sync::Mutex::new(()),
            producer_ids,
            background: CancellationToken::new(),
            strays: Mutex::default(),
            verified: Mutex::default(),
            logs_behind: crate::logs_behind::LogsBehind::new(),
            refused_cluster: Mutex::default(),
            follower: Mutex::default(),
        }
    }

    pub fn broker_id(&self) -> i32 {
        self.config.broker_id.0
    }

    /// The partition, if this broker has its log.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.logs.get(&TopicPartition {
            topic: topic.to_string(),
            partition,
        })
    }

    /// The partition, if this broker is its leader: what Produce, Fetch, ListOffsets and DeleteRecords
    /// act on. UNKNOWN_TOPIC_OR_PARTITION when metadata has no such partition, NOT_LEADER_OR_FOLLOWER
    /// when another broker leads it or no one does (the client refreshes metadata and retries).
    pub fn leader_partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, ResponseError> {
        self.leader_partition_at(topic, partition, -1)
    }

    /// `leader_partition`, also checking the leader epoch the client believes in (KIP-320; -1: none):
    /// an older one gets FENCED_LEADER_EPOCH, a newer one (this broker's metadata is behind)
    /// UNKNOWN_LEADER_EPOCH, so neither side acts on stale metadata. Leadership is the replica's own
    /// role (set when metadata was installed), so a broker never serves as leader before it has
    /// recorded the new leader epoch in its log.
    pub fn leader_partition_at(
        &self,
        topic: &str,
        partition: i32,
        client_epoch: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        self.leader_replica_at(topic, partition, client_epoch)
            .map(|h| h.log.clone())
    }

    /// `leader_partition_at`, returning the replica (its role and log).
    pub fn leader_replica_at(
        &self,
        topic: &str,
        partition: i32,
        client_epoch: i32,
    ) -> Result<Arc<HostedPartition>, ResponseError> {
        let (leader, epoch) = self
            .metadata
            .leader_and_epoch(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        let hosted = self.replicas.get(&TopicPartition::new(topic, partition));
        let (local_epoch, leads) = hosted.as_ref().map_or((epoch, false), |h| h.leader_epoch());
        replication::check_epoch(local_epoch.max(epoch), client_epoch)?;
        if leader == self.broker_id() && hosted.is_none() && self.logs_behind.is_behind() {
            // Led here, but its log could not be created (a full disk, no file descriptors left): Kafka
            // answers KAFKA_STORAGE_ERROR for a replica whose log dir failed. Clients retry either way.
            return Err(ResponseError::KafkaStorageError);
        }
        if leader != self.broker_id() || !leads {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        hosted.ok_or(ResponseError::NotLeaderOrFollower)
    }

    pub fn notify_appended(&self) {
        self.replicas.notify_appended();
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.replicas.subscribe_appends()
    }

    /// The effective log config of a topic: broker defaults plus the topic's overrides.
    pub fn log_config_for(&self, configs: &BTreeMap<String, String>) -> Result<LogConfig, TopicError> {
        self.default_log_config
            .with_overrides(configs)
            .map_err(|e| TopicError::new(ResponseError::InvalidConfig, e.to_string()))
    }

    /// Installs newer metadata from the controller: first the logs follow it (partitions assigned to this
    /// broker get logs, config changes are applied, deleted topics' data is removed), then it becomes
    /// what handlers see.
    pub async fn install_metadata(self: &Arc<Self>, offset: u64, image: Arc<ClusterImage>) {
        let _one_at_a_time = self.installing.lock().await;
        if offset <= self.metadata.offset() || !self.is_our_cluster(&image) {
            return;
        }
        self.follow_with_logs(offset, image.clone()).await;
        // Roles follow only metadata that includes this broker's registration: the first image after a
        // restart may come from a lagging coordinator, older than what this broker saw before it went
        // down, and leading from it (say, with an ISR of only this broker) would move the high watermark
        // over records the current leader never had, to be truncated later (found by the replication
        // simulator). The image that unfences this broker always comes after its registration.
        let changes = if self.includes_own_registration(offset) {
            self.replicas.apply_image(&image, |tp| self.logs.get(tp))
        } else {
            RoleChanges::default()
        };
        self.move_group_coordination(&changes).await;
        self.move_txn_coordination(&changes).await;
        self.move_share_state_coordination(&changes).await;
        self.delete_removed_replicas(offset, &changes.removed).await;
        self.metadata.install(offset, image);
    }

    /// The group coordinator follows `__consumer_offsets` leadership: groups of partitions this broker
    /// stopped leading are dropped, those of partitions it now leads are loaded from its replica of the
    /// log (before the new metadata makes it their coordinator).
    async fn move_group_coordination(self: &Arc<Self>, changes: &RoleChanges) {
        let offsets = |tps: &[TopicPartition]| -> Vec<i32> {
            tps.iter()
                .filter(|tp| tp.topic == OFFSETS_TOPIC)
                .map(|tp| tp.partition)
                .collect()
        };
        self.groups
            .unload_partitions(&**self, &offsets(&changes.became_follower));
        let led = offsets(&changes.became_leader);
        if led.is_empty() {
            return;
        }
        let broker = self.clone();
        let partitions = led.clone();
        let loaded = tokio::task::spawn_blocking(move || broker.groups.load_partitions(&*broker, &partitions)).await;
        match loaded {
            Ok(Ok(summary)) if summary.records > 0 => tracing::info!(
                partitions = summary.partitions,
                groups = summary.groups,
                records = summary.records,
                skipped = summary.skipped,
                "loaded consumer groups of the {OFFSETS_TOPIC} partitions now led here"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("cannot load consumer groups: {e}"),
            Err(e) => tracing::error!("loading consumer groups panicked: {e}"),
        }
        // Share partitions the previous coordinator left initializing: the share-partition timer
        // initializes them now.
        let taken_over = |group: &str| led.contains(&self.groups.partition_of(&**self, group));
        self.groups.share.initialize_after_takeover(taken_over);
    }

    /// The transaction coordinator follows `__transaction_state` leadership as the group coordinator
    /// follows `__consumer_offsets`; transactions found decided but not complete get their markers
    /// written again.
    async fn move_txn_coordination(self: &Arc<Self>, changes: &RoleChanges) {
        let (followed, led) = self.coordinator_moves(changes, TRANSACTION_STATE_TOPIC);
        self.txns.unload_partitions(&**self, &followed);
        if led.is_empty() {
            return;
        }
        let broker = self.clone();
        let loaded = tokio::task::spawn_blocking(move || broker.txns.load_partitions(&*broker, &led)).await;
        match loaded {
            Ok(Ok((summary, preparing))) => {
                if summary.records > 0 {
                    tracing::info!(
                        partitions = summary.partitions,
                        transactions = summary.transactions,
                        records = summary.records,
                        skipped = summary.skipped,
                        completing = preparing.len(),
                        "loaded the transactions of the {TRANSACTION_STATE_TOPIC} partitions now led here"
                    );
                }
                for id in preparing {
                    crate::txn::markers::complete_later(self, &id);
                }
            }
            Ok(Err(e)) => tracing::error!("cannot load transactions: {e}"),
            Err(e) => tracing::error!("loading transactions panicked: {e}"),
        }
    }

    /// Of the internal topic `topic` (a coordinator's log): the partitions this broker stopped leading,
    /// and those it leads now, each with its leader epoch (a partition whose leadership moved on
    /// again since is left out).
    fn coordinator_moves(&self, changes: &RoleChanges, topic: &str) -> (Vec<i32>, Vec<(i32, i32)>) {
        let followed = changes
            .became_follower
            .iter()
            .filter(|tp| tp.topic == topic)
            .map(|tp| tp.partition)
            .collect();
        let led = changes
            .became_leader
            .iter()
            .filter(|tp| tp.topic == topic)
            .filter_map(|tp| {
                let (epoch, leads) = self.replicas.get(tp)?.leader_epoch();
                leads.then_some((tp.partition, epoch))
            })
            .collect();
        (followed, led)
    }

    /// The share coordinator follows `__share_group_state` leadership as the transaction coordinator
    /// follows `__transaction_state`.
    async fn move_share_state_coordination(self: &Arc<Self>, changes: &RoleChanges) {
        let (followed, led) = self.coordinator_moves(changes, SHARE_GROUP_STATE_TOPIC);
        self.share_state.unload_partitions(self, &followed);
        if led.is_empty() {
            return;
        }
        let broker = self.clone();
        let loaded = tokio::task::spawn_blocking(move || broker.share_state.load_partitions(&broker, &led)).await;
        match loaded {
            Ok(Ok(summary)) if summary.records > 0 => tracing::info!(
                partitions = summary.partitions,
                states = summary.states,
                records = summary.records,
                skipped = summary.skipped,
                "loaded the share-partition states of the {SHARE_GROUP_STATE_TOPIC} partitions now led here"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("cannot load share-partition states: {e}"),
            Err(e) => tracing::error!("loading share-partition states panicked: {e}"),
        }
    }

    /// Deletes the logs of replicas a reassignment moved off this broker (Kafka deletes them too), once
    /// metadata includes this broker's registration (so it is not a stale image); their fetchers have
    /// stopped already.
    async fn delete_removed_replicas(self: &Arc<Self>, offset: u64, removed: &[TopicPartition]) {
        let epoch = self.session.epoch();
        if removed.is_empty() || epoch <= 0 || offset < epoch as u64 {
            return;
        }
        let broker = self.clone();
        let removed = removed.to_vec();
        let deleted = tokio::task::spawn_blocking(move || {
            for tp in removed {
                broker.verified.lock().remove(&tp);
                match broker.logs.remove(&tp) {
                    Ok(_) => tracing::info!(partition = %tp, "deleted the replica moved off this broker"),
                    Err(e) => tracing::warn!(partition = %tp, "cannot delete the replica moved off this broker: {e}"),
                }
            }
        })
        .await;
        if let Err(e) = deleted {
            tracing::error!("deleting moved replicas panicked: {e}");
        }
        self.metrics.set_partition_count(self.logs.partition_count());
    }

    /// Whether `image` is this broker's cluster: an image without a cluster id (a controller that has
    /// not initialized the cluster yet) or with another id than the one this broker's data belongs to
    /// (meta.properties, or the metadata installed so far) is refused, so a wiped or wrong ensemble can
    /// never get this broker's data removed.
    fn is_our_cluster(&self, image: &ClusterImage) -> bool {
        if image.cluster_id.is_empty() {
            return false;
        }
        let installed = self.metadata.cluster_id();
        let expected = if installed.is_empty() {
            self.session.known_cluster_id.clone()
        } else {
            Some(installed)
        };
        match expected {
            Some(expected) if expected != image.cluster_id => {
                let mut refused = self.refused_cluster.lock();
                if refused.as_deref() != Some(image.cluster_id.as_str()) {
                    tracing::error!(
                        "{} reports cluster {}, but this broker's data belongs to cluster {expected}; refusing its \
                         metadata so nothing here is changed or deleted. Point zookeeper.connect at cluster \
                         {expected}'s ensemble, or move these log dirs away to join cluster {}",
                        self.controller.describe(),
                        image.cluster_id,
                        image.cluster_id
                    );
                    *refused = Some(image.cluster_id.clone());
                }
                false
            }
            _ => true,
        }
    }

    /// When the logs could not follow the last metadata (a full disk, say), tries again once the
    /// retry's backoff has passed (`LogsBehind`); the metadata follower calls it after every fetch, so a
    /// transient failure heals within seconds and a lasting one is retried at most every 10 s.
    pub async fn retry_following_metadata(self: &Arc<Self>) {
        if !self.logs_behind.retry_due() {
            return;
        }
        let _one_at_a_time = self.installing.lock().await;
        let offset = self.metadata.offset();
        let image = self.metadata.image();
        self.follow_with_logs(offset, image.clone()).await;
        if self.includes_own_registration(offset) {
            self.replicas.apply_image(&image, |tp| self.logs.get(tp));
        }
    }

    /// Whether metadata at `offset` includes this broker's current registration, and so everything
    /// committed before it.
    fn includes_own_registration(&self, offset: u64) -> bool {
        let epoch = self.session.epoch();
        epoch > 0 && offset >= epoch as u64
    }

    async fn follow_with_logs(self: &Arc<Self>, offset: u64, image: Arc<ClusterImage>) {
        // Metadata that includes this broker's registration includes everything committed before it.
        let authoritative = self.includes_own_registration(offset);
        let broker = self.clone();
        match tokio::task::spawn_blocking(move || broker.reconcile_logs(&image, authoritative)).await {
            Ok(Ok(())) => self.logs_behind.caught_up(),
            Ok(Err(e)) => self.logs_behind.failed(offset, &e.message),
            Err(e) => self
                .logs_behind
                .failed(offset, &format!("log reconciliation panicked: {e}")),
        }
    }

    /// Makes the logs follow `image`: every partition assigned to this broker gets a log with its topic's
    /// config. Only an `authoritative` image (one that includes this broker's own registration, so
    /// everything committed before it) may remove data: logs of deleted topics, and logs whose
    /// `partition.metadata` names another topic id (a topic deleted and re-created while this broker was
    /// away). An earlier image (the first answer after a restart may come from a lagging coordinator)
    /// only creates and reconfigures. Each partition is handled on its own: one failure does not stop the
    /// others; after all were tried, the first error is returned, its message counting the failed
    /// partitions (the caller logs it, once per interval).
    pub fn reconcile_logs(&self, image: &ClusterImage, authoritative: bool) -> Result<(), TopicError> {
        let mut work = Vec::new();
        for (name, topic) in &image.topics {
            let log_config = Arc::new(self.log_config_for(&topic.configs).unwrap_or_else(|e| {
                tracing::error!(
                    topic = %name,
                    "topic configs are invalid here ({}); using the broker defaults for its logs",
                    e.message
                );
                self.default_log_config.clone()
            }));
            for (index, p) in topic.partitions.iter().enumerate() {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: index as i32,
                };
                let assigned = p.replicas.contains(&self.broker_id());
                work.push((tp, topic.topic_id, assigned, Arc::clone(&log_config)));
            }
        }
        // Partitions are brought in line by a few threads at once: creating a log waits on fsyncs
        // (its directory, the log dir, its checkpoint and `partition.metadata`), which a disk serves
        // in parallel, so a topic of thousands of partitions is created in seconds, not minutes.
        let failures = Mutex::new((0usize, None::<(TopicPartition, TopicError)>));
        crate::log::parallel::for_each(&work, RECONCILE_THREADS, 64, |(tp, topic_id, assigned, log_config)| {
            if let Err(e) = self.follow_partition(tp, *topic_id, *assigned, log_config, authoritative) {
                let mut failures = failures.lock();
                failures.0 += 1;
                failures.1.get_or_insert((tp.clone(), e));
            }
        });
        let (mut failed, mut first_error) = failures.into_inner();
        if authoritative {
            for tp in self
                .logs
                .partitions()
                .map(|p| p.topic_partition().clone())
                .collect::<Vec<_>>()
            {
                let known = image
                    .topics
                    .get(&tp.topic)
                    .is_some_and(|t| (tp.partition as usize) < t.partitions.len());
                if !known {
                    self.verified.lock().remove(&tp);
                    tracing::info!(partition = %tp, "removing the data of a partition whose topic was deleted");
                    if let Err(e) = self.logs.remove(&tp) {
                        failed += 1;
                        first_error.get_or_insert_with(|| (tp.clone(), storage_error(e)));
                    }
                }
            }
        }
        self.metrics.set_partition_count(self.logs.partition_count());
        match first_error {
            None => Ok(()),
            Some((tp, mut e)) => {
                e.message = if failed == 1 {
                    format!("partition {tp}: {}", e.message)
                } else {
                    format!("{failed} partitions failed, the first ({tp}) with: {}", e.message)
                };
                Err(e)
            }
        }
    }

    /// One partition of `reconcile_logs`.
    fn follow_partition(
        &self,
        tp: &TopicPartition,
        topic_id: uuid::Uuid,
        assigned: bool,
        log_config: &LogConfig,
        authoritative: bool,
    ) -> Result<(), TopicError> {
        let existing = self.logs.get(tp);
        if self.verified.lock().get(tp) == Some(&topic_id) {
            if let Some(p) = existing.as_ref() {
                p.log.lock().update_config(log_config.clone());
                return Ok(());
            }
        }
        let recorded = existing.as_ref().and_then(|p| self.recorded_topic_id(p));
        let of_another_topic = recorded.is_some_and(|id| id != topic_id);
        if of_another_topic && !authoritative {
            // Decide once metadata includes this broker's registration: the image may be stale.
            return Ok(());
        }
        if of_another_topic {
            tracing::warn!(
                partition = %tp,
                "this partition's data belongs to an earlier topic of the same name (deleted and created again \
                 while this broker was away); removing it"
            );
            self.verified.lock().remove(tp);
            self.logs.remove(tp).map_err(storage_error)?;
        }
        let existing = if of_another_topic { None } else { existing };
        if !assigned {
            if existing.is_some() && self.strays.lock().insert(tp.clone()) {
                tracing::warn!(partition = %tp, "this broker has data for a partition assigned to other brokers; keeping it untouched");
            }
            return Ok(());
        }
        let partition = match existing {
            Some(p) => {
                p.log.lock().update_config(log_config.clone());
                p
            }
            None => self
                .logs
                .create(tp.clone(), log_config.clone())
                .map_err(storage_error)?,
        };
        // A freshly created log takes the id at once; an existing one without a record is adopted only on
        // authoritative metadata (a stale id written now could later get current data removed).
        if recorded != Some(topic_id) && (authoritative || recorded.is_none() && partition.is_empty()) {
            let dir = partition.log_dir().join(tp.to_string());
            partition_metadata::write(&dir, topic_id).map_err(storage_error)?;
        }
        if authoritative {
            self.verified.lock().insert(tp.clone(), topic_id);
        }
        Ok(())
    }
}

impl Broker {
    /// The topic id a partition's directory records (`partition.metadata`); `None` when there is none or
    /// it cannot be read (it is then rewritten for the current topic).
    ///
    /// Logged once per 30 s with a count for all partitions together: out of file descriptors, every
    /// partition fails the same way on every retry of the metadata follower (a CI run counted one line
    /// per retry, every 5 s).
    fn recorded_topic_id(&self, partition: &Partition) -> Option<uuid::Uuid> {
        static PROBLEMS: std::sync::LazyLock<crate::util::RateLimitedLog> =
            std::sync::LazyLock::new(|| crate::util::RateLimitedLog::new(std::time::Duration::from_secs(30)));
        let dir = partition.log_dir().join(partition.topic_partition().to_string());
        partition_metadata::read(&dir).unwrap_or_else(|e| {
            if let Some(count) = PROBLEMS.should_log("partition.metadata") {
                tracing::warn!("{e}; rewriting it for the current topic{}", PROBLEMS.repeats(count));
            }
            None
        })
    }
}

/// What the group coordinator uses of its broker: plain delegation to `Broker`'s own methods and fields.
impl GroupHost for Broker {
    fn broker_id(&self) -> i32 {
        Broker::broker_id(self)
    }

    fn offsets_topic_num_partitions(&self) -> i32 {
        self.config.offsets_topic_num_partitions
    }

    fn offsets_topic_replication_factor(&self) -> i16 {
        self.config.offsets_topic_replication_factor
    }

    fn topic(&self, name: &str) -> Option<crate::metadata::TopicMeta> {
        self.metadata.topic(name)
    }

    fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        self.metadata.leader_of(topic, partition)
    }

    fn topic_names(&self) -> Vec<String> {
        self.metadata.read().topics.keys().cloned().collect()
    }

    fn partition_racks(&self, topic: &str) -> Vec<std::collections::BTreeSet<String>> {
        let image = self.metadata.image();
        let Some(state) = image.topics.get(topic) else {
            return Vec::new();
        };
        let racks: Vec<std::collections::BTreeSet<String>> = state
            .partitions
            .iter()
            .map(|p| {
                p.replicas
                    .iter()
                    .filter_map(|r| image.brokers.get(r).and_then(|b| b.rack.clone()))
                    .collect()
            })
            .collect();
        if racks.iter().all(|r| r.is_empty()) {
            return Vec::new();
        }
        racks
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        Broker::partition(self, topic, partition)
    }

    fn append_now(&self, tp: &TopicPartition, records: &[u8], acks: i16) -> Result<i64, replication::AppendFailure> {
        self.replicas
            .append_now(tp, records, acks)
            .map(|(_, info, _)| info.base_offset)
    }

    fn append_as_coordinator(&self, tp: &TopicPartition, records: &[u8]) -> Result<i64, replication::AppendFailure> {
        self.replicas
            .append_as_coordinator(tp, records)
            .map(|(_, info, _)| info.base_offset)
    }

    fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> impl std::future::Future<Output = Result<crate::metadata::TopicMeta, TopicError>> + Send {
        Broker::create_topic(
            self,
            name,
            partitions,
            replication_factor,
            configs,
            assignments,
            validate_only,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::BrokerConfig;

    #[tokio::test]
    async fn logs_that_could_not_follow_metadata_catch_up_later() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\nmetrics.port=-1\n",
            dir.path().display()
        );
        let broker = crate::runtime::start(BrokerConfig::from_properties_text(&text, "test").unwrap())
            .await
            .unwrap();
        // A file where the partition's directory must go: creating its log fails.
        let blocker = dir.path().join("blocked-0");
        std::fs::write(&blocker, b"in the way").unwrap();
        broker
            .create_topic("blocked", 1, 1, Default::default(), Vec::new(), false)
            .await
            .expect("the controller creates the topic");
        assert_eq!(
            broker.leader_replica_at("blocked", 0, -1).err(),
            Some(kafka_protocol::error::ResponseError::KafkaStorageError),
            "no log: clients are told the storage failed (and retry)"
        );
        broker.logs_behind.retry_now();
        broker.retry_following_metadata().await;
        assert!(broker.partition("blocked", 0).is_none(), "still in the way");
        std::fs::remove_file(&blocker).unwrap();
        broker.retry_following_metadata().await;
        assert!(
            broker.partition("blocked", 0).is_none(),
            "not retried before its backoff has passed"
        );
        broker.logs_behind.retry_now();
        broker.retry_following_metadata().await;
        assert!(broker.leader_partition("blocked", 0).is_ok(), "the log exists now");
        crate::runtime::leave_cluster(&broker).await;
        broker.logs.shutdown().unwrap();
    }
}
