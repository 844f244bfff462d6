//! `Broker`: the state every handler shares: config, partition logs, the cluster metadata this broker
//! follows, its channel to the controller and its session there, metrics, the memory budget, and the
//! append notifier that wakes long-polling fetches.
//!
//! Topic administration (create, delete, add partitions, alter configs) is validated here, with the
//! broker's own rules (names, configs), and then sent to the controller, which decides and replicates it;
//! the broker answers once its own metadata shows the change, so the next request sees it. Logs follow
//! metadata: `install_metadata` creates the logs of partitions assigned to this broker, applies config
//! changes and removes deleted topics' data before the new metadata becomes visible.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    IncrementalAlterConfigsRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ControllerChannel, Lane, MetadataView, Session};
use crate::config::BrokerConfig;
use crate::coordinator::ClusterImage;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::log::{partition_metadata, LogConfig, LogManager, Partition, TopicPartition};
use crate::metadata::{validate_topic_name, TopicMeta};
use crate::metrics::Metrics;
use crate::network::MemoryBudget;

/// How long a topic operation may wait for the controller, elections included; below the admin
/// clients' usual request timeouts, so they get the reason rather than a timeout of their own.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a broker waits for its own metadata to show a change the controller made.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Broker {
    pub config: BrokerConfig,
    /// Broker-wide log defaults; each topic's `LogConfig` is this plus the topic's overrides.
    pub default_log_config: LogConfig,
    pub logs: LogManager,
    /// Cluster metadata as last received from the controller.
    pub metadata: MetadataView,
    pub controller: ControllerChannel,
    pub session: Session,
    pub metrics: Metrics,
    pub budget: MemoryBudget,
    /// The group coordinator of the consumer groups whose `__consumer_offsets` partition this broker leads.
    pub groups: GroupCoordinator,
    /// Incremented after every append; fetches waiting for data watch it.
    appended: watch::Sender<u64>,
    /// Serializes installing metadata (log changes follow metadata in order).
    installing: tokio::sync::Mutex<()>,
    /// Producer ids handed out from the current block: (next, end exclusive).
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    /// Stops the background work of this broker's membership (heartbeats, metadata, embedded coordinator).
    pub background: CancellationToken,
    /// Partitions that are assigned elsewhere but have a log here (warned about once).
    strays: Mutex<std::collections::HashSet<TopicPartition>>,
    /// Partitions whose `partition.metadata` is known to name the current topic id (checked once).
    verified: Mutex<std::collections::HashMap<TopicPartition, uuid::Uuid>>,
}

/// Why a topic operation failed, as a Kafka error code plus a message for the client.
#[derive(Debug, Clone)]
pub struct TopicError {
    pub error: ResponseError,
    pub message: String,
}

