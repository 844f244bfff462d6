//! The records of `__consumer_offsets`, in Kafka's schemas so the topic stays readable by Kafka's tools:
//! keys start with an i16 record type (0 or 1: offset commit, key fields group/topic/partition; 2: group
//! metadata, key field group; 3 to 8: a KIP-848 consumer group's records, keyed by group or group and
//! member, whose values `consumer::records` encodes; 10 to 15: a share group's, likewise, values in
//! `share::records`); values start with an i16 schema version. Written: offset commit key
//! version 1 with `OffsetCommitValue` v3, group metadata key version 2 with `GroupMetadataValue` v3. Read:
//! values v0..=3 (the non-flexible versions). A null value is a tombstone (the offset or group is gone).
//!
//! Strings are an i16 length plus UTF-8 (length -1 for a nullable null), bytes an i32 length, arrays
//! an i32 count, all big endian. A group's records go to partition `partition_for(group)` of the topic.

use bytes::Bytes;

use super::classic_group::CommittedOffset;

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// The records of a consumer-protocol group (KIP-848), record types 3 to 8 (`consumer_records`).
    Consumer {
        kind: ConsumerRecordKind,
        group: String,
        /// The member, for the per-member kinds.
        member: Option<String>,
    },
    /// The records of a share group (KIP-932), record types 10 to 15 (`share::records`).
    Share {
        kind: ShareRecordKind,
        group: String,
        /// The member, for the per-member kinds.
        member: Option<String>,
    },
}

/// Kafka's record types (key versions) of a share group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShareRecordKind {
    /// 10: `ShareGroupMemberMetadata` (a member's subscription and client).
    MemberMetadata,
    /// 11: `ShareGroupMetadata` (the group epoch).
    Metadata,
    /// 12: `ShareGroupTargetAssignmentMetadata` (the assignment epoch).
    TargetAssignmentMetadata,
    /// 13: `ShareGroupTargetAssignmentMember` (a member's target partitions).
    TargetAssignmentMember,
    /// 14: `ShareGroupCurrentMemberAssignment` (a member's epochs and partitions).
    CurrentMemberAssignment,
    /// 15: `ShareGroupStatePartitionMetadata` (the share partitions initialized in the share coordinator).
    StatePartitionMetadata,
}

impl ShareRecordKind {
    pub fn record_type(self) -> i16 {
        match self {
            ShareRecordKind::MemberMetadata => 10,
            ShareRecordKind::Metadata => 11,
            ShareRecordKind::TargetAssignmentMetadata => 12,
            ShareRecordKind::TargetAssignmentMember => 13,
            ShareRecordKind::CurrentMemberAssignment => 14,
            ShareRecordKind::StatePartitionMetadata => 15,
        }
    }

    fn from_record_type(t: i16) -> Option<ShareRecordKind> {
        Some(match t {
            10 => ShareRecordKind::MemberMetadata,
            11 => ShareRecordKind::Metadata,
            12 => ShareRecordKind::TargetAssignmentMetadata,
            13 => ShareRecordKind::TargetAssignmentMember,
            14 => ShareRecordKind::CurrentMemberAssignment,
            15 => ShareRecordKind::StatePartitionMetadata,
            _ => return None,
        })
    }

    fn per_member(self) -> bool {
        matches!(
            self,
            ShareRecordKind::MemberMetadata
                | ShareRecordKind::TargetAssignmentMember
                | ShareRecordKind::CurrentMemberAssignment
        )
    }
}

/// Kafka's record types (key versions) of a consumer-protocol group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsumerRecordKind {
    /// 3: `ConsumerGroupMetadata` (the group epoch).
    Metadata,
    /// 4: `ConsumerGroupPartitionMetadata` (no longer written by Kafka 4.1; read and ignored).
    PartitionMetadata,
    /// 5: `ConsumerGroupMemberMetadata` (a member's subscription and client).
    MemberMetadata,
    /// 6: `ConsumerGroupTargetAssignmentMetadata` (the assignment epoch).
    TargetAssignmentMetadata,
    /// 7: `ConsumerGroupTargetAssignmentMember` (a member's target partitions).
    TargetAssignmentMember,
    /// 8: `ConsumerGroupCurrentMemberAssignment` (a member's epochs, state and partitions).
    CurrentMemberAssignment,
}

impl ConsumerRecordKind {
    pub fn record_type(self) -> i16 {
        match self {
            ConsumerRecordKind::Metadata => 3,
            ConsumerRecordKind::PartitionMetadata => 4,
            ConsumerRecordKind::MemberMetadata => 5,
            ConsumerRecordKind::TargetAssignmentMetadata => 6,
            ConsumerRecordKind::TargetAssignmentMember => 7,
            ConsumerRecordKind::CurrentMemberAssignment => 8,
        }
    }

