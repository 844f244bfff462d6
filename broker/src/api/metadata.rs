//! Metadata: brokers (with the advertised address of the listener the client came in on), the cluster
//! id, the controller, and topics with their partitions. Unknown topics are created on request when
//! `auto.create.topics.enable` and the client allow it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::metadata::TopicMeta;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 12 };

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let id = broker.broker_id();
    let advertised = broker
        .config
        .advertised_for(&ctx.connection.listener)
        .or_else(|| broker.config.advertised_listeners.first());
    let brokers = advertised
        .map(|l| {
            vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(str_bytes(&l.host))
                .with_port(l.port as i32)
                .with_rack(broker.config.rack.as_deref().map(str_bytes))]
        })
        .unwrap_or_default();

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
            let image = broker.metadata.read();
            image
                .topics
                .iter()
                .map(|(name, meta)| describe(id, name, Some(meta)))
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
                out.push(lookup_or_create(broker, id, &name, allow_auto_create));
            }
            out
        }
    };

    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&broker.metadata.cluster_id())))
        .with_controller_id(BrokerId(id))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

fn lookup_or_create(broker: &Broker, id: i32, name: &str, allow_auto_create: bool) -> MetadataResponseTopic {
    if let Some(meta) = broker.metadata.topic(name) {
        return describe(id, name, Some(&meta));
    }
    if !(allow_auto_create && broker.config.auto_create_topics_enable) {
        return describe(id, name, None);
    }
    match broker.create_topic(name, -1, -1, Default::default(), false) {
        Ok(meta) => describe(id, name, Some(&meta)),
        // Lost a race with another creator: describe what exists now.
        Err(e) if e.error == ResponseError::TopicAlreadyExists => {
            describe(id, name, broker.metadata.topic(name).as_ref())
        }
        Err(e) => {
            tracing::info!(topic = name, "auto-creation refused: {}", e.message);
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(name))))
                .with_error_code(e.error.code())
        }
    }
}

fn describe(id: i32, name: &str, meta: Option<&TopicMeta>) -> MetadataResponseTopic {
    let topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(name))))
        .with_is_internal(name.starts_with("__"))
        .with_topic_authorized_operations(OPERATIONS_OMITTED);
    let Some(meta) = meta else {
        return topic.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    let partitions = (0..meta.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(id))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(id)])
                .with_isr_nodes(vec![BrokerId(id)])
        })
        .collect();
    topic.with_topic_id(meta.topic_id).with_partitions(partitions)
}
