//! DescribeCluster on `clientPort`: the cluster id, the controller (the Raft leader) and the coordinators'
//! client endpoints. Kafka's admin client in `--bootstrap-controller` mode (KIP-919) discovers the
//! controllers with it (endpoint type 2) before it sends DescribeQuorum to the active one.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, ClientContext};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub fn handle(ctx: &ClientContext, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let leader = ctx.node.leader().map(|l| l as i32).unwrap_or(-1);
    let brokers = ctx
        .voters
        .values()
        .map(|v| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(v.id.0 as i32))
                .with_host(str_bytes(&v.client_host))
                .with_port(v.client_port as i32)
        })
        .collect();
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(str_bytes(&ctx.node.state.image().cluster_id))
        .with_controller_id(BrokerId(leader))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
