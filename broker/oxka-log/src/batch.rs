//! Kafka record batch v2 (magic 2) headers: parsing, validation and the few in-place rewrites the
//! broker performs (offset assignment, partition leader epoch, LogAppendTime).
//!
//! Data enters as raw bytes (a produce request's records, or bytes read back from a segment file);
//! only the fixed 61-byte header of each batch is interpreted. Records inside a batch are NEVER
//! decoded here: they may be compressed and their count is client-controlled. What must hold after
//! `validate_batch` succeeds: the batch is exactly `12 + batchLength` bytes, magic is 2, the CRC-32C
//! over bytes `[21..]` matches, and `recordsCount == lastOffsetDelta + 1 > 0`.
//!
//! Layout (big endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12,
//! magic i8 @16, crc u32 @17, attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27,
//! maxTimestamp i64 @35, producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
//! recordsCount i32 @57, records @61.

/// Size of the batch header; also the smallest valid batch.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the CRC-covered region start: baseOffset and batchLength.
pub const LOG_OVERHEAD: usize = 12;
pub(crate) const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;

/// The only record batch format this broker stores.
pub const MAGIC_V2: i8 = 2;
/// `producerId` of batches written by non-idempotent producers.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` when there is none.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's "no timestamp" value.
pub const NO_TIMESTAMP: i64 = -1;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
const TRANSACTIONAL_MASK: i16 = 0x10;
const CONTROL_MASK: i16 = 0x20;

/// Why a batch failed validation. Mapped to `AppendError` for produce and to a truncation reason in
/// recovery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("only {available} bytes remain where a record batch needs {needed}")]
    Truncated { available: usize, needed: usize },
    #[error("batch length {batch_length} is impossible (a v2 batch is at least {HEADER_SIZE} bytes)")]
    InvalidLength { batch_length: i32 },
    #[error("record batch magic {magic} is not supported (only magic 2 is)")]
    UnsupportedMagic { magic: i8 },
    #[error("record batch CRC mismatch: header says {stored:#010x}, data gives {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("invalid record batch: {0}")]
    Invalid(&'static str),
}

/// The parsed fixed header of one v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads `(baseOffset, batchLength)` from the first 12 bytes and returns the batch's total size.
/// Fails when the length cannot be a v2 batch.
pub fn batch_size_from_prefix(prefix: &[u8]) -> Result<usize, BatchError> {
    if prefix.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            available: prefix.len(),
            needed: LOG_OVERHEAD,
        });
    }
    let batch_length = be_i32(prefix, 8);
    if batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength { batch_length });
    }
    Ok(LOG_OVERHEAD + batch_length as usize)
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (which must hold at least 61 bytes). Checks the
    /// length field and magic, not the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        let size = batch_size_from_prefix(buf)?;
        if buf.len() > MAGIC_OFFSET && buf[MAGIC_OFFSET] as i8 != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic {
                magic: buf[MAGIC_OFFSET] as i8,
            });
        }
        if buf.len() < HEADER_SIZE {
            return Err(BatchError::Truncated {
                available: buf.len(),
                needed: HEADER_SIZE.min(size),
            });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Total bytes of this batch including the 12-byte log overhead.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_MASK != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_MASK != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_MASK != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Sequence of the last record, wrapping past `i32::MAX` to 0 as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// `seq + delta` wrapping from `i32::MAX` back to 0 (Kafka's `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// Computes the CRC-32C Kafka stores in a v2 batch: over everything from `attributes` to the end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// Full validation of one complete batch (`batch.len()` must equal its declared size): header,
/// CRC, and the offset/count consistency Kafka's `LogValidator` demands of client batches.
pub fn validate_batch(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.size() != batch.len() {
        return Err(BatchError::Truncated {
            available: batch.len(),
            needed: header.size(),
        });
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::Invalid("lastOffsetDelta is negative"));
    }
    if header.compression() > 4 {
        return Err(BatchError::Invalid("unknown compression codec in attributes"));
    }
    Ok(header)
}

/// Checks the rules Kafka applies only to batches coming from clients (not from replication or
/// recovery): counts match the offset range, no control batches, sequences non-negative.
pub fn validate_client_batch(header: &BatchHeader) -> Result<(), BatchError> {
    if header.records_count <= 0 {
        return Err(BatchError::Invalid("recordsCount must be positive"));
    }
    if i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1 {
        return Err(BatchError::Invalid(
            "recordsCount does not match the batch's offset range (lastOffsetDelta + 1)",
        ));
    }
    if header.is_control() {
        return Err(BatchError::Invalid("clients may not write control batches"));
    }
    if header.has_producer_id() && header.base_sequence < 0 {
        return Err(BatchError::Invalid(
            "idempotent batch (producerId >= 0) has a negative baseSequence",
        ));
    }
    Ok(())
}

