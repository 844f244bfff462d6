//! DeleteAcls: needs ALTER on the cluster; forwarded to the controller, which removes every ACL the
//! filters match (`coordinator::kafka::delete_acls`). The answer waits (bounded) until this broker's
//! metadata no longer holds them. Without an authorizer: SECURITY_DISABLED, as Kafka answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::acl::{validate, WireBinding};
use crate::coordinator::kafka::delete_acls::refused;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    if let Some((error, message)) = ctx.access(broker).acl_api_refusal(Op::Alter) {
        let results = request.filters.iter().map(|_| refused(error.code(), message)).collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let sent = RequestKind::DeleteAcls(request.clone());
    let (code, message) = match broker.to_controller(ApiKey::DeleteAcls, ctx.version, sent).await {
        Ok(ResponseKind::DeleteAcls(response)) => {
            let deleted: Vec<_> = response
                .filter_results
                .iter()
                .flat_map(|r| &r.matching_acls)
                .filter_map(|m| {
                    validate(&WireBinding {
                        resource_type: m.resource_type,
                        resource_name: m.resource_name.to_string(),
                        pattern_type: m.pattern_type,
                        principal: m.principal.to_string(),
                        host: m.host.to_string(),
                        operation: m.operation,
                        permission: m.permission_type,
                    })
                    .ok()
                })
                .collect();
            if !deleted.is_empty() {
                broker
                    .await_metadata(|image| deleted.iter().all(|a| !image.acls.contains(a)))
                    .await;
            }
            return response;
        }
        Ok(other) => (
            ResponseError::UnknownServerError.code(),
            format!("unexpected answer from the controller: {other:?}"),
        ),
        Err(e) => (e.error.code(), e.message),
    };
    let results = request.filters.iter().map(|_| refused(code, &message)).collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
