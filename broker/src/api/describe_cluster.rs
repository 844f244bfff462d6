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
        .metadata
        .live_brokers(&ctx.connection.listener)
        .into_iter()
        .map(|(b, e)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.broker_id))
                .with_host(str_bytes(&e.host))
                .with_port(e.port as i32)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&broker.metadata.cluster_id()))
        .with_controller_id(BrokerId(id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
