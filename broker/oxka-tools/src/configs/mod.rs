//! `oxka tool configs` (kafka-configs.sh, Kafka's ConfigCommand): `--describe` and `--alter`
//! (`--add-config`, `--add-config-file`, `--delete-config`) of the configs of topics and brokers, and of
//! the quotas of users, clients and ips and users' SCRAM credentials, with Kafka 4.x's flags, output
//! and messages. Topics and brokers: DescribeConfigs with synonyms (`describe.rs`); altering checks the
//! keys to delete against the entity's dynamic configs and sends one IncrementalAlterConfigs,
//! deletions first (`alter.rs`). Users, clients, ips: DescribeClientQuotas / AlterClientQuotas
//! (`quotas.rs`) and, for users, DescribeUserScramCredentials / AlterUserScramCredentials
//! (`scram.rs`). Against a broker that does not serve the API a command needs (the quota APIs on oxka
//! until it has quotas; describing users asks for their quotas first) the tool says so in one line.
//!
//! Errors: the messages Kafka's tool prints alone on stderr are printed alone; a request the cluster
//! refuses prints `Error while executing config command with args '...': <cause>` (Kafka prints that
//! line followed by a stack trace). Exit status 1 either way.

mod alter;
mod describe;
mod quotas;
mod scram;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
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
    about = "Describe and change the configs of topics and brokers, the quotas of users, clients and ips, and users' SCRAM credentials (Kafka's kafka-configs.sh)"
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
    /// Type of entity: topics, brokers, users, clients or ips (users and clients may be given together).
    #[arg(long = "entity-type")]
    entity_type: Vec<String>,
    /// Name of entity (topic name, broker id, user principal, client id, ip).
    #[arg(long = "entity-name")]
    entity_name: Vec<String>,
    /// The default entity of the type (brokers, users, clients, ips).
    #[arg(long = "entity-default", action = ArgAction::Count)]
    entity_default: u8,
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
    /// A user's principal (= --entity-type users --entity-name NAME).
    #[arg(long)]
    user: Option<String>,
    /// The defaults for all users (= --entity-type users --entity-default).
    #[arg(long = "user-defaults")]
    user_defaults: bool,
    /// A client id (= --entity-type clients --entity-name ID).
    #[arg(long)]
    client: Option<String>,
    /// The defaults for all clients (= --entity-type clients --entity-default).
    #[arg(long = "client-defaults")]
    client_defaults: bool,
    /// An IP address (= --entity-type ips --entity-name IP).
    #[arg(long)]
    ip: Option<String>,
    /// The defaults for all IPs (= --entity-type ips --entity-default).
    #[arg(long = "ip-defaults")]
    ip_defaults: bool,
    /// The --entity-name values and the --entity-defaults ("") in the order they were typed.
    #[arg(skip)]
    names_in_order: Option<Vec<String>>,
}

/// The entity a command is about, after Kafka's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// `None`: every topic (describe only).
    Topic(Option<String>),
    /// `Some("")`: the cluster default; `None`: every broker and the default (describe only).
    Broker(Option<String>),
}

/// What a command is about: a config resource, or the quota entities of users, clients or ips given
/// as Kafka's entity types and names lists (paired by position; a name "" is the default).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Resource(Entity),
    Quota { types: Vec<String>, names: Vec<String> },
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

/// Kafka's last line after an alteration.
fn completed(type_name: &str, name: &str) {
    if name.is_empty() {
        println!("Completed updating default config for {type_name} in the cluster.");
    } else {
        println!(
            "Completed updating config for {} {name}.",
            type_name.strip_suffix('s').unwrap_or(type_name)
        );
    }
}

/// Parses the flags as `crate::parse_and_run` does, keeping the order in which `--entity-name` and
/// `--entity-default` were typed (Kafka pairs entity types and names by position).
pub fn main(args: Vec<OsString>) -> Result<(), ToolError> {
    match parse_args(args) {
        Ok(parsed) => crate::block_on(run(parsed)),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                Err(ToolError::Reported)
            } else {
                Ok(())
            }
        }
    }
}

