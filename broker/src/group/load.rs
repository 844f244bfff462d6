//! Start-up replay of `__consumer_offsets`: reads every partition from its log start offset to its log
//! end offset, decodes the records (uncompressed v2 batches, as this broker writes them) and rebuilds
//! committed offsets and group metadata, later records winning. Groups with members come back Stable
//! with fresh sessions: members that do not heartbeat within their session timeout expire as usual.
//! Share groups' records (types 10 to 15) rebuild share groups, handed to the share runtime
//! (`ShareCoordinator::install_groups`); they never make a classic or consumer group.
//!
//! Transactional offsets (Kafka's `doLoadGroupsAndOffsets` with pending transactional commits): the
//! offset records of a transactional batch are pending for the batch's producer id; a control batch
//! of that producer (COMMIT or ABORT marker) in the same partition ends them in log order, with the
//! rule of `txn_offsets` (a committed offset is replaced only by a later record); a plain offset
//! tombstone removes pending offsets of its partition too. Transactions still open at the log end
//! stay pending, for the marker the transaction coordinator will write.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::classic_group::{Group, GroupState};
use super::consumer::replay::ReplayedConsumer;
use super::consumer_coordinator::HostTopics;
use super::coordinator::{GroupCoordinator, OFFSETS_TOPIC};
use super::host::GroupHost;
use super::member::{Member, Protocol};
use super::offsets::CommittedOffset;
use super::records::{decode_group_value, decode_key, decode_offset_value, GroupMetadataValue, RecordError, RecordKey};
use super::share::records::ReplayedShare;
use super::txn_offsets::ProducerId;
use crate::log::batch::{batch_size_from_prefix, validate_batch, HEADER_SIZE, LOG_OVERHEAD};
use crate::log::plain_records::plain_records;
use crate::log::TopicPartition;
use crate::util::now_ms;

/// What a replay found, for the start-up log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadSummary {
    pub partitions: usize,
    pub records: usize,
    pub skipped: usize,
    pub groups: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {OFFSETS_TOPIC}-{partition} at offset {offset}: {reason}")]
    Read {
        partition: i32,
        offset: i64,
        reason: String,
    },
}

/// A group being rebuilt: its latest metadata (None after a tombstone), offsets (None after a
/// tombstone) and pending transactional offsets per producer id.
#[derive(Default)]
struct Replayed {
    metadata: Option<GroupMetadataValue>,
    /// The records of a consumer-protocol group (`consumer::records`).
    consumer: ReplayedConsumer,
    /// The records of a share group (`share::records`): a share group lives in the share runtime,
    /// never in the classic and consumer groups' map.
    share: ReplayedShare,
    offsets: BTreeMap<(String, i32), Option<CommittedOffset>>,
    pending: BTreeMap<ProducerId, BTreeMap<(String, i32), CommittedOffset>>,
}

/// The groups of one `__consumer_offsets` partition with pending offsets, per producer id: what a
/// marker in that partition ends. Per partition, since a producer's markers reach each partition
/// of the transaction separately.
type OpenTxns = HashMap<ProducerId, BTreeSet<String>>;

/// Control record types (Kafka's `ControlRecordType`).
const ABORT_MARKER: i16 = 0;
const COMMIT_MARKER: i16 = 1;

impl GroupCoordinator {
    /// Rebuilds all groups from every `__consumer_offsets` partition this broker has a log of.
    pub fn load(&self, broker: &impl GroupHost) -> Result<LoadSummary, LoadError> {
        let Some(topic) = broker.topic(OFFSETS_TOPIC) else {
            return Ok(LoadSummary::default());
        };
        self.load_partitions(broker, &(0..topic.partitions).collect::<Vec<_>>())
    }

