//! CreateAcls: needs ALTER on the cluster; forwarded to the controller, which checks each binding and
//! keeps the ACLs in the metadata log (`coordinator::kafka::create_acls`), as a KRaft broker forwards
//! it. The answer waits (bounded) until this broker's metadata holds the new ACLs, so a request right
//! after is decided by them. Without an authorizer: SECURITY_DISABLED, as Kafka answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::acl::validate;
use crate::coordinator::kafka::create_acls::{bindings, result_for};

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: CreateAclsRequest) -> CreateAclsResponse {
    if let Some((error, message)) = ctx.access(broker).acl_api_refusal(Op::Alter) {
        let refusal = (error.code(), message.to_string());
        let results = request
            .creations
            .iter()
            .map(|_| result_for(Some(refusal.clone())))
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let sent = RequestKind::CreateAcls(request.clone());
    let refusal = match broker.to_controller(ApiKey::CreateAcls, ctx.version, sent).await {
        Ok(ResponseKind::CreateAcls(response)) => {
            let created: Vec<_> = bindings(&request)
                .iter()
                .zip(&response.results)
                .filter(|(_, r)| r.error_code == 0)
                .filter_map(|(w, _)| validate(w).ok())
                .collect();
            if !created.is_empty() {
                broker
                    .await_metadata(|image| created.iter().all(|a| image.acls.contains(a)))
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
    let results = request
        .creations
        .iter()
        .map(|_| result_for(Some(refusal.clone())))
        .collect();
    CreateAclsResponse::default().with_results(results)
}
