//! `LogConfig`: the effective per-partition log configuration (broker defaults from
//! `server.properties`, overridden by topic configs), validated once here so the log code never
//! parses strings. Names and defaults are Kafka's; `describe` lists every topic config Kafka knows,
//! for DescribeConfigs. Configs the log does not act on yet (e.g. `segment.jitter.ms`) are still
//! validated loosely and kept, so tools that set them keep working.

use std::collections::BTreeMap;

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `cleanup.policy`. `Compact` disables time/size retention, as in Kafka; compacting policies make
/// the log cleaner (`log::cleaner`) compact the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    Delete,
    Compact,
    CompactAndDelete,
}

impl CleanupPolicy {
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactAndDelete)
    }
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactAndDelete)
    }
    fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactAndDelete => "compact,delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogConfigError {
    #[error("unknown topic config `{0}`; see Kafka's topic configuration reference for valid names")]
    UnknownConfig(String),
    #[error("invalid value `{value}` for config `{name}`: {expected}")]
    InvalidValue {
        name: String,
        value: String,
        expected: String,
    },
}

/// Topic configs Kafka defines that the log keeps but does not act on yet, with Kafka's defaults.
const PASSTHROUGH_DEFAULTS: &[(&str, &str)] = &[
    ("follower.replication.throttled.replicas", ""),
    ("leader.replication.throttled.replicas", ""),
    ("local.retention.bytes", "-2"),
    ("local.retention.ms", "-2"),
    ("message.downconversion.enable", "true"),
    ("message.format.version", "3.0-IV1"),
    ("message.timestamp.difference.max.ms", "9223372036854775807"),
    ("preallocate", "false"),
    ("remote.storage.enable", "false"),
    ("segment.jitter.ms", "0"),
    ("unclean.leader.election.enable", "false"),
];

const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Per-partition effective log config. Cheap to clone; each `Log` owns a copy.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// -1 (any negative) = keep forever.
    pub retention_ms: i64,
    /// -1 (any negative) = unlimited.
    pub retention_bytes: i64,
    /// Largest batch accepted (`max.message.bytes`).
    pub max_message_bytes: usize,
    pub index_interval_bytes: usize,
    pub segment_index_bytes: usize,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub timestamp_type: TimestampType,
    pub cleanup_policy: CleanupPolicy,
    /// Kept for DescribeConfigs; deletion is immediate (readers hold open file handles).
    pub file_delete_delay_ms: i64,
    /// Broker-wide `producer.id.expiration.ms`: idle producers' state is forgotten after this long.
    pub producer_id_expiration_ms: i64,
    pub min_insync_replicas: i32,
    /// `compression.type`; only `producer` (keep what the client sent) is honoured by the log.
    pub compression_type: String,
    /// CreateTime batches older than now minus this are rejected (`InvalidTimestamp`).
    pub message_timestamp_before_max_ms: i64,
    /// CreateTime batches newer than now plus this are rejected.
    pub message_timestamp_after_max_ms: i64,
    /// `min.cleanable.dirty.ratio`: the cleaner compacts a log once dirty bytes / cleanable bytes
    /// exceed this (in `[0, 1]`).
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: segments whose newest record is younger than this stay dirty.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: dirty data older than this is compacted even below the ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone survives after its first compaction.
    pub delete_retention_ms: i64,
    /// Known-but-unused topic configs that were explicitly set.
    pub passthrough: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy::Delete,
            file_delete_delay_ms: 60_000,
            producer_id_expiration_ms: 86_400_000,
            min_insync_replicas: 1,
            compression_type: "producer".to_string(),
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            passthrough: BTreeMap::new(),
        }
    }
}

fn invalid(name: &str, value: &str, expected: &str) -> LogConfigError {
    LogConfigError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

fn parse_long(name: &str, value: &str, min: i64, max: i64) -> Result<i64, LogConfigError> {
    match value.trim().parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(invalid(name, value, &format!("expected an integer in [{min}, {max}]"))),
    }
}

fn parse_ratio(name: &str, value: &str) -> Result<f64, LogConfigError> {
    match value.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(invalid(name, value, "expected a number in [0, 1]")),
    }
}

fn parse_timestamp_type(name: &str, value: &str) -> Result<TimestampType, LogConfigError> {
    match value.trim() {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        _ => Err(invalid(name, value, "expected CreateTime or LogAppendTime")),
    }
}

