//! The console consumer as a member of a classic consumer group, as Kafka's consumer joins one:
//! FindCoordinator, JoinGroup (protocol type `consumer`, the `range` assignor; a first JoinGroup
//! answered MEMBER_ID_REQUIRED is sent again with the id), SyncGroup (the leader assigns every
//! member's partitions with Kafka's RangeAssignor), Heartbeat every `heartbeat.interval.ms`,
//! OffsetCommit with the member's generation, LeaveGroup at the end. A heartbeat answered
//! REBALANCE_IN_PROGRESS (another member joined or left), UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION
//! tells the caller to commit and join again. Owned by the consumer's single task.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, OffsetCommitRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::admin::Admin;
use crate::consumer_groups::client::{commit_topics, decode_assignment, GroupClient};
use crate::error::{kafka_message, ToolError};
use crate::leaders::Leaders;
use crate::settings::ClientSettings;

use super::fetcher::Partition;

const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
/// OffsetCommit v10 names topics by id; this tool sends names.
const OFFSET_COMMIT_MAX_VERSION: i16 = 9;
const ASSIGNOR: &str = "range";

/// The group's timing, from the consumer properties (Kafka's defaults).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub group_id: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub heartbeat_interval: Duration,
}

/// What the member knows of its group between calls.
pub struct GroupMember {
    config: GroupConfig,
    settings: ClientSettings,
    coordinator: Option<Admin>,
    member_id: String,
    generation: i32,
    last_heartbeat: Instant,
}

impl GroupMember {
    pub fn new(config: GroupConfig, settings: ClientSettings) -> GroupMember {
        GroupMember {
            config,
            settings,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            last_heartbeat: Instant::now(),
        }
    }

    pub fn group_id(&self) -> &str {
        &self.config.group_id
    }

    async fn coordinator(&mut self) -> Result<&mut Admin, ToolError> {
        if self.coordinator.is_none() {
            let client = GroupClient {
                settings: self.settings.clone(),
                metadata: Default::default(),
                timeout: Duration::from_secs(60),
            };
            let (admin, _) = client.coordinator(&self.config.group_id).await?;
            self.coordinator = Some(admin);
        }
        Ok(self.coordinator.as_mut().expect("set above"))
    }

