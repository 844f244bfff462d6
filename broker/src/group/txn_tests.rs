//! Transactional offset commits through the group coordinator runtime, against a `GroupHost` that
//! keeps `__consumer_offsets` as bytes in memory: TxnOffsetCommit writes one transactional batch and
//! keeps the offsets pending, markers commit or abort them, OffsetFetch `require_stable` sees them,
//! deletion and expiry leave them alone or remove them as Kafka does, and replaying the log (with
//! the markers the transaction coordinator writes, built here by hand) gives what memory holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::coordinator::{GroupCoordinator, OFFSETS_TOPIC};
use super::host::GroupHost;
use super::load::replay_partition;
use super::offsets::CommittedOffset;
use super::txn_commit::TxnCommitter;
use super::GroupConfig;
use crate::log::batch::{assign_offset_and_epoch, compute_crc, validate_batch, BatchBuilder};
use crate::log::{Partition, TopicPartition};
use crate::metadata::TopicMeta;
use crate::replication::AppendFailure;
use crate::topic_error::TopicError;

const PARTITIONS: i32 = 3;

/// This broker (0) leads every partition of a 3-partition `__consumer_offsets` whose logs are kept
/// here as bytes, offsets assigned.
#[derive(Default)]
struct MemoryHost {
    logs: Mutex<BTreeMap<i32, Vec<u8>>>,
    log_end: Mutex<BTreeMap<i32, i64>>,
    /// Appends answered with this error instead.
    refuse: Mutex<Option<ResponseError>>,
}

impl MemoryHost {
    fn append(&self, tp: &TopicPartition, records: &[u8]) -> Result<i64, AppendFailure> {
        if let Some(error) = *self.refuse.lock() {
            return Err(AppendFailure {
                error,
                message: None,
                append_error: None,
            });
        }
        let mut batch = records.to_vec();
        let count = validate_batch(&batch).expect("valid batch").records_count;
        let mut ends = self.log_end.lock();
        let base = *ends.get(&tp.partition).unwrap_or(&0);
        assign_offset_and_epoch(&mut batch, base, 0);
        ends.insert(tp.partition, base + i64::from(count));
        self.logs
            .lock()
            .entry(tp.partition)
            .or_default()
            .extend_from_slice(&batch);
        Ok(base)
    }

    /// What the transaction coordinator does at the end of a transaction: the marker in the log.
    fn write_marker(&self, partition: i32, producer_id: i64, commit: bool) {
        let marker = control_batch(producer_id, 0, commit);
        self.append(&TopicPartition::new(OFFSETS_TOPIC, partition), &marker)
            .unwrap();
    }

    fn log(&self, partition: i32) -> Vec<u8> {
        self.logs.lock().get(&partition).cloned().unwrap_or_default()
    }
}

