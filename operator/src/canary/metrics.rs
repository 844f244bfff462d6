//! The canary's Prometheus series, one per KafkaCluster (labels `namespace`, `cluster`), named like
//! Strimzi's canary (`strimzi_canary_records_produced_total`, ...) under the prefix `oxka_canary`.
//! Registered once in the operator's registry (`reconcile::http::Metrics`); each cluster's canary
//! (`canary::Canaries`) adds what its tally counted since the last update and removes its series
//! when it stops.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::tally::{Counts, Snapshot};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub namespace: String,
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuantileLabels {
    pub namespace: String,
    pub cluster: String,
    pub quantile: String,
}

#[derive(Default, Clone)]
pub struct CanaryMetrics {
    produced: Family<ClusterLabels, Counter>,
    acknowledged: Family<ClusterLabels, Counter>,
    failed: Family<ClusterLabels, Counter>,
    consumed: Family<ClusterLabels, Counter>,
    lost: Family<ClusterLabels, Counter>,
    duplicated: Family<ClusterLabels, Counter>,
    latency: Family<QuantileLabels, Gauge>,
}

const QUANTILES: [&str; 2] = ["0.5", "0.99"];

impl CanaryMetrics {
    /// Registers every family in `registry` (the `oxka_canary` sub-registry).
    pub fn register(&self, registry: &mut Registry) {
        let counters = [
            ("records_produced", "Canary records sent", &self.produced),
            (
                "records_acknowledged",
                "Canary records the cluster acknowledged (acks=all)",
                &self.acknowledged,
            ),
            (
                "records_produced_failed",
                "Canary records the producer gave up on",
                &self.failed,
            ),
            ("records_consumed", "Distinct canary records read back", &self.consumed),
            (
                "records_lost",
                "Acknowledged canary records never read back within lostAfterSeconds",
                &self.lost,
            ),
            (
                "records_duplicated",
                "Canary records read back more than once",
                &self.duplicated,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "e2e_latency_ms",
            "End-to-end latency (send to read back) of the recent canary records, by quantile, in milliseconds",
            self.latency.clone(),
        );
    }

    /// Adds what happened between `before` and `snapshot` and sets the latency quantiles.
    pub fn update(&self, labels: &ClusterLabels, before: &Counts, snapshot: &Snapshot) {
        let d = snapshot.counts.since(before);
        self.produced.get_or_create(labels).inc_by(d.produced);
        self.acknowledged.get_or_create(labels).inc_by(d.acknowledged);
        self.failed.get_or_create(labels).inc_by(d.failed);
        self.consumed.get_or_create(labels).inc_by(d.consumed);
        self.lost.get_or_create(labels).inc_by(d.lost);
        self.duplicated.get_or_create(labels).inc_by(d.duplicated);
        for (q, value) in QUANTILES.iter().zip([snapshot.p50_ms, snapshot.p99_ms]) {
            if let Some(ms) = value {
                self.latency.get_or_create(&quantile(labels, q)).set(ms as i64);
            }
        }
    }

    /// Drops a cluster's series (its canary stopped).
    pub fn remove(&self, labels: &ClusterLabels) {
        for family in [
            &self.produced,
            &self.acknowledged,
            &self.failed,
            &self.consumed,
            &self.lost,
            &self.duplicated,
        ] {
            family.remove(labels);
        }
        for q in QUANTILES {
            self.latency.remove(&quantile(labels, q));
        }
    }
}

fn quantile(labels: &ClusterLabels, q: &str) -> QuantileLabels {
    QuantileLabels {
        namespace: labels.namespace.clone(),
        cluster: labels.cluster.clone(),
        quantile: q.to_string(),
    }
}
