//! The built-in canary: per KafkaCluster with `spec.canary.enabled`, the operator process itself runs
//! an acks=all idempotent producer and a consumer on the internal topic `__oxka_canary` and counts
//! what was acknowledged, read back, lost or duplicated, and how long records took.
//!
//! * `tally`: the bookkeeping, pure and unit-tested;
//! * `client`: the Kafka requests (Metadata, CreateTopics, InitProducerId, Produce, ListOffsets, Fetch);
//! * `task`: one cluster's producer loop and its per-partition consumers;
//! * `metrics`: the `oxka_canary_*` Prometheus series;
//! * here, `Canaries`: which canaries run. The reconciler calls `ensure` (start, or pass new settings)
//!   and `stop`, and reads `view`s for status. A canary whose KafkaCluster is gone or no longer wants
//!   it stops by itself (the reconciler never sees a deleted object).

pub mod client;
pub mod metrics;
pub mod tally;
pub mod task;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use metrics::{CanaryMetrics, ClusterLabels};
pub use tally::{Counts, Snapshot, Tally};
pub use task::Settings;

/// One canary's state, shared by its producer, its consumers and `Canaries`.
pub struct Shared {
    tally: Mutex<Tally>,
    /// The canary's current problem, if it has one (for `status.canary.lastError`).
    problem: Mutex<Option<String>>,
    metrics: CanaryMetrics,
    labels: ClusterLabels,
    /// What the metrics have been given so far.
    published: Mutex<Counts>,
}

impl Shared {
    /// Brings the cluster's `oxka_canary_*` series up to date with the tally.
    pub fn publish(&self) {
        let snapshot = self.tally().snapshot();
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        self.metrics.update(&self.labels, &published, &snapshot);
        *published = snapshot.counts;
    }
}

/// What the reconciler reads of one canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub snapshot: Snapshot,
    pub problem: Option<String>,
}

/// The canary's figures when a roll began, to subtract at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollBaseline {
    pub snapshot: Snapshot,
    /// False when the roll began before this canary (the operator restarted, or the canary was
    /// enabled, during the roll): the figures then cover only part of it.
    pub complete: bool,
}

struct Running {
    settings: watch::Sender<Settings>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    /// The tally when this canary started (carried totals, no latencies): the baseline of a roll
    /// whose start this canary did not see.
    started: Snapshot,
    /// When this canary started (wall clock, comparable with a roll's `startedAt`).
    started_at: k8s_openapi::jiff::Timestamp,
    roll_baseline: Option<RollBaseline>,
    /// The view `ensure` last handed out for status, and when.
    reported: Option<(tokio::time::Instant, View)>,
}

/// When the roll `begin_roll` sees began: now (the status showed none), at the status's
/// `startedAt`, or earlier than anyone can tell. The canary's figures cover the whole roll when it
/// ran before the roll began; a canary started during a roll (the operator restarted) does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollStart {
    Now,
    At(k8s_openapi::jiff::Timestamp),
    Unknown,
}

/// Every canary this operator process runs, by cluster. Owned by the reconciler's `Context`.
pub struct Canaries {
    running: Mutex<HashMap<ClusterLabels, Running>>,
    metrics: CanaryMetrics,
}

/// How often a canary checks that its KafkaCluster still wants it.
const STILL_WANTED_EVERY: Duration = Duration::from_secs(30);
/// How fresh `ensure`'s view is: the status write it causes triggers another reconciliation, which
/// must not write again at once (a loss is reported at once all the same).
const REPORT_EVERY: Duration = Duration::from_secs(9);

