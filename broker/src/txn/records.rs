//! Kafka's `__transaction_state` records: key `TransactionLogKey` (version 0: the transactional id)
//! and value `TransactionLogValue` (version 0: producer id and epoch, timeout, state, partitions, last
//! update and start times; a null value is a tombstone for an expired id). Written as Kafka 3.x
//! writes them, so `kafka-dump-log --transaction-log-decoder` reads oxka's log.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{TxnMetadata, TxnState};
use crate::log::TopicPartition;

/// Kafka's internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("unsupported {what} version {version}")]
    Version { what: &'static str, version: i16 },
    #[error("unknown transaction state {0}")]
    State(i8),
    #[error("invalid {0}")]
    Invalid(&'static str),
}

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_string(&mut out, transactional_id);
    out
}

pub fn decode_key(bytes: &[u8]) -> Result<String, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16("key version")?;
    if version != 0 {
        return Err(RecordError::Version { what: "key", version });
    }
    r.string("transactional id")
}

pub fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&m.producer_id.to_be_bytes());
    out.extend_from_slice(&m.producer_epoch.to_be_bytes());
    out.extend_from_slice(&m.timeout_ms.to_be_bytes());
    out.push(m.state.code() as u8);
    // Kafka writes no partitions (null) for an Empty transaction.
    if m.state == TxnState::Empty {
        out.extend_from_slice(&(-1i32).to_be_bytes());
    } else {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &m.partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        out.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
        for (topic, partitions) in by_topic {
            put_string(&mut out, topic);
            out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for p in partitions {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&m.last_update_ms.to_be_bytes());
    out.extend_from_slice(&m.txn_start_ms.to_be_bytes());
    out
}

pub fn decode_value(transactional_id: &str, bytes: &[u8]) -> Result<TxnMetadata, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16("value version")?;
    if version != 0 {
        return Err(RecordError::Version { what: "value", version });
    }
    let producer_id = r.i64("producer id")?;
    let producer_epoch = r.i16("producer epoch")?;
    let timeout_ms = r.i32("timeout")?;
    let code = r.take(1, "state")?[0] as i8;
    let state = TxnState::from_code(code).ok_or(RecordError::State(code))?;
    let mut partitions = BTreeSet::new();
    let topics = r.i32("partition count")?;
    for _ in 0..topics.max(0) {
        let topic = r.string("topic")?;
        let count = r.i32("partition ids")?;
        if count < 0 || count as usize > r.0.len() / 4 {
            return Err(RecordError::Invalid("partition id count"));
        }
        for _ in 0..count {
            partitions.insert(TopicPartition::new(&topic, r.i32("partition id")?));
        }
    }
    let last_update_ms = r.i64("last update timestamp")?;
    let txn_start_ms = r.i64("start timestamp")?;
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        txn_start_ms,
        last_update_ms,
    })
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Big-endian reads from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2, field)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4, field)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8, field)?.try_into().expect("8 bytes")))
    }
    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        let len = self.i16(field)?;
        if len < 0 {
            return Err(RecordError::Invalid(field));
        }
        let bytes = self.take(len as usize, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::Invalid(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_kafkas_layout() {
        let mut m = TxnMetadata::new("txn-1", 4000, 60_000, 5);
        m.producer_epoch = 3;
        m.state = TxnState::Ongoing;
        m.txn_start_ms = 4;
        m.partitions.insert(TopicPartition::new("b", 2));
        m.partitions.insert(TopicPartition::new("b", 0));
        m.partitions.insert(TopicPartition::new("a", 1));
        let bytes = encode_value(&m);
        // version, pid, epoch, timeout, state, 2 topics ("a": [1], "b": [0, 2]), two timestamps.
        assert_eq!(
            bytes.len(),
            2 + 8 + 2 + 4 + 1 + 4 + (2 + 1 + 4 + 4) + (2 + 1 + 4 + 8) + 8 + 8
        );
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(bytes[16], 1, "Ongoing");
        assert_eq!(decode_value("txn-1", &bytes).unwrap(), m);
        assert_eq!(decode_key(&encode_key("txn-1")).unwrap(), "txn-1");
        assert_eq!(encode_key("ab"), vec![0, 0, 0, 2, b'a', b'b']);

        let empty = TxnMetadata::new("t", 1, 100, 0);
        let bytes = encode_value(&empty);
        assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes(), "null partitions");
        assert_eq!(decode_value("t", &bytes).unwrap(), empty);
        assert!(decode_value("t", &bytes[..20]).is_err());
    }
}