    fn from_record_type(t: i16) -> Option<ConsumerRecordKind> {
        Some(match t {
            3 => ConsumerRecordKind::Metadata,
            4 => ConsumerRecordKind::PartitionMetadata,
            5 => ConsumerRecordKind::MemberMetadata,
            6 => ConsumerRecordKind::TargetAssignmentMetadata,
            7 => ConsumerRecordKind::TargetAssignmentMember,
            8 => ConsumerRecordKind::CurrentMemberAssignment,
            _ => return None,
        })
    }

    fn per_member(self) -> bool {
        matches!(
            self,
            ConsumerRecordKind::MemberMetadata
                | ConsumerRecordKind::TargetAssignmentMember
                | ConsumerRecordKind::CurrentMemberAssignment
        )
    }
}

/// A `GroupMetadataValue`: the group's generation and its members with their assignments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadataValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A record that is not in the expected format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the record ends before its {0} field")]
    Truncated(&'static str),
    #[error("the {0} field is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("unknown record type or schema version {0}")]
    UnknownVersion(i16),
}

pub fn encode_key(key: &RecordKey) -> Vec<u8> {
    let mut out = Vec::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            out.extend_from_slice(&OFFSET_COMMIT_KEY_VERSION.to_be_bytes());
            put_string(&mut out, group);
            put_string(&mut out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
        }
        RecordKey::Group { group } => {
            out.extend_from_slice(&GROUP_METADATA_KEY_VERSION.to_be_bytes());
            put_string(&mut out, group);
        }
        RecordKey::Consumer { kind, group, member } => {
            out.extend_from_slice(&kind.record_type().to_be_bytes());
            put_string(&mut out, group);
            if let Some(member) = member {
                put_string(&mut out, member);
            }
        }
        RecordKey::Share { kind, group, member } => {
            out.extend_from_slice(&kind.record_type().to_be_bytes());
            put_string(&mut out, group);
            if let Some(member) = member {
                put_string(&mut out, member);
            }
        }
    }
    out
}

pub fn decode_key(mut buf: &[u8]) -> Result<RecordKey, RecordError> {
    let buf = &mut buf;
    match take_i16(buf, "key version")? {
        0 | 1 => Ok(RecordKey::Offset {
            group: take_string(buf, "group")?,
            topic: take_string(buf, "topic")?,
            partition: take_i32(buf, "partition")?,
        }),
        2 => Ok(RecordKey::Group {
            group: take_string(buf, "group")?,
        }),
        v => match (
            ConsumerRecordKind::from_record_type(v),
            ShareRecordKind::from_record_type(v),
        ) {
            (Some(kind), _) => Ok(RecordKey::Consumer {
                kind,
                group: take_string(buf, "group")?,
                member: kind.per_member().then(|| take_string(buf, "member")).transpose()?,
            }),
            (None, Some(kind)) => Ok(RecordKey::Share {
                kind,
                group: take_string(buf, "group")?,
                member: kind.per_member().then(|| take_string(buf, "member")).transpose()?,
            }),
            (None, None) => Err(RecordError::UnknownVersion(v)),
        },
    }
}

pub fn encode_offset_value(value: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&OFFSET_COMMIT_VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    put_string(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out
}

pub fn decode_offset_value(mut buf: &[u8]) -> Result<CommittedOffset, RecordError> {
    let buf = &mut buf;
    let version = take_i16(buf, "value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnknownVersion(version));
    }
    let offset = take_i64(buf, "offset")?;
    let leader_epoch = if version >= 3 {
        take_i32(buf, "leaderEpoch")?
    } else {
        -1
    };
    let metadata = take_string(buf, "metadata")?;
    let commit_timestamp_ms = take_i64(buf, "commitTimestamp")?;
    if version == 1 {
        take_i64(buf, "expireTimestamp")?;
    }
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        record_offset: -1,
    })
}

