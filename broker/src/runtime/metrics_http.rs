//! A minimal HTTP/1.1 endpoint for `GET /metrics` (Prometheus text) and `GET /health` (200 while the
//! broker is registered with the controller, unfenced, and so serving; 503 with the reason otherwise:
//! what the operator's readiness probe and rolling restarts wait for). One request per connection;
//! anything else gets 404.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::network::http::{read_request_path, respond, METRICS_CONTENT_TYPE, NOT_FOUND};

pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else { continue };
        let broker = broker.clone();
        tokio::spawn(async move {
            let Some(path) = read_request_path(&mut stream).await else {
                return;
            };
            let (status, content_type, body) = match path.as_str() {
                "/metrics" => {
                    refresh(&broker);
                    ("200 OK", METRICS_CONTENT_TYPE, broker.metrics.encode())
                }
                "/health" | "/healthz" | "/ready" => health(&broker),
                _ => ("404 Not Found", "text/plain", NOT_FOUND.to_string()),
            };
            respond(&mut stream, status, content_type, &body).await;
        });
    }
}

/// The broker's health: registered and unfenced (the controller has seen it catch up with the metadata
/// log and lets it lead partitions).
fn health(broker: &Broker) -> (&'static str, &'static str, String) {
    let epoch = broker.session.epoch();
    let offset = broker.metadata.offset();
    if epoch < 0 {
        (
            "503 Service Unavailable",
            "text/plain",
            "not registered with the controller\n".into(),
        )
    } else if broker.session.is_fenced() {
        (
            "503 Service Unavailable",
            "text/plain",
            format!("fenced by the controller (broker epoch {epoch}, metadata offset {offset})\n"),
        )
    } else {
        (
            "200 OK",
            "text/plain",
            format!("ok: registered (broker epoch {epoch}), unfenced, metadata offset {offset}\n"),
        )
    }
}

fn refresh(broker: &Broker) {
    let sizes: Vec<(String, i32, u64)> = broker
        .logs
        .partitions()
        .map(|p| {
            (
                p.topic_partition().topic.clone(),
                p.topic_partition().partition,
                p.log.lock().size_bytes(),
            )
        })
        .collect();
    broker.metrics.set_partition_count(sizes.len());
    broker.metrics.set_log_sizes(sizes);
    broker.metrics.set_budget_used(broker.budget.used_bytes());
    let (open, oldest_ms) = broker.txns.open_transactions(crate::util::now_ms());
    broker.metrics.set_transactions(open, oldest_ms);
    let mut snapshot = broker.replicas.snapshot();
    snapshot.offline = broker.metadata.offline_partition_count();
    snapshot.offline_log_dirs = broker.log_dirs.offline_dirs().len() as i64;
    broker.metrics.set_replication(snapshot);
}
