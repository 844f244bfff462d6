//! Start-up and shutdown of the broker role: read and validate the config, prepare the log dirs, open
//! metadata and logs (recovering what a crash left), bind listeners, run the background duties
//! (retention, flush), and on SIGTERM/SIGINT stop accepting, finish in-flight requests, flush and close.
//!
//! The parts that drive a running `Broker` from outside live here too, at the top of the dependency
//! order (nothing below imports them): `server` (listeners) and `connection` (a client's requests,
//! started with `api::start_request`, responses in order), `lifecycle` (registration, heartbeats, metadata following, controlled
//! shutdown with the controller) and `metrics_http` (the `/metrics` and `/health` endpoint).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::cluster::remote::RemoteEnsemble;
use crate::cluster::{embedded, ControllerChannel, Session};
use crate::config::{BrokerConfig, LogDefaults, RawConfig, TimestampKind};
use crate::log::{CleanerConfig, CleanupPolicy, LogCleaner, LogConfig, LogManager, TimestampType, TopicPartition};
use crate::metrics::Metrics;
use crate::util::now_ms;
mod connection;
mod jwks;
mod lifecycle;
mod metrics_http;
mod oauthbearer;
mod sasl;
mod scram;
mod sendfile;
mod server;
mod tls;
mod tls_principal;

use server::{accept_loop, bind_listeners, ListenerSecurity};

/// How long shutdown waits for in-flight requests before closing the logs anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How often group timeouts are checked: their granularity.
/// How often the transaction coordinator looks at its clocks.
const TXN_TICK_MS: u64 = 1000;
const GROUP_TICK_MS: u64 = 100;

/// Reads `server.properties` plus overrides and `KAFKA_HEAP_OPTS` into a validated config.
pub fn load_broker_config(path: &Path, overrides: &[String]) -> anyhow::Result<BrokerConfig> {
    let mut raw = RawConfig::from_file(path)?;
    for pair in overrides {
        raw.apply_override(pair)?;
    }
    let heap_opts = std::env::var("KAFKA_HEAP_OPTS").ok();
    Ok(BrokerConfig::from_raw(&raw, heap_opts.as_deref())?)
}

/// Broker-wide log defaults in the storage layer's terms.
pub fn log_config_from(d: &LogDefaults) -> anyhow::Result<LogConfig> {
    let cleanup_policy = match (
        d.cleanup_policy.contains("delete"),
        d.cleanup_policy.contains("compact"),
    ) {
        (true, true) => CleanupPolicy::CompactAndDelete,
        (false, true) => CleanupPolicy::Compact,
        _ => CleanupPolicy::Delete,
    };
    Ok(LogConfig {
        segment_bytes: d.segment_bytes,
        segment_ms: d.roll_ms,
        retention_ms: d.retention_ms,
        retention_bytes: d.retention_bytes,
        max_message_bytes: d.message_max_bytes,
        index_interval_bytes: d.index_interval_bytes,
        segment_index_bytes: d.segment_index_bytes,
        flush_messages: d.flush_interval_messages,
        flush_ms: d.flush_interval_ms,
        timestamp_type: match d.timestamp_type {
            TimestampKind::CreateTime => TimestampType::CreateTime,
            TimestampKind::LogAppendTime => TimestampType::LogAppendTime,
        },
        cleanup_policy,
        file_delete_delay_ms: d.file_delete_delay_ms,
        producer_id_expiration_ms: d.producer_id_expiration_ms,
        min_insync_replicas: d.min_insync_replicas,
        min_cleanable_dirty_ratio: d.cleaner_min_cleanable_ratio,
        delete_retention_ms: d.cleaner_delete_retention_ms,
        min_compaction_lag_ms: d.cleaner_min_compaction_lag_ms,
        max_compaction_lag_ms: d.cleaner_max_compaction_lag_ms,
        ..LogConfig::default()
    })
}

