//! CreateTopics on the controller: validates each topic, decides its replica assignment (explicit
//! assignments are checked, otherwise `assign_replicas` over the registered brokers) and its id, and
//! proposes a `CreateTopic` command. A follower answers NOT_CONTROLLER; without a quorum the answer is
//! REQUEST_TIMED_OUT with a message that says so.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::{propose, str_bytes, ClientContext};
use crate::image::{assign_replicas, MetadataCommand};
use crate::metadata::validate_topic_name;
use crate::WriteError;

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 7 };

pub async fn handle(ctx: &ClientContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut topics = Vec::new();
    for topic in request.topics {
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        let outcome = create(ctx, topic, request.validate_only).await;
        topics.push(match outcome {
            Ok((topic_id, partitions, rf)) => result
                .with_topic_id(topic_id)
                .with_num_partitions(partitions)
                .with_replication_factor(rf),
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(str_bytes(&message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(topics)
}

async fn create(
    ctx: &ClientContext,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<(Uuid, i32, i16), (i16, String)> {
    let name = topic.name.to_string();
    validate_topic_name(&name).map_err(|m| (ResponseError::InvalidTopicException.code(), m))?;
    if !ctx.node.is_leader() {
        let refused = WriteError::NotController {
            me: ctx.node.id,
            leader: ctx.node.leader(),
        };
        return Err((refused.kafka_code(), refused.to_string()));
    }
    let image = ctx.node.state.image();
    let assignment = if topic.assignments.is_empty() {
        let partitions = if topic.num_partitions == -1 {
            1
        } else {
            topic.num_partitions
        };
        let rf = if topic.replication_factor == -1 {
            1
        } else {
            topic.replication_factor
        };
        assign_replicas(&image, 0, partitions, rf).map_err(|m| (ResponseError::InvalidReplicationFactor.code(), m))?
    } else {
        let mut a = topic.assignments.clone();
        a.sort_by_key(|a| a.partition_index);
        a.into_iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect()
    };
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            (
                ResponseError::InvalidConfig.code(),
                format!("Null value not supported for topic configs: {}", c.name.as_str()),
            )
        })?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    let partitions = assignment.len() as i32;
    let rf = assignment.first().map(|r: &Vec<i32>| r.len() as i16).unwrap_or(0);
    let topic_id = Uuid::new_v4();
    if validate_only {
        return Ok((topic_id, partitions, rf));
    }
    let command = MetadataCommand::CreateTopic {
        name,
        topic_id,
        assignment,
        configs,
    };
    propose(ctx, command).await.map(|_| (topic_id, partitions, rf))
}
