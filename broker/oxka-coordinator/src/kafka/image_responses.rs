//! How the cluster image appears in Kafka responses, shared by both listeners: the broker's Metadata
//! and DescribeCluster (`api::metadata`, `api::describe_cluster`) and the coordinators' (`metadata`,
//! `describe_cluster` here). Pure functions of `ClusterImage` parts; they live here, below the
//! broker's `api`, so the coordinator never imports from it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};

use crate::cluster_image::{BrokerEndpoint, ClusterImage, RegisteredBroker, TopicState};
use oxka_protocol::util::str_bytes;

/// Kafka's "authorized operations not requested" marker.
pub const OPERATIONS_OMITTED: i32 = i32::MIN;

/// A broker as Metadata lists it, at `endpoint`.
pub fn response_broker(broker: &RegisteredBroker, endpoint: &BrokerEndpoint) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.broker_id))
        .with_host(str_bytes(&endpoint.host))
        .with_port(endpoint.port as i32)
        .with_rack(broker.rack.as_deref().map(str_bytes))
}

/// A topic as the metadata says: each partition's leader (LEADER_NOT_AVAILABLE when none), leader
/// epoch, replicas, ISR and the replicas on fenced brokers.
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

/// A broker as DescribeCluster lists it, at `endpoint`.
pub fn cluster_broker(broker: &RegisteredBroker, endpoint: &BrokerEndpoint) -> DescribeClusterBroker {
    DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.broker_id))
        .with_host(str_bytes(&endpoint.host))
        .with_port(endpoint.port as i32)
        .with_rack(broker.rack.as_deref().map(str_bytes))
}