pub fn encode_group_value(value: &GroupMetadataValue) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&GROUP_METADATA_VALUE_VERSION.to_be_bytes());
    put_string(&mut out, &value.protocol_type);
    out.extend_from_slice(&value.generation.to_be_bytes());
    put_nullable_string(&mut out, value.protocol.as_deref());
    put_nullable_string(&mut out, value.leader.as_deref());
    out.extend_from_slice(&value.current_state_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&(value.members.len() as i32).to_be_bytes());
    for m in &value.members {
        put_string(&mut out, &m.member_id);
        put_nullable_string(&mut out, m.group_instance_id.as_deref());
        put_string(&mut out, &m.client_id);
        put_string(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

pub fn decode_group_value(mut buf: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let buf = &mut buf;
    let version = take_i16(buf, "value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnknownVersion(version));
    }
    let protocol_type = take_string(buf, "protocolType")?;
    let generation = take_i32(buf, "generation")?;
    let protocol = take_nullable_string(buf, "protocol")?;
    let leader = take_nullable_string(buf, "leader")?;
    let current_state_timestamp_ms = if version >= 2 {
        take_i64(buf, "currentStateTimestamp")?
    } else {
        -1
    };
    let count = take_i32(buf, "members")?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = take_string(buf, "memberId")?;
        let group_instance_id = if version >= 3 {
            take_nullable_string(buf, "groupInstanceId")?
        } else {
            None
        };
        let client_id = take_string(buf, "clientId")?;
        let client_host = take_string(buf, "clientHost")?;
        let rebalance_timeout_ms = if version >= 1 {
            take_i32(buf, "rebalanceTimeout")?
        } else {
            -1
        };
        let session_timeout_ms = take_i32(buf, "sessionTimeout")?;
        let subscription = take_bytes(buf, "subscription")?;
        let assignment = take_bytes(buf, "assignment")?;
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            // v0 had no rebalance timeout: Kafka used the session timeout.
            rebalance_timeout_ms: if version == 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

fn take<'a>(buf: &mut &'a [u8], n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
    if buf.len() < n {
        return Err(RecordError::Truncated(field));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn take_i16(buf: &mut &[u8], field: &'static str) -> Result<i16, RecordError> {
    Ok(i16::from_be_bytes(take(buf, 2, field)?.try_into().expect("2 bytes")))
}

fn take_i32(buf: &mut &[u8], field: &'static str) -> Result<i32, RecordError> {
    Ok(i32::from_be_bytes(take(buf, 4, field)?.try_into().expect("4 bytes")))
}

fn take_i64(buf: &mut &[u8], field: &'static str) -> Result<i64, RecordError> {
    Ok(i64::from_be_bytes(take(buf, 8, field)?.try_into().expect("8 bytes")))
}

fn take_nullable_string(buf: &mut &[u8], field: &'static str) -> Result<Option<String>, RecordError> {
    let len = take_i16(buf, field)?;
    if len < 0 {
        return Ok(None);
    }
    let bytes = take(buf, len as usize, field)?;
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| RecordError::NotUtf8(field))
}

fn take_string(buf: &mut &[u8], field: &'static str) -> Result<String, RecordError> {
    Ok(take_nullable_string(buf, field)?.unwrap_or_default())
}

fn take_bytes(buf: &mut &[u8], field: &'static str) -> Result<Bytes, RecordError> {
    let len = take_i32(buf, field)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    Ok(Bytes::copy_from_slice(take(buf, len as usize, field)?))
}

/// The `__consumer_offsets` partition of a group: Kafka's `Utils.abs(groupId.hashCode()) % partitions`.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group_id);
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

/// Java's `String.hashCode`: over UTF-16 code units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_hash() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        // Negative hashes are made positive: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("", 50), 0);
    }

    #[test]
    fn offset_key_and_value_round_trip() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        let bytes = encode_key(&key);
        assert_eq!(&bytes[..2], &[0, 1], "key version 1");
        assert_eq!(bytes, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        assert_eq!(decode_key(&bytes), Ok(key));
        let value = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: 1_000,
            record_offset: -1,
        };
        let bytes = encode_offset_value(&value);
        assert_eq!(&bytes[..2], &[0, 3], "value version 3");
        assert_eq!(bytes.len(), 2 + 8 + 4 + 3 + 8);
        assert_eq!(decode_offset_value(&bytes), Ok(value));
    }

    #[test]
    fn reads_older_offset_values() {
        // v1: offset, metadata, commitTimestamp, expireTimestamp.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(&9i64.to_be_bytes());
        v1.extend_from_slice(&(-1i64).to_be_bytes());
        let value = decode_offset_value(&v1).unwrap();
        assert_eq!(
            (value.offset, value.leader_epoch, value.commit_timestamp_ms),
            (5, -1, 9)
        );
        assert_eq!(decode_offset_value(&[0, 9]), Err(RecordError::UnknownVersion(9)));
        assert_eq!(decode_offset_value(&[0, 3, 0]), Err(RecordError::Truncated("offset")));
    }

    #[test]
    fn group_metadata_round_trip() {
        let key = RecordKey::Group { group: "grp".into() };
        let bytes = encode_key(&key);
        assert_eq!(&bytes[..2], &[0, 2]);
        assert_eq!(decode_key(&bytes), Ok(key));
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 77,
            members: vec![
                MemberMetadataValue {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                },
                MemberMetadataValue {
                    member_id: "m2".into(),
                    ..Default::default()
                },
            ],
        };
        let bytes = encode_group_value(&value);
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(decode_group_value(&bytes), Ok(value));
        let empty = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            ..Default::default()
        };
        assert_eq!(decode_group_value(&encode_group_value(&empty)), Ok(empty));
    }
}
