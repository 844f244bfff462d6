//! The broker's life in the cluster (KIP-631's broker lifecycle): register with the controller, follow
//! the metadata log, heartbeat, get unfenced once caught up, and at shutdown ask to be shut down in a
//! controlled way (leadership moves before the process goes).
//!
//! The same code runs against the embedded coordinator and a remote ensemble; only the
//! `ControllerChannel` differs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{
    ApiKey, BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::cluster::Lane;
use crate::util::{ExponentialBackoff, RateLimitedLog};

/// How long one metadata long-poll waits for news.
const FETCH_WAIT: Duration = Duration::from_secs(5);
/// Pause after a failed metadata fetch: 100 ms doubling (with jitter) up to 5 s.
const FETCH_BACKOFF: Duration = Duration::from_millis(100);
const FETCH_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Registration retries: 100 ms doubling up to 2 s (registration has a deadline of its own).
const REGISTER_BACKOFF: Duration = Duration::from_millis(100);
const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often a failure that goes on (metadata fetches, heartbeats) is logged again, with a count.
const REPORT_INTERVAL: Duration = Duration::from_secs(30);
/// How long one shutdown heartbeat may take (the controller moves leadership before answering).
const SHUTDOWN_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a controlled shutdown keeps asking.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Kafka's security protocol id for PLAINTEXT, the only one served.
const PLAINTEXT: i16 = 0;

/// Joins the cluster: registers, catches up with the metadata log and waits until the controller has
/// unfenced this broker and given back leadership of its partitions. Fails with the reason when that
/// does not happen within `initial.broker.registration.timeout.ms`. The metadata follower must run.
pub async fn join(broker: &Broker) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(broker.config.initial_registration_timeout_ms);
    let deadline = Instant::now() + timeout;
    register(broker, deadline).await?;
    let me = broker.broker_id();
    let mut newer_metadata = broker.metadata.subscribe();
    loop {
        let heartbeat = heartbeat(broker, false).await;
        if !broker.session.is_fenced() {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "broker {me} registered with {} but was not unfenced within {timeout:?} (last heartbeat: {}); \
                 is the coordinator ensemble healthy?",
                broker.controller.describe(),
                heartbeat.err().unwrap_or_else(|| if broker.log_dirs.any_offline() {
                    format!("a log dir is offline: {:?}", broker.log_dirs.offline_dirs())
                } else {
                    "still catching up with the metadata log".into()
                })
            );
        }
        // The controller unfences a broker once its heartbeat says it has caught up with the metadata
        // log up to its registration: heartbeat again as soon as newer metadata is installed, or after
        // 100 ms (a fixed 100 ms pause cost every cold start 100 ms).
        if let Ok(Err(_)) = tokio::time::timeout(Duration::from_millis(100), newer_metadata.changed()).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The first block of producer ids, fetched now rather than by the first InitProducerId (which would
    // then wait for the controller).
    broker.producer_ids.prefetch();
    let led_again = broker
        .metadata
        .wait_until(deadline.saturating_duration_since(Instant::now()), |image| {
            !image.cluster_id.is_empty()
                && image.brokers.get(&me).is_some_and(|b| !b.fenced)
                && image
                    .topics
                    .values()
                    .flat_map(|t| &t.partitions)
                    .all(|p| p.leader >= 0 || !p.isr.contains(&me))
        })
        .await;
    if !led_again {
        warn!("some partitions this broker hosts have no leader yet; clients retry until the controller elects one");
    }
    Ok(())
}

/// Registers (or re-registers) this broker, retrying until `deadline`.
async fn register(broker: &Broker, deadline: Instant) -> anyhow::Result<()> {
    let me = broker.broker_id();
    let mut last_problem;
    let mut warned_duplicate = false;
    let backoff = ExponentialBackoff::new(REGISTER_BACKOFF, REGISTER_BACKOFF_MAX);
    let mut attempts = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = RequestKind::BrokerRegistration(registration_request(broker));
        let answer = broker
            .controller
            .send(
                Lane::Lifecycle,
                ApiKey::BrokerRegistration,
                0,
                request,
                left.min(Duration::from_secs(10)),
            )
            .await;
        match answer {
            Ok(ResponseKind::BrokerRegistration(r)) if r.error_code == 0 => {
                broker.session.epoch.store(r.broker_epoch, Ordering::Release);
                broker.session.fenced.store(true, Ordering::Release);
                info!(
                    broker_epoch = r.broker_epoch,
                    "registered with {}",
                    broker.controller.describe()
                );
                return Ok(());
            }
            Ok(ResponseKind::BrokerRegistration(r)) => {
                let code = r.error_code;
                if code == ResponseError::InconsistentClusterId.code() {
                    bail!(
                        "the log dirs of broker {me} belong to cluster {} (meta.properties), but {} serves another \
                         cluster; point zookeeper.connect at the right ensemble, or use empty log dirs to join this one",
                        broker.session.known_cluster_id.as_deref().unwrap_or("?"),
                        broker.controller.describe()
                    );
                }
                if code == ResponseError::DuplicateBrokerRegistration.code() {
                    last_problem = format!(
                        "broker.id={me} is already registered by another running broker (the coordinator refuses a \
                         second broker with the same id while the first one heartbeats); give every broker its own \
                         broker.id"
                    );
                    if !warned_duplicate {
                        warn!("{last_problem}; retrying in case that broker is this one's previous, dead process");
                        warned_duplicate = true;
                    }
                } else {
                    last_problem = format!("registration refused with error code {code}");
                }
            }
            Ok(other) => last_problem = format!("unexpected answer to BrokerRegistration: {other:?}"),
            Err(problem) => last_problem = problem,
        }
        let pause = backoff.delay(attempts);
        attempts = attempts.saturating_add(1);
        if Instant::now() + pause >= deadline {
            bail!(
                "broker {me} could not register with {} within initial.broker.registration.timeout.ms: {last_problem}",
                broker.controller.describe()
            );
        }
        tokio::time::sleep(pause).await;
    }
}

