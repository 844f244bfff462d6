//! `oxka tool topics` (kafka-topics.sh): --list, --create, --describe, --alter --partitions, --delete,
//! with Kafka 4.x's flags, output and error lines ("Error while executing topic command : ..." on
//! stdout, exit 1). `--topic` is a regular expression matched against whole names (as Kafka's
//! IncludeList: `,` separates alternatives) for every action but --create. Describing is in
//! `describe.rs`.

mod describe;
mod partitions;

use std::path::PathBuf;

use clap::Parser;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use regex::Regex;

use crate::admin::Admin;
use crate::error::{kafka_message, ToolError};
use crate::settings::ClientSettings;

const TOPIC_ALREADY_EXISTS: i16 = 36;
/// How long the cluster may take over a topic change (Kafka's AdminClient default).
const TIMEOUT_MS: i32 = 30_000;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-topics.sh",
    about = "Create, delete, describe, or change a topic (Kafka's kafka-topics.sh)"
)]
pub struct Args {
    /// REQUIRED: the Kafka server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config")]
    command_config: Option<PathBuf>,
    /// List all available topics.
    #[arg(long)]
    list: bool,
    /// Create a new topic.
    #[arg(long)]
    create: bool,
    /// List details for the given topics.
    #[arg(long)]
    describe: bool,
    /// Alter the number of partitions of a topic.
    #[arg(long)]
    alter: bool,
    /// Delete a topic.
    #[arg(long)]
    delete: bool,
    /// The topic to create, alter, describe or delete; a regular expression except with --create.
    #[arg(long)]
    topic: Option<String>,
    /// The number of partitions for the topic being created or altered.
    #[arg(long)]
    partitions: Option<i32>,
    /// The replication factor for each partition in the topic being created.
    #[arg(long = "replication-factor")]
    replication_factor: Option<i32>,
    /// A topic configuration override for the topic being created, name=value (repeatable).
    #[arg(long = "config")]
    config: Vec<String>,
    /// Replicas per partition: broker ids separated by ':' for each partition, partitions by ','.
    #[arg(long = "replica-assignment")]
    replica_assignment: Option<String>,
    /// When creating a topic, only if it does not exist already.
    #[arg(long = "if-not-exists")]
    if_not_exists: bool,
    /// When altering, deleting or describing topics, only if the topic exists.
    #[arg(long = "if-exists")]
    if_exists: bool,
    /// When describing, only partitions whose ISR is smaller than their replica set.
    #[arg(long = "under-replicated-partitions")]
    under_replicated_partitions: bool,
    /// When describing, only partitions whose leader is not available.
    #[arg(long = "unavailable-partitions")]
    unavailable_partitions: bool,
    /// When describing, only topics that have overridden configs.
    #[arg(long = "topics-with-overrides")]
    topics_with_overrides: bool,
    /// Exclude internal topics when listing or describing.
    #[arg(long = "exclude-internal")]
    exclude_internal: bool,
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    let actions = [args.list, args.create, args.describe, args.alter, args.delete];
    if actions.iter().filter(|a| **a).count() != 1 {
        return Err(ToolError::Usage(
            "Command must include exactly one action: --list, --describe, --create, --alter or --delete".to_string(),
        ));
    }
    if (args.create || args.alter || args.delete) && args.topic.is_none() {
        return Err(ToolError::Usage(
            "--topic is required with --create, --alter and --delete".to_string(),
        ));
    }
    let settings = ClientSettings::from_flags(&args.bootstrap_server, args.command_config.as_deref())?;
    let mut admin = Admin::bootstrap(&settings).await?;
    if args.create || args.alter || args.delete {
        admin = admin.into_controller().await?;
    }
    let result = if args.list {
        list(&mut admin, &args).await
    } else if args.create {
        create(&mut admin, &args).await
    } else if args.describe {
        describe::describe(&mut admin, &args).await
    } else if args.alter {
        alter(&mut admin, &args).await
    } else {
        delete(&mut admin, &args).await
    };
    match result {
        // Kafka's tool prints a failed command's cause on stdout in these words.
        Err(ToolError::Kafka(message)) => {
            println!("Error while executing topic command : {message}");
            Err(ToolError::Reported)
        }
        other => other,
    }
}

