//! The console producer's sending side, as Kafka's producer behaves for it: records are put into one
//! batch per partition (keyed records by Kafka's murmur2 partitioner, so they land where Java's
//! producer puts them; unkeyed ones stick to one partition until its batch is sent), a batch is sent
//! when it reaches `batch.size` bytes or `linger.ms` after its first record, and every batch left is
//! sent at the end. Produce goes to the partition's leader; retriable errors refresh the leaders and
//! retry `retries` times, `retry.backoff.ms` apart. One task owns it; nothing is sent concurrently.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use crate::error::{kafka_message, ToolError};
use crate::leaders::{Leaders, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION};
use crate::records::{encode_batch, OutRecord};

/// Produce v13 names topics by id; this tool sends names.
const PRODUCE_MAX_VERSION: i16 = 12;

/// Error codes a producer retries (Kafka's RetriableException subclasses that a Produce answers).
const RETRIABLE: &[i16] = &[3, 5, 6, 7, 13, 19, 20, 56];

/// How the producer sends, from its properties and flags.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub topic: String,
    /// -1 (all), 0 or 1.
    pub acks: i16,
    pub linger: Duration,
    pub batch_size: usize,
    pub compression: Compression,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub max_block: Duration,
}

/// Records waiting for one partition.
struct PendingBatch {
    records: Vec<OutRecord>,
    bytes: usize,
    since: Instant,
}

pub struct Sender {
    config: ProducerConfig,
    leaders: Leaders,
    /// Partition count of the topic, once Metadata has named it.
    partitions: Option<i32>,
    pending: BTreeMap<i32, PendingBatch>,
    /// The partition unkeyed records go to until its batch is sent.
    sticky: Option<i32>,
    random: u64,
    /// Records that could not be written, as Kafka's producer logs them.
    pub failures: Vec<String>,
}

impl Sender {
    pub fn new(config: ProducerConfig, leaders: Leaders) -> Sender {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Sender {
            config,
            leaders,
            partitions: None,
            pending: BTreeMap::new(),
            sticky: None,
            random: seed,
            failures: Vec::new(),
        }
    }

