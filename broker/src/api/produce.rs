//! Produce: appends each partition's record batches to its log as leader (offsets and the leader epoch
//! assigned here, batches validated by header and CRC, stored as the client sent them). acks=0 gets no
//! response; acks=1 is answered once the leader has written the records; acks=-1 (all) once every
//! in-sync replica has them (the high watermark passed them), with `min.insync.replicas` enforced, or
//! after the request's `timeout_ms` with REQUEST_TIMED_OUT. All partitions are appended first
//! (`append_all`), then waited for (`Appending::respond`), so a request spanning many partitions waits
//! about as long as its slowest one, and the connection may read the client's next Produce meanwhile.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Access, Op, Resource};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::log::{AppendError, AppendInfo, TopicPartition, VerificationGuard};
use crate::replication::{AppendFailure, HostedPartition};
use crate::txn_verify::Verified;

pub const VERSIONS: VersionRange = VersionRange { min: 3, max: 12 };

pub use crate::util::now_ms;

type Failure = (ResponseError, Option<String>);

/// A partition written and, for acks=all, still to be waited for.
struct Appended {
    info: AppendInfo,
    pending: Option<(std::sync::Arc<HostedPartition>, i32)>,
}

/// A Produce whose partitions are appended: what is left is waiting for the in-sync replicas (acks=all)
/// and building the response. Owns everything it needs, so the wait can run on its own task while the
/// connection reads the client's next Produce (see `runtime::server`).
pub struct Appending {
    deadline: tokio::time::Instant,
    topics: Vec<TopicProduceResponse>,
    /// Each topic's name, by its index in `topics` (None: an unknown topic id).
    names: Vec<Option<String>>,
    outcomes: Vec<(usize, i32, Result<Appended, Failure>)>,
}

/// First Produce version whose response names the current leader of a partition refused with
/// NOT_LEADER_OR_FOLLOWER (KIP-951).
const FIRST_LEADER_HINT_VERSION: i16 = 10;

pub async fn handle(
    broker: &std::sync::Arc<Broker>,
    ctx: &RequestContext<'_>,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let verified = crate::txn_verify::verify_produce(broker, &request).await;
    Some(
        append_all(broker, &ctx.access(broker), request, &verified)?
            .respond(broker, leader_hints(ctx.version, &ctx.connection.listener))
            .await,
    )
}

/// Phase 1: appends every partition, in the order of the request. `None` for acks=0 (no response).
/// A topic the caller may not WRITE gets TOPIC_AUTHORIZATION_FAILED, as in Kafka.
///
/// `verified`: the partitions whose first transactional batch the transaction coordinator was asked
/// about (`txn_verify::verify_produce`), appended with the guard or refused with its error.
pub fn append_all(
    broker: &Broker,
    access: &Access<'_>,
    request: ProduceRequest,
    verified: &Verified,
) -> Option<Appending> {
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    // A transactional produce needs WRITE on its transactional id (checked once for the request).
    let txn_denied = request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !access.allows(Op::Write, Resource::TransactionalId, id.as_str()));
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut outcomes: Vec<(usize, i32, Result<Appended, Failure>)> = Vec::new();
    let mut names = Vec::with_capacity(request.topic_data.len());
    for (topic_index, topic) in request.topic_data.iter().enumerate() {
        let name = broker.metadata.topic_name(topic.name.as_str(), topic.topic_id);
        names.push(name.clone());
        for data in &topic.partition_data {
            let outcome = if !valid_acks {
                Err((ResponseError::InvalidRequiredAcks, None))
            } else if name.as_deref().is_some_and(|n| !access.allows_topic(Op::Write, n)) {
                Err((ResponseError::TopicAuthorizationFailed, None))
            } else if txn_denied {
                Err((ResponseError::TransactionalIdAuthorizationFailed, None))
            } else {
                let guard = name
                    .as_deref()
                    .and_then(|n| verified.get(&TopicPartition::new(n, data.index)));
                match guard {
                    Some(Err(e)) => Err((
                        *e,
                        Some("the transaction coordinator does not have this partition in the producer's ongoing transaction".to_string()),
                    )),
                    guard => append(
                        broker,
                        name.as_deref(),
                        data.index,
                        data.records.as_deref().unwrap_or_default(),
                        acks,
                        guard.and_then(|g| g.as_ref().ok()).copied(),
                    ),
                }
            };
            outcomes.push((topic_index, data.index, outcome));
        }
    }
    if acks == 0 {
        return None;
    }
    let topics = request
        .topic_data
        .iter()
        .map(|t| {
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
        })
        .collect();
    Some(Appending {
        deadline: tokio::time::Instant::now() + timeout,
        topics,
        names,
        outcomes,
    })
}

