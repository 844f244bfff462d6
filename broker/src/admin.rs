//! Topic administration as a broker does it: requests are checked here with the broker's own rules
//! (topic names and collisions, partition and replication defaults, topic configs against the log
//! layer), then sent to the controller through the `ControllerChannel`, which decides (placement, ids)
//! and replicates; the broker answers once its own metadata shows the change, so the client's next
//! request to it sees the result. Producer-id blocks come from the controller the same way, and leader
//! elections (ElectLeaders) are forwarded as they are.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, ElectLeadersRequest,
    ElectLeadersResponse, IncrementalAlterConfigsRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::cluster::Lane;
use crate::coordinator::kafka::elect_leaders::refuse_all;
use crate::coordinator::ClusterImage;
use crate::metadata::{validate_topic_name, TopicMeta};
use crate::topic_error::TopicError;

/// How long a topic operation may wait for the controller, elections included; below the admin
/// clients' usual request timeouts, so they get the reason rather than a timeout of their own.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a broker waits for its own metadata to show a change the controller made.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);

impl Broker {
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
            return Err(TopicError::unexpected(&response));
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
            return Err(TopicError::unexpected(&response));
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
            return Err(TopicError::unexpected(&response));
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
        let changes: Vec<(String, Option<String>)> = configs
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .chain(
                meta.configs
                    .keys()
                    .filter(|k| !configs.contains_key(*k))
                    .map(|k| (k.clone(), None)),
            )
            .collect();
        const TOPIC: i8 = 2;
        self.alter_configs_on_controller(TOPIC, name, &changes).await?;
        self.await_metadata(|image| image.topics.get(name).is_some_and(|t| t.configs == configs))
            .await;
        Ok(())
    }

    /// Changes the dynamic configs of broker `entity` ("" = all brokers): `Some(value)` sets, `None`
    /// deletes. Checked here with the controller's rules, decided and replicated by the controller; every
    /// broker applies them (replication throttles) when its metadata shows them.
    pub async fn alter_broker_configs(
        &self,
        entity: &str,
        changes: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<(), TopicError> {
        crate::config::dynamic::validate_entity(entity)
            .map_err(|m| TopicError::new(ResponseError::InvalidRequest, m))?;
        for (key, value) in changes {
            if let Some(value) = value {
                crate::config::dynamic::validate(entity, key, value).map_err(|e| {
                    let (code, message) = e.into_code_and_message();
                    TopicError::new(
                        ResponseError::try_from_code(code).unwrap_or(ResponseError::InvalidConfig),
                        message,
                    )
                })?;
            }
        }
        if validate_only || changes.is_empty() {
            return Ok(());
        }
        const BROKER: i8 = 4;
        self.alter_configs_on_controller(BROKER, entity, changes).await?;
        self.await_metadata(|image| {
            let current = image.broker_configs.get(entity);
            changes
                .iter()
                .all(|(k, v)| current.and_then(|c| c.get(k)) == v.as_ref())
        })
        .await;
        Ok(())
    }

    /// Sends one resource's config changes (`Some`: SET, `None`: DELETE) to the controller as an
    /// IncrementalAlterConfigs; the controller's refusal comes back as the error.
    async fn alter_configs_on_controller(
        &self,
        resource_type: i8,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), TopicError> {
        const SET: i8 = 0;
        const DELETE: i8 = 1;
        let configs = changes
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(if v.is_some() { SET } else { DELETE })
                    .with_value(v.clone().map(StrBytes::from_string))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs)]);
        let response = self
            .to_controller(
                ApiKey::IncrementalAlterConfigs,
                1,
                RequestKind::IncrementalAlterConfigs(request),
            )
            .await?;
        let ResponseKind::IncrementalAlterConfigs(response) = response else {
            return Err(TopicError::unexpected(&response));
        };
        let result = response.responses.into_iter().next().unwrap_or_default();
        if result.error_code != 0 {
            return Err(TopicError::from_code(result.error_code, result.error_message.as_ref()));
        }
        Ok(())
    }

    /// Hands out a fresh producer id (`producer_ids`).
    pub async fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        self.producer_ids.allocate().await
    }

    /// Forwards an ElectLeaders request (`version` is the client's) to the controller, then waits until
    /// this broker's metadata shows a new leader epoch for every partition it elected.
    pub async fn elect_leaders(&self, version: i16, request: ElectLeadersRequest) -> ElectLeadersResponse {
        let before: BTreeMap<(String, i32), i32> = self
            .metadata
            .image()
            .topics
            .iter()
            .flat_map(|(name, t)| {
                t.partitions
                    .iter()
                    .enumerate()
                    .map(move |(i, p)| ((name.clone(), i as i32), p.leader_epoch))
            })
            .collect();
        let forwarded = request.clone().with_timeout_ms(CONTROLLER_TIMEOUT.as_millis() as i32);
        let response = match self
            .to_controller(ApiKey::ElectLeaders, 2, RequestKind::ElectLeaders(forwarded))
            .await
        {
            Ok(ResponseKind::ElectLeaders(response)) => response,
            Ok(other) => {
                tracing::warn!("unexpected answer from the controller to ElectLeaders: {other:?}");
                return refuse_all(version, &request, ResponseError::UnknownServerError, None);
            }
            Err(e) => return refuse_all(version, &request, e.error, Some(e.message)),
        };
        if response.error_code != 0 {
            let error = ResponseError::try_from_code(response.error_code).unwrap_or(ResponseError::UnknownServerError);
            return refuse_all(version, &request, error, None);
        }
        let elected: Vec<(String, i32, i32)> = response
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result
                    .iter()
                    .filter(|p| p.error_code == 0)
                    .map(|p| (t.topic.to_string(), p.partition_id))
            })
            .filter_map(|(topic, p)| before.get(&(topic.clone(), p)).map(|epoch| (topic, p, *epoch)))
            .collect();
        if !elected.is_empty() {
            self.await_metadata(|image| {
                elected.iter().all(|(topic, p, epoch)| {
                    image
                        .topics
                        .get(topic)
                        .and_then(|t| t.partitions.get(*p as usize))
                        .is_none_or(|state| state.leader_epoch > *epoch)
                })
            })
            .await;
            tracing::info!(partitions = elected.len(), "leader election done");
        }
        response
    }

    pub(crate) async fn to_controller(
        &self,
        api: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Result<ResponseKind, TopicError> {
        self.controller
            .send(Lane::Admin, api, version, request, CONTROLLER_TIMEOUT)
            .await
            .map_err(TopicError::unreachable)
    }

    /// Waits until this broker's metadata shows what the controller did (bounded: the change is made,
    /// and a slow follower only delays what this broker says about it).
    pub(crate) async fn await_metadata(&self, done: impl Fn(&ClusterImage) -> bool) {
        if !self.metadata.wait_until(PROPAGATION_TIMEOUT, done).await {
            tracing::warn!("metadata from the controller did not arrive within {PROPAGATION_TIMEOUT:?}");
        }
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
