//! ListOffsets for a set of partitions, each asked of its leader (one request per leader), as Kafka's
//! admin client does: what get-offsets prints and what consumer-groups needs for log-end offsets, lag
//! and resets. Partitions come in with the Metadata answer that names their leaders; offsets go out per
//! partition, or the Kafka error code the leader answered.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::ToolError;
use crate::settings::ClientSettings;

/// Kafka's ListOffsets timestamps with a meaning.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// What a leader answered for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionOffset {
    /// The offset (-1: none, e.g. no record at or after the timestamp).
    Offset(i64),
    /// A Kafka error code.
    Error(i16),
    /// The partition has no leader, or it is not in the Metadata answer.
    NoLeader,
}

/// The offsets of `partitions` at `timestamp`.
pub async fn list_offsets(
    settings: &ClientSettings,
    metadata: &MetadataResponse,
    partitions: &[(String, i32)],
    timestamp: i64,
) -> Result<BTreeMap<(String, i32), PartitionOffset>, ToolError> {
    let mut result = BTreeMap::new();
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in partitions {
        let leader = metadata
            .topics
            .iter()
            .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == *partition)
            .map(|p| p.leader_id.0);
        match leader {
            Some(leader) if leader >= 0 => by_leader.entry(leader).or_default().push((topic.clone(), *partition)),
            _ => {
                result.insert((topic.clone(), *partition), PartitionOffset::NoLeader);
            }
        }
    }
    for (leader, partitions) in by_leader {
        let Some(broker) = metadata.brokers.iter().find(|b| b.node_id.0 == leader) else {
            for p in partitions {
                result.insert(p, PartitionOffset::NoLeader);
            }
            continue;
        };
        let address = format!("{}:{}", broker.host.as_str(), broker.port);
        let mut admin = Admin::connect(&address, settings).await?;
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for (topic, partition) in &partitions {
            topics.entry(topic).or_default().push(
                ListOffsetsPartition::default()
                    .with_partition_index(*partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp),
            );
        }
        let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
        // v1: a single offset per partition; -3 (max timestamp) needs v7, -4 v8, -5 v9.
        let floor = match timestamp {
            -3 => 7,
            -4 => 8,
            -5 => 9,
            _ => 1,
        };
        let response = admin.send(request, floor).await?;
        for topic in response.topics {
            for p in topic.partitions {
                let answer = if p.error_code != 0 {
                    PartitionOffset::Error(p.error_code)
                } else {
                    PartitionOffset::Offset(p.offset)
                };
                result.insert((topic.name.to_string(), p.partition_index), answer);
            }
        }
    }
    Ok(result)
}