    /// When the oldest waiting batch is due (none: nothing waits).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|b| b.since + self.config.linger).min()
    }

    /// Adds `record`; sends its partition's batch when it is full, or at once when `sync`.
    pub async fn add(&mut self, record: OutRecord, sync: bool) -> Result<(), ToolError> {
        let partitions = self.partition_count(&record).await?;
        let Some(partitions) = partitions else {
            return Ok(());
        };
        let partition = match &record.key {
            Some(key) => (murmur2(key) & 0x7fff_ffff) as i32 % partitions,
            None => match self.sticky {
                Some(p) => p,
                None => {
                    let p = (self.next_random() % partitions as u64) as i32;
                    self.sticky = Some(p);
                    p
                }
            },
        };
        let size = record.key.as_ref().map_or(0, |k| k.len()) + record.value.as_ref().map_or(0, |v| v.len()) + 16;
        let batch = self.pending.entry(partition).or_insert_with(|| PendingBatch {
            records: Vec::new(),
            bytes: 0,
            since: Instant::now(),
        });
        batch.records.push(record);
        batch.bytes += size;
        if sync || batch.bytes >= self.config.batch_size {
            self.send_partition(partition).await?;
        }
        Ok(())
    }

    /// Sends every batch whose linger time has passed (all of them when `all`).
    pub async fn flush(&mut self, all: bool) -> Result<(), ToolError> {
        let now = Instant::now();
        let due: Vec<i32> = self
            .pending
            .iter()
            .filter(|(_, b)| all || b.since + self.config.linger <= now)
            .map(|(p, _)| *p)
            .collect();
        for partition in due {
            self.send_partition(partition).await?;
        }
        Ok(())
    }

    /// The topic's partition count, waiting up to `max.block.ms` for Metadata to name the topic (a
    /// producer creates a missing topic when the cluster allows it). None: the record failed.
    async fn partition_count(&mut self, record: &OutRecord) -> Result<Option<i32>, ToolError> {
        if let Some(n) = self.partitions {
            return Ok(Some(n));
        }
        let topic = self.config.topic.clone();
        let deadline = Instant::now() + self.config.max_block;
        loop {
            let errors = self.leaders.refresh(Some(std::slice::from_ref(&topic)), true).await?;
            if let Some(t) = self.leaders.topics.get(&topic).filter(|t| !t.leaders.is_empty()) {
                let n = t.leaders.len() as i32;
                self.partitions = Some(n);
                return Ok(Some(n));
            }
            match errors.get(&topic) {
                Some(&code) if code != UNKNOWN_TOPIC_OR_PARTITION && code != LEADER_NOT_AVAILABLE => {
                    return Err(ToolError::Kafka(kafka_message(code, None)));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                self.failures.push(failure_line(
                    &topic,
                    record,
                    &format!(
                        "Topic {topic} not present in metadata after {} ms.",
                        self.config.max_block.as_millis()
                    ),
                ));
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send_partition(&mut self, partition: i32) -> Result<(), ToolError> {
        let Some(batch) = self.pending.remove(&partition) else {
            return Ok(());
        };
        if self.sticky == Some(partition) {
            self.sticky = None;
        }
        let bytes = encode_batch(&batch.records, self.config.compression, now_ms())?;
        let mut attempt = 0;
        loop {
            let error = match self.produce_once(partition, bytes.clone()).await {
                Ok(None) => return Ok(()),
                Ok(Some((code, message))) if RETRIABLE.contains(&code) => kafka_message(code, message.as_deref()),
                Ok(Some((code, message))) => {
                    self.fail(&batch.records, &kafka_message(code, message.as_deref()));
                    return Ok(());
                }
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if attempt > self.config.retries {
                self.fail(&batch.records, &error);
                return Ok(());
            }
            tokio::time::sleep(self.config.retry_backoff).await;
            let topic = self.config.topic.clone();
            self.leaders.refresh(Some(std::slice::from_ref(&topic)), true).await?;
        }
    }

    fn fail(&mut self, records: &[OutRecord], error: &str) {
        for record in records {
            self.failures.push(failure_line(&self.config.topic, record, error));
        }
    }

    /// One Produce of `bytes` to the partition's leader: None when written, or the error code and
    /// message the leader answered. A connection failure is an `Err` (retried the same way).
    async fn produce_once(
        &mut self,
        partition: i32,
        bytes: bytes::Bytes,
    ) -> Result<Option<(i16, Option<String>)>, ToolError> {
        let Some(leader) = self.leaders.leader(&self.config.topic, partition) else {
            return Ok(Some((LEADER_NOT_AVAILABLE, None)));
        };
        let request = ProduceRequest::default()
            .with_acks(self.config.acks)
            .with_timeout_ms(self.leaders.settings().request_timeout.as_millis() as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.config.topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(bytes))])]);
        let admin = self.leaders.connection(leader).await?;
        if self.config.acks == 0 {
            return match admin.send_unanswered(request, 3).await {
                Ok(()) => Ok(None),
                Err(e) => {
                    self.leaders.drop_connection(leader);
                    Err(e)
                }
            };
        }
        let response = match admin.send_capped(request, 3, PRODUCE_MAX_VERSION).await {
            Ok(r) => r,
            Err(e) => {
                self.leaders.drop_connection(leader);
                return Err(e);
            }
        };
        let answer = response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition);
        Ok(match answer {
            Some(p) if p.error_code == 0 => None,
            Some(p) => Some((p.error_code, p.error_message.as_ref().map(|m| m.to_string()))),
            None => Some((13, Some("the leader's answer did not name the partition".to_string()))),
        })
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: spreading sticky partitions needs no better randomness.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }
}

/// Kafka's `ErrorLoggingCallback` line for a record that was not written.
fn failure_line(topic: &str, record: &OutRecord, error: &str) -> String {
    let key = record
        .key
        .as_ref()
        .map_or("null".to_string(), |k| format!("{} bytes", k.len()));
    let value = record
        .value
        .as_ref()
        .map_or("null".to_string(), |v| format!("{} bytes", v.len()));
    format!("Error when sending message to topic {topic} with key: {key}, value: {value} with error: {error}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Kafka's `Utils.murmur2`, the default partitioner's hash of a record key.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        for (text, expected) in [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(text.as_bytes()) as i32, expected, "{text}");
        }
    }
}
