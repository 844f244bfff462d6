//! A share group's records in `__consumer_offsets`, as Kafka 4.1's group coordinator writes them:
//! keys `records::RecordKey::Share` (record types 10 to 15), values in flexible version 0 of
//! `ShareGroupMemberMetadataValue` (rack, client id and host, subscribed topic names),
//! `ShareGroupMetadataValue` (group epoch and metadata hash), `ShareGroupTargetAssignmentMetadataValue`
//! (assignment epoch), `ShareGroupTargetAssignmentMemberValue` (a member's partitions),
//! `ShareGroupCurrentMemberAssignmentValue` (member epoch, previous epoch, state, partitions) and
//! `ShareGroupStatePartitionMetadataValue` (initializing, initialized and deleting topics). Flexible
//! encoding: compact strings and arrays (unsigned varint length + 1), UUIDs as 16 bytes, a tagged-field
//! section after each struct (written empty, skipped when read).
//!
//! `changes` turns one step of a group (before, after) into the records that make the log say what
//! memory says, in Kafka's order (member metadata, group epoch, target assignment, current
//! assignments, share-partition state); `ReplayedShare` rebuilds the group from them at load.
//!
//! The metadata hash is written 0: oxka does not keep Kafka's hash of the subscribed topics (a Kafka
//! broker reading it sees a changed hash and computes the assignment again at the next heartbeat).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::group::{Assignment, ShareGroup, ShareMember, StatePartitions, TopicPartitionsInfo};
use crate::group::records::{encode_key, RecordError, RecordKey, ShareRecordKind};

const VALUE_VERSION: i16 = 0;

/// A record for `__consumer_offsets`: key and value (None: tombstone).
pub type Record = (Vec<u8>, Option<Vec<u8>>);

/// `ShareGroupMemberMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
}

/// `ShareGroupCurrentMemberAssignmentValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState`: always 0 (stable), share groups revoke nothing.
    pub state: i8,
    pub assigned: Assignment,
}

impl MemberMetadata {
    pub fn of(m: &ShareMember) -> MemberMetadata {
        MemberMetadata {
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
        }
    }
}

impl CurrentAssignment {
    pub fn of(m: &ShareMember) -> CurrentAssignment {
        CurrentAssignment {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: 0,
            assigned: m.assignment.clone(),
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

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64 + 1);
    out.extend_from_slice(s.as_bytes());
}

fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.push(0),
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_uvarint(out, n as u64 + 1);
}

fn put_partitions(out: &mut Vec<u8>, partitions: &BTreeSet<i32>) {
    put_len(out, partitions.len());
    for p in partitions {
        out.extend_from_slice(&p.to_be_bytes());
    }
}

/// `[]TopicPartitions` (topic id, partitions, tagged fields).
fn put_assignment(out: &mut Vec<u8>, a: &Assignment) {
    put_len(out, a.len());
    for (topic, partitions) in a {
        out.extend_from_slice(topic.as_bytes());
        put_partitions(out, partitions);
        out.push(0);
    }
}

/// `[]TopicPartitionsInfo` (topic id, topic name, partitions, tagged fields).
fn put_info(out: &mut Vec<u8>, info: &TopicPartitionsInfo) {
    put_len(out, info.len());
    for (topic, (name, partitions)) in info {
        out.extend_from_slice(topic.as_bytes());
        put_string(out, name);
        put_partitions(out, partitions);
        out.push(0);
    }
}

fn start() -> Vec<u8> {
    VALUE_VERSION.to_be_bytes().to_vec()
}

/// `ShareGroupMetadataValue`: the group epoch and the metadata hash (0, see the module's comment).
pub fn encode_group_epoch(epoch: i32) -> Vec<u8> {
    let mut out = start();
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&0i64.to_be_bytes());
    out.push(0);
    out
}