/// `--topic` as Kafka's IncludeList reads it: quotes dropped, `,` meaning `|`, matched whole.
fn topic_filter(topic: &str) -> Result<Regex, ToolError> {
    let pattern = topic.trim().trim_matches(|c| c == '\'' || c == '"').replace(',', "|");
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| ToolError::Usage(format!("--topic {topic} is not a valid regular expression: {e}")))
}

/// Topic names of a Metadata answer that `--topic` (if given) matches, without internal topics when
/// asked, sorted.
fn matching_topics(metadata: &MetadataResponse, args: &Args) -> Result<Vec<String>, ToolError> {
    let filter = args.topic.as_deref().map(topic_filter).transpose()?;
    let mut names: Vec<String> = metadata
        .topics
        .iter()
        .filter(|t| !(args.exclude_internal && t.is_internal))
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .filter(|n| filter.as_ref().is_none_or(|f| f.is_match(n)))
        .collect();
    names.sort();
    Ok(names)
}

/// Kafka's check that a named topic matched something (unless --if-exists).
fn ensure_found(names: &[String], args: &Args) -> Result<(), ToolError> {
    match &args.topic {
        Some(topic) if names.is_empty() && !args.if_exists => {
            Err(ToolError::Kafka(format!("Topic '{topic}' does not exist as expected")))
        }
        _ => Ok(()),
    }
}

async fn list(admin: &mut Admin, args: &Args) -> Result<(), ToolError> {
    let metadata = admin.metadata(None).await?;
    // Kafka's tool prints the names joined by newlines and then a newline, so an empty list is one
    // empty line.
    println!("{}", matching_topics(&metadata, args)?.join("\n"));
    Ok(())
}

async fn create(admin: &mut Admin, args: &Args) -> Result<(), ToolError> {
    let name = args.topic.clone().expect("checked in run");
    // Kafka's tool checks these before asking the cluster, in these words.
    if args.replication_factor.is_some_and(|rf| rf < 1 || rf > i16::MAX as i32) {
        return Err(ToolError::Kafka(format!(
            "The replication factor must be between 1 and {} inclusive",
            i16::MAX
        )));
    }
    if args.partitions.is_some_and(|p| p < 1) {
        return Err(ToolError::Kafka("The partitions must be greater than 0".to_string()));
    }
    let mut topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.clone())))
        .with_num_partitions(args.partitions.unwrap_or(-1))
        .with_replication_factor(args.replication_factor.map_or(-1, |rf| rf as i16));
    if let Some(assignment) = &args.replica_assignment {
        if args.partitions.is_some() || args.replication_factor.is_some() {
            return Err(ToolError::Usage(
                "--replica-assignment cannot be used with --partitions or --replication-factor".to_string(),
            ));
        }
        topic = topic
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(parse_replica_assignment(assignment)?);
    }
    let mut configs = Vec::new();
    for entry in &args.config {
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| ToolError::Usage(format!("--config {entry}: expected name=value")))?;
        configs.push(
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(key.trim().to_string()))
                .with_value(Some(StrBytes::from_string(value.trim().to_string()))),
        );
    }
    topic = topic.with_configs(configs);
    if name.contains('.') || name.contains('_') {
        println!(
            "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both."
        );
    }
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(TIMEOUT_MS);
    let response = admin.send(request, 2).await?;
    let result = response
        .topics
        .first()
        .ok_or_else(|| ToolError::Kafka(format!("the cluster answered nothing about topic {name}")))?;
    match result.error_code {
        0 => println!("Created topic {name}."),
        TOPIC_ALREADY_EXISTS if args.if_not_exists => {}
        code => return Err(ToolError::Kafka(kafka_message(code, result.error_message.as_deref()))),
    }
    Ok(())
}

