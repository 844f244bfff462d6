//! `Broker`: the state every handler shares: config, partition logs, cluster metadata, metrics, the
//! memory budget, and the append notifier that wakes long-polling fetches.
//!
//! Topic administration (create, delete, add partitions, alter configs) lives here because it changes
//! metadata and logs together: `admin` serializes those changes so the two never disagree, and
//! metadata is persisted before the logs are touched, so a crash leaves at worst an empty partition
//! directory that the next start adopts or removes.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::log::{LogConfig, LogManager, Partition, TopicPartition};
use crate::metadata::{validate_topic_name, MetadataStore, TopicMeta};
use crate::metrics::Metrics;
use crate::network::MemoryBudget;

pub struct Broker {
    pub config: BrokerConfig,
    /// Broker-wide log defaults; each topic's `LogConfig` is this plus the topic's overrides.
    pub default_log_config: LogConfig,
    pub logs: LogManager,
    pub metadata: MetadataStore,
    pub metrics: Metrics,
    pub budget: MemoryBudget,
    /// The group coordinator of every consumer group (this broker coordinates them all).
    pub groups: GroupCoordinator,
    /// Incremented after every append; fetches waiting for data watch it.
    appended: watch::Sender<u64>,
    /// Serializes topic administration.
    admin: Mutex<()>,
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
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        default_log_config: LogConfig,
        logs: LogManager,
        metadata: MetadataStore,
        metrics: Metrics,
    ) -> Self {
        let budget = MemoryBudget::new(config.heap_bytes);
        let (appended, _) = watch::channel(0);
        let groups = GroupCoordinator::new(GroupConfig::from_settings(&config.static_settings));
        Broker {
            config,
            default_log_config,
            logs,
            metadata,
            metrics,
            budget,
            groups,
            appended,
            admin: Mutex::new(()),
        }
    }

    pub fn broker_id(&self) -> i32 {
        self.config.broker_id.0
    }

    /// The partition, if this broker hosts it.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.logs.get(&TopicPartition {
            topic: topic.to_string(),
            partition,
        })
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
    /// broker defaults. With `validate_only`, checks everything and changes nothing.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicError> {
        validate_topic_name(name).map_err(|m| TopicError::new(ResponseError::InvalidTopicException, m))?;
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        let replication_factor = if replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            replication_factor
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
        let live_brokers = 1;
        if replication_factor as i32 > live_brokers {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {replication_factor} time(s): The target replication factor of \
                     {replication_factor} cannot be reached because only {live_brokers} broker(s) are registered."
                ),
            ));
        }
        let log_config = self.log_config_for(&configs)?;
        let _admin = self.admin.lock();
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
        let meta = TopicMeta {
            topic_id: uuid::Uuid::new_v4(),
            partitions,
            replication_factor,
            configs,
        };
        if validate_only {
            return Ok(meta);
        }
        self.metadata
            .update(|image| image.topics.insert(name.to_string(), meta.clone()))
            .map_err(storage_error)?;
        for partition in 0..partitions {
            self.logs
                .create(
                    TopicPartition {
                        topic: name.to_string(),
                        partition,
                    },
                    log_config.clone(),
                )
                .map_err(storage_error)?;
        }
        self.metrics.set_partition_count(self.logs.partition_count());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(meta)
    }

    /// Deletes a topic and its partitions' data.
    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, TopicError> {
        if !self.config.delete_topic_enable {
            return Err(TopicError::new(
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled (delete.topic.enable=false).",
            ));
        }
        let _admin = self.admin.lock();
        let meta = self.metadata.topic(name).ok_or_else(|| unknown_topic(name))?;
        self.metadata
            .update(|image| image.topics.remove(name))
            .map_err(storage_error)?;
        for partition in 0..meta.partitions {
            if let Err(e) = self.logs.remove(&TopicPartition {
                topic: name.to_string(),
                partition,
            }) {
                tracing::warn!(topic = name, partition, "could not remove partition data: {e}");
            }
        }
        self.metrics.set_partition_count(self.logs.partition_count());
        tracing::info!(topic = name, "deleted topic");
        Ok(meta)
    }

    /// Raises a topic's partition count to `count` (CreatePartitions).
    pub fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let _admin = self.admin.lock();
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
        let log_config = self.log_config_for(&meta.configs)?;
        self.metadata
            .update(|image| {
                if let Some(t) = image.topics.get_mut(name) {
                    t.partitions = count;
                }
            })
            .map_err(storage_error)?;
        for partition in meta.partitions..count {
            self.logs
                .create(
                    TopicPartition {
                        topic: name.to_string(),
                        partition,
                    },
                    log_config.clone(),
                )
                .map_err(storage_error)?;
        }
        self.metrics.set_partition_count(self.logs.partition_count());
        Ok(())
    }

    /// Replaces a topic's config overrides (after validating them) and applies them to its logs.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let log_config = self.log_config_for(&configs)?;
        let _admin = self.admin.lock();
        let meta = self.metadata.topic(name).ok_or_else(|| unknown_topic(name))?;
        if validate_only {
            return Ok(());
        }
        self.metadata
            .update(|image| {
                if let Some(t) = image.topics.get_mut(name) {
                    t.configs = configs;
                }
            })
            .map_err(storage_error)?;
        for partition in 0..meta.partitions {
            if let Some(p) = self.partition(name, partition) {
                p.log.lock().update_config(log_config.clone());
            }
        }
        Ok(())
    }

    /// Makes sure every partition of every topic in metadata has a log (start-up, after a crash between
    /// persisting metadata and creating directories), and removes logs of topics that no longer exist.
    pub fn reconcile_logs(&self) -> Result<(), TopicError> {
        let topics = self.metadata.read().topics.clone();
        for (name, meta) in &topics {
            let log_config = self.log_config_for(&meta.configs)?;
            for partition in 0..meta.partitions {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition,
                };
                match self.logs.get(&tp) {
                    Some(p) => p.log.lock().update_config(log_config.clone()),
                    None => {
                        self.logs.create(tp, log_config.clone()).map_err(storage_error)?;
                    }
                }
            }
        }
        for tp in self
            .logs
            .partitions()
            .map(|p| p.topic_partition().clone())
            .collect::<Vec<_>>()
        {
            let known = topics.get(&tp.topic).is_some_and(|m| tp.partition < m.partitions);
            if !known {
                tracing::warn!(partition = %tp, "removing a partition directory that no topic owns");
                if let Err(e) = self.logs.remove(&tp) {
                    tracing::warn!(partition = %tp, "could not remove it: {e}");
                }
            }
        }
        self.metrics.set_partition_count(self.logs.partition_count());
        Ok(())
    }
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
