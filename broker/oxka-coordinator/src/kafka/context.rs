//! What the coordinator's handlers share: `ClientContext` (the local member, the ensemble, the
//! controller's unreplicated state) and `propose` (a command through the controller, refusals as Kafka
//! error codes). Below the handlers, the controller's duties and the listener in `mod.rs`; re-exported
//! from `kafka`.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::{CoordinatorNode, MetadataCommand, MetadataResponse, NodeId};
use oxka_config::{CoordinatorId, Voter};
use oxka_protocol::util::now_ms;

/// What the handlers share: the local member, the ensemble's addresses, and in-memory controller state
/// that is not replicated (broker liveness, when followers were last seen caught up).
pub struct ClientContext {
    pub node: CoordinatorNode,
    pub voters: BTreeMap<CoordinatorId, Voter>,
    /// `broker.session.timeout.ms`: heartbeats older than this get a broker fenced.
    pub session_timeout_ms: i64,
    /// Last heartbeat per broker id, in ms since the epoch (only meaningful on the controller).
    pub heartbeats: Mutex<BTreeMap<i32, i64>>,
    /// Last time each voter's log matched the leader's, in ms since the epoch.
    pub caught_up: Mutex<BTreeMap<NodeId, i64>>,
    /// Per broker: the metadata offset its last heartbeat reported and when (ms since the epoch), for
    /// DescribeQuorum's observers (only meaningful on the controller).
    pub broker_offsets: Mutex<BTreeMap<i32, (i64, i64)>>,
    /// When each broker last registered, in ms since the epoch (only meaningful on the controller):
    /// leadership goes to a just-restarted broker only when no other replica can take it
    /// (`recently_restarted`).
    pub registered_at: Mutex<BTreeMap<i32, i64>>,
    /// Cancelled when the member shuts down: long-polls (MetadataFetch) stop waiting and answer.
    pub shutdown: CancellationToken,
}

/// How long after its registration a broker counts as just restarted for leader elections: the JVM's
/// default cache time for a resolved name (`networkaddress.cache.ttl`, 30 s), so that clients no
/// longer hold the address its previous incarnation had.
pub const RESTART_SETTLE_MS: i64 = 30_000;

impl ClientContext {
    pub fn new(node: CoordinatorNode, voters: BTreeMap<CoordinatorId, Voter>, session_timeout_ms: u64) -> Self {
        ClientContext {
            node,
            voters,
            session_timeout_ms: session_timeout_ms as i64,
            heartbeats: Mutex::default(),
            caught_up: Mutex::default(),
            broker_offsets: Mutex::default(),
            registered_at: Mutex::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// The brokers that registered less than `RESTART_SETTLE_MS` ago, as this controller saw them (a
    /// new controller knows of none).
    pub fn recently_restarted(&self) -> std::collections::BTreeSet<i32> {
        let now = oxka_protocol::util::now_ms();
        let mut registered = self.registered_at.lock();
        registered.retain(|_, at| now - *at < RESTART_SETTLE_MS);
        registered.keys().copied().collect()
    }

    /// Makes long-polls end when `shutdown` is cancelled (without it they end after their own wait).
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Records which voters are caught up with the leader's log, each time Raft's metrics change.
    pub async fn track_replication(self: Arc<Self>, shutdown: CancellationToken) {
        let mut rx = self.node.raft.metrics();
        loop {
            {
                let m = rx.borrow_and_update();
                if let (Some(replication), Some(last)) = (&m.replication, m.last_log_index) {
                    let now = now_ms();
                    let mut caught_up = self.caught_up.lock();
                    for (id, matched) in replication {
                        if matched.map(|l| l.index) == Some(last) {
                            caught_up.insert(*id, now);
                        }
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// Proposes `command` through the controller; every refusal becomes (Kafka error code, message).
pub async fn propose(ctx: &ClientContext, command: MetadataCommand) -> Result<MetadataResponse, (i16, String)> {
    match ctx.node.write(command).await {
        Ok(MetadataResponse::Rejected { error_code, message }) => Err((error_code, message)),
        Ok(response) => Ok(response),
        Err(e) => Err((e.kafka_code(), e.to_string())),
    }
}

/// Proposes independent commands (each names its own partition and epoch) all at once: Raft carries
/// them in a few appends instead of one commit each, as Kafka's controller writes a broker's
/// leadership changes in one batch. A controlled shutdown moving 100 partitions takes a round trip or
/// two instead of 100 (each commit is a quorum round trip and an fsync). Results in command order.
pub async fn propose_all(
    ctx: &ClientContext,
    commands: Vec<MetadataCommand>,
) -> Vec<Result<MetadataResponse, (i16, String)>> {
    futures::future::join_all(commands.into_iter().map(|command| propose(ctx, command))).await
}
