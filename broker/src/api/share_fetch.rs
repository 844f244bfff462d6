//! ShareFetch (KIP-932): a share group member acknowledges what it processed and acquires records
//! of the partitions in its share session. Each partition's share partition (`group::share::
//! partition`) decides which offsets this member acquires; the response carries the whole batches
//! the log holds around them (the client keeps only the acquired offsets) and the acquired ranges
//! with their delivery counts. With nothing to acquire it waits up to `MaxWaitMs` for an append or
//! a released record (an acknowledgement, a leaving member, or an acquisition lock the share-partition
//! timer found expired: `share_state::timer`). A ShareFetch opening a share session first checks that
//! the share partitions loaded here were not reset meanwhile (`persister::revalidate`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_fetch_response::{AcquiredRecords, PartitionData, ShareFetchableTopicResponse};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::authorize::Op;
use super::share_acknowledge::{ack_code, acknowledge_partition, persist, session_error, topic_names};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::share::partition::LogBatch;
use crate::group::share::session::SessionStep;
use crate::log::batch::BatchHeader;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

/// The client's default `max.poll.records`, when a request names no limit.
const DEFAULT_MAX_RECORDS: usize = 500;

/// One partition's part of the response being built.
#[derive(Default)]
struct Partial {
    error: Option<ResponseError>,
    ack: Option<(Option<ResponseError>, Option<String>)>,
    records: Option<Bytes>,
    acquired: Vec<AcquiredRecords>,
    leader_epoch: i32,
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext<'_>, request: ShareFetchRequest) -> ShareFetchResponse {
    let fail = |e: ResponseError, message: &str| {
        ShareFetchResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if !broker.groups.config.share_enabled {
        return fail(ResponseError::UnsupportedVersion, "Share groups are disabled.");
    }
    let group_id = request.group_id.as_ref().map(|g| g.0.to_string()).unwrap_or_default();
    let member_id = request.member_id.as_ref().map(|m| m.to_string()).unwrap_or_default();
    if group_id.is_empty() || member_id.is_empty() {
        return fail(ResponseError::InvalidRequest, "GroupId and MemberId must be set.");
    }
    if let Err(e) = ctx.group_allowed(broker, Op::Read, &group_id) {
        return fail(e, "Not authorized to read the group.");
    }
    let names = topic_names(broker);
    let share = &broker.groups.share;
    let epoch = request.share_session_epoch;
    let added: Vec<(Uuid, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.partition_index)))
        .collect();
    let forgotten: Vec<(Uuid, i32)> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    // Acknowledgements first (before a closing session releases what is left).
    let mut parts: BTreeMap<(Uuid, i32), Partial> = BTreeMap::new();
    if epoch != 0 {
        for t in &request.topics {
            for p in t.partitions.iter().filter(|p| !p.acknowledgement_batches.is_empty()) {
                let batches: Vec<(i64, i64, Vec<i8>)> = p
                    .acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                    .collect();
                let name = names.get(&t.topic_id).map(String::as_str);
                let ack = acknowledge_partition(
                    broker,
                    ctx,
                    (&group_id, &member_id),
                    name,
                    (t.topic_id, p.partition_index),
                    &batches,
                );
                parts.entry((t.topic_id, p.partition_index)).or_default().ack = Some(ack);
            }
        }
    }
    let session = match share.session_step(&group_id, &member_id, epoch, &added, &forgotten) {
        Ok(SessionStep::Open { partitions }) => partitions,
        Ok(SessionStep::Closed) => Default::default(),
        Err(e) => return fail(session_error(e), "The share session does not accept this epoch."),
    };
    for p in &added {
        parts.entry(*p).or_default();
    }
    let max_records = usize::try_from(request.max_records)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_RECORDS);
    let max_bytes = usize::try_from(request.max_bytes)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(50 << 20);
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let mut appends = broker.subscribe_appends();
    let mut available = share.subscribe_available();
    if epoch == 0 {
        let keys: Vec<(String, Uuid, i32)> = session.iter().map(|(t, p)| (group_id.clone(), *t, *p)).collect();
        crate::share_state::persister::revalidate(broker, keys).await;
    }
    loop {
        let all_loaded = load_session(broker, &group_id, &names, &session).await;
        let got = fetch_once(
            broker,
            ctx,
            &group_id,
            &member_id,
            &names,
            &session,
            max_records,
            max_bytes,
            &mut parts,
        );
        let now = Instant::now();
        if got || session.is_empty() || now >= deadline || parts.values().any(|p| p.error.is_some()) {
            break;
        }
        // A share partition that could not be loaded is tried again soon; otherwise only an append
        // or a release can give this member records.
        let wait = if all_loaded {
            deadline - now
        } else {
            (deadline - now).min(Duration::from_millis(200))
        };
        let _ = tokio::time::timeout(wait, async {
            tokio::select! {
                _ = appends.changed() => {}
                _ = available.changed() => {}
            }
        })
        .await;
    }
    let keys: Vec<(String, Uuid, i32)> = parts.keys().map(|(t, p)| (group_id.clone(), *t, *p)).collect();
    for ((topic_id, partition), (e, message)) in persist(broker, keys).await {
        if let Some(Some((None, _))) = parts.get(&(topic_id, partition)).map(|p| &p.ack) {
            parts.get_mut(&(topic_id, partition)).expect("present").ack = Some((Some(e), Some(message)));
        }
    }
    respond(broker, share.limits().lock_duration_ms, parts)
}

