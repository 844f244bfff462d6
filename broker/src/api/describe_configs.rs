//! DescribeConfigs for topics (effective config: topic overrides over broker settings over defaults,
//! each with its source) and brokers (dynamic configs with their sources, then the settings from
//! server.properties).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::config::dynamic::DYNAMIC_BROKER_CONFIGS;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Why AlterConfigs / IncrementalAlterConfigs refuse a resource that is neither a topic nor a broker.
pub fn unsupported_alter_target(resource_type: i8) -> (ResponseError, String) {
    (
        ResponseError::InvalidRequest,
        format!("resource type {resource_type} is not supported (topics: 2, brokers: 4)"),
    )
}

// Kafka's ConfigSource values.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

// Kafka's ConfigType values.
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// Topic config name → the broker settings that supply its default, most specific first, and its type.
pub fn topic_config_synonyms(topic_key: &str) -> (&'static [&'static str], i8) {
    match topic_key {
        "segment.bytes" => (&["log.segment.bytes"], TYPE_INT),
        "segment.ms" => (&["log.roll.ms", "log.roll.hours"], TYPE_LONG),
        "retention.ms" => (
            &["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
            TYPE_LONG,
        ),
        "retention.bytes" => (&["log.retention.bytes"], TYPE_LONG),
        "max.message.bytes" => (&["message.max.bytes"], TYPE_INT),
        "index.interval.bytes" => (&["log.index.interval.bytes"], TYPE_INT),
        "segment.index.bytes" => (&["log.index.size.max.bytes"], TYPE_INT),
        "flush.messages" => (&["log.flush.interval.messages"], TYPE_LONG),
        "flush.ms" => (&["log.flush.interval.ms"], TYPE_LONG),
        "message.timestamp.type" => (&["log.message.timestamp.type"], TYPE_STRING),
        "cleanup.policy" => (&["log.cleanup.policy"], TYPE_LIST),
        "file.delete.delay.ms" => (&["log.segment.delete.delay.ms"], TYPE_LONG),
        _ => (&[], TYPE_STRING),
    }
}

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let access = ctx.access(broker);
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let wanted = |name: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let denied = access.config_resource_denied(
                Op::DescribeConfigs,
                resource.resource_type,
                resource.resource_name.as_str(),
            );
            let configs = match (denied, resource.resource_type) {
                (Some(refusal), _) => Err(refusal),
                (None, RESOURCE_TOPIC) => {
                    topic_configs(broker, resource.resource_name.as_str(), request.include_synonyms)
                }
                (None, RESOURCE_BROKER) => {
                    broker_configs(broker, resource.resource_name.as_str(), request.include_synonyms)
                }
                (None, other) => Err((
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            match configs {
                Ok(mut configs) => {
                    configs.retain(|c| wanted(c.name.as_str()));
                    if ctx.version < 3 {
                        for c in &mut configs {
                            c.config_type = 0;
                        }
                    }
                    result.with_configs(configs)
                }
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(str_bytes(&message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

type Failure = (ResponseError, String);

fn topic_configs(
    broker: &Broker,
    topic: &str,
    include_synonyms: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, Failure> {
    let meta = broker.metadata.topic(topic).ok_or((
        ResponseError::UnknownTopicOrPartition,
        format!("Topic {topic} does not exist."),
    ))?;
    let effective = broker.log_config_for(&meta.configs).map_err(|e| (e.error, e.message))?;
    let statics = &broker.config.static_settings;
    Ok(effective
        .describe()
        .into_iter()
        .map(|(name, value)| {
            let (broker_keys, config_type) = topic_config_synonyms(name);
            let mut synonyms = Vec::new();
            if let Some(v) = meta.configs.get(name) {
                synonyms.push((name.to_string(), v.clone(), SOURCE_DYNAMIC_TOPIC));
            }
            for key in broker_keys {
                if let Some(v) = statics.get(*key) {
                    synonyms.push((key.to_string(), v.clone(), SOURCE_STATIC_BROKER));
                }
            }
            let source = synonyms.first().map(|s| s.2).unwrap_or(SOURCE_DEFAULT);
            let result = DescribeConfigsResourceResult::default()
                .with_name(str_bytes(name))
                .with_value(Some(str_bytes(&value)))
                .with_config_source(source)
                .with_config_type(config_type);
            if include_synonyms {
                result.with_synonyms(
                    synonyms
                        .into_iter()
                        .map(|(n, v, s)| {
                            DescribeConfigsSynonym::default()
                                .with_name(str_bytes(&n))
                                .with_value(Some(str_bytes(&v)))
                                .with_source(s)
                        })
                        .collect(),
                )
            } else {
                result
            }
        })
        .collect())
}

/// A broker's configs: the dynamic ones (its own value, else the cluster default's, else
/// server.properties', else Kafka's default, each with its source and synonyms), then the rest of
/// server.properties (read-only). The empty name is the cluster-wide default entity: its dynamic configs.
fn broker_configs(
    broker: &Broker,
    name: &str,
    include_synonyms: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, Failure> {
    let image = broker.metadata.image();
    let defaults = image.broker_configs.get("");
    let result = |key: &str, synonyms: Vec<(String, i8)>, default: &str, read_only: bool| {
        let (value, source) = synonyms
            .first()
            .cloned()
            .unwrap_or_else(|| (default.to_string(), SOURCE_DEFAULT));
        let described = DescribeConfigsResourceResult::default()
            .with_name(str_bytes(key))
            .with_value(Some(str_bytes(&value)))
            .with_read_only(read_only)
            .with_config_source(source)
            .with_config_type(if read_only { TYPE_STRING } else { TYPE_LONG });
        if !include_synonyms {
            return described;
        }
        described.with_synonyms(
            synonyms
                .into_iter()
                .map(|(v, s)| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(key))
                        .with_value(Some(str_bytes(&v)))
                        .with_source(s)
                })
                .collect(),
        )
    };
    if name.is_empty() {
        return Ok(defaults
            .into_iter()
            .flatten()
            .map(|(k, v)| result(k, vec![(v.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER)], "", false))
            .collect());
    }
    if name.parse::<i32>().ok() != Some(broker.broker_id()) {
        return Err((
            ResponseError::InvalidRequest,
            format!("Broker {name} is not this broker ({}).", broker.broker_id()),
        ));
    }
    let own = image.broker_configs.get(name);
    let statics = &broker.config.static_settings;
    let mut configs: Vec<DescribeConfigsResourceResult> = DYNAMIC_BROKER_CONFIGS
        .iter()
        .map(|(key, default)| {
            let synonyms = [
                (own.and_then(|c| c.get(*key)), SOURCE_DYNAMIC_BROKER),
                (defaults.and_then(|c| c.get(*key)), SOURCE_DYNAMIC_DEFAULT_BROKER),
                (statics.get(*key), SOURCE_STATIC_BROKER),
            ]
            .into_iter()
            .filter_map(|(v, s)| v.map(|v| (v.clone(), s)))
            .collect();
            result(key, synonyms, default, false)
        })
        .collect();
    configs.extend(
        statics
            .iter()
            .filter(|(key, _)| !DYNAMIC_BROKER_CONFIGS.iter().any(|(k, _)| k == key))
            .map(|(key, value)| result(key, vec![(value.clone(), SOURCE_STATIC_BROKER)], "", true)),
    );
    Ok(configs)
}
