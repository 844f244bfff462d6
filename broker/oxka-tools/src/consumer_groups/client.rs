//! The group requests consumer-groups sends, as Kafka's admin client sends them: ListGroups to every
//! broker; FindCoordinator, then DescribeGroups, OffsetFetch, OffsetCommit and DeleteGroups to the
//! group's coordinator. Answers are turned into plain views (`GroupView`, committed offsets) here, so
//! describing, resetting and deleting never look at wire types.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Buf;
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest, MetadataResponse,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::admin::Admin;
use crate::error::ToolError;
use crate::settings::ClientSettings;

const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const GROUP_ID_NOT_FOUND: i16 = 69;

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedGroup {
    pub group_id: String,
    pub state: String,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub member_id: String,
    pub group_instance_id: String,
    pub client_id: String,
    pub host: String,
    /// Assigned partitions, as the member's assignment lists them.
    pub assignment: Vec<(String, i32)>,
}

/// A group as DescribeGroups answers it, with its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub group_id: String,
    pub state: String,
    /// The assignment strategy (the chosen protocol), "" when none.
    pub protocol: String,
    pub members: Vec<MemberView>,
    /// `host:port  (id)` as Kafka prints a coordinator.
    pub coordinator: String,
}

/// The cluster a command runs against: settings, one Metadata answer, and `--timeout` (how long a
/// coordinator that is loading or being elected is waited for, as Kafka's admin client retries within
/// the call's timeout).
pub struct GroupClient {
    pub settings: ClientSettings,
    pub metadata: MetadataResponse,
    pub timeout: Duration,
}

/// A committed offset and the leader epoch committed with it (none: -1 on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

/// What the coordinator answered for one partition of OffsetDelete.
pub type PartitionErrors = BTreeMap<(String, i32), Option<GroupError>>;

/// A Kafka error about a group, kept as its code and message so callers can print Kafka's words.
#[derive(Debug, Clone)]
pub struct GroupError {
    pub code: i16,
    pub message: String,
}

impl GroupClient {
    pub async fn connect(settings: ClientSettings, timeout: Duration) -> Result<GroupClient, ToolError> {
        let mut bootstrap = Admin::bootstrap(&settings).await?;
        let metadata = bootstrap.metadata(None).await?;
        Ok(GroupClient {
            settings,
            metadata,
            timeout,
        })
    }

    fn broker_address(&self, id: i32) -> Option<String> {
        self.metadata
            .brokers
            .iter()
            .find(|b| b.node_id.0 == id)
            .map(|b| format!("{}:{}", b.host.as_str(), b.port))
    }

    /// Consumer groups of every broker (ListGroups to each, as Kafka's admin client), sorted by id:
    /// groups of protocol type `consumer` or none (groups that only committed offsets).
    pub async fn list_groups(&self) -> Result<Vec<ListedGroup>, ToolError> {
        let mut groups = BTreeSet::new();
        let mut ids: Vec<i32> = self.metadata.brokers.iter().map(|b| b.node_id.0).collect();
        ids.sort();
        for id in ids {
            let address = self.broker_address(id).expect("listed above");
            let mut admin = Admin::connect(&address, &self.settings).await?;
            let response = admin.send(ListGroupsRequest::default(), 0).await?;
            if response.error_code != 0 {
                return Err(kafka_error(response.error_code, None));
            }
            for g in response.groups {
                if g.protocol_type.is_empty() || g.protocol_type.as_str() == "consumer" {
                    groups.insert(ListedGroup {
                        group_id: g.group_id.to_string(),
                        state: g.group_state.to_string(),
                    });
                }
            }
        }
        Ok(groups.into_iter().collect())
    }

