//! The canary's Kafka client: the few requests an idempotent acks=all producer and a group-less
//! consumer need, over oxka-protocol's `ClientConnection` (framing, correlation ids, size limits),
//! each turned into a plain value here. `canary::task` decides what to send and when.
//!
//! * Metadata v9 (the canary topic's partitions and leaders, the brokers' addresses), CreateTopics v7
//!   and CreatePartitions v3 at the bootstrap address;
//! * InitProducerId v4 (a producer id and epoch), Produce v9 with acks=all of one-record batches that
//!   carry the producer id, epoch and the partition's sequence number, so a retried batch is
//!   deduplicated by the leader;
//! * ListOffsets v4 (where reading starts) and Fetch v12 (read from a
//!   position, long-polling at the leader).
//!
//! A record's value is text, `RUN NUMBER SENT_MS`, so `kcat` shows what the canary wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, FetchRequest, InitProducerIdRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, ProducerId, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use oxka_protocol::network::client::{ClientConnection, ClientError};

/// The internal topic every canary uses.
pub const TOPIC: &str = "__oxka_canary";
const CLIENT_ID: &str = "oxka-operator-canary";
/// Every request but a long-polling Fetch must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// How much one Fetch may return per partition (canary records are tens of bytes).
const FETCH_MAX_BYTES: i32 = 1024 * 1024;
/// Kafka's ListOffsets timestamps for the log end offset and the log start offset.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// Why a canary request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{request} refused: {} ({code}){}", error_name(*.code), .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Refused {
        request: &'static str,
        code: i16,
        message: Option<String>,
    },
    #[error("{0}")]
    Protocol(String),
}

impl CanaryError {
    /// The Kafka error code, when Kafka refused.
    pub fn code(&self) -> Option<i16> {
        match self {
            CanaryError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Kafka's name of an error code (`NOT_LEADER_OR_FOLLOWER`).
pub fn error_name(code: i16) -> String {
    crate::reconcile::topic_plan::kafka_error_name(code)
}

fn refused(request: &'static str, code: i16, message: Option<&StrBytes>) -> CanaryError {
    CanaryError::Refused {
        request,
        code,
        message: message.map(|m| m.to_string()),
    }
}

/// Kafka errors after which the same request may succeed (a new leader, replicas catching up, a
/// timeout): the producer retries the same batch (same sequence), the consumer asks Metadata again.
pub fn retriable(code: i16) -> bool {
    // NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
    // UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS(_AFTER_APPEND), KAFKA_STORAGE_ERROR,
    // FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, OFFSET_NOT_AVAILABLE, NOT_CONTROLLER.
    matches!(code, 3 | 5 | 6 | 7 | 13 | 19 | 20 | 41 | 56 | 74 | 75 | 78)
}

/// The canary topic as Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Live brokers: id → `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// `None` when the topic does not exist.
    pub partitions: Option<BTreeMap<i32, PartitionInfo>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// -1 while there is none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
}

impl Layout {
    /// The address of the leader of `partition`, when it has a live one.
    pub fn leader_address(&self, partition: i32) -> Option<&str> {
        let leader = self.partitions.as_ref()?.get(&partition)?.leader;
        self.brokers.get(&leader).map(String::as_str)
    }
}

pub async fn connect(address: &str) -> Result<ClientConnection, CanaryError> {
    let security = crate::reconcile::kafka_security::for_address(address);
    Ok(ClientConnection::connect_secured(address, CLIENT_ID, REQUEST_TIMEOUT, MAX_RESPONSE_BYTES, &security).await?)
}

async fn call(
    c: &mut ClientConnection,
    key: ApiKey,
    version: i16,
    request: RequestKind,
    timeout: Duration,
) -> Result<ResponseKind, CanaryError> {
    Ok(c.call(key, version, &request, timeout).await?)
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// Metadata v9 for the canary topic, without creating it.
pub async fn layout(c: &mut ClientConnection) -> Result<Layout, CanaryError> {
    let request = MetadataRequest::default()
        .with_topics(Some(
            vec![MetadataRequestTopic::default().with_name(Some(topic_name()))],
        ))
        .with_allow_auto_topic_creation(false);
    let ResponseKind::Metadata(m) =
        call(c, ApiKey::Metadata, 9, RequestKind::Metadata(request), REQUEST_TIMEOUT).await?
    else {
        return Err(CanaryError::Protocol("Metadata answered with another response".into()));
    };
    let brokers = m
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let topic = m
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC));
    let partitions = match topic {
        None => None,
        Some(t) if t.error_code == 3 => None, // UNKNOWN_TOPIC_OR_PARTITION
        Some(t) if t.error_code != 0 && t.partitions.is_empty() => {
            return Err(refused("Metadata", t.error_code, None));
        }
        Some(t) => Some(
            t.partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionInfo {
                            leader: p.leader_id.0,
                            leader_epoch: p.leader_epoch,
                            replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                        },
                    )
                })
                .collect(),
        ),
    };
    Ok(Layout { brokers, partitions })
}

