//! Metadata: the live (unfenced) brokers with their address for the listener the client came in on, the
//! cluster id, and topics with each partition's leader, leader epoch, replicas and ISR, all from the
//! metadata this broker follows. Unknown topics are created (through the controller) on request when
//! `auto.create.topics.enable` and the client allow it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::coordinator::image::{BrokerEndpoint, RegisteredBroker, TopicState};
use crate::coordinator::ClusterImage;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 12 };

/// How long a Metadata request waits for a topic it auto-creates before answering LEADER_NOT_AVAILABLE.
const AUTO_CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Kafka's "authorized operations not requested" marker.
pub const OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let brokers = broker
        .metadata
        .live_brokers(&ctx.connection.listener)
        .iter()
        .map(|(b, e)| response_broker(b, e))
        .collect();

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested: Option<Vec<(Option<String>, uuid::Uuid)>> = match request.topics {
        None => None,
        Some(list) if list.is_empty() && ctx.version == 0 => None,
        Some(list) => Some(
            list.into_iter()
                .map(|t| (t.name.map(|n| n.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let allow_auto_create = ctx.version < 4 || request.allow_auto_topic_creation;

    let topics = match requested {
        None => {
            let image = broker.metadata.image();
            image
                .topics
                .iter()
                .map(|(name, t)| describe(&image, name, Some(t)))
                .collect()
        }
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (name, topic_id) in list {
                let name = match name {
                    Some(n) => n,
                    None => match super::topic_name_for(broker, "", topic_id) {
                        Some(n) => n,
                        None => {
                            out.push(
                                MetadataResponseTopic::default()
                                    .with_topic_id(topic_id)
                                    .with_error_code(ResponseError::UnknownTopicId.code()),
                            );
                            continue;
                        }
                    },
                };
                out.push(lookup_or_create(broker, &name, allow_auto_create).await);
            }
            out
        }
    };

    // Clients send admin requests to the controller they are told about; every broker forwards them to
    // the coordinators' controller, so any live broker will do: this one.
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&broker.metadata.cluster_id())))
        .with_controller_id(BrokerId(broker.broker_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

async fn lookup_or_create(broker: &Broker, name: &str, allow_auto_create: bool) -> MetadataResponseTopic {
    let image = broker.metadata.image();
    if let Some(topic) = image.topics.get(name) {
        return describe(&image, name, Some(topic));
    }
    if !(allow_auto_create && broker.config.auto_create_topics_enable) {
        return describe(&image, name, None);
    }
    // Bounded, like Kafka, which answers LEADER_NOT_AVAILABLE while an auto-created topic is not ready:
    // the client asks again, and other topics in the request are not held up by a slow controller.
    let created = tokio::time::timeout(
        AUTO_CREATE_WAIT,
        broker.create_topic(name, -1, -1, Default::default(), Vec::new(), false),
    )
    .await;
    let Ok(created) = created else {
        return MetadataResponseTopic::default()
            .with_name(Some(TopicName(str_bytes(name))))
            .with_error_code(ResponseError::LeaderNotAvailable.code());
    };
    match created {
        Ok(_) => {}
        // Lost a race with another creator: describe what exists now.
        Err(e) if e.error == ResponseError::TopicAlreadyExists => {}
        Err(e) => {
            tracing::info!(topic = name, "auto-creation refused: {}", e.message);
            return MetadataResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(name))))
                .with_error_code(e.error.code());
        }
    }
    let image = broker.metadata.image();
    describe(&image, name, image.topics.get(name))
}

/// A broker as Metadata lists it, at `endpoint`.
pub fn response_broker(broker: &RegisteredBroker, endpoint: &BrokerEndpoint) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.broker_id))
        .with_host(str_bytes(&endpoint.host))
        .with_port(endpoint.port as i32)
        .with_rack(broker.rack.as_deref().map(str_bytes))
}

/// A topic as the metadata says: each partition's leader (LEADER_NOT_AVAILABLE when none), leader
/// epoch, replicas, ISR and the replicas on fenced brokers. Shared with the coordinators' Metadata.
pub fn describe(image: &ClusterImage, name: &str, topic: Option<&TopicState>) -> MetadataResponseTopic {
    let response = MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(name))))
        .with_is_internal(name.starts_with("__"))
        .with_topic_authorized_operations(OPERATIONS_OMITTED);
    let Some(topic) = topic else {
        return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    let ids = |list: &[i32]| list.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced))
                .collect();
            let error = if p.leader < 0 {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(ids(&offline))
        })
        .collect();
    response.with_topic_id(topic.topic_id).with_partitions(partitions)
}