fn parse_args(args: Vec<OsString>) -> Result<Args, clap::Error> {
    let bin_name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let matches = Args::command().bin_name(bin_name).try_get_matches_from(args)?;
    let mut parsed = Args::from_arg_matches(&matches)?;
    let mut typed: Vec<(usize, String)> = matches
        .indices_of("entity_name")
        .into_iter()
        .flatten()
        .zip(parsed.entity_name.iter().cloned())
        .collect();
    // (A count flag has a default value, with an index of its own, when it was not typed.)
    if matches.value_source("entity_default") == Some(clap::parser::ValueSource::CommandLine) {
        typed.extend(
            matches
                .indices_of("entity_default")
                .into_iter()
                .flatten()
                .map(|i| (i, String::new())),
        );
    }
    typed.sort();
    parsed.names_in_order = Some(typed.into_iter().map(|(_, name)| name).collect());
    Ok(parsed)
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
    let target = target(args)?;
    let changes = if args.alter {
        Some(alter::Changes::from_args(args)?)
    } else {
        None
    };
    let settings = ClientSettings::from_flags(bootstrap, args.command_config.as_deref())?;
    let mut admin = Admin::bootstrap(&settings).await?;
    match (target, changes) {
        (Target::Resource(entity), None) => describe::describe(&mut admin, &entity, args.all).await,
        (Target::Resource(entity), Some(changes)) => alter::alter(&mut admin, &entity, &changes).await,
        (Target::Quota { types, names }, changes) => match changes {
            None => describe_quota_entities(&mut admin, &types, &names).await,
            Some(changes) => alter_quota_entities(&mut admin, &types, &names, &changes).await,
        },
    }
}

/// A broker that does not serve `api` (oxka serves no quota APIs yet) is named in one line, where
/// Kafka's tool would print an UnsupportedVersionException with a stack trace.
fn require(admin: &Admin, api: ApiKey, what: &str) -> Result<(), ToolError> {
    if admin.serves(api) {
        return Ok(());
    }
    Err(ToolError::Usage(format!(
        "{what} cannot be described or altered: the broker at {} does not serve {api:?}",
        admin.address()
    )))
}

/// Kafka's pairing of entity types and names: by position, a missing name matching every entity of
/// its type; more names than types is an error.
fn components(types: &[String], names: &[String]) -> Result<Vec<quotas::Component>, ToolError> {
    if names.len() > types.len() {
        return Err(ToolError::Usage(
            "More entity names specified than entity types".to_string(),
        ));
    }
    Ok(types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                quotas::Kind::from_plural(t).expect("target() admits only quota types here"),
                names.get(i).cloned(),
            )
        })
        .collect())
}

/// Quotas of the entities, then (users alone, no default) the users' SCRAM credentials.
async fn describe_quota_entities(admin: &mut Admin, types: &[String], names: &[String]) -> Result<(), ToolError> {
    require(
        admin,
        ApiKey::DescribeClientQuotas,
        &format!("quotas of {}", types.join(" and ")),
    )?;
    quotas::describe(admin, &components(types, names)?).await?;
    let users_alone = types.iter().all(|t| t == "users");
    if users_alone && !names.iter().any(String::is_empty) {
        scram::describe(admin, names).await?;
    }
    Ok(())
}

