//! DescribeCluster: the live brokers, the controller (this broker: it forwards admin requests to the
//! coordinators' controller) and the cluster id.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::coordinator::image::{BrokerEndpoint, RegisteredBroker};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let id = broker.broker_id();
    let brokers = broker
        .metadata
        .live_brokers(&ctx.connection.listener)
        .iter()
        .map(|(b, e)| cluster_broker(b, e))
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&broker.metadata.cluster_id()))
        .with_controller_id(BrokerId(id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}

/// A broker as DescribeCluster lists it, at `endpoint` (shared with the coordinators' DescribeCluster).
pub fn cluster_broker(broker: &RegisteredBroker, endpoint: &BrokerEndpoint) -> DescribeClusterBroker {
    DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.broker_id))
        .with_host(str_bytes(&endpoint.host))
        .with_port(endpoint.port as i32)
        .with_rack(broker.rack.as_deref().map(str_bytes))
}
