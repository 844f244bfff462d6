//! The values of a consumer-protocol group's records in `__consumer_offsets`, in Kafka's schemas
//! (flexible version 0 of `ConsumerGroupMetadataValue`, `ConsumerGroupMemberMetadataValue`,
//! `ConsumerGroupTargetAssignmentMetadataValue`, `ConsumerGroupTargetAssignmentMemberValue` and
//! `ConsumerGroupCurrentMemberAssignmentValue`): an i16 version, then compact strings and arrays
//! (unsigned varint length + 1), UUIDs as 16 bytes, and a tagged-field section after each struct
//! (written empty, skipped when read). The keys are `records::RecordKey::Consumer`.
//!
//! `changes` turns one step of a group (before, after) into the records that make the log say what
//! memory says, in Kafka's order: member metadata, group epoch, target assignment, current assignments.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::group::ConsumerGroup;
use super::member::{Assignment, ClassicMemberMetadata, ConsumerMember, MemberState};
use crate::group::member::Protocol;
use crate::group::records::{encode_key, ConsumerRecordKind, RecordError, RecordKey};

const VALUE_VERSION: i16 = 0;

/// `ConsumerGroupMemberMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// The tagged field 0 `ClassicMemberMetadata` (written only for classic members).
    pub classic: Option<ClassicMemberMetadata>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState` value: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

impl MemberMetadata {
    pub fn of(m: &ConsumerMember) -> MemberMetadata {
        MemberMetadata {
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
            subscribed_topic_regex: m.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            server_assignor: m.server_assignor.clone(),
            classic: m.classic.clone(),
        }
    }
}

impl CurrentAssignment {
    pub fn of(m: &ConsumerMember) -> CurrentAssignment {
        CurrentAssignment {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: match m.state {
                MemberState::Stable => 0,
                MemberState::UnrevokedPartitions => 1,
                MemberState::UnreleasedPartitions => 2,
            },
            assigned: m.assigned.clone(),
            pending_revocation: m.pending_revocation.clone(),
        }
    }

    pub fn member_state(&self) -> MemberState {
        match self.state {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

// ---- encoding ----------------------------------------------------------------------------------

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_compact_string(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64 + 1);
    out.extend_from_slice(s.as_bytes());
}

fn put_compact_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_compact_string(out, s),
        None => out.push(0),
    }
}

fn put_no_tags(out: &mut Vec<u8>) {
    out.push(0);
}

fn put_topic_partitions(out: &mut Vec<u8>, a: &Assignment) {
    put_uvarint(out, a.len() as u64 + 1);
    for (topic, parts) in a {
        out.extend_from_slice(topic.as_bytes());
        put_uvarint(out, parts.len() as u64 + 1);
        for p in parts {
            out.extend_from_slice(&p.to_be_bytes());
        }
        put_no_tags(out);
    }
}

fn start() -> Vec<u8> {
    VALUE_VERSION.to_be_bytes().to_vec()
}

/// `ConsumerGroupMetadataValue` (group epoch) and `ConsumerGroupTargetAssignmentMetadataValue`
/// (assignment epoch): one int32.
pub fn encode_epoch(epoch: i32) -> Vec<u8> {
    let mut out = start();
    out.extend_from_slice(&epoch.to_be_bytes());
    put_no_tags(&mut out);
    out
}

pub fn encode_member_metadata(m: &MemberMetadata) -> Vec<u8> {
    let mut out = start();
    put_compact_nullable_string(&mut out, m.instance_id.as_deref());
    put_compact_nullable_string(&mut out, m.rack_id.as_deref());
    put_compact_string(&mut out, &m.client_id);
    put_compact_string(&mut out, &m.client_host);
    put_uvarint(&mut out, m.subscribed_topic_names.len() as u64 + 1);
    for t in &m.subscribed_topic_names {
        put_compact_string(&mut out, t);
    }
    put_compact_nullable_string(&mut out, m.subscribed_topic_regex.as_deref());
    out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
    put_compact_nullable_string(&mut out, m.server_assignor.as_deref());
    match &m.classic {
        None => put_no_tags(&mut out),
        Some(classic) => {
            // One tagged field: tag 0, its size, then the nullable struct (1: present).
            let body = encode_classic_metadata(classic);
            put_uvarint(&mut out, 1);
            put_uvarint(&mut out, 0);
            put_uvarint(&mut out, body.len() as u64);
            out.extend_from_slice(&body);
        }
    }
    out
}

/// `ClassicMemberMetadata` as a present nullable struct: SessionTimeoutMs, then SupportedProtocols
/// (name, metadata bytes), each struct with its (empty) tagged fields.
fn encode_classic_metadata(c: &ClassicMemberMetadata) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&c.session_timeout_ms.to_be_bytes());
    put_uvarint(&mut out, c.supported_protocols.len() as u64 + 1);
    for p in &c.supported_protocols {
        put_compact_string(&mut out, &p.name);
        put_uvarint(&mut out, p.metadata.len() as u64 + 1);
        out.extend_from_slice(&p.metadata);
        put_no_tags(&mut out);
    }
    put_no_tags(&mut out);
    out
}

pub fn encode_target_member(a: &Assignment) -> Vec<u8> {
    let mut out = start();
    put_topic_partitions(&mut out, a);
    put_no_tags(&mut out);
    out
}

pub fn encode_current_assignment(c: &CurrentAssignment) -> Vec<u8> {
    let mut out = start();
    out.extend_from_slice(&c.member_epoch.to_be_bytes());
    out.extend_from_slice(&c.previous_member_epoch.to_be_bytes());
    out.push(c.state as u8);
    put_topic_partitions(&mut out, &c.assigned);
    put_topic_partitions(&mut out, &c.pending_revocation);
    put_no_tags(&mut out);
    out
}

// ---- decoding ----------------------------------------------------------------------------------

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
    fn i8(&mut self, f: &'static str) -> Result<i8, RecordError> {
        Ok(self.take(1, f)?[0] as i8)
    }
    fn i16(&mut self, f: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2, f)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self, f: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4, f)?.try_into().expect("4 bytes")))
    }
    fn uvarint(&mut self, f: &'static str) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1, f)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Truncated(f))
    }
    /// A compact length: None for null (0).
    fn length(&mut self, f: &'static str) -> Result<Option<usize>, RecordError> {
        Ok(self.uvarint(f)?.checked_sub(1).map(|n| n as usize))
    }
    fn nullable_string(&mut self, f: &'static str) -> Result<Option<String>, RecordError> {
        let Some(n) = self.length(f)? else {
            return Ok(None);
        };
        let bytes = self.take(n, f)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| RecordError::NotUtf8(f))
    }
    fn string(&mut self, f: &'static str) -> Result<String, RecordError> {
        Ok(self.nullable_string(f)?.unwrap_or_default())
    }
    fn uuid(&mut self, f: &'static str) -> Result<Uuid, RecordError> {
        Ok(Uuid::from_bytes(self.take(16, f)?.try_into().expect("16 bytes")))
    }
    fn skip_tags(&mut self) -> Result<(), RecordError> {
        for _ in 0..self.uvarint("tagged fields")? {
            self.uvarint("tag")?;
            let size = self.uvarint("tag size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
    fn version(&mut self) -> Result<(), RecordError> {
        match self.i16("value version")? {
            VALUE_VERSION => Ok(()),
            v => Err(RecordError::UnknownVersion(v)),
        }
    }
    fn topic_partitions(&mut self) -> Result<Assignment, RecordError> {
        let mut a = Assignment::new();
        for _ in 0..self.length("topic partitions")?.unwrap_or(0) {
            let topic = self.uuid("topic id")?;
            let mut parts = BTreeSet::new();
            for _ in 0..self.length("partitions")?.unwrap_or(0) {
                parts.insert(self.i32("partition")?);
            }
            self.skip_tags()?;
            if !parts.is_empty() {
                a.entry(topic).or_default().extend(parts);
            }
        }
        Ok(a)
    }
}

pub fn decode_epoch(buf: &[u8]) -> Result<i32, RecordError> {
    let mut r = Reader(buf);
    r.version()?;
    r.i32("epoch")
}

pub fn decode_member_metadata(buf: &[u8]) -> Result<MemberMetadata, RecordError> {
    let mut r = Reader(buf);
    r.version()?;
    let instance_id = r.nullable_string("instanceId")?;
    let rack_id = r.nullable_string("rackId")?;
    let client_id = r.string("clientId")?;
    let client_host = r.string("clientHost")?;
    let mut subscribed_topic_names = Vec::new();
    for _ in 0..r.length("subscribedTopicNames")?.unwrap_or(0) {
        subscribed_topic_names.push(r.string("subscribedTopicName")?);
    }
    let subscribed_topic_regex = r.nullable_string("subscribedTopicRegex")?;
    let rebalance_timeout_ms = r.i32("rebalanceTimeoutMs")?;
    let server_assignor = r.nullable_string("serverAssignor")?;
    let mut classic = None;
    for _ in 0..r.uvarint("tagged fields")? {
        let tag = r.uvarint("tag")?;
        let size = r.uvarint("tag size")? as usize;
        let body = r.take(size, "tagged field")?;
        if tag == 0 {
            classic = decode_classic_metadata(body)?;
        }
    }
    Ok(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
        classic,
    })
}

fn decode_classic_metadata(buf: &[u8]) -> Result<Option<ClassicMemberMetadata>, RecordError> {
    let mut r = Reader(buf);
    if r.i8("classicMemberMetadata")? < 0 {
        return Ok(None);
    }
    let session_timeout_ms = r.i32("sessionTimeoutMs")?;
    let mut supported_protocols = Vec::new();
    for _ in 0..r.length("supportedProtocols")?.unwrap_or(0) {
        let name = r.string("protocol name")?;
        let len = r.length("protocol metadata")?.unwrap_or(0);
        let metadata = bytes::Bytes::copy_from_slice(r.take(len, "protocol metadata")?);
        r.skip_tags()?;
        supported_protocols.push(Protocol { name, metadata });
    }
    r.skip_tags()?;
    Ok(Some(ClassicMemberMetadata {
        session_timeout_ms,
        supported_protocols,
    }))
}

pub fn decode_target_member(buf: &[u8]) -> Result<Assignment, RecordError> {
    let mut r = Reader(buf);
    r.version()?;
    r.topic_partitions()
}

pub fn decode_current_assignment(buf: &[u8]) -> Result<CurrentAssignment, RecordError> {
    let mut r = Reader(buf);
    r.version()?;
    Ok(CurrentAssignment {
        member_epoch: r.i32("memberEpoch")?,
        previous_member_epoch: r.i32("previousMemberEpoch")?,
        state: r.i8("state")?,
        assigned: r.topic_partitions()?,
        pending_revocation: r.topic_partitions()?,
    })
}

// ---- what a step changed -----------------------------------------------------------------------

/// A record for `__consumer_offsets`: key and value (None: tombstone).
pub type Record = (Vec<u8>, Option<Vec<u8>>);

fn key(kind: ConsumerRecordKind, group: &str, member: Option<&str>) -> Vec<u8> {
    encode_key(&RecordKey::Consumer {
        kind,
        group: group.to_string(),
        member: member.map(str::to_string),
    })
}

/// The records that bring the log from `before` to `after` (None: the group does not exist as a
/// consumer group), in Kafka's order.
pub fn changes(group_id: &str, before: Option<&ConsumerGroup>, after: Option<&ConsumerGroup>) -> Vec<Record> {
    use ConsumerRecordKind::*;
    let empty = ConsumerGroup::default();
    let (b, a) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
    let mut out = Vec::new();
    // Members gone: current assignment, target and metadata tombstones.
    for id in b.members.keys().filter(|id| !a.members.contains_key(*id)) {
        for kind in [CurrentMemberAssignment, TargetAssignmentMember, MemberMetadata] {
            out.push((key(kind, group_id, Some(id)), None));
        }
    }
    for (id, m) in &a.members {
        let now = self::MemberMetadata::of(m);
        if b.members.get(id).map(self::MemberMetadata::of).as_ref() != Some(&now) {
            out.push((
                key(MemberMetadata, group_id, Some(id)),
                Some(encode_member_metadata(&now)),
            ));
        }
    }
    if after.is_none() {
        if before.is_some() {
            out.push((key(TargetAssignmentMetadata, group_id, None), None));
            out.push((key(Metadata, group_id, None), None));
        }
        return out;
    }
    if before.is_none() || a.group_epoch != b.group_epoch {
        out.push((key(Metadata, group_id, None), Some(encode_epoch(a.group_epoch))));
    }
    for (id, target) in &a.target {
        if b.target.get(id) != Some(target) {
            out.push((
                key(TargetAssignmentMember, group_id, Some(id)),
                Some(encode_target_member(target)),
            ));
        }
    }
    for id in b
        .target
        .keys()
        .filter(|id| !a.target.contains_key(*id) && a.members.contains_key(*id))
    {
        out.push((key(TargetAssignmentMember, group_id, Some(id)), None));
    }
    if before.is_none() || a.assignment_epoch != b.assignment_epoch {
        out.push((
            key(TargetAssignmentMetadata, group_id, None),
            Some(encode_epoch(a.assignment_epoch)),
        ));
    }
    for (id, m) in &a.members {
        let now = CurrentAssignment::of(m);
        if b.members.get(id).map(CurrentAssignment::of).as_ref() != Some(&now) {
            out.push((
                key(CurrentMemberAssignment, group_id, Some(id)),
                Some(encode_current_assignment(&now)),
            ));
        }
    }
    out
}
