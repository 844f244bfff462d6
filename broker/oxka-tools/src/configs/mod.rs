//! `oxka tool configs` (kafka-configs.sh, Kafka's ConfigCommand): `--describe` and `--alter`
//! (`--add-config`, `--add-config-file`, `--delete-config`) of the configs of topics and brokers, with
//! Kafka 4.x's flags, output and messages. Describing reads DescribeConfigs with synonyms
//! (`describe.rs`); altering checks the keys to delete against the entity's dynamic configs and sends
//! one IncrementalAlterConfigs, deletions first (`alter.rs`), as Kafka's tool does.
//!
//! Users, clients and ips (quotas and SCRAM credentials) are not handled by this tool: against a broker
//! that does not serve DescribeClientQuotas (oxka) it says so; against one that does, it says to use
//! Kafka's tool. Errors: the messages Kafka's tool prints alone on stderr are printed alone; a request
//! the cluster refuses prints `Error while executing config command with args '...': <cause>` (Kafka
//! prints that line followed by a stack trace). Exit status 1 either way.

mod alter;
mod describe;

use std::path::PathBuf;

use clap::Parser;
use kafka_protocol::messages::ApiKey;

use crate::admin::Admin;
use crate::error::ToolError;
use crate::settings::ClientSettings;

/// ConfigResource types on the wire.
const TOPIC_RESOURCE: i8 = 2;
const BROKER_RESOURCE: i8 = 4;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-configs.sh",
    about = "Describe and change the configs of topics and brokers (Kafka's kafka-configs.sh)"
)]
pub struct Args {
    /// REQUIRED: the Kafka server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: Option<String>,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config")]
    command_config: Option<PathBuf>,
    /// List configs for the given entity.
    #[arg(long)]
    describe: bool,
    /// Alter the configuration for the entity.
    #[arg(long)]
    alter: bool,
    /// List all configs for the given entity, including static configs and defaults.
    #[arg(long)]
    all: bool,
    /// Type of entity: topics or brokers (users, clients and ips are recognised and refused).
    #[arg(long = "entity-type")]
    entity_type: Vec<String>,
    /// Name of entity (topic name, broker id).
    #[arg(long = "entity-name")]
    entity_name: Vec<String>,
    /// The cluster-wide default (brokers).
    #[arg(long = "entity-default")]
    entity_default: bool,
    /// Configs to add: 'k1=v1,k2=[v1,v2,v2],k3=v3' (square brackets group values containing commas).
    #[arg(long = "add-config")]
    add_config: Option<String>,
    /// A properties file with configs to add.
    #[arg(long = "add-config-file")]
    add_config_file: Option<PathBuf>,
    /// Config keys to remove: 'k1,k2' (repeatable).
    #[arg(long = "delete-config", value_delimiter = ',')]
    delete_config: Vec<String>,
    /// The topic's name (= --entity-type topics --entity-name NAME).
    #[arg(long)]
    topic: Option<String>,
    /// The broker's id (= --entity-type brokers --entity-name ID).
    #[arg(long)]
    broker: Option<String>,
    /// The config defaults for all brokers (= --entity-type brokers --entity-default).
    #[arg(long = "broker-defaults")]
    broker_defaults: bool,
    /// A user's principal (quotas and SCRAM credentials: not handled by this tool).
    #[arg(long)]
    user: Option<String>,
    /// A client id (quotas: not handled by this tool).
    #[arg(long)]
    client: Option<String>,
}

/// The entity a command is about, after Kafka's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// `None`: every topic (describe only).
    Topic(Option<String>),
    /// `Some("")`: the cluster default; `None`: every broker and the default (describe only).
    Broker(Option<String>),
}

impl Entity {
    fn resource_type(&self) -> i8 {
        match self {
            Entity::Topic(_) => TOPIC_RESOURCE,
            Entity::Broker(_) => BROKER_RESOURCE,
        }
    }

    /// The plural Kafka uses on the command line and in messages.
    fn type_name(&self) -> &'static str {
        match self {
            Entity::Topic(_) => "topics",
            Entity::Broker(_) => "brokers",
        }
    }
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    let result = configs(&args).await;
    match result {
        // Kafka's tool prints these (its IllegalArgument and InvalidConfiguration exceptions) alone.
        Err(ToolError::Usage(message)) => {
            eprintln!("{message}");
            Err(ToolError::Reported)
        }
        Err(ToolError::Kafka(message)) => {
            let typed: Vec<String> = std::env::args().skip(3).collect();
            eprintln!(
                "Error while executing config command with args '{}': {message}",
                typed.join(" ")
            );
            Err(ToolError::Reported)
        }
        other => other,
    }
}

async fn configs(args: &Args) -> Result<(), ToolError> {
    if usize::from(args.describe) + usize::from(args.alter) != 1 {
        return Err(ToolError::Usage(
            "Command must include exactly one action: --describe, --alter".to_string(),
        ));
    }
    let Some(bootstrap) = &args.bootstrap_server else {
        return Err(ToolError::Usage(
            "Either --bootstrap-server or --bootstrap-controller must be specified.".to_string(),
        ));
    };
    let quota_types = quota_entity_types(args);
    let entity = if quota_types.is_empty() {
        Some(entity(args)?)
    } else {
        None
    };
    let settings = ClientSettings::from_flags(bootstrap, args.command_config.as_deref())?;
    let mut admin = Admin::bootstrap(&settings).await?;
    let Some(entity) = entity else {
        return Err(quotas_unsupported(&admin, &quota_types));
    };
    if args.describe {
        describe::describe(&mut admin, &entity, args.all).await
    } else {
        let changes = alter::Changes::from_args(args)?;
        alter::alter(&mut admin, &entity, &changes).await
    }
}

