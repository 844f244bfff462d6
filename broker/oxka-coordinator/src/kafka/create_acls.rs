//! CreateAcls on the controller: every creation is checked as Kafka's `AclControlManager` checks it
//! (`acl::validate`); those that pass become one `CreateAcls` command. Every creation gets a result, in
//! request order: its own refusal (INVALID_REQUEST), or the command's outcome.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::acl::{validate, WireBinding};
use crate::image::MetadataCommand;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub fn bindings(request: &CreateAclsRequest) -> Vec<WireBinding> {
    request
        .creations
        .iter()
        .map(|c| WireBinding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        })
        .collect()
}

pub async fn handle(ctx: &ClientContext, request: CreateAclsRequest) -> CreateAclsResponse {
    let checked: Vec<_> = bindings(&request).iter().map(validate).collect();
    let acls: Vec<_> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let outcome = if acls.is_empty() {
        Ok(())
    } else {
        propose(ctx, MetadataCommand::CreateAcls { acls }).await.map(|_| ())
    };
    let results = checked
        .into_iter()
        .map(|c| {
            let refusal = match c {
                Err(message) => Some((ResponseError::InvalidRequest.code(), message)),
                Ok(_) => outcome.clone().err(),
            };
            result_for(refusal)
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// One creation's result: success, or the refusal's code and message.
pub fn result_for(refusal: Option<(i16, String)>) -> AclCreationResult {
    match refusal {
        None => AclCreationResult::default(),
        Some((code, message)) => AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(&message))),
    }
}
