//! `oxka coordinator zookeeper.properties`: start-up and shutdown of the coordinator role.
//!
//! Start: validate the config, open the Raft log and snapshot under `dataDir`, start Raft, bind the peer
//! port (ensembles only), `clientPort` and the metrics port, then initialize the membership on first
//! start (only the lowest id does; the others are contacted by it). Stop (SIGTERM/SIGINT): stop accepting,
//! let connections finish the request in flight, shut Raft down (its log and vote are already durable).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::kafka::{fence_expired_brokers, rebalance_leaders, serve_clients, ClientContext};
use super::metrics::{serve_http, watch_raft};
use super::network::{serve_peers, TcpNetworkFactory};
use super::node::{CoordinatorNode, RaftSettings};
use super::{Node, NodeId};
use oxka_config::CoordinatorConfig;
use oxka_protocol::network::MemoryBudget;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a coordinator until SIGTERM or SIGINT.
pub fn run_coordinator(config: CoordinatorConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("oxka-coordinator")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let _lock = lock_data_dir(&config.data_dir)?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (node, ready) = start(&config, &tasks, &shutdown).await?;
        info!(coordinator_id = config.id.0, "{ready}");
        wait_for_signal().await;
        info!("shutting down: no new connections, finishing in-flight requests");
        shutdown.cancel();
        tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tasks.wait()).await.is_err() {
            warn!("some requests did not finish within {DRAIN_TIMEOUT:?}");
        }
        node.raft.shutdown().await.ok();
        info!("shut down cleanly");
        Ok(())
    })
}

/// Takes `dataDir/.lock` for the life of the process, so two coordinators never share one Raft log.
pub fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "dataDir {} does not exist and cannot be created; create it or fix dataDir",
            dir.display()
        )
    })?;
    let path = dir.join(".lock");
    let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        anyhow::anyhow!(
            "dataDir {} is in use by another coordinator ({errno}); give each coordinator its own dataDir",
            dir.display()
        )
    })
}

/// The voters as openraft's membership: id → peer address.
pub fn membership(config: &CoordinatorConfig) -> BTreeMap<NodeId, Node> {
    config
        .voters
        .values()
        .map(|v| (v.id.0, Node::new(v.peer_address().unwrap_or_default())))
        .collect()
}

