//! ElectLeaders (`kafka-leader-election`, Admin `electLeaders`): forwarded to the controller, which
//! decides and commits the leader changes (`coordinator/kafka/elect_leaders.rs`); the broker answers
//! once its own metadata shows the elected leaders, so a `kafka-topics --describe` right after sees them.

use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::kafka::elect_leaders::refuse_all;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: ElectLeadersRequest) -> ElectLeadersResponse {
    // ALTER on the cluster, as in Kafka.
    if !ctx.access(broker).allows_cluster(Op::Alter) {
        return refuse_all(
            ctx.version,
            &request,
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed,
            Some("Cluster authorization failed.".to_string()),
        );
    }
    broker.elect_leaders(ctx.version, request).await
}