impl GroupHost for MemoryHost {
    fn broker_id(&self) -> i32 {
        0
    }
    fn offsets_topic_num_partitions(&self) -> i32 {
        PARTITIONS
    }
    fn offsets_topic_replication_factor(&self) -> i16 {
        1
    }
    fn topic(&self, name: &str) -> Option<TopicMeta> {
        (name == OFFSETS_TOPIC).then(|| TopicMeta {
            topic_id: Default::default(),
            partitions: PARTITIONS,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
    }
    fn topic_names(&self) -> Vec<String> {
        vec![OFFSETS_TOPIC.to_string()]
    }
    fn partition_racks(&self, _topic: &str) -> Vec<std::collections::BTreeSet<String>> {
        Vec::new()
    }
    fn leader_of(&self, _topic: &str, _partition: i32) -> Option<i32> {
        Some(0)
    }
    fn partition(&self, _topic: &str, _partition: i32) -> Option<Arc<Partition>> {
        None
    }
    fn append_now(&self, tp: &TopicPartition, records: &[u8], _acks: i16) -> Result<i64, AppendFailure> {
        let header = validate_batch(records).unwrap();
        assert!(
            !header.is_transactional() && !header.has_producer_id(),
            "plain commits are plain"
        );
        self.append(tp, records)
    }
    fn append_as_coordinator(&self, tp: &TopicPartition, records: &[u8]) -> Result<i64, AppendFailure> {
        let header = validate_batch(records).unwrap();
        assert!(header.is_transactional() && header.has_producer_id() && header.base_sequence == -1);
        self.append(tp, records)
    }
    async fn create_topic(
        &self,
        _name: &str,
        _partitions: i32,
        _replication_factor: i16,
        _configs: std::collections::BTreeMap<String, String>,
        _assignments: Vec<Vec<i32>>,
        _validate_only: bool,
    ) -> Result<TopicMeta, TopicError> {
        Err(TopicError::new(ResponseError::TopicAlreadyExists, "exists"))
    }
}

/// A control batch (COMMIT or ABORT marker) of `producer_id`, as the transaction coordinator writes
/// it: one record, key (version 0, type 1 COMMIT / 0 ABORT), value (version 0, coordinator epoch).
pub(crate) fn control_batch(producer_id: i64, epoch: i16, commit: bool) -> Vec<u8> {
    let key = [0u8, 0, 0, u8::from(commit)];
    let value = [0u8, 0, 0, 0, 0, 0];
    let mut builder = BatchBuilder::new(1)
        .producer(producer_id, epoch, -1)
        .record(Some(&key), Some(&value), 0);
    builder.transactional = true;
    let mut batch = builder.build();
    // The control bit of the attributes (offset 21), then the CRC (offset 17) again.
    batch[22] |= 0x20;
    let crc = compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

fn offset(o: i64) -> CommittedOffset {
    CommittedOffset {
        offset: o,
        leader_epoch: -1,
        metadata: "m".into(),
        commit_timestamp_ms: 1,
        record_offset: -1,
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn producer(producer_id: i64) -> TxnCommitter<'static> {
    TxnCommitter {
        producer_id,
        producer_epoch: 0,
        generation_id: -1,
        member_id: "",
        instance_id: None,
    }
}

/// The committed offset (or error) OffsetFetch answers for `tp`.
fn fetched(
    groups: &GroupCoordinator,
    group: &str,
    tp: &TopicPartition,
    require_stable: bool,
) -> Result<Option<i64>, ResponseError> {
    let answer = groups.fetch_offsets(group, Some(vec![tp.clone()]), require_stable);
    answer[0].1.clone().map(|o| o.map(|o| o.offset))
}

/// What OffsetFetch would answer for every partition of `group` after a replay of its log, and
/// what is pending, next to the same read from memory.
fn memory_and_replay(host: &MemoryHost, groups: &GroupCoordinator, group: &str) {
    let partition = groups.partition_of(host, group);
    let replayed = replay_partition(&host.log(partition));
    let live = groups.describe(group);
    let view = |g: Option<&super::Group>| {
        g.map(|g| {
            let committed: Vec<(TopicPartition, i64, i64)> = g
                .offsets
                .iter()
                .map(|(tp, o)| (tp.clone(), o.offset, o.record_offset))
                .collect();
            (committed, g.pending_txn_offsets.clone())
        })
    };
    assert_eq!(
        view(live.as_ref()),
        view(replayed.get(group)),
        "memory and replay of {group} differ"
    );
}

#[test]
fn txn_offsets_are_pending_until_the_commit_marker() {
    let host = MemoryHost::default();
    let groups = GroupCoordinator::new(GroupConfig::default());
    let outcomes = groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(0), offset(10)), (tp(1), offset(11))]);
    assert_eq!(outcomes, vec![None, None]);
    let partition = groups.partition_of(&host, "g");
    // One transactional batch with both records.
    let log = host.log(partition);
    let header = validate_batch(&log).unwrap();
    assert_eq!(
        (header.records_count, header.producer_id, header.is_transactional()),
        (2, 7, true)
    );
    assert_eq!(log.len(), header.size());

    assert_eq!(
        fetched(&groups, "g", &tp(0), false),
        Ok(None),
        "pending offsets are not visible"
    );
    assert_eq!(
        fetched(&groups, "g", &tp(0), true),
        Err(ResponseError::UnstableOffsetCommit)
    );
    assert_eq!(
        fetched(&groups, "g", &tp(2), true),
        Ok(None),
        "other partitions are stable"
    );
    memory_and_replay(&host, &groups, "g");

    // A marker in another partition does not end this group's transaction.
    assert_eq!(groups.complete_txn(&host, (partition + 1) % PARTITIONS, 7, true), 0);
    assert_eq!(
        fetched(&groups, "g", &tp(0), true),
        Err(ResponseError::UnstableOffsetCommit)
    );

    host.write_marker(partition, 7, true);
    assert_eq!(groups.complete_txn(&host, partition, 7, true), 1);
    assert_eq!(fetched(&groups, "g", &tp(0), true), Ok(Some(10)));
    assert_eq!(fetched(&groups, "g", &tp(1), false), Ok(Some(11)));
    memory_and_replay(&host, &groups, "g");
}

#[test]
fn aborted_txn_offsets_are_dropped_and_an_unused_group_forgotten() {
    let host = MemoryHost::default();
    let groups = GroupCoordinator::new(GroupConfig::default());
    groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(0), offset(10))]);
    let partition = groups.partition_of(&host, "g");
    host.write_marker(partition, 7, false);
    groups.complete_txn(&host, partition, 7, false);
    assert_eq!(fetched(&groups, "g", &tp(0), true), Ok(None));
    assert!(
        groups.describe("g").is_none(),
        "nothing is left of a group that only had an aborted txn"
    );
    memory_and_replay(&host, &groups, "g");
}

