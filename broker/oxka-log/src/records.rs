//! The record-level view of a v2 batch that compaction needs (and nothing else in the broker
//! does): decompress the records section, walk each record's fields, and re-encode a batch with a
//! subset of its records (Kafka's `MemoryRecords.filterTo` / `buildRetainedRecordsInto`).
//!
//! Data enters as the bytes of one whole, CRC-valid batch (from a segment file, or from a produce
//! request on a compacted topic) and leaves as `DecodedBatch` views or as freshly encoded batch
//! bytes. Records are parsed from the decompressed bytes until they run out; the stored
//! `recordsCount` is only compared with what was found, never used to size anything.
//! Re-encoding keeps the batch's base offset, lastOffsetDelta, producer id/epoch, base sequence,
//! partition leader epoch, codec and attributes; each retained record keeps its bytes except the
//! timestamp delta, which is recomputed when the base timestamp changes (the KIP-534 delete
//! horizon). Decompression is not size-bounded (as in Kafka's broker): a hostile compressed batch
//! on a compacted topic costs memory proportional to its expansion.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{self, BatchHeader, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2};

/// Attribute bit 6 (KIP-534): the batch's baseTimestamp is the delete horizon of its tombstones.
pub(crate) const DELETE_HORIZON_MASK: i16 = 0x40;
const COMPRESSION_MASK: i16 = 0x07;
const CRC_OFFSET: usize = 17;

/// Why a batch's records could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error("cannot decompress the records of the batch at offset {base_offset} (codec {codec}): {reason}")]
    Decompress {
        base_offset: i64,
        codec: u8,
        reason: String,
    },
    #[error("cannot compress the compacted batch at offset {base_offset} (codec {codec}): {reason}")]
    Compress {
        base_offset: i64,
        codec: u8,
        reason: String,
    },
    #[error("malformed record in the batch at offset {base_offset}: {reason}")]
    Malformed { base_offset: i64, reason: &'static str },
}

/// One record of a decoded batch. Ranges index `DecodedBatch::data`.
#[derive(Debug, Clone)]
pub(crate) struct RecordView {
    pub offset: i64,
    pub timestamp: i64,
    attributes: u8,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// The record body after its timestamp delta: offset delta, key, value, headers.
    rest: Range<usize>,
}

/// A batch with its records located in the decompressed records section.
#[derive(Debug)]
pub(crate) struct DecodedBatch {
    pub header: BatchHeader,
    data: Bytes,
    pub records: Vec<RecordView>,
}

impl RecordView {
    /// False for a tombstone (null value).
    pub fn has_value(&self) -> bool {
        self.value.is_some()
    }
}

impl DecodedBatch {
    pub fn key(&self, r: &RecordView) -> Option<&[u8]> {
        r.key.as_ref().map(|k| &self.data[k.clone()])
    }
    pub fn value(&self, r: &RecordView) -> Option<&[u8]> {
        r.value.as_ref().map(|v| &self.data[v.clone()])
    }
    /// The delete horizon (KIP-534) if this batch carries one.
    pub fn delete_horizon(&self) -> Option<i64> {
        (self.header.attributes & DELETE_HORIZON_MASK != 0).then_some(self.header.base_timestamp)
    }
}

/// Parses the records of one whole batch (`bytes` is exactly the batch).
pub(crate) fn decode(bytes: &[u8]) -> Result<DecodedBatch, RecordsError> {
    let header = BatchHeader::parse(bytes).map_err(|_| RecordsError::Malformed {
        base_offset: -1,
        reason: "unparsable batch header",
    })?;
    let malformed = |reason| RecordsError::Malformed {
        base_offset: header.base_offset,
        reason,
    };
    if bytes.len() != header.size() || bytes.len() < HEADER_SIZE {
        return Err(malformed("batch length does not match its bytes"));
    }
    let data = decompress(&header, Bytes::copy_from_slice(&bytes[HEADER_SIZE..]))?;
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let mut cur = Cursor { buf: &data, pos };
        let len = cur.varint().ok_or_else(|| malformed("bad record length"))?;
        let body_start = cur.pos;
        let body_end = usize::try_from(len)
            .ok()
            .and_then(|l| body_start.checked_add(l))
            .filter(|end| *end <= data.len())
            .ok_or_else(|| malformed("record length runs past the batch"))?;
        let mut body = Cursor {
            buf: &data[..body_end],
            pos: body_start,
        };
        let attributes = body.byte().ok_or_else(|| malformed("truncated record attributes"))?;
        let ts_delta = body.varlong().ok_or_else(|| malformed("bad timestamp delta"))?;
        let rest_start = body.pos;
        let offset_delta = body.varint().ok_or_else(|| malformed("bad offset delta"))?;
        let key = body.bytes_field().ok_or_else(|| malformed("bad record key"))?;
        let value = body.bytes_field().ok_or_else(|| malformed("bad record value"))?;
        records.push(RecordView {
            offset: header.base_offset + i64::from(offset_delta),
            timestamp: header.base_timestamp.wrapping_add(ts_delta),
            attributes,
            key,
            value,
            rest: rest_start..body_end,
        });
        pos = body_end;
    }
    if records.len() as i64 != i64::from(header.records_count) {
        return Err(malformed("recordsCount does not match the records present"));
    }
    Ok(DecodedBatch { header, data, records })
}