/// The rules for batches the broker's own coordinators write (Kafka's `AppendOrigin.COORDINATOR`):
/// counts match the offset range; control batches and `baseSequence = -1` are allowed.
pub fn validate_coordinator_batch(header: &BatchHeader) -> Result<(), BatchError> {
    if header.records_count <= 0 {
        return Err(BatchError::Invalid("recordsCount must be positive"));
    }
    if i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1 {
        return Err(BatchError::Invalid(
            "recordsCount does not match the batch's offset range (lastOffsetDelta + 1)",
        ));
    }
    if header.is_control() && !(header.has_producer_id() && header.is_transactional()) {
        return Err(BatchError::Invalid(
            "a control batch must be transactional and carry a producer id",
        ));
    }
    Ok(())
}

/// Overwrites baseOffset and partitionLeaderEpoch; neither is covered by the CRC.
pub fn assign_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with maxTimestamp `now_ms` (Kafka's
/// `setMaxTimestamp(LOG_APPEND_TIME, now)`), then recomputes the CRC since both fields are covered.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_MASK;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// (key, value, timestamp delta) of one record to encode.
type TestRecord = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// Builds valid uncompressed v2 batches, for tests here and elsewhere in the broker (integration
/// tests, benchmarks). Not used on any serving path.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    pub base_offset: i64,
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    records: Vec<TestRecord>,
}

impl BatchBuilder {
    pub fn new(base_timestamp: i64) -> BatchBuilder {
        BatchBuilder {
            base_offset: 0,
            base_timestamp,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: -1,
            transactional: false,
            records: Vec::new(),
        }
    }
    /// Makes the batch idempotent: producer id, epoch and first sequence.
    pub fn producer(mut self, producer_id: i64, epoch: i16, base_sequence: i32) -> BatchBuilder {
        self.producer_id = producer_id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }
    /// Adds a record with timestamp `base_timestamp + timestamp_delta`.
    pub fn record(mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp_delta: i64) -> Self {
        self.records
            .push((key.map(<[u8]>::to_vec), value.map(<[u8]>::to_vec), timestamp_delta));
        self
    }

    /// Encodes the batch with a correct CRC.
    pub fn build(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, (key, value, ts_delta)) in self.records.iter().enumerate() {
            let mut rec = vec![0u8]; // attributes
            put_varlong(&mut rec, *ts_delta);
            put_varlong(&mut rec, i as i64);
            for field in [key, value] {
                match field {
                    Some(b) => {
                        put_varlong(&mut rec, b.len() as i64);
                        rec.extend_from_slice(b);
                    }
                    None => put_varlong(&mut rec, -1),
                }
            }
            put_varlong(&mut rec, 0); // no headers
            put_varlong(&mut body, rec.len() as i64);
            body.extend_from_slice(&rec);
        }
        let count = self.records.len() as i32;
        let max_delta = self.records.iter().map(|r| r.2).max().unwrap_or(0);
        let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&0u32.to_be_bytes());
        let attributes: i16 = if self.transactional { TRANSACTIONAL_MASK } else { 0 };
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&(count - 1).max(0).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&(self.base_timestamp + max_delta).to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&body);
        let crc = compute_crc(&out);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        BatchBuilder::new(1_000)
            .record(Some(b"k"), Some(b"v1"), 0)
            .record(None, Some(b"v2"), 5)
            .build()
    }

    #[test]
    fn valid_batch_parses() {
        let b = sample();
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.size(), b.len());
        assert_eq!(h.records_count, 2);
        assert_eq!(h.last_offset_delta, 1);
        assert_eq!(h.max_timestamp, 1_005);
        validate_client_batch(&h).unwrap();
    }

    #[test]
    fn bad_crc_is_rejected() {
        let mut b = sample();
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(validate_batch(&b), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut b = sample();
        b[MAGIC_OFFSET] = 1;
        assert_eq!(validate_batch(&b), Err(BatchError::UnsupportedMagic { magic: 1 }));
    }

    #[test]
    fn truncated_batch_is_rejected() {
        let b = sample();
        assert!(matches!(
            validate_batch(&b[..b.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(validate_batch(&b[..30]), Err(BatchError::Truncated { .. })));
        let mut short = b.clone();
        short[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(validate_batch(&short), Err(BatchError::InvalidLength { .. })));
    }

    #[test]
    fn count_must_match_offset_delta() {
        let mut b = sample();
        b[57..61].copy_from_slice(&3i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        let h = validate_batch(&b).unwrap();
        assert!(validate_client_batch(&h).is_err());
    }

    #[test]
    fn log_append_time_rewrite_keeps_crc_valid() {
        let mut b = sample();
        assign_offset_and_epoch(&mut b, 42, 7);
        set_log_append_time(&mut b, 99_999);
        let h = validate_batch(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99_999);
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.partition_leader_epoch, 7);
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 2), 7);
    }
}
