//! The Raft-level harness: three `CoordinatorNode`s (real file storage in temp dirs, real state machine)
//! joined by an in-process network that drops, delays and reorders messages as a seeded generator says,
//! with leader kills and restarts from disk. Over many seeds it checks that committed metadata is never
//! lost or contradicted:
//!
//! - every entry any incarnation of any node applied at index i is the same entry (one history);
//! - every write acknowledged to a client is in that history at its log id and in every node's final image;
//! - after healing, all nodes converge to the same image.
//!
//! `OXKA_RAFT_SEEDS=n` runs n seeds (default 12); `OXKA_RAFT_SEED=s` runs one seed, to replay a failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::LogId;
use parking_lot::Mutex;
use tempfile::TempDir;
use uuid::Uuid;

use super::image::MetadataCommand;
use super::network::{handle_peer_request, PeerRequest, PeerResponse};
use super::node::{CoordinatorNode, RaftSettings};
use super::{Node, NodeId, Raft, TypeConfig};

/// splitmix64: small, seedable, good enough to schedule faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message dropped by the test network")
    }
}

impl std::error::Error for Dropped {}

/// The in-process network: who is up, and the fault schedule.
struct Router {
    nodes: Mutex<HashMap<NodeId, Raft>>,
    rng: Mutex<Rng>,
    /// Percent of requests (and, separately, of responses) dropped.
    drop_percent: Mutex<u64>,
    max_delay_ms: Mutex<u64>,
    /// A node cut off from the others (both directions), as a network partition does.
    isolated: Mutex<Option<NodeId>>,
}

impl Router {
    fn new(seed: u64) -> Arc<Self> {
        Arc::new(Router {
            nodes: Mutex::default(),
            rng: Mutex::new(Rng(seed)),
            drop_percent: Mutex::new(10),
            max_delay_ms: Mutex::new(30),
            isolated: Mutex::new(None),
        })
    }

    fn heal(&self) {
        *self.drop_percent.lock() = 0;
        *self.max_delay_ms.lock() = 2;
        *self.isolated.lock() = None;
    }

