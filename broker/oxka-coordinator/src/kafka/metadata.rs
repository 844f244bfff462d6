//! Metadata on `clientPort`: the committed image as Kafka's Metadata response: the unfenced registered
//! brokers (their first endpoint), the controller, and every topic's partitions with leader, leader
//! epoch, replicas, ISR and offline replicas, described as the broker's Metadata describes them
//! (`image_responses`). Any member answers from its applied image (a follower may lag by the entries
//! in flight). This is the first, read-only way for a broker to learn the cluster from the ensemble;
//! topic configs come from the log later (see docs/coordinator.md). No auto-creation: a coordinator is
//! not where topics appear by accident.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::VersionRange;

use super::image_responses::{describe, response_broker, OPERATIONS_OMITTED};
use super::{str_bytes, ClientContext};
use crate::image::ClusterImage;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 12 };

pub fn handle(ctx: &ClientContext, request: MetadataRequest) -> MetadataResponse {
    let image = ctx.node.state.image();
    let brokers = image.live_brokers().map(|(b, e)| response_broker(b, e)).collect();
    let topics = match request.topics {
        None => image.topics.iter().map(|(n, t)| describe(&image, n, Some(t))).collect(),
        Some(wanted) => wanted
            .iter()
            .map(|w| match &w.name {
                Some(name) => describe(&image, name, image.topics.get(name.as_str())),
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
        Some((name, t)) => describe(image, name, Some(t)),
        None => MetadataResponseTopic::default()
            .with_topic_id(topic_id)
            .with_error_code(ResponseError::UnknownTopicId.code()),
    }
}
