//! Fetch: reads whole record batches from partition logs, long-polling until `min_bytes` are available
//! or `max_wait_ms` passes. Limits: `max_bytes` for the response, `partition_max_bytes` per partition,
//! and at least one batch from the first partition with data (so a batch larger than the limits still
//! makes progress, as in Kafka). On a plaintext connection the records are not read at all: the
//! response names each partition's segment file region (`fetch_frame`) and the connection sends it
//! with sendfile, so the memory budget is not charged for them. On TLS connections (and with
//! `fetch.zero.copy.enable=false`) they are read with one pread per partition after the partition
//! lock is released, and the bytes are reserved in the memory budget until the response is written.
//!
//! A fetch from a follower (a replica id in the request, or KIP-903's replica state from v15) is first
//! recorded with the replica manager, once per request (its progress moves the high watermark and may
//! add it to the ISR), and then reads up to the log end offset instead of the high watermark. Any
//! fetcher naming the epoch of its last record (v12+) is told where its log diverges from this one.
//!
//! Transactions (KIP-98): a consumer fetching with `isolation_level = 1` (READ_COMMITTED) reads up
//! to the last stable offset instead of the high watermark, and is told the aborted transactions
//! (producer id, first offset) of the range it gets, so it can skip their records. Every response
//! carries the last stable offset. The long poll wakes on every append and high watermark move,
//! which covers the last stable offset too (it moves only with a marker or the high watermark).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::fetch_frame::{FileRegion, PartitionRegion};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::log::{FetchSlice, ReadError};
use crate::network::MemoryPermit;
use crate::quota;
use crate::replication::FollowerRead;

pub const VERSIONS: VersionRange = VersionRange { min: 4, max: 17 };

/// `isolation_level` of a consumer that reads only committed transactional records.
const READ_COMMITTED: i8 = 1;

/// One planned partition read: where it goes in the response and what to read.
struct PlannedRead {
    topic: usize,
    partition: usize,
    slice: FetchSlice,
    /// A follower's read of a replica the leader-side throttle covers: its bytes count against it.
    throttled: bool,
}

struct Attempt {
    topics: Vec<FetchableTopicResponse>,
    reads: Vec<PlannedRead>,
    bytes: usize,
    has_error: bool,
}

/// A fetch's answer: the response, the memory its records hold, and the partitions whose records
/// stay in files (sent with sendfile; their records are empty in `response`).
pub struct Fetched {
    pub response: FetchResponse,
    pub permit: MemoryPermit,
    pub regions: Vec<PartitionRegion>,
}

/// `request_permit` is the budget held for the request itself; it is released before the data's
/// reservation is taken, so a fetch never holds memory while it waits for more.
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: FetchRequest,
    request_permit: MemoryPermit,
) -> Fetched {
    drop(request_permit);
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    let mut appends = broker.subscribe_appends();
    let leaderships = broker.replicas.subscribe_leaderships();
    let denied = denied_topics(broker, ctx, &request);
    let follower = if denied.iter().all(|d| *d) && !denied.is_empty() {
        None
    } else {
        record_follower_fetch(broker, ctx, &request)
    };
    let attempt = loop {
        appends.borrow_and_update();
        let attempt = plan(broker, &request, follower.as_ref(), &denied);
        // A follower's fetch also returns when this broker took over partitions meanwhile: the
        // follower may replicate some of them and should ask for them at once.
        let ready = attempt.bytes >= request.min_bytes.max(0) as usize
            || attempt.has_error
            || (follower.is_some() && leaderships.has_changed().unwrap_or(false))
            || tokio::time::Instant::now() >= deadline;
        if ready {
            break attempt;
        }
        tokio::select! {
            changed = appends.changed() => if changed.is_err() { break attempt },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    };
    let mut fetched = read(broker, attempt, ctx.connection.zero_copy).await;
    if ctx.version >= FIRST_LEADER_HINT_VERSION {
        name_current_leaders(broker, &ctx.connection.listener, &mut fetched.response);
    }
    if follower.is_some() {
        return fetched;
    }
    throttle_consumer(broker, ctx, fetched)
}

/// First Fetch version whose response names the current leader of a partition refused with
/// NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH, with its endpoint (KIP-951).
const FIRST_LEADER_HINT_VERSION: i16 = 16;

/// KIP-951: every partition refused because this broker does not lead it (at that epoch) names the
/// leader it knows, and the response carries those leaders' endpoints for the client's listener, so
/// the client fetches from the new leader without a Metadata round trip first.
fn name_current_leaders(broker: &Broker, listener: &str, response: &mut FetchResponse) {
    let not_leader = [
        ResponseError::NotLeaderOrFollower.code(),
        ResponseError::FencedLeaderEpoch.code(),
    ];
    let mut endpoints = std::collections::BTreeMap::new();
    for topic in &mut response.responses {
        let Some(name) = broker.metadata.topic_name(topic.topic.as_str(), topic.topic_id) else {
            continue;
        };
        for data in topic
            .partitions
            .iter_mut()
            .filter(|d| not_leader.contains(&d.error_code))
        {
            let leader = broker.metadata.current_leader(&name, data.partition_index, listener);
            data.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(leader.id))
                .with_leader_epoch(leader.epoch);
            if let Some((endpoint, rack)) = leader.node {
                endpoints.insert(
                    leader.id,
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(leader.id))
                        .with_host(str_bytes(&endpoint.host))
                        .with_port(i32::from(endpoint.port))
                        .with_rack(rack.as_deref().map(str_bytes)),
                );
            }
        }
    }
    response.node_endpoints = endpoints.into_values().collect();
}