/// Whether some record of this batch has no key (Kafka rejects those on compacted topics).
pub(crate) fn has_record_without_key(bytes: &[u8]) -> Result<bool, RecordsError> {
    let decoded = decode(bytes)?;
    Ok(decoded.records.iter().any(|r| r.key.is_none()))
}

fn decompress(header: &BatchHeader, mut data: Bytes) -> Result<Bytes, RecordsError> {
    let codec = header.compression();
    let take = |b: &mut Bytes| Ok(std::mem::take(b));
    let out = match codec {
        0 => return Ok(data),
        1 => <Gzip as Decompressor<Bytes>>::decompress(&mut data, take),
        2 => <Snappy as Decompressor<Bytes>>::decompress(&mut data, take),
        3 => <Lz4 as Decompressor<Bytes>>::decompress(&mut data, take),
        4 => <Zstd as Decompressor<Bytes>>::decompress(&mut data, take),
        _ => {
            return Err(RecordsError::Decompress {
                base_offset: header.base_offset,
                codec,
                reason: "unknown codec".to_string(),
            })
        }
    };
    out.map_err(|e| RecordsError::Decompress {
        base_offset: header.base_offset,
        codec,
        reason: format!("{e:#}"),
    })
}

fn compress(header: &BatchHeader, body: &[u8], out: &mut Vec<u8>) -> Result<(), RecordsError> {
    let codec = header.compression();
    let fill = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(body);
        Ok(())
    };
    let done = match codec {
        0 => {
            out.extend_from_slice(body);
            Ok(())
        }
        1 => <Gzip as Compressor<Vec<u8>>>::compress(out, fill),
        2 => <Snappy as Compressor<Vec<u8>>>::compress(out, fill),
        3 => <Lz4 as Compressor<Vec<u8>>>::compress(out, fill),
        4 => <Zstd as Compressor<Vec<u8>>>::compress(out, fill),
        _ => {
            return Err(RecordsError::Compress {
                base_offset: header.base_offset,
                codec,
                reason: "unknown codec".to_string(),
            })
        }
    };
    done.map_err(|e| RecordsError::Compress {
        base_offset: header.base_offset,
        codec,
        reason: format!("{e:#}"),
    })
}

