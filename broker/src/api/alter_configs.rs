//! AlterConfigs (the legacy, replace-everything form): sets a topic's complete override set, or a
//! broker's complete set of dynamic configs (Kafka 2.8's `kafka-configs --entity-type brokers` uses it).

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::describe_configs::{unsupported_alter_target, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let access = ctx.access(broker);
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        {
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
                    let configs: BTreeMap<String, String> = resource
                        .configs
                        .iter()
                        .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                        .collect();
                    broker
                        .set_topic_configs(resource.resource_name.as_str(), configs, request.validate_only)
                        .await
                        .map_err(|e| (e.error, e.message))
                }
                (None, RESOURCE_BROKER) => {
                    let entity = resource.resource_name.as_str();
                    let current = broker
                        .metadata
                        .image()
                        .broker_configs
                        .get(entity)
                        .cloned()
                        .unwrap_or_default();
                    let wanted: BTreeMap<String, String> = resource
                        .configs
                        .iter()
                        .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                        .collect();
                    let changes: Vec<(String, Option<String>)> = wanted
                        .iter()
                        .filter(|(k, v)| current.get(*k) != Some(*v))
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .chain(
                            current
                                .keys()
                                .filter(|k| !wanted.contains_key(*k))
                                .map(|k| (k.clone(), None)),
                        )
                        .collect();
                    broker
                        .alter_broker_configs(entity, &changes, request.validate_only)
                        .await
                        .map_err(|e| (e.error, e.message))
                }
                (None, other) => Err(unsupported_alter_target(other)),
            };
            responses.push(match outcome {
                Ok(()) => response,
                Err((error, message)) => response
                    .with_error_code(error.code())
                    .with_error_message(Some(str_bytes(&message))),
            });
        }
    }
    AlterConfigsResponse::default().with_responses(responses)
}