/// `ShareGroupTargetAssignmentMetadataValue`: the assignment epoch.
pub fn encode_assignment_epoch(epoch: i32) -> Vec<u8> {
    let mut out = start();
    out.extend_from_slice(&epoch.to_be_bytes());
    out.push(0);
    out
}

pub fn encode_member_metadata(m: &MemberMetadata) -> Vec<u8> {
    let mut out = start();
    put_nullable_string(&mut out, m.rack_id.as_deref());
    put_string(&mut out, &m.client_id);
    put_string(&mut out, &m.client_host);
    put_len(&mut out, m.subscribed_topic_names.len());
    for t in &m.subscribed_topic_names {
        put_string(&mut out, t);
    }
    out.push(0);
    out
}

pub fn encode_target_member(a: &Assignment) -> Vec<u8> {
    let mut out = start();
    put_assignment(&mut out, a);
    out.push(0);
    out
}

pub fn encode_current_assignment(c: &CurrentAssignment) -> Vec<u8> {
    let mut out = start();
    out.extend_from_slice(&c.member_epoch.to_be_bytes());
    out.extend_from_slice(&c.previous_member_epoch.to_be_bytes());
    out.push(c.state as u8);
    put_assignment(&mut out, &c.assigned);
    out.push(0);
    out
}

pub fn encode_state_partitions(s: &StatePartitions) -> Vec<u8> {
    let mut out = start();
    put_info(&mut out, &s.initializing);
    put_info(&mut out, &s.initialized);
    put_len(&mut out, s.deleting.len());
    for (topic, name) in &s.deleting {
        out.extend_from_slice(topic.as_bytes());
        put_string(&mut out, name);
        out.push(0);
    }
    out.push(0);
    out
}

