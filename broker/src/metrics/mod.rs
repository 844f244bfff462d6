//! Metrics with Kafka-like names (as Kafka's JMX exporter renders them), served as Prometheus text by
//! `runtime::metrics_http`. Counters are updated on the request path (atomic adds); log sizes and partition counts are
//! read when scraped.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub mod produce_stages;
pub mod replication;
pub mod txn;

pub use produce_stages::{ProduceStages, Stage};

pub use replication::{ReplicationCounters, ReplicationGauges, ReplicationSnapshot};
pub use txn::{TxnCounters, TxnGauges};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub request: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: String,
}

pub struct Metrics {
    registry: Registry,
    bytes_in: Family<TopicLabels, Counter>,
    messages_in: Family<TopicLabels, Counter>,
    failed_produce: Family<TopicLabels, Counter>,
    bytes_out: Counter,
    zero_copy_bytes: Counter,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram>,
    rejected: Counter,
    reauthentications: Counter,
    expired_sessions: Counter,
    connections: Gauge,
    partition_count: Gauge,
    log_size: Family<PartitionLabels, Gauge>,
    budget_used: Gauge,
    produce_stages: ProduceStages,
    replication: ReplicationCounters,
    replication_gauges: ReplicationGauges,
    txn: TxnCounters,
    txn_gauges: TxnGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let bytes_in = Family::<TopicLabels, Counter>::default();
        let messages_in = Family::<TopicLabels, Counter>::default();
        let failed_produce = Family::<TopicLabels, Counter>::default();
        let bytes_out = Counter::default();
        let zero_copy_bytes = Counter::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let rejected = Counter::default();
        let reauthentications = Counter::default();
        let expired_sessions = Counter::default();
        let connections = Gauge::default();
        let partition_count = Gauge::default();
        let log_size = Family::<PartitionLabels, Gauge>::default();
        let budget_used = Gauge::default();
        registry.register(
            "kafka_server_brokertopicmetrics_bytesin",
            "Bytes appended by produce requests",
            bytes_in.clone(),
        );
        registry.register(
            "kafka_server_brokertopicmetrics_messagesin",
            "Records appended by produce requests",
            messages_in.clone(),
        );
        registry.register(
            "kafka_server_brokertopicmetrics_failedproducerequests",
            "Produce partition requests that failed",
            failed_produce.clone(),
        );
        registry.register(
            "kafka_server_brokertopicmetrics_bytesout",
            "Record bytes sent to fetchers",
            bytes_out.clone(),
        );
        registry.register(
            "oxka_fetch_zero_copy_bytes",
            "Record bytes sent to fetchers from segment files with sendfile (never copied into the broker)",
            zero_copy_bytes.clone(),
        );
        registry.register(
            "kafka_network_requestmetrics_requests",
            "Requests handled, per API",
            requests.clone(),
        );
        registry.register(
            "kafka_network_requestmetrics_totaltime_seconds",
            "Time spent handling a request, per API",
            request_seconds.clone(),
        );
        registry.register(
            "kafka_network_socketserver_rejected_requests",
            "Connections closed because of an oversize or malformed request",
            rejected.clone(),
        );
        registry.register(
            "kafka_server_socketservermetrics_reauthentication",
            "SASL re-authentications begun on authenticated connections (KIP-368)",
            reauthentications.clone(),
        );
        registry.register(
            "kafka_server_socketservermetrics_expired_connections_killed",
            "Connections closed because their SASL session expired without a re-authentication",
            expired_sessions.clone(),
        );
        registry.register(
            "kafka_server_socketservermetrics_connection_count",
            "Open client connections",
            connections.clone(),
        );
        registry.register(
            "kafka_server_replicamanager_partitioncount",
            "Partitions hosted by this broker",
            partition_count.clone(),
        );
        registry.register("kafka_log_log_size", "Bytes on disk per partition", log_size.clone());
        registry.register(
            "oxka_memory_budget_used_bytes",
            "In-flight request and response bytes reserved",
            budget_used.clone(),
        );
        let produce_stages = ProduceStages::register(&mut registry);
        let replication = ReplicationCounters::default();
        let replication_gauges = ReplicationGauges::default();
        replication::register(&mut registry, &replication, &replication_gauges);
        let txn = TxnCounters::default();
        let txn_gauges = TxnGauges::default();
        txn::register(&mut registry, &txn, &txn_gauges);
        Metrics {
            txn,
            txn_gauges,
            registry,
            replication,
            replication_gauges,
            bytes_in,
            messages_in,
            failed_produce,
            bytes_out,
            zero_copy_bytes,
            requests,
            request_seconds,
            rejected,
            reauthentications,
            expired_sessions,
            connections,
            partition_count,
            log_size,
            budget_used,
            produce_stages,
        }
    }

    pub fn record_produce(&self, topic: &str, records: u64, bytes: u64) {
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        self.messages_in.get_or_create(&labels).inc_by(records);
        self.bytes_in.get_or_create(&labels).inc_by(bytes);
    }

    pub fn record_failed_produce(&self, topic: &str) {
        self.failed_produce
            .get_or_create(&TopicLabels {
                topic: topic.to_string(),
            })
            .inc();
    }

    pub fn record_fetch(&self, bytes: u64) {
        self.bytes_out.inc_by(bytes);
    }

    /// Record bytes a plaintext Fetch response sent with sendfile.
    pub fn record_zero_copy(&self, bytes: u64) {
        self.zero_copy_bytes.inc_by(bytes);
    }

    pub fn request_done(&self, api: ApiKey, elapsed: Duration) {
        let labels = RequestLabels {
            request: format!("{api:?}"),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Time a Produce request spent in one stage (`produce_stages`).
    pub fn produce_stage(&self, stage: Stage, elapsed: Duration) {
        self.produce_stages.observe(stage, elapsed);
    }

    pub fn request_rejected(&self) {
        self.rejected.inc();
    }

    pub fn sasl_reauthentication(&self) {
        self.reauthentications.inc();
    }

    pub fn sasl_session_expired(&self) {
        self.expired_sessions.inc();
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    pub fn set_partition_count(&self, count: usize) {
        self.partition_count.set(count as i64);
    }

    /// Replaces the per-partition log sizes (called when scraped).
    pub fn set_log_sizes(&self, sizes: impl IntoIterator<Item = (String, i32, u64)>) {
        self.log_size.clear();
        for (topic, partition, size) in sizes {
            self.log_size
                .get_or_create(&PartitionLabels {
                    topic,
                    partition: partition.to_string(),
                })
                .set(size as i64);
        }
    }

    /// The counters the replication module increments.
    pub fn replication(&self) -> ReplicationCounters {
        self.replication.clone()
    }

    pub fn set_replication(&self, snapshot: ReplicationSnapshot) {
        self.replication_gauges.set(snapshot);
    }

    /// The counters the transaction coordinator increments.
    pub fn txn(&self) -> TxnCounters {
        self.txn.clone()
    }

    /// Open transactions and the age of the oldest, in milliseconds.
    pub fn set_transactions(&self, open: usize, oldest_open_ms: i64) {
        self.txn_gauges.open.set(open as i64);
        self.txn_gauges.oldest_open_ms.set(oldest_open_ms);
    }

    pub fn set_budget_used(&self, bytes: u64) {
        self.budget_used.set(bytes as i64);
    }

    /// Prometheus text exposition of everything registered.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_like_names_are_exposed() {
        let m = Metrics::new();
        m.record_produce("orders", 3, 300);
        m.request_done(ApiKey::Produce, Duration::from_millis(2));
        m.set_log_sizes([("orders".to_string(), 0, 1234)]);
        let text = m.encode();
        assert!(
            text.contains("kafka_server_brokertopicmetrics_messagesin_total{topic=\"orders\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("kafka_network_requestmetrics_requests_total{request=\"Produce\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kafka_log_log_size{topic=\"orders\",partition=\"0\"} 1234"),
            "{text}"
        );
    }
}
