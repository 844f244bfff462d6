//! IncrementalAlterConfigs (KIP-339) for topics: SET, DELETE, APPEND and SUBTRACT on list values; for
//! brokers (dynamic broker configs, `config::dynamic`): SET and DELETE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::describe_configs::{topic_config_synonyms, unsupported_alter_target, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

type Failure = (ResponseError, String);

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let access = ctx.access(broker);
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let entry = {
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let denied = access.config_resource_denied(
                Op::AlterConfigs,
                resource.resource_type,
                resource.resource_name.as_str(),
            );
            let outcome = match (denied, resource.resource_type) {
                (Some(refusal), _) => Err(refusal),
                (None, RESOURCE_TOPIC) => {
                    alter_topic(
                        broker,
                        resource.resource_name.as_str(),
                        &resource.configs,
                        request.validate_only,
                    )
                    .await
                }
                (None, RESOURCE_BROKER) => {
                    alter_broker(
                        broker,
                        resource.resource_name.as_str(),
                        &resource.configs,
                        request.validate_only,
                    )
                    .await
                }
                (None, other) => Err(unsupported_alter_target(other)),
            };
            match outcome {
                Ok(()) => response,
                Err((error, message)) => response
                    .with_error_code(error.code())
                    .with_error_message(Some(str_bytes(&message))),
            }
        };
        responses.push(entry);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter_broker(
    broker: &Broker,
    entity: &str,
    changes: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), Failure> {
    let mut planned = Vec::with_capacity(changes.len());
    for change in changes {
        let name = change.name.to_string();
        match (change.config_operation, &change.value) {
            (SET, Some(value)) => planned.push((name, Some(value.to_string()))),
            (SET, None) => {
                return Err((ResponseError::InvalidRequest, format!("SET of {name} needs a value")));
            }
            (DELETE, _) => planned.push((name, None)),
            (APPEND | SUBTRACT, _) => {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("{name} is not a list; APPEND and SUBTRACT apply to lists"),
                ))
            }
            (other, _) => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    broker
        .alter_broker_configs(entity, &planned, validate_only)
        .await
        .map_err(|e| (e.error, e.message))
}

async fn alter_topic(
    broker: &Broker,
    topic: &str,
    changes: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), Failure> {
    let meta = broker.metadata.topic(topic).ok_or((
        ResponseError::UnknownTopicOrPartition,
        format!("Topic {topic} does not exist."),
    ))?;
    let effective = broker.log_config_for(&meta.configs).map_err(|e| (e.error, e.message))?;
    let mut configs = meta.configs.clone();
    for change in changes {
        let name = change.name.to_string();
        let value = change.value.as_ref().map(|v| v.to_string());
        match change.config_operation {
            SET => {
                let value = value.ok_or((ResponseError::InvalidRequest, format!("SET of {name} needs a value")))?;
                configs.insert(name, value);
            }
            DELETE => {
                configs.remove(&name);
            }
            APPEND | SUBTRACT => {
                if topic_config_synonyms(&name).1 != 7 {
                    return Err((
                        ResponseError::InvalidConfig,
                        format!("{name} is not a list; APPEND and SUBTRACT apply to lists"),
                    ));
                }
                let current = configs.get(&name).cloned().or_else(|| {
                    effective
                        .describe()
                        .into_iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v)
                });
                let mut items: Vec<String> = current
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for item in value
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if change.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                configs.insert(name, items.join(","));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    broker
        .set_topic_configs(topic, configs, validate_only)
        .await
        .map_err(|e| (e.error, e.message))
}