    /// Rebuilds the groups of the given `__consumer_offsets` partitions from their logs (this broker
    /// has just become their leader), replacing whatever memory held for those groups.
    pub fn load_partitions(&self, broker: &impl GroupHost, partitions: &[i32]) -> Result<LoadSummary, LoadError> {
        let mut summary = LoadSummary::default();
        let mut replayed: HashMap<String, Replayed> = HashMap::new();
        for &partition in partitions {
            let Some(p) = broker.partition(OFFSETS_TOPIC, partition) else {
                continue;
            };
            summary.partitions += 1;
            let mut open = OpenTxns::new();
            let mut offset = p.log.lock().log_start_offset();
            loop {
                let read = {
                    let log = p.log.lock();
                    log.read(offset, 1 << 20, log.log_end_offset(), true)
                };
                let fail = |reason: String| LoadError::Read {
                    partition,
                    offset,
                    reason,
                };
                let slice = read.map_err(|e| fail(e.to_string()))?;
                if slice.is_empty() {
                    break;
                }
                let bytes = slice.read().map_err(|e| fail(e.to_string()))?;
                let next = replay_batches(&bytes, &mut replayed, &mut open, &mut summary);
                if next <= offset {
                    break;
                }
                offset = next;
            }
        }
        let now = now_ms();
        let mut share_groups = Vec::new();
        for (group_id, r) in replayed.iter_mut() {
            if let Some(group) = std::mem::take(&mut r.share).rebuild(now) {
                share_groups.push((group_id.clone(), group));
            }
        }
        summary.groups += share_groups.len();
        self.share
            .install_groups(|g| partitions.contains(&self.partition_of(broker, g)), share_groups);
        let session_ms = i64::from(self.config.consumer_session_timeout_ms);
        let lookup = HostTopics(broker);
        self.with_inner(|inner| {
            for (group_id, r) in replayed {
                match rebuild(&group_id, r, now, session_ms) {
                    Some(mut group) => {
                        if let Some(consumer) = group.consumer.as_mut() {
                            // The topics as they are now are what the stored target was computed
                            // from (Kafka keeps a hash of them in the group's metadata record).
                            consumer.refresh_topics(&lookup);
                        }
                        inner.groups.insert(group_id, group);
                        summary.groups += 1;
                    }
                    None => {
                        inner.groups.remove(&group_id);
                    }
                }
            }
        });
        Ok(summary)
    }
}

/// The group a replay found, or None when nothing of it is left (deleted, or offsets only and all
/// of them removed).
fn rebuild(group_id: &str, r: Replayed, now: i64, consumer_session_ms: i64) -> Option<Group> {
    let mut group = match &r.metadata {
        Some(m) => group_from_metadata(group_id, m, now),
        None => Group::new(group_id, now),
    };
    for ((topic, partition), offset) in r.offsets {
        if let Some(o) = offset {
            group.offsets.insert(TopicPartition { topic, partition }, o);
        }
    }
    for (producer_id, offsets) in r.pending {
        let offsets = offsets
            .into_iter()
            .map(|((topic, partition), o)| (TopicPartition { topic, partition }, o));
        group.prepare_txn_offsets(producer_id, offsets);
    }
    group.consumer = r.consumer.rebuild(now, consumer_session_ms).map(Box::new);
    if group.consumer.is_some() {
        group.protocol_type = Some("consumer".to_string());
    }
    let nothing_left = r.metadata.is_none()
        && group.consumer.is_none()
        && group.offsets.is_empty()
        && group.pending_txn_offsets.is_empty();
    (!nothing_left).then_some(group)
}

/// Replays the batches of one `__consumer_offsets` partition into the groups they leave (tests of
/// the runtime compare what it holds in memory with what its log replays to).
#[cfg(test)]
pub(super) fn replay_partition(bytes: &[u8]) -> HashMap<String, Group> {
    let mut replayed = HashMap::new();
    replay_batches(bytes, &mut replayed, &mut OpenTxns::new(), &mut LoadSummary::default());
    replayed
        .into_iter()
        .filter_map(|(id, r)| rebuild(&id, r, 0, 0).map(|g| (id, g)))
        .collect()
}