/// Kafka's rules for what may be altered where: users take quotas or SCRAM credentials (not both at
/// once, and no credentials for the default user); clients and users with clients take quotas; ips take
/// connection quotas.
async fn alter_quota_entities(
    admin: &mut Admin,
    types: &[String],
    names: &[String],
    changes: &alter::Changes,
) -> Result<(), ToolError> {
    let head = types[0].as_str();
    let quota_keys: &[&str] = if head == "ips" {
        &quotas::IP_KEYS
    } else {
        &quotas::USER_CLIENT_KEYS
    };
    let is_quota = |k: &str| quota_keys.contains(&k);
    let is_scram = |k: &str| scram::Mechanism::from_name(k).is_some();
    let added: Vec<&str> = changes.add.iter().map(|(k, _)| k.as_str()).collect();
    let deleted: Vec<&str> = changes.delete.iter().map(String::as_str).collect();
    let quota_change = added.iter().chain(&deleted).any(|k| is_quota(k));
    if head == "ips" {
        let unknown: Vec<&str> = added.iter().chain(&deleted).copied().filter(|k| !is_quota(k)).collect();
        if !unknown.is_empty() {
            return Err(ToolError::Usage(format!(
                "Only connection quota configs can be added for 'ips' using --bootstrap-server. Unexpected config names: {}",
                unknown.join(",")
            )));
        }
    } else if head == "clients" || types.len() == 2 {
        let refused =
            |keys: &[&str]| -> Vec<String> { keys.iter().filter(|k| !is_quota(k)).map(|k| k.to_string()).collect() };
        let (add, delete) = (refused(&added), refused(&deleted));
        if !add.is_empty() {
            return Err(ToolError::Usage(format!(
                "Only quota configs can be added for 'clients' using --bootstrap-server. Unexpected config names: {}",
                scala_set(&add)
            )));
        }
        if !delete.is_empty() {
            return Err(ToolError::Usage(format!(
                "Only quota configs can be deleted for 'clients' using --bootstrap-server. Unexpected config names: {}",
                scala_buffer(&delete)
            )));
        }
    } else {
        let unknown = |keys: &[&str]| -> Vec<String> {
            keys.iter()
                .filter(|k| !is_quota(k) && !is_scram(k))
                .map(|k| k.to_string())
                .collect()
        };
        let (add, delete) = (unknown(&added), unknown(&deleted));
        if !add.is_empty() {
            return Err(ToolError::Usage(format!(
                "Only quota and SCRAM credential configs can be added for 'users' using --bootstrap-server. Unexpected config names: {}",
                scala_set(&add)
            )));
        }
        if !delete.is_empty() {
            return Err(ToolError::Usage(format!(
                "Only quota and SCRAM credential configs can be deleted for 'users' using --bootstrap-server. Unexpected config names: {}",
                scala_buffer(&delete)
            )));
        }
        if added.iter().chain(&deleted).any(|k| is_scram(k)) {
            if names.iter().any(String::is_empty) {
                return Err(ToolError::Usage(
                    "The use of --entity-default or --user-defaults is not allowed with User SCRAM Credentials using --bootstrap-server.".to_string(),
                ));
            }
            if quota_change {
                return Err(ToolError::Usage(
                    "Cannot alter both quota and SCRAM credential configs simultaneously for 'users' using --bootstrap-server.".to_string(),
                ));
            }
        }
    }
    if quota_change || head == "ips" {
        require(
            admin,
            ApiKey::AlterClientQuotas,
            &format!("quotas of {}", types.join(" and ")),
        )?;
        quotas::alter(admin, &components(types, names)?, &changes.add, &changes.delete).await?;
    } else {
        let upsertions = changes
            .add
            .iter()
            .map(|(k, v)| scram::Upsertion::parse(scram::Mechanism::from_name(k).expect("checked above"), v))
            .collect::<Result<Vec<_>, _>>()?;
        let deletions: Vec<scram::Mechanism> = deleted.iter().filter_map(|k| scram::Mechanism::from_name(k)).collect();
        require(admin, ApiKey::AlterUserScramCredentials, "SCRAM credentials of users")?;
        scram::alter(admin, &names[0], &upsertions, &deletions).await?;
    }
    completed(head, &names[0]);
    Ok(())
}

/// How Scala prints a small immutable Set of config names (Kafka's tool puts one in a message).
fn scala_set(items: &[String]) -> String {
    format!("Set({})", items.join(", "))
}

/// How Scala prints the buffer of `--delete-config` names.
fn scala_buffer(items: &[String]) -> String {
    format!("ArrayBuffer({})", items.join(", "))
}