/// Runs a broker until SIGTERM or SIGINT.
pub fn run_broker(config: BrokerConfig) -> anyhow::Result<()> {
    crate::process::open_files::raise_and_log();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.num_network_threads.max(2))
        .max_blocking_threads(config.num_io_threads.max(1))
        .thread_name("oxka-broker")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let broker = start(config).await?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let ready = serve(&broker, &tasks, &shutdown).await?;
        info!(broker_id = broker.broker_id(), "{ready}");
        wait_for_signal().await;
        // As Kafka's broker: the controlled shutdown first, while every listener still serves, so a
        // client keeps writing to this broker until each partition has its new leader, and is then
        // refused with that leader named (KIP-951) instead of finding the connection closed and a
        // Metadata answer that still names this broker.
        info!("shutting down: moving partition leadership to other brokers first (controlled shutdown)");
        lifecycle::controlled_shutdown(&broker).await;
        info!("shutting down: no new connections, finishing in-flight requests");
        shutdown.cancel();
        broker.groups.shutdown();
        tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tasks.wait()).await.is_err() {
            warn!("some requests did not finish within {DRAIN_TIMEOUT:?}; closing logs anyway");
        }
        stop_membership(&broker).await;
        let broker = broker.clone();
        tokio::task::spawn_blocking(move || broker.logs.shutdown())
            .await
            .context("log shutdown task failed")?
            .context("closing logs failed")?;
        info!("shut down cleanly");
        Ok(())
    })
}

/// Opens everything the broker needs and joins the cluster, before any listener is bound: logs are
/// recovered, the controller is reached (the embedded coordinator is started when no ensemble is
/// configured), the broker is registered, has caught up with the metadata log and is unfenced.
pub async fn start(config: BrokerConfig) -> anyhow::Result<Arc<Broker>> {
    if !config.unknown_keys.is_empty() {
        warn!("ignoring unknown config keys: {}", config.unknown_keys.join(", "));
    }
    // The inter-broker listener's PEM files are read on every connection to another broker; an
    // unreadable one stops the broker here, with the reason, rather than at the first fetch.
    let inter_broker = &config.replication.inter_broker_security;
    crate::inter_broker::client_security(inter_broker)
        .map_err(|e| anyhow::anyhow!("listener {}: {e}", config.replication.inter_broker_listener))?;
    info!(
        listener = %config.replication.inter_broker_listener,
        protocol = inter_broker.protocol(),
        "connections to other brokers use the inter-broker listener"
    );
    let mut known_cluster_id = None;
    for dir in &config.log_dirs {
        if let Some(id) = prepare_log_dir(dir, config.broker_id.0)? {
            known_cluster_id.get_or_insert(id);
        }
    }
    let background = CancellationToken::new();
    let controller = match &config.coordinator_connect {
        Some(ensemble) => {
            let addresses: Vec<String> = ensemble.iter().map(|h| format!("{}:{}", h.host, h.port)).collect();
            info!("joining the coordinator ensemble at {}", addresses.join(","));
            let chroot = ["coordinator.connect", "zookeeper.connect"]
                .iter()
                .find_map(|k| config.static_settings.get(*k))
                .and_then(|v| v.split_once('/').map(|(_, path)| path.to_string()))
                .filter(|path| !path.is_empty());
            if let Some(path) = chroot {
                warn!(
                    "the chroot /{path} in zookeeper.connect is ignored: an ensemble holds one cluster's metadata, \
                     so brokers of every cluster pointed at it would join the same cluster"
                );
            }
            let tls = match &config.coordinator_tls {
                None => None,
                Some(tls) => {
                    use crate::config::keystore::{keystore_pem, truststore_pem};
                    use crate::network::secure::{tls_client_config, PemSource};
                    // JKS and PKCS12 stores as PEM (PEM files as they are).
                    let zk = |e| anyhow::anyhow!("zookeeper.ssl.*: {e}");
                    let truststore = truststore_pem(&tls.truststore).map_err(zk)?;
                    let keystore = tls.keystore.as_ref().map(keystore_pem).transpose().map_err(zk)?;
                    let config = tls_client_config(
                        Some(PemSource::Inline(&truststore)),
                        keystore.as_deref().map(PemSource::Inline),
                        tls.check_host_name,
                    )
                    .map_err(|e| anyhow::anyhow!("zookeeper.ssl.*: {e}"))?;
                    info!("connections to the coordinator ensemble use TLS (zookeeper.ssl.client.enable)");
                    Some(config)
                }
            };
            ControllerChannel::Remote(Arc::new(RemoteEnsemble::new(addresses, config.broker_id.0, tls)))
        }
        None => ControllerChannel::Embedded(embedded::start(&config, &background).await?),
    };
    let default_log_config = log_config_from(&config.log)?;
    let dirs = config.log_dirs.clone();
    let defaults = default_log_config.clone();
    let threads = config.num_recovery_threads_per_data_dir;
    let budget = crate::process::open_files::segment_file_budget(config.log_open_files_max)?;
    oxka_log::open_files::OpenFiles::global().set_budget(budget);
    info!(budget, "segment files kept open at most (log.open.files.max)");
    let logs = tokio::task::spawn_blocking(move || LogManager::open_with_threads(dirs, defaults, now_ms(), threads))
        .await
        .context("log loading task failed")?
        .context("cannot load the logs")?;
    let mut broker = Broker::new(
        config,
        default_log_config,
        logs,
        controller,
        Session::new(known_cluster_id),
        Metrics::new(),
    );
    broker.background = background.clone();
    let broker = Arc::new(broker);
    *broker.follower.lock() = Some(tokio::spawn(lifecycle::follow_metadata(
        broker.clone(),
        background.clone(),
    )));
    if let Err(e) = lifecycle::join(&broker).await {
        background.cancel();
        return Err(e);
    }
    tokio::spawn(lifecycle::run_heartbeats(broker.clone(), background.clone()));
    tokio::spawn(crate::log_dir_health::run_probes(
        broker.log_dirs.clone(),
        background.clone(),
    ));
    let cluster_id = broker.metadata.cluster_id();
    if !cluster_id.is_empty() {
        for dir in &broker.config.log_dirs {
            write_meta_properties(dir, broker.broker_id(), &cluster_id)?;
        }
    }
    // Consumer groups were loaded as this broker became leader of `__consumer_offsets` partitions
    // (`Broker::install_metadata`).
    Ok(broker)
}