/// users, clients or ips named on the command line.
fn quota_entity_types(args: &Args) -> Vec<String> {
    let mut types: Vec<String> = args
        .entity_type
        .iter()
        .filter(|t| matches!(t.as_str(), "users" | "clients" | "ips"))
        .cloned()
        .collect();
    if args.user.is_some() {
        types.push("users".to_string());
    }
    if args.client.is_some() {
        types.push("clients".to_string());
    }
    types
}

/// Quotas and SCRAM credentials are Kafka features oxka's tool does not manage; say which.
fn quotas_unsupported(admin: &Admin, types: &[String]) -> ToolError {
    let what = types.join(" and ");
    if admin.serves(ApiKey::DescribeClientQuotas) {
        ToolError::Usage(format!(
            "configs of {what} (quotas, SCRAM credentials) are not supported by this tool yet; use Apache Kafka's kafka-configs.sh for them"
        ))
    } else {
        ToolError::Usage(format!(
            "configs of {what} (quotas, SCRAM credentials) cannot be described or altered: the broker at {} does not serve DescribeClientQuotas or DescribeUserScramCredentials",
            admin.address()
        ))
    }
}

/// The entity from `--entity-type/--entity-name/--entity-default` or the shorthands, with Kafka's
/// checks and messages.
fn entity(args: &Args) -> Result<Entity, ToolError> {
    let usage = |m: String| Err(ToolError::Usage(m));
    let long_form = !args.entity_type.is_empty() || !args.entity_name.is_empty() || args.entity_default;
    let shorthand = args.topic.is_some() || args.broker.is_some() || args.broker_defaults;
    if long_form && shorthand {
        return usage(
            "--entity-{type,name,default} should not be used in conjunction with specific entity flags".to_string(),
        );
    }
    let mut types = args.entity_type.clone();
    let mut name: Option<String> = args.entity_name.first().cloned();
    if args.entity_default {
        name = Some(String::new());
    }
    if let Some(topic) = &args.topic {
        types.push("topics".to_string());
        name = Some(topic.clone());
    }
    if let Some(broker) = &args.broker {
        types.push("brokers".to_string());
        name = Some(broker.clone());
    }
    if args.broker_defaults {
        types.push("brokers".to_string());
        name = Some(String::new());
    }
    let mut distinct = types.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != types.len() {
        return usage(format!("Duplicate entity type(s) specified: {}", types.join(",")));
    }
    let Some(entity_type) = types.first() else {
        return usage("At least one entity type must be specified".to_string());
    };
    if types.len() > 1 {
        return usage("Only 'users' and 'clients' entity types may be specified together".to_string());
    }
    if args.entity_name.len() + usize::from(args.entity_default) > 1 {
        return usage("An entity name must be specified for every entity type".to_string());
    }
    match entity_type.as_str() {
        "topics" => {
            if args.entity_default {
                return usage("--entity-default must not be specified with --describe of topics".to_string());
            }
            if args.alter && name.is_none() {
                return usage("An entity name must be specified with --alter of topics".to_string());
            }
            Ok(Entity::Topic(name))
        }
        "brokers" => {
            if let Some(id) = name.as_deref().filter(|n| !n.is_empty()) {
                if id.parse::<i32>().is_err() {
                    return usage(format!(
                        "The entity name for brokers must be a valid integer broker id, but it is: {id}"
                    ));
                }
            }
            if args.alter && name.is_none() {
                return usage(
                    "An entity-name or default entity must be specified with --alter of users, clients, brokers or ips"
                        .to_string(),
                );
            }
            Ok(Entity::Broker(name))
        }
        "broker-loggers" | "client-metrics" | "groups" => usage(format!(
            "--entity-type {entity_type} is not supported by this tool yet; use Apache Kafka's kafka-configs.sh for it"
        )),
        other => usage(format!(
            "Invalid entity type {other}, the entity type must be one of users, brokers, topics, clients, ips, client-metrics, groups, broker-loggers with a --bootstrap-server or --bootstrap-controller argument"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let mut full = vec!["kafka-configs.sh", "--bootstrap-server", "x:1"];
        full.extend_from_slice(args);
        Args::try_parse_from(full).unwrap()
    }

    #[test]
    fn entities_come_from_the_long_form_or_the_shorthands() {
        let e = |a: &[&str]| entity(&parse(a)).map_err(|e| e.to_string());
        assert_eq!(e(&["--describe", "--topic", "t"]), Ok(Entity::Topic(Some("t".into()))));
        assert_eq!(e(&["--describe", "--entity-type", "topics"]), Ok(Entity::Topic(None)));
        assert_eq!(
            e(&["--alter", "--entity-type", "brokers", "--entity-default"]),
            Ok(Entity::Broker(Some(String::new())))
        );
        assert_eq!(
            e(&["--describe", "--broker-defaults"]),
            Ok(Entity::Broker(Some(String::new())))
        );
        assert_eq!(
            e(&["--describe", "--broker", "x"]),
            Err("The entity name for brokers must be a valid integer broker id, but it is: x".into())
        );
        assert_eq!(
            e(&["--describe"]),
            Err("At least one entity type must be specified".into())
        );
        assert!(e(&["--describe", "--topic", "t", "--entity-type", "topics"]).is_err());
        assert!(e(&["--alter", "--entity-type", "topics"]).is_err());
    }
}
