//! `BrokerConfig`: a broker's validated settings, built once from `server.properties`, `--override`s and
//! `KAFKA_HEAP_OPTS`. Names and defaults follow Apache Kafka's broker configs.

use std::path::PathBuf;

use super::leader_balance::LeaderBalanceConfig;
use super::properties::Origin;
use super::raw::{heap_from_opts, ConfigError, RawConfig};
use super::replication::ReplicationConfig;

/// A broker's id (`broker.id` / `node.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerId(pub i32);

impl std::fmt::Display for BrokerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One `listeners` / `advertised.listeners` entry: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means "all interfaces" for `listeners`.
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// Address to bind: an empty host binds every interface.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// How a timestamp in a record batch is chosen (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampKind {
    CreateTime,
    LogAppendTime,
}

/// Broker-wide defaults for every partition's log (`log.*`), overridable per topic.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDefaults {
    pub segment_bytes: u64,
    pub roll_ms: i64,
    /// -1 keeps data forever.
    pub retention_ms: i64,
    /// -1 means no size limit.
    pub retention_bytes: i64,
    pub message_max_bytes: usize,
    pub index_interval_bytes: usize,
    pub segment_index_bytes: usize,
    pub flush_interval_messages: i64,
    pub flush_interval_ms: i64,
    pub timestamp_type: TimestampKind,
    pub cleanup_policy: String,
    pub file_delete_delay_ms: i64,
    /// `log.cleaner.min.cleanable.ratio` (topic `min.cleanable.dirty.ratio`).
    pub cleaner_min_cleanable_ratio: f64,
    /// `log.cleaner.delete.retention.ms` (topic `delete.retention.ms`).
    pub cleaner_delete_retention_ms: i64,
    /// `log.cleaner.min.compaction.lag.ms` (topic `min.compaction.lag.ms`).
    pub cleaner_min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms` (topic `max.compaction.lag.ms`).
    pub cleaner_max_compaction_lag_ms: i64,
    /// `producer.id.expiration.ms`: an idle idempotent producer's state is kept this long.
    pub producer_id_expiration_ms: i64,
    /// `min.insync.replicas`: the default for topics (acks=all needs this many in-sync replicas).
    pub min_insync_replicas: i32,
}

/// `host:port` of a coordinator ensemble member (`zookeeper.connect` / `coordinator.connect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// The broker's validated configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub broker_id: BrokerId,
    pub rack: Option<String>,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    /// The TLS settings of each `SSL` and `SASL_SSL` listener.
    pub tls: Vec<crate::tls::TlsConfig>,
    /// The SASL settings of each `SASL_PLAINTEXT` and `SASL_SSL` listener.
    pub sasl: Vec<crate::sasl::SaslConfig>,
    /// The ACL authorizer (`authorizer.class.name`); `None` allows everything.
    pub authorizer: Option<crate::authorizer::AuthorizerConfig>,
    pub num_network_threads: usize,
    pub num_io_threads: usize,
    /// SO_SNDBUF / SO_RCVBUF for client sockets; -1 leaves the OS default.
    pub socket_send_buffer_bytes: i32,
    pub socket_receive_buffer_bytes: i32,
    pub socket_request_max_bytes: usize,
    /// `fetch.zero.copy.enable` (oxka's, true): plaintext Fetch responses send record data from the
    /// segment files with sendfile instead of reading it into memory first.
    pub fetch_zero_copy_enable: bool,
    /// `quota.window.num` (11) and `quota.window.size.seconds` (1): the windows client quotas measure
    /// byte rates over.
    pub quota_window_num: usize,
    pub quota_window_size_seconds: u64,
    pub max_connections: usize,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub num_recovery_threads_per_data_dir: usize,
    /// `log.open.files.max` (oxka's; unset: half the open-file limit): segment `.log` files kept open at
    /// once; the least recently used are closed past it and reopened on demand.
    pub log_open_files_max: Option<usize>,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_min_isr: i32,
    /// `transaction.state.log.num.partitions` (50): partitions of `__transaction_state`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.max.timeout.ms` (900000): the longest `transaction.timeout.ms` a producer may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `transaction.partition.verification.enable` (true): KIP-890's check with the transaction
    /// coordinator before the first transactional batch of a producer's transaction on a partition.
    pub transaction_partition_verification_enable: bool,
    /// `transactional.id.expiration.ms` (604800000): an idle transactional id is forgotten after this.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often open transactions
    /// past their timeout are looked for and aborted.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000): how often expired
    /// transactional ids are looked for.
    pub transaction_remove_expired_transaction_cleanup_interval_ms: u64,
    pub log: LogDefaults,
    pub log_retention_check_interval_ms: u64,
    pub log_flush_scheduler_interval_ms: u64,
    /// `log.cleaner.enable`: run the log cleaner (compaction) threads.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.threads`
    pub log_cleaner_threads: usize,
    /// `log.cleaner.backoff.ms`: how long a cleaner thread sleeps when no log needs cleaning.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: offset-map memory of all cleaner threads together.
    pub log_cleaner_dedupe_buffer_size: u64,
    /// `log.cleaner.io.max.bytes.per.second`: I/O throttle of each cleaning (default unlimited).
    pub log_cleaner_io_max_bytes_per_second: f64,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    /// The coordinator ensemble to join; `None` runs the embedded single-node coordinator.
    pub coordinator_connect: Option<Vec<HostPort>>,
    /// `zookeeper.ssl.client.enable` and `zookeeper.ssl.*` (KIP-515's keys): TLS to the ensemble's
    /// `secureClientPort`s.
    pub coordinator_tls: Option<crate::ensemble_tls::EnsembleClientTls>,
    pub coordinator_connection_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (KRaft's key, default 2000): how often the broker heartbeats.
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms` (default 9000): when the embedded coordinator fences a silent broker.
    /// An ensemble uses its own members' setting.
    pub broker_session_timeout_ms: u64,
    /// `initial.broker.registration.timeout.ms` (default 60000): how long a starting broker keeps trying
    /// to register before it exits with the reason.
    pub initial_registration_timeout_ms: u64,
    /// Prometheus and health HTTP port; `None` disables it, `Some(0)` picks a free port.
    pub metrics_port: Option<u16>,
    /// Memory budget from `KAFKA_HEAP_OPTS` `-Xmx` (default 1 GiB): bounds in-flight request/response bytes.
    pub heap_bytes: u64,
    /// Followers, fetchers and the ISR (`replica.*`, `num.replica.fetchers`, `inter.broker.listener.name`).
    pub replication: ReplicationConfig,
    /// `auto.leader.rebalance.enable` and the imbalance check: used by the embedded coordinator (an
    /// ensemble's coordinators read their own), validated always.
    pub leader_balance: LeaderBalanceConfig,
    /// Keys that were set but that oxka does not know; logged once at start-up.
    pub unknown_keys: Vec<String>,
    /// The known keys set in the file or by `--override`, as written (DescribeConfigs reports them
    /// as STATIC_BROKER_CONFIG).
    pub static_settings: std::collections::BTreeMap<String, String>,
}

const HOUR_MS: i64 = 60 * 60 * 1000;
pub const DEFAULT_BROKER_HEAP: u64 = 1 << 30;

impl BrokerConfig {
    /// Parses and validates `server.properties` text; `origin` labels errors (usually the file path).
    pub fn from_properties_text(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw = RawConfig::from_text(text, origin)?;
        Self::from_raw(&raw, None)
    }

    /// Validates a raw config. `heap_opts` is the value of `KAFKA_HEAP_OPTS`, if set.
    pub fn from_raw(raw: &RawConfig, heap_opts: Option<&str>) -> Result<Self, ConfigError> {
        let broker_id = match (
            raw.ranged::<i32>("broker.id", -1, i32::MAX)?,
            raw.ranged::<i32>("node.id", 0, i32::MAX)?,
        ) {
            (Some(b), Some(n)) if b != n && b >= 0 => {
                return Err(raw.invalid("node.id", format!("differs from broker.id={b}; set one of them")));
            }
            (Some(b), _) if b >= 0 => b,
            (_, Some(n)) => n,
            // Kafka generates an id when broker.id is -1 or unset; a single broker simply takes 0.
            _ => 0,
        };
        let listeners = parse_listeners(raw, "listeners")?.unwrap_or_else(|| {
            vec![Listener {
                name: "PLAINTEXT".into(),
                host: String::new(),
                port: 9092,
            }]
        });
        let (tls, sasl) = security_protocols(raw, &listeners)?;
        let advertised_listeners = match parse_listeners(raw, "advertised.listeners")? {
            Some(advertised) => {
                for a in &advertised {
                    if !listeners.iter().any(|l| l.name == a.name) {
                        return Err(raw.invalid(
                            "advertised.listeners",
                            format!("listener name {} is not among listeners", a.name),
                        ));
                    }
                }
                advertised
            }
            None => listeners
                .iter()
                .map(|l| Listener {
                    host: if l.host.is_empty() || l.host == "0.0.0.0" {
                        local_hostname()
                    } else {
                        l.host.clone()
                    },
                    ..l.clone()
                })
                .collect(),
        };
        let log_dirs: Vec<PathBuf> = raw
            .string("log.dirs")
            .or_else(|| raw.string("log.dir"))
            .unwrap_or_else(|| "/tmp/kafka-logs".to_string())
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        raw.accept("log.dir");
        if log_dirs.is_empty() {
            return Err(raw.invalid("log.dirs", "lists no directory".into()));
        }

        let log = LogDefaults {
            segment_bytes: raw
                .ranged::<u64>("log.segment.bytes", 14, i32::MAX as u64)?
                .unwrap_or(1 << 30),
            roll_ms: first_ms(raw, &[("log.roll.ms", 1), ("log.roll.hours", HOUR_MS)], 1)?.unwrap_or(168 * HOUR_MS),
            retention_ms: retention_ms(raw)?,
            retention_bytes: raw.ranged::<i64>("log.retention.bytes", -1, i64::MAX)?.unwrap_or(-1),
            message_max_bytes: raw
                .ranged::<usize>("message.max.bytes", 0, i32::MAX as usize)?
                .unwrap_or(1_048_588),
            index_interval_bytes: raw
                .ranged::<usize>("log.index.interval.bytes", 0, i32::MAX as usize)?
                .unwrap_or(4096),
            segment_index_bytes: raw
                .ranged::<usize>("log.index.size.max.bytes", 8, i32::MAX as usize)?
                .unwrap_or(10 << 20),
            flush_interval_messages: raw
                .ranged::<i64>("log.flush.interval.messages", 1, i64::MAX)?
                .unwrap_or(i64::MAX),
            flush_interval_ms: raw
                .ranged::<i64>("log.flush.interval.ms", 0, i64::MAX)?
                .unwrap_or(i64::MAX),
            timestamp_type: match raw.string("log.message.timestamp.type").as_deref() {
                None | Some("CreateTime") => TimestampKind::CreateTime,
                Some("LogAppendTime") => TimestampKind::LogAppendTime,
                Some(_) => {
                    return Err(raw.invalid(
                        "log.message.timestamp.type",
                        "expected CreateTime or LogAppendTime".into(),
                    ))
                }
            },
            cleanup_policy: cleanup_policy(raw)?,
            min_insync_replicas: raw.ranged::<i32>("min.insync.replicas", 1, i32::MAX)?.unwrap_or(1),
            producer_id_expiration_ms: raw
                .ranged::<i64>("producer.id.expiration.ms", 1, i32::MAX as i64)?
                .unwrap_or(86_400_000),
            file_delete_delay_ms: raw
                .ranged::<i64>("log.segment.delete.delay.ms", 0, i64::MAX)?
                .unwrap_or(60_000),
            cleaner_min_cleanable_ratio: raw
                .ranged::<f64>("log.cleaner.min.cleanable.ratio", 0.0, 1.0)?
                .unwrap_or(0.5),
            cleaner_delete_retention_ms: raw
                .ranged::<i64>("log.cleaner.delete.retention.ms", 0, i64::MAX)?
                .unwrap_or(86_400_000),
            cleaner_min_compaction_lag_ms: raw
                .ranged::<i64>("log.cleaner.min.compaction.lag.ms", 0, i64::MAX)?
                .unwrap_or(0),
            cleaner_max_compaction_lag_ms: raw
                .ranged::<i64>("log.cleaner.max.compaction.lag.ms", 1, i64::MAX)?
                .unwrap_or(i64::MAX),
        };

        let heap_bytes = match heap_opts {
            None => DEFAULT_BROKER_HEAP,
            Some(opts) => match heap_from_opts(opts) {
                Ok(v) => v.unwrap_or(DEFAULT_BROKER_HEAP),
                Err(reason) => {
                    return Err(ConfigError::Invalid {
                        key: "-Xmx".into(),
                        value: opts.into(),
                        origin: Origin::Environment("KAFKA_HEAP_OPTS"),
                        reason,
                        hint: None,
                    })
                }
            },
        };

        let coordinator_connect = match (raw.string("coordinator.connect"), raw.string("zookeeper.connect")) {
            (Some(c), _) => Some(parse_connect(raw, "coordinator.connect", &c)?),
            (None, Some(z)) => Some(parse_connect(raw, "zookeeper.connect", &z)?),
            (None, None) => None,
        };

        let metrics_port = match raw.ranged::<i32>("metrics.port", -1, 65535)? {
            Some(-1) => None,
            Some(p) => Some(p as u16),
            None => Some(9404),
        };

        // Accepted for compatibility: they describe JVM or ZooKeeper-era machinery that has no
        // counterpart here, and ignoring them changes no observable behaviour.
        raw.accept("zookeeper.session.timeout.ms");
        let listener_names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        let mut replication = ReplicationConfig::from_raw(raw, &listener_names)?;
        let leader_balance = LeaderBalanceConfig::from_raw(raw)?;
        if !listeners.iter().any(|l| l.name == replication.inter_broker_listener) {
            return Err(raw.invalid(
                "inter.broker.listener.name",
                format!("{} is not among listeners", replication.inter_broker_listener),
            ));
        }
        let inter_broker = replication.inter_broker_listener.clone();
        replication.inter_broker_security = crate::inter_broker::InterBrokerSecurity::from_raw(
            raw,
            &inter_broker,
            tls.iter().find(|t| t.listener == inter_broker),
            sasl.iter().find(|s| s.listener == inter_broker),
        )?;
        // The group coordinator's settings: validated here (so a bad value stops the broker with
        // file:line), read by `group::GroupConfig::from_settings` from `static_settings`.
        for (key, min) in [
            ("group.initial.rebalance.delay.ms", 0),
            ("group.min.session.timeout.ms", 0),
            ("group.max.session.timeout.ms", 0),
            ("group.max.size", 1),
            ("offset.metadata.max.bytes", 0),
            ("offsets.retention.minutes", 1),
            ("offsets.retention.check.interval.ms", 1),
            ("group.consumer.session.timeout.ms", 1),
            ("group.consumer.heartbeat.interval.ms", 1),
            ("group.consumer.max.size", 1),
            ("group.share.session.timeout.ms", 1),
            ("group.share.heartbeat.interval.ms", 1),
            ("group.share.max.size", 1),
            // Kafka's `ShareGroupConfig` lower bounds.
            ("group.share.record.lock.duration.ms", 1000),
            ("group.share.partition.max.record.locks", 100),
            ("group.share.max.share.sessions", 1),
        ] {
            raw.ranged::<i64>(key, min, i32::MAX as i64)?;
        }
        raw.ranged::<i64>("group.share.delivery.count.limit", 2, 10)?;
        // The share coordinator's `__share_group_state` (read by `share_state::ShareStateConfig`).
        raw.ranged::<i64>("share.coordinator.state.topic.num.partitions", 1, 1_000_000)?;
        raw.ranged::<i64>("share.coordinator.state.topic.replication.factor", 1, i16::MAX as i64)?;
        raw.ranged::<i64>("share.coordinator.state.topic.min.isr", 1, i16::MAX as i64)?;
        group_list_setting(
            raw,
            "group.coordinator.rebalance.protocols",
            &["classic", "consumer", "share"],
        )?;
        group_list_setting(raw, "group.consumer.assignors", &["uniform", "range"])?;
        // Kafka's `ConsumerGroupMigrationPolicy` names, case-insensitive (read by `GroupConfig`).
        if let Some(policy) = raw.string("group.consumer.migration.policy") {
            let allowed = ["disabled", "upgrade", "downgrade", "bidirectional"];
            if !allowed.contains(&policy.trim().to_ascii_lowercase().as_str()) {
                return Err(raw.invalid(
                    "group.consumer.migration.policy",
                    format!("{policy} is not one of {}", allowed.join(", ")),
                ));
            }
        }

        let config = BrokerConfig {
            broker_id: BrokerId(broker_id),
            rack: raw.string("broker.rack").filter(|r| !r.is_empty()),
            listeners,
            advertised_listeners,
            tls,
            sasl,
            authorizer: crate::authorizer::AuthorizerConfig::from_raw(raw)?,
            num_network_threads: raw.ranged::<usize>("num.network.threads", 1, 1024)?.unwrap_or(3),
            num_io_threads: raw.ranged::<usize>("num.io.threads", 1, 1024)?.unwrap_or(8),
            socket_send_buffer_bytes: raw
                .ranged::<i32>("socket.send.buffer.bytes", -1, i32::MAX)?
                .unwrap_or(102_400),
            socket_receive_buffer_bytes: raw
                .ranged::<i32>("socket.receive.buffer.bytes", -1, i32::MAX)?
                .unwrap_or(102_400),
            socket_request_max_bytes: raw
                .ranged::<usize>("socket.request.max.bytes", 1, i32::MAX as usize)?
                .unwrap_or(104_857_600),
            fetch_zero_copy_enable: raw.boolean("fetch.zero.copy.enable")?.unwrap_or(true),
            quota_window_num: raw.ranged::<usize>("quota.window.num", 1, 1000)?.unwrap_or(11),
            quota_window_size_seconds: raw.ranged::<u64>("quota.window.size.seconds", 1, 3600)?.unwrap_or(1),
            max_connections: raw
                .ranged::<usize>("max.connections", 1, i32::MAX as usize)?
                .unwrap_or(i32::MAX as usize),
            log_dirs,
            num_partitions: raw.ranged::<i32>("num.partitions", 1, 1_000_000)?.unwrap_or(1),
            default_replication_factor: raw
                .ranged::<i16>("default.replication.factor", 1, i16::MAX)?
                .unwrap_or(1),
            num_recovery_threads_per_data_dir: raw
                .ranged::<usize>("num.recovery.threads.per.data.dir", 1, 1024)?
                .unwrap_or(1),
            log_open_files_max: raw.ranged::<usize>("log.open.files.max", 16, i32::MAX as usize)?,
            offsets_topic_replication_factor: raw
                .ranged::<i16>("offsets.topic.replication.factor", 1, i16::MAX)?
                .unwrap_or(3),
            offsets_topic_num_partitions: raw
                .ranged::<i32>("offsets.topic.num.partitions", 1, 1_000_000)?
                .unwrap_or(50),
            transaction_state_log_replication_factor: raw
                .ranged::<i16>("transaction.state.log.replication.factor", 1, i16::MAX)?
                .unwrap_or(3),
            transaction_state_log_min_isr: raw
                .ranged::<i32>("transaction.state.log.min.isr", 1, i32::MAX)?
                .unwrap_or(2),
            transaction_state_log_num_partitions: raw
                .ranged::<i32>("transaction.state.log.num.partitions", 1, 1_000_000)?
                .unwrap_or(50),
            transaction_max_timeout_ms: raw
                .ranged::<i32>("transaction.max.timeout.ms", 1, i32::MAX)?
                .unwrap_or(900_000),
            transaction_partition_verification_enable: raw
                .boolean("transaction.partition.verification.enable")?
                .unwrap_or(true),
            transactional_id_expiration_ms: raw
                .ranged::<i64>("transactional.id.expiration.ms", 1, i32::MAX as i64)?
                .unwrap_or(604_800_000),
            transaction_abort_timed_out_transaction_cleanup_interval_ms: raw
                .ranged::<u64>(
                    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                    1,
                    i32::MAX as u64,
                )?
                .unwrap_or(10_000),
            transaction_remove_expired_transaction_cleanup_interval_ms: raw
                .ranged::<u64>(
                    "transaction.remove.expired.transaction.cleanup.interval.ms",
                    1,
                    i32::MAX as u64,
                )?
                .unwrap_or(3_600_000),
            log,
            log_retention_check_interval_ms: raw
                .ranged::<u64>("log.retention.check.interval.ms", 1, i64::MAX as u64)?
                .unwrap_or(300_000),
            log_flush_scheduler_interval_ms: raw
                .ranged::<u64>("log.flush.scheduler.interval.ms", 1, i64::MAX as u64)?
                .unwrap_or(1000),
            log_cleaner_enable: raw.boolean("log.cleaner.enable")?.unwrap_or(true),
            log_cleaner_threads: raw.ranged::<usize>("log.cleaner.threads", 0, 1024)?.unwrap_or(1),
            log_cleaner_backoff_ms: raw
                .ranged::<u64>("log.cleaner.backoff.ms", 0, i64::MAX as u64)?
                .unwrap_or(15_000),
            log_cleaner_dedupe_buffer_size: raw
                .ranged::<u64>("log.cleaner.dedupe.buffer.size", 1, i64::MAX as u64)?
                .unwrap_or(128 * 1024 * 1024),
            log_cleaner_io_max_bytes_per_second: raw
                .ranged::<f64>("log.cleaner.io.max.bytes.per.second", f64::MIN_POSITIVE, f64::MAX)?
                .unwrap_or(f64::MAX),
            auto_create_topics_enable: raw.boolean("auto.create.topics.enable")?.unwrap_or(true),
            delete_topic_enable: raw.boolean("delete.topic.enable")?.unwrap_or(true),
            coordinator_connect,
            coordinator_tls: crate::ensemble_tls::client(raw)?,
            coordinator_connection_timeout_ms: raw
                .ranged::<u64>("zookeeper.connection.timeout.ms", 1, i32::MAX as u64)?
                .or(raw.ranged::<u64>("coordinator.connection.timeout.ms", 1, i32::MAX as u64)?)
                .unwrap_or(18_000),
            broker_heartbeat_interval_ms: raw
                .ranged::<u64>("broker.heartbeat.interval.ms", 10, i32::MAX as u64)?
                .unwrap_or(2000),
            broker_session_timeout_ms: raw
                .ranged::<u64>("broker.session.timeout.ms", 100, i32::MAX as u64)?
                .unwrap_or(9000),
            initial_registration_timeout_ms: raw
                .ranged::<u64>("initial.broker.registration.timeout.ms", 100, i32::MAX as u64)?
                .unwrap_or(60_000),
            metrics_port,
            heap_bytes,
            replication,
            leader_balance,
            unknown_keys: Vec::new(),
            static_settings: Default::default(),
        };
        let unknown_keys = raw.unknown_keys();
        let static_settings = raw
            .iter()
            .filter(|(k, _)| !unknown_keys.contains(k))
            .map(|(k, s)| (k.clone(), s.value.trim().to_string()))
            .collect();
        Ok(BrokerConfig {
            unknown_keys,
            static_settings,
            ..config
        })
    }

    /// The advertised listener clients of `listener_name` are told about.
    pub fn advertised_for(&self, listener_name: &str) -> Option<&Listener> {
        self.advertised_listeners.iter().find(|l| l.name == listener_name)
    }
}

/// `log.retention.ms` > `log.retention.minutes` > `log.retention.hours` (default 168 hours); -1 keeps forever.
fn retention_ms(raw: &RawConfig) -> Result<i64, ConfigError> {
    let v = first_ms(
        raw,
        &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", HOUR_MS),
        ],
        -1,
    )?;
    Ok(match v {
        None => 168 * HOUR_MS,
        Some(ms) if ms < 0 => -1,
        Some(ms) => ms,
    })
}

/// The first of `keys` that is set, multiplied by its unit. Values below `min` are invalid, except that
/// -1 is allowed when `min` is -1 (which means "forever" for retention).
fn first_ms(raw: &RawConfig, keys: &[(&str, i64)], min: i64) -> Result<Option<i64>, ConfigError> {
    let mut found = None;
    for (key, unit) in keys {
        let parsed = raw.parse::<i64>(key, "an integer")?;
        if let (None, Some(v)) = (found, parsed) {
            if v < min || (min == -1 && v < 0 && v != -1) {
                return Err(raw.invalid(key, format!("must be at least {min}")));
            }
            if v == 0 && min == -1 {
                return Err(raw.invalid(key, "0 would delete data at once; use -1 to keep data forever".into()));
            }
            found = Some(if v < 0 { v } else { v.saturating_mul(*unit) });
        }
    }
    Ok(found)
}

fn cleanup_policy(raw: &RawConfig) -> Result<String, ConfigError> {
    let Some(value) = raw.string("log.cleanup.policy") else {
        return Ok("delete".into());
    };
    let ok = value.split(',').map(str::trim).all(|p| p == "delete" || p == "compact");
    if !ok || value.is_empty() {
        return Err(raw.invalid(
            "log.cleanup.policy",
            "expected delete, compact, or both separated by a comma".into(),
        ));
    }
    Ok(value)
}

fn parse_listeners(raw: &RawConfig, key: &str) -> Result<Option<Vec<Listener>>, ConfigError> {
    let Some(value) = raw.string(key) else {
        return Ok(None);
    };
    let mut out: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, rest)) = item.split_once("://") else {
            return Err(raw.invalid(key, format!("{item:?} is not of the form NAME://host:port")));
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
            None => return Err(raw.invalid(key, format!("{item:?} has no port"))),
        };
        let port: u16 = port
            .parse()
            .map_err(|_| raw.invalid(key, format!("{item:?}: {port:?} is not a port number")))?;
        if out.iter().any(|l| l.name == name) {
            return Err(raw.invalid(key, format!("listener name {name} appears twice")));
        }
        out.push(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return Err(raw.invalid(key, "lists no listener".into()));
    }
    Ok(Some(out))
}

/// Each listener's protocol from `listener.security.protocol.map` (by default a listener named like a
/// protocol uses it): the TLS settings of each SSL and SASL_SSL listener and the SASL settings of each
/// SASL_PLAINTEXT and SASL_SSL listener; any other protocol is refused.
type Secured = (Vec<crate::tls::TlsConfig>, Vec<crate::sasl::SaslConfig>);

fn security_protocols(raw: &RawConfig, listeners: &[Listener]) -> Result<Secured, ConfigError> {
    let map: Vec<(String, String)> = match raw.string("listener.security.protocol.map") {
        Some(v) => {
            let mut pairs = Vec::new();
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let Some((name, proto)) = item.split_once(':') else {
                    return Err(raw.invalid(
                        "listener.security.protocol.map",
                        format!("{item:?} is not NAME:PROTOCOL"),
                    ));
                };
                pairs.push((name.trim().to_string(), proto.trim().to_string()));
            }
            pairs
        }
        None => ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
            .iter()
            .map(|p| (p.to_string(), p.to_string()))
            .collect(),
    };
    let (mut tls, mut sasl) = (Vec::new(), Vec::new());
    for listener in listeners {
        let protocol = map.iter().find(|(n, _)| *n == listener.name).map(|(_, p)| p.as_str());
        match protocol {
            Some("PLAINTEXT") => {}
            Some("SSL") => tls.push(crate::tls::TlsConfig::from_raw(raw, &listener.name)?),
            Some("SASL_PLAINTEXT") => sasl.push(crate::sasl::SaslConfig::from_raw(raw, &listener.name)?),
            Some("SASL_SSL") => {
                tls.push(crate::tls::TlsConfig::from_raw(raw, &listener.name)?);
                sasl.push(crate::sasl::SaslConfig::from_raw(raw, &listener.name)?);
            }
            Some(other) => {
                return Err(raw.invalid(
                    "listener.security.protocol.map",
                    format!(
                        "listener {} uses {other}, which is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)",
                        listener.name
                    ),
                ))
            }
            None => {
                return Err(raw.invalid(
                    "listeners",
                    format!(
                        "listener name {} has no entry in listener.security.protocol.map",
                        listener.name
                    ),
                ))
            }
        }
    }
    Ok((tls, sasl))
}

fn parse_connect(raw: &RawConfig, key: &str, value: &str) -> Result<Vec<HostPort>, ConfigError> {
    // ZooKeeper connect strings may end in a chroot path ("host:2181/kafka"); it has no meaning here.
    let hosts = value.split('/').next().unwrap_or_default();
    let mut out = Vec::new();
    for item in hosts.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = item
            .rsplit_once(':')
            .ok_or_else(|| raw.invalid(key, format!("{item:?} is not host:port")))?;
        let port = port
            .parse()
            .map_err(|_| raw.invalid(key, format!("{item:?}: {port:?} is not a port number")))?;
        out.push(HostPort {
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return Err(raw.invalid(key, "lists no host:port".into()));
    }
    Ok(out)
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A comma-separated list setting of the group coordinator whose elements must be among `allowed`
/// (assignors may also be named by Kafka's class names, which end in `UniformAssignor`/`RangeAssignor`).
fn group_list_setting(raw: &RawConfig, key: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    let Some(value) = raw.string(key) else {
        return Ok(());
    };
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let short = item
            .rsplit('.')
            .next()
            .unwrap_or(item)
            .trim_end_matches("Assignor")
            .to_ascii_lowercase();
        if !allowed.contains(&item) && !allowed.contains(&short.as_str()) {
            return Err(raw.invalid(key, format!("{item} is not one of {}", allowed.join(", "))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../../config/server.properties");

    fn parse(text: &str) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_properties_text(text, "server.properties")
    }

    #[test]
    fn shipped_config_parses_with_no_unknown_keys() {
        let c = parse(SEED).unwrap();
        assert_eq!(c.broker_id, BrokerId(0));
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.advertised_listeners[0].port, 9092);
    }

    #[test]
    fn seed_values_are_understood() {
        let c = parse(
            "broker.id=0\nnum.network.threads=3\nnum.io.threads=8\nsocket.send.buffer.bytes=102400\n\
             socket.receive.buffer.bytes=102400\nsocket.request.max.bytes=104857600\nlog.dirs=/tmp/kafka-logs\n\
             num.partitions=1\nnum.recovery.threads.per.data.dir=1\noffsets.topic.replication.factor=1\n\
             transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\nlog.retention.hours=168\n\
             log.segment.bytes=1073741824\nlog.retention.check.interval.ms=300000\nzookeeper.connect=localhost:2181\n\
             zookeeper.connection.timeout.ms=18000\n",
        )
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.log.retention_ms, 168 * HOUR_MS);
        assert_eq!(c.coordinator_connect.as_ref().unwrap()[0].port, 2181);
        assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kafka-logs")]);
    }

    #[test]
    fn retention_precedence_and_forever() {
        let c = parse("log.retention.hours=1\nlog.retention.minutes=2\n").unwrap();
        assert_eq!(c.log.retention_ms, 120_000);
        let c = parse("log.retention.hours=1\nlog.retention.minutes=2\nlog.retention.ms=5\n").unwrap();
        assert_eq!(c.log.retention_ms, 5);
        let c = parse("log.retention.ms=-1\n").unwrap();
        assert_eq!(c.log.retention_ms, -1);
        let c = parse("log.roll.hours=2\n").unwrap();
        assert_eq!(c.log.roll_ms, 2 * HOUR_MS);
        assert!(parse("log.retention.ms=-5\n").is_err());
    }

    #[test]
    fn inline_comment_gets_a_hint() {
        let err = parse("broker.id=0 # (1)\n").unwrap_err().to_string();
        assert!(
            err.contains("server.properties:1") && err.contains("inline comments"),
            "{err}"
        );
    }

    #[test]
    fn listeners_and_advertised() {
        let c = parse("listeners=PLAINTEXT://:9093\nadvertised.listeners=PLAINTEXT://kafka-0.example:9093\n").unwrap();
        assert_eq!(c.listeners[0].bind_address(), "0.0.0.0:9093");
        assert_eq!(c.advertised_for("PLAINTEXT").unwrap().host, "kafka-0.example");
        assert!(parse("listeners=PLAINTEXT://:x\n").is_err());
        let e = parse("listeners=SASL_SSL://:9093\n").unwrap_err().to_string();
        assert!(e.contains("has no keystore"), "{e}");
        assert!(parse("listeners=X://:9093\nlistener.security.protocol.map=X:TLS\n")
            .unwrap_err()
            .to_string()
            .contains("not a security protocol"));
        let e = parse("listeners=SSL://:9093\n").unwrap_err().to_string();
        assert!(e.contains("a JKS store; ssl.keystore.type is JKS when unset"), "{e}");
        let c = parse("listeners=PLAINTEXT://:9092,SSL://:9093\nssl.keystore.type=PEM\nssl.keystore.location=/k.pem\n")
            .unwrap();
        assert_eq!(c.tls.len(), 1);
        assert_eq!(c.tls[0].listener, "SSL");
        assert!(parse("advertised.listeners=OTHER://h:1\n").is_err());
    }

    #[test]
    fn group_settings_are_known_and_validated() {
        let c = parse("group.min.session.timeout.ms=1000\noffsets.retention.minutes=10\n").unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(
            c.static_settings.get("offsets.retention.minutes").map(String::as_str),
            Some("10")
        );
        assert!(parse("group.max.size=0\n").is_err());
        let c = parse(
            "group.coordinator.rebalance.protocols=classic\ngroup.consumer.assignors=org.apache.kafka.coordinator.group.assignor.RangeAssignor,uniform\n\
             group.consumer.session.timeout.ms=10000\ngroup.consumer.heartbeat.interval.ms=1000\n",
        )
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert!(parse("group.consumer.assignors=sticky\n").is_err());
        assert!(parse("group.consumer.migration.policy=BIDIRECTIONAL\n").is_ok());
        assert!(parse("group.consumer.migration.policy=sideways\n").is_err());
        assert!(parse("group.coordinator.rebalance.protocols=classic,streams\n").is_err());
    }

    #[test]
    fn replication_keys_are_understood() {
        let c = parse(
            "listeners=INTERNAL://:9092\nlistener.security.protocol.map=INTERNAL:PLAINTEXT\n\
                       inter.broker.listener.name=INTERNAL\nmin.insync.replicas=2\n",
        )
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.log.min_insync_replicas, 2);
        assert!(parse("inter.broker.listener.name=NOPE\n").is_err());
    }

    #[test]
    fn leader_rebalance_keys_are_understood_and_validated() {
        let c = parse(
            "auto.leader.rebalance.enable=false\nleader.imbalance.check.interval.seconds=30\n\
             leader.imbalance.per.broker.percentage=20\n",
        )
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert!(!c.leader_balance.enabled);
        assert_eq!(c.leader_balance.imbalance_per_broker_percentage, 20);
        assert!(parse("").unwrap().leader_balance.enabled);
        assert!(parse("leader.imbalance.per.broker.percentage=-1\n").is_err());
    }

    #[test]
    fn producer_expiration() {
        let c = parse("producer.id.expiration.ms=60000\n").unwrap();
        assert_eq!(c.log.producer_id_expiration_ms, 60_000);
        assert_eq!(parse("").unwrap().log.producer_id_expiration_ms, 86_400_000);
        assert!(parse("producer.id.expiration.ms=0\n").is_err());
    }

    #[test]
    fn unknown_keys_are_reported() {
        let c = parse("broker.id=1\nfoo.bar=1\n").unwrap();
        assert_eq!(c.unknown_keys, vec!["foo.bar".to_string()]);
    }

    #[test]
    fn log_cleaner_keys_are_understood() {
        let c = parse(
            "log.cleaner.enable=false\nlog.cleaner.threads=2\nlog.cleaner.backoff.ms=100\n\
             log.cleaner.dedupe.buffer.size=1048576\nlog.cleaner.min.cleanable.ratio=0.1\n\
             log.cleaner.delete.retention.ms=5\nlog.cleaner.min.compaction.lag.ms=7\n",
        )
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert!(!c.log_cleaner_enable);
        assert_eq!((c.log_cleaner_threads, c.log_cleaner_backoff_ms), (2, 100));
        assert_eq!(c.log_cleaner_dedupe_buffer_size, 1 << 20);
        assert_eq!(c.log_cleaner_io_max_bytes_per_second, f64::MAX);
        assert_eq!(c.log.cleaner_min_cleanable_ratio, 0.1);
        assert_eq!(
            (c.log.cleaner_delete_retention_ms, c.log.cleaner_min_compaction_lag_ms),
            (5, 7)
        );
        assert!(parse("log.cleaner.min.cleanable.ratio=2\n").is_err());
        let d = parse("").unwrap();
        assert!(d.log_cleaner_enable);
        assert_eq!(d.log_cleaner_backoff_ms, 15_000);
    }

    #[test]
    fn heap_from_env() {
        let raw = RawConfig::from_text("", "f").unwrap();
        let c = BrokerConfig::from_raw(&raw, Some("-Xmx256M -Xms256M")).unwrap();
        assert_eq!(c.heap_bytes, 256 << 20);
        assert!(BrokerConfig::from_raw(&raw, Some("-Xmxbig")).is_err());
    }
}
