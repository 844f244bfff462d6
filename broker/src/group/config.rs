//! `GroupConfig`: the broker settings the group coordinator follows (Kafka's `group.*` and `offsets.*`
//! keys), read once from the broker's settings. Plain data, below every other file of `group`.

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
    /// `group.coordinator.rebalance.protocols` contains `consumer`: the KIP-848 protocol
    /// (ConsumerGroupHeartbeat, ConsumerGroupDescribe) is served and announced.
    pub consumer_protocol_enabled: bool,
    /// `group.consumer.session.timeout.ms`: a consumer-protocol member that sends no heartbeat for
    /// this long is fenced.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`, returned to consumer-protocol members.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`.
    pub consumer_max_size: usize,
    /// `group.consumer.assignors`: the server-side assignors (short names), the first the default.
    pub consumer_assignors: Vec<String>,
    /// `group.consumer.migration.policy`: whether a non-empty classic group may become a consumer
    /// group (upgrade) and back (downgrade) while its members roll from one protocol to the other.
    pub consumer_migration_policy: MigrationPolicy,
    /// Share groups (KIP-932) are served and announced: `share` in
    /// `group.coordinator.rebalance.protocols` (its default `classic,consumer,share` has it, as
    /// issue 14 asks and Kafka 4.1 lists it), or `group.share.enable=true` (Kafka 4.1's internal
    /// switch). Kafka 4.1 also needs the `share.version` feature, which oxka does not have.
    pub share_enabled: bool,
    /// `group.share.session.timeout.ms`.
    pub share_session_timeout_ms: i32,
    /// `group.share.heartbeat.interval.ms`.
    pub share_heartbeat_interval_ms: i32,
    /// `group.share.max.size`.
    pub share_max_size: usize,
    /// `group.share.record.lock.duration.ms`: how long a member holds the records it acquired.
    pub share_record_lock_duration_ms: i32,
    /// `group.share.delivery.count.limit`: deliveries after which a record is archived.
    pub share_delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`: in-flight records per share partition.
    pub share_partition_max_record_locks: usize,
    /// `group.share.max.share.sessions`.
    pub share_max_sessions: usize,
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
            consumer_protocol_enabled: true,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_max_size: i32::MAX as usize,
            consumer_assignors: vec!["uniform".to_string(), "range".to_string()],
            consumer_migration_policy: MigrationPolicy::Bidirectional,
            share_enabled: true,
            share_session_timeout_ms: 45_000,
            share_heartbeat_interval_ms: 5_000,
            share_max_size: 200,
            share_record_lock_duration_ms: 30_000,
            share_delivery_count_limit: 5,
            share_partition_max_record_locks: 2_000,
            share_max_sessions: 2_000,
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
        if let Some(v) = get("group.consumer.session.timeout.ms") {
            config.consumer_session_timeout_ms = v.clamp(1, i32::MAX as i64) as i32;
        }
        if let Some(v) = get("group.consumer.heartbeat.interval.ms") {
            config.consumer_heartbeat_interval_ms = v.clamp(1, i32::MAX as i64) as i32;
        }
        if let Some(v) = get("group.consumer.max.size") {
            config.consumer_max_size = v.max(1) as usize;
        }
        let list = |key: &str| {
            settings.get(key).map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(assignor_name)
                    .collect::<Vec<String>>()
            })
        };
        if let Some(protocols) = list("group.coordinator.rebalance.protocols") {
            config.consumer_protocol_enabled = protocols.iter().any(|p| p == "consumer");
            config.share_enabled = protocols.iter().any(|p| p == "share");
        }
        if settings.get("group.share.enable").is_some_and(|v| v.trim() == "true") {
            config.share_enabled = true;
        }
        let positive_i32 = |v: i64| v.clamp(1, i32::MAX as i64) as i32;
        if let Some(v) = get("group.share.session.timeout.ms") {
            config.share_session_timeout_ms = positive_i32(v);
        }
        if let Some(v) = get("group.share.heartbeat.interval.ms") {
            config.share_heartbeat_interval_ms = positive_i32(v);
        }
        if let Some(v) = get("group.share.max.size") {
            config.share_max_size = v.max(1) as usize;
        }
        if let Some(v) = get("group.share.record.lock.duration.ms") {
            config.share_record_lock_duration_ms = positive_i32(v);
        }
        if let Some(v) = get("group.share.delivery.count.limit") {
            config.share_delivery_count_limit = v.clamp(1, i16::MAX as i64) as i16;
        }
        if let Some(v) = get("group.share.partition.max.record.locks") {
            config.share_partition_max_record_locks = v.max(1) as usize;
        }
        if let Some(v) = get("group.share.max.share.sessions") {
            config.share_max_sessions = v.max(1) as usize;
        }
        if let Some(assignors) = list("group.consumer.assignors").filter(|a| !a.is_empty()) {
            config.consumer_assignors = assignors;
        }
        if let Some(policy) = settings
            .get("group.consumer.migration.policy")
            .and_then(|v| MigrationPolicy::parse(v))
        {
            config.consumer_migration_policy = policy;
        }
        config
    }
}

/// Kafka's `ConsumerGroupMigrationPolicy` (`group.consumer.migration.policy`; Kafka 4.x's default is
/// `bidirectional`): which online conversions between a non-empty classic group and a consumer
/// group are allowed. An empty group converts either way whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    Bidirectional,
}

impl MigrationPolicy {
    /// The names Kafka accepts, case-insensitively (oxka-config validates them at start-up).
    pub const NAMES: [&'static str; 4] = ["disabled", "upgrade", "downgrade", "bidirectional"];

    pub fn parse(value: &str) -> Option<MigrationPolicy> {
        match value.trim().to_ascii_lowercase().as_str() {
            "disabled" => Some(MigrationPolicy::Disabled),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            _ => None,
        }
    }

    pub fn upgrade_enabled(self) -> bool {
        matches!(self, MigrationPolicy::Upgrade | MigrationPolicy::Bidirectional)
    }

    pub fn downgrade_enabled(self) -> bool {
        matches!(self, MigrationPolicy::Downgrade | MigrationPolicy::Bidirectional)
    }
}

/// An assignor's short name: Kafka accepts `uniform` or the class name
/// `org.apache.kafka.coordinator.group.assignor.UniformAssignor`.
fn assignor_name(item: &str) -> String {
    match item.rsplit('.').next().unwrap_or(item) {
        "UniformAssignor" => "uniform".to_string(),
        "RangeAssignor" => "range".to_string(),
        other => other.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_settings() {
        let mut s = std::collections::BTreeMap::new();
        s.insert("group.initial.rebalance.delay.ms".to_string(), "0".to_string());
        let c = GroupConfig::from_settings(&s);
        assert_eq!(c.initial_rebalance_delay_ms, 0);
        assert_eq!(c.min_session_timeout_ms, 6000);
        assert!(c.consumer_protocol_enabled);
        assert!(c.share_enabled, "classic,consumer,share by default, as in Kafka 4.1");
        assert_eq!(c.consumer_assignors, ["uniform", "range"]);
        assert_eq!(c.consumer_migration_policy, MigrationPolicy::Bidirectional);
        s.insert(
            "group.coordinator.rebalance.protocols".to_string(),
            "classic".to_string(),
        );
        s.insert(
            "group.consumer.assignors".to_string(),
            "org.apache.kafka.coordinator.group.assignor.RangeAssignor".to_string(),
        );
        let c = GroupConfig::from_settings(&s);
        assert!(!c.consumer_protocol_enabled);
        assert!(!c.share_enabled);
        assert_eq!(c.consumer_assignors, ["range"]);
        s.insert("group.consumer.migration.policy".to_string(), "Upgrade".to_string());
        let c = GroupConfig::from_settings(&s);
        assert!(c.consumer_migration_policy.upgrade_enabled());
        assert!(!c.consumer_migration_policy.downgrade_enabled());
    }
}
