//! The records of an uncompressed v2 batch as the broker's own coordinators write them (the group
//! coordinator's `__consumer_offsets`, the transaction coordinator's `__transaction_state`): each
//! record's offset delta, key and value, borrowed from the batch. Their start-up and failover replays
//! read them; compressed batches (which these writers never produce) are `records.rs`'s business.

/// One record: offset delta from the batch's base offset, key and value (None: null).
pub type PlainRecord<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

/// Walks every whole batch in `bytes` (a read of a coordinator's compacted topic), calling
/// `apply(batch base offset, key, value)` for each keyed record of its uncompressed data batches; a
/// trailing partial batch is left for the next read. Returns the offset after the last batch read (-1:
/// none) and how many batches it could not read (corrupt, compressed, or malformed records); control
/// batches are passed over.
pub fn for_each_keyed_record(bytes: &[u8], mut apply: impl FnMut(i64, &[u8], Option<&[u8]>)) -> (i64, usize) {
    use crate::batch::{batch_size_from_prefix, validate_batch, HEADER_SIZE, LOG_OVERHEAD};
    let mut pos = 0;
    let mut next = -1;
    let mut unreadable = 0;
    while bytes.len() - pos >= HEADER_SIZE {
        let Ok(size) = batch_size_from_prefix(&bytes[pos..pos + LOG_OVERHEAD]) else {
            break;
        };
        if bytes.len() - pos < size {
            break;
        }
        let batch = &bytes[pos..pos + size];
        pos += size;
        let Ok(header) = validate_batch(batch) else {
            unreadable += 1;
            continue;
        };
        next = header.next_offset();
        if header.is_control() {
            continue;
        }
        let records = (header.compression() == 0)
            .then(|| plain_records(&batch[HEADER_SIZE..], header.records_count))
            .flatten();
        let Some(records) = records else {
            unreadable += 1;
            continue;
        };
        for (_, key, value) in records {
            if let Some(key) = key {
                apply(header.base_offset, key, value);
            }
        }
    }
    (next, unreadable)
}

/// Decodes `count` records of an uncompressed v2 batch body (the bytes after the 61-byte header).
/// None if malformed.
pub fn plain_records(mut body: &[u8], count: i32) -> Option<Vec<PlainRecord<'_>>> {
    let mut out = Vec::new();
    for _ in 0..count {
        let len = varint(&mut body)?;
        if len < 0 || len as usize > body.len() {
            return None;
        }
        let (mut record, rest) = body.split_at(len as usize);
        body = rest;
        let r = &mut record;
        r.split_off_first()?; // attributes
        varint(r)?; // timestamp delta
        let offset_delta = varint(r)?;
        let key = bytes_field(r)?;
        let value = bytes_field(r)?;
        out.push((offset_delta, key, value));
    }
    Some(out)
}

fn bytes_field<'a>(buf: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let len = varint(buf)?;
    if len < 0 {
        return Some(None);
    }
    if len as usize > buf.len() {
        return None;
    }
    let (field, rest) = buf.split_at(len as usize);
    *buf = rest;
    Some(Some(field))
}

/// A zigzag varlong.
fn varint(buf: &mut &[u8]) -> Option<i64> {
    let mut raw: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.split_off_first()?;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, HEADER_SIZE};

    #[test]
    fn keys_values_and_offsets_of_a_built_batch() {
        let batch = BatchBuilder::new(0)
            .record(Some(b"k"), Some(b"value"), 0)
            .record(Some(b"gone"), None, 3)
            .build();
        let records = plain_records(&batch[HEADER_SIZE..], 2).unwrap();
        assert_eq!(records[0], (0, Some(&b"k"[..]), Some(&b"value"[..])));
        assert_eq!(records[1], (1, Some(&b"gone"[..]), None));
        assert!(plain_records(&batch[HEADER_SIZE..batch.len() - 1], 2).is_none());
    }

    #[test]
    fn decodes_varints() {
        for v in [0i64, 1, -1, 63, -64, 300, i32::MAX as i64, i64::MIN] {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            let mut buf = Vec::new();
            while z >= 0x80 {
                buf.push((z as u8) | 0x80);
                z >>= 7;
            }
            buf.push(z as u8);
            assert_eq!(varint(&mut buf.as_slice()), Some(v));
        }
    }
}