/// Opens storage, starts Raft and binds every listener; returns the node and a start-up line.
pub async fn start(
    config: &CoordinatorConfig,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<(CoordinatorNode, String)> {
    if !config.unknown_keys.is_empty() {
        warn!("ignoring unknown config keys: {}", config.unknown_keys.join(", "));
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "dataDir {} does not exist and cannot be created; create it or fix dataDir",
            config.data_dir.display()
        )
    })?;
    let settings = RaftSettings {
        heartbeat_interval_ms: config.heartbeat_interval_ms,
        election_timeout_ms: config.election_timeout_ms,
        snapshot_every_entries: config.snapshot_every_entries,
        write_timeout: Duration::from_millis(config.write_timeout_ms),
        sync: true,
    };
    let (peer_client_tls, peer_server_tls) = match &config.quorum_tls {
        None => (None, None),
        Some(tls) => {
            use oxka_config::keystore::{keystore_pem, truststore_pem};
            use oxka_protocol::network::secure::{mutual_tls_server_config, tls_client_config, PemSource};
            // JKS and PKCS12 stores as PEM (PEM files as they are).
            let keystore = keystore_pem(&tls.keystore).map_err(|e| anyhow::anyhow!("sslQuorum: {e}"))?;
            let truststore = truststore_pem(&tls.truststore).map_err(|e| anyhow::anyhow!("sslQuorum: {e}"))?;
            let client = tls_client_config(
                Some(PemSource::Inline(&truststore)),
                Some(PemSource::Inline(&keystore)),
                tls.hostname_verification,
            )
            .map_err(|e| anyhow::anyhow!("sslQuorum: {e}"))?;
            let server = mutual_tls_server_config(PemSource::Inline(&keystore), PemSource::Inline(&truststore))
                .map_err(|e| anyhow::anyhow!("sslQuorum: {e}"))?;
            info!("Raft between coordinators over TLS (sslQuorum=true)");
            (Some(client), Some(server))
        }
    };
    let network = TcpNetworkFactory { tls: peer_client_tls };
    let node = CoordinatorNode::open(config.id.0, &config.data_dir, &settings, network).await?;
    let mut bound = Vec::new();
    if let Some(peer_port) = config.me().peer_port {
        let socket = TcpListener::bind(("0.0.0.0", peer_port)).await.with_context(|| {
            format!(
                "cannot listen on the peer port {peer_port} of server.{}; is another coordinator running there?",
                config.id
            )
        })?;
        bound.push(format!("peers {}", socket.local_addr()?));
        tokio::spawn(serve_peers(
            socket,
            node.raft.clone(),
            peer_server_tls,
            shutdown.clone(),
        ));
    }
    let client = TcpListener::bind(config.client_bind_address()).await.with_context(|| {
        format!(
            "cannot listen on clientPort {} ({}); is ZooKeeper or another coordinator running there?",
            config.client_port,
            config.client_bind_address()
        )
    })?;
    bound.push(format!("clients {}", client.local_addr()?));
    let ctx = Arc::new(
        ClientContext::new(node.clone(), config.voters.clone(), config.broker_session_timeout_ms)
            .with_shutdown(shutdown.clone()),
    );
    let budget = Arc::new(MemoryBudget::new(config.heap_bytes));
    if let Some(secure) = &config.secure_client_port {
        use oxka_config::ensemble_tls::ClientAuth;
        use oxka_config::keystore::{keystore_pem, truststore_pem};
        use oxka_protocol::network::secure::{tls_server_config, PemSource};
        let keystore = keystore_pem(&secure.keystore).map_err(|e| anyhow::anyhow!("secureClientPort: {e}"))?;
        let truststore = match secure
            .truststore
            .as_ref()
            .filter(|_| secure.client_auth != ClientAuth::None)
        {
            Some(store) => Some(truststore_pem(store).map_err(|e| anyhow::anyhow!("secureClientPort: {e}"))?),
            None => None,
        };
        let tls = tls_server_config(
            PemSource::Inline(&keystore),
            truststore.as_deref().map(PemSource::Inline),
            secure.client_auth == ClientAuth::Need,
        )
        .map_err(|e| anyhow::anyhow!("secureClientPort: {e}"))?;
        let host = if config.client_bind_host.is_empty() {
            "0.0.0.0"
        } else {
            &config.client_bind_host
        };
        let socket = TcpListener::bind(oxka_config::join_host_port(host, secure.port))
            .await
            .with_context(|| format!("cannot listen on secureClientPort {}", secure.port))?;
        bound.push(format!("TLS clients {}", socket.local_addr()?));
        tasks.spawn(serve_clients(
            ctx.clone(),
            socket,
            Some(tls),
            config.max_client_connections,
            budget.clone(),
            tasks.clone(),
            shutdown.clone(),
        ));
    }
    tasks.spawn(serve_clients(
        ctx.clone(),
        client,
        None,
        config.max_client_connections,
        budget,
        tasks.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(ctx.clone().track_replication(shutdown.clone()));
    tokio::spawn(fence_expired_brokers(ctx.clone(), shutdown.clone()));
    tokio::spawn(rebalance_leaders(ctx.clone(), config.leader_balance, shutdown.clone()));
    tokio::spawn(watch_raft(node.raft.clone(), node.metrics.clone(), shutdown.clone()));
    if let Some(port) = config.metrics_port {
        let socket = TcpListener::bind(("0.0.0.0", port))
            .await
            .with_context(|| format!("cannot bind metrics.port {port}; choose another port or set metrics.port=-1"))?;
        bound.push(format!("metrics http://{}", socket.local_addr()?));
        let client_addresses = config.voters.values().map(|v| (v.id.0, v.client_address())).collect();
        tokio::spawn(serve_http(
            socket,
            node.metrics.clone(),
            node.raft.clone(),
            Arc::new(client_addresses),
            shutdown.clone(),
        ));
    }
    node.initialize_if_first(&membership(config)).await?;
    tokio::spawn(node.clone().run_controller_duties(shutdown.clone()));
    let line = format!(
        "oxka coordinator {} started ({} voter{}), listening on {}",
        config.id,
        config.voters.len(),
        if config.voters.len() == 1 { "" } else { "s" },
        bound.join(", ")
    );
    Ok((node, line))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