/// Loads the session's share partitions this broker leads that are not loaded at their current
/// leader epoch (`share_state::persister::load`). One that cannot be loaded now (its share
/// coordinator is unavailable) delivers nothing this time; false then.
async fn load_session(
    broker: &Broker,
    group_id: &str,
    names: &BTreeMap<Uuid, String>,
    session: &std::collections::BTreeSet<(Uuid, i32)>,
) -> bool {
    let mut all_loaded = true;
    for &(topic_id, partition) in session {
        let Some(name) = names.get(&topic_id) else {
            continue;
        };
        let Ok(found) = broker.leader_replica_at(name, partition, -1) else {
            continue;
        };
        let leader_epoch = found.leader_epoch().0;
        let key = (group_id.to_string(), topic_id, partition);
        if !broker.groups.share.needs_load(&key, leader_epoch) {
            continue;
        }
        let high_watermark = found.log.log.lock().high_watermark();
        if let Err(e) = crate::share_state::persister::load(broker, &key, leader_epoch, high_watermark).await {
            all_loaded = false;
            let errors = &broker.groups.share.persist_errors;
            if let Some(count) = errors.should_log("load") {
                tracing::warn!(
                    "cannot load share partition {group_id}:{name}-{partition}; it delivers nothing until it can: {e}{}",
                    errors.repeats(count)
                );
            }
        }
    }
    all_loaded
}

/// One pass over the session's partitions; whether any records were acquired.
#[allow(clippy::too_many_arguments)]
fn fetch_once(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    group_id: &str,
    member_id: &str,
    names: &BTreeMap<Uuid, String>,
    session: &std::collections::BTreeSet<(Uuid, i32)>,
    max_records: usize,
    max_bytes: usize,
    parts: &mut BTreeMap<(Uuid, i32), Partial>,
) -> bool {
    let share = &broker.groups.share;
    let access = ctx.access(broker);
    let (mut records_left, mut bytes_left) = (max_records, max_bytes);
    let mut got = false;
    for &(topic_id, partition) in session {
        if records_left == 0 || bytes_left == 0 {
            break;
        }
        let part = parts.entry((topic_id, partition)).or_default();
        if !part.acquired.is_empty() {
            continue;
        }
        let Some(name) = names.get(&topic_id) else {
            part.error = Some(ResponseError::UnknownTopicId);
            continue;
        };
        if !access.allows_topic(Op::Read, name) {
            part.error = Some(ResponseError::TopicAuthorizationFailed);
            continue;
        }
        let found = match broker.leader_replica_at(name, partition, -1) {
            Ok(found) => found,
            Err(e) => {
                part.error = Some(e);
                continue;
            }
        };
        part.leader_epoch = found.leader_epoch().0;
        let (high_watermark, log_start_offset) = {
            let log = found.log.log.lock();
            (log.high_watermark(), log.log_start_offset())
        };
        let key = (group_id.to_string(), topic_id, partition);
        let now_ms = crate::util::now_ms();
        let leader_epoch = found.leader_epoch().0;
        let Some(offset) = share.fetch_offset(&key, leader_epoch, log_start_offset, now_ms) else {
            continue;
        };
        if offset >= high_watermark {
            continue;
        }
        let planned = found.log.log.lock().read(offset, bytes_left, high_watermark, true);
        let bytes = match planned.map(|slice| slice.read()) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                broker.log_dirs.report("share fetch", &"reading fetched data", &e);
                part.error = Some(ResponseError::KafkaStorageError);
                continue;
            }
            Err(e) => {
                tracing::debug!(topic = name, partition, "share fetch read at {offset} failed: {e}");
                continue;
            }
        };
        let batches = log_batches(&bytes);
        let acquired = share.acquire(&key, leader_epoch, member_id, &batches, records_left, now_ms);
        if acquired.is_empty() {
            continue;
        }
        let count: i64 = acquired.iter().map(|a| a.last_offset - a.first_offset + 1).sum();
        records_left = records_left.saturating_sub(count as usize);
        bytes_left = bytes_left.saturating_sub(bytes.len());
        part.acquired = acquired
            .iter()
            .map(|a| {
                AcquiredRecords::default()
                    .with_first_offset(a.first_offset)
                    .with_last_offset(a.last_offset)
                    .with_delivery_count(a.delivery_count)
            })
            .collect();
        part.records = Some(bytes);
        got = true;
    }
    got
}

/// The batches in a read of the log (whole batches, as `Log::read` plans them).
fn log_batches(bytes: &[u8]) -> Vec<LogBatch> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Ok(header) = BatchHeader::parse(&bytes[pos..]) else {
            break;
        };
        if pos + header.size() > bytes.len() {
            break;
        }
        out.push(LogBatch {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            control: header.is_control(),
        });
        pos += header.size();
    }
    out
}

fn respond(broker: &Broker, lock_duration_ms: i64, parts: BTreeMap<(Uuid, i32), Partial>) -> ShareFetchResponse {
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((topic_id, partition), part) in parts {
        let (ack_error, ack_message) = part.ack.unwrap_or((None, None));
        let mut data = PartitionData::default()
            .with_partition_index(partition)
            .with_error_code(part.error.map_or(0, |e| e.code()))
            .with_acknowledge_error_code(ack_code(ack_error))
            .with_acknowledge_error_message(ack_message.map(|m| str_bytes(&m)))
            // Not nullable in Kafka's schema (the Java client refuses a null): empty when none.
            .with_records(Some(part.records.unwrap_or_default()))
            .with_acquired_records(part.acquired);
        data.current_leader.leader_id = broker.broker_id();
        data.current_leader.leader_epoch = part.leader_epoch;
        topics.entry(topic_id).or_default().push(data);
    }
    ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(lock_duration_ms.clamp(0, i32::MAX as i64) as i32)
        .with_responses(
            topics
                .into_iter()
                .map(|(topic_id, partitions)| {
                    ShareFetchableTopicResponse::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
}
