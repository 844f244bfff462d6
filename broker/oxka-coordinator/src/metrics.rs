//! Coordinator metrics, named after KRaft's `kafka.server:type=raft-metrics` (as Kafka's JMX exporter
//! renders them), plus the HTTP endpoint that serves them: `GET /metrics` (Prometheus text) and
//! `GET /health` (200 when this member knows a leader, 503 when the ensemble has no quorum it can see).
//!
//! Apply latency and counts are recorded by the state machine as it applies; term, indexes and leader
//! changes are copied from openraft's metrics by `watch_raft` whenever they change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{NodeId, Raft};
use oxka_protocol::network::client::request_once;
use oxka_protocol::network::http::{read_request_path, respond, METRICS_CONTENT_TYPE, NOT_FOUND};
use oxka_protocol::util::str_bytes;

pub struct CoordinatorMetrics {
    registry: Registry,
    current_term: Gauge,
    current_leader: Gauge,
    high_watermark: Gauge,
    log_end_offset: Gauge,
    applied_offset: Gauge,
    leader_changes: Counter,
    apply_seconds: Histogram,
    applied_records: Counter,
    snapshots: Counter,
    writes_refused: Counter,
    metadata_images_sent: Counter,
    metadata_deltas_sent: Counter,
    metadata_fetch_bytes: Counter,
    last_leader: AtomicI64,
}

impl Default for CoordinatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CoordinatorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = CoordinatorMetrics {
            current_term: Gauge::default(),
            current_leader: Gauge::default(),
            high_watermark: Gauge::default(),
            log_end_offset: Gauge::default(),
            applied_offset: Gauge::default(),
            leader_changes: Counter::default(),
            apply_seconds: Histogram::new(exponential_buckets(0.00001, 2.0, 20)),
            applied_records: Counter::default(),
            snapshots: Counter::default(),
            writes_refused: Counter::default(),
            metadata_images_sent: Counter::default(),
            metadata_deltas_sent: Counter::default(),
            metadata_fetch_bytes: Counter::default(),
            last_leader: AtomicI64::new(-1),
            registry: Registry::default(),
        };
        registry.register(
            "kafka_server_raft_metrics_current_epoch",
            "Raft term",
            m.current_term.clone(),
        );
        registry.register(
            "kafka_server_raft_metrics_current_leader",
            "Id of the current leader, -1 when unknown",
            m.current_leader.clone(),
        );
        registry.register(
            "kafka_server_raft_metrics_high_watermark",
            "Committed Raft log index",
            m.high_watermark.clone(),
        );
        registry.register(
            "kafka_server_raft_metrics_log_end_offset",
            "Last Raft log index on this member",
            m.log_end_offset.clone(),
        );
        registry.register(
            "kafka_server_raft_metrics_applied_offset",
            "Last Raft log index applied to the metadata image",
            m.applied_offset.clone(),
        );
        registry.register(
            "kafka_server_raft_metrics_leader_changes",
            "Times this member saw the leader change",
            m.leader_changes.clone(),
        );
        registry.register(
            "kafka_server_raft_metrics_apply_seconds",
            "Time to apply a batch of committed entries to the metadata image",
            m.apply_seconds.clone(),
        );
        registry.register(
            "kafka_server_raft_metrics_applied_records",
            "Committed entries applied",
            m.applied_records.clone(),
        );
        registry.register(
            "oxka_coordinator_snapshots",
            "Snapshots taken (each allows compacting the log)",
            m.snapshots.clone(),
        );
        registry.register(
            "oxka_coordinator_writes_refused",
            "Metadata writes refused (not the controller, or no quorum)",
            m.writes_refused.clone(),
        );
        registry.register(
            "oxka_coordinator_metadata_images_sent",
            "MetadataFetch answers carrying the whole image (a broker's first fetch, or one behind the change log)",
            m.metadata_images_sent.clone(),
        );
        registry.register(
            "oxka_coordinator_metadata_deltas_sent",
            "MetadataFetch answers carrying a delta from the broker's offset",
            m.metadata_deltas_sent.clone(),
        );
        registry.register(
            "oxka_coordinator_metadata_fetch_bytes",
            "Bytes of MetadataFetch answers written to brokers",
            m.metadata_fetch_bytes.clone(),
        );
        CoordinatorMetrics { registry, ..m }
    }

    /// A MetadataFetch answer of `bytes` went to a broker, with the whole image or a delta (or neither:
    /// the broker was up to date).
    pub fn metadata_sent(&self, image: bool, delta: bool, bytes: usize) {
        if image {
            self.metadata_images_sent.inc();
        }
        if delta {
            self.metadata_deltas_sent.inc();
        }
        self.metadata_fetch_bytes.inc_by(bytes as u64);
    }

    pub fn applied(&self, entries: usize, last_index: u64, took: Duration) {
        self.apply_seconds.observe(took.as_secs_f64());
        self.applied_records.inc_by(entries as u64);
        self.applied_offset.set(last_index as i64);
    }

    pub fn snapshot_taken(&self) {
        self.snapshots.inc();
    }

    pub fn write_refused(&self) {
        self.writes_refused.inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("metrics encode");
        out
    }

    fn observe(&self, m: &openraft::RaftMetrics<u64, openraft::BasicNode>) {
        self.current_term.set(m.current_term as i64);
        let leader = m.current_leader.map(|l| l as i64).unwrap_or(-1);
        self.current_leader.set(leader);
        if leader >= 0 && self.last_leader.swap(leader, Ordering::Relaxed) != leader {
            self.leader_changes.inc();
        }
        self.log_end_offset
            .set(m.last_log_index.map(|i| i as i64).unwrap_or(-1));
        self.high_watermark
            .set(m.last_applied.map(|l| l.index as i64).unwrap_or(-1));
    }
}

