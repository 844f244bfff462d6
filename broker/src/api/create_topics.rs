//! CreateTopics: checks topics here (names, configs, defaults, explicit assignments naming registered
//! brokers) and has the controller create them; `validate_only` checks without creating.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::{Broker, TopicError};

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 7 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let access = ctx.access(broker);
    // CREATE on the cluster allows every topic; else CREATE on each topic is needed, as in Kafka.
    let cluster_create = access.allows_cluster(Op::Create);
    let mut seen = std::collections::HashSet::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let entry = {
            let name = topic.name.to_string();
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            if !seen.insert(name.clone()) {
                topics.push(
                    result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(&format!("Duplicate topic name {name} in the request.")))),
                );
                continue;
            }
            if !cluster_create && !access.allows_topic(Op::Create, &name) {
                topics.push(
                    result
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_error_message(Some(str_bytes("Authorization failed.")))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1),
                );
                continue;
            }
            match create(broker, &name, topic, request.validate_only).await {
                Ok(meta) => result
                    .with_topic_id(meta.topic_id)
                    .with_num_partitions(meta.partitions)
                    .with_replication_factor(meta.replication_factor),
                Err(e) => result
                    .with_error_code(e.error.code())
                    .with_error_message(Some(str_bytes(&e.message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        };
        topics.push(entry);
    }
    CreateTopicsResponse::default().with_topics(topics)
}

async fn create(
    broker: &Broker,
    name: &str,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<crate::metadata::TopicMeta, TopicError> {
    let mut configs = BTreeMap::new();
    for c in topic.configs {
        let Some(value) = c.value else {
            return Err(TopicError::new(
                ResponseError::InvalidConfig,
                format!("Null value not supported for topic configs: {}", c.name.as_str()),
            ));
        };
        configs.insert(c.name.to_string(), value.to_string());
    }
    let (partitions, replication_factor) = (topic.num_partitions, topic.replication_factor);
    let mut assignments: Vec<Vec<i32>> = Vec::new();
    if !topic.assignments.is_empty() {
        if partitions != -1 || replication_factor != -1 {
            return Err(TopicError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        let mut indexes: Vec<i32> = topic.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
            return Err(TopicError::new(
                ResponseError::InvalidReplicaAssignment,
                "Partitions should be a consecutive 0-based integer sequence",
            ));
        }
        let image = broker.metadata.image();
        for a in &topic.assignments {
            if let Some(b) = a.broker_ids.iter().find(|b| !image.brokers.contains_key(&b.0)) {
                return Err(TopicError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Replica assignment {:?} of partition {} names broker {}, which is not registered.",
                        a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>(),
                        a.partition_index,
                        b.0
                    ),
                ));
            }
        }
        let mut sorted = topic.assignments;
        sorted.sort_by_key(|a| a.partition_index);
        assignments = sorted
            .into_iter()
            .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
            .collect();
    }
    broker
        .create_topic(
            name,
            partitions,
            replication_factor,
            configs,
            assignments,
            validate_only,
        )
        .await
}
