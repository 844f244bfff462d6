//! DescribeCluster: this broker, the controller (itself in the single-node setup) and the cluster id.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let id = broker.broker_id();
    let brokers = broker
        .config
        .advertised_for(&ctx.connection.listener)
        .or_else(|| broker.config.advertised_listeners.first())
        .map(|l| {
            vec![DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(str_bytes(&l.host))
                .with_port(l.port as i32)
                .with_rack(broker.config.rack.as_deref().map(str_bytes))]
        })
        .unwrap_or_default();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&broker.metadata.cluster_id()))
        .with_controller_id(BrokerId(id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
