//! Where `--describe` gets its partitions from, as Kafka's admin client chooses: DescribeTopicPartitions
//! when the broker serves it (it carries the eligible leader replicas, ELR), else Metadata (then ELR is
//! unknown and printed `N/A`). Both answers become the same `TopicView`.

use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeTopicPartitionsRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{kafka_message, ToolError};

/// Partitions per DescribeTopicPartitions answer (Kafka's tool's default page size).
const PARTITIONS_PER_PAGE: i32 = 2000;

/// One topic as `--describe` prints it.
#[derive(Debug, Clone, Default)]
pub struct TopicView {
    pub name: String,
    pub id: [u8; 16],
    pub partitions: Vec<PartitionView>,
}

#[derive(Debug, Clone, Default)]
pub struct PartitionView {
    pub index: i32,
    /// -1: no leader.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// (ELR, last known ELR) when the source carries them.
    pub elr: Option<(Vec<i32>, Vec<i32>)>,
}

fn ids(v: &[BrokerId]) -> Vec<i32> {
    v.iter().map(|b| b.0).collect()
}

/// The topics `names` (each must exist), in the order given.
pub async fn topic_views(admin: &mut Admin, names: &[String]) -> Result<Vec<TopicView>, ToolError> {
    if admin.serves(ApiKey::DescribeTopicPartitions) {
        from_describe_topic_partitions(admin, names).await
    } else {
        let metadata = admin.metadata(Some(names.to_vec())).await?;
        from_metadata(&metadata, names)
    }
}

fn from_metadata(metadata: &MetadataResponse, names: &[String]) -> Result<Vec<TopicView>, ToolError> {
    let mut views = Vec::new();
    for name in names {
        let Some(topic) = metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name))
        else {
            continue;
        };
        if topic.error_code != 0 {
            return Err(ToolError::Kafka(kafka_message(topic.error_code, None)));
        }
        let partitions = topic
            .partitions
            .iter()
            .map(|p| PartitionView {
                index: p.partition_index,
                leader: p.leader_id.0,
                replicas: ids(&p.replica_nodes),
                isr: ids(&p.isr_nodes),
                elr: None,
            })
            .collect();
        views.push(TopicView {
            name: name.clone(),
            id: *topic.topic_id.as_bytes(),
            partitions,
        });
    }
    Ok(views)
}

async fn from_describe_topic_partitions(admin: &mut Admin, names: &[String]) -> Result<Vec<TopicView>, ToolError> {
    let mut views: Vec<TopicView> = names
        .iter()
        .map(|n| TopicView {
            name: n.clone(),
            ..TopicView::default()
        })
        .collect();
    let topics: Vec<TopicRequest> = names
        .iter()
        .map(|n| TopicRequest::default().with_name(TopicName(StrBytes::from_string(n.clone()))))
        .collect();
    let mut cursor: Option<Cursor> = None;
    loop {
        let request = DescribeTopicPartitionsRequest::default()
            .with_topics(topics.clone())
            .with_response_partition_limit(PARTITIONS_PER_PAGE)
            .with_cursor(cursor.take());
        let response = admin.send(request, 0).await?;
        for topic in &response.topics {
            if topic.error_code != 0 {
                return Err(ToolError::Kafka(kafka_message(topic.error_code, None)));
            }
            let name = topic.name.as_ref().map_or("", |n| n.as_str());
            let Some(view) = views.iter_mut().find(|v| v.name == name) else {
                continue;
            };
            view.id = *topic.topic_id.as_bytes();
            view.partitions.extend(topic.partitions.iter().map(|p| PartitionView {
                index: p.partition_index,
                leader: p.leader_id.0,
                replicas: ids(&p.replica_nodes),
                isr: ids(&p.isr_nodes),
                elr: Some((
                    p.eligible_leader_replicas.as_deref().map(ids).unwrap_or_default(),
                    p.last_known_elr.as_deref().map(ids).unwrap_or_default(),
                )),
            }));
        }
        match response.next_cursor {
            Some(next) => {
                cursor = Some(
                    Cursor::default()
                        .with_topic_name(next.topic_name)
                        .with_partition_index(next.partition_index),
                )
            }
            None => break,
        }
    }
    Ok(views)
}
