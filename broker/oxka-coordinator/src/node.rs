//! `CoordinatorNode`: one running member of the ensemble: its Raft, its state machine's shared image, its
//! metrics, and the two things every caller needs on top of openraft: proposing a metadata write with a
//! clear answer (done, not the controller, or no quorum within the timeout), and first-start
//! initialization of the membership.
//!
//! The same code runs a three-member ensemble and (next) the broker's embedded single voter; only the
//! network factory and the voter list differ. The in-process test harness builds nodes with a
//! fault-injecting network through `open`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{Config, RaftNetworkFactory, ServerState, SnapshotPolicy};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::image::{MetadataCommand, MetadataResponse};
use super::log_store::FileLogStore;
use super::metrics::CoordinatorMetrics;
use super::state_machine::{MetadataStateMachine, SharedState};
use super::{Node, NodeId, Raft, TypeConfig};

/// How long confirming leadership with a quorum may take.
const LEADERSHIP_CHECK: Duration = Duration::from_millis(1500);

/// Raft timing and durability for one node.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub heartbeat_interval_ms: u64,
    /// Lower bound; the upper bound is twice this.
    pub election_timeout_ms: u64,
    pub snapshot_every_entries: u64,
    pub write_timeout: Duration,
    /// fsync appends, votes and snapshots (tests of the algorithm may turn it off for speed).
    pub sync: bool,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_interval_ms: 150,
            election_timeout_ms: 1000,
            snapshot_every_entries: 10_000,
            write_timeout: Duration::from_secs(5),
            sync: true,
        }
    }
}

/// Why a metadata write was not applied. Each maps to a Kafka error code for clients.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("coordinator {me} is not the controller; {}", leader_hint(.leader))]
    NotController { me: NodeId, leader: Option<NodeId> },
    #[error(
        "no quorum: the write was not committed within {after:?}, so a majority of the coordinator ensemble \
         is unreachable; it is applied if the quorum returns, retry then"
    )]
    NoQuorum { after: Duration },
    #[error("the coordinator is shutting down or failed: {0}")]
    Fatal(String),
}

fn leader_hint(leader: &Option<NodeId>) -> String {
    match leader {
        Some(l) => format!("the controller is coordinator {l}"),
        None => "no controller is elected right now (is a majority of the ensemble running?)".into(),
    }
}

impl WriteError {
    /// The Kafka error code a client is told.
    pub fn kafka_code(&self) -> i16 {
        match self {
            WriteError::NotController { .. } => 41, // NOT_CONTROLLER
            WriteError::NoQuorum { .. } => 7,       // REQUEST_TIMED_OUT
            WriteError::Fatal(_) => -1,             // UNKNOWN_SERVER_ERROR
        }
    }
}