/// A consumer's fetch counts against its `consumer_byte_rate` quota (`quota`): over it, the response
/// carries the throttle time and no data, as Kafka's throttled fetch response (the bytes are taken back,
/// since they were never sent; the client fetches them again after the throttle time).
fn throttle_consumer(broker: &Broker, ctx: &RequestContext<'_>, fetched: Fetched) -> Fetched {
    let bytes = fetched_bytes(&fetched);
    let image = broker.metadata.image();
    let now = crate::util::now_ms();
    let throttle_ms = broker
        .client_quotas
        .record(&image, quota::Kind::Fetch, ctx.user, ctx.client_id(), bytes, now);
    if throttle_ms == 0 {
        return fetched;
    }
    broker
        .client_quotas
        .unrecord(&image, quota::Kind::Fetch, ctx.user, ctx.client_id(), bytes);
    emptied(fetched, throttle_ms)
}

/// A consumer's fetch that its `request_percentage` quota throttles (KIP-124) goes out empty too, as
/// Kafka's `handleFetchRequest` sends it whichever quota throttled it; the bytes its byte-rate quota
/// counted are taken back, since they are not sent. A response the byte-rate quota already emptied
/// keeps the larger throttle time.
pub fn throttle_for_request_quota(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    fetched: Fetched,
    request_ms: i32,
) -> Fetched {
    if request_ms <= 0 {
        return fetched;
    }
    let bytes = fetched_bytes(&fetched);
    if bytes > 0 {
        broker.client_quotas.unrecord(
            &broker.metadata.image(),
            quota::Kind::Fetch,
            ctx.user,
            ctx.client_id(),
            bytes,
        );
    }
    let throttle_ms = fetched.response.throttle_time_ms.max(request_ms);
    emptied(fetched, throttle_ms)
}

/// The record bytes a fetch response carries, in memory and in segment regions.
fn fetched_bytes(fetched: &Fetched) -> u64 {
    let in_memory: u64 = fetched
        .response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref())
        .map(|r| r.len() as u64)
        .sum();
    in_memory + fetched.regions.iter().map(|r| r.region.len as u64).sum::<u64>()
}

/// Kafka's throttled fetch response: the throttle time, the session, no data.
fn emptied(fetched: Fetched, throttle_ms: i32) -> Fetched {
    let throttled = FetchResponse::default()
        .with_throttle_time_ms(throttle_ms)
        .with_session_id(fetched.response.session_id);
    Fetched {
        response: throttled,
        permit: MemoryPermit::none(),
        regions: Vec::new(),
    }
}

/// Per topic of the request, whether the caller may not read it (TOPIC_AUTHORIZATION_FAILED, as in
/// Kafka): a consumer needs READ on the topic, a follower CLUSTER_ACTION on the cluster.
fn denied_topics(broker: &Broker, ctx: &RequestContext<'_>, request: &FetchRequest) -> Vec<bool> {
    let access = ctx.access(broker);
    if !access.enabled() {
        return vec![false; request.topics.len()];
    }
    if replica_id(ctx, request).is_some() {
        let denied = !access.allows_cluster(Op::ClusterAction);
        return vec![denied; request.topics.len()];
    }
    request
        .topics
        .iter()
        .map(|t| {
            broker
                .metadata
                .topic_name(t.topic.as_str(), t.topic_id)
                .is_some_and(|n| !access.allows_topic(Op::Read, &n))
        })
        .collect()
}

/// The replica id of a follower's fetch (`None` for consumers).
fn replica_id(ctx: &RequestContext<'_>, request: &FetchRequest) -> Option<i32> {
    let id = if ctx.version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    (id >= 0).then_some(id)
}

/// What the leader decided for each partition of a follower's fetch: its id, and per (topic index,
/// partition index) what it may read or why not.
struct FollowerFetch {
    reads: std::collections::HashMap<(usize, usize), Result<FollowerRead, ResponseError>>,
}

