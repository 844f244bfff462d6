//! `oxka tool delete-records` (kafka-delete-records.sh, Kafka's DeleteRecordsCommand): reads
//! `--offset-json-file` (`{"partitions":[{"topic":"t","partition":0,"offset":3}],"version":1}`;
//! offset -1 means the high watermark), sends DeleteRecords to each partition's leader (one request
//! per leader) and prints Kafka's lines: "Executing records delete operation", "Records delete
//! operation completed:", then `partition: t-0<TAB>low_watermark: N` or `partition: t-0<TAB>error:
//! <exception>: <message>` per partition, sorted (Kafka's tool: hash-map order).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;

use crate::admin::Admin;
use crate::error::{kafka_message, ToolError};
use crate::leaders::Leaders;
use crate::settings::ClientSettings;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-delete-records.sh",
    about = "Delete the records of partitions below an offset (Kafka's kafka-delete-records.sh)"
)]
pub struct Args {
    /// REQUIRED: the server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    /// REQUIRED: the JSON file with the offset per partition:
    /// {"partitions": [{"topic": "foo", "partition": 1, "offset": 1}], "version": 1}
    #[arg(long = "offset-json-file")]
    offset_json_file: PathBuf,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config")]
    command_config: Option<PathBuf>,
}

type Partition = (String, i32);

pub async fn run(args: Args) -> Result<(), ToolError> {
    let text = std::fs::read_to_string(&args.offset_json_file).map_err(|e| {
        ToolError::Usage(format!(
            "cannot read --offset-json-file {}: {e}",
            args.offset_json_file.display()
        ))
    })?;
    let offsets = parse_offsets(&text).map_err(|message| {
        eprintln!("{message}");
        ToolError::Reported
    })?;
    let settings = ClientSettings::from_flags(&args.bootstrap_server, args.command_config.as_deref())?;
    let mut leaders = Leaders::new(settings);
    let topics: Vec<String> = {
        let mut t: Vec<String> = offsets.keys().map(|(t, _)| t.clone()).collect();
        t.dedup();
        t
    };
    println!("Executing records delete operation");
    leaders.refresh(Some(&topics), false).await?;
    let mut results: BTreeMap<Partition, Result<i64, String>> = BTreeMap::new();
    let mut by_leader: BTreeMap<i32, Vec<(Partition, i64)>> = BTreeMap::new();
    for (partition, offset) in &offsets {
        if !leaders.topics.contains_key(&partition.0) {
            results.insert(
                partition.clone(),
                Err(format!(
                    "{}: Failed to fetch metadata for partition {}-{} because metadata for topic `{}` could not be found",
                    exception(3),
                    partition.0,
                    partition.1,
                    partition.0
                )),
            );
            continue;
        }
        match leaders.leader(&partition.0, partition.1) {
            Some(leader) => by_leader.entry(leader).or_default().push((partition.clone(), *offset)),
            None => {
                results.insert(
                    partition.clone(),
                    Err(format!("{}: {}", exception(5), kafka_message(5, None))),
                );
            }
        }
    }
    for (leader, partitions) in by_leader {
        let admin = leaders.connection(leader).await?;
        results.extend(delete(admin, &partitions).await?);
    }
    println!("Records delete operation completed:");
    let mut out = String::new();
    for ((topic, partition), result) in results {
        match result {
            Ok(low) => out.push_str(&format!("partition: {topic}-{partition}\tlow_watermark: {low}\n")),
            Err(e) => out.push_str(&format!("partition: {topic}-{partition}\terror: {e}\n")),
        }
    }
    print!("{out}");
    Ok(())
}

