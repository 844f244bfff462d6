//! One member of a classic group: who it is, the protocols it offered in its last JoinGroup, the
//! assignment the leader gave it, and whether a JoinGroup or SyncGroup of it is waiting for an answer.
//! Owned by its `Group`; changed only by the state machine under the coordinator's lock.

use bytes::Bytes;

use super::config::GroupConfig;

/// Names a parked request; allocated by the runtime.
pub type WaiterId = u64;

/// A protocol a member supports (for consumers: an assignor such as "range"), with its metadata
/// (for consumers: the serialized subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    /// Set for static members (KIP-345): the id survives restarts of the client.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// What the leader assigned to this member in the current generation.
    pub assignment: Bytes,
    /// A JoinGroup of this member waiting for the rebalance to complete.
    pub awaiting_join: Option<WaiterId>,
    /// A SyncGroup of this member waiting for the leader's assignment.
    pub awaiting_sync: Option<WaiterId>,
    /// Joined during the current rebalance and not yet part of a generation.
    pub is_new: bool,
    pub last_heartbeat_ms: i64,
}

impl Member {
    /// The metadata this member sent for `protocol` (empty if it did not offer it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Whether a JoinGroup with `protocols` changes nothing about this member.
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// This member's vote: its most preferred protocol among those every member supports.
    pub fn vote<'a>(&self, candidates: &'a [String]) -> Option<&'a String> {
        self.protocols
            .iter()
            .find_map(|p| candidates.iter().find(|c| **c == p.name))
    }

    /// Kafka's `shouldKeepAlive`, negated: a new member must finish its first join within the new-member
    /// timeout; a member with a JoinGroup or SyncGroup waiting is kept; otherwise the session timeout
    /// applies from its last heartbeat.
    pub fn has_expired(&self, config: &GroupConfig, now_ms: i64) -> bool {
        if self.is_new {
            self.last_heartbeat_ms + config.new_member_join_timeout_ms <= now_ms
        } else if self.awaiting_join.is_some() || self.awaiting_sync.is_some() {
            false
        } else {
            self.last_heartbeat_ms + self.session_timeout_ms as i64 <= now_ms
        }
    }
}

/// The topics of a consumer's subscription (`ConsumerProtocolSubscription`, any version: the topic
/// list comes first in all of them). None when the metadata is not a readable subscription.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = metadata;
    let _version = take_i16(&mut buf)?;
    let count = take_i32(&mut buf)?;
    if count < 0 || count as usize > buf.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = take_i16(&mut buf)?;
        if len < 0 || len as usize > buf.len() {
            return None;
        }
        let (name, rest) = buf.split_at(len as usize);
        topics.push(String::from_utf8(name.to_vec()).ok()?);
        buf = rest;
    }
    Some(topics)
}

fn take_i16(buf: &mut &[u8]) -> Option<i16> {
    let (head, rest) = buf.split_first_chunk::<2>()?;
    *buf = rest;
    Some(i16::from_be_bytes(*head))
}

fn take_i32(buf: &mut &[u8]) -> Option<i32> {
    let (head, rest) = buf.split_first_chunk::<4>()?;
    *buf = rest;
    Some(i32::from_be_bytes(*head))
}

#[cfg(test)]
pub(crate) fn subscription(topics: &[&str]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&1i16.to_be_bytes());
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend_from_slice(&(t.len() as i16).to_be_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
    out.extend_from_slice(&0i32.to_be_bytes()); // no owned partitions
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_consumer_subscription_topics() {
        assert_eq!(
            subscribed_topics(&subscription(&["a", "bb"])),
            Some(vec!["a".to_string(), "bb".to_string()])
        );
        assert_eq!(subscribed_topics(&[0, 1, 0]), None);
        assert_eq!(subscribed_topics(&[0, 1, 0, 0, 0, 1, 0, 9, b'x']), None);
    }
}