/// Leaves the cluster: a controlled shutdown with the controller, then `stop_membership`.
pub async fn leave_cluster(broker: &Broker) {
    lifecycle::controlled_shutdown(broker).await;
    stop_membership(broker).await;
}

/// Stops heartbeats and metadata following (waiting for an installation in progress, so no log is
/// created or removed after this returns), the replica fetchers and the embedded coordinator. Run after in-flight requests
/// have drained: they may still need the controller.
pub async fn stop_membership(broker: &Broker) {
    broker.background.cancel();
    let follower = broker.follower.lock().take();
    if let Some(follower) = follower {
        if let Err(e) = follower.await {
            warn!("the metadata follower failed: {e}");
        }
    }
    broker.replicas.shutdown().await;
    if let ControllerChannel::Embedded(ctx) = &*broker.controller {
        if let Err(e) = ctx.node.raft.shutdown().await {
            warn!("stopping the embedded coordinator failed: {e}");
        }
    }
}

/// Binds listeners and the metrics endpoint and spawns every background task; returns a start-up line.
pub async fn serve(broker: &Arc<Broker>, tasks: &TaskTracker, shutdown: &CancellationToken) -> anyhow::Result<String> {
    let listeners = bind_listeners(broker).await?;
    let mut bound = Vec::new();
    let connections = Arc::new(Semaphore::new(
        broker.config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    for (name, socket) in listeners {
        bound.push(format!("{name}://{}", socket.local_addr()?));
        let tls = match broker.config.tls.iter().find(|t| *t.listener == *name) {
            Some(config) => {
                let tls = Arc::new(tls::Tls::new(config)?);
                tasks.spawn(tls.clone().watch(shutdown.clone()));
                Some(tls)
            }
            None => None,
        };
        let sasl = broker
            .config
            .sasl
            .iter()
            .find(|s| *s.listener == *name)
            .map(|config| sasl::SaslServer::new(config, broker.metadata.clone()).map(Arc::new))
            .transpose()
            .map_err(|e| anyhow::anyhow!("listener {name}: {e}"))?;
        tasks.spawn(accept_loop(
            broker.clone(),
            name,
            socket,
            ListenerSecurity { tls, sasl },
            connections.clone(),
            tasks.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(port) = broker.config.metrics_port {
        let socket = tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .with_context(|| format!("cannot bind metrics.port {port}; choose another port or set metrics.port=-1"))?;
        bound.push(format!("metrics http://{}", socket.local_addr()?));
        tokio::spawn(metrics_http::serve(broker.clone(), socket, shutdown.clone()));
    }
    spawn_periodic(
        broker,
        shutdown,
        broker.config.log_retention_check_interval_ms,
        "retention",
        |b| {
            let (_, failures) = b.logs.run_retention(now_ms());
            report_partition_failures(b, "retention", &failures);
        },
    );
    spawn_periodic(
        broker,
        shutdown,
        broker.config.log_flush_scheduler_interval_ms,
        "flush",
        |b| {
            let failures = b.logs.maybe_flush_all(now_ms());
            report_partition_failures(b, "flush", &failures);
        },
    );
    // Session, rebalance and initial-delay timeouts of consumer groups.
    spawn_periodic(broker, shutdown, GROUP_TICK_MS, "group timeouts", |b| b.groups.tick(b));
    // Transactions past their timeout are aborted, idle transactional ids expire (each at its own
    // configured interval; the tick only looks often enough to honour them).
    {
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(TXN_TICK_MS));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticker.tick() => broker.txns.tick(&broker).await,
                }
            }
        });
    }
    // Share partitions: expired acquisition locks released on time, changes no request writes
    // (locks expired, a leaving member's records) persisted.
    tokio::spawn(crate::share_state::timer::run(broker.clone(), shutdown.clone()));
    // Followers that stopped catching up leave the ISR (Kafka checks every half lag time).
    let replication = &broker.config.replication;
    spawn_periodic(
        broker,
        shutdown,
        (replication.lag_time_max_ms as u64 / 2).max(1),
        "ISR shrink",
        |b| b.replicas.shrink_isrs(),
    );
    spawn_periodic(
        broker,
        shutdown,
        replication.high_watermark_checkpoint_interval_ms,
        "high watermark checkpoint",
        |b| {
            if let Err(e) = b.logs.checkpoint_high_watermarks() {
                report_io_failure(b, &e);
                b.log_dirs
                    .report("checkpoint", &"writing the high-watermark checkpoints", &e);
            }
        },
    );
    // Kafka's `log.flush.offset.checkpoint.interval.ms` / `log.flush.start.offset.checkpoint.interval.ms`.
    spawn_periodic(broker, shutdown, 60_000, "offset checkpoints", |b| {
        if let Err(e) = b.logs.checkpoint_recovery_points_and_log_starts() {
            report_io_failure(b, &e);
            b.log_dirs.report(
                "checkpoint",
                &"writing the recovery-point and log-start-offset checkpoints",
                &e,
            );
        }
    });
    start_log_cleaner(broker, tasks, shutdown);
    Ok(format!(
        "oxka broker {} started, listening on {}",
        broker.broker_id(),
        bound.join(", ")
    ))
}