fn registration_request(broker: &Broker) -> BrokerRegistrationRequest {
    let listeners = broker
        .config
        .advertised_listeners
        .iter()
        .map(|l| {
            Listener::default()
                .with_name(StrBytes::from_string(l.name.clone()))
                .with_host(StrBytes::from_string(l.host.clone()))
                .with_port(l.port)
                .with_security_protocol(PLAINTEXT)
        })
        .collect();
    BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(broker.broker_id()))
        .with_cluster_id(StrBytes::from_string(
            broker.session.known_cluster_id.clone().unwrap_or_default(),
        ))
        .with_incarnation_id(broker.session.incarnation_id)
        .with_listeners(listeners)
        .with_rack(
            broker
                .config
                .rack
                .as_deref()
                .map(|r| StrBytes::from_string(r.to_string())),
        )
}

/// One heartbeat. Re-registers when the controller no longer knows this broker's epoch (it was fenced
/// and re-registered elsewhere, or the ensemble lost it). Returns the problem when there was one.
async fn heartbeat(broker: &Broker, want_shut_down: bool) -> Result<bool, String> {
    let want_shut_down = want_shut_down || broker.session.shutting_down.load(Ordering::Acquire);
    let want_fence = !want_shut_down && wants_out_of_service(broker);
    let request = BrokerHeartbeatRequest::default()
        .with_broker_id(BrokerId(broker.broker_id()))
        .with_broker_epoch(broker.session.epoch())
        .with_current_metadata_offset(broker.metadata.offset() as i64)
        .with_want_fence(want_fence)
        .with_want_shut_down(want_shut_down);
    // A shutdown heartbeat waits for the controller to move leadership (several metadata writes).
    let timeout = if want_shut_down {
        SHUTDOWN_HEARTBEAT_TIMEOUT
    } else {
        Duration::from_millis(broker.config.broker_heartbeat_interval_ms.max(1000) * 2)
    };
    let answer = broker
        .controller
        .send(
            Lane::Lifecycle,
            ApiKey::BrokerHeartbeat,
            0,
            RequestKind::BrokerHeartbeat(request),
            timeout,
        )
        .await?;
    let ResponseKind::BrokerHeartbeat(response) = answer else {
        return Err(format!("unexpected answer to BrokerHeartbeat: {answer:?}"));
    };
    let code = response.error_code;
    if code == ResponseError::StaleBrokerEpoch.code() || code == ResponseError::BrokerIdNotRegistered.code() {
        warn!("the controller no longer knows this broker's epoch (error {code}); registering again");
        let deadline = Instant::now() + Duration::from_secs(10);
        return register(broker, deadline)
            .await
            .map(|_| false)
            .map_err(|e| e.to_string());
    }
    if code != 0 {
        return Err(format!("heartbeat refused with error code {code}"));
    }
    let was_fenced = broker.session.fenced.swap(response.is_fenced, Ordering::AcqRel);
    match (was_fenced, response.is_fenced) {
        (true, false) => info!("unfenced by the controller: serving"),
        (false, true) if want_fence => warn!(
            "fenced by the controller at this broker's request: a log dir is offline, so its partitions \
             move to other brokers until the dir takes writes again"
        ),
        (false, true) if !want_shut_down => warn!("fenced by the controller"),
        _ => {}
    }
    Ok(response.should_shut_down)
}

/// Whether this broker should ask to be fenced: a log dir failed a write (`log_dir_health`) and another
/// live broker can take over its partitions. The last live broker stays in service (fencing it would only
/// take every partition offline); its appends fail with KAFKA_STORAGE_ERROR until the dir recovers.
fn wants_out_of_service(broker: &Broker) -> bool {
    if !broker.log_dirs.any_offline() {
        return false;
    }
    let me = broker.broker_id();
    broker
        .metadata
        .image()
        .brokers
        .values()
        .any(|b| b.broker_id != me && !b.fenced)
}

