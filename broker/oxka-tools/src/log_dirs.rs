//! `oxka tool log-dirs` (kafka-log-dirs.sh, Kafka's LogDirsCommand): `--describe` asks each broker
//! (every broker in Metadata, or `--broker-list`) for its log directories (DescribeLogDirs) and
//! prints Kafka's three lines: "Querying brokers for log directories information", "Received log
//! directory information from brokers 0,1", and one JSON line with Kafka's shape and key order
//! (`{"brokers":[{"broker":0,"logDirs":[{"partitions":[{"partition":"t-0","size":0,"offsetLag":0,
//! "isFuture":false}],"error":null,"logDir":"/data"}]}],"version":1}`). Brokers, log dirs and
//! partitions are sorted (Kafka's tool prints them in hash-map order).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Parser;
use kafka_protocol::messages::DescribeLogDirsRequest;

use crate::admin::Admin;
use crate::error::ToolError;
use crate::settings::ClientSettings;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-log-dirs.sh",
    about = "Query the log directories of brokers and the partitions in them (Kafka's kafka-log-dirs.sh)"
)]
pub struct Args {
    /// REQUIRED: the server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config")]
    command_config: Option<PathBuf>,
    /// REQUIRED: describe the log directories of the brokers.
    #[arg(long)]
    describe: bool,
    /// The topics to list, "t1,t2" (all when omitted).
    #[arg(long = "topic-list", default_value = "")]
    topic_list: String,
    /// The brokers to query, "0,1,2" (all when omitted).
    #[arg(long = "broker-list", default_value = "")]
    broker_list: String,
}

/// One log directory as a broker described it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogDir {
    path: String,
    /// Kafka's exception class for the directory's error code, if any.
    error: Option<String>,
    /// (topic, partition) -> (size, offset lag, is future).
    partitions: BTreeMap<(String, i32), (i64, i64, bool)>,
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    if !args.describe {
        return Err(ToolError::Usage(
            "Missing required argument \"[describe]\" (log-dirs only describes)".to_string(),
        ));
    }
    let topics: BTreeSet<String> = split(&args.topic_list).map(str::to_string).collect();
    let mut requested = BTreeSet::new();
    for id in split(&args.broker_list) {
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| ToolError::Usage(format!("--broker-list {}: '{id}' is not a broker id", args.broker_list)))?;
        requested.insert(id);
    }
    let settings = ClientSettings::from_flags(&args.bootstrap_server, args.command_config.as_deref())?;
    let mut bootstrap = Admin::bootstrap(&settings).await?;
    let metadata = bootstrap.metadata(Some(Vec::new())).await?;
    let brokers: BTreeMap<i32, String> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    let missing: Vec<i32> = requested
        .iter()
        .filter(|id| !brokers.contains_key(id))
        .copied()
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "ERROR: The given brokers do not exist from --broker-list: {}. Current existent brokers: {}",
            join(missing.iter()),
            join(brokers.keys())
        );
        return Err(ToolError::Reported);
    }
    let queried: Vec<i32> = if requested.is_empty() {
        brokers.keys().copied().collect()
    } else {
        requested.into_iter().collect()
    };
    println!("Querying brokers for log directories information");
    let mut described = BTreeMap::new();
    for id in &queried {
        let mut admin = Admin::connect(&brokers[id], &settings).await?;
        let response = admin
            .send(DescribeLogDirsRequest::default().with_topics(None), 0)
            .await?;
        if response.error_code != 0 {
            return Err(ToolError::Kafka(format!(
                "broker {id} refused DescribeLogDirs: {}",
                crate::error::kafka_message(response.error_code, None)
            )));
        }
        let dirs = response
            .results
            .into_iter()
            .map(|r| LogDir {
                path: r.log_dir.to_string(),
                error: exception_class(r.error_code),
                partitions: r
                    .topics
                    .iter()
                    .filter(|t| topics.is_empty() || topics.contains(t.name.as_str()))
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            (
                                (t.name.to_string(), p.partition_index),
                                (p.partition_size, p.offset_lag, p.is_future_key),
                            )
                        })
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        described.insert(*id, dirs);
    }
    println!(
        "Received log directory information from brokers {}",
        join(queried.iter())
    );
    println!("{}", to_json(&described));
    Ok(())
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|s| !s.is_empty())
}

fn join<'a>(ids: impl Iterator<Item = &'a i32>) -> String {
    ids.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// The exception class Kafka's admin client maps a log dir's error code to.
fn exception_class(code: i16) -> Option<String> {
    let name = match code {
        0 => return None,
        56 => "KafkaStorageException",
        57 => "LogDirNotFoundException",
        29 => "ClusterAuthorizationException",
        _ => "UnknownServerException",
    };
    Some(format!("org.apache.kafka.common.errors.{name}"))
}

/// Kafka's JSON, keys in the order Jackson writes Kafka's hash maps.
fn to_json(described: &BTreeMap<i32, Vec<LogDir>>) -> String {
    let brokers: Vec<String> = described
        .iter()
        .map(|(id, dirs)| {
            let mut dirs = dirs.clone();
            dirs.sort_by(|a, b| a.path.cmp(&b.path));
            let dirs: Vec<String> = dirs
                .iter()
                .map(|d| {
                    let partitions: Vec<String> = d
                        .partitions
                        .iter()
                        .map(|((topic, partition), (size, lag, future))| {
                            format!(
                                "{{\"partition\":{},\"size\":{size},\"offsetLag\":{lag},\"isFuture\":{future}}}",
                                json_string(&format!("{topic}-{partition}"))
                            )
                        })
                        .collect();
                    let error = d.error.as_deref().map_or("null".to_string(), json_string);
                    format!(
                        "{{\"partitions\":[{}],\"error\":{error},\"logDir\":{}}}",
                        partitions.join(","),
                        json_string(&d.path)
                    )
                })
                .collect();
            format!("{{\"broker\":{id},\"logDirs\":[{}]}}", dirs.join(","))
        })
        .collect();
    format!("{{\"brokers\":[{}],\"version\":1}}", brokers.join(","))
}

/// A JSON string literal as Jackson writes it.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_kafkas_shape_and_key_order() {
        let dir = LogDir {
            path: "/data/a".to_string(),
            error: None,
            partitions: [(("t".to_string(), 0), (42, 0, false))].into(),
        };
        let json = to_json(&[(1, vec![dir])].into());
        assert_eq!(
            json,
            "{\"brokers\":[{\"broker\":1,\"logDirs\":[{\"partitions\":[{\"partition\":\"t-0\",\"size\":42,\"offsetLag\":0,\"isFuture\":false}],\"error\":null,\"logDir\":\"/data/a\"}]}],\"version\":1}"
        );
        assert_eq!(json_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
    }
}