    /// A connection to `group`'s coordinator and Kafka's text for it (`host:port  (id)`), waiting
    /// while the cluster answers that the coordinator is not available yet.
    pub async fn coordinator(&self, group: &str) -> Result<(Admin, String), ToolError> {
        let deadline = Instant::now() + self.timeout;
        let mut bootstrap = Admin::bootstrap(&self.settings).await?;
        loop {
            let version = bootstrap.version_of::<FindCoordinatorRequest>(0)?;
            let request = if version >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
            } else {
                FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string()))
            };
            let response = bootstrap.send(request, 0).await?;
            let (code, message, id, host, port) = match response.coordinators.first() {
                Some(c) if version >= 4 => (
                    c.error_code,
                    c.error_message.clone(),
                    c.node_id.0,
                    c.host.clone(),
                    c.port,
                ),
                _ => (
                    response.error_code,
                    response.error_message.clone(),
                    response.node_id.0,
                    response.host.clone(),
                    response.port,
                ),
            };
            if code == 0 {
                let address = format!("{}:{port}", host.as_str());
                let admin = Admin::connect(&address, &self.settings).await?;
                return Ok((admin, format!("{address}  ({id})")));
            }
            let retriable = matches!(
                code,
                COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR | COORDINATOR_LOAD_IN_PROGRESS
            );
            if !retriable || Instant::now() > deadline {
                return Err(kafka_error(code, message.as_deref()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// DescribeGroups of one group; a group that does not exist (state Dead, or GROUP_ID_NOT_FOUND) is
    /// `Err` with code GROUP_ID_NOT_FOUND.
    pub async fn describe_group(&self, group: &str) -> Result<Result<GroupView, GroupError>, ToolError> {
        let (mut admin, coordinator) = self.coordinator(group).await?;
        let request =
            DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
        let response = admin.send(request, 0).await?;
        let Some(described) = response.groups.into_iter().next() else {
            return Err(ToolError::Kafka(format!(
                "the coordinator answered nothing about group {group}"
            )));
        };
        if described.error_code != 0 {
            return Ok(Err(GroupError {
                code: described.error_code,
                message: crate::error::kafka_message(described.error_code, described.error_message.as_deref()),
            }));
        }
        if described.group_state.as_str() == "Dead" {
            return Ok(Err(GroupError {
                code: GROUP_ID_NOT_FOUND,
                message: format!("Group {group} not found."),
            }));
        }
        let members = described
            .members
            .into_iter()
            .map(|m| MemberView {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()).unwrap_or_default(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: decode_assignment(m.member_assignment),
            })
            .collect();
        Ok(Ok(GroupView {
            group_id: group.to_string(),
            state: described.group_state.to_string(),
            protocol: described.protocol_data.to_string(),
            members,
            coordinator,
        }))
    }

    /// The group's committed offsets (OffsetFetch of every partition), without partitions that have
    /// none.
    pub async fn committed_offsets(&self, group: &str) -> Result<BTreeMap<(String, i32), Committed>, ToolError> {
        let (mut admin, _) = self.coordinator(group).await?;
        let group_id = GroupId(StrBytes::from_string(group.to_string()));
        let version = admin.version_of::<OffsetFetchRequest>(2)?;
        let request = if version >= 8 {
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id)
                .with_topics(None)])
        } else {
            OffsetFetchRequest::default().with_group_id(group_id).with_topics(None)
        };
        let response = admin.send(request, 2).await?;
        let mut offsets = BTreeMap::new();
        if version >= 8 {
            for g in response.groups {
                if g.error_code != 0 {
                    return Err(kafka_error(g.error_code, None));
                }
                for t in g.topics {
                    for p in t.partitions.iter().filter(|p| p.committed_offset >= 0) {
                        offsets.insert(
                            (t.name.to_string(), p.partition_index),
                            committed(p.committed_offset, p.committed_leader_epoch),
                        );
                    }
                }
            }
        } else {
            if response.error_code != 0 {
                return Err(kafka_error(response.error_code, None));
            }
            for t in response.topics {
                for p in t.partitions.iter().filter(|p| p.committed_offset >= 0) {
                    offsets.insert(
                        (t.name.to_string(), p.partition_index),
                        committed(p.committed_offset, p.committed_leader_epoch),
                    );
                }
            }
        }
        Ok(offsets)
    }

    /// Commits `offsets` for the group as an admin (generation -1, no member), as Kafka's
    /// alterConsumerGroupOffsets does; the first partition error fails it.
    pub async fn commit_offsets(&self, group: &str, offsets: &BTreeMap<(String, i32), i64>) -> Result<(), ToolError> {
        let (mut admin, _) = self.coordinator(group).await?;
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_retention_time_ms(-1)
            .with_topics(commit_topics(offsets));
        let response = admin.send(request, 2).await?;
        for t in response.topics {
            if let Some(p) = t.partitions.iter().find(|p| p.error_code != 0) {
                return Err(kafka_error(p.error_code, None));
            }
        }
        Ok(())
    }

    /// Deletes one group; the group's own error, if any.
    pub async fn delete_group(&self, group: &str) -> Result<Option<GroupError>, ToolError> {
        let (mut admin, _) = match self.coordinator(group).await {
            Ok(found) => found,
            Err(ToolError::Kafka(message)) => return Ok(Some(GroupError { code: -1, message })),
            Err(e) => return Err(e),
        };
        let request =
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_string(group.to_string()))]);
        let response = admin.send(request, 0).await?;
        Ok(response
            .results
            .into_iter()
            .find(|r| r.error_code != 0)
            .map(|r| GroupError {
                code: r.error_code,
                message: crate::error::kafka_message(r.error_code, None),
            }))
    }

    /// OffsetDelete of `partitions` for the group: the group-level error, if any, and each partition's.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(Option<GroupError>, PartitionErrors), ToolError> {
        let (mut admin, _) = self.coordinator(group).await?;
        let mut topics: BTreeMap<&str, Vec<OffsetDeleteRequestPartition>> = BTreeMap::new();
        for (topic, partition) in partitions {
            topics
                .entry(topic)
                .or_default()
                .push(OffsetDeleteRequestPartition::default().with_partition_index(*partition));
        }
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let response = admin.send(request, 0).await?;
        let top = group_error(response.error_code);
        let mut results = PartitionErrors::new();
        for t in response.topics {
            for p in t.partitions {
                results.insert((t.name.to_string(), p.partition_index), group_error(p.error_code));
            }
        }
        Ok((top, results))
    }
}