    /// Delivers `request` to `target` with the faults the schedule says; the JSON round trip checks that
    /// every message survives the real transport's encoding.
    async fn deliver(&self, from: NodeId, target: NodeId, request: PeerRequest) -> Result<PeerResponse, Dropped> {
        let (drop_request, delay, drop_response) = {
            let mut rng = self.rng.lock();
            let p = *self.drop_percent.lock();
            let max = *self.max_delay_ms.lock();
            (rng.below(100) < p, rng.below(max + 1), rng.below(100) < p)
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let raft = self.nodes.lock().get(&target).cloned();
        let cut = |n| *self.isolated.lock() == Some(n);
        let (Some(raft), false) = (raft, drop_request || cut(from) || cut(target)) else {
            return Err(Dropped);
        };
        let request: PeerRequest = serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
        let response = handle_peer_request(&raft, request).await;
        let response: PeerResponse = serde_json::from_str(&serde_json::to_string(&response).unwrap()).unwrap();
        if drop_response || cut(from) || cut(target) {
            return Err(Dropped);
        }
        Ok(response)
    }
}

/// The network as node `.1` sees it.
#[derive(Clone)]
struct Factory(Arc<Router>, NodeId);

struct Client {
    router: Arc<Router>,
    from: NodeId,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Factory {
    type Network = Client;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> Client {
        Client {
            router: self.0.clone(),
            from: self.1,
            target,
        }
    }
}

fn unreachable<E: std::error::Error>() -> RPCError<NodeId, Node, E> {
    RPCError::Unreachable(Unreachable::new(&Dropped))
}

impl RaftNetwork<TypeConfig> for Client {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self
            .router
            .deliver(self.from, self.target, PeerRequest::AppendEntries(rpc))
            .await
        {
            Ok(PeerResponse::AppendEntries(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(RPCError::Network(NetworkError::new(&Dropped))),
            Err(_) => Err(unreachable()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        match self
            .router
            .deliver(self.from, self.target, PeerRequest::InstallSnapshot(rpc))
            .await
        {
            Ok(PeerResponse::InstallSnapshot(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(RPCError::Network(NetworkError::new(&Dropped))),
            Err(_) => Err(unreachable()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self
            .router
            .deliver(self.from, self.target, PeerRequest::Vote(rpc))
            .await
        {
            Ok(PeerResponse::Vote(r)) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(_) => Err(RPCError::Network(NetworkError::new(&Dropped))),
            Err(_) => Err(unreachable()),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(20)))
    }
}

/// One history of applied entries, by index, that every node must agree with.
#[derive(Default)]
struct History {
    by_index: BTreeMap<u64, (LogId<NodeId>, String)>,
}

impl History {
    fn record(&mut self, seed: u64, node: NodeId, applied: &[(LogId<NodeId>, String)]) {
        let mut previous = None;
        for (log_id, payload) in applied {
            assert!(
                previous < Some(log_id.index),
                "seed {seed}: node {node} applied index {} after {previous:?}",
                log_id.index
            );
            previous = Some(log_id.index);
            match self.by_index.get(&log_id.index) {
                Some(seen) => assert_eq!(
                    seen,
                    &(*log_id, payload.clone()),
                    "seed {seed}: node {node} applied a different entry at index {}",
                    log_id.index
                ),
                None => {
                    self.by_index.insert(log_id.index, (*log_id, payload.clone()));
                }
            }
        }
    }
}

struct Cluster {
    seed: u64,
    router: Arc<Router>,
    dirs: BTreeMap<NodeId, TempDir>,
    nodes: BTreeMap<NodeId, CoordinatorNode>,
    history: History,
    settings: RaftSettings,
}

impl Cluster {
    async fn start(seed: u64) -> Self {
        let settings = RaftSettings {
            heartbeat_interval_ms: 30,
            election_timeout_ms: 150,
            snapshot_every_entries: 10,
            write_timeout: Duration::from_millis(1500),
            sync: false,
        };
        let mut cluster = Cluster {
            seed,
            router: Router::new(seed),
            dirs: (1..=3).map(|id| (id, tempfile::tempdir().unwrap())).collect(),
            nodes: BTreeMap::new(),
            history: History::default(),
            settings,
        };
        for id in 1..=3 {
            cluster.boot(id).await;
        }
        let voters: BTreeMap<NodeId, Node> = (1..=3).map(|id| (id, Node::new(format!("node-{id}")))).collect();
        for node in cluster.nodes.values() {
            node.initialize_if_first(&voters).await.unwrap();
        }
        cluster
    }

    async fn boot(&mut self, id: NodeId) {
        let node = CoordinatorNode::open(
            id,
            self.dirs[&id].path(),
            &self.settings,
            Factory(self.router.clone(), id),
        )
        .await
        .unwrap();
        self.router.nodes.lock().insert(id, node.raft.clone());
        self.nodes.insert(id, node);
    }

    /// Stops `id` abruptly (as kill -9 would, minus the unsynced page cache) and records what it applied.
    async fn kill(&mut self, id: NodeId) {
        self.router.nodes.lock().remove(&id);
        if let Some(node) = self.nodes.remove(&id) {
            node.raft.shutdown().await.ok();
            let applied = node.state.applied.lock().clone();
            self.history.record(self.seed, id, &applied);
        }
    }

    fn leader(&self) -> Option<&CoordinatorNode> {
        self.nodes.values().find(|n| n.is_leader())
    }
}

/// What clients were told: acknowledged writes (with their log ids) and writes with no answer.
#[derive(Default)]
struct Outcomes {
    acked: Vec<(LogId<NodeId>, String)>,
    unknown: usize,
}

async fn run_seed(seed: u64) {
    let mut cluster = Cluster::start(seed).await;
    let mut rng = Rng(seed ^ 0x5eed);
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let mut writers = Vec::new();
    let mut down: BTreeSet<NodeId> = BTreeSet::new();
    let (mut kills, mut partitions) = (0, 0);
    for i in 0..80u64 {
        match rng.below(100) {
            // Cut the leader off: it keeps taking writes it can never commit, and a new leader is elected.
            0..=5 => {
                let leader = cluster.leader().map(|n| n.id);
                if cluster.router.isolated.lock().is_none() && leader.is_some() {
                    *cluster.router.isolated.lock() = leader;
                    partitions += 1;
                }
            }
            6..=11 => *cluster.router.isolated.lock() = None,
            // Kill the leader (at most one node down at a time), or bring the dead one back.
            12..=16 => {
                if let Some(&id) = down.iter().next() {
                    cluster.boot(id).await;
                    down.remove(&id);
                } else if let Some(leader) = cluster.leader().map(|n| n.id) {
                    cluster.kill(leader).await;
                    down.insert(leader);
                    kills += 1;
                }
            }
            // Otherwise a client writes to whoever is leader, without waiting for the answer.
            _ => {
                let leaders: Vec<CoordinatorNode> = cluster.nodes.values().filter(|n| n.is_leader()).cloned().collect();
                if let Some(leader) = leaders.get(rng.below(leaders.len() as u64) as usize).cloned() {
                    let name = format!("t{i}");
                    let command = MetadataCommand::CreateTopic {
                        name: name.clone(),
                        topic_id: Uuid::nil(),
                        assignment: vec![vec![1]],
                        configs: BTreeMap::new(),
                    };
                    let outcomes = outcomes.clone();
                    writers.push(tokio::spawn(async move {
                        let write =
                            tokio::time::timeout(Duration::from_millis(1500), leader.raft.client_write(command));
                        match write.await {
                            Ok(Ok(response)) => outcomes.lock().acked.push((response.log_id, name)),
                            _ => outcomes.lock().unknown += 1,
                        }
                    }));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let Outcomes { mut acked, unknown } = std::mem::take(&mut *outcomes.lock());
    // Heal: no faults, everyone up; wait until all agree on the last applied entry.
    cluster.router.heal();
    for id in down {
        cluster.boot(id).await;
    }
    // Once healed, the ensemble takes writes again.
    let healed_write = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(leader) = cluster.leader().cloned() {
                let command = MetadataCommand::CreateTopic {
                    name: "healed".into(),
                    topic_id: Uuid::nil(),
                    assignment: vec![vec![1]],
                    configs: BTreeMap::new(),
                };
                let write = tokio::time::timeout(Duration::from_secs(2), leader.raft.client_write(command)).await;
                if let Ok(Ok(response)) = write {
                    return (response.log_id, "healed".to_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("seed {seed}: no write was accepted after healing"));
    acked.push(healed_write);
    let converged = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let applied: BTreeSet<Option<u64>> = cluster.nodes.values().map(|n| n.state.last_applied_index()).collect();
            let leader_known = cluster.leader().is_some();
            let last_log = cluster.leader().and_then(|l| l.raft.metrics().borrow().last_log_index);
            if leader_known && applied.len() == 1 && applied.iter().next().copied().flatten() == last_log {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        converged.is_ok(),
        "seed {seed}: the ensemble did not converge after healing"
    );
    let images: Vec<_> = cluster.nodes.values().map(|n| n.state.image()).collect();
    assert!(
        images.windows(2).all(|w| w[0] == w[1]),
        "seed {seed}: nodes disagree on the image"
    );
    // Stop everything and start again: every node comes back with the same metadata.
    for id in [1, 2, 3] {
        cluster.kill(id).await;
    }
    for id in [1, 2, 3] {
        cluster.boot(id).await;
    }
    let restored = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if cluster.leader().is_some() && cluster.nodes.values().all(|n| n.state.image() == images[0]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        restored.is_ok(),
        "seed {seed}: metadata did not come back after a full restart"
    );
    for id in [1, 2, 3] {
        cluster.kill(id).await;
    }
    for (log_id, name) in &acked {
        let (seen, payload) = cluster
            .history
            .by_index
            .get(&log_id.index)
            .unwrap_or_else(|| panic!("seed {seed}: acknowledged write {name} at {log_id} was never applied"));
        assert_eq!(seen, log_id, "seed {seed}: acknowledged write {name} lost");
        assert!(
            payload.contains(&format!("\"{name}\"")),
            "seed {seed}: {payload} is not {name}"
        );
        assert!(images[0].topics.contains_key(name), "seed {seed}: {name} is missing");
    }
    eprintln!(
        "seed {seed}: {} writes acknowledged, {unknown} unknown, {kills} leader kills, {partitions} partitions, \
         {} entries in the history",
        acked.len(),
        cluster.history.by_index.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_metadata_is_never_lost_or_contradicted() {
    let seeds: Vec<u64> = match std::env::var("OXKA_RAFT_SEED") {
        Ok(s) => vec![s.parse().expect("OXKA_RAFT_SEED is a number")],
        Err(_) => {
            let n = std::env::var("OXKA_RAFT_SEEDS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(12);
            (1..=n).collect()
        }
    };
    for seed in seeds {
        run_seed(seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_single_voter_keeps_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::new(1);
    router.heal();
    let settings = RaftSettings {
        heartbeat_interval_ms: 30,
        election_timeout_ms: 150,
        snapshot_every_entries: 10,
        write_timeout: Duration::from_secs(2),
        sync: true,
    };
    let voters = BTreeMap::from([(1, Node::new(""))]);
    for round in 0..2 {
        let node = CoordinatorNode::open(1, dir.path(), &settings, Factory(router.clone(), 1))
            .await
            .unwrap();
        node.initialize_if_first(&voters).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !node.is_leader() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("a single voter elects itself");
        for i in 0..25 {
            let command = MetadataCommand::CreateTopic {
                name: format!("r{round}-{i}"),
                topic_id: Uuid::nil(),
                assignment: vec![vec![1]],
                configs: BTreeMap::new(),
            };
            node.write(command).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while node.state.image().topics.len() < 25 * (round + 1) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("every write from both rounds is in the image after a restart");
        node.raft.shutdown().await.unwrap();
    }
    // Snapshots were taken and the log was compacted behind them.
    assert!(dir.path().join("raft/snapshot.json").exists());
}

/// The broker's embedded coordinator: node id 0 (broker ids start at 0) as the only voter on `NoPeers`,
/// restarted from its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_with_id_zero_on_no_peers_survives_a_restart() {
    use super::network::NoPeers;
    let dir = tempfile::tempdir().unwrap();
    let settings = RaftSettings {
        heartbeat_interval_ms: 30,
        election_timeout_ms: 150,
        snapshot_every_entries: 1000,
        write_timeout: Duration::from_secs(2),
        sync: true,
    };
    let voters = BTreeMap::from([(0, Node::new(""))]);
    for round in 0..2 {
        let node = CoordinatorNode::open(0, dir.path(), &settings, NoPeers).await.unwrap();
        node.initialize_if_first(&voters).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !node.is_leader() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: node 0 does not elect itself"));
        assert_eq!(node.leader(), Some(0));
        if round == 0 {
            let command = MetadataCommand::CreateTopic {
                name: "kept".into(),
                topic_id: Uuid::nil(),
                assignment: vec![vec![0]],
                configs: BTreeMap::new(),
            };
            node.write(command).await.unwrap();
        } else {
            // Committed before the restart: replayed from the log once the new term's first entry commits.
            tokio::time::timeout(Duration::from_secs(5), async {
                while !node.state.image().topics.contains_key("kept") {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .expect("the write survived the restart");
            // And it still takes writes.
            node.write(MetadataCommand::DeleteTopic { name: "kept".into() })
                .await
                .unwrap();
            assert!(node.state.image().topics.is_empty());
        }
        node.raft.shutdown().await.unwrap();
    }
}

#[test]
#[should_panic(expected = "applied a different entry at index 2")]
fn the_history_check_catches_a_contradiction() {
    use openraft::CommittedLeaderId;
    let id = |term, index| LogId::new(CommittedLeaderId::new(term, 1), index);
    let mut history = History::default();
    history.record(0, 1, &[(id(1, 1), "a".into()), (id(1, 2), "b".into())]);
    // A prefix and a longer agreeing history are fine; a different entry at an index is not.
    history.record(0, 2, &[(id(1, 1), "a".into())]);
    history.record(
        0,
        3,
        &[(id(1, 1), "a".into()), (id(1, 2), "b".into()), (id(2, 3), "c".into())],
    );
    history.record(0, 2, &[(id(2, 2), "x".into())]);
}