/// Records a follower's fetch with the replica manager, once per request.
fn record_follower_fetch(broker: &Broker, ctx: &RequestContext<'_>, request: &FetchRequest) -> Option<FollowerFetch> {
    let follower = replica_id(ctx, request)?;
    let eligible = {
        let image = broker.metadata.image();
        image.brokers.get(&follower).is_some_and(|b| {
            !b.fenced
                && (ctx.version < 15
                    || request.replica_state.replica_epoch < 0
                    || b.epoch == request.replica_state.replica_epoch)
        })
    };
    let mut reads = std::collections::HashMap::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let name = broker.metadata.topic_name(topic.topic.as_str(), topic.topic_id);
        for (partition_index, wanted) in topic.partitions.iter().enumerate() {
            let read = match name.as_deref() {
                None => Err(ResponseError::UnknownTopicId),
                Some(name) => broker
                    .leader_replica_at(name, wanted.partition, wanted.current_leader_epoch)
                    .and_then(|hosted| {
                        broker.replicas.follower_fetch(
                            &hosted.tp,
                            follower,
                            wanted.fetch_offset,
                            wanted.log_start_offset,
                            wanted.last_fetched_epoch,
                            wanted.current_leader_epoch,
                            eligible,
                        )
                    }),
            };
            reads.insert((topic_index, partition_index), read);
        }
    }
    Some(FollowerFetch { reads })
}

fn plan(broker: &Broker, request: &FetchRequest, follower: Option<&FollowerFetch>, denied: &[bool]) -> Attempt {
    let mut remaining = if request.max_bytes <= 0 {
        usize::MAX
    } else {
        request.max_bytes as usize
    };
    let mut attempt = Attempt {
        topics: Vec::with_capacity(request.topics.len()),
        reads: Vec::new(),
        bytes: 0,
        has_error: false,
    };
    // Followers copy everything the leader has; consumers see only committed records, and
    // read_committed consumers only those of decided transactions.
    let read_committed = follower.is_none() && request.isolation_level == READ_COMMITTED;
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let name = broker.metadata.topic_name(topic.topic.as_str(), topic.topic_id);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (partition_index, wanted) in topic.partitions.iter().enumerate() {
            let mut data = PartitionData::default()
                .with_partition_index(wanted.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                .with_records(Some(Bytes::new()));
            let decided = follower.map(|f| f.reads.get(&(topic_index, partition_index)).copied());
            let found = match (name.as_deref(), decided) {
                _ if denied[topic_index] => Err(ResponseError::TopicAuthorizationFailed),
                (_, Some(Some(Err(error)))) => Err(error),
                (Some(n), _) => broker.leader_replica_at(n, wanted.partition, wanted.current_leader_epoch),
                (None, _) => Err(ResponseError::UnknownTopicId),
            };
            let found = match found {
                Ok(found) => found,
                Err(error) => {
                    attempt.has_error = true;
                    partitions.push(data.with_error_code(error.code()));
                    continue;
                }
            };
            let leader_throttled = matches!(decided, Some(Some(Ok(read))) if read.throttled);
            let diverging = match decided {
                Some(Some(Ok(read))) => read.diverging,
                Some(_) => None,
                None => broker
                    .replicas
                    .consumer_divergence(&found, wanted.fetch_offset, wanted.last_fetched_epoch),
            };
            let log = found.log.log.lock();
            let high_watermark = log.high_watermark();
            let last_stable_offset = log.last_stable_offset();
            data = data
                .with_high_watermark(high_watermark)
                .with_last_stable_offset(last_stable_offset)
                .with_log_start_offset(log.log_start_offset());
            if let Some((epoch, end_offset)) = diverging {
                // The fetcher truncates first; it gets no records until its log matches this one.
                attempt.has_error = true;
                data.diverging_epoch.epoch = epoch;
                data.diverging_epoch.end_offset = end_offset;
                partitions.push(data);
                continue;
            }
            if leader_throttled {
                // Over the leader's replication throttle: this out-of-sync replica waits.
                drop(log);
                partitions.push(data);
                continue;
            }
            let max_offset = if follower.is_some() {
                log.log_end_offset()
            } else if read_committed {
                last_stable_offset
            } else {
                high_watermark
            };
            let limit = (wanted.partition_max_bytes.max(0) as usize).min(remaining);
            let min_one_batch = attempt.bytes == 0;
            match log.read(wanted.fetch_offset, limit, max_offset, min_one_batch) {
                Ok(slice) => {
                    if read_committed {
                        data.aborted_transactions = Some(aborted_transactions(&log, wanted.fetch_offset, &slice));
                    }
                    drop(log);
                    if !slice.is_empty() {
                        remaining = remaining.saturating_sub(slice.len());
                        attempt.bytes += slice.len();
                        attempt.reads.push(PlannedRead {
                            topic: topic_index,
                            partition: partition_index,
                            slice,
                            throttled: follower.is_some() && broker.replicas.quotas().leader.is_throttled(&found.tp),
                        });
                    }
                }
                Err(ReadError::OffsetOutOfRange { .. }) => {
                    attempt.has_error = true;
                    data = data.with_error_code(ResponseError::OffsetOutOfRange.code());
                }
                Err(e) => {
                    broker.log_dirs.report(
                        "fetch",
                        &format_args!("fetch from {}-{}", name.as_deref().unwrap_or("?"), wanted.partition),
                        &e,
                    );
                    attempt.has_error = true;
                    data = data.with_error_code(ResponseError::KafkaStorageError.code());
                }
            }
            partitions.push(data);
        }
        attempt.topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    attempt
}

/// The aborted transactions of the range `slice` returns from `fetch_offset` (none for an empty read).
/// A failure to find where the read ends (an I/O error) reports those up to the last stable offset:
/// more than needed, which a consumer ignores, never fewer.
fn aborted_transactions(log: &crate::log::Log, fetch_offset: i64, slice: &FetchSlice) -> Vec<AbortedTransaction> {
    if slice.is_empty() {
        return Vec::new();
    }
    let upper_bound = log.fetch_upper_bound(slice).unwrap_or_else(|e| {
        tracing::warn!(dir = %log.dir().display(), "cannot find where a fetch ends: {e}");
        log.last_stable_offset()
    });
    log.aborted_transactions(fetch_offset, upper_bound)
        .into_iter()
        .map(|t| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(t.producer_id))
                .with_first_offset(t.first_offset)
        })
        .collect()
}