impl TopicError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        TopicError {
            error,
            message: message.into(),
        }
    }

    fn from_code(code: i16, message: Option<&StrBytes>) -> Self {
        let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
        let message = message.map(|m| m.to_string()).unwrap_or_else(|| error.to_string());
        TopicError { error, message }
    }

    fn unreachable(problem: String) -> Self {
        TopicError::new(
            ResponseError::RequestTimedOut,
            format!("the controller did not answer: {problem}"),
        )
    }
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
        let (appended, _) = watch::channel(0);
        let groups = GroupCoordinator::new(GroupConfig::from_settings(&config.static_settings));
        Broker {
            config,
            default_log_config,
            logs,
            metadata: MetadataView::new(),
            controller,
            session,
            metrics,
            budget,
            groups,
            appended,
            installing: tokio::sync::Mutex::new(()),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            background: CancellationToken::new(),
            strays: Mutex::default(),
            verified: Mutex::default(),
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
    /// UNKNOWN_LEADER_EPOCH, so neither side acts on stale metadata.
    pub fn leader_partition_at(
        &self,
        topic: &str,
        partition: i32,
        client_epoch: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        let (leader, epoch) = self
            .metadata
            .leader_and_epoch(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        if client_epoch >= 0 && client_epoch < epoch {
            return Err(ResponseError::FencedLeaderEpoch);
        }
        if client_epoch > epoch {
            return Err(ResponseError::UnknownLeaderEpoch);
        }
        if leader != self.broker_id() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        self.partition(topic, partition)
            .ok_or(ResponseError::NotLeaderOrFollower)
    }

    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// The effective log config of a topic: broker defaults plus the topic's overrides.
    pub fn log_config_for(&self, configs: &BTreeMap<String, String>) -> Result<LogConfig, TopicError> {
        self.default_log_config
            .with_overrides(configs)
            .map_err(|e| TopicError::new(ResponseError::InvalidConfig, e.to_string()))
    }

    /// Creates a topic (CreateTopics, auto-creation). `partitions` / `replication_factor` of -1 take the
    /// broker defaults; `assignments` (partition → replicas) replaces both. With `validate_only`, checks
    /// everything and changes nothing.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicError> {
        validate_topic_name(name).map_err(|m| TopicError::new(ResponseError::InvalidTopicException, m))?;
        let (partitions, replication_factor) = if assignments.is_empty() {
            (
                if partitions == -1 {
                    self.config.num_partitions
                } else {
                    partitions
                },
                if replication_factor == -1 {
                    self.config.default_replication_factor
                } else {
                    replication_factor
                },
            )
        } else {
            (assignments.len() as i32, assignments[0].len() as i16)
        };
        if partitions < 1 {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.",
            ));
        }
        if replication_factor < 1 {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        let live_brokers = self.metadata.image().brokers.values().filter(|b| !b.fenced).count();
        if replication_factor as usize > live_brokers {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {replication_factor} time(s): The target replication factor of \
                     {replication_factor} cannot be reached because only {live_brokers} broker(s) are registered."
                ),
            ));
        }
        if replication_factor > 1 {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Replication factor {replication_factor} is not supported yet: oxka does not replicate partitions \
                     between brokers, so a replica other than the leader would hold no data. Use replication factor 1."
                ),
            ));
        }
        self.log_config_for(&configs)?;
        if let Some(existing) = self.metadata.read().topics.keys().find(|t| collides(t, name)) {
            let (error, message) = if existing == name {
                (
                    ResponseError::TopicAlreadyExists,
                    format!("Topic '{name}' already exists."),
                )
            } else {
                (
                    ResponseError::InvalidTopicException,
                    format!("Topic '{name}' collides with existing topic: {existing}"),
                )
            };
            return Err(TopicError::new(error, message));
        }
        if validate_only {
            return Ok(TopicMeta {
                topic_id: uuid::Uuid::nil(),
                partitions,
                replication_factor,
                configs,
            });
        }
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(if assignments.is_empty() { partitions } else { -1 })
            .with_replication_factor(if assignments.is_empty() { replication_factor } else { -1 })
            .with_assignments(
                assignments
                    .iter()
                    .enumerate()
                    .map(|(i, replicas)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(i as i32)
                            .with_broker_ids(replicas.iter().map(|b| BrokerId(*b)).collect())
                    })
                    .collect(),
            )
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(CONTROLLER_TIMEOUT.as_millis() as i32);
        let response = self
            .to_controller(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
            .await?;
        let ResponseKind::CreateTopics(response) = response else {
            return Err(unexpected(&response));
        };
        let result = response.topics.into_iter().next().unwrap_or_default();
        if result.error_code != 0 {
            return Err(TopicError::from_code(result.error_code, result.error_message.as_ref()));
        }
        let topic_id = result.topic_id;
        self.await_metadata(|image| image.topics.get(name).is_some_and(|t| t.topic_id == topic_id))
            .await;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(TopicMeta {
            topic_id,
            partitions,
            replication_factor,
            configs,
        })
    }

    /// Deletes a topic; each broker removes its partitions' data when its metadata shows the deletion.
    pub async fn delete_topic(&self, name: &str) -> Result<TopicMeta, TopicError> {
        if !self.config.delete_topic_enable {
            return Err(TopicError::new(
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled (delete.topic.enable=false).",
            ));
        }
        let meta = self.metadata.topic(name).ok_or_else(|| unknown_topic(name))?;
        let request = DeleteTopicsRequest::default()
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
            ])
            .with_timeout_ms(CONTROLLER_TIMEOUT.as_millis() as i32);
        let response = self
            .to_controller(ApiKey::DeleteTopics, 6, RequestKind::DeleteTopics(request))
            .await?;
        let ResponseKind::DeleteTopics(response) = response else {
            return Err(unexpected(&response));
        };
        let result = response.responses.into_iter().next().unwrap_or_default();
        if result.error_code != 0 {
            return Err(TopicError::from_code(result.error_code, result.error_message.as_ref()));
        }
        let topic_id = meta.topic_id;
        self.await_metadata(|image| image.topics.get(name).is_none_or(|t| t.topic_id != topic_id))
            .await;
        tracing::info!(topic = name, "deleted topic");
        Ok(meta)
    }

    /// Raises a topic's partition count to `count` (CreatePartitions).
    pub async fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let meta = self.metadata.topic(name).ok_or_else(|| unknown_topic(name))?;
        if count < meta.partitions {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "Topic currently has {} partitions, which is higher than the requested {count}.",
                    meta.partitions
                ),
            ));
        }
        if count == meta.partitions {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {count} partitions."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_count(count)])
            .with_timeout_ms(CONTROLLER_TIMEOUT.as_millis() as i32);
        let response = self
            .to_controller(ApiKey::CreatePartitions, 3, RequestKind::CreatePartitions(request))
            .await?;
        let ResponseKind::CreatePartitions(response) = response else {
            return Err(unexpected(&response));
        };
        let result = response.results.into_iter().next().unwrap_or_default();
        if result.error_code != 0 {
            return Err(TopicError::from_code(result.error_code, result.error_message.as_ref()));
        }
        self.await_metadata(|image| {
            image
                .topics
                .get(name)
                .is_some_and(|t| t.partitions.len() >= count as usize)
        })
        .await;
        Ok(())
    }

    /// Replaces a topic's config overrides (after validating them); every broker applies them to its logs.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        self.log_config_for(&configs)?;
        let meta = self.metadata.topic(name).ok_or_else(|| unknown_topic(name))?;
        if validate_only {
            return Ok(());
        }
        const SET: i8 = 0;
        const DELETE: i8 = 1;
        let changes = configs
            .iter()
            .map(|(k, v)| (k, Some(v), SET))
            .chain(
                meta.configs
                    .keys()
                    .filter(|k| !configs.contains_key(*k))
                    .map(|k| (k, None, DELETE)),
            )
            .map(|(k, v, op)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(op)
                    .with_value(v.map(|v| StrBytes::from_string(v.clone())))
            })
            .collect();
        const TOPIC: i8 = 2;
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(changes)]);
        let response = self
            .to_controller(
                ApiKey::IncrementalAlterConfigs,
                1,
                RequestKind::IncrementalAlterConfigs(request),
            )
            .await?;
        let ResponseKind::IncrementalAlterConfigs(response) = response else {
            return Err(unexpected(&response));
        };
        let result = response.responses.into_iter().next().unwrap_or_default();
        if result.error_code != 0 {
            return Err(TopicError::from_code(result.error_code, result.error_message.as_ref()));
        }
        self.await_metadata(|image| image.topics.get(name).is_some_and(|t| t.configs == configs))
            .await;
        Ok(())
    }

    /// Hands out a fresh producer id, fetching a new block from the controller when the current one runs
    /// out; the controller's counter is in the metadata log, so no id is ever handed out twice.
    pub async fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            let request = AllocateProducerIdsRequest::default()
                .with_broker_id(BrokerId(self.broker_id()))
                .with_broker_epoch(self.session.epoch());
            let response = self
                .to_controller(
                    ApiKey::AllocateProducerIds,
                    0,
                    RequestKind::AllocateProducerIds(request),
                )
                .await?;
            let ResponseKind::AllocateProducerIds(r) = response else {
                return Err(unexpected(&response));
            };
            if r.error_code != 0 {
                return Err(TopicError::from_code(r.error_code, None));
            }
            *ids = (
                r.producer_id_start.0,
                r.producer_id_start.0 + i64::from(r.producer_id_len.max(0)),
            );
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    async fn to_controller(&self, api: ApiKey, version: i16, request: RequestKind) -> Result<ResponseKind, TopicError> {
        self.controller
            .send(Lane::Admin, api, version, request, CONTROLLER_TIMEOUT)
            .await
            .map_err(TopicError::unreachable)
    }

    /// Waits until this broker's metadata shows what the controller did (bounded: the change is made,
    /// and a slow follower only delays what this broker says about it).
    async fn await_metadata(&self, done: impl Fn(&ClusterImage) -> bool) {
        if !self.metadata.wait_until(PROPAGATION_TIMEOUT, done).await {
            tracing::warn!("metadata from the controller did not arrive within {PROPAGATION_TIMEOUT:?}");
        }
    }

    /// Installs newer metadata from the controller: first the logs follow it (partitions assigned to this
    /// broker get logs, config changes are applied, deleted topics' data is removed), then it becomes
    /// what handlers see.
    pub async fn install_metadata(self: &Arc<Self>, offset: u64, image: ClusterImage) {
        let _one_at_a_time = self.installing.lock().await;
        if offset <= self.metadata.offset() {
            return;
        }
        let broker = self.clone();
        let image = Arc::new(image);
        let reconciling = image.clone();
        match tokio::task::spawn_blocking(move || broker.reconcile_logs(&reconciling)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(
                "cannot bring the logs in line with metadata offset {offset}: {}",
                e.message
            ),
            Err(e) => tracing::error!("log reconciliation panicked: {e}"),
        }
        self.metadata.install(offset, Arc::unwrap_or_clone(image));
    }

    /// Makes sure every partition assigned to this broker has a log with its topic's config, and removes
    /// logs of topics (or partitions) that no longer exist.
    pub fn reconcile_logs(&self, image: &ClusterImage) -> Result<(), TopicError> {
        let me = self.broker_id();
        for (name, topic) in &image.topics {
            let log_config = self.log_config_for(&topic.configs)?;
            for (index, p) in topic.partitions.iter().enumerate() {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: index as i32,
                };
                let existing = self.logs.get(&tp);
                let verified = self.verified.lock().get(&tp) == Some(&topic.topic_id);
                if verified {
                    if let Some(p) = existing.as_ref() {
                        p.log.lock().update_config(log_config.clone());
                        continue;
                    }
                }
                if !p.replicas.contains(&me) {
                    if let Some(old) = existing.as_ref().filter(|e| self.holds_other_topic(e, topic.topic_id)) {
                        tracing::warn!(
                            partition = %old.topic_partition(),
                            "removing data of an earlier topic of the same name (deleted while this broker was away)"
                        );
                        self.logs.remove(&tp).map_err(storage_error)?;
                        continue;
                    }
                    if existing.is_some() && self.strays.lock().insert(tp.clone()) {
                        tracing::warn!(partition = %tp, "this broker has data for a partition assigned to other brokers; keeping it untouched");
                    }
                    continue;
                }
                let existing = match existing {
                    Some(p) if self.holds_other_topic(&p, topic.topic_id) => {
                        tracing::warn!(
                            partition = %tp,
                            "this partition's data belongs to an earlier topic of the same name (deleted and \
                             created again while this broker was away); removing it"
                        );
                        self.logs.remove(&tp).map_err(storage_error)?;
                        None
                    }
                    other => other,
                };
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
                let dir = partition.log_dir().join(tp.to_string());
                if partition_metadata::read(&dir).ok().flatten() != Some(topic.topic_id) {
                    partition_metadata::write(&dir, topic.topic_id).map_err(storage_error)?;
                }
                self.verified.lock().insert(tp, topic.topic_id);
            }
        }
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
                    tracing::warn!(partition = %tp, "could not remove it: {e}");
                }
            }
        }
        self.metrics.set_partition_count(self.logs.partition_count());
        Ok(())
    }
}