#[test]
fn a_plain_commit_after_the_txn_offsets_wins_at_commit() {
    let host = MemoryHost::default();
    let groups = GroupCoordinator::new(GroupConfig::default());
    assert_eq!(
        groups.commit_offsets(&host, "g", -1, "", None, vec![(tp(1), offset(1))]),
        vec![None]
    );
    groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(0), offset(10)), (tp(1), offset(11))]);
    // A standalone consumer commits partition 0 while the transaction is open.
    assert_eq!(
        groups.commit_offsets(&host, "g", -1, "", None, vec![(tp(0), offset(99))]),
        vec![None]
    );
    assert_eq!(fetched(&groups, "g", &tp(0), false), Ok(Some(99)));
    let partition = groups.partition_of(&host, "g");
    host.write_marker(partition, 7, true);
    groups.complete_txn(&host, partition, 7, true);
    assert_eq!(
        fetched(&groups, "g", &tp(0), false),
        Ok(Some(99)),
        "the later plain commit stays"
    );
    assert_eq!(
        fetched(&groups, "g", &tp(1), false),
        Ok(Some(11)),
        "the later txn commit wins"
    );
    memory_and_replay(&host, &groups, "g");
}

#[test]
fn deleting_a_group_tombstones_its_pending_offsets() {
    let host = MemoryHost::default();
    let groups = GroupCoordinator::new(GroupConfig::default());
    groups.commit_offsets(&host, "g", -1, "", None, vec![(tp(0), offset(1))]);
    groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(0), offset(10)), (tp(1), offset(11))]);
    // An empty group with an open transaction may be deleted, as in Kafka.
    assert_eq!(groups.delete_group(&host, "g"), None);
    let partition = groups.partition_of(&host, "g");
    host.write_marker(partition, 7, true);
    assert_eq!(groups.complete_txn(&host, partition, 7, true), 0);
    assert!(groups.describe("g").is_none());
    assert_eq!(fetched(&groups, "g", &tp(1), true), Ok(None));
    // The replay agrees: the tombstones removed the pending offsets before the marker.
    assert!(!replay_partition(&host.log(partition)).contains_key("g"));
}

