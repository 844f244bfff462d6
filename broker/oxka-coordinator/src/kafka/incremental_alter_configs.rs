//! IncrementalAlterConfigs on the controller: SET and DELETE of topic-level overrides become one
//! `AlterTopicConfigs` command per topic; of dynamic broker configs (resource type 4, a broker id or ""
//! for all brokers), one `AlterBrokerConfigs` command, after `config::dynamic` accepts every SET.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::image::MetadataCommand;
use oxka_config::dynamic;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
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
    let name = resource.resource_name.to_string();
    match resource.resource_type {
        TOPIC if !ctx.node.state.image().topics.contains_key(&name) => {
            return Err((
                ResponseError::UnknownTopicOrPartition.code(),
                format!("topic '{name}' does not exist"),
            ))
        }
        TOPIC => {}
        BROKER => dynamic::validate_entity(&name).map_err(|m| (ResponseError::InvalidRequest.code(), m))?,
        other => {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("the coordinator keeps topic (2) and broker (4) configs, not resource type {other}"),
            ))
        }
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
    if resource.resource_type == BROKER {
        for (key, value) in &set {
            dynamic::validate(&name, key, value).map_err(|e| e.into_code_and_message())?;
        }
    }
    if validate_only {
        return Ok(());
    }
    let command = if resource.resource_type == BROKER {
        MetadataCommand::AlterBrokerConfigs {
            entity: name,
            set,
            delete,
        }
    } else {
        MetadataCommand::AlterTopicConfigs { name, set, delete }
    };
    propose(ctx, command).await.map(|_| ())
}