/// Copies openraft's metrics into ours whenever they change, until shutdown.
pub async fn watch_raft(raft: Raft, metrics: Arc<CoordinatorMetrics>, shutdown: CancellationToken) {
    let mut rx = raft.metrics();
    loop {
        metrics.observe(&rx.borrow_and_update());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}

/// 200 when this member knows a leader and is caught up: a leader must confirm it still has a quorum
/// (a leader cut off from the others keeps its role until a quorum elects another, but it can commit
/// nothing); a follower asks the leader (DescribeQuorum on its clientPort) whether its log reaches the
/// high watermark. What the operator's rolling restarts wait for before the next pod.
async fn health(raft: &Raft, client_addresses: &BTreeMap<NodeId, String>) -> (&'static str, String) {
    let (leader, is_leader) = {
        let m = raft.metrics();
        let m = m.borrow();
        (m.current_leader, m.state == openraft::ServerState::Leader)
    };
    match leader {
        None => (
            "503 Service Unavailable",
            "no leader: this coordinator cannot reach a quorum of the ensemble\n".to_string(),
        ),
        Some(leader) if is_leader => {
            match tokio::time::timeout(Duration::from_secs(2), raft.ensure_linearizable()).await {
                Ok(Ok(_)) => ("200 OK", format!("ok: coordinator {leader} is the leader\n")),
                _ => (
                    "503 Service Unavailable",
                    format!("coordinator {leader} leads but no quorum acknowledges it; metadata writes fail\n"),
                ),
            }
        }
        Some(leader) => match follower_lag(raft, leader, client_addresses).await {
            Ok((end, high_watermark)) if end >= high_watermark => (
                "200 OK",
                format!(
                    "ok: leader is coordinator {leader}; caught up (log end {end}, high watermark {high_watermark})\n"
                ),
            ),
            Ok((end, high_watermark)) => (
                "503 Service Unavailable",
                format!("catching up with coordinator {leader}: log end {end}, high watermark {high_watermark}\n"),
            ),
            Err(problem) => (
                "503 Service Unavailable",
                format!("leader is coordinator {leader}, but it cannot tell how far this member is: {problem}\n"),
            ),
        },
    }
}

/// (this member's log end offset as the leader sees it, the leader's high watermark).
async fn follower_lag(
    raft: &Raft,
    leader: NodeId,
    client_addresses: &BTreeMap<NodeId, String>,
) -> Result<(i64, i64), String> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, RequestKind, ResponseKind, TopicName};
    let me = raft.metrics().borrow().id;
    let address = client_addresses
        .get(&leader)
        .ok_or_else(|| format!("no client address for coordinator {leader}"))?;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(str_bytes(super::METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let answer = request_once(
        address,
        &format!("oxka-coordinator-{me}-health"),
        ApiKey::DescribeQuorum,
        1,
        &RequestKind::DescribeQuorum(request),
        Duration::from_secs(2),
        None,
    )
    .await?;
    let ResponseKind::DescribeQuorum(response) = answer else {
        return Err("unexpected answer to DescribeQuorum".into());
    };
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("empty DescribeQuorum answer")?;
    if partition.error_code != 0 {
        return Err(format!("DescribeQuorum error {}", partition.error_code));
    }
    let mine = partition
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 as u64 == me)
        .ok_or_else(|| format!("the leader does not list coordinator {me} as a voter"))?;
    Ok((mine.log_end_offset, partition.high_watermark))
}

/// Serves `/metrics` and `/health` until shutdown. One request per connection.
pub async fn serve_http(
    listener: TcpListener,
    metrics: Arc<CoordinatorMetrics>,
    raft: Raft,
    client_addresses: Arc<BTreeMap<NodeId, String>>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else { continue };
        let metrics = metrics.clone();
        let raft = raft.clone();
        let client_addresses = client_addresses.clone();
        tokio::spawn(async move {
            let Some(path) = read_request_path(&mut stream).await else {
                return;
            };
            let (status, body) = match path.as_str() {
                "/metrics" => ("200 OK", metrics.encode()),
                "/health" | "/healthz" | "/ready" => health(&raft, &client_addresses).await,
                _ => ("404 Not Found", NOT_FOUND.to_string()),
            };
            respond(&mut stream, status, METRICS_CONTENT_TYPE, &body).await;
        });
    }
}