/// `0:1,1:2` -> partition 0 on brokers 0 and 1, partition 1 on brokers 1 and 2.
fn parse_replica_assignment(text: &str) -> Result<Vec<CreatableReplicaAssignment>, ToolError> {
    let mut assignments = Vec::new();
    for (partition, replicas) in text.split(',').enumerate() {
        let ids: Result<Vec<BrokerId>, _> = replicas
            .split(':')
            .map(|id| id.trim().parse::<i32>().map(BrokerId))
            .collect();
        let ids =
            ids.map_err(|_| ToolError::Usage(format!("--replica-assignment {text}: '{replicas}' is not broker ids")))?;
        assignments.push(
            CreatableReplicaAssignment::default()
                .with_partition_index(partition as i32)
                .with_broker_ids(ids),
        );
    }
    Ok(assignments)
}

async fn alter(admin: &mut Admin, args: &Args) -> Result<(), ToolError> {
    let Some(count) = args.partitions else {
        return Err(ToolError::Usage(
            "--alter needs --partitions (change configs with kafka-configs)".to_string(),
        ));
    };
    let metadata = admin.metadata(None).await?;
    let names = matching_topics(&metadata, args)?;
    ensure_found(&names, args)?;
    if names.is_empty() {
        return Ok(());
    }
    let topics = names
        .iter()
        .map(|n| {
            CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(n.clone())))
                .with_count(count)
                .with_assignments(None)
        })
        .collect();
    let request = CreatePartitionsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(TIMEOUT_MS);
    let response = admin.send(request, 0).await?;
    match response.results.iter().find(|r| r.error_code != 0) {
        Some(failed) => Err(ToolError::Kafka(kafka_message(
            failed.error_code,
            failed.error_message.as_deref(),
        ))),
        None => Ok(()),
    }
}

async fn delete(admin: &mut Admin, args: &Args) -> Result<(), ToolError> {
    let metadata = admin.metadata(None).await?;
    let names = matching_topics(&metadata, args)?;
    ensure_found(&names, args)?;
    if names.is_empty() {
        return Ok(());
    }
    let topic_names: Vec<TopicName> = names
        .iter()
        .map(|n| TopicName(StrBytes::from_string(n.clone())))
        .collect();
    let request = if admin.version_of::<DeleteTopicsRequest>(1)? >= 6 {
        DeleteTopicsRequest::default().with_topics(
            topic_names
                .into_iter()
                .map(|n| DeleteTopicState::default().with_name(Some(n)))
                .collect(),
        )
    } else {
        DeleteTopicsRequest::default().with_topic_names(topic_names)
    };
    let response = admin.send(request.with_timeout_ms(TIMEOUT_MS), 1).await?;
    match response.responses.iter().find(|r| r.error_code != 0) {
        Some(failed) => Err(ToolError::Kafka(kafka_message(
            failed.error_code,
            failed.error_message.as_deref(),
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filter_matches_whole_names_like_kafka() {
        let f = topic_filter("t.*").unwrap();
        assert!(f.is_match("t1") && f.is_match("t") && !f.is_match("at1"));
        let f = topic_filter("a,b").unwrap();
        assert!(f.is_match("a") && f.is_match("b") && !f.is_match("ab"));
        assert!(topic_filter("'orders'").unwrap().is_match("orders"));
    }

    #[test]
    fn replica_assignment_is_partitions_of_broker_ids() {
        let a = parse_replica_assignment("0:1,1:2").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].partition_index, 1);
        assert_eq!(a[1].broker_ids, vec![BrokerId(1), BrokerId(2)]);
        assert!(parse_replica_assignment("0:x").is_err());
    }
}
