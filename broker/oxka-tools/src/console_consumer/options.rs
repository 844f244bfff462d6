//! The console consumer's flags (Kafka's ConsoleConsumerOptions) and their checks, with Kafka's
//! messages, turned once into validated `Settings`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use regex::Regex;

use super::fetcher::Start;
use super::format::Formatter;
use super::group::GroupConfig;
use crate::client_props::{self, Props};
use crate::error::ToolError;
use crate::settings::ClientSettings;

/// Kafka's default (and only built-in) `--formatter`.
const DEFAULT_FORMATTER: &str = "org.apache.kafka.tools.consumer.DefaultMessageFormatter";

#[derive(Parser, Debug)]
#[command(
    name = "kafka-console-consumer.sh",
    about = "Print the records of Kafka topics on standard output (Kafka's kafka-console-consumer.sh)"
)]
pub struct Args {
    /// REQUIRED: the server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: Option<String>,
    /// The topic to consume.
    #[arg(long)]
    topic: Option<String>,
    /// A regular expression of the topics to consume (instead of --topic).
    #[arg(long)]
    include: Option<String>,
    /// The partition to consume (with --topic; no group). Starts at the end unless --offset says.
    #[arg(long)]
    partition: Option<i32>,
    /// With --partition: a non-negative offset, earliest or latest (default).
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<String>,
    /// Start at the earliest record when the group has no committed offset (auto.offset.reset=earliest).
    #[arg(long = "from-beginning")]
    from_beginning: bool,
    /// The consumer group (committed offsets are continued from and committed).
    #[arg(long)]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long = "max-messages", allow_hyphen_values = true)]
    max_messages: Option<i64>,
    /// Stop when no record arrived for this many milliseconds.
    #[arg(long = "timeout-ms", allow_hyphen_values = true)]
    timeout_ms: Option<i64>,
    /// Formatter properties key=value: print.timestamp, print.key, print.offset, print.partition,
    /// print.headers, print.value, print.epoch, key.separator, line.separator, headers.separator,
    /// null.literal.
    #[arg(long)]
    property: Vec<String>,
    /// A properties file for the formatter (--property wins).
    #[arg(long = "formatter-config")]
    formatter_config: Option<PathBuf>,
    /// Only org.apache.kafka.tools.consumer.DefaultMessageFormatter (the default) is supported.
    #[arg(long)]
    formatter: Option<String>,
    /// StringDeserializer or ByteArrayDeserializer (both print the bytes).
    #[arg(long = "key-deserializer")]
    key_deserializer: Option<String>,
    /// StringDeserializer or ByteArrayDeserializer (both print the bytes).
    #[arg(long = "value-deserializer")]
    value_deserializer: Option<String>,
    /// read_uncommitted (default) or read_committed.
    #[arg(long = "isolation-level")]
    isolation_level: Option<String>,
    /// Consumer properties key=value: group.id, auto.offset.reset, enable.auto.commit,
    /// auto.commit.interval.ms, session.timeout.ms, heartbeat.interval.ms, max.poll.interval.ms,
    /// max.partition.fetch.bytes, isolation.level, allow.auto.create.topics, client.id,
    /// request.timeout.ms (security settings are refused).
    #[arg(long = "consumer-property")]
    consumer_property: Vec<String>,
    /// A consumer properties file (--consumer-property wins).
    #[arg(long = "consumer.config")]
    consumer_config: Option<PathBuf>,
    /// Accepted for compatibility; a record that cannot be printed does not exist here.
    #[arg(long = "skip-message-on-error")]
    skip_message_on_error: bool,
}

#[derive(Debug, Clone)]
pub enum Subscription {
    Topic(String),
    Pattern(Regex),
}

#[derive(Debug, Clone)]
pub enum Mode {
    Assign {
        topic: String,
        partition: i32,
        start: Start,
    },
    Subscribe(Subscription),
}

