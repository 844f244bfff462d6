//! Kafka's `__share_group_state` records (KIP-932), as Kafka 4.1's share coordinator writes them:
//! key `ShareSnapshotKey` (record type 0: group id, topic id, partition) and value
//! `ShareSnapshotValue` (version 0, flexible: snapshot epoch, state epoch, leader epoch, start
//! offset, create and write timestamps, the state batches); a null value is a tombstone (the
//! share partition's state was deleted). oxka writes a whole snapshot on every change, never a
//! `ShareUpdate` (record type 1), so compaction keeps exactly the latest state of each share
//! partition. The partition of a share partition's state is Kafka's: `abs(javaHashCode(
//! "group:topicId:partition")) % partitions`, with the topic id in Kafka's base64 form.

use base64::Engine as _;
use uuid::Uuid;

/// Kafka's internal topic of share-partition state.
pub const SHARE_GROUP_STATE_TOPIC: &str = "__share_group_state";

/// Record types (Kafka's share `CoordinatorRecordType`), the first field of every key.
const SHARE_SNAPSHOT: i16 = 0;
const SHARE_UPDATE: i16 = 1;

/// A share partition: group id, topic id, partition.
pub type SharePartitionKey = (String, Uuid, i32);

/// One range of in-flight offsets with the same delivery state and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    /// 0 available, 2 acknowledged, 4 archived (acquired offsets are persisted as available).
    pub delivery_state: i8,
    pub delivery_count: i16,
}

/// A share partition's persisted state (`ShareSnapshotValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSnapshot {
    pub snapshot_epoch: i32,
    pub state_epoch: i32,
    /// The leader epoch of the share partition's topic partition that wrote (or last read) it: a
    /// write from an older leader is fenced.
    pub leader_epoch: i32,
    pub start_offset: i64,
    pub create_timestamp: i64,
    pub write_timestamp: i64,
    pub state_batches: Vec<StateBatch>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("unsupported {what} version {version}")]
    Version { what: &'static str, version: i16 },
    #[error("ShareUpdate records are not read by oxka (it writes only ShareSnapshot records)")]
    Update,
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Kafka's coordinator key of a share partition (`SharePartitionKey.asCoordinatorKey`), what
/// FindCoordinator with key type SHARE carries.
pub fn coordinator_key(key: &SharePartitionKey) -> String {
    format!("{}:{}:{}", key.0, java_uuid(&key.1), key.2)
}

/// Parses `coordinator_key`'s form back (FindCoordinator's key): `None` when it is not one.
pub fn parse_coordinator_key(s: &str) -> Option<SharePartitionKey> {
    let mut parts = s.rsplitn(3, ':');
    let partition = parts.next()?.parse::<i32>().ok()?;
    let topic = parts.next()?;
    let group = parts.next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(topic).ok()?;
    let topic_id = Uuid::from_slice(&bytes).ok()?;
    (!group.is_empty() && partition >= 0).then(|| (group.to_string(), topic_id, partition))
}

/// Kafka's `Uuid.toString`: the 16 bytes in URL-safe base64 without padding.
pub fn java_uuid(id: &Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// The `__share_group_state` partition of a coordinator key (`ShareCoordinatorService.partitionFor`).
pub fn partition_for(coordinator_key: &str, partitions: i32) -> i32 {
    crate::group::partition_for(coordinator_key, partitions)
}

pub fn encode_key(key: &SharePartitionKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 + key.0.len() + 16 + 4);
    out.extend_from_slice(&SHARE_SNAPSHOT.to_be_bytes());
    out.extend_from_slice(&(key.0.len() as i16).to_be_bytes());
    out.extend_from_slice(key.0.as_bytes());
    out.extend_from_slice(key.1.as_bytes());
    out.extend_from_slice(&key.2.to_be_bytes());
    out
}

/// Decodes a key: `Err(Update)` for a `ShareUpdateKey`.
pub fn decode_key(bytes: &[u8]) -> Result<SharePartitionKey, RecordError> {
    let mut r = Reader(bytes);
    match r.i16("key type")? {
        SHARE_SNAPSHOT => {}
        SHARE_UPDATE => return Err(RecordError::Update),
        version => return Err(RecordError::Version { what: "key", version }),
    }
    let len = r.i16("group id length")?;
    if len < 0 {
        return Err(RecordError::Invalid("group id"));
    }
    let group = std::str::from_utf8(r.take(len as usize, "group id")?)
        .map_err(|_| RecordError::Invalid("group id"))?
        .to_string();
    let topic_id = Uuid::from_slice(r.take(16, "topic id")?).map_err(|_| RecordError::Invalid("topic id"))?;
    let partition = r.i32("partition")?;
    Ok((group, topic_id, partition))
}

pub fn encode_value(s: &ShareSnapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + s.state_batches.len() * 20);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&s.snapshot_epoch.to_be_bytes());
    out.extend_from_slice(&s.state_epoch.to_be_bytes());
    out.extend_from_slice(&s.leader_epoch.to_be_bytes());
    out.extend_from_slice(&s.start_offset.to_be_bytes());
    out.extend_from_slice(&s.create_timestamp.to_be_bytes());
    out.extend_from_slice(&s.write_timestamp.to_be_bytes());
    put_uvarint(&mut out, s.state_batches.len() as u64 + 1);
    for b in &s.state_batches {
        out.extend_from_slice(&b.first_offset.to_be_bytes());
        out.extend_from_slice(&b.last_offset.to_be_bytes());
        out.push(b.delivery_state as u8);
        out.extend_from_slice(&b.delivery_count.to_be_bytes());
        out.push(0); // no tagged fields
    }
    out.push(0); // no tagged fields
    out
}

