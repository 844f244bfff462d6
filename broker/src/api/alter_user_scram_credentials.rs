//! AlterUserScramCredentials (KIP-554): forwarded to the controller, which checks each user's change
//! and keeps the credentials in the metadata log (`coordinator::kafka::alter_user_scram_credentials`),
//! as a KRaft broker forwards it. The answer waits (bounded) until this broker's metadata shows the
//! accepted changes, so a login or a describe through this broker right after sees them.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::VersionRange;
use oxka_protocol::scram::Mechanism;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // ALTER on the cluster, as in Kafka: without it every user is refused.
    if !ctx.access(broker).allows_cluster(Op::Alter) {
        return refused_all(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        );
    }
    let sent = RequestKind::AlterUserScramCredentials(request.clone());
    let (error, message) = match broker.to_controller(ApiKey::AlterUserScramCredentials, 0, sent).await {
        Ok(ResponseKind::AlterUserScramCredentials(response)) => {
            await_accepted(broker, &request, &response).await;
            return response;
        }
        Ok(other) => (
            ResponseError::UnknownServerError,
            format!("unexpected answer from the controller: {other:?}"),
        ),
        Err(e) => (e.error, e.message),
    };
    // No answer from the controller: every user named gets why.
    refused_all(&request, error, &message)
}

/// Every user the request names, refused with `error` and `message`.
fn refused_all(
    request: &AlterUserScramCredentialsRequest,
    error: ResponseError,
    message: &str,
) -> AlterUserScramCredentialsResponse {
    let users: BTreeSet<String> = request
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(request.upsertions.iter().map(|u| u.name.to_string()))
        .collect();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(&user))
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// Waits until this broker's metadata holds every accepted upsertion (with its salt) and none of the
/// accepted deletions.
async fn await_accepted(
    broker: &Broker,
    request: &AlterUserScramCredentialsRequest,
    response: &AlterUserScramCredentialsResponse,
) {
    let accepted: BTreeSet<&str> = response
        .results
        .iter()
        .filter(|r| r.error_code == 0)
        .map(|r| r.user.as_str())
        .collect();
    let upserted: Vec<(String, Mechanism, Vec<u8>)> = request
        .upsertions
        .iter()
        .filter(|u| accepted.contains(u.name.as_str()))
        .filter_map(|u| Some((u.name.to_string(), Mechanism::from_wire(u.mechanism)?, u.salt.to_vec())))
        .collect();
    let deleted: Vec<(String, Mechanism)> = request
        .deletions
        .iter()
        .filter(|d| accepted.contains(d.name.as_str()))
        .filter_map(|d| Some((d.name.to_string(), Mechanism::from_wire(d.mechanism)?)))
        .collect();
    if upserted.is_empty() && deleted.is_empty() {
        return;
    }
    broker
        .await_metadata(|image| {
            let credential =
                |user: &str, mechanism: &Mechanism| image.scram_credentials.get(user).and_then(|c| c.get(mechanism));
            upserted
                .iter()
                .all(|(user, mechanism, salt)| credential(user, mechanism).is_some_and(|c| &c.salt == salt))
                && deleted
                    .iter()
                    .all(|(user, mechanism)| credential(user, mechanism).is_none())
        })
        .await;
}
