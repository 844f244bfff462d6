//! The console consumer's fetching: a position per assigned partition, Fetch to each partition's
//! leader (one request per leader), the answer decoded into records from the position on. Handles
//! what a Kafka consumer handles: a position out of the log's range is reset (`auto.offset.reset`),
//! a moved leader refreshes Metadata, and with read_committed the aborted transactions the leader
//! lists are left out along with transaction markers. Owned by the consumer's single task.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::error::{kafka_message, ToolError};
use crate::leaders::Leaders;
use crate::offsets::{list_offsets, PartitionOffset, EARLIEST, LATEST};
use crate::records::{decode_batches, Batch, InRecord};

/// Fetch v13 names topics by id; this tool sends names.
const FETCH_MAX_VERSION: i16 = 12;
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Errors after which Metadata is asked again and the partition fetched later.
const REFRESH: &[i16] = &[3, 5, 6, 74, 75];

pub type Partition = (String, i32);

/// Where a partition starts when it has no position (`auto.offset.reset`, or `--offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    Offset(i64),
    /// `auto.offset.reset=none`: a partition without a committed offset is an error.
    Fail,
}

pub struct Fetcher {
    pub leaders: Leaders,
    /// The next offset to fetch of each assigned partition.
    pub positions: BTreeMap<Partition, i64>,
    /// 1: read_committed.
    isolation_level: i8,
    reset: Start,
    max_wait: Duration,
    partition_max_bytes: i32,
}

impl Fetcher {
    pub fn new(leaders: Leaders, isolation_level: i8, reset: Start, partition_max_bytes: i32) -> Fetcher {
        Fetcher {
            leaders,
            positions: BTreeMap::new(),
            isolation_level,
            reset,
            max_wait: Duration::from_millis(500),
            partition_max_bytes,
        }
    }

    /// Sets the positions of `partitions` from `start` (earliest and latest asked of the leaders).
    pub async fn seek(&mut self, partitions: &[Partition], start: Start) -> Result<(), ToolError> {
        let timestamp = match start {
            Start::Offset(offset) => {
                for p in partitions {
                    self.positions.insert(p.clone(), offset);
                }
                return Ok(());
            }
            Start::Earliest => EARLIEST,
            Start::Latest => LATEST,
            Start::Fail => {
                let names: Vec<String> = partitions.iter().map(|(t, p)| format!("{t}-{p}")).collect();
                return Err(ToolError::Kafka(format!(
                    "Undefined offset with no reset policy for partitions: [{}]",
                    names.join(", ")
                )));
            }
        };
        let answers = list_offsets(self.leaders.settings(), &self.leaders.metadata, partitions, timestamp).await?;
        for (partition, answer) in answers {
            match answer {
                PartitionOffset::Offset(offset) if offset >= 0 => {
                    self.positions.insert(partition, offset);
                }
                // No leader yet (a topic being created): try again at the next fetch.
                _ => {
                    self.positions.remove(&partition);
                }
            }
        }
        Ok(())
    }

    /// Sets the positions of `partitions` from the group's committed offsets, and the others from
    /// the reset policy.
    pub async fn seek_committed(
        &mut self,
        partitions: &[Partition],
        committed: &BTreeMap<Partition, i64>,
    ) -> Result<(), ToolError> {
        let mut without = Vec::new();
        for p in partitions {
            match committed.get(p) {
                Some(offset) => {
                    self.positions.insert(p.clone(), *offset);
                }
                None => without.push(p.clone()),
            }
        }
        if !without.is_empty() {
            self.seek(&without, self.reset).await?;
        }
        Ok(())
    }

