//! `kafka-configs.sh --describe`: for each entity a header line, then one line per config, sorted by
//! name, in Kafka 4.x's format:
//!
//! ```text
//! Dynamic configs for topic t are:
//!   retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, STATIC_BROKER_CONFIG:log.retention.hours=168}
//! ```
//!
//! Without `--all` only the entity's dynamic configs are listed (source DYNAMIC_TOPIC_CONFIG for a
//! topic, DYNAMIC_BROKER_CONFIG for a broker, DYNAMIC_DEFAULT_BROKER_CONFIG for the default), and a
//! named topic or broker that does not exist prints Kafka's notice instead. Every topic (no name) is
//! listed sorted by name, every broker sorted by id and then the default, where Kafka's tool prints
//! topics in hash-set order.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;

use super::Entity;
use crate::admin::Admin;
use crate::error::{kafka_message, ToolError};

/// Kafka's ConfigSource ids, as the admin client names them.
pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;

fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "DYNAMIC_CLIENT_METRICS_CONFIG",
        8 => "DYNAMIC_GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One described entity: the resource name (`""`: the broker default) of `entity`'s type.
pub struct Described {
    pub name: String,
    pub configs: Vec<DescribeConfigsResourceResult>,
}

pub async fn describe(admin: &mut Admin, entity: &Entity, all: bool) -> Result<(), ToolError> {
    let metadata = admin.metadata(None).await?;
    let mut brokers: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort();
    let mut topics: Vec<String> = metadata
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    topics.sort();
    let names: Vec<String> = match entity {
        Entity::Topic(Some(name)) => {
            if !all && !topics.contains(name) {
                println!("{}", missing("topics", name));
                return Ok(());
            }
            vec![name.clone()]
        }
        Entity::Topic(None) => topics,
        Entity::Broker(Some(name)) => {
            let known = name.is_empty() || brokers.iter().any(|b| b.to_string() == *name);
            if !all && !known {
                println!("{}", missing("brokers", name));
                return Ok(());
            }
            vec![name.clone()]
        }
        Entity::Broker(None) => brokers
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once(String::new()))
            .collect(),
    };
    let mut out = String::new();
    for name in names {
        let described = resource_configs(admin, entity.resource_type(), &name, true).await?;
        let configs = shown(&described, entity, all);
        out.push_str(&format_entity(entity.type_name(), &name, all, &configs));
    }
    print!("{out}");
    Ok(())
}

/// DescribeConfigs of one resource, with synonyms when asked (v1 and later: config sources).
pub async fn resource_configs(
    admin: &mut Admin,
    resource_type: i8,
    name: &str,
    synonyms: bool,
) -> Result<Described, ToolError> {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(synonyms)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)]);
    let response = admin.send(request, 1).await?;
    let result = response
        .results
        .into_iter()
        .next()
        .ok_or_else(|| ToolError::Kafka(format!("the cluster answered nothing about config resource '{name}'")))?;
    if result.error_code != 0 {
        return Err(ToolError::Kafka(kafka_message(
            result.error_code,
            result.error_message.as_deref(),
        )));
    }
    Ok(Described {
        name: name.to_string(),
        configs: result.configs,
    })
}

/// The source of the configs set on `entity` itself (what `--describe` lists without `--all`).
pub fn dynamic_source(entity: &Entity, name: &str) -> i8 {
    match entity {
        Entity::Topic(_) => DYNAMIC_TOPIC_CONFIG,
        Entity::Broker(_) if name.is_empty() => DYNAMIC_DEFAULT_BROKER_CONFIG,
        Entity::Broker(_) => DYNAMIC_BROKER_CONFIG,
    }
}

/// The configs to print, sorted by name.
fn shown<'a>(described: &'a Described, entity: &Entity, all: bool) -> Vec<&'a DescribeConfigsResourceResult> {
    let source = dynamic_source(entity, &described.name);
    let mut configs: Vec<&DescribeConfigsResourceResult> = described
        .configs
        .iter()
        .filter(|c| all || c.config_source == source)
        .collect();
    configs.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    configs
}

/// Kafka's notice for a named entity that does not exist.
fn missing(entity_type: &str, name: &str) -> String {
    format!(
        "The {} '{name}' doesn't exist and doesn't have dynamic config.",
        entity_type.trim_end_matches('s')
    )
}

/// The header and config lines of one entity.
pub fn format_entity(entity_type: &str, name: &str, all: bool, configs: &[&DescribeConfigsResourceResult]) -> String {
    let mut out = if name.is_empty() {
        format!("Default configs for {entity_type} in the cluster are:\n")
    } else {
        let which = if all { "All" } else { "Dynamic" };
        format!(
            "{which} configs for {} {name} are:\n",
            entity_type.trim_end_matches('s')
        )
    };
    for config in configs {
        let synonyms: Vec<String> = config
            .synonyms
            .iter()
            .map(|s| {
                format!(
                    "{}:{}={}",
                    source_name(s.source),
                    s.name.as_str(),
                    s.value.as_deref().unwrap_or("null")
                )
            })
            .collect();
        out.push_str(&format!(
            "  {}={} sensitive={} synonyms={{{}}}\n",
            config.name.as_str(),
            config.value.as_deref().unwrap_or("null"),
            config.is_sensitive,
            synonyms.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_configs_response::DescribeConfigsSynonym;

    use super::*;

    fn config(name: &str, value: Option<&str>, source: i8) -> DescribeConfigsResourceResult {
        DescribeConfigsResourceResult::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
            .with_config_source(source)
    }

    #[test]
    fn entities_print_as_kafka_prints_them() {
        let retention = config("retention.ms", Some("1000"), 1).with_synonyms(vec![
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1000")))
                .with_source(1),
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_static_str("log.retention.hours"))
                .with_value(Some(StrBytes::from_static_str("168")))
                .with_source(4),
        ]);
        let described = Described {
            name: "t".into(),
            configs: vec![config("segment.ms", Some("1"), 5), retention, config("a", None, 1)],
        };
        let entity = Entity::Topic(Some("t".into()));
        let text = format_entity("topics", "t", false, &shown(&described, &entity, false));
        assert_eq!(
            text,
            "Dynamic configs for topic t are:\n  a=null sensitive=false synonyms={}\n  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, STATIC_BROKER_CONFIG:log.retention.hours=168}\n"
        );
        assert_eq!(shown(&described, &entity, true).len(), 3);
        assert_eq!(
            format_entity("brokers", "", false, &[]),
            "Default configs for brokers in the cluster are:\n"
        );
        assert_eq!(
            format_entity("brokers", "1", true, &[]),
            "All configs for broker 1 are:\n"
        );
        assert_eq!(
            missing("topics", "nope"),
            "The topic 'nope' doesn't exist and doesn't have dynamic config."
        );
    }
}