/// Applies every whole batch in `bytes` (of one partition, whose open transactions are `open`);
/// returns the offset after the last one read.
fn replay_batches(
    bytes: &[u8],
    replayed: &mut HashMap<String, Replayed>,
    open: &mut OpenTxns,
    summary: &mut LoadSummary,
) -> i64 {
    let mut pos = 0;
    let mut next = -1;
    while bytes.len() - pos >= HEADER_SIZE {
        let Ok(size) = batch_size_from_prefix(&bytes[pos..pos + LOG_OVERHEAD]) else {
            break;
        };
        if bytes.len() - pos < size {
            break;
        }
        let batch = &bytes[pos..pos + size];
        pos += size;
        let header = match validate_batch(batch) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("skipping a corrupt batch in {OFFSETS_TOPIC}: {e}");
                summary.skipped += 1;
                continue;
            }
        };
        next = header.next_offset();
        if header.is_control() {
            match control_type(&batch[HEADER_SIZE..], header.records_count) {
                Some(marker @ (ABORT_MARKER | COMMIT_MARKER)) => {
                    end_txn(replayed, open, header.producer_id, marker == COMMIT_MARKER)
                }
                _ => {
                    tracing::warn!(
                        offset = header.base_offset,
                        "skipping an unknown control batch in {OFFSETS_TOPIC}"
                    );
                    summary.skipped += 1;
                }
            }
            continue;
        }
        if header.compression() != 0 {
            tracing::warn!(
                offset = header.base_offset,
                "skipping a compressed batch in {OFFSETS_TOPIC}"
            );
            summary.skipped += 1;
            continue;
        }
        let txn = (header.is_transactional() && header.has_producer_id()).then_some(header.producer_id);
        match plain_records(&batch[HEADER_SIZE..], header.records_count) {
            Some(list) => {
                for (offset_delta, key, value) in list {
                    let at = Position {
                        record_offset: header.base_offset + offset_delta,
                        txn,
                    };
                    match apply(replayed, open, at, key, value) {
                        Ok(()) => summary.records += 1,
                        Err(e) => {
                            tracing::warn!(offset = header.base_offset, "skipping a record in {OFFSETS_TOPIC}: {e}");
                            summary.skipped += 1;
                        }
                    }
                }
            }
            None => {
                tracing::warn!(
                    offset = header.base_offset,
                    "skipping an undecodable batch in {OFFSETS_TOPIC}"
                );
                summary.skipped += 1;
            }
        }
    }
    next
}

/// Where a record sits: its offset, and the producer id of its transaction if it is in one.
#[derive(Debug, Clone, Copy)]
struct Position {
    record_offset: i64,
    txn: Option<ProducerId>,
}

fn apply(
    replayed: &mut HashMap<String, Replayed>,
    open: &mut OpenTxns,
    at: Position,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), RecordError> {
    let Some(key) = key else { return Ok(()) };
    match decode_key(key)? {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            let offset = value.map(decode_offset_value).transpose()?.map(|o| CommittedOffset {
                record_offset: at.record_offset,
                ..o
            });
            let r = replayed.entry(group.clone()).or_default();
            let tp = (topic, partition);
            match (at.txn, offset) {
                (Some(producer_id), offset) => {
                    open.entry(producer_id).or_default().insert(group);
                    let pending = r.pending.entry(producer_id).or_default();
                    match offset {
                        Some(o) => pending.insert(tp, o),
                        None => pending.remove(&tp),
                    };
                }
                (None, Some(o)) => {
                    r.offsets.insert(tp, Some(o));
                }
                (None, None) => {
                    // A tombstone removes every pending offset of the partition too.
                    for pending in r.pending.values_mut() {
                        pending.remove(&tp);
                    }
                    r.offsets.insert(tp, None);
                }
            }
        }
        RecordKey::Group { group } => {
            let metadata = value.map(decode_group_value).transpose()?;
            replayed.entry(group).or_default().metadata = metadata;
        }
        RecordKey::Consumer { kind, group, member } => {
            replayed.entry(group).or_default().consumer.apply(kind, member, value)?;
        }
        RecordKey::Share { kind, group, member } => {
            replayed.entry(group).or_default().share.apply(kind, member, value)?;
        }
    }
    Ok(())
}

