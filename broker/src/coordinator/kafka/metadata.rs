//! Metadata on `clientPort`: the committed image as Kafka's Metadata response: the unfenced registered
//! brokers (their first endpoint), the controller, and every topic's partitions with leader, leader
//! epoch, replicas and ISR. Any member answers from its applied image (a follower may lag by the entries
//! in flight). This is the first, read-only way for a broker to learn the cluster from the ensemble;
//! topic configs come from the log later (see docs/coordinator.md). No auto-creation: a coordinator is
//! not where topics appear by accident.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, ClientContext};
use crate::coordinator::image::{ClusterImage, TopicState};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 12 };

/// Authorized operations are not computed (no ACLs yet).
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub fn handle(ctx: &ClientContext, request: MetadataRequest) -> MetadataResponse {
    let image = ctx.node.state.image();
    let brokers = image
        .live_brokers()
        .map(|(b, e)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.broker_id))
                .with_host(str_bytes(&e.host))
                .with_port(e.port as i32)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    let topics = match request.topics {
        None => image.topics.iter().map(|(n, t)| describe(n, Some(t))).collect(),
        Some(wanted) => wanted
            .iter()
            .map(|w| match &w.name {
                Some(name) => describe(name, image.topics.get(name.as_str())),
                None => by_id(&image, w.topic_id),
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&image.cluster_id)))
        .with_controller_id(BrokerId(ctx.node.leader().map(|l| l as i32).unwrap_or(-1)))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

fn by_id(image: &ClusterImage, topic_id: uuid::Uuid) -> MetadataResponseTopic {
    match image.topics.iter().find(|(_, t)| t.topic_id == topic_id) {
        Some((name, t)) => describe(name, Some(t)),
        None => MetadataResponseTopic::default()
            .with_topic_id(topic_id)
            .with_error_code(ResponseError::UnknownTopicId.code()),
    }
}

fn describe(name: &str, topic: Option<&TopicState>) -> MetadataResponseTopic {
    let response = MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(name))))
        .with_is_internal(name.starts_with("__"))
        .with_topic_authorized_operations(OPERATIONS_OMITTED);
    let Some(topic) = topic else {
        return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_error_code(if p.leader < 0 {
                    ResponseError::LeaderNotAvailable.code()
                } else {
                    0
                })
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
        })
        .collect();
    response.with_topic_id(topic.topic_id).with_partitions(partitions)
}