/// Everything the consumer needs, validated.
pub struct Settings {
    pub client: ClientSettings,
    pub mode: Mode,
    pub group: Option<GroupConfig>,
    pub formatter: Formatter,
    pub reset: Start,
    pub isolation_level: i8,
    pub max_messages: Option<u64>,
    pub timeout: Option<Duration>,
    pub auto_commit: bool,
    pub auto_commit_interval: Duration,
    pub auto_create: bool,
    pub partition_max_bytes: i32,
}

fn usage(message: impl Into<String>) -> ToolError {
    ToolError::Usage(message.into())
}

pub fn settings(args: &Args) -> Result<Settings, ToolError> {
    if args.topic.is_some() == args.include.is_some() {
        return Err(usage("Exactly one of --include/--topic is required."));
    }
    if args.partition.is_some() {
        if args.topic.is_none() {
            return Err(usage("The topic is required when partition is specified."));
        }
        if args.from_beginning && args.offset.is_some() {
            return Err(usage("Options from-beginning and offset cannot be specified together."));
        }
    } else if args.offset.is_some() {
        return Err(usage("The partition is required when offset is specified."));
    }
    let Some(bootstrap) = &args.bootstrap_server else {
        return Err(usage("Missing required argument \"[bootstrap-server]\""));
    };
    if let Some(class) = args.formatter.as_deref().filter(|c| *c != DEFAULT_FORMATTER) {
        return Err(usage(format!(
            "--formatter {class}: only {DEFAULT_FORMATTER} is supported natively; use Kafka's tool for other formatters"
        )));
    }
    let mut props = client_props::load(
        args.consumer_config.as_deref(),
        &args.consumer_property,
        "--consumer-property",
    )?;
    let group_id = group_id(args, &props)?;
    if group_id.is_some() && args.partition.is_some() {
        return Err(usage("Options group and partition cannot be specified together."));
    }
    let reset = reset_policy(args, &mut props)?;
    if let Some(level) = &args.isolation_level {
        props.insert("isolation.level".to_string(), level.clone());
    }
    let isolation_level = match props.get("isolation.level").map_or("read_uncommitted", |s| s.trim()) {
        "read_uncommitted" => 0,
        "read_committed" => 1,
        other => {
            return Err(usage(format!(
                "Invalid value {other} for configuration isolation.level: String must be one of: read_committed, read_uncommitted"
            )))
        }
    };
    let client = client_props::settings(bootstrap, &props, "console-consumer")?;
    let formatter = Formatter::configure(&formatter_props(args)?).map_err(usage)?;
    let ms = |key: &str, default: u64| client_props::number(&props, key, default);
    let (group, auto_commit) = match &group_id {
        Some(id) => (
            id.clone(),
            client_props::flag(&props, "enable.auto.commit").unwrap_or(true),
        ),
        // Kafka's tool: a random group whose offsets are not meant to be used again.
        None => (
            format!("console-consumer-{}", random_below(100_000)),
            client_props::flag(&props, "enable.auto.commit").unwrap_or(false),
        ),
    };
    let mode = match (&args.topic, args.partition, &args.include) {
        (Some(topic), Some(partition), _) => Mode::Assign {
            topic: topic.clone(),
            partition,
            start: offset_start(args)?,
        },
        (Some(topic), None, _) => Mode::Subscribe(Subscription::Topic(topic.clone())),
        (None, _, Some(pattern)) => Mode::Subscribe(Subscription::Pattern(
            Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| usage(format!("--include {pattern}: not a regular expression: {e}")))?,
        )),
        (None, _, None) => unreachable!("checked above"),
    };
    let group = matches!(mode, Mode::Subscribe(_)).then(|| GroupConfig {
        group_id: group,
        session_timeout_ms: ms("session.timeout.ms", 45_000).unwrap_or(45_000) as i32,
        rebalance_timeout_ms: ms("max.poll.interval.ms", 300_000).unwrap_or(300_000) as i32,
        heartbeat_interval: Duration::from_millis(ms("heartbeat.interval.ms", 3_000).unwrap_or(3_000)),
    });
    Ok(Settings {
        client,
        mode,
        group,
        formatter,
        reset,
        isolation_level,
        max_messages: args.max_messages.filter(|m| *m >= 0).map(|m| m as u64),
        timeout: args
            .timeout_ms
            .filter(|t| *t >= 0)
            .map(|t| Duration::from_millis(t as u64)),
        auto_commit,
        auto_commit_interval: Duration::from_millis(ms("auto.commit.interval.ms", 5_000)?),
        auto_create: client_props::flag(&props, "allow.auto.create.topics").unwrap_or(true),
        partition_max_bytes: ms("max.partition.fetch.bytes", 1_048_576)? as i32,
    })
}