    /// One round of Fetch to every leader of an assigned partition: the records from the positions
    /// on, in partition order. Positions move past every whole batch returned.
    pub async fn fetch(&mut self, assigned: &[Partition]) -> Result<Vec<(Partition, InRecord)>, ToolError> {
        let missing: Vec<Partition> = assigned
            .iter()
            .filter(|p| !self.positions.contains_key(*p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.refresh(assigned).await?;
            self.seek(&missing, self.reset).await?;
        }
        let mut by_leader: BTreeMap<i32, Vec<Partition>> = BTreeMap::new();
        let mut leaderless = false;
        for p in assigned.iter().filter(|p| self.positions.contains_key(*p)) {
            match self.leaders.leader(&p.0, p.1) {
                Some(leader) => by_leader.entry(leader).or_default().push(p.clone()),
                None => leaderless = true,
            }
        }
        if by_leader.is_empty() {
            // Nothing to fetch yet (no leaders, a topic not created): wait as a long poll would.
            tokio::time::sleep(self.max_wait).await;
            if leaderless {
                self.refresh(assigned).await?;
            }
            return Ok(Vec::new());
        }
        let wait = self.max_wait / by_leader.len() as u32;
        let mut records = Vec::new();
        let mut stale = leaderless;
        for (leader, partitions) in by_leader {
            stale |= self.fetch_from(leader, &partitions, wait, &mut records).await?;
        }
        if stale {
            self.refresh(assigned).await?;
        }
        Ok(records)
    }

    async fn refresh(&mut self, assigned: &[Partition]) -> Result<(), ToolError> {
        let topics: BTreeSet<String> = assigned.iter().map(|(t, _)| t.clone()).collect();
        let topics: Vec<String> = topics.into_iter().collect();
        self.leaders.refresh(Some(&topics), false).await?;
        Ok(())
    }

    /// Fetch from one leader; true when Metadata must be asked again.
    async fn fetch_from(
        &mut self,
        leader: i32,
        partitions: &[Partition],
        wait: Duration,
        out: &mut Vec<(Partition, InRecord)>,
    ) -> Result<bool, ToolError> {
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for p in partitions {
            topics.entry(&p.0).or_default().push(
                FetchPartition::default()
                    .with_partition(p.1)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(self.positions[p])
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(self.partition_max_bytes),
            );
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(wait.as_millis() as i32)
            .with_min_bytes(1)
            .with_max_bytes(52_428_800)
            .with_isolation_level(self.isolation_level)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let admin = self.leaders.connection(leader).await?;
        let response = match admin.send_capped(request, 4, FETCH_MAX_VERSION).await {
            Ok(r) => r,
            Err(_) => {
                // A broker that went away: ask Metadata who leads now.
                self.leaders.drop_connection(leader);
                return Ok(true);
            }
        };
        if response.error_code != 0 {
            return Err(ToolError::Kafka(kafka_message(response.error_code, None)));
        }
        let mut stale = false;
        let mut out_of_range = Vec::new();
        for topic in response.responses {
            let name = topic.topic.to_string();
            for p in topic.partitions {
                let key = (name.clone(), p.partition_index);
                match p.error_code {
                    0 => {}
                    OFFSET_OUT_OF_RANGE => {
                        out_of_range.push(key);
                        continue;
                    }
                    code if REFRESH.contains(&code) => {
                        stale = true;
                        continue;
                    }
                    code => {
                        return Err(ToolError::Kafka(format!(
                            "fetching {}-{} failed: {}",
                            key.0,
                            key.1,
                            kafka_message(code, None)
                        )))
                    }
                }
                let Some(position) = self.positions.get(&key).copied() else {
                    continue;
                };
                let Some(bytes) = p.records.filter(|r| !r.is_empty()) else {
                    continue;
                };
                let aborted: Vec<(i64, i64)> = p
                    .aborted_transactions
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect();
                let (records, next) = self.visible(decode_batches(bytes)?, position, aborted);
                self.positions.insert(key.clone(), next);
                out.extend(records.into_iter().map(|r| (key.clone(), r)));
            }
        }
        if !out_of_range.is_empty() {
            if self.reset == Start::Fail {
                let names: Vec<String> = out_of_range.iter().map(|(t, p)| format!("{t}-{p}")).collect();
                return Err(ToolError::Kafka(format!(
                    "Fetch position is out of range for partitions: [{}]",
                    names.join(", ")
                )));
            }
            self.seek(&out_of_range, self.reset).await?;
        }
        Ok(stale)
    }

    /// The records of `batches` at or after `position` a consumer sees (with read_committed, none
    /// of an aborted transaction), and the next position.
    fn visible(&self, batches: Vec<Batch>, position: i64, mut aborted: Vec<(i64, i64)>) -> (Vec<InRecord>, i64) {
        aborted.sort_by_key(|(_, first)| *first);
        let mut aborted = aborted.into_iter().peekable();
        let mut aborting: BTreeSet<i64> = BTreeSet::new();
        let mut next = position;
        let mut out = Vec::new();
        for batch in batches {
            match batch {
                Batch::Control {
                    last_offset,
                    producer_id,
                    commit,
                } => {
                    if !commit {
                        aborting.remove(&producer_id);
                    }
                    next = next.max(last_offset + 1);
                }
                Batch::Data { last_offset, records } => {
                    if self.isolation_level == 1 {
                        while let Some(&(pid, _)) = aborted.peek().filter(|(_, first)| *first <= last_offset) {
                            aborting.insert(pid);
                            aborted.next();
                        }
                    }
                    let skip = self.isolation_level == 1
                        && records
                            .first()
                            .is_some_and(|r| r.transactional && aborting.contains(&r.producer_id));
                    if !skip {
                        out.extend(records.into_iter().filter(|r| r.offset >= position));
                    }
                    next = next.max(last_offset + 1);
                }
            }
        }
        (out, next)
    }
}
