//! The group coordinator: Kafka's classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) and committed offsets, made durable in the internal topic `__consumer_offsets`.
//!
//! Map: `member` and `classic_group` hold the data of one group (plain types, below the rest); `state` (join, sync) and `liveness` (heartbeat, leave, timers) are the pure membership state machine
//! (events in, `Effect`s out, no I/O, no clock: the caller passes `now`); `offsets` validates commits
//! and applies them; `records` encodes and decodes Kafka's `__consumer_offsets` keys and values;
//! `coordinator` is the runtime (`GroupCoordinator`): it owns every group behind one lock, turns API
//! requests into state-machine calls, completes waiting (long-polling) JoinGroup and SyncGroup
//! responses through oneshot channels, appends records before it answers, and replays the topic at
//! start-up (`load`).
//!
//! This broker is the group coordinator of every group: a group lives in partition
//! `abs(javaHashCode(group)) % offsets.topic.num.partitions` of `__consumer_offsets`, as in Kafka, so the
//! data stays where a Kafka broker would look for it.

pub mod classic_group;
pub mod coordinator;
mod liveness;
mod load;
pub mod member;
pub mod offsets;
pub mod records;
pub mod state;

#[cfg(test)]
mod coordinator_tests;
#[cfg(test)]
mod state_tests;

pub use classic_group::{Group, GroupState};
pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
pub use member::{Member, Protocol};
pub use offsets::CommittedOffset;
pub use state::{Effect, JoinRequest, JoinResult, SyncRequest, SyncResult, WaiterId};

/// Broker settings the group coordinator follows (Kafka's `group.*` and `offsets.*` keys).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long a new (empty) group waits for more members
    /// before its first rebalance completes.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// How long a new member may take to complete its first join (Kafka's fixed 5 minutes).
    pub new_member_join_timeout_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes`, in ms: how long offsets outlive an empty group (KIP-211).
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed.
    pub offsets_retention_check_interval_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            new_member_join_timeout_ms: 300_000,
            offset_metadata_max_bytes: 4096,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
        }
    }
}

impl GroupConfig {
    /// Reads the `group.*` keys from the broker's settings; unset keys keep Kafka's defaults.
    pub fn from_settings(settings: &std::collections::BTreeMap<String, String>) -> GroupConfig {
        let mut config = GroupConfig::default();
        let get = |key: &str| settings.get(key).and_then(|v| v.trim().parse::<i64>().ok());
        if let Some(v) = get("group.initial.rebalance.delay.ms") {
            config.initial_rebalance_delay_ms = v.max(0);
        }
        if let Some(v) = get("group.min.session.timeout.ms") {
            config.min_session_timeout_ms = v.clamp(0, i32::MAX as i64) as i32;
        }
        if let Some(v) = get("group.max.session.timeout.ms") {
            config.max_session_timeout_ms = v.clamp(0, i32::MAX as i64) as i32;
        }
        if let Some(v) = get("group.max.size") {
            config.max_size = v.max(1) as usize;
        }
        if let Some(v) = get("offset.metadata.max.bytes") {
            config.offset_metadata_max_bytes = v.max(0) as usize;
        }
        if let Some(v) = get("offsets.retention.minutes") {
            config.offsets_retention_ms = v.max(1).saturating_mul(60_000);
        }
        if let Some(v) = get("offsets.retention.check.interval.ms") {
            config.offsets_retention_check_interval_ms = v.max(1);
        }
        config
    }
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
    fn config_reads_settings() {
        let mut s = std::collections::BTreeMap::new();
        s.insert("group.initial.rebalance.delay.ms".to_string(), "0".to_string());
        let c = GroupConfig::from_settings(&s);
        assert_eq!(c.initial_rebalance_delay_ms, 0);
        assert_eq!(c.min_session_timeout_ms, 6000);
    }
}