/// A COMMIT or ABORT marker of `producer_id` in this partition: its pending offsets in each group
/// become committed (where later than the committed one) or are dropped.
fn end_txn(replayed: &mut HashMap<String, Replayed>, open: &mut OpenTxns, producer_id: ProducerId, commit: bool) {
    for group in open.remove(&producer_id).unwrap_or_default() {
        let Some(r) = replayed.get_mut(&group) else {
            continue;
        };
        let Some(pending) = r.pending.remove(&producer_id) else {
            continue;
        };
        if commit {
            for (tp, offset) in pending {
                match r.offsets.get(&tp) {
                    Some(Some(current)) if current.record_offset >= offset.record_offset => {}
                    _ => {
                        r.offsets.insert(tp, Some(offset));
                    }
                }
            }
        }
    }
}

/// The type of a control batch's record (key: version i16, type i16). None if malformed.
fn control_type(body: &[u8], count: i32) -> Option<i16> {
    let (_, key, _) = plain_records(body, count.min(1))?.into_iter().next()?;
    let key = key?;
    (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]))
}

fn group_from_metadata(group_id: &str, m: &GroupMetadataValue, now_ms: i64) -> Group {
    let mut group = Group::new(group_id, now_ms);
    group.protocol_type = (!m.protocol_type.is_empty()).then(|| m.protocol_type.clone());
    group.generation_id = m.generation;
    group.protocol_name = m.protocol.clone();
    group.leader_id = m.leader.clone();
    for v in &m.members {
        let member = Member {
            member_id: v.member_id.clone(),
            group_instance_id: v.group_instance_id.clone(),
            client_id: v.client_id.clone(),
            client_host: v.client_host.clone(),
            rebalance_timeout_ms: v.rebalance_timeout_ms,
            session_timeout_ms: v.session_timeout_ms,
            protocol_type: m.protocol_type.clone(),
            protocols: vec![Protocol {
                name: m.protocol.clone().unwrap_or_default(),
                metadata: v.subscription.clone(),
            }],
            assignment: v.assignment.clone(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            last_heartbeat_ms: now_ms,
        };
        if let Some(instance) = &member.group_instance_id {
            group.static_members.insert(instance.clone(), member.member_id.clone());
        }
        group.members.insert(member.member_id.clone(), member);
    }
    if group.leader_id.as_ref().is_some_and(|l| !group.members.contains_key(l)) {
        group.leader_id = group.members.keys().next().cloned();
    }
    let state = if group.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
    group.transition(state, now_ms);
    group.subscribed_topics = group.compute_subscribed_topics();
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::{encode_key, encode_offset_value};
    use crate::log::batch::BatchBuilder;

    #[test]
    fn replays_records_from_batches_with_tombstones() {
        let k1 = encode_key(&RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        });
        let k2 = encode_key(&RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
        });
        let v = |o| {
            encode_offset_value(&CommittedOffset {
                offset: o,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1,
                record_offset: -1,
            })
        };
        let mut first = BatchBuilder::new(1)
            .record(Some(&k1), Some(&v(5)), 0)
            .record(Some(&k2), Some(&v(7)), 0)
            .build();
        let mut second = BatchBuilder::new(1)
            .record(Some(&k1), Some(&v(9)), 0)
            .record(Some(&k2), None, 0)
            .build();
        crate::log::batch::assign_offset_and_epoch(&mut first, 0, 0);
        crate::log::batch::assign_offset_and_epoch(&mut second, 2, 0);
        let mut bytes = first;
        bytes.extend_from_slice(&second);
        let mut replayed = HashMap::new();
        let mut summary = LoadSummary::default();
        assert_eq!(
            replay_batches(&bytes, &mut replayed, &mut OpenTxns::new(), &mut summary),
            4
        );
        assert_eq!(summary.records, 4);
        let g = &replayed["g"];
        assert_eq!(g.offsets[&("t".to_string(), 0)].as_ref().map(|o| o.offset), Some(9));
        assert_eq!(g.offsets[&("t".to_string(), 1)], None);
    }

    fn offset_record(partition: i32, o: Option<i64>) -> (Vec<u8>, Option<Vec<u8>>) {
        let key = encode_key(&RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition,
        });
        let value = o.map(|o| {
            encode_offset_value(&CommittedOffset {
                offset: o,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1,
                record_offset: -1,
            })
        });
        (key, value)
    }

    /// A batch to build: the producer id if transactional, and its records.
    type TestBatch = (Option<i64>, Vec<(Vec<u8>, Option<Vec<u8>>)>);

    /// A log of batches, given offsets one after the other, with markers (after which batch,
    /// producer id, commit) between them.
    fn log_of(batches: &[TestBatch], markers: &[(usize, i64, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next = 0;
        let mut push = |mut batch: Vec<u8>, out: &mut Vec<u8>| {
            let count = validate_batch(&batch).unwrap().records_count;
            crate::log::batch::assign_offset_and_epoch(&mut batch, next, 0);
            next += i64::from(count);
            out.extend_from_slice(&batch);
        };
        for (i, (txn, records)) in batches.iter().enumerate() {
            let mut b = BatchBuilder::new(1);
            for (k, v) in records {
                b = b.record(Some(k), v.as_deref(), 0);
            }
            if let Some(pid) = txn {
                b = b.producer(*pid, 0, -1);
                b.transactional = true;
            }
            push(b.build(), &mut out);
            for &(after, pid, commit) in markers {
                if after == i {
                    push(crate::group::txn_tests::control_batch(pid, 0, commit), &mut out);
                }
            }
        }
        out
    }

    fn committed(g: &Group) -> Vec<(i32, i64)> {
        g.offsets.iter().map(|(tp, o)| (tp.partition, o.offset)).collect()
    }

    #[test]
    fn replays_transactions_in_log_order() {
        // 0: plain p0=1 | 1: txn 7 p0=10 p1=11 | 2: txn 8 p2=20 | ABORT 8 | 3: plain p1=5 | COMMIT 7
        // | 4: txn 9 p0=30 (still open at the end)
        let log = log_of(
            &[
                (None, vec![offset_record(0, Some(1))]),
                (Some(7), vec![offset_record(0, Some(10)), offset_record(1, Some(11))]),
                (Some(8), vec![offset_record(2, Some(20))]),
                (None, vec![offset_record(1, Some(5))]),
                (Some(9), vec![offset_record(0, Some(30))]),
            ],
            &[(2, 8, false), (3, 7, true)],
        );
        let groups = replay_partition(&log);
        let g = &groups["g"];
        assert_eq!(
            committed(g),
            vec![(0, 10), (1, 5)],
            "p0: txn 7 is later than the plain commit; p1: the plain commit is later; p2: aborted"
        );
        assert_eq!(g.pending_txn_offsets.keys().copied().collect::<Vec<_>>(), vec![9]);
        assert_eq!(g.pending_txn_offsets[&9][&TopicPartition::new("t", 0)].offset, 30);
        assert_eq!(g.offsets[&TopicPartition::new("t", 0)].record_offset, 1);
    }

    #[test]
    fn a_plain_tombstone_removes_pending_offsets_and_a_txn_tombstone_its_own() {
        // txn 7 p0=10 p1=11 | plain tombstone p0 | txn 7 tombstone p1 | COMMIT 7
        let log = log_of(
            &[
                (Some(7), vec![offset_record(0, Some(10)), offset_record(1, Some(11))]),
                (None, vec![offset_record(0, None)]),
                (Some(7), vec![offset_record(1, None)]),
            ],
            &[(2, 7, true)],
        );
        assert!(!replay_partition(&log).contains_key("g"), "nothing is left of g");
    }
}