/// A running coordinator.
#[derive(Clone)]
pub struct CoordinatorNode {
    pub id: NodeId,
    pub raft: Raft,
    pub state: Arc<SharedState>,
    pub metrics: Arc<CoordinatorMetrics>,
    write_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the coordinator's Raft log in {dir}: {source}")]
    Log {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the coordinator's snapshot in {dir}: {source}")]
    StateMachine {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid Raft settings: {0}")]
    Config(String),
    #[error("cannot start Raft: {0}")]
    Raft(String),
}

impl CoordinatorNode {
    /// Opens the log and state machine in `dir` and starts Raft with `network`.
    pub async fn open<N: RaftNetworkFactory<TypeConfig>>(
        id: NodeId,
        dir: &Path,
        settings: &RaftSettings,
        network: N,
    ) -> Result<Self, StartError> {
        let shown = dir.display().to_string();
        let log = FileLogStore::open(&dir.join("raft"), settings.sync).map_err(|source| StartError::Log {
            dir: shown.clone(),
            source,
        })?;
        let metrics = Arc::new(CoordinatorMetrics::new());
        let sm = MetadataStateMachine::open(dir.join("raft"), metrics.clone(), settings.sync)
            .map_err(|source| StartError::StateMachine { dir: shown, source })?;
        let state = sm.shared();
        let config = Config {
            cluster_name: "oxka-coordinators".into(),
            heartbeat_interval: settings.heartbeat_interval_ms,
            election_timeout_min: settings.election_timeout_ms,
            election_timeout_max: settings.election_timeout_ms * 2,
            install_snapshot_timeout: 2000.max(settings.election_timeout_ms),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every_entries),
            max_in_snapshot_log_to_keep: settings.snapshot_every_entries.min(1000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
        let raft = Raft::new(id, Arc::new(config), network, log, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        Ok(CoordinatorNode {
            id,
            raft,
            state,
            metrics,
            write_timeout: settings.write_timeout,
        })
    }

    /// On first start, the lowest-id voter initializes the membership; the others wait to be contacted.
    /// Calling it again, or on a member with data, does nothing.
    pub async fn initialize_if_first(&self, voters: &BTreeMap<NodeId, Node>) -> Result<(), StartError> {
        if voters.keys().next() != Some(&self.id) {
            return Ok(());
        }
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        match self.raft.initialize(voters.clone()).await {
            Ok(()) => {
                info!(voters = ?voters.keys().collect::<Vec<_>>(), "initialized the coordinator ensemble");
                Ok(())
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(StartError::Raft(e.to_string())),
        }
    }

    /// The current leader (the controller), as this member knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Waits (up to `timeout`) until this member leads; woken by Raft's metrics, not polled.
    pub async fn wait_until_leader(&self, timeout: Duration) -> bool {
        let mut rx = self.raft.metrics();
        tokio::time::timeout(timeout, async {
            loop {
                if rx.borrow_and_update().state == ServerState::Leader {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Whether this member leads *and* a quorum still acknowledges it. A leader cut off from the others
    /// keeps its role (openraft leaders do not step down) while the rest elect another; it must not
    /// tell brokers it is the controller, or they would heartbeat it and be fenced by the real one.
    pub async fn is_confirmed_leader(&self) -> bool {
        self.is_leader()
            && matches!(
                tokio::time::timeout(LEADERSHIP_CHECK, self.raft.ensure_linearizable()).await,
                Ok(Ok(_))
            )
    }

    /// Proposes `command` and waits for it to be committed and applied. Refused at once on a member that
    /// is not the leader; fails with `NoQuorum` when a majority does not acknowledge it in time.
    pub async fn write(&self, command: MetadataCommand) -> Result<MetadataResponse, WriteError> {
        if !self.is_leader() {
            self.metrics.write_refused();
            return Err(WriteError::NotController {
                me: self.id,
                leader: self.leader(),
            });
        }
        let outcome = tokio::time::timeout(self.write_timeout, self.raft.client_write(command)).await;
        let result = match outcome {
            Err(_) => Err(WriteError::NoQuorum {
                after: self.write_timeout,
            }),
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(WriteError::NotController {
                me: self.id,
                leader: f.leader_id,
            }),
            Ok(Err(e)) => Err(WriteError::Fatal(e.to_string())),
        };
        if result.is_err() {
            self.metrics.write_refused();
        }
        result
    }

    /// The controller's duties that run on their own: today, giving the cluster its id once. Runs until
    /// shutdown.
    pub async fn run_controller_duties(self, shutdown: CancellationToken) {
        let mut rx = self.raft.metrics();
        let problems = oxka_protocol::util::RateLimitedLog::new(Duration::from_secs(30));
        loop {
            let leader = rx.borrow_and_update().state == ServerState::Leader;
            if leader && self.state.data.read().image.cluster_id.is_empty() {
                let cluster_id = new_cluster_id();
                match self.write(MetadataCommand::InitCluster { cluster_id }).await {
                    Ok(_) => info!(cluster_id = %self.state.image().cluster_id, "cluster id set"),
                    Err(e) => {
                        if let Some(count) = problems.should_log("cluster id") {
                            warn!(
                                "cannot set the cluster id yet: {e}; retrying every second{}",
                                problems.repeats(count)
                            );
                        }
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// A cluster id like Kafka's: 16 random bytes, URL-safe base64 without padding (22 characters).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = u128::from_be_bytes(uuid::Uuid::new_v4().into_bytes());
    (0..22)
        .map(|_| {
            let c = ALPHABET[(bits >> 122) as usize & 63] as char;
            bits <<= 6;
            c
        })
        .collect()
}