/// CreateTopics v7: `partitions` partitions, `replication_factor` replicas, `min_insync` and a short
/// retention (the canary's records matter for minutes). TOPIC_ALREADY_EXISTS counts as success.
pub async fn create_topic(
    c: &mut ClientConnection,
    partitions: i32,
    replication_factor: i16,
    min_insync: i32,
) -> Result<(), CanaryError> {
    let config = |k: &'static str, v: String| {
        CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str(k))
            .with_value(Some(StrBytes::from_string(v)))
    };
    let topic = CreatableTopic::default()
        .with_name(topic_name())
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(vec![
            config("min.insync.replicas", min_insync.to_string()),
            config("retention.ms", "3600000".to_string()),
            config("segment.bytes", "1048576".to_string()),
        ]);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(8000);
    let ResponseKind::CreateTopics(r) = call(
        c,
        ApiKey::CreateTopics,
        7,
        RequestKind::CreateTopics(request),
        REQUEST_TIMEOUT,
    )
    .await?
    else {
        return Err(CanaryError::Protocol(
            "CreateTopics answered with another response".into(),
        ));
    };
    match r.topics.first() {
        Some(t) if t.error_code == 0 || t.error_code == 36 => Ok(()),
        Some(t) => Err(refused("CreateTopics", t.error_code, t.error_message.as_ref())),
        None => Err(CanaryError::Protocol("CreateTopics answered without the topic".into())),
    }
}

/// CreatePartitions v3: grow the canary topic to `total` partitions (a new broker gets one).
pub async fn grow_topic(c: &mut ClientConnection, total: i32) -> Result<(), CanaryError> {
    let request = grow_request(total);
    let ResponseKind::CreatePartitions(r) = call(
        c,
        ApiKey::CreatePartitions,
        3,
        RequestKind::CreatePartitions(request),
        REQUEST_TIMEOUT,
    )
    .await?
    else {
        return Err(CanaryError::Protocol(
            "CreatePartitions answered with another response".into(),
        ));
    };
    match r.results.first() {
        Some(t) if t.error_code == 0 => Ok(()),
        Some(t) => Err(refused("CreatePartitions", t.error_code, t.error_message.as_ref())),
        None => Err(CanaryError::Protocol(
            "CreatePartitions answered without the topic".into(),
        )),
    }
}

/// CreatePartitions to `total` partitions with *null* assignments: the controller places the new
/// partitions. (The crate's default is an empty, non-null list, which Kafka, and oxka, refuse with
/// INVALID_REPLICA_ASSIGNMENT: the canary topic never grew past its first size.)
fn grow_request(total: i32) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name())
            .with_count(total)
            .with_assignments(None)])
        .with_timeout_ms(8000)
}

/// An idempotent producer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

/// InitProducerId v4 without a transactional id: a fresh idempotent producer id.
pub async fn init_producer_id(c: &mut ClientConnection) -> Result<ProducerIdentity, CanaryError> {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let ResponseKind::InitProducerId(r) = call(
        c,
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(request),
        REQUEST_TIMEOUT,
    )
    .await?
    else {
        return Err(CanaryError::Protocol(
            "InitProducerId answered with another response".into(),
        ));
    };
    if r.error_code != 0 {
        return Err(refused("InitProducerId", r.error_code, None));
    }
    Ok(ProducerIdentity {
        id: r.producer_id.0,
        epoch: r.producer_epoch,
    })
}

/// The value of canary record `number` of run `run`, sent at `sent_ms`.
pub fn value(run: &str, number: u64, sent_ms: u64) -> Bytes {
    Bytes::from(format!("{run} {number} {sent_ms}"))
}

/// `(number, sent_ms)` of a record of run `run`; `None` for another run or anything else.
pub fn parse_value(run: &str, value: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(' ');
    if parts.next()? != run {
        return None;
    }
    let number = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((number, sent))
}

/// A record batch of one record, stamped for idempotence.
pub fn batch(producer: ProducerIdentity, sequence: i32, value: Bytes, timestamp_ms: i64) -> Result<Bytes, CanaryError> {
    let record = Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: producer.id,
        producer_epoch: producer.epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp: timestamp_ms,
        key: None,
        value: Some(value),
        headers: Default::default(),
        delete_horizon: false,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| CanaryError::Protocol(format!("cannot encode a record batch: {e}")))?;
    Ok(buf.freeze())
}

/// Produce v9 with acks=all of one batch to `partition`; the offset Kafka gave it.
pub async fn produce(c: &mut ClientConnection, partition: i32, batch: Bytes) -> Result<i64, CanaryError> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(REQUEST_TIMEOUT.as_millis() as i32 - 1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let ResponseKind::Produce(r) = call(c, ApiKey::Produce, 9, RequestKind::Produce(request), REQUEST_TIMEOUT).await?
    else {
        return Err(CanaryError::Protocol("Produce answered with another response".into()));
    };
    let p = r
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.index == partition)
        .ok_or_else(|| CanaryError::Protocol("Produce answered without the partition".into()))?;
    match p.error_code {
        0 => Ok(p.base_offset),
        code => Err(refused("Produce", code, p.error_message.as_ref())),
    }
}