async fn delete(
    admin: &mut Admin,
    partitions: &[(Partition, i64)],
) -> Result<BTreeMap<Partition, Result<i64, String>>, ToolError> {
    let mut topics: BTreeMap<&str, Vec<DeleteRecordsPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in partitions {
        topics.entry(topic).or_default().push(
            DeleteRecordsPartition::default()
                .with_partition_index(*partition)
                .with_offset(*offset),
        );
    }
    let request = DeleteRecordsRequest::default().with_timeout_ms(30_000).with_topics(
        topics
            .into_iter()
            .map(|(name, partitions)| {
                DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.to_string())))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    let response = admin.send(request, 0).await?;
    let mut results = BTreeMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            let result = if p.error_code == 0 {
                Ok(p.low_watermark)
            } else {
                Err(format!(
                    "{}: {}",
                    exception(p.error_code),
                    kafka_message(p.error_code, None)
                ))
            };
            results.insert((topic.name.to_string(), p.partition_index), result);
        }
    }
    Ok(results)
}

/// The offsets of Kafka's JSON file; the error is Kafka's message.
fn parse_offsets(text: &str) -> Result<BTreeMap<Partition, i64>, String> {
    let json: Value = serde_json::from_str(text).map_err(|_| "The input string is not a valid JSON".to_string())?;
    let version = match json.get("version") {
        None => 1,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("Not supported version field value {v}"))?,
    };
    if version != 1 {
        return Err(format!("Not supported version field value {version}"));
    }
    let partitions = json
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or_else(|| "Missing partitions field".to_string())?;
    let mut offsets: BTreeMap<Partition, Vec<i64>> = BTreeMap::new();
    for p in partitions {
        let field = |name: &str| p.get(name).ok_or_else(|| format!("No such field exists: `{name}`"));
        let topic = field("topic")?
            .as_str()
            .ok_or("the field `topic` is not a string")?
            .to_string();
        let partition = field("partition")?
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or("the field `partition` is not an int")?;
        let offset = field("offset")?.as_i64().ok_or("the field `offset` is not a long")?;
        offsets.entry((topic, partition)).or_default().push(offset);
    }
    let duplicates: Vec<String> = offsets
        .iter()
        .filter(|(_, o)| o.len() > 1)
        .map(|((t, p), _)| format!("{t}-{p}"))
        .collect();
    if !duplicates.is_empty() {
        return Err(format!(
            "Offset json file contains duplicate topic partitions: {}",
            duplicates.join(",")
        ));
    }
    Ok(offsets.into_iter().map(|(k, v)| (k, v[0])).collect())
}

/// Kafka's exception class for an error code, as its admin client reports a failed partition.
pub fn exception(code: i16) -> String {
    let name = match code {
        1 => "OffsetOutOfRangeException".to_string(),
        3 => "UnknownTopicOrPartitionException".to_string(),
        5 => "LeaderNotAvailableException".to_string(),
        6 => "NotLeaderOrFollowerException".to_string(),
        7 => "TimeoutException".to_string(),
        29 => "TopicAuthorizationException".to_string(),
        42 => "PolicyViolationException".to_string(),
        56 => "KafkaStorageException".to_string(),
        code => match kafka_protocol::error::ResponseError::try_from_code(code) {
            Some(e) => format!("{e:?}Exception"),
            None => "UnknownServerException".to_string(),
        },
    };
    format!("org.apache.kafka.common.errors.{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_file_is_read_as_kafka_reads_it() {
        let offsets = parse_offsets(
            r#"{"partitions":[{"topic":"t","partition":1,"offset":-1},{"topic":"t","partition":0,"offset":3}]}"#,
        )
        .unwrap();
        assert_eq!(offsets[&("t".to_string(), 1)], -1);
        assert_eq!(offsets.len(), 2);
        assert_eq!(parse_offsets("{").unwrap_err(), "The input string is not a valid JSON");
        assert_eq!(
            parse_offsets(r#"{"version":2}"#).unwrap_err(),
            "Not supported version field value 2"
        );
        assert_eq!(
            parse_offsets(r#"{"version":1}"#).unwrap_err(),
            "Missing partitions field"
        );
        assert_eq!(
            parse_offsets(
                r#"{"partitions":[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":0,"offset":2}]}"#
            )
            .unwrap_err(),
            "Offset json file contains duplicate topic partitions: t-0"
        );
        assert_eq!(exception(1), "org.apache.kafka.common.errors.OffsetOutOfRangeException");
    }
}
