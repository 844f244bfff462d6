//! `OffsetMap`: key -> latest offset for the dirty section of one log, the cleaner's dedupe table
//! (Kafka's `SkimpyOffsetMap`). Keys are stored as a 16-byte hash, never as the key bytes, so an
//! entry costs a fixed amount and the table's memory is bounded by `log.cleaner.dedupe.buffer.size`
//! (divided among the cleaner threads). As in Kafka, two keys with the same hash are treated as
//! one key; with 128 bits that is vanishingly unlikely.
//!
//! Owned by one cleaner thread for one cleaning; dropped afterwards, so idle cleaners hold no
//! memory.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Bytes one entry costs in the table: 16-byte hash, 8-byte offset, 1 control byte.
const ENTRY_BYTES: usize = 16 + 8 + 1;

#[derive(Debug)]
pub(crate) struct OffsetMap {
    map: HashMap<[u8; 16], i64>,
    max_entries: usize,
    /// The last offset the map covers: every keyed record at or below it (and at or above the
    /// start of the dirty section) was put.
    latest_offset: i64,
}

/// 128-bit hash of a key: two SipHash passes with different prefixes (deterministic within the
/// process, which is all an in-memory table needs).
fn key_hash(key: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, seed) in [0x6f78_6b61_u64, 0x0063_6c65_616e_6572].iter().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        key.hash(&mut h);
        out[i * 8..i * 8 + 8].copy_from_slice(&h.finish().to_be_bytes());
    }
    out
}

impl OffsetMap {
    /// A map whose table never outgrows `memory_bytes` (at least one entry). hashbrown keeps at
    /// most 7/8 of a power-of-two bucket count full, so the entry cap is derived from the largest
    /// bucket count that fits.
    pub fn with_memory(memory_bytes: usize) -> OffsetMap {
        let mut buckets = 1usize;
        while buckets.saturating_mul(2).saturating_mul(ENTRY_BYTES) <= memory_bytes {
            buckets *= 2;
        }
        OffsetMap {
            map: HashMap::new(),
            max_entries: (buckets / 8 * 7).max(1),
            latest_offset: -1,
        }
    }

    #[cfg(test)]
    pub fn with_max_entries(max_entries: usize) -> OffsetMap {
        OffsetMap {
            map: HashMap::new(),
            max_entries: max_entries.max(1),
            latest_offset: -1,
        }
    }

    /// Records `offset` as the latest for `key`; false (nothing changed) when the map is full and
    /// the key is new.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = key_hash(key);
        if self.map.len() >= self.max_entries && !self.map.contains_key(&hash) {
            return false;
        }
        self.map.insert(hash, offset);
        true
    }

    /// The latest offset of `key`, or -1 when the dirty section does not hold it.
    pub fn get(&self, key: &[u8]) -> i64 {
        self.map.get(&key_hash(key)).copied().unwrap_or(-1)
    }

    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }
    pub fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    #[cfg(test)]
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_entries_and_memory() {
        let mut m = OffsetMap::with_max_entries(2);
        assert!(m.put(b"a", 1));
        assert!(m.put(b"b", 2));
        assert!(m.put(b"a", 3), "an existing key may always be updated");
        assert!(!m.put(b"c", 4));
        assert_eq!((m.get(b"a"), m.get(b"b"), m.get(b"c")), (3, 2, -1));
        let m = OffsetMap::with_memory(1 << 20);
        assert!(m.max_entries() * ENTRY_BYTES <= 1 << 20);
        assert!(m.max_entries() > 20_000);
        assert_ne!(key_hash(b"x"), key_hash(b"y"));
    }
}
