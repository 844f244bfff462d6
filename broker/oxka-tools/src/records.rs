//! Record batches as the console tools send and receive them: a producer's records encoded into one
//! v2 batch (the `kafka-protocol` crate's encoder, with the compression asked for), and a Fetch
//! answer's bytes cut into whole batches (a leader may end an answer with a partial batch, which the
//! next fetch returns whole) and decoded into records. Control batches (transaction markers) are kept
//! apart so the consumer can skip them and see which transactions aborted.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::error::ToolError;

/// Bytes before a v2 batch's records count: base offset (8) and length (4).
const LOG_OVERHEAD: usize = 12;
/// Offset of the magic byte in a batch.
const MAGIC_OFFSET: usize = 16;
/// Offset of the attributes in a v2 batch, and its bits.
const ATTRIBUTES_OFFSET: usize = 21;
const TRANSACTIONAL_BIT: u16 = 0x10;
const CONTROL_BIT: u16 = 0x20;

/// A record a producer sends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers in order; a null value is `None`.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A record as a consumer prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub leader_epoch: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub producer_id: i64,
    pub transactional: bool,
}

/// One whole batch of a fetched partition: its records, or for a control batch, the marker.
#[derive(Debug, Clone)]
pub enum Batch {
    Data {
        last_offset: i64,
        records: Vec<InRecord>,
    },
    /// A transaction marker: `commit` true for COMMIT, false for ABORT.
    Control {
        last_offset: i64,
        producer_id: i64,
        commit: bool,
    },
}

/// `compression.type` / `--compression-codec` as Kafka names the codecs.
pub fn compression(name: &str) -> Result<Compression, ToolError> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "none" | "" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return Err(ToolError::Usage(format!(
                "compression codec '{other}' is not one of none, gzip, snappy, lz4, zstd"
            )))
        }
    })
}

/// One v2 batch of `records` (offsets from 0, the broker assigns them), stamped with `timestamp_ms`.
pub fn encode_batch(records: &[OutRecord], compression: Compression, timestamp_ms: i64) -> Result<Bytes, ToolError> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence stays the same, and
            // takes the first record's sequence as the batch's: -1 (no sequence), as a producer
            // without idempotence writes.
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (kafka_protocol::protocol::StrBytes::from_string(k.clone()), v.clone()))
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| ToolError::Usage(format!("cannot encode a record batch: {e}")))?;
    Ok(buf.freeze())
}

/// The whole batches of a fetched partition's `records` bytes, decoded; a partial batch at the end is
/// left out. A batch that does not decode is an error naming its offset.
pub fn decode_batches(mut bytes: Bytes) -> Result<Vec<Batch>, ToolError> {
    let mut batches = Vec::new();
    while bytes.len() >= LOG_OVERHEAD {
        let base_offset = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let size = LOG_OVERHEAD + length.max(0) as usize;
        if length < 0 || bytes.len() < size {
            break;
        }
        let mut batch = bytes.split_to(size);
        if batch.len() <= ATTRIBUTES_OFFSET + 1 || batch[MAGIC_OFFSET] != 2 {
            return Err(ToolError::Kafka(format!(
                "the batch at offset {base_offset} is not a v2 record batch (magic {}); this tool reads v2 only",
                batch.get(MAGIC_OFFSET).copied().unwrap_or(0)
            )));
        }
        let attributes = u16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| ToolError::Kafka(format!("cannot decode the record batch at offset {base_offset}: {e}")))?;
        let last_offset = set.records.last().map(|r| r.offset).unwrap_or(base_offset);
        if attributes & CONTROL_BIT != 0 {
            // The marker's key: version (2 bytes), type (2 bytes: 0 ABORT, 1 COMMIT).
            for r in &set.records {
                let commit = r
                    .key
                    .as_ref()
                    .is_some_and(|k| k.len() >= 4 && k.clone().advance_get_i16() == 1);
                batches.push(Batch::Control {
                    last_offset,
                    producer_id: r.producer_id,
                    commit,
                });
            }
            continue;
        }
        let transactional = attributes & TRANSACTIONAL_BIT != 0;
        let records = set
            .records
            .into_iter()
            .map(|r| InRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: r.timestamp_type,
                leader_epoch: r.partition_leader_epoch,
                key: r.key,
                value: r.value,
                headers: r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                producer_id: r.producer_id,
                transactional,
            })
            .collect();
        batches.push(Batch::Data { last_offset, records });
    }
    Ok(batches)
}

/// The control record's type field, after its version.
trait MarkerType {
    fn advance_get_i16(self) -> i16;
}

impl MarkerType for Bytes {
    fn advance_get_i16(mut self) -> i16 {
        self.advance(2);
        self.get_i16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_and_a_partial_tail_is_left_out() {
        let records = vec![
            OutRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v1")),
                headers: vec![("h".into(), Some(Bytes::from_static(b"x"))), ("n".into(), None)],
            },
            OutRecord {
                key: None,
                value: None,
                headers: vec![],
            },
        ];
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let one = encode_batch(&records, compression(codec).unwrap(), 1234).unwrap();
            let mut two = BytesMut::from(&one[..]);
            two.extend_from_slice(&one[..one.len() - 3]);
            let batches = decode_batches(two.freeze()).unwrap();
            assert_eq!(batches.len(), 1, "{codec}");
            let Batch::Data {
                last_offset,
                records: got,
            } = &batches[0]
            else {
                panic!("a data batch")
            };
            assert_eq!(*last_offset, 1);
            assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
            assert_eq!(got[0].headers, records[0].headers);
            assert_eq!(got[1].value, None);
            assert_eq!(got[1].timestamp, 1234);
        }
        assert!(compression("brotli").is_err());
    }
}