/// Encodes `batch` with only the records at `keep` (indexes into `batch.records`, ascending).
/// With `delete_horizon`, the batch is marked with it (attribute bit 6, baseTimestamp = horizon).
pub(crate) fn encode_retained(
    batch: &DecodedBatch,
    keep: &[usize],
    delete_horizon: Option<i64>,
) -> Result<Vec<u8>, RecordsError> {
    let h = &batch.header;
    let base_timestamp = delete_horizon.unwrap_or(h.base_timestamp);
    let mut body = Vec::new();
    let mut rec = Vec::new();
    for &i in keep {
        let r = &batch.records[i];
        rec.clear();
        rec.push(r.attributes);
        put_varlong(&mut rec, r.timestamp.wrapping_sub(base_timestamp));
        rec.extend_from_slice(&batch.data[r.rest.clone()]);
        put_varlong(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let max_timestamp = if h.is_log_append_time() {
        h.max_timestamp
    } else {
        keep.iter()
            .map(|&i| batch.records[i].timestamp)
            .max()
            .unwrap_or(h.max_timestamp)
    };
    let mut attributes = h.attributes;
    if delete_horizon.is_some() {
        attributes |= DELETE_HORIZON_MASK;
    }
    let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
    put_header(
        &mut out,
        h,
        attributes,
        base_timestamp,
        max_timestamp,
        keep.len() as i32,
    );
    compress(h, &body, &mut out)?;
    finish_batch(&mut out);
    Ok(out)
}

/// A batch with no records that keeps `h`'s offsets and producer fields: what compaction leaves
/// of a producer's last batch when all its records are gone (Kafka's `writeEmptyHeader`).
pub(crate) fn encode_empty(h: &BatchHeader) -> Vec<u8> {
    let attributes = h.attributes & !(COMPRESSION_MASK | DELETE_HORIZON_MASK);
    let mut out = Vec::with_capacity(HEADER_SIZE);
    put_header(&mut out, h, attributes, h.max_timestamp, h.max_timestamp, 0);
    finish_batch(&mut out);
    out
}

fn put_header(out: &mut Vec<u8>, h: &BatchHeader, attributes: i16, base_ts: i64, max_ts: i64, count: i32) {
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, set by finish_batch
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, set by finish_batch
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_ts.to_be_bytes());
    out.extend_from_slice(&max_ts.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    debug_assert_eq!(out.len(), HEADER_SIZE);
}

fn finish_batch(out: &mut [u8]) {
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = batch::compute_crc(out);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Bounds-checked reads of Kafka's zigzag varints and length-prefixed fields.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn varlong(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        None
    }
    fn varint(&mut self) -> Option<i32> {
        let v = self.varlong()?;
        i32::try_from(v).ok()
    }
    /// A varint length then that many bytes; -1 is null.
    fn bytes_field(&mut self) -> Option<Option<Range<usize>>> {
        let len = self.varint()?;
        if len < 0 {
            return (len == -1).then_some(None);
        }
        let start = self.pos;
        let end = start.checked_add(len as usize).filter(|e| *e <= self.buf.len())?;
        self.pos = end;
        Some(Some(start..end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{validate_batch, BatchBuilder};

    #[test]
    fn decode_and_reencode_subset_keeps_offsets_and_fields() {
        let mut b = BatchBuilder::new(1_000)
            .producer(7, 2, 10)
            .record(Some(b"a"), Some(b"1"), 0)
            .record(Some(b"b"), None, 5)
            .record(Some(b"c"), Some(b"3"), 9)
            .build();
        batch::assign_offset_and_epoch(&mut b, 100, 4);
        let d = decode(&b).unwrap();
        assert_eq!(d.records.len(), 3);
        assert_eq!(d.key(&d.records[1]), Some(&b"b"[..]));
        assert!(!d.records[1].has_value());
        assert_eq!(d.value(&d.records[2]), Some(&b"3"[..]));
        assert_eq!(d.records[2].offset, 102);
        assert_eq!(d.records[2].timestamp, 1_009);

        let out = encode_retained(&d, &[1], Some(50_000)).unwrap();
        let h = validate_batch(&out).unwrap();
        assert_eq!((h.base_offset, h.last_offset_delta, h.records_count), (100, 2, 1));
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (7, 2, 10));
        assert_eq!(h.partition_leader_epoch, 4);
        assert_eq!(h.base_timestamp, 50_000);
        assert_eq!(h.max_timestamp, 1_005);
        let again = decode(&out).unwrap();
        assert_eq!(again.delete_horizon(), Some(50_000));
        assert_eq!(again.records[0].offset, 101);
        assert_eq!(again.records[0].timestamp, 1_005);

        let empty = encode_empty(&d.header);
        let h = validate_batch(&empty).unwrap();
        assert_eq!((h.base_offset, h.last_offset(), h.records_count), (100, 102, 0));
        assert!(decode(&empty).unwrap().records.is_empty());
    }

    #[test]
    fn every_codec_round_trips() {
        let plain = BatchBuilder::new(1_000)
            .record(Some(b"k1"), Some(b"v1"), 0)
            .record(Some(b"k2"), Some(b"v2"), 1)
            .build();
        let d = decode(&plain).unwrap();
        for codec in 1..=4i16 {
            let mut header = d.header;
            header.attributes |= codec;
            let with_codec = DecodedBatch {
                header,
                data: d.data.clone(),
                records: d.records.clone(),
            };
            let out = encode_retained(&with_codec, &[0, 1], None).unwrap();
            let h = validate_batch(&out).unwrap();
            assert_eq!(h.compression() as i16, codec);
            let back = decode(&out).unwrap();
            assert_eq!(back.key(&back.records[1]), Some(&b"k2"[..]));
        }
    }

    #[test]
    fn keyless_records_are_found_and_garbage_is_rejected() {
        let b = BatchBuilder::new(1).record(None, Some(b"v"), 0).build();
        assert!(has_record_without_key(&b).unwrap());
        let b = BatchBuilder::new(1).record(Some(b"k"), Some(b"v"), 0).build();
        assert!(!has_record_without_key(&b).unwrap());
        let mut bad = b.clone();
        bad[HEADER_SIZE] = 0x7f; // record length far past the end
        assert!(decode(&bad).is_err());
    }
}