fn committed(offset: i64, leader_epoch: i32) -> Committed {
    Committed {
        offset,
        leader_epoch: (leader_epoch >= 0).then_some(leader_epoch),
    }
}

fn group_error(code: i16) -> Option<GroupError> {
    (code != 0).then(|| GroupError {
        code,
        message: crate::error::kafka_message(code, None),
    })
}

/// The partitions of a consumer protocol assignment (the bytes a classic consumer group's leader
/// assigned a member); empty when the bytes are empty or not a consumer assignment.
pub fn decode_assignment(mut bytes: bytes::Bytes) -> Vec<(String, i32)> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16().clamp(0, 3);
    let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut bytes, version) else {
        return Vec::new();
    };
    assignment
        .assigned_partitions
        .into_iter()
        .flat_map(|tp| {
            let topic = tp.topic.to_string();
            tp.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect()
}

fn kafka_error(code: i16, message: Option<&str>) -> ToolError {
    ToolError::Kafka(crate::error::kafka_message(code, message))
}

/// OffsetCommit's topics for `offsets`: grouped by topic, no leader epoch, empty metadata (as Kafka's
/// clients send them).
pub(crate) fn commit_topics(offsets: &BTreeMap<(String, i32), i64>) -> Vec<OffsetCommitRequestTopic> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str(""))),
        );
    }
    topics
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(partitions)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[test]
    fn assignments_decode_from_the_consumer_protocol() {
        let assignment = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![2, 0])]);
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(1);
        assignment.encode(&mut buf, 1).unwrap();
        assert_eq!(
            decode_assignment(buf.freeze()),
            [("t".to_string(), 2), ("t".to_string(), 0)]
        );
        assert!(decode_assignment(bytes::Bytes::new()).is_empty());
    }
}
