//! DescribeQuorum on a broker: forwarded to the controller, as a KRaft broker does, so
//! `kafka-metadata-quorum --bootstrap-server <broker> describe --status / --replication` works against
//! brokers as well as against the coordinators (`--bootstrap-controller`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::cluster::Lane;

pub const VERSIONS: VersionRange = crate::coordinator::kafka::describe_quorum::VERSIONS;

const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    if !ctx.access(broker).allows_cluster(Op::Describe) {
        return DescribeQuorumResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let answer = broker
        .controller
        .send(
            Lane::Admin,
            ApiKey::DescribeQuorum,
            ctx.version,
            RequestKind::DescribeQuorum(request),
            FORWARD_TIMEOUT,
        )
        .await;
    match answer {
        Ok(ResponseKind::DescribeQuorum(response)) => response,
        Ok(other) => failed(
            ctx.version,
            &format!("unexpected answer from the controller: {other:?}"),
        ),
        Err(problem) => failed(ctx.version, &format!("the controller did not answer: {problem}")),
    }
}

/// REQUEST_TIMED_OUT, with the reason where the version has a message field (v2+).
fn failed(version: i16, message: &str) -> DescribeQuorumResponse {
    tracing::warn!("DescribeQuorum: {message}");
    let response = DescribeQuorumResponse::default().with_error_code(ResponseError::RequestTimedOut.code());
    if version >= 2 {
        response.with_error_message(Some(str_bytes(message)))
    } else {
        response
    }
}