impl Canaries {
    pub fn new(metrics: CanaryMetrics) -> Canaries {
        Canaries {
            running: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<ClusterLabels, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the canary of `key` (its totals starting from `carried`, what an earlier operator
    /// process counted), or hands new settings to the running one. `still_wanted` is asked every 30 s;
    /// when it says no, the canary stops by itself.
    pub fn ensure<F, Fut>(&self, key: &ClusterLabels, settings: Settings, carried: Counts, still_wanted: F) -> View
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let mut running = self.running();
        if let Some(r) = running.get_mut(key).filter(|r| !r.task.is_finished()) {
            r.settings.send_if_modified(|s| {
                let changed = *s != settings;
                *s = settings.clone();
                changed
            });
            let fresh = view(r);
            if let Some((at, reported)) = &r.reported {
                if at.elapsed() < REPORT_EVERY && reported.snapshot.counts.lost == fresh.snapshot.counts.lost {
                    return reported.clone();
                }
            }
            r.reported = Some((tokio::time::Instant::now(), fresh.clone()));
            return fresh;
        }
        let shared = Arc::new(Shared {
            tally: Mutex::new(Tally::new(settings.lost_after.as_millis() as u64, carried)),
            problem: Mutex::new(Some("starting".to_string())),
            metrics: self.metrics.clone(),
            labels: key.clone(),
            published: Mutex::new(carried),
        });
        let started = shared.tally().snapshot();
        let (sender, receiver) = watch::channel(settings);
        let task = tokio::spawn(supervise(receiver, shared.clone(), still_wanted));
        tracing::info!(namespace = %key.namespace, cluster = %key.cluster, "canary started");
        let r = Running {
            settings: sender,
            shared,
            task,
            started,
            started_at: k8s_openapi::jiff::Timestamp::now(),
            roll_baseline: None,
            reported: None,
        };
        let v = view(&r);
        running.insert(key.clone(), r);
        v
    }

    /// Stops the canary of `key` and drops its series.
    pub fn stop(&self, key: &ClusterLabels) {
        if let Some(r) = self.running().remove(key) {
            r.task.abort();
            self.metrics.remove(key);
            tracing::info!(namespace = %key.namespace, cluster = %key.cluster, "canary stopped");
        }
    }

    /// The canary's figures now (`ensure` may hand out ones up to `REPORT_EVERY` old).
    pub fn view(&self, key: &ClusterLabels) -> Option<View> {
        self.running().get(key).map(view)
    }

    /// Remembers the canary's figures now as the start of a roll (kept if a roll already began).
    /// They cover the whole roll (`complete`) when this canary ran before the roll began.
    pub fn begin_roll(&self, key: &ClusterLabels, roll_started: RollStart) {
        if let Some(r) = self.running().get_mut(key) {
            if r.roll_baseline.is_none() {
                let complete = match roll_started {
                    RollStart::Now => true,
                    RollStart::At(at) => r.started_at <= at,
                    RollStart::Unknown => false,
                };
                r.roll_baseline = Some(RollBaseline {
                    snapshot: r.shared.tally().snapshot(),
                    complete,
                });
            }
        }
    }

    /// Forgets the roll's start and returns it: what `begin_roll` remembered, or else the canary's
    /// start (incomplete). `None` when the canary does not run.
    pub fn end_roll(&self, key: &ClusterLabels) -> Option<RollBaseline> {
        let mut running = self.running();
        let r = running.get_mut(key)?;
        Some(r.roll_baseline.take().unwrap_or_else(|| RollBaseline {
            snapshot: r.started.clone(),
            complete: false,
        }))
    }
}

fn view(r: &Running) -> View {
    View {
        snapshot: r.shared.tally().snapshot(),
        problem: r.shared.problem.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    }
}

/// Runs the canary, publishes its metrics every second, and ends it when its cluster no longer
/// wants it.
async fn supervise<F, Fut>(settings: watch::Receiver<Settings>, shared: Arc<Shared>, still_wanted: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let work = tokio::spawn(task::run(settings, shared.clone()));
    // When this future is aborted (`Canaries::stop`) or returns, the producer goes too (and with it
    // the consumers it holds in a JoinSet).
    let _work = AbortOnDrop(work.abort_handle());
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut checked = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        shared.publish();
        if work.is_finished() {
            break;
        }
        if checked.elapsed() >= STILL_WANTED_EVERY {
            checked = tokio::time::Instant::now();
            if !still_wanted().await {
                tracing::info!(cluster = %shared.labels.cluster, "canary no longer wanted: stopping");
                break;
            }
        }
    }
    shared.metrics.remove(&shared.labels);
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A replaced or removed canary stops.
impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}