fn parse_cleanup_policy(name: &str, value: &str) -> Result<CleanupPolicy, LogConfigError> {
    let (mut delete, mut compact) = (false, false);
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "delete" => delete = true,
            "compact" => compact = true,
            _ => return Err(invalid(name, value, "expected a list of delete and/or compact")),
        }
    }
    match (delete, compact) {
        (true, false) => Ok(CleanupPolicy::Delete),
        (false, true) => Ok(CleanupPolicy::Compact),
        (true, true) => Ok(CleanupPolicy::CompactAndDelete),
        (false, false) => Err(invalid(name, value, "expected a list of delete and/or compact")),
    }
}

const INT_MAX: i64 = i32::MAX as i64;

impl LogConfig {
    /// Sets one config by its topic-level name.
    fn set(&mut self, name: &str, value: &str) -> Result<(), LogConfigError> {
        match name {
            "segment.bytes" => self.segment_bytes = parse_long(name, value, 14, INT_MAX)? as u64,
            "segment.ms" => self.segment_ms = parse_long(name, value, 1, i64::MAX)?,
            "retention.ms" => self.retention_ms = parse_long(name, value, -1, i64::MAX)?,
            "retention.bytes" => self.retention_bytes = parse_long(name, value, i64::MIN, i64::MAX)?,
            "max.message.bytes" => self.max_message_bytes = parse_long(name, value, 0, INT_MAX)? as usize,
            "index.interval.bytes" => self.index_interval_bytes = parse_long(name, value, 0, INT_MAX)? as usize,
            "segment.index.bytes" => self.segment_index_bytes = parse_long(name, value, 4, INT_MAX)? as usize,
            "flush.messages" => self.flush_messages = parse_long(name, value, 1, i64::MAX)?,
            "flush.ms" => self.flush_ms = parse_long(name, value, 0, i64::MAX)?,
            "message.timestamp.type" => self.timestamp_type = parse_timestamp_type(name, value)?,
            "cleanup.policy" => self.cleanup_policy = parse_cleanup_policy(name, value)?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = parse_long(name, value, 0, i64::MAX)?,
            "min.insync.replicas" => self.min_insync_replicas = parse_long(name, value, 1, INT_MAX)? as i32,
            "compression.type" => {
                let v = value.trim();
                if !COMPRESSION_TYPES.contains(&v) {
                    return Err(invalid(name, value, &format!("expected one of {COMPRESSION_TYPES:?}")));
                }
                self.compression_type = v.to_string();
            }
            "message.timestamp.before.max.ms" => {
                self.message_timestamp_before_max_ms = parse_long(name, value, 0, i64::MAX)?
            }
            "message.timestamp.after.max.ms" => {
                self.message_timestamp_after_max_ms = parse_long(name, value, 0, i64::MAX)?
            }
            "min.cleanable.dirty.ratio" => self.min_cleanable_dirty_ratio = parse_ratio(name, value)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_long(name, value, 0, i64::MAX)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = parse_long(name, value, 1, i64::MAX)?,
            "delete.retention.ms" => self.delete_retention_ms = parse_long(name, value, 0, i64::MAX)?,
            "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
                super::ThrottledReplicas::parse(value).map_err(|expected| invalid(name, value, &expected))?;
                self.passthrough.insert(name.to_string(), value.trim().to_string());
            }
            _ if PASSTHROUGH_DEFAULTS.iter().any(|(n, _)| *n == name) => {
                self.passthrough.insert(name.to_string(), value.trim().to_string());
            }
            _ => return Err(LogConfigError::UnknownConfig(name.to_string())),
        }
        Ok(())
    }

    /// Applies topic-level overrides (Kafka topic config names). Unknown names are an error.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig, LogConfigError> {
        let mut config = self.clone();
        for (name, value) in overrides {
            config.set(name, value)?;
        }
        config.check_compaction_lags()?;
        Ok(config)
    }

    /// Kafka refuses `min.compaction.lag.ms` above `max.compaction.lag.ms`.
    fn check_compaction_lags(&self) -> Result<(), LogConfigError> {
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(invalid(
                "min.compaction.lag.ms",
                &self.min_compaction_lag_ms.to_string(),
                &format!("must not exceed max.compaction.lag.ms ({})", self.max_compaction_lag_ms),
            ));
        }
        Ok(())
    }

    /// Broker-level defaults from `server.properties` keys (`log.segment.bytes`, `log.roll.ms` /
    /// `log.roll.hours`, `log.retention.{ms,minutes,hours}`, `log.retention.bytes`,
    /// `message.max.bytes`, `log.index.interval.bytes`, `log.index.size.max.bytes`,
    /// `log.flush.interval.{messages,ms}`, `log.message.timestamp.type`, `log.cleanup.policy`,
    /// `log.segment.delete.delay.ms`, `min.insync.replicas`, `compression.type`,
    /// `log.cleaner.{min.cleanable.ratio,delete.retention.ms,min.compaction.lag.ms,max.compaction.lag.ms}`). Other keys are
    /// ignored: they belong to other parts of the broker.
    pub fn from_broker_properties(props: &BTreeMap<String, String>) -> Result<LogConfig, LogConfigError> {
        let mut c = LogConfig::default();
        let get = |k: &str| props.get(k).map(String::as_str);
        let parse = |k: &str, v: &str| parse_long(k, v, i64::MIN, i64::MAX);
        let direct = [
            ("log.segment.bytes", "segment.bytes"),
            ("log.retention.bytes", "retention.bytes"),
            ("message.max.bytes", "max.message.bytes"),
            ("log.index.interval.bytes", "index.interval.bytes"),
            ("log.index.size.max.bytes", "segment.index.bytes"),
            ("log.flush.interval.messages", "flush.messages"),
            ("log.message.timestamp.type", "message.timestamp.type"),
            ("log.cleanup.policy", "cleanup.policy"),
            ("log.segment.delete.delay.ms", "file.delete.delay.ms"),
            ("min.insync.replicas", "min.insync.replicas"),
            ("compression.type", "compression.type"),
            ("log.message.timestamp.before.max.ms", "message.timestamp.before.max.ms"),
            ("log.message.timestamp.after.max.ms", "message.timestamp.after.max.ms"),
            ("log.cleaner.min.cleanable.ratio", "min.cleanable.dirty.ratio"),
            ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
            ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
            ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
        ];
        for (broker_key, topic_key) in direct {
            if let Some(v) = get(broker_key) {
                c.set(topic_key, v).map_err(|e| rename_error(e, broker_key))?;
            }
        }
        if let Some(v) = get("log.roll.ms") {
            c.set("segment.ms", v).map_err(|e| rename_error(e, "log.roll.ms"))?;
        } else if let Some(v) = get("log.roll.hours") {
            c.segment_ms = parse("log.roll.hours", v)?.saturating_mul(3_600_000);
        }
        let retention = if let Some(v) = get("log.retention.ms") {
            Some(parse("log.retention.ms", v)?)
        } else if let Some(v) = get("log.retention.minutes") {
            Some(parse("log.retention.minutes", v)?.saturating_mul(60_000))
        } else if let Some(v) = get("log.retention.hours") {
            Some(parse("log.retention.hours", v)?.saturating_mul(3_600_000))
        } else {
            None
        };
        if let Some(ms) = retention {
            c.retention_ms = if ms < 0 { -1 } else { ms };
        }
        if let Some(v) = get("log.flush.interval.ms").or_else(|| get("log.flush.scheduler.interval.ms")) {
            c.set("flush.ms", v)
                .map_err(|e| rename_error(e, "log.flush.interval.ms"))?;
        }
        c.check_compaction_lags()?;
        Ok(c)
    }

    /// Every topic config name with its value in this config, sorted by name (DescribeConfigs).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = vec![
            ("cleanup.policy", self.cleanup_policy.as_str().to_string()),
            ("compression.type", self.compression_type.clone()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("file.delete.delay.ms", self.file_delete_delay_ms.to_string()),
            ("flush.messages", self.flush_messages.to_string()),
            ("flush.ms", self.flush_ms.to_string()),
            ("index.interval.bytes", self.index_interval_bytes.to_string()),
            ("max.compaction.lag.ms", self.max_compaction_lag_ms.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.after.max.ms",
                self.message_timestamp_after_max_ms.to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                self.message_timestamp_before_max_ms.to_string(),
            ),
            (
                "message.timestamp.type",
                match self.timestamp_type {
                    TimestampType::CreateTime => "CreateTime",
                    TimestampType::LogAppendTime => "LogAppendTime",
                }
                .to_string(),
            ),
            ("min.cleanable.dirty.ratio", self.min_cleanable_dirty_ratio.to_string()),
            ("min.compaction.lag.ms", self.min_compaction_lag_ms.to_string()),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
        ];
        for (name, default) in PASSTHROUGH_DEFAULTS {
            let v = self.passthrough.get(*name).map_or(*default, String::as_str);
            out.push((name, v.to_string()));
        }
        out.sort_by_key(|(n, _)| *n);
        out
    }
}

