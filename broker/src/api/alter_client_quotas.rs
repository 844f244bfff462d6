//! AlterClientQuotas (KIP-546): forwarded to the controller, which checks each entry and keeps the
//! quotas in the metadata log (`coordinator::kafka::alter_client_quotas`). The answer waits (bounded)
//! until this broker's metadata shows the accepted changes, so the next request is measured against
//! them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::client_quotas::plan_alteration;
use crate::coordinator::kafka::alter_client_quotas::{alterations, result_for};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    // ALTER_CONFIGS on the cluster, as in Kafka: without it every entry is refused.
    if !ctx.access(broker).allows_cluster(Op::AlterConfigs) {
        let refusal = (
            ResponseError::ClusterAuthorizationFailed.code(),
            "Cluster authorization failed.".to_string(),
        );
        let entries = request
            .entries
            .iter()
            .map(|e| result_for(e, Some(refusal.clone())))
            .collect();
        return AlterClientQuotasResponse::default().with_entries(entries);
    }
    let sent = RequestKind::AlterClientQuotas(request.clone());
    let (error, message) = match broker.to_controller(ApiKey::AlterClientQuotas, 1, sent).await {
        Ok(ResponseKind::AlterClientQuotas(response)) => {
            if !request.validate_only {
                await_accepted(broker, &request, &response).await;
            }
            return response;
        }
        Ok(other) => (
            ResponseError::UnknownServerError,
            format!("unexpected answer from the controller: {other:?}"),
        ),
        Err(e) => (e.error, e.message),
    };
    // No answer from the controller: every entry gets why.
    let entries = request
        .entries
        .iter()
        .map(|entry| result_for(entry, Some((error.code(), message.clone()))))
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// Waits until this broker's metadata holds every accepted entry's values.
async fn await_accepted(broker: &Broker, request: &AlterClientQuotasRequest, response: &AlterClientQuotasResponse) {
    let accepted: Vec<_> = plan_alteration(&alterations(request))
        .into_iter()
        .zip(&response.entries)
        .filter(|(_, result)| result.error_code == 0)
        .filter_map(|(checked, _)| checked.ok())
        .collect();
    if accepted.is_empty() {
        return;
    }
    broker
        .await_metadata(|image| {
            accepted.iter().all(|(entity, changes)| {
                let values = image.client_quotas.get(entity);
                changes
                    .iter()
                    .all(|(key, value)| values.and_then(|v| v.get(key)) == value.as_ref())
            })
        })
        .await;
}