/// Kafka's entity types and names lists (ConfigCommandOptions.entityTypes / entityNames): the
/// `--entity-type`s then the shorthands' types; the `--entity-name`s and `--entity-default`s ("") in
/// the order typed, then the shorthands' names.
fn kafka_lists(args: &Args) -> (Vec<String>, Vec<String>) {
    let mut types = args.entity_type.clone();
    let mut names = args.names_in_order.clone().unwrap_or_else(|| {
        let mut names = args.entity_name.clone();
        names.extend(std::iter::repeat_n(String::new(), usize::from(args.entity_default)));
        names
    });
    let named = [
        ("topics", &args.topic),
        ("clients", &args.client),
        ("users", &args.user),
        ("brokers", &args.broker),
        ("ips", &args.ip),
    ];
    let defaults = [
        ("clients", args.client_defaults),
        ("users", args.user_defaults),
        ("brokers", args.broker_defaults),
        ("ips", args.ip_defaults),
    ];
    for (t, name) in named {
        if let Some(name) = name {
            types.push(t.to_string());
            names.push(name.clone());
        }
    }
    for (t, set) in defaults {
        if set {
            types.push(t.to_string());
            names.push(String::new());
        }
    }
    (types, names)
}

/// What the command is about, after Kafka's checks (ConfigCommandOptions.checkArgs) and with its
/// messages.
fn target(args: &Args) -> Result<Target, ToolError> {
    let usage = |m: String| Err(ToolError::Usage(m));
    let (types, names) = kafka_lists(args);
    let mut seen = Vec::new();
    let mut duplicates = Vec::new();
    for t in &types {
        if seen.contains(t) {
            duplicates.push(t.clone());
        } else {
            seen.push(t.clone());
        }
    }
    if !duplicates.is_empty() {
        return usage(format!("Duplicate entity type(s) specified: {}", duplicates.join(",")));
    }
    const KNOWN: [&str; 8] = [
        "users",
        "brokers",
        "topics",
        "clients",
        "ips",
        "client-metrics",
        "groups",
        "broker-loggers",
    ];
    if let Some(other) = types.iter().find(|t| !KNOWN.contains(&t.as_str())) {
        return usage(format!(
            "Invalid entity type {other}, the entity type must be one of {} with a --bootstrap-server or --bootstrap-controller argument",
            KNOWN.join(", ")
        ));
    }
    let Some(head) = types.first().cloned() else {
        return usage("At least one entity type must be specified".to_string());
    };
    let mut sorted = types.clone();
    sorted.sort();
    if types.len() > 1 && sorted != ["clients", "users"] {
        return usage("Only 'users' and 'clients' entity types may be specified together".to_string());
    }
    let long_form = !args.entity_type.is_empty() || !args.entity_name.is_empty() || args.entity_default > 0;
    let shorthand = args.topic.is_some()
        || args.broker.is_some()
        || args.user.is_some()
        || args.client.is_some()
        || args.ip.is_some()
        || args.broker_defaults
        || args.user_defaults
        || args.client_defaults
        || args.ip_defaults;
    if long_form && shorthand {
        return usage(
            "--entity-{type,name,default} should not be used in conjunction with specific entity flags".to_string(),
        );
    }
    let has_name = names.iter().any(|n| !n.is_empty());
    let has_default = names.iter().any(String::is_empty);
    if has_name && head == "brokers" {
        if let Some(id) = names.iter().find(|n| !n.is_empty() && n.parse::<i32>().is_err()) {
            return usage(format!(
                "The entity name for brokers must be a valid integer broker id, but it is: {id}"
            ));
        }
    }
    if has_name && head == "ips" {
        if let Some(ip) = names.iter().find(|n| !n.is_empty() && !valid_ip_entity(n)) {
            return usage(format!(
                "The entity name for ips must be a valid IP or resolvable host, but it is: {ip}"
            ));
        }
    }
    let quota_or_broker = |t: &String| matches!(t.as_str(), "users" | "clients" | "brokers" | "ips");
    if args.describe && args.entity_default > 0 && !types.iter().any(quota_or_broker) {
        return usage(format!(
            "--entity-default must not be specified with --describe of {}",
            types.join(",")
        ));
    }
    if args.alter {
        if types.iter().any(quota_or_broker) {
            if !has_name && !has_default {
                return usage(
                    "An entity-name or default entity must be specified with --alter of users, clients, brokers or ips"
                        .to_string(),
                );
            }
        } else if !has_name {
            return usage(format!(
                "An entity name must be specified with --alter of {}",
                types.join(",")
            ));
        }
    }
    match head.as_str() {
        "topics" | "brokers" if names.len() > 1 => {
            usage("An entity name must be specified for every entity type".to_string())
        }
        "topics" => Ok(Target::Resource(Entity::Topic(names.first().cloned()))),
        "brokers" => Ok(Target::Resource(Entity::Broker(names.first().cloned()))),
        "users" | "clients" | "ips" => Ok(Target::Quota { types, names }),
        other => usage(format!(
            "--entity-type {other} is not supported by this tool yet; use Apache Kafka's kafka-configs.sh for it"
        )),
    }
}

