//! Replication metrics, with the names Kafka's JMX exporter gives them: the replica manager's gauges
//! (under-replicated, under-min-ISR, offline and led partitions, the largest follower lag), its ISR
//! shrink and expand counts, and fetch counts per follower (on leaders) and per source broker (on
//! followers). The counters are cloned into the replication module, which increments them; the gauges
//! are set from the replica manager's state when `/metrics` is scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FollowerLabels {
    pub follower: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceBrokerLabels {
    pub source_broker: String,
}

/// The counters the replication module increments (cheap clones of the registered metrics).
#[derive(Clone, Default)]
pub struct ReplicationCounters {
    pub isr_shrinks: Counter,
    pub isr_expands: Counter,
    /// Follower fetches this broker answered as leader, per follower.
    pub follower_fetches: Family<FollowerLabels, Counter>,
    /// Fetches this broker's fetchers sent, and record bytes they appended, per source broker.
    pub fetcher_requests: Family<SourceBrokerLabels, Counter>,
    pub fetcher_bytes: Family<SourceBrokerLabels, Counter>,
}

impl ReplicationCounters {
    pub fn follower_fetched(&self, follower: i32) {
        self.follower_fetches
            .get_or_create(&FollowerLabels {
                follower: follower.to_string(),
            })
            .inc();
    }

    pub fn fetched_from(&self, source: i32, bytes: u64) {
        let labels = SourceBrokerLabels {
            source_broker: source.to_string(),
        };
        self.fetcher_requests.get_or_create(&labels).inc();
        self.fetcher_bytes.get_or_create(&labels).inc_by(bytes);
    }
}

/// The state-derived gauges, set at scrape time.
#[derive(Clone, Default)]
pub struct ReplicationGauges {
    pub under_replicated: Gauge,
    pub under_min_isr: Gauge,
    pub offline: Gauge,
    pub leaders: Gauge,
    pub max_lag: Gauge,
    pub leader_throttled_rate: Gauge,
    pub follower_throttled_rate: Gauge,
    pub offline_log_dirs: Gauge,
}

/// What the gauges show, computed by the replica manager.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationSnapshot {
    pub under_replicated: i64,
    pub under_min_isr: i64,
    pub offline: i64,
    pub leaders: i64,
    pub max_lag: i64,
    /// Bytes per second of throttled replicas served to followers / fetched, as the throttles measure.
    pub leader_throttled_rate: i64,
    pub follower_throttled_rate: i64,
    /// Log dirs that failed a write and have not taken one since (`log_dir_health`).
    pub offline_log_dirs: i64,
}

pub fn register(registry: &mut Registry, counters: &ReplicationCounters, gauges: &ReplicationGauges) {
    registry.register(
        "kafka_server_replicamanager_underreplicatedpartitions",
        "Partitions led here whose ISR is smaller than their replica set",
        gauges.under_replicated.clone(),
    );
    registry.register(
        "kafka_server_replicamanager_underminisrpartitioncount",
        "Partitions led here whose ISR is smaller than min.insync.replicas",
        gauges.under_min_isr.clone(),
    );
    registry.register(
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "Partitions without a leader, as this broker's metadata shows them",
        gauges.offline.clone(),
    );
    registry.register(
        "kafka_server_replicamanager_leadercount",
        "Partitions led by this broker",
        gauges.leaders.clone(),
    );
    registry.register(
        "kafka_server_replicafetchermanager_maxlag",
        "The largest lag, in records, of any follower behind a partition led here",
        gauges.max_lag.clone(),
    );
    registry.register(
        "kafka_server_leaderreplication_byte_rate",
        "Bytes per second of throttled replicas sent to followers (leader.replication.throttled.replicas)",
        gauges.leader_throttled_rate.clone(),
    );
    registry.register(
        "kafka_server_followerreplication_byte_rate",
        "Bytes per second of throttled replicas fetched by this broker (follower.replication.throttled.replicas)",
        gauges.follower_throttled_rate.clone(),
    );
    registry.register(
        "kafka_log_logmanager_offlinelogdirectorycount",
        "Log dirs that failed a write and have not taken one since; while any is, the broker asks to be fenced",
        gauges.offline_log_dirs.clone(),
    );
    registry.register(
        "kafka_server_replicamanager_isrshrinks",
        "ISR shrinks committed by the controller for partitions led here",
        counters.isr_shrinks.clone(),
    );
    registry.register(
        "kafka_server_replicamanager_isrexpands",
        "ISR expansions committed by the controller for partitions led here",
        counters.isr_expands.clone(),
    );
    registry.register(
        "kafka_server_fetcherstats_follower_requests",
        "Follower fetches answered as leader, per follower broker",
        counters.follower_fetches.clone(),
    );
    registry.register(
        "kafka_server_fetcherstats_requests",
        "Fetches sent by this broker's replica fetchers, per source broker",
        counters.fetcher_requests.clone(),
    );
    registry.register(
        "kafka_server_fetcherstats_bytes",
        "Record bytes appended by this broker's replica fetchers, per source broker",
        counters.fetcher_bytes.clone(),
    );
}

impl ReplicationGauges {
    pub fn set(&self, s: ReplicationSnapshot) {
        self.under_replicated.set(s.under_replicated);
        self.under_min_isr.set(s.under_min_isr);
        self.offline.set(s.offline);
        self.leaders.set(s.leaders);
        self.max_lag.set(s.max_lag);
        self.leader_throttled_rate.set(s.leader_throttled_rate);
        self.follower_throttled_rate.set(s.follower_throttled_rate);
        self.offline_log_dirs.set(s.offline_log_dirs);
    }
}