/// Heartbeats every `broker.heartbeat.interval.ms` until `stop`.
pub async fn run_heartbeats(broker: Arc<Broker>, stop: CancellationToken) {
    // Heartbeats keep their interval while they fail (the controller fences a broker whose heartbeats
    // stop for broker.session.timeout.ms, so backing off would only get it fenced); the failure is logged
    // once per REPORT_INTERVAL with a count.
    let interval = Duration::from_millis(broker.config.broker_heartbeat_interval_ms);
    let problems = RateLimitedLog::new(REPORT_INTERVAL);
    let mut failed = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match heartbeat(&broker, false).await {
            Ok(_) if failed > 0 => {
                info!("heartbeats reach the controller again ({failed} failed)");
                failed = 0;
            }
            Ok(_) => {}
            Err(problem) => {
                failed += 1;
                if let Some(count) = problems.should_log(&problem) {
                    warn!(
                        "heartbeat failed: {problem}; retrying every {interval:?}{}",
                        problems.repeats(count)
                    );
                }
            }
        }
    }
}

/// Follows the metadata log until `stop`: long-polls for newer images and installs them.
pub async fn follow_metadata(broker: Arc<Broker>, stop: CancellationToken) {
    let backoff = ExponentialBackoff::new(FETCH_BACKOFF, FETCH_BACKOFF_MAX);
    let problems = RateLimitedLog::new(REPORT_INTERVAL);
    let mut failed = 0u32;
    loop {
        let after = broker.metadata.offset();
        let update = tokio::select! {
            _ = stop.cancelled() => return,
            update = broker.controller.fetch_metadata(after, FETCH_WAIT) => update,
        };
        match update {
            Ok(update) => {
                if failed > 0 {
                    info!("metadata fetches work again ({failed} failed)");
                    failed = 0;
                }
                if let Some(image) = update.image {
                    broker.install_metadata(update.offset, image).await;
                } else if let Some(delta) = update.delta {
                    // The delta turns the image at `after` into the one at `update.offset`. Only this
                    // loop installs metadata, so the view is still at `after`; if it were not, the
                    // next fetch would start from where it is.
                    let (offset, base) = broker.metadata.offset_and_image();
                    if offset == after {
                        let mut image = Arc::unwrap_or_clone(base);
                        delta.apply_to(&mut image);
                        broker.install_metadata(update.offset, Arc::new(image)).await;
                    }
                }
                broker.retry_following_metadata().await;
            }
            Err(problem) => {
                if let Some(count) = problems.should_log(&problem) {
                    warn!(
                        "cannot fetch metadata from {}: {problem}; retrying with backoff up to {FETCH_BACKOFF_MAX:?}{}",
                        broker.controller.describe(),
                        problems.repeats(count)
                    );
                }
                let pause = backoff.delay(failed);
                failed = failed.saturating_add(1);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Controlled shutdown: tells the controller this broker is going, so leadership moves at once instead
/// of after the session timeout. Best effort: a controller that cannot be reached fences it later.
pub async fn controlled_shutdown(broker: &Broker) {
    if broker.session.epoch() < 0 {
        return;
    }
    if matches!(*broker.controller, crate::cluster::ControllerChannel::Embedded(_)) {
        // A single-node cluster has no other broker to move leadership to: making its partitions
        // leaderless for the last moments of the process would only have clients (and group members
        // looking for their coordinator) see errors and back off. The next start registers afresh.
        return;
    }
    broker.session.shutting_down.store(true, Ordering::Release);
    // Asked again until the controller confirms (it answers an error while it cannot move leadership
    // yet, say during an election), for at most CONTROLLED_SHUTDOWN_TIMEOUT.
    let deadline = Instant::now() + CONTROLLED_SHUTDOWN_TIMEOUT;
    let backoff = ExponentialBackoff::new(REGISTER_BACKOFF, REGISTER_BACKOFF_MAX);
    let mut attempts = 0u32;
    loop {
        let problem = match heartbeat(broker, true).await {
            Ok(true) => {
                info!("controlled shutdown: the controller moved leadership away");
                return;
            }
            Ok(false) => "the controller has not confirmed yet".to_string(),
            Err(problem) => problem,
        };
        let pause = backoff.delay(attempts);
        attempts = attempts.saturating_add(1);
        if Instant::now() + pause >= deadline {
            warn!(
                "controlled shutdown not confirmed within {CONTROLLED_SHUTDOWN_TIMEOUT:?} ({problem}); the \
                 controller fences this broker after its session timeout"
            );
            return;
        }
        tokio::time::sleep(pause).await;
    }
}