/// Kafka's `DynamicConfig.Ip.isValidIpEntity`: an IP address, or a host name that resolves.
fn valid_ip_entity(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || std::net::ToSocketAddrs::to_socket_addrs(&(name, 0)).is_ok_and(|mut a| a.next().is_some())
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
        let e = |a: &[&str]| target(&parse(a)).map_err(|e| e.to_string());
        let resource = |e: Entity| Ok(Target::Resource(e));
        assert_eq!(
            e(&["--describe", "--topic", "t"]),
            resource(Entity::Topic(Some("t".into())))
        );
        assert_eq!(
            e(&["--describe", "--entity-type", "topics"]),
            resource(Entity::Topic(None))
        );
        assert_eq!(
            e(&["--alter", "--entity-type", "brokers", "--entity-default"]),
            resource(Entity::Broker(Some(String::new())))
        );
        assert_eq!(
            e(&["--describe", "--broker-defaults"]),
            resource(Entity::Broker(Some(String::new())))
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

    #[test]
    fn quota_entities_pair_types_and_names_as_kafka_does() {
        let e = |a: &[&str]| target(&parse(a)).map_err(|e| e.to_string());
        let quota = |types: &[&str], names: &[&str]| {
            Ok(Target::Quota {
                types: types.iter().map(|t| t.to_string()).collect(),
                names: names.iter().map(|n| n.to_string()).collect(),
            })
        };
        assert_eq!(
            e(&["--describe", "--user", "alice", "--client", "app"]),
            quota(&["clients", "users"], &["app", "alice"])
        );
        assert_eq!(
            e(&["--alter", "--user-defaults", "--client", "app"]),
            quota(&["clients", "users"], &["app", ""])
        );
        assert_eq!(e(&["--describe", "--entity-type", "users"]), quota(&["users"], &[]));
        assert_eq!(
            e(&["--describe", "--entity-type", "users", "--entity-type", "ips"]),
            Err("Only 'users' and 'clients' entity types may be specified together".into())
        );
        assert_eq!(
            e(&["--alter", "--entity-type", "clients"]),
            Err(
                "An entity-name or default entity must be specified with --alter of users, clients, brokers or ips"
                    .into()
            )
        );
        assert_eq!(
            e(&["--describe", "--entity-type", "users", "--entity-type", "users"]),
            Err("Duplicate entity type(s) specified: users".into())
        );
        assert_eq!(
            e(&["--describe", "--ip", "not an ip"]),
            Err("The entity name for ips must be a valid IP or resolvable host, but it is: not an ip".into())
        );
    }

    /// `--entity-default` before `--entity-name` pairs the default with the first type: the order
    /// comes from the command line, which `parse_args` keeps.
    #[test]
    fn names_keep_the_order_they_were_typed_in() {
        let args: Vec<OsString> = [
            "kafka-configs.sh",
            "--bootstrap-server",
            "x:1",
            "--describe",
            "--entity-type",
            "users",
            "--entity-default",
            "--entity-type",
            "clients",
            "--entity-name",
            "app",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let args = parse_args(args).unwrap();
        assert_eq!(
            target(&args).map_err(|e| e.to_string()),
            Ok(Target::Quota {
                types: vec!["users".into(), "clients".into()],
                names: vec![String::new(), "app".into()]
            })
        );
    }
}
