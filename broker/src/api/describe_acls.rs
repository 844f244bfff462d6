//! DescribeAcls: needs DESCRIBE on the cluster; answered from this broker's metadata, the ACLs the
//! filter matches grouped by resource pattern, as Kafka answers. Without an authorizer:
//! SECURITY_DISABLED.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::coordinator::acl::AclFilter;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let refused = |error: ResponseError, message: &str| {
        DescribeAclsResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Some((error, message)) = ctx.access(broker).acl_api_refusal(Op::Describe) {
        return refused(error, message);
    }
    let filter = AclFilter {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.map(|s| s.to_string()),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.map(|s| s.to_string()),
        host: request.host_filter.map(|s| s.to_string()),
        operation: request.operation,
        permission: request.permission_type,
    };
    if let Err(message) = filter.check() {
        return refused(ResponseError::InvalidRequest, &message);
    }
    let image = broker.metadata.image();
    let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.iter().filter(|a| filter.matches(a)) {
        resources
            .entry((acl.resource_type, acl.resource_name.clone(), acl.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(&acl.principal))
                    .with_host(str_bytes(&acl.host))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(str_bytes(&name))
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}
