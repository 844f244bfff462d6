//! DescribeCluster on `clientPort`: the cluster id, the controller (the Raft leader) and, by endpoint type
//! (KIP-919), either the coordinators' client endpoints (type 2, what Kafka's admin client asks in
//! `--bootstrap-controller` mode before it sends DescribeQuorum to the active controller) or the
//! unfenced registered brokers (type 1, the default and the only one before v1).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;

use super::image_responses::cluster_broker;
use super::{str_bytes, ClientContext};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

const CONTROLLER_ENDPOINTS: i8 = 2;

pub async fn handle(ctx: &ClientContext, request: DescribeClusterRequest) -> DescribeClusterResponse {
    // The controller as far as this member can vouch: a leader that no quorum acknowledges any more is
    // not named (brokers would otherwise keep talking to it), and neither is a leader this member
    // has not heard from.
    let leader = if ctx.node.is_leader() {
        if ctx.node.is_confirmed_leader().await {
            ctx.node.id as i32
        } else {
            -1
        }
    } else {
        ctx.node.leader().map(|l| l as i32).unwrap_or(-1)
    };
    let image = ctx.node.state.image();
    let brokers = if request.endpoint_type == CONTROLLER_ENDPOINTS {
        ctx.voters
            .values()
            .map(|v| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(v.id.0 as i32))
                    .with_host(str_bytes(&v.client_host))
                    .with_port(v.client_port as i32)
            })
            .collect()
    } else {
        image.live_brokers().map(|(b, e)| cluster_broker(b, e)).collect()
    };
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(str_bytes(&image.cluster_id))
        .with_controller_id(BrokerId(leader))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