// ---- decoding ----------------------------------------------------------------------------------

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A value: its version must be 0.
    fn value(bytes: &'a [u8]) -> Result<Reader<'a>, RecordError> {
        let mut r = Reader(bytes);
        let version = i16::from_be_bytes(r.take(2, "version")?.try_into().expect("2 bytes"));
        if version != VALUE_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        Ok(r)
    }
    fn take(&mut self, n: usize, f: &'static str) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated(f));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i8(&mut self, f: &'static str) -> Result<i8, RecordError> {
        Ok(self.take(1, f)?[0] as i8)
    }
    fn i32(&mut self, f: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4, f)?.try_into().expect("4 bytes")))
    }
    #[cfg(test)]
    fn i64(&mut self, f: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8, f)?.try_into().expect("8 bytes")))
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
    /// A compact length: None for null.
    fn length(&mut self, f: &'static str) -> Result<Option<usize>, RecordError> {
        let n = self.uvarint(f)?.checked_sub(1).map(|n| n as usize);
        // Every element takes at least one byte: a longer count is a corrupt record.
        match n {
            Some(n) if n > self.0.len() => Err(RecordError::Truncated(f)),
            n => Ok(n),
        }
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
        let count = self.uvarint("tagged fields")?;
        for _ in 0..count {
            self.uvarint("tag")?;
            let size = self.uvarint("tag size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
    fn partitions(&mut self) -> Result<BTreeSet<i32>, RecordError> {
        let n = self.length("partitions")?.unwrap_or(0);
        (0..n).map(|_| self.i32("partition")).collect()
    }
    fn assignment(&mut self) -> Result<Assignment, RecordError> {
        let n = self.length("topic partitions")?.unwrap_or(0);
        let mut out = Assignment::new();
        for _ in 0..n {
            let topic = self.uuid("topicId")?;
            let partitions = self.partitions()?;
            self.skip_tags()?;
            out.entry(topic).or_default().extend(partitions);
        }
        Ok(out)
    }
    fn info(&mut self) -> Result<TopicPartitionsInfo, RecordError> {
        let n = self.length("topics")?.unwrap_or(0);
        let mut out = TopicPartitionsInfo::new();
        for _ in 0..n {
            let topic = self.uuid("topicId")?;
            let name = self.string("topicName")?;
            let partitions = self.partitions()?;
            self.skip_tags()?;
            out.entry(topic)
                .or_insert_with(|| (name, BTreeSet::new()))
                .1
                .extend(partitions);
        }
        Ok(out)
    }
}

/// The epoch of `ShareGroupMetadataValue` or `ShareGroupTargetAssignmentMetadataValue` (the first field).
pub fn decode_epoch(bytes: &[u8]) -> Result<i32, RecordError> {
    Reader::value(bytes)?.i32("epoch")
}

pub fn decode_member_metadata(bytes: &[u8]) -> Result<MemberMetadata, RecordError> {
    let mut r = Reader::value(bytes)?;
    let rack_id = r.nullable_string("rackId")?;
    let client_id = r.string("clientId")?;
    let client_host = r.string("clientHost")?;
    let n = r.length("subscribedTopicNames")?.unwrap_or(0);
    let subscribed_topic_names = (0..n).map(|_| r.string("topic name")).collect::<Result<_, _>>()?;
    Ok(MemberMetadata {
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
    })
}

pub fn decode_target_member(bytes: &[u8]) -> Result<Assignment, RecordError> {
    Reader::value(bytes)?.assignment()
}

pub fn decode_current_assignment(bytes: &[u8]) -> Result<CurrentAssignment, RecordError> {
    let mut r = Reader::value(bytes)?;
    Ok(CurrentAssignment {
        member_epoch: r.i32("memberEpoch")?,
        previous_member_epoch: r.i32("previousMemberEpoch")?,
        state: r.i8("state")?,
        assigned: r.assignment()?,
    })
}

pub fn decode_state_partitions(bytes: &[u8]) -> Result<StatePartitions, RecordError> {
    let mut r = Reader::value(bytes)?;
    let initializing = r.info()?;
    let initialized = r.info()?;
    let n = r.length("deletingTopics")?.unwrap_or(0);
    let mut deleting = BTreeMap::new();
    for _ in 0..n {
        let topic = r.uuid("topicId")?;
        let name = r.string("topicName")?;
        r.skip_tags()?;
        deleting.insert(topic, name);
    }
    Ok(StatePartitions {
        initializing,
        initialized,
        deleting,
    })
}

/// The metadata hash of a `ShareGroupMetadataValue` (tests: Kafka's layout).
#[cfg(test)]
pub fn decode_metadata_hash(bytes: &[u8]) -> Result<i64, RecordError> {
    let mut r = Reader::value(bytes)?;
    r.i32("epoch")?;
    r.i64("metadataHash")
}

// ---- what a step changed -----------------------------------------------------------------------

fn key(kind: ShareRecordKind, group: &str, member: Option<&str>) -> Vec<u8> {
    encode_key(&RecordKey::Share {
        kind,
        group: group.to_string(),
        member: member.map(str::to_string),
    })
}

/// The records that bring the log from `before` to `after` (None: the group does not exist), in
/// Kafka's order. A group that is deleted gets a tombstone for every record it had.
pub fn changes(group_id: &str, before: Option<&ShareGroup>, after: Option<&ShareGroup>) -> Vec<Record> {
    use ShareRecordKind::*;
    let empty = ShareGroup::default();
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
            out.push((key(StatePartitionMetadata, group_id, None), None));
            out.push((key(TargetAssignmentMetadata, group_id, None), None));
            out.push((key(Metadata, group_id, None), None));
        }
        return out;
    }
    if before.is_none() || a.group_epoch != b.group_epoch {
        out.push((key(Metadata, group_id, None), Some(encode_group_epoch(a.group_epoch))));
    }
    for (id, m) in &a.members {
        if b.members.get(id).map(|bm| &bm.assignment) != Some(&m.assignment) {
            out.push((
                key(TargetAssignmentMember, group_id, Some(id)),
                Some(encode_target_member(&m.assignment)),
            ));
        }
    }
    if before.is_none() || a.assignment_epoch != b.assignment_epoch {
        out.push((
            key(TargetAssignmentMetadata, group_id, None),
            Some(encode_assignment_epoch(a.assignment_epoch)),
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
    if a.state_partitions != b.state_partitions {
        out.push((
            key(StatePartitionMetadata, group_id, None),
            Some(encode_state_partitions(&a.state_partitions)),
        ));
    }
    out
}

// ---- replay ------------------------------------------------------------------------------------

/// A share group being rebuilt at load: the latest value of each of its records.
#[derive(Debug, Default)]
pub struct ReplayedShare {
    group_epoch: Option<i32>,
    assignment_epoch: Option<i32>,
    members: BTreeMap<String, MemberMetadata>,
    targets: BTreeMap<String, Assignment>,
    current: BTreeMap<String, CurrentAssignment>,
    state_partitions: Option<StatePartitions>,
}

impl ReplayedShare {
    /// Applies one record (`value` None: a tombstone).
    pub fn apply(
        &mut self,
        kind: ShareRecordKind,
        member: Option<String>,
        value: Option<&[u8]>,
    ) -> Result<(), RecordError> {
        let member = member.unwrap_or_default();
        match kind {
            ShareRecordKind::Metadata => self.group_epoch = value.map(decode_epoch).transpose()?,
            ShareRecordKind::TargetAssignmentMetadata => self.assignment_epoch = value.map(decode_epoch).transpose()?,
            ShareRecordKind::StatePartitionMetadata => {
                self.state_partitions = value.map(decode_state_partitions).transpose()?
            }
            ShareRecordKind::MemberMetadata => match value {
                Some(v) => drop(self.members.insert(member, decode_member_metadata(v)?)),
                None => drop(self.members.remove(&member)),
            },
            ShareRecordKind::TargetAssignmentMember => match value {
                Some(v) => drop(self.targets.insert(member, decode_target_member(v)?)),
                None => drop(self.targets.remove(&member)),
            },
            ShareRecordKind::CurrentMemberAssignment => match value {
                Some(v) => drop(self.current.insert(member, decode_current_assignment(v)?)),
                None => drop(self.current.remove(&member)),
            },
        }
        Ok(())
    }

    /// Whether any record of a share group was replayed (even if all were tombstones).
    pub fn is_empty(&self) -> bool {
        self.group_epoch.is_none()
            && self.assignment_epoch.is_none()
            && self.members.is_empty()
            && self.targets.is_empty()
            && self.current.is_empty()
            && self.state_partitions.is_none()
    }

    /// The group, if its metadata record is there. Members come back with their epochs and
    /// assignments and a session that starts at `now_ms` (Kafka schedules their session timeout at
    /// load): those that do not heartbeat within it leave.
    pub fn rebuild(self, now_ms: i64) -> Option<ShareGroup> {
        let group_epoch = self.group_epoch?;
        let mut group = ShareGroup {
            group_epoch,
            assignment_epoch: self.assignment_epoch.unwrap_or(group_epoch),
            members: BTreeMap::new(),
            state_partitions: self.state_partitions.unwrap_or_default(),
        };
        for (id, meta) in self.members {
            let current = self.current.get(&id);
            let assignment = current
                .map(|c| c.assigned.clone())
                .or_else(|| self.targets.get(&id).cloned())
                .unwrap_or_default();
            group.members.insert(
                id.clone(),
                ShareMember {
                    member_id: id,
                    member_epoch: current.map_or(0, |c| c.member_epoch),
                    previous_member_epoch: current.map_or(0, |c| c.previous_member_epoch),
                    rack_id: meta.rack_id,
                    client_id: meta.client_id,
                    client_host: meta.client_host,
                    subscribed_topic_names: meta.subscribed_topic_names.into_iter().collect(),
                    assignment,
                    last_heartbeat_ms: now_ms,
                },
            );
        }
        Some(group)
    }
}