/// Most segment files one zero-copy response holds open until it is sent. A planned read names its
/// file without holding it (`FetchSlice`, so that the open-file budget holds), and a region must hold
/// it from before the frame length is written until the bytes are sent: a fetch with data in more
/// partitions than this (a consumer of thousands of partitions catching up) is read into memory
/// instead, one file at a time.
const ZERO_COPY_MAX_FILES: usize = 128;

/// Reads the planned records into memory (reserving them in the budget), or with `zero_copy` leaves
/// them in their files as regions for the connection to send (nothing reserved).
async fn read(broker: &Broker, mut attempt: Attempt, zero_copy: bool) -> Fetched {
    let mut total = 0u64;
    let mut throttled = 0u64;
    let with_data = attempt.reads.iter().filter(|r| !r.slice.is_empty()).count();
    if zero_copy && with_data <= ZERO_COPY_MAX_FILES {
        let mut regions = Vec::with_capacity(with_data);
        for planned in attempt.reads {
            let data = &mut attempt.topics[planned.topic].partitions[planned.partition];
            let file = match planned.slice.file() {
                Ok(Some(file)) if !planned.slice.is_empty() => file,
                // Nothing to read, or the segment was deleted since the read was planned.
                Ok(_) => continue,
                Err(e) => {
                    broker.log_dirs.report("fetch", &"opening fetched data", &e);
                    data.error_code = ResponseError::KafkaStorageError.code();
                    continue;
                }
            };
            let (position, len) = (planned.slice.position(), planned.slice.len());
            total += len as u64;
            if planned.throttled {
                throttled += len as u64;
            }
            regions.push(PartitionRegion {
                topic: planned.topic,
                partition: planned.partition,
                region: FileRegion { file, position, len },
            });
        }
        broker.metrics.record_fetch(total);
        broker.replicas.quotas().leader.record(throttled, crate::util::now_ms());
        return Fetched {
            response: FetchResponse::default().with_responses(attempt.topics),
            permit: MemoryPermit::none(),
            regions,
        };
    }
    let permit = if attempt.bytes > 0 {
        broker.budget.reserve(attempt.bytes).await
    } else {
        MemoryPermit::none()
    };
    for planned in attempt.reads {
        let data = &mut attempt.topics[planned.topic].partitions[planned.partition];
        match planned.slice.read() {
            Ok(bytes) => {
                total += bytes.len() as u64;
                if planned.throttled {
                    throttled += bytes.len() as u64;
                }
                data.records = Some(bytes);
            }
            Err(e) => {
                broker.log_dirs.report("fetch", &"reading fetched data", &e);
                data.error_code = ResponseError::KafkaStorageError.code();
            }
        }
    }
    broker.metrics.record_fetch(total);
    broker.replicas.quotas().leader.record(throttled, crate::util::now_ms());
    Fetched {
        response: FetchResponse::default().with_responses(attempt.topics),
        permit,
        regions: Vec::new(),
    }
}