fn rename_error(e: LogConfigError, broker_key: &str) -> LogConfigError {
    match e {
        LogConfigError::InvalidValue { value, expected, .. } => LogConfigError::InvalidValue {
            name: broker_key.to_string(),
            value,
            expected,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn overrides_apply_and_validate() {
        let base = LogConfig::default();
        let c = base
            .with_overrides(&map(&[
                ("segment.bytes", "1000"),
                ("retention.ms", "-1"),
                ("cleanup.policy", "compact,delete"),
                ("message.timestamp.type", "LogAppendTime"),
                ("min.cleanable.dirty.ratio", "0.1"),
            ]))
            .unwrap();
        assert_eq!(c.segment_bytes, 1000);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.cleanup_policy, CleanupPolicy::CompactAndDelete);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        let d: BTreeMap<_, _> = c.describe().into_iter().collect();
        assert_eq!(d["min.cleanable.dirty.ratio"], "0.1");
        assert_eq!(d["segment.bytes"], "1000");
        assert_eq!(d["cleanup.policy"], "compact,delete");
        assert!(matches!(
            base.with_overrides(&map(&[("no.such", "1")])),
            Err(LogConfigError::UnknownConfig(_))
        ));
        assert!(base.with_overrides(&map(&[("segment.bytes", "10")])).is_err());
        assert!(base.with_overrides(&map(&[("flush.messages", "x")])).is_err());
        assert!(base.with_overrides(&map(&[("cleanup.policy", "nope")])).is_err());
        assert!(base
            .with_overrides(&map(&[("min.cleanable.dirty.ratio", "1.5")]))
            .is_err());
        assert!(base.with_overrides(&map(&[("max.compaction.lag.ms", "0")])).is_err());
        assert!(base
            .with_overrides(&map(&[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")]))
            .is_err());
    }

    #[test]
    fn compaction_configs_are_typed_and_described() {
        let c = LogConfig::default()
            .with_overrides(&map(&[
                ("min.cleanable.dirty.ratio", "0.01"),
                ("min.compaction.lag.ms", "100"),
                ("max.compaction.lag.ms", "1000"),
                ("delete.retention.ms", "0"),
            ]))
            .unwrap();
        assert_eq!(c.min_cleanable_dirty_ratio, 0.01);
        assert_eq!(
            (c.min_compaction_lag_ms, c.max_compaction_lag_ms, c.delete_retention_ms),
            (100, 1000, 0)
        );
        let d: BTreeMap<_, _> = LogConfig::default().describe().into_iter().collect();
        assert_eq!(d["min.cleanable.dirty.ratio"], "0.5");
        assert_eq!(d["delete.retention.ms"], "86400000");
        assert_eq!(d["max.compaction.lag.ms"], i64::MAX.to_string());
        assert_eq!(d["min.compaction.lag.ms"], "0");
        let b = LogConfig::from_broker_properties(&map(&[
            ("log.cleaner.min.cleanable.ratio", "0.2"),
            ("log.cleaner.delete.retention.ms", "5"),
        ]))
        .unwrap();
        assert_eq!((b.min_cleanable_dirty_ratio, b.delete_retention_ms), (0.2, 5));
    }

    #[test]
    fn broker_properties_map_to_defaults() {
        let c = LogConfig::from_broker_properties(&map(&[
            ("log.retention.hours", "168"),
            ("log.segment.bytes", "1073741824"),
            ("log.roll.hours", "1"),
            ("num.network.threads", "3"),
        ]))
        .unwrap();
        assert_eq!(c.retention_ms, 168 * 3_600_000);
        assert_eq!(c.segment_ms, 3_600_000);
        assert_eq!(c.segment_bytes, 1 << 30);
        let err = LogConfig::from_broker_properties(&map(&[("log.segment.bytes", "x")])).unwrap_err();
        assert!(err.to_string().contains("log.segment.bytes"));
    }
}