impl Appending {
    /// Whether the response waits for replicas (acks=all with a partition appended).
    pub fn awaits_replicas(&self) -> bool {
        self.outcomes
            .iter()
            .any(|(_, _, o)| matches!(o, Ok(Appended { pending: Some(_), .. })))
    }

    /// Phase 2: acks=all waits until the in-sync replicas have each partition's records, at most until
    /// the request's timeout; then the response. `leader_hints`: the listener whose endpoints name the
    /// current leader of partitions refused with NOT_LEADER_OR_FOLLOWER (`leader_hints()`), None for
    /// versions before KIP-951.
    pub async fn respond(self, broker: &Broker, leader_hints: Option<&str>) -> ProduceResponse {
        let Appending {
            deadline,
            mut topics,
            names,
            outcomes,
        } = self;
        let mut node_endpoints = std::collections::BTreeMap::new();
        for (topic_index, index, outcome) in outcomes {
            let outcome = match outcome {
                Ok(Appended {
                    info,
                    pending: Some((hosted, leader_epoch)),
                }) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    broker
                        .replicas
                        .await_replication(&hosted, leader_epoch, info.last_offset + 1, left)
                        .await
                        .map(|()| info)
                        .map_err(|f| (f.error, f.message))
                }
                Ok(Appended { info, pending: None }) => Ok(info),
                Err(failure) => Err(failure),
            };
            let response = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            topics[topic_index].partition_responses.push(match outcome {
                Ok(info) => response
                    .with_base_offset(info.base_offset)
                    .with_log_append_time_ms(info.log_append_time)
                    .with_log_start_offset(info.log_start_offset),
                Err((error, message)) => {
                    let mut response = response
                        .with_error_code(error.code())
                        .with_error_message(message.as_deref().map(str_bytes));
                    if let (ResponseError::NotLeaderOrFollower, Some(listener), Some(topic)) =
                        (error, leader_hints, names[topic_index].as_deref())
                    {
                        let leader = broker.metadata.current_leader(topic, index, listener);
                        response.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader.id))
                            .with_leader_epoch(leader.epoch);
                        if let Some((endpoint, rack)) = leader.node {
                            node_endpoints.insert(
                                leader.id,
                                NodeEndpoint::default()
                                    .with_node_id(BrokerId(leader.id))
                                    .with_host(str_bytes(&endpoint.host))
                                    .with_port(i32::from(endpoint.port))
                                    .with_rack(rack.as_deref().map(str_bytes)),
                            );
                        }
                    }
                    response
                }
            });
        }
        ProduceResponse::default()
            .with_responses(topics)
            .with_node_endpoints(node_endpoints.into_values().collect())
    }
}

/// The listener to name leaders for in a Produce response of `version` (KIP-951), if it has the fields.
pub fn leader_hints(version: i16, listener: &str) -> Option<&str> {
    (version >= FIRST_LEADER_HINT_VERSION).then_some(listener)
}

fn append(
    broker: &Broker,
    topic: Option<&str>,
    partition: i32,
    records: &[u8],
    acks: i16,
    guard: Option<VerificationGuard>,
) -> Result<Appended, Failure> {
    let topic = topic.ok_or((ResponseError::UnknownTopicId, None))?;
    // Metadata first: UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist at all.
    broker.leader_replica_at(topic, partition, -1).map_err(|e| {
        let message = (e == ResponseError::KafkaStorageError).then(|| {
            "this broker could not create the partition's log (a full disk, or no file descriptors left: see \
             its log); it retries with backoff"
                .to_string()
        });
        (e, message)
    })?;
    let tp = TopicPartition::new(topic, partition);
    let appended = match guard {
        Some(guard) => broker.replicas.append_verified(&tp, records, acks, guard),
        None => broker.replicas.append_now(&tp, records, acks),
    };
    match appended {
        Ok((hosted, info, leader_epoch)) => {
            broker
                .metrics
                .record_produce(topic, info.record_count as u64, info.bytes as u64);
            let pending = (acks == -1).then_some((hosted, leader_epoch));
            Ok(Appended { info, pending })
        }
        Err(AppendFailure {
            error,
            message,
            append_error,
        }) => {
            let after_failed_write = matches!(append_error, Some(AppendError::AfterFailedWrite { .. }));
            if error == ResponseError::KafkaStorageError && !after_failed_write {
                // Once per interval with a count: a producer retrying into a full disk must not write a
                // line per attempt.
                broker.log_dirs.report(
                    "append",
                    &format_args!("append to {tp}"),
                    &message.as_deref().unwrap_or_default(),
                );
            } else if append_error.is_some() {
                tracing::debug!(
                    topic,
                    partition,
                    "append refused: {}",
                    message.as_deref().unwrap_or_default()
                );
            }
            broker.metrics.record_failed_produce(topic);
            Err((error, message))
        }
    }
}
