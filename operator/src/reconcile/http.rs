//! The operator's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process runs)
//! and `/readyz` (it is leader and its controller runs, or it is a healthy standby). A minimal HTTP/1.1
//! responder: one short request per connection, bounded reads, no keep-alive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::canary::CanaryMetrics;

/// Reconcile metrics, shared by the controller (writes) and the HTTP server (reads).
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub errors: Counter,
    pub duration: Histogram,
    pub leader: Gauge,
    /// Pods deleted by rolling restarts (each re-created on the new revision).
    pub roll_restarts: Counter,
    /// Times a roll stopped at a pod that did not become healthy (once per pod and reason).
    pub rolls_stuck: Counter,
    /// KafkaTopic reconciliations run.
    pub topic_reconciles: Counter,
    /// KafkaTopic reconciliations that failed or ended not Ready (a refusal by Kafka, an unsupported
    /// change, no cluster or no answer from Kafka).
    pub topic_errors: Counter,
    /// Changes made to a topic outside its KafkaTopic, found and corrected.
    pub topic_drift: Counter,
    /// Partition reassignments submitted to drain brokers before a scale-down.
    pub drain_reassignments: Counter,
    /// Drains that ended with the removed brokers empty (the StatefulSet then shrinks).
    pub drains_finished: Counter,
    /// Partition reassignments submitted to spread replicas (`oxka.io/rebalance: spread`).
    pub rebalance_reassignments: Counter,
    /// Rebalances that ended with replicas and preferred leaders spread.
    pub rebalances_finished: Counter,
    /// The built-in canaries' series (`oxka_canary_*`), one set per KafkaCluster.
    pub canary: CanaryMetrics,
    /// Set once the controller is running (after winning the election when enabled).
    pub ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        let canary = CanaryMetrics::default();
        canary.register(root.sub_registry_with_prefix("oxka_canary"));
        let registry = root.sub_registry_with_prefix("oxka_operator");
        let reconciles = Counter::default();
        let errors = Counter::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let leader = Gauge::default();
        let roll_restarts = Counter::default();
        let rolls_stuck = Counter::default();
        let topic_reconciles = Counter::default();
        let topic_errors = Counter::default();
        let topic_drift = Counter::default();
        let drain_reassignments = Counter::default();
        let drains_finished = Counter::default();
        let rebalance_reassignments = Counter::default();
        let rebalances_finished = Counter::default();
        registry.register(
            "reconciliations",
            "KafkaCluster reconciliations run",
            reconciles.clone(),
        );
        registry.register("reconcile_errors", "Reconciliations that failed", errors.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconciliation took",
            duration.clone(),
        );
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        registry.register(
            "roll_pod_restarts",
            "Pods restarted by health-gated rolling restarts",
            roll_restarts.clone(),
        );
        registry.register(
            "rolls_stuck",
            "Rolling restarts stopped at a pod that did not become healthy",
            rolls_stuck.clone(),
        );
        registry.register(
            "topic_reconciliations",
            "KafkaTopic reconciliations run",
            topic_reconciles.clone(),
        );
        registry.register(
            "topic_reconcile_errors",
            "KafkaTopic reconciliations that failed or ended not Ready",
            topic_errors.clone(),
        );
        registry.register(
            "topic_drift_corrections",
            "Topic changes made outside a KafkaTopic, found and corrected toward the spec",
            topic_drift.clone(),
        );
        registry.register(
            "drain_reassignments",
            "Partition reassignments submitted to drain brokers before a scale-down",
            drain_reassignments.clone(),
        );
        registry.register(
            "drains_finished",
            "Drains that ended with the removed brokers empty",
            drains_finished.clone(),
        );
        registry.register(
            "rebalance_reassignments",
            "Partition reassignments submitted to spread replicas over the brokers (oxka.io/rebalance: spread)",
            rebalance_reassignments.clone(),
        );
        registry.register(
            "rebalances_finished",
            "Rebalances that ended with replicas and preferred leaders spread",
            rebalances_finished.clone(),
        );
        Metrics {
            registry: root,
            reconciles,
            errors,
            duration,
            leader,
            roll_restarts,
            rolls_stuck,
            topic_reconciles,
            topic_errors,
            topic_drift,
            drain_reassignments,
            drains_finished,
            rebalance_reassignments,
            rebalances_finished,
            canary,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Serves the endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await;
            let Ok(Ok(n)) = read else { return };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (code, content_type, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics.render(),
                ),
                "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                "/readyz" if metrics.ready.load(Ordering::Relaxed) => ("200 OK", "text/plain", "ready\n".to_string()),
                "/readyz" => ("503 Service Unavailable", "text/plain", "starting\n".to_string()),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let metrics = Arc::new(Metrics::default());
        metrics.reconciles.inc();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, metrics.clone()));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(address).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let body = get("/metrics").await;
        assert!(body.contains("oxka_operator_reconciliations_total 1"), "{body}");
        assert!(
            body.contains("oxka_operator_reconcile_duration_seconds_bucket"),
            "{body}"
        );
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.ready.store(true, Ordering::Relaxed);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    }
}
