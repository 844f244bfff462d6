//! IncrementalAlterConfigs on the controller, for topic resources: SET and DELETE of topic-level
//! overrides become one `AlterTopicConfigs` command per topic. Broker resources (dynamic broker configs)
//! are not kept by the coordinator yet and are refused.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::coordinator::image::MetadataCommand;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

const TOPIC: i8 = 2;
const SET: i8 = 0;
const DELETE: i8 = 1;

pub async fn handle(ctx: &ClientContext, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in request.resources {
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        responses.push(match alter(ctx, resource, request.validate_only).await {
            Ok(()) => response,
            Err((code, message)) => response
                .with_error_code(code)
                .with_error_message(Some(str_bytes(&message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter(ctx: &ClientContext, resource: AlterConfigsResource, validate_only: bool) -> Result<(), (i16, String)> {
    if resource.resource_type != TOPIC {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!(
                "the coordinator keeps topic configs only (resource type 2), not resource type {}",
                resource.resource_type
            ),
        ));
    }
    let name = resource.resource_name.to_string();
    if !ctx.node.state.image().topics.contains_key(&name) {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("topic '{name}' does not exist"),
        ));
    }
    let (mut set, mut delete) = (BTreeMap::new(), Vec::new());
    for c in resource.configs {
        match (c.config_operation, c.value) {
            (SET, Some(value)) => {
                set.insert(c.name.to_string(), value.to_string());
            }
            (DELETE, _) => delete.push(c.name.to_string()),
            (op, _) => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!(
                        "operation {op} on {} is not supported by the coordinator yet (SET with a value, DELETE)",
                        c.name.as_str()
                    ),
                ))
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    propose(ctx, MetadataCommand::AlterTopicConfigs { name, set, delete })
        .await
        .map(|_| ())
}