pub fn decode_value(bytes: &[u8]) -> Result<ShareSnapshot, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16("value version")?;
    if version != 0 {
        return Err(RecordError::Version { what: "value", version });
    }
    let snapshot_epoch = r.i32("snapshot epoch")?;
    let state_epoch = r.i32("state epoch")?;
    let leader_epoch = r.i32("leader epoch")?;
    let start_offset = r.i64("start offset")?;
    let create_timestamp = r.i64("create timestamp")?;
    let write_timestamp = r.i64("write timestamp")?;
    let n = r.uvarint("state batches")?;
    if n == 0 || n - 1 > (r.0.len() / 20) as u64 {
        return Err(RecordError::Invalid("state batch count"));
    }
    let mut state_batches = Vec::with_capacity((n - 1) as usize);
    for _ in 1..n {
        let batch = StateBatch {
            first_offset: r.i64("first offset")?,
            last_offset: r.i64("last offset")?,
            delivery_state: r.take(1, "delivery state")?[0] as i8,
            delivery_count: r.i16("delivery count")?,
        };
        r.skip_tagged_fields()?;
        state_batches.push(batch);
    }
    r.skip_tagged_fields()?;
    Ok(ShareSnapshot {
        snapshot_epoch,
        state_epoch,
        leader_epoch,
        start_offset,
        create_timestamp,
        write_timestamp,
        state_batches,
    })
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn i16(&mut self, what: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn uvarint(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1, what)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Invalid(what))
    }
    /// Tagged fields oxka does not know: skipped.
    fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        let n = self.uvarint("tagged fields")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")?;
            self.take(size as usize, "tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> ShareSnapshot {
        ShareSnapshot {
            snapshot_epoch: 3,
            state_epoch: 0,
            leader_epoch: 7,
            start_offset: 10,
            create_timestamp: 1_700_000_000_000,
            write_timestamp: 1_700_000_000_500,
            state_batches: vec![
                StateBatch {
                    first_offset: 10,
                    last_offset: 12,
                    delivery_state: 0,
                    delivery_count: 2,
                },
                StateBatch {
                    first_offset: 13,
                    last_offset: 13,
                    delivery_state: 2,
                    delivery_count: 1,
                },
            ],
        }
    }

    #[test]
    fn key_and_value_round_trip() {
        let key = (
            "g1".to_string(),
            Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            4,
        );
        assert_eq!(decode_key(&encode_key(&key)), Ok(key.clone()));
        assert_eq!(decode_value(&encode_value(&snapshot())), Ok(snapshot()));
    }

    /// The bytes are Kafka's: type 0, the group as a non-flexible string, the uuid, the partition;
    /// the value version 0 with its int32/int64 fields, a compact array of batches each ending in
    /// an empty tagged-field section, and the struct's own empty tagged-field section.
    #[test]
    fn bytes_are_kafkas_layout() {
        let key = ("g".to_string(), Uuid::from_u128(1), 2);
        let mut expected = vec![0, 0, 0, 1, b'g'];
        expected.extend_from_slice(&1u128.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 2]);
        assert_eq!(encode_key(&key), expected);
        let value = encode_value(&snapshot());
        assert_eq!(&value[..2], &[0, 0]);
        assert_eq!(&value[2..6], &3i32.to_be_bytes());
        assert_eq!(value[2 + 4 + 4 + 4 + 8 + 8 + 8], 3, "compact array of 2 batches");
        assert_eq!(value.len(), 2 + 4 + 4 + 4 + 8 + 8 + 8 + 1 + 2 * (8 + 8 + 1 + 2 + 1) + 1);
    }

    #[test]
    fn update_records_and_truncation_are_refused() {
        let mut key = encode_key(&("g".to_string(), Uuid::nil(), 0));
        key[1] = 1;
        assert_eq!(decode_key(&key), Err(RecordError::Update));
        let value = encode_value(&snapshot());
        assert!(decode_value(&value[..value.len() - 3]).is_err());
    }

    /// Kafka's `Uuid.toString` and `partitionFor` (`abs(String.hashCode) % n`).
    #[test]
    fn coordinator_key_is_kafkas() {
        let id = Uuid::from_u128(0);
        let key = ("g".to_string(), id, 3);
        assert_eq!(coordinator_key(&key), "g:AAAAAAAAAAAAAAAAAAAAAA:3");
        assert_eq!(parse_coordinator_key("g:AAAAAAAAAAAAAAAAAAAAAA:3"), Some(key));
        assert_eq!(
            parse_coordinator_key("a:b:c:AAAAAAAAAAAAAAAAAAAAAA:0").map(|k| k.0),
            Some("a:b:c".to_string())
        );
        assert_eq!(parse_coordinator_key("g:nope:1"), None);
        // Java: Math.abs("g:AAAAAAAAAAAAAAAAAAAAAA:3".hashCode()) % 50 == 46 (checked with jshell).
        assert_eq!(partition_for("g:AAAAAAAAAAAAAAAAAAAAAA:3", 50), 46);
        // Uuid.fromString("AAAAAAAAAAAAAAAAAAAAAQ") is the uuid 1.
        assert_eq!(java_uuid(&Uuid::from_u128(1)), "AAAAAAAAAAAAAAAAAAAAAQ");
    }
}
