//! `ControllerChannel`: how a broker reaches the controller, the same way whether the coordinator is
//! embedded in this process (one voter, requests handed to its handlers directly) or a remote ensemble
//! (Kafka protocol over TCP to `zookeeper.connect`, following the controller as it moves).
//!
//! Every call names a `Lane`: remote lanes are separate connections, so a heartbeat never waits behind a
//! topic creation that is waiting for a quorum, and the metadata long-poll never blocks either.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::lane::Lane;
use super::remote::RemoteEnsemble;
use crate::coordinator::kafka::metadata_fetch;
use crate::coordinator::kafka::metadata_fetch_codec::{ImageUpdate, MetadataFetchRequest};
use crate::coordinator::kafka::{dispatch, ClientContext};
use crate::util::ExponentialBackoff;

pub enum ControllerChannel {
    Embedded(Arc<ClientContext>),
    Remote(Arc<RemoteEnsemble>),
}

/// How long to wait before asking again when no controller is known (an election is under way): 50 ms
/// doubling to 1 s, with jitter, so brokers do not ask in step.
const NO_CONTROLLER_BACKOFF: ExponentialBackoff = ExponentialBackoff {
    initial: Duration::from_millis(50),
    max: Duration::from_secs(1),
    jitter: 0.2,
};

impl ControllerChannel {
    /// Sends `request` to the controller and returns its response. NOT_CONTROLLER answers and lost
    /// connections are retried (against the new controller) until `timeout`; any other answer, errors
    /// included, is returned as is. `Err` says why no answer came.
    pub async fn send(
        &self,
        lane: Lane,
        api: ApiKey,
        version: i16,
        request: RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_problem;
        let mut attempts = 0u32;
        loop {
            let attempt = match self {
                ControllerChannel::Embedded(ctx) => dispatch(ctx, version, request.clone()).await,
                ControllerChannel::Remote(remote) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    remote.call_controller(lane, api, version, &request, left).await
                }
            };
            match attempt {
                Ok(response) if !answers_not_controller(&response) => {
                    // "No quorum" from the controller: it may be a leader cut off from the others; ask
                    // the ensemble again next time rather than sticking to it.
                    if answers_no_quorum(&response) {
                        if let ControllerChannel::Remote(remote) = self {
                            remote.forget_controller();
                        }
                    }
                    return Ok(response);
                }
                Ok(_) => {
                    last_problem =
                        "the coordinator asked is not the controller (an election may be under way)".to_string();
                    if let ControllerChannel::Remote(remote) = self {
                        remote.forget_controller();
                    }
                }
                Err(problem) => last_problem = problem,
            }
            let pause = NO_CONTROLLER_BACKOFF.delay(attempts);
            attempts = attempts.saturating_add(1);
            if tokio::time::Instant::now() + pause > deadline {
                return Err(last_problem);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Waits (up to `max_wait`) for metadata newer than `after`: a delta from `after` when the member
    /// can make one, else the whole image.
    pub async fn fetch_metadata(&self, after: u64, max_wait: Duration) -> Result<ImageUpdate, String> {
        let request = MetadataFetchRequest {
            after,
            max_wait_ms: max_wait.as_millis() as u64,
            deltas: true,
        };
        match self {
            ControllerChannel::Embedded(ctx) => Ok(metadata_fetch::fetch(&ctx.node.state, &request).await),
            ControllerChannel::Remote(remote) => remote.fetch_metadata(&request, max_wait).await,
        }
    }

    /// Where the controller is, for log lines.
    pub fn describe(&self) -> String {
        match self {
            ControllerChannel::Embedded(_) => "the embedded coordinator".into(),
            ControllerChannel::Remote(remote) => {
                format!("the coordinator ensemble at {}", remote.addresses().join(","))
            }
        }
    }
}

/// Whether a registration or heartbeat failed for lack of a quorum (REQUEST_TIMED_OUT).
fn answers_no_quorum(response: &ResponseKind) -> bool {
    let code = ResponseError::RequestTimedOut.code();
    match response {
        ResponseKind::BrokerRegistration(r) => r.error_code == code,
        ResponseKind::BrokerHeartbeat(r) => r.error_code == code,
        _ => false,
    }
}

/// Whether a controller's response says "I am not the controller" (Kafka's NOT_CONTROLLER), for the
/// APIs a broker sends. Brokers send one topic per admin request, so any such result means none applied.
fn answers_not_controller(response: &ResponseKind) -> bool {
    let code = ResponseError::NotController.code();
    match response {
        ResponseKind::BrokerRegistration(r) => r.error_code == code,
        ResponseKind::BrokerHeartbeat(r) => r.error_code == code,
        ResponseKind::AllocateProducerIds(r) => r.error_code == code,
        ResponseKind::AlterPartition(r) => r.error_code == code,
        ResponseKind::AlterPartitionReassignments(r) => r.error_code == code,
        ResponseKind::CreateTopics(r) => r.topics.iter().any(|t| t.error_code == code),
        ResponseKind::DeleteTopics(r) => r.responses.iter().any(|t| t.error_code == code),
        ResponseKind::CreatePartitions(r) => r.results.iter().any(|t| t.error_code == code),
        ResponseKind::IncrementalAlterConfigs(r) => r.responses.iter().any(|t| t.error_code == code),
        ResponseKind::ElectLeaders(r) => r.error_code == code,
        ResponseKind::AlterUserScramCredentials(r) => r.results.iter().any(|u| u.error_code == code),
        ResponseKind::AlterClientQuotas(r) => r.entries.iter().any(|e| e.error_code == code),
        _ => false,
    }
}