/// `--group`, `group.id` in the file or in a flag: all that are given must agree (Kafka's check).
fn group_id(args: &Args, props: &Props) -> Result<Option<String>, ToolError> {
    let mut ids: Vec<String> = Vec::new();
    for id in [args.group.clone(), props.get("group.id").cloned()]
        .into_iter()
        .flatten()
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > 1 {
        let quoted: Vec<String> = ids.iter().map(|g| format!("'{g}'")).collect();
        return Err(usage(format!(
            "The group ids provided in different places (directly using '--group', via '--consumer-property', or via '--consumer.config') do not match. Detected group ids: {}",
            quoted.join(", ")
        )));
    }
    Ok(ids.pop())
}

/// `auto.offset.reset`, with `--from-beginning` as Kafka's tool reads them together.
fn reset_policy(args: &Args, props: &mut Props) -> Result<Start, ToolError> {
    let value = match props.get("auto.offset.reset") {
        Some(v) if args.from_beginning && v != "earliest" => {
            return Err(usage(format!(
                "Can't simultaneously specify --from-beginning and 'auto.offset.reset={v}', please remove one option"
            )))
        }
        Some(v) => v.clone(),
        None if args.from_beginning => "earliest".to_string(),
        None => "latest".to_string(),
    };
    match value.as_str() {
        "earliest" => Ok(Start::Earliest),
        "latest" => Ok(Start::Latest),
        "none" => Ok(Start::Fail),
        other => Err(usage(format!(
            "Invalid value {other} for configuration auto.offset.reset: the value must be earliest, latest or none"
        ))),
    }
}

/// Where `--partition` starts: `--offset`, else the beginning with `--from-beginning`, else the end.
fn offset_start(args: &Args) -> Result<Start, ToolError> {
    let Some(text) = &args.offset else {
        return Ok(if args.from_beginning {
            Start::Earliest
        } else {
            Start::Latest
        });
    };
    match text.to_ascii_lowercase().as_str() {
        "earliest" => Ok(Start::Earliest),
        "latest" => Ok(Start::Latest),
        _ => match text.parse::<i64>() {
            Ok(offset) if offset >= 0 => Ok(Start::Offset(offset)),
            _ => Err(usage(format!(
                "The provided offset value '{text}' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long."
            ))),
        },
    }
}

fn formatter_props(args: &Args) -> Result<Props, ToolError> {
    let mut props = client_props::load(args.formatter_config.as_deref(), &[], "--formatter-config")?;
    if let Some(d) = args.key_deserializer.as_ref().filter(|d| !d.is_empty()) {
        props.insert("key.deserializer".to_string(), d.clone());
    }
    if let Some(d) = args.value_deserializer.as_ref().filter(|d| !d.is_empty()) {
        props.insert("value.deserializer".to_string(), d.clone());
    }
    props.extend(client_props::parse_flags(&args.property, "--property")?);
    Ok(props)
}

fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0);
    (nanos ^ (std::process::id() as u64).wrapping_mul(0x9e37_79b9)) % n
}
