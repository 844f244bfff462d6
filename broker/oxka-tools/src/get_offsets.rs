//! `oxka tool get-offsets` (kafka-get-offsets.sh, Kafka's GetOffsetShell): one `topic:partition:offset`
//! line per matching partition, sorted, for a `--time` (-1/latest, -2/earliest, -3/max-timestamp,
//! -4/earliest-local, -5/latest-tiered, or a timestamp in ms). ListOffsets goes to each partition's
//! leader, one request per leader (`offsets.rs`). A partition without an answer (no record at or after the timestamp)
//! prints no line, as Kafka's. Errors print `Error occurred: ...` on stderr, exit 1.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use kafka_protocol::messages::MetadataResponse;
use regex::Regex;

use crate::admin::Admin;
use crate::error::{kafka_message, ToolError};
use crate::offsets::{list_offsets, PartitionOffset};
use crate::settings::ClientSettings;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-get-offsets.sh",
    about = "Print the offsets of topic partitions at a time (Kafka's kafka-get-offsets.sh)"
)]
pub struct Args {
    /// REQUIRED: the server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server", alias = "broker-list")]
    bootstrap_server: String,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config")]
    command_config: Option<PathBuf>,
    /// The topic(s) to get the offsets for: a regular expression (all topics when omitted).
    #[arg(long)]
    topic: Option<String>,
    /// Comma-separated partition ids (with --topic).
    #[arg(long)]
    partitions: Option<String>,
    /// Comma-separated topic-partition patterns: `topic-regex[:N | :N-M (M exclusive) | :N- | :-M]`.
    #[arg(long = "topic-partitions")]
    topic_partitions: Option<String>,
    /// -1 or latest, -2 or earliest, -3 or max-timestamp, -4 or earliest-local, -5 or latest-tiered, or a
    /// timestamp in milliseconds.
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    time: String,
    /// Leave out internal topics (when no topic is named).
    #[arg(long = "exclude-internal-topics")]
    exclude_internal_topics: bool,
}

/// Which partitions of which topics one pattern selects.
#[derive(Debug)]
struct Pattern {
    topic: Option<Regex>,
    /// Inclusive lower and exclusive upper bound.
    partitions: (i32, i32),
}

impl Pattern {
    fn matches(&self, topic: &str, partition: i32) -> bool {
        self.topic.as_ref().is_none_or(|r| r.is_match(topic))
            && partition >= self.partitions.0
            && partition < self.partitions.1
    }
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    let result = get_offsets(&args).await;
    match result {
        Err(ToolError::Kafka(message)) | Err(ToolError::Usage(message)) => {
            eprintln!("Error occurred: {message}");
            Err(ToolError::Reported)
        }
        other => other,
    }
}

async fn get_offsets(args: &Args) -> Result<(), ToolError> {
    let timestamp = parse_time(&args.time)?;
    let patterns = patterns(args)?;
    let settings = ClientSettings::from_flags(&args.bootstrap_server, args.command_config.as_deref())?;
    let mut bootstrap = Admin::bootstrap(&settings).await?;
    let metadata = bootstrap.metadata(None).await?;
    let partitions = select(
        &metadata,
        &patterns,
        args.exclude_internal_topics && args.topic.is_none(),
    );
    if partitions.is_empty() {
        return Err(ToolError::Kafka(
            "Could not match any topic-partitions with the specified filters".to_string(),
        ));
    }
    let answers = list_offsets(&settings, &metadata, &partitions, timestamp).await?;
    let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for ((topic, partition), answer) in answers {
        match answer {
            PartitionOffset::NoLeader => {
                eprintln!("Skip getting offsets for topic-partition {topic}-{partition}: it has no leader")
            }
            PartitionOffset::Error(code) => eprintln!(
                "Skip getting offsets for topic-partition {topic}-{partition} due to error: {}",
                kafka_message(code, None)
            ),
            PartitionOffset::Offset(offset) if offset >= 0 => {
                offsets.insert((topic, partition), offset);
            }
            PartitionOffset::Offset(_) => {}
        }
    }
    let mut out = String::new();
    for ((topic, partition), offset) in offsets {
        out.push_str(&format!("{topic}:{partition}:{offset}\n"));
    }
    print!("{out}");
    Ok(())
}

