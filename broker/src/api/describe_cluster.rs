//! DescribeCluster: the live brokers, the controller (this broker: it forwards admin requests to the
//! coordinators' controller) and the cluster id.

use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Resource, CLUSTER_NAME};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::coordinator::kafka::image_responses::cluster_broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DescribeClusterRequest) -> DescribeClusterResponse {
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
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            ctx.access(broker)
                .authorized_operations(Resource::Cluster, CLUSTER_NAME)
        } else {
            i32::MIN
        })
}