/// Starts the log cleaner's threads (compaction, `log.cleaner.*`). They stop when `shutdown`
/// fires; the task waiting for that is tracked, so the drain finishes it before the logs close.
fn start_log_cleaner(broker: &Arc<Broker>, tasks: &TaskTracker, shutdown: &CancellationToken) {
    let c = &broker.config;
    let config = CleanerConfig {
        enable: c.log_cleaner_enable,
        threads: c.log_cleaner_threads,
        backoff_ms: c.log_cleaner_backoff_ms,
        dedupe_buffer_size: c.log_cleaner_dedupe_buffer_size,
        io_max_bytes_per_second: c.log_cleaner_io_max_bytes_per_second,
    };
    if !config.enable {
        return;
    }
    let source = broker.clone();
    let cleaner = LogCleaner::start(config, move || source.logs.partitions().collect());
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        shutdown.cancelled().await;
        if let Err(e) = tokio::task::spawn_blocking(move || cleaner.shutdown()).await {
            warn!("stopping the log cleaner failed: {e}");
        }
    });
}

fn spawn_periodic(
    broker: &Arc<Broker>,
    shutdown: &CancellationToken,
    interval_ms: u64,
    what: &'static str,
    duty: fn(&Broker),
) {
    let broker = broker.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let b = broker.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || duty(&b)).await {
                warn!("{what} task panicked: {e}");
            }
        }
    });
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Creates a missing log dir and refuses one that belongs to another broker; returns the cluster id its
/// `meta.properties` records, if any.
fn prepare_log_dir(dir: &Path, broker_id: i32) -> anyhow::Result<Option<String>> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "log.dirs entry {} does not exist and cannot be created; create it or fix log.dirs",
            dir.display()
        )
    })?;
    let probe = dir.join(".oxka-write-probe");
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "log dir {} is not writable by this user; fix its permissions",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    let meta = read_meta_properties(dir)?;
    if let Some(existing) = meta.as_ref().and_then(|m| m.broker_id) {
        if existing != broker_id {
            bail!(
                "log dir {} belongs to broker.id={existing} (meta.properties) but this broker is broker.id={broker_id}; \
                 use that id or another log dir",
                dir.display()
            );
        }
    }
    Ok(meta.and_then(|m| m.cluster_id))
}

