//! DeleteAcls on the controller: each filter is checked (`AclFilter::check`) and resolved against the
//! image to the ACLs it matches; all of them are removed by one `DeleteAcls` command. Each filter's
//! result lists the ACLs it removed, as Kafka's `AclControlManager.deleteAcls` answers.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::acl::{AclBinding, AclFilter};
use crate::image::MetadataCommand;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub fn filters(request: &DeleteAclsRequest) -> Vec<AclFilter> {
    request
        .filters
        .iter()
        .map(|f| AclFilter {
            resource_type: f.resource_type_filter,
            resource_name: f.resource_name_filter.as_ref().map(|s| s.to_string()),
            pattern_type: f.pattern_type_filter,
            principal: f.principal_filter.as_ref().map(|s| s.to_string()),
            host: f.host_filter.as_ref().map(|s| s.to_string()),
            operation: f.operation,
            permission: f.permission_type,
        })
        .collect()
}

pub async fn handle(ctx: &ClientContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let image = ctx.node.state.image();
    let matched: Vec<Result<Vec<AclBinding>, String>> = filters(&request)
        .iter()
        .map(|f| {
            f.check()
                .map(|()| image.acls.iter().filter(|a| f.matches(a)).cloned().collect())
        })
        .collect();
    let doomed: BTreeSet<AclBinding> = matched.iter().flatten().flatten().cloned().collect();
    let outcome = if doomed.is_empty() {
        Ok(())
    } else {
        let acls = doomed.into_iter().collect();
        propose(ctx, MetadataCommand::DeleteAcls { acls }).await.map(|_| ())
    };
    let results = matched
        .into_iter()
        .map(|m| match (m, &outcome) {
            (Err(message), _) => refused(ResponseError::InvalidRequest.code(), &message),
            (Ok(_), Err((code, message))) => refused(*code, message),
            (Ok(acls), Ok(())) => {
                DeleteAclsFilterResult::default().with_matching_acls(acls.iter().map(matching).collect())
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

/// A filter's result when nothing could be removed for it.
pub fn refused(code: i16, message: &str) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(code)
        .with_error_message(Some(str_bytes(message)))
}

fn matching(acl: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(str_bytes(&acl.resource_name))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(str_bytes(&acl.principal))
        .with_host(str_bytes(&acl.host))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}
