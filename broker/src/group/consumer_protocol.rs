//! The consumer's embedded protocol of classic groups (Kafka's `ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment`, versions 0 to 3): the bytes a classic consumer puts in JoinGroup's
//! protocol metadata and receives in SyncGroup's assignment. Classic groups only carry them; the
//! consumer group needs their content when a classic member lives in it (KIP-848's online
//! migration), so it reads subscriptions and writes assignments here. Pure codecs, no state.
//!
//! Layout (classic, non-flexible): an i16 version, then strings as i16 length + bytes, arrays as i32
//! count, nullable bytes as i32 length (-1: null). Subscription: topics, user data, owned partitions
//! (v1+), generation id (v2+), rack id (v3+). Assignment: partitions by topic, user data.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

/// Partitions by topic name.
pub type TopicPartitions = BTreeMap<String, BTreeSet<i32>>;

/// A decoded `ConsumerProtocolSubscription`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// The partitions the member owns (v1+; cooperative members keep them across a rebalance).
    pub owned: TopicPartitions,
    pub rack_id: Option<String>,
}

/// Why embedded protocol bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the embedded consumer protocol is malformed: {0} is truncated or invalid")]
pub struct Malformed(&'static str);

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self, f: &'static str) -> Result<i16, Malformed> {
        Ok(i16::from_be_bytes(self.take(2, f)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self, f: &'static str) -> Result<i32, Malformed> {
        Ok(i32::from_be_bytes(self.take(4, f)?.try_into().expect("4 bytes")))
    }
    /// An array count, bounded by what is left (each element takes at least `min_size` bytes).
    fn count(&mut self, f: &'static str, min_size: usize) -> Result<usize, Malformed> {
        let n = self.i32(f)?;
        if n < 0 {
            return Ok(0);
        }
        if n as usize > self.0.len() / min_size {
            return Err(Malformed(f));
        }
        Ok(n as usize)
    }
    fn nullable_string(&mut self, f: &'static str) -> Result<Option<String>, Malformed> {
        let n = self.i16(f)?;
        if n < 0 {
            return Ok(None);
        }
        let bytes = self.take(n as usize, f)?;
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| Malformed(f))
    }
    fn string(&mut self, f: &'static str) -> Result<String, Malformed> {
        self.nullable_string(f)?.ok_or(Malformed(f))
    }
    fn skip_bytes(&mut self, f: &'static str) -> Result<(), Malformed> {
        let n = self.i32(f)?;
        if n > 0 {
            self.take(n as usize, f)?;
        }
        Ok(())
    }
    fn topic_partitions(&mut self, f: &'static str) -> Result<TopicPartitions, Malformed> {
        let mut out = TopicPartitions::new();
        for _ in 0..self.count(f, 6)? {
            let topic = self.string("topic")?;
            let parts = out.entry(topic).or_default();
            for _ in 0..self.count("partitions", 4)? {
                parts.insert(self.i32("partition")?);
            }
        }
        out.retain(|_, p| !p.is_empty());
        Ok(out)
    }
}

/// Reads a `ConsumerProtocolSubscription` (any version; fields of later versions are absent).
pub fn decode_subscription(metadata: &[u8]) -> Result<Subscription, Malformed> {
    let mut r = Reader(metadata);
    let version = r.i16("version")?;
    if version < 0 {
        return Err(Malformed("version"));
    }
    let mut topics = Vec::new();
    for _ in 0..r.count("topics", 2)? {
        topics.push(r.string("topic")?);
    }
    r.skip_bytes("user data")?;
    let mut sub = Subscription {
        version,
        topics,
        ..Subscription::default()
    };
    if version >= 1 && !r.0.is_empty() {
        sub.owned = r.topic_partitions("owned partitions")?;
    }
    if version >= 2 && !r.0.is_empty() {
        r.i32("generation id")?;
    }
    if version >= 3 && !r.0.is_empty() {
        sub.rack_id = r.nullable_string("rack id")?;
    }
    Ok(sub)
}

/// Reads a `ConsumerProtocolAssignment`; empty bytes (no assignment yet) are an empty assignment.
pub fn decode_assignment(assignment: &[u8]) -> Result<TopicPartitions, Malformed> {
    if assignment.is_empty() {
        return Ok(TopicPartitions::new());
    }
    let mut r = Reader(assignment);
    r.i16("version")?;
    r.topic_partitions("assigned partitions")
}

/// The version of a subscription (0 when unreadable), which the assignment answering it uses.
pub fn subscription_version(metadata: &[u8]) -> i16 {
    metadata.first_chunk::<2>().map(|v| i16::from_be_bytes(*v)).unwrap_or(0)
}

/// Writes a `ConsumerProtocolAssignment` of `version` (clamped to 0..=3, which share one layout)
/// without user data.
pub fn encode_assignment(version: i16, partitions: &TopicPartitions) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&version.clamp(0, 3).to_be_bytes());
    out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for (topic, parts) in partitions {
        out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
        out.extend_from_slice(&(parts.len() as i32).to_be_bytes());
        for p in parts {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(out)
}

/// Writes a `ConsumerProtocolSubscription` (version 1 with owned partitions, or 3 with a rack).
#[cfg(test)]
pub fn encode_subscription(topics: &[&str], owned: &TopicPartitions, rack: Option<&str>) -> Bytes {
    let mut out = Vec::new();
    let version: i16 = if rack.is_some() { 3 } else { 1 };
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend_from_slice(&(t.len() as i16).to_be_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    let assignment = encode_assignment(0, owned);
    // The owned partitions have the assignment's layout without its version and user data.
    out.extend_from_slice(&assignment[2..assignment.len() - 4]);
    if let Some(rack) = rack {
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out.extend_from_slice(&(rack.len() as i16).to_be_bytes());
        out.extend_from_slice(rack.as_bytes());
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, parts: &[i32]) -> TopicPartitions {
        [(topic.to_string(), parts.iter().copied().collect())]
            .into_iter()
            .collect()
    }

    #[test]
    fn subscription_round_trip_with_owned_partitions_and_rack() {
        let bytes = encode_subscription(&["a", "b"], &tp("a", &[0, 2]), Some("r1"));
        let sub = decode_subscription(&bytes).unwrap();
        assert_eq!(sub.version, 3);
        assert_eq!(sub.topics, ["a", "b"]);
        assert_eq!(sub.owned, tp("a", &[0, 2]));
        assert_eq!(sub.rack_id.as_deref(), Some("r1"));
        // Version 0: topics and user data only.
        let v0 = crate::group::member::subscription(&["x"]);
        assert_eq!(decode_subscription(&v0).unwrap().topics, ["x"]);
        assert!(decode_subscription(&[0, 1, 0, 0, 0, 9]).is_err());
    }

    #[test]
    fn assignment_round_trip() {
        let a = tp("t", &[1, 3]);
        assert_eq!(decode_assignment(&encode_assignment(1, &a)).unwrap(), a);
        assert_eq!(decode_assignment(&[]).unwrap(), TopicPartitions::new());
        assert_eq!(subscription_version(&encode_assignment(7, &a)), 3);
    }
}