    /// Joins the group subscribed to `topics` and returns this member's partitions. `leaders` gives
    /// the partitions of any topic a member subscribes to (the leader assigns them all).
    pub async fn join(&mut self, topics: &[String], leaders: &mut Leaders) -> Result<Vec<Partition>, ToolError> {
        let mut metadata = BytesMut::new();
        metadata.put_i16(0);
        ConsumerProtocolSubscription::default()
            .with_topics(topics.iter().map(|t| StrBytes::from_string(t.clone())).collect())
            .encode(&mut metadata, 0)
            .map_err(|e| ToolError::Kafka(format!("cannot encode the group subscription: {e}")))?;
        let metadata = metadata.freeze();
        // Connection failures to the coordinator: found again, a few times, then the error stands.
        let mut failures = 0;
        loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(self.config.group_id.clone())))
                .with_session_timeout_ms(self.config.session_timeout_ms)
                .with_rebalance_timeout_ms(self.config.rebalance_timeout_ms)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(ASSIGNOR))
                    .with_metadata(metadata.clone())]);
            let admin = self.coordinator().await?;
            let joined = match admin.send(request, 1).await {
                Ok(r) => r,
                Err(e) => {
                    self.coordinator = None;
                    failures += 1;
                    if failures > 5 {
                        return Err(e);
                    }
                    continue;
                }
            };
            match joined.error_code {
                0 => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = joined.member_id.to_string();
                    continue;
                }
                code if self.retry_after(code).await? => continue,
                code => return Err(ToolError::Kafka(kafka_message(code, None))),
            }
            self.member_id = joined.member_id.to_string();
            self.generation = joined.generation_id;
            let assignments = if joined.leader == joined.member_id {
                let subscriptions: BTreeMap<String, Vec<String>> = joined
                    .members
                    .iter()
                    .map(|m| (m.member_id.to_string(), subscribed_topics(m.metadata.clone())))
                    .collect();
                let all: BTreeSet<String> = subscriptions.values().flatten().cloned().collect();
                let all: Vec<String> = all.into_iter().collect();
                leaders.refresh(Some(&all), false).await?;
                let counts: BTreeMap<String, i32> = all
                    .iter()
                    .filter_map(|t| leaders.topics.get(t).map(|l| (t.clone(), l.leaders.len() as i32)))
                    .collect();
                range_assign(&subscriptions, &counts)
                    .into_iter()
                    .map(|(member, partitions)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(member))
                            .with_assignment(encode_assignment(&partitions))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let sync = SyncGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(self.config.group_id.clone())))
                .with_generation_id(self.generation)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                .with_protocol_name(Some(StrBytes::from_static_str(ASSIGNOR)))
                .with_assignments(assignments);
            let admin = self.coordinator().await?;
            let synced = match admin.send(sync, 0).await {
                Ok(r) => r,
                Err(e) => {
                    self.coordinator = None;
                    failures += 1;
                    if failures > 5 {
                        return Err(e);
                    }
                    continue;
                }
            };
            match synced.error_code {
                0 => {
                    self.last_heartbeat = Instant::now();
                    return Ok(decode_assignment(synced.assignment));
                }
                code if self.retry_after(code).await? => continue,
                code => return Err(ToolError::Kafka(kafka_message(code, None))),
            }
        }
    }

    /// Whether `code` means "join again" (after forgetting what it invalidates).
    async fn retry_after(&mut self, code: i16) -> Result<bool, ToolError> {
        match code {
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                self.member_id.clear();
                self.generation = -1;
            }
            REBALANCE_IN_PROGRESS => {}
            COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR | COORDINATOR_LOAD_IN_PROGRESS => {
                self.coordinator = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sends a Heartbeat when one is due; true when the member must join again.
    pub async fn heartbeat(&mut self) -> Result<bool, ToolError> {
        if self.last_heartbeat.elapsed() < self.config.heartbeat_interval {
            return Ok(false);
        }
        self.last_heartbeat = Instant::now();
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.config.group_id.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let admin = self.coordinator().await?;
        let code = match admin.send(request, 0).await {
            Ok(r) => r.error_code,
            Err(_) => COORDINATOR_NOT_AVAILABLE,
        };
        match code {
            0 => Ok(false),
            code if self.retry_after(code).await? => Ok(true),
            code => Err(ToolError::Kafka(kafka_message(code, None))),
        }
    }

    /// Commits `offsets` as this member (its generation and id); false when the group is
    /// rebalancing or no longer knows the member (the caller joins again and the offsets are
    /// committed after).
    pub async fn commit(&mut self, offsets: &BTreeMap<Partition, i64>) -> Result<bool, ToolError> {
        if offsets.is_empty() {
            return Ok(true);
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.config.group_id.clone())))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_retention_time_ms(-1)
            .with_topics(commit_topics(offsets));
        let admin = self.coordinator().await?;
        let response = admin.send_capped(request, 2, OFFSET_COMMIT_MAX_VERSION).await?;
        let code = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0);
        match code {
            0 => Ok(true),
            REBALANCE_IN_PROGRESS | UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => Ok(false),
            code => Err(ToolError::Kafka(format!(
                "Offset commit failed: {}",
                kafka_message(code, None)
            ))),
        }
    }

    /// Leaves the group (LeaveGroup), so the others are rebalanced at once instead of after the
    /// session timeout. Failures are ignored: the session timeout removes the member anyway.
    pub async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let group = GroupId(StrBytes::from_string(self.config.group_id.clone()));
        let member = StrBytes::from_string(self.member_id.clone());
        let Ok(admin) = self.coordinator().await else {
            return;
        };
        let request = if admin.version_of::<LeaveGroupRequest>(0).unwrap_or(0) >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group)
                .with_members(vec![MemberIdentity::default().with_member_id(member)])
        } else {
            LeaveGroupRequest::default().with_group_id(group).with_member_id(member)
        };
        let _ = admin.send(request, 0).await;
    }
}

/// The topics of a member's subscription (consumer protocol metadata, any version).
fn subscribed_topics(mut bytes: Bytes) -> Vec<String> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]).clamp(0, 3);
    let _ = bytes.split_to(2);
    ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

fn encode_assignment(partitions: &[Partition]) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    assignment.encode(&mut buf, 0).expect("a v0 assignment encodes");
    buf.freeze()
}

/// Kafka's RangeAssignor: per topic, its partitions in order split into contiguous ranges over the
/// members subscribed to it (sorted by member id), the first `partitions % members` getting one more.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<Partition>> {
    let mut assignment: BTreeMap<String, Vec<Partition>> =
        subscriptions.keys().map(|m| (m.clone(), Vec::new())).collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (per, extra) = (count / members.len() as i32, count % members.len() as i32);
        for (i, member) in members.into_iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            let partitions = assignment.get_mut(member).expect("every member has an entry");
            partitions.extend((start..start + len).map(|p| (topic.clone(), p)));
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_splits_each_topic_in_contiguous_ranges() {
        let subs: BTreeMap<String, Vec<String>> = [
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
            ("b".to_string(), vec!["t".to_string()]),
        ]
        .into();
        let counts = [("t".to_string(), 3), ("u".to_string(), 2)].into();
        let got = range_assign(&subs, &counts);
        let p = |t: &str, n: i32| (t.to_string(), n);
        assert_eq!(got["a"], [p("t", 0), p("t", 1), p("u", 0), p("u", 1)]);
        assert_eq!(got["b"], [p("t", 2)]);
    }

    #[test]
    fn assignments_and_subscriptions_round_trip() {
        let p = vec![("t".to_string(), 0), ("t".to_string(), 2)];
        assert_eq!(decode_assignment(encode_assignment(&p)), p);
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("x")])
            .encode(&mut buf, 1)
            .unwrap();
        assert_eq!(subscribed_topics(buf.freeze()), ["x"]);
    }
}