struct MetaProperties {
    broker_id: Option<i32>,
    cluster_id: Option<String>,
}

fn read_meta_properties(dir: &Path) -> anyhow::Result<Option<MetaProperties>> {
    let path = dir.join("meta.properties");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let raw = RawConfig::from_text(&text, &path.display().to_string())?;
    let broker_id = match raw.parse::<i32>("node.id", "an integer")? {
        Some(id) => Some(id),
        None => raw.parse::<i32>("broker.id", "an integer")?,
    };
    let cluster_id = raw.string("cluster.id").filter(|c| !c.is_empty());
    Ok(Some(MetaProperties { broker_id, cluster_id }))
}

fn write_meta_properties(dir: &Path, broker_id: i32, cluster_id: &str) -> anyhow::Result<()> {
    let path: PathBuf = dir.join("meta.properties");
    let text = format!(
        "#\n#oxka broker identity (Kafka meta.properties format)\nversion=0\nbroker.id={broker_id}\ncluster.id={cluster_id}\n"
    );
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Failures of a periodic duty over all partitions (retention, flush): each I/O failure takes its log
/// dir offline; one line per interval names the first and counts the rest.
fn report_partition_failures(broker: &Broker, duty: &str, failures: &[(TopicPartition, crate::log::LogError)]) {
    let Some((tp, first)) = failures.first() else {
        return;
    };
    for (_, e) in failures {
        report_io_failure(broker, e);
    }
    let what = if failures.len() == 1 {
        format!("{duty} of {tp}")
    } else {
        format!("{duty} of {} partitions (the first, {tp})", failures.len())
    };
    broker.log_dirs.report(duty, &what, first);
}

/// A checkpoint that could not be written takes its log dir offline, as a failed append does.
fn report_io_failure(broker: &Broker, error: &crate::log::LogError) {
    if let crate::log::LogError::Io { path, .. } = error {
        broker.log_dirs.write_failed(path, error);
    }
}