/// ListOffsets v4 of `partition` at `timestamp` (`EARLIEST` or `LATEST`).
pub async fn list_offset(c: &mut ClientConnection, partition: i32, timestamp: i64) -> Result<i64, CanaryError> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let ResponseKind::ListOffsets(r) = call(
        c,
        ApiKey::ListOffsets,
        4,
        RequestKind::ListOffsets(request),
        REQUEST_TIMEOUT,
    )
    .await?
    else {
        return Err(CanaryError::Protocol(
            "ListOffsets answered with another response".into(),
        ));
    };
    let p = r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| CanaryError::Protocol("ListOffsets answered without the partition".into()))?;
    match p.error_code {
        0 => Ok(p.offset),
        code => Err(refused("ListOffsets", code, None)),
    }
}

/// What one Fetch of one partition returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetched {
    /// `(offset, value)` of every record at or after the position asked for.
    pub records: Vec<(i64, Bytes)>,
    /// Where the next Fetch starts.
    pub next_offset: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// Fetch v12 of `partition` from `offset`, waiting at most `max_wait` at the leader for data.
pub async fn fetch(
    c: &mut ClientConnection,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    max_wait: Duration,
) -> Result<Fetched, CanaryError> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_topics(vec![FetchTopic::default().with_topic(topic_name()).with_partitions(
            vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(leader_epoch)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(FETCH_MAX_BYTES)],
        )]);
    let ResponseKind::Fetch(r) = call(
        c,
        ApiKey::Fetch,
        12,
        RequestKind::Fetch(request),
        REQUEST_TIMEOUT + max_wait,
    )
    .await?
    else {
        return Err(CanaryError::Protocol("Fetch answered with another response".into()));
    };
    if r.error_code != 0 {
        return Err(refused("Fetch", r.error_code, None));
    }
    let p = r
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| CanaryError::Protocol("Fetch answered without the partition".into()))?;
    if p.error_code != 0 {
        return Err(refused("Fetch", p.error_code, None));
    }
    let mut out = Fetched {
        records: Vec::new(),
        next_offset: offset,
        log_start_offset: p.log_start_offset,
        high_watermark: p.high_watermark,
    };
    if let Some(data) = p.records.clone() {
        let mut data = data;
        let sets = RecordBatchDecoder::decode_all(&mut data)
            .map_err(|e| CanaryError::Protocol(format!("cannot decode the records of {TOPIC}-{partition}: {e}")))?;
        for record in sets.into_iter().flat_map(|s| s.records) {
            if record.offset < offset {
                continue; // a batch starting before the position asked for
            }
            out.next_offset = out.next_offset.max(record.offset + 1);
            if !record.control {
                out.records.push((record.offset, record.value.unwrap_or_default()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_the_topic_leaves_placement_to_the_controller() {
        let request = grow_request(5);
        let topic = &request.topics[0];
        assert_eq!((topic.name.0.as_str(), topic.count), (TOPIC, 5));
        assert!(
            topic.assignments.is_none(),
            "assignments must be null, not an empty list"
        );
    }

    #[test]
    fn a_value_reads_back_only_for_its_own_run() {
        let v = value("run7", 42, 1_700_000_000_123);
        assert_eq!(&v[..], b"run7 42 1700000000123");
        assert_eq!(parse_value("run7", &v), Some((42, 1_700_000_000_123)));
        assert_eq!(parse_value("run8", &v), None);
        assert_eq!(parse_value("run7", b"run7 42"), None);
        assert_eq!(parse_value("run7", b"run7 x 1"), None);
    }

    #[test]
    fn a_batch_carries_the_producer_id_epoch_and_sequence_and_decodes_to_its_value() {
        let producer = ProducerIdentity { id: 4000, epoch: 2 };
        let mut bytes = batch(producer, 17, value("r", 1, 5), 5).unwrap();
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        let r = &sets[0].records[0];
        assert_eq!((r.producer_id, r.producer_epoch, r.sequence), (4000, 2, 17));
        assert_eq!(parse_value("r", r.value.as_ref().unwrap()), Some((1, 5)));
    }

    #[test]
    fn retriable_errors_are_the_ones_a_new_leader_or_time_can_fix() {
        assert!(retriable(6), "NOT_LEADER_OR_FOLLOWER");
        assert!(retriable(19), "NOT_ENOUGH_REPLICAS");
        assert!(!retriable(45), "OUT_OF_ORDER_SEQUENCE_NUMBER needs a new producer id");
        assert!(!retriable(10), "MESSAGE_TOO_LARGE");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
    }
}