impl Broker {
    /// Whether a partition directory records another topic id than `topic_id` (an unreadable record
    /// counts as another topic's only when it names one; a missing record is adopted).
    fn holds_other_topic(&self, partition: &Partition, topic_id: uuid::Uuid) -> bool {
        let dir = partition.log_dir().join(partition.topic_partition().to_string());
        match partition_metadata::read(&dir) {
            Ok(Some(recorded)) => recorded != topic_id,
            Ok(None) => false,
            Err(e) => {
                tracing::warn!("{e}; rewriting it for the current topic");
                false
            }
        }
    }
}

fn unexpected(response: &ResponseKind) -> TopicError {
    TopicError::new(
        ResponseError::UnknownServerError,
        format!("unexpected answer from the controller: {response:?}"),
    )
}

/// Kafka refuses topics whose names differ only in '.' versus '_' (they share metric names).
fn collides(existing: &str, new: &str) -> bool {
    existing.replace('.', "_") == new.replace('.', "_")
}

fn unknown_topic(name: &str) -> TopicError {
    TopicError::new(
        ResponseError::UnknownTopicOrPartition,
        format!("This server does not host this topic: {name}"),
    )
}

fn storage_error(e: impl std::fmt::Display) -> TopicError {
    tracing::error!("storage failure during topic administration: {e}");
    TopicError::new(ResponseError::KafkaStorageError, e.to_string())
}