/// `--time` as Kafka reads it.
fn parse_time(text: &str) -> Result<i64, ToolError> {
    let time = match text {
        "latest" => -1,
        "earliest" => -2,
        "max-timestamp" => -3,
        "earliest-local" => -4,
        "latest-tiered" => -5,
        other => other.parse::<i64>().ok().filter(|t| *t >= -5).ok_or_else(|| {
            ToolError::Usage(format!(
                "Malformed time argument {text}. Please use -1 or latest / -2 or earliest / -3 or max-timestamp / -4 or earliest-local / -5 or latest-tiered, or a specified long format timestamp"
            ))
        })?,
    };
    Ok(time)
}

/// The patterns of `--topic-partitions`, or of `--topic` with `--partitions`.
fn patterns(args: &Args) -> Result<Vec<Pattern>, ToolError> {
    let regex = |text: &str| {
        Regex::new(&format!("^(?:{text})$"))
            .map_err(|e| ToolError::Usage(format!("{text} is not a valid regular expression: {e}")))
    };
    if let Some(spec) = &args.topic_partitions {
        if args.topic.is_some() || args.partitions.is_some() {
            return Err(ToolError::Usage(
                "--topic-partitions cannot be used with --topic or --partitions".to_string(),
            ));
        }
        return spec
            .split(',')
            .map(|entry| {
                let (topic, range) = match entry.split_once(':') {
                    Some((t, r)) => (t, Some(r)),
                    None => (entry, None),
                };
                let topic = if topic.is_empty() { None } else { Some(regex(topic)?) };
                let partitions = range.map_or(Ok((0, i32::MAX)), |r| parse_range(r, entry))?;
                Ok(Pattern { topic, partitions })
            })
            .collect();
    }
    let topic = args.topic.as_deref().map(regex).transpose()?;
    let Some(ids) = &args.partitions else {
        return Ok(vec![Pattern {
            topic,
            partitions: (0, i32::MAX),
        }]);
    };
    ids.split(',')
        .map(|id| {
            let id: i32 = id
                .trim()
                .parse()
                .map_err(|_| ToolError::Usage(format!("--partitions {ids}: '{id}' is not a partition id")))?;
            Ok(Pattern {
                topic: topic.clone(),
                partitions: (id, id + 1),
            })
        })
        .collect()
}

/// `N`, `N-M` (M exclusive), `N-`, `-M`, or empty (all).
fn parse_range(range: &str, entry: &str) -> Result<(i32, i32), ToolError> {
    let bad = || ToolError::Usage(format!("--topic-partitions {entry}: expected topic[:N|:N-M|:N-|:-M]"));
    let number = |s: &str| s.parse::<i32>().map_err(|_| bad());
    match range.split_once('-') {
        None if range.is_empty() => Ok((0, i32::MAX)),
        None => number(range).map(|n| (n, n + 1)),
        Some((low, high)) => {
            let low = if low.is_empty() { 0 } else { number(low)? };
            let high = if high.is_empty() { i32::MAX } else { number(high)? };
            Ok((low, high))
        }
    }
}

/// The partitions the patterns match.
fn select(metadata: &MetadataResponse, patterns: &[Pattern], exclude_internal: bool) -> Vec<(String, i32)> {
    let mut selected = Vec::new();
    for topic in &metadata.topics {
        let Some(name) = topic.name.as_ref().map(|n| n.as_str()) else {
            continue;
        };
        if exclude_internal && topic.is_internal {
            continue;
        }
        for p in &topic.partitions {
            if patterns.iter().any(|pattern| pattern.matches(name, p.partition_index)) {
                selected.push((name.to_string(), p.partition_index));
            }
        }
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_takes_kafkas_words_and_numbers() {
        assert_eq!(parse_time("latest").unwrap(), -1);
        assert_eq!(parse_time("-2").unwrap(), -2);
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert!(parse_time("bogus")
            .unwrap_err()
            .to_string()
            .starts_with("Malformed time argument bogus."));
        assert!(parse_time("-6").is_err());
    }

    #[test]
    fn partition_ranges_are_kafkas() {
        assert_eq!(parse_range("3", "t:3").unwrap(), (3, 4));
        assert_eq!(parse_range("1-3", "t:1-3").unwrap(), (1, 3));
        assert_eq!(parse_range("2-", "t:2-").unwrap(), (2, i32::MAX));
        assert_eq!(parse_range("-2", "t:-2").unwrap(), (0, 2));
        assert!(parse_range("x", "t:x").is_err());
    }
}
