//! Kafka's control batches for transactions: the end-transaction marker (`EndTransactionMarker`,
//! `ControlRecordType`) a transaction coordinator has each partition leader write to commit or
//! abort a producer's transaction.
//!
//! A marker is a batch of one record, with the control and transactional attribute bits set, the
//! producer's id and epoch, base sequence -1. Its record key is `version: i16 = 0, type: i16`
//! (0 ABORT, 1 COMMIT) and its value `version: i16 = 0, coordinator_epoch: i32`. `build` makes
//! one (offset 0, to be assigned by the log); `parse` reads one back from a whole control batch
//! (other control record types, and empty control batches the cleaner may leave, parse to None).

use crate::batch::{self, BatchHeader, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2};
use crate::records;

/// The control record types Kafka defines for end-transaction markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    Abort,
    Commit,
}

impl ControlRecordType {
    pub fn code(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
        }
    }
    fn from_code(code: i16) -> Option<ControlRecordType> {
        match code {
            0 => Some(ControlRecordType::Abort),
            1 => Some(ControlRecordType::Commit),
            _ => None,
        }
    }
}

/// One end-transaction marker as found in (or written to) the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTransactionMarker {
    pub control_type: ControlRecordType,
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    pub fn is_commit(&self) -> bool {
        self.control_type == ControlRecordType::Commit
    }
}

const ATTRIBUTES_CONTROL_TRANSACTIONAL: i16 = 0x20 | 0x10;
const KEY_LEN: usize = 4;
const VALUE_LEN: usize = 6;

/// Encodes a marker batch at offset 0 (partition leader epoch -1): the log assigns both.
pub fn build(producer_id: i64, producer_epoch: i16, marker: EndTransactionMarker, timestamp: i64) -> Vec<u8> {
    // One record, every varint a single byte: length 16, attributes 0, timestamp delta 0,
    // offset delta 0, key length 4 (zigzag 8), key, value length 6 (zigzag 12), value, 0 headers.
    let mut record = vec![0x20u8, 0, 0, 0, (KEY_LEN as u8) << 1];
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.control_type.code().to_be_bytes());
    record.push((VALUE_LEN as u8) << 1);
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    record.push(0);
    let mut out = Vec::with_capacity(HEADER_SIZE + record.len());
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + record.len()) as i32).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&ATTRIBUTES_CONTROL_TRANSACTIONAL.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&producer_epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&1i32.to_be_bytes()); // records count
    out.extend_from_slice(&record);
    let crc = batch::compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Why a control batch could not be read as an end-transaction marker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("control batch at offset {base_offset} is malformed: {reason}")]
    Malformed { base_offset: i64, reason: String },
}

/// The end-transaction marker of a whole control batch (`bytes` is exactly the batch), or None
/// when its first record is another control type or it has no record (Kafka ignores both).
pub fn parse(header: &BatchHeader, bytes: &[u8]) -> Result<Option<EndTransactionMarker>, ControlError> {
    let malformed = |reason: String| ControlError::Malformed {
        base_offset: header.base_offset,
        reason,
    };
    let decoded = records::decode(bytes).map_err(|e| malformed(e.to_string()))?;
    let Some(record) = decoded.records.first() else {
        return Ok(None);
    };
    let key = decoded
        .key(record)
        .filter(|k| k.len() >= KEY_LEN)
        .ok_or_else(|| malformed("the control record key is shorter than 4 bytes".to_string()))?;
    let Some(control_type) = ControlRecordType::from_code(i16::from_be_bytes([key[2], key[3]])) else {
        return Ok(None);
    };
    let value = decoded
        .value(record)
        .filter(|v| v.len() >= VALUE_LEN)
        .ok_or_else(|| malformed("the end transaction marker value is shorter than 6 bytes".to_string()))?;
    let version = i16::from_be_bytes([value[0], value[1]]);
    if version < 0 {
        return Err(malformed(format!("end transaction marker version {version}")));
    }
    Ok(Some(EndTransactionMarker {
        control_type,
        coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_with_kafka_layout() {
        let marker = EndTransactionMarker {
            control_type: ControlRecordType::Commit,
            coordinator_epoch: 7,
        };
        let bytes = build(42, 3, marker, 1_000);
        let h = batch::validate_batch(&bytes).unwrap();
        assert!(h.is_control() && h.is_transactional());
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (42, 3, -1));
        assert_eq!((h.records_count, h.last_offset_delta), (1, 0));
        // Key: version 0, type COMMIT; value: version 0, coordinator epoch 7.
        let rec = &bytes[HEADER_SIZE..];
        assert_eq!(rec[0], 16 << 1);
        assert_eq!(&rec[5..9], &[0, 0, 0, 1]);
        assert_eq!(&rec[10..16], &[0, 0, 0, 0, 0, 7]);
        assert_eq!(parse(&h, &bytes).unwrap(), Some(marker));
        let abort = build(
            1,
            0,
            EndTransactionMarker {
                control_type: ControlRecordType::Abort,
                coordinator_epoch: -1,
            },
            5,
        );
        let h = batch::validate_batch(&abort).unwrap();
        assert!(!parse(&h, &abort).unwrap().unwrap().is_commit());
    }
}
