//! DescribeQuorum: the metadata log's leader, epoch (Raft term), high watermark, and every voter's log
//! end offset and last fetch / caught-up times, as `kafka-metadata-quorum describe --status` and
//! `--replication` show them. Only the leader knows the followers' progress, so a follower answers
//! NOT_LEADER_OR_FOLLOWER, as a KRaft controller does; Kafka's admin client then asks the leader.
//!
//! Offsets are Kafka's: exclusive (the next index), so a log whose last Raft index is 7 has log end
//! offset 8. The high watermark is the last applied (committed) index plus one.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use openraft::ServerState;

use super::{now_ms, str_bytes, ClientContext};
use crate::METADATA_TOPIC;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub fn handle(ctx: &ClientContext, version: i16, _request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let m = ctx.node.raft.metrics().borrow().clone();
    let partition = PartitionData::default().with_partition_index(0);
    let partition = if m.state != ServerState::Leader {
        partition
            .with_error_code(ResponseError::NotLeaderOrFollower.code())
            .with_error_message(Some(str_bytes(&format!(
                "coordinator {} is not the leader of the metadata quorum; ask coordinator {}",
                ctx.node.id,
                m.current_leader
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "(none elected)".into())
            ))))
            .with_leader_id(BrokerId(m.current_leader.map(|l| l as i32).unwrap_or(-1)))
            .with_leader_epoch(m.current_term as i32)
    } else {
        let now = now_ms();
        let last = m.last_log_index;
        let caught_up = ctx.caught_up.lock().clone();
        let voters = m
            .membership_config
            .membership()
            .voter_ids()
            .map(|id| {
                let matched = if id == m.id {
                    last
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id).copied().flatten())
                        .map(|l| l.index)
                };
                let current = matched.is_some() && matched == last;
                let seen = if id == m.id || current {
                    now
                } else {
                    caught_up.get(&id).copied().unwrap_or(-1)
                };
                ReplicaState::default()
                    .with_replica_id(BrokerId(id as i32))
                    .with_log_end_offset(matched.map(|i| i as i64 + 1).unwrap_or(0))
                    .with_last_fetch_timestamp(if version >= 1 { seen } else { -1 })
                    .with_last_caught_up_timestamp(if version >= 1 { seen } else { -1 })
            })
            .collect();
        let high_watermark = m.last_applied.map(|l| l.index as i64 + 1).unwrap_or(0);
        // Brokers follow the metadata log without voting: KRaft lists them as observers. Their log end
        // is the metadata offset of their last heartbeat (+1, like the voters' log end offsets).
        let offsets = ctx.broker_offsets.lock().clone();
        let observers = ctx
            .node
            .state
            .image()
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| {
                let (offset, seen) = offsets.get(&b.broker_id).copied().unwrap_or((-1, -1));
                let end = offset + 1;
                ReplicaState::default()
                    .with_replica_id(BrokerId(b.broker_id))
                    .with_log_end_offset(end.max(0))
                    .with_last_fetch_timestamp(if version >= 1 { seen } else { -1 })
                    .with_last_caught_up_timestamp(if version >= 1 && end >= high_watermark {
                        seen
                    } else {
                        -1
                    })
            })
            .collect();
        partition
            .with_leader_id(BrokerId(m.id as i32))
            .with_leader_epoch(m.current_term as i32)
            .with_high_watermark(high_watermark)
            .with_current_voters(voters)
            .with_observers(observers)
    };
    let topic = TopicData::default()
        .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    let mut response = DescribeQuorumResponse::default().with_topics(vec![topic]);
    if version >= 2 {
        response.nodes = ctx
            .voters
            .values()
            .map(|v| {
                Node::default()
                    .with_node_id(BrokerId(v.id.0 as i32))
                    .with_listeners(vec![Listener::default()
                        .with_name(str_bytes("CONTROLLER"))
                        .with_host(str_bytes(&v.client_host))
                        .with_port(v.client_port)])
            })
            .collect();
    }
    response
}