#[test]
fn offset_delete_removes_pending_offsets_of_the_partition() {
    let host = MemoryHost::default();
    let groups = GroupCoordinator::new(GroupConfig::default());
    groups.commit_offsets(&host, "g", -1, "", None, vec![(tp(0), offset(1))]);
    groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(0), offset(10)), (tp(1), offset(11))]);
    let outcomes = groups.delete_offsets(&host, "g", vec![tp(0)]).unwrap();
    assert_eq!(outcomes, vec![(tp(0), None)]);
    assert_eq!(
        fetched(&groups, "g", &tp(0), true),
        Ok(None),
        "no longer pending either"
    );
    let partition = groups.partition_of(&host, "g");
    host.write_marker(partition, 7, true);
    groups.complete_txn(&host, partition, 7, true);
    assert_eq!(fetched(&groups, "g", &tp(0), false), Ok(None));
    assert_eq!(fetched(&groups, "g", &tp(1), false), Ok(Some(11)));
    memory_and_replay(&host, &groups, "g");
}

#[test]
fn refused_txn_commits_change_nothing() {
    let host = MemoryHost::default();
    let groups = GroupCoordinator::new(GroupConfig::default());
    // A member of a generation no one knows.
    let member = TxnCommitter {
        generation_id: 3,
        member_id: "m",
        ..producer(7)
    };
    assert_eq!(
        groups.commit_txn_offsets(&host, "g", &member, vec![(tp(0), offset(1))]),
        vec![Some(ResponseError::IllegalGeneration)]
    );
    assert!(groups.describe("g").is_none());
    // Metadata too large for one partition; the other is committed.
    let mut big = offset(2);
    big.metadata = "x".repeat(GroupConfig::default().offset_metadata_max_bytes + 1);
    assert_eq!(
        groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(0), big), (tp(1), offset(3))]),
        vec![Some(ResponseError::OffsetMetadataTooLarge), None]
    );
    // A fenced producer keeps its error; a lost leadership sends the client to the coordinator.
    *host.refuse.lock() = Some(ResponseError::ProducerFenced);
    assert_eq!(
        groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(2), offset(4))]),
        vec![Some(ResponseError::ProducerFenced)]
    );
    *host.refuse.lock() = Some(ResponseError::NotLeaderOrFollower);
    assert_eq!(
        groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(2), offset(4))]),
        vec![Some(ResponseError::NotCoordinator)]
    );
    assert_eq!(
        fetched(&groups, "g", &tp(2), true),
        Ok(None),
        "nothing pending for tp 2"
    );
    assert_eq!(
        fetched(&groups, "g", &tp(1), true),
        Err(ResponseError::UnstableOffsetCommit)
    );
}

#[test]
fn require_stable_answers_per_partition_when_fetching_all() {
    let host = MemoryHost::default();
    let groups = GroupCoordinator::new(GroupConfig::default());
    groups.commit_offsets(&host, "g", -1, "", None, vec![(tp(0), offset(1)), (tp(1), offset(2))]);
    groups.commit_txn_offsets(&host, "g", &producer(7), vec![(tp(1), offset(20)), (tp(2), offset(30))]);
    let all: Vec<(TopicPartition, Result<Option<i64>, ResponseError>)> = groups
        .fetch_offsets("g", None, true)
        .into_iter()
        .map(|(tp, o)| (tp, o.map(|o| o.map(|o| o.offset))))
        .collect();
    // Partitions with a committed offset only (tp 2 has none yet), tp 1 unstable.
    assert_eq!(
        all,
        vec![(tp(0), Ok(Some(1))), (tp(1), Err(ResponseError::UnstableOffsetCommit))]
    );
    let relaxed: Vec<Option<i64>> = groups
        .fetch_offsets("g", None, false)
        .into_iter()
        .map(|(_, o)| o.unwrap().map(|o| o.offset))
        .collect();
    assert_eq!(relaxed, vec![Some(1), Some(2)]);
}
