//! One reconciliation of one KafkaCluster: read the StatefulSets, decide what may change (pause,
//! scale-down safety, coordinators before brokers), apply the rendered objects with server-side apply,
//! record Events for what changed and why, and write status.
//!
//! Rolling restarts: every pod template carries the hash of its role's rendered config (and the
//! `oxka.io/restart` annotation), so a config change, an image change or a restart request makes a new
//! StatefulSet revision. Both StatefulSets use `updateStrategy: OnDelete`: the operator restarts the
//! pods itself, one per reconciliation at most, health-gated (`rolling`, `roll`). Coordinators roll
//! first, the Raft leader last; broker changes are held until the coordinator StatefulSet runs its
//! latest revision on every pod and all are Ready; then brokers roll, each only when Kafka says every
//! partition keeps `min.insync.replicas` without it and after the previous one is back in every ISR.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::canary_step::{canary_key, canary_step, roll_record};
use super::cluster_certs::{self, CertsError};
use super::http::Metrics;
use super::racks;
use super::rolling;
use super::scale_down;
use super::spreading;
use super::status::{status, Hold, Observed, RollReport, Rollout};
use crate::canary::Canaries;
use crate::crd::{KafkaCluster, KafkaClusterStatus, PAUSE_ANNOTATION};
use crate::render::{render, RenderError, RenderOptions, Role, Tier, CONFIG_HASH_ANNOTATION, MANAGER};

/// Shared by every reconciliation; built once by `run`.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub cluster_domain: String,
    /// Where the operator reaches a cluster's brokers (placement, the roll's ISR checks, KafkaTopics);
    /// see `RunArgs::kafka_bootstrap_template` and `kafka_address`.
    pub kafka_bootstrap_template: String,
    /// A pod on the new revision not Ready for longer than this stops a roll.
    pub roll_ready_timeout: Duration,
    /// How long a pod must have been Ready before the next one restarts.
    pub roll_settle: Duration,
    /// How old the youngest broker pod must be before the next broker restarts (clients' DNS caches).
    pub roll_address_settle: Duration,
    /// How often a Ready KafkaTopic is compared with Kafka again (drift detection).
    pub topic_resync: Duration,
    /// The built-in canaries this process runs (`spec.canary`).
    pub canaries: Arc<Canaries>,
    /// Clusters (`namespace/name`) whose drain this process has seen under way: a drain that ends
    /// within one reconciliation may end before its `status.drain` is read back.
    pub drains: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Clusters (`namespace/name`) this process has seen rolling (some pod on an older revision), until
    /// the roll is done: only a roll under way reports waiting for a pod with nothing left to restart.
    pub rolls: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The last roll this process recorded as finished, per cluster (see `canary_step::roll_record`).
    pub finished_rolls:
        std::sync::Mutex<std::collections::HashMap<crate::canary::ClusterLabels, crate::crd::LastRollStatus>>,
}

impl Context {
    /// The Kafka admin address of a cluster: the bootstrap template with its placeholders filled.
    pub fn kafka_address(&self, cluster: &KafkaCluster, namespace: &str) -> String {
        self.kafka_bootstrap_template
            .replace("{name}", &cluster.name_any())
            .replace("{namespace}", namespace)
            .replace("{domain}", &self.cluster_domain)
            .replace(
                "{port}",
                &crate::render::security::operator_port(&cluster.spec).to_string(),
            )
    }
}

/// Why a reconciliation failed; the controller retries after `error_policy`'s delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {kind} {name} failed: {source}")]
    Read {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("applying {kind} {name} failed: {source}")]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("deleting {name}, which the spec no longer needs, failed: {source}")]
    Prune { name: String, source: kube::Error },
    #[error("deleting pod {pod} to restart it on the new revision failed: {source}")]
    Restart { pod: String, source: kube::Error },
    #[error("writing the status of KafkaCluster {name} failed: {source}")]
    Status { name: String, source: kube::Error },
    #[error("rendering failed: {0}")]
    Render(#[from] RenderError),
    #[error("the cluster's certificates: {0}")]
    Certs(#[from] CertsError),
}

/// Requeue interval while something is still moving (scale-down waiting, pods starting).
const BUSY_REQUEUE: Duration = Duration::from_secs(10);
/// Requeue interval during a roll: ISR changes raise no Kubernetes event, so they are polled.
const ROLL_REQUEUE: Duration = Duration::from_secs(5);
const IDLE_REQUEUE: Duration = Duration::from_secs(300);
/// Requeue interval while the canary runs: how fresh `status.canary` is.
const CANARY_REQUEUE: Duration = Duration::from_secs(10);

pub async fn reconcile(cluster: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_cluster(&cluster, &ctx).await;
    ctx.metrics.duration.observe(started.elapsed().as_secs_f64());
    if result.is_err() {
        ctx.metrics.errors.inc();
    }
    result
}

pub fn error_policy(cluster: Arc<KafkaCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let _ = ctx;
    tracing::warn!(cluster = %cluster.name_any(), namespace = ?cluster.namespace(), "reconcile failed: {error}");
    Action::requeue(Duration::from_secs(15))
}

async fn reconcile_cluster(cluster: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    let name = cluster.name_any();
    let namespace = cluster.namespace().unwrap_or_else(|| "default".to_string());
    if cluster.metadata.deletion_timestamp.is_some() {
        ctx.canaries.stop(&canary_key(&namespace, &name));
        super::kafka_security::forget(&format!("{namespace}/{name}"));
        // Children carry owner references: the garbage collector removes them.
        return Ok(Action::await_change());
    }
    let canary = canary_step(ctx, cluster, &namespace).await;
    let stateful_sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing_coordinators = get(&stateful_sets, &format!("{name}-coordinator")).await?;
    let existing_brokers = get(&stateful_sets, &format!("{name}-broker")).await?;
    let previous = cluster.status.clone();
    let mut holds = Vec::new();

    if cluster.annotations().get(PAUSE_ANNOTATION).map(String::as_str) == Some("true") {
        if !has_reason(previous.as_ref(), "Progressing", "ReconciliationPaused") {
            publish(
                ctx,
                cluster,
                EventType::Normal,
                "Paused",
                "Pause",
                format!("{PAUSE_ANNOTATION}=true: the operator changes nothing until the annotation is removed"),
            )
            .await;
        }
        holds.push(Hold::Paused);
        let mut observed = observe(
            cluster,
            existing_coordinators.as_ref(),
            existing_brokers.as_ref(),
            None,
            holds,
        );
        observed.canary = canary;
        write_status(ctx, cluster, &observed).await?;
        return Ok(Action::requeue(idle(&observed)));
    }

    // An invalid spec changes nothing; the reason goes to status and an Event. Invalid includes
    // overrides that render a file the broker or coordinator would refuse at start-up.
    if let Some(invalid) = refusal(cluster, &ctx.cluster_domain) {
        let why = format!("{invalid}; the running pods are left as they are");
        if !has_message(previous.as_ref(), "Degraded", &why) {
            publish(ctx, cluster, EventType::Warning, "InvalidSpec", "Validate", why.clone()).await;
        }
        holds.push(Hold::InvalidSpec(why));
        let mut observed = observe(
            cluster,
            existing_coordinators.as_ref(),
            existing_brokers.as_ref(),
            None,
            holds,
        );
        observed.canary = canary;
        write_status(ctx, cluster, &observed).await?;
        return Ok(Action::requeue(idle(&observed)));
    }

    // Scale-down only when the brokers to remove hold no data; until then the operator drains them
    // (reassigns their partitions) and keeps the current count.
    let mut options = RenderOptions {
        cluster_domain: ctx.cluster_domain.clone(),
        ..RenderOptions::default()
    };
    let address = ctx.kafka_address(cluster, &namespace);
    let current_brokers = existing_brokers.as_ref().and_then(|s| s.spec.as_ref()?.replicas);
    if let Some(current) = current_brokers.filter(|c| *c > cluster.spec.brokers.replicas) {
        if let Some(kept) = scale_down::reconcile(ctx, cluster, previous.as_ref(), &address, current, &mut holds).await
        {
            options.broker_replicas = Some(kept);
        }
    } else {
        // No scale-down (any more): a drain abandoned by raising the replicas back is forgotten, so that
        // a later scale-down that needs no drain publishes no DrainFinished for it.
        scale_down::forget_drain(ctx, cluster);
    }

    // oxka.io/rebalance: spread, once no scale-down is under way.
    if spreading::requested(cluster) && current_brokers.is_none_or(|c| c == cluster.spec.brokers.replicas) {
        spreading::reconcile(ctx, cluster, previous.as_ref(), &address, &mut holds).await?;
    }

    // broker.rack per broker, from the nodes the broker pods were scheduled on (per-pod files only:
    // the StatefulSet template and its config hash never depend on it).
    if let Some(rack) = &cluster.spec.rack {
        let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
        let config_map_name = format!("{name}-broker-config");
        let live = config_maps
            .get_opt(&config_map_name)
            .await
            .map_err(|source| Error::Read {
                kind: "ConfigMap",
                name: config_map_name,
                source,
            })?;
        let racks = racks::observe(&ctx.client, &namespace, &name, &rack.topology_key, live.as_ref()).await;
        options.racks = racks.racks;
        if !racks.problems.is_empty() {
            let why = racks.problems.join("; ");
            if !has_message(previous.as_ref(), "Degraded", &why) {
                publish(ctx, cluster, EventType::Warning, "RackUnknown", "ReadRack", why.clone()).await;
            }
            holds.push(Hold::RackUnknown(why));
        }
    }

    // A secured cluster's CA and certificates, before anything that mounts or trusts them.
    let cert_brokers = current_brokers.unwrap_or(0).max(cluster.spec.brokers.replicas);
    match cluster_certs::ensure(ctx, cluster, &namespace, cert_brokers, vec![address.clone()]).await {
        Ok(ready) => options.certificates_hash = ready.map(|r| r.hash),
        Err(CertsError::UserSecret(why)) => {
            let why = format!("{why}; the running pods are left as they are");
            if !has_message(previous.as_ref(), "Degraded", &why) {
                publish(
                    ctx,
                    cluster,
                    EventType::Warning,
                    "InvalidSpec",
                    "Certificates",
                    why.clone(),
                )
                .await;
            }
            holds.push(Hold::InvalidSpec(why));
            let mut observed = observe(
                cluster,
                existing_coordinators.as_ref(),
                existing_brokers.as_ref(),
                None,
                holds,
            );
            observed.canary = canary;
            write_status(ctx, cluster, &observed).await?;
            return Ok(Action::requeue(BUSY_REQUEUE));
        }
        Err(e) => return Err(Error::Certs(e)),
    }

    let objects = render(cluster, &options)?;
    // The inter-broker listener of a secured cluster is PLAINTEXT (ANONYMOUS): with an authorizer,
    // ANONYMOUS needs CLUSTER_ACTION for followers' Fetch. Best effort: the brokers retry until it exists.
    // Once per cluster and process: CreateAcls of an existing binding changes nothing but is still a
    // metadata log entry.
    let grant_key = format!("{namespace}/{name}");
    if cluster.spec.authorization.is_some()
        && existing_brokers.is_some()
        && !super::kafka_security::replication_granted(&grant_key)
    {
        if let Err(e) = super::user_admin::grant_replication(&address).await {
            // Debug: an unreachable cluster is reported by the roll and the canary already, and this runs
            // every reconciliation.
            tracing::debug!(cluster = %name, "granting ANONYMOUS CLUSTER_ACTION for replication not done yet: {e}");
        } else {
            super::kafka_security::set_replication_granted(&grant_key);
        }
    }

    let coordinators = apply_tier(
        ctx,
        cluster,
        &namespace,
        &objects.coordinators,
        existing_coordinators.as_ref(),
        true,
    )
    .await?;
    let coordinator_rollout = Rollout::from_stateful_set(&coordinators);
    // A roll is under way once some pod was found on an older revision, until every pod runs the
    // current one and is Ready; a pod merely re-created (deleted, evicted, a new replica) is no roll.
    let roll_key = format!("{namespace}/{name}");
    let rolls = || ctx.rolls.lock().unwrap_or_else(|e| e.into_inner());
    let under_way = previous.as_ref().is_some_and(|s| s.roll.is_some()) || rolls().contains(&roll_key);
    let mut roll = if existing_coordinators.is_some() {
        rolling::step(
            ctx,
            cluster,
            &namespace,
            Role::Coordinator,
            &coordinators,
            &address,
            under_way,
        )
        .await?
    } else {
        None
    };
    let brokers = match existing_brokers {
        Some(existing) if !coordinator_rollout.settled() => {
            apply_tier(ctx, cluster, &namespace, &objects.brokers, Some(&existing), false).await?;
            holds.push(Hold::WaitingForCoordinators);
            existing
        }
        existing => {
            let created = existing.is_none();
            let brokers = apply_tier(ctx, cluster, &namespace, &objects.brokers, existing.as_ref(), true).await?;
            prune_services(ctx, &namespace, &name, &objects.brokers).await?;
            if !created && roll.is_none() {
                roll = rolling::step(ctx, cluster, &namespace, Role::Broker, &brokers, &address, under_way).await?;
            }
            brokers
        }
    };
    match &roll {
        Some(r) if !r.pods_left.is_empty() => {
            rolls().insert(roll_key);
        }
        Some(_) => {}
        None => {
            rolls().remove(&roll_key);
        }
    }
    report_stuck(ctx, cluster, previous.as_ref(), roll.as_ref()).await;
    let finished_roll = roll_record(ctx, cluster, &namespace, previous.as_ref(), roll.as_ref(), &holds).await;

    let observed = Observed {
        generation: cluster.metadata.generation,
        coordinators: coordinator_rollout,
        brokers: Rollout::from_stateful_set(&brokers),
        coordinator_hash: Some(objects.coordinators.config_hash.clone()),
        broker_hash: Some(objects.brokers.config_hash.clone()),
        bootstrap_address: Some(objects.bootstrap_address.clone()),
        holds,
        roll,
        canary,
        finished_roll,
    };
    let busy = !(observed.coordinators.settled() && observed.brokers.settled() && observed.holds.is_empty());
    let requeue = match &observed.roll {
        Some(r) if r.stuck().is_none() => ROLL_REQUEUE,
        Some(_) => BUSY_REQUEUE,
        None if busy => BUSY_REQUEUE,
        None => idle(&observed),
    };
    write_status(ctx, cluster, &observed).await?;
    Ok(Action::requeue(requeue))
}

/// A Warning Event (and the stuck-rolls metric) the first time a roll stops at a pod for a reason.
async fn report_stuck(
    ctx: &Context,
    cluster: &KafkaCluster,
    previous: Option<&KafkaClusterStatus>,
    roll: Option<&RollReport>,
) {
    let Some((reason, report)) = roll.and_then(|r| Some((r.stuck()?, r))) else {
        return;
    };
    let already = previous
        .and_then(|s| s.roll.as_ref())
        .is_some_and(|r| r.state == "Stuck" && r.message.starts_with(reason));
    if !already {
        ctx.metrics.rolls_stuck.inc();
        publish(ctx, cluster, EventType::Warning, "RollStuck", "Roll", report.message()).await;
    }
}

/// Applies one tier; with `workload` false only the objects that never restart pods (Services, PDB).
async fn apply_tier(
    ctx: &Context,
    cluster: &KafkaCluster,
    namespace: &str,
    tier: &Tier,
    existing: Option<&StatefulSet>,
    workload: bool,
) -> Result<StatefulSet, Error> {
    for service in &tier.services {
        apply(&ctx.client, namespace, service).await?;
    }
    apply(&ctx.client, namespace, &tier.pdb).await?;
    match &tier.network_policy {
        Some(policy) => {
            apply(&ctx.client, namespace, policy).await?;
        }
        None => {
            remove_network_policy(
                ctx,
                namespace,
                &format!("{}-{}", cluster.name_any(), tier.role.as_str()),
            )
            .await?
        }
    }
    if !workload {
        return Ok(existing.cloned().unwrap_or_default());
    }
    // The ConfigMap first: a pod started by the StatefulSet must find its file.
    apply(&ctx.client, namespace, &tier.config_map).await?;
    let applied = apply(&ctx.client, namespace, &tier.stateful_set).await?;
    let role = tier.role.as_str();
    match existing {
        None => {
            publish(
                ctx,
                cluster,
                EventType::Normal,
                "Created",
                "Create",
                format!("created the {role} StatefulSet, its ConfigMap, Services and PodDisruptionBudget"),
            )
            .await;
        }
        Some(old) => {
            let old_hash = template_hash(old);
            if old_hash.as_deref() != Some(tier.config_hash.as_str()) {
                publish(ctx, cluster, EventType::Normal, "RollingRestart", "Roll", format!(
                    "{role} configuration changed (hash {} -> {}): restarting {role}s one at a time, health-gated (status.roll shows progress)",
                    old_hash.unwrap_or_default(), tier.config_hash
                )).await;
            }
            let old_replicas = old.spec.as_ref().and_then(|s| s.replicas);
            let new_replicas = applied.spec.as_ref().and_then(|s| s.replicas);
            if old_replicas != new_replicas {
                publish(
                    ctx,
                    cluster,
                    EventType::Normal,
                    "Scaled",
                    "Scale",
                    format!(
                        "{role}s scaled from {} to {}",
                        old_replicas.unwrap_or(0),
                        new_replicas.unwrap_or(0)
                    ),
                )
                .await;
            }
        }
    }
    Ok(applied)
}

fn template_hash(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .cloned()
}

/// Server-side apply, taking ownership of every field the operator renders.
async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(object))
        .await
        .map_err(|source| Error::Apply {
            kind: K::kind(&()).to_string(),
            name,
            source,
        })
}

async fn get(api: &Api<StatefulSet>, name: &str) -> Result<Option<StatefulSet>, Error> {
    api.get_opt(name).await.map_err(|source| Error::Read {
        kind: "StatefulSet",
        name: name.to_string(),
        source,
    })
}

/// Deletes a NetworkPolicy the spec no longer asks for (none there is no error).
async fn remove_network_policy(ctx: &Context, namespace: &str, name: &str) -> Result<(), Error> {
    let api: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(Error::Prune {
            name: name.to_string(),
            source,
        }),
    }
}

/// Deletes this cluster's broker Services that the spec no longer renders (external Services of
/// removed brokers, or all of them when the external listener is removed).
async fn prune_services(ctx: &Context, namespace: &str, name: &str, brokers: &Tier) -> Result<(), Error> {
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!(
        "app.kubernetes.io/instance={name},app.kubernetes.io/component=broker,app.kubernetes.io/managed-by={MANAGER}"
    );
    let existing = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::Read {
            kind: "Service",
            name: selector.clone(),
            source,
        })?;
    let wanted: BTreeSet<_> = brokers
        .services
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    for service in existing {
        let service_name = service.name_any();
        if !wanted.contains(&service_name) {
            api.delete(&service_name, &DeleteParams::default())
                .await
                .map_err(|source| Error::Prune {
                    name: service_name,
                    source,
                })?;
        }
    }
    Ok(())
}

fn observe(
    cluster: &KafkaCluster,
    coordinators: Option<&StatefulSet>,
    brokers: Option<&StatefulSet>,
    bootstrap: Option<String>,
    holds: Vec<Hold>,
) -> Observed {
    let previous = cluster.status.as_ref();
    Observed {
        generation: cluster.metadata.generation,
        coordinators: coordinators.map(Rollout::from_stateful_set).unwrap_or_default(),
        brokers: brokers.map(Rollout::from_stateful_set).unwrap_or_default(),
        coordinator_hash: previous.and_then(|s| s.coordinators.as_ref()?.config_hash.clone()),
        broker_hash: previous.and_then(|s| s.brokers.as_ref()?.config_hash.clone()),
        bootstrap_address: bootstrap.or_else(|| previous.and_then(|s| s.bootstrap_address.clone())),
        holds,
        roll: None,
        canary: None,
        finished_roll: None,
    }
}

/// The requeue interval of a cluster with nothing moving: short while its canary runs, so that
/// `status.canary` stays fresh.
fn idle(observed: &Observed) -> Duration {
    if observed.canary.is_some() {
        CANARY_REQUEUE
    } else {
        IDLE_REQUEUE
    }
}

/// Sets each of `fields` that the object at `pointer` lacks to null, so that a merge patch removes it
/// instead of keeping the stored value. Nothing when there is no object there.
fn null_absent(patch: &mut serde_json::Value, pointer: &str, fields: &[&str]) {
    if let Some(map) = patch.pointer_mut(pointer).and_then(serde_json::Value::as_object_mut) {
        for field in fields {
            map.entry(field.to_string()).or_insert(serde_json::Value::Null);
        }
    }
}

async fn write_status(ctx: &Context, cluster: &KafkaCluster, observed: &Observed) -> Result<(), Error> {
    let new = status(cluster.status.as_ref(), observed, Time(Timestamp::now()));
    if cluster.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let name = cluster.name_any();
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let mut patch = serde_json::json!({ "status": new });
    // A merge patch keeps every field it leaves out: a roll that ended, or a field of it that no
    // longer applies, must be removed with an explicit null.
    null_absent(&mut patch, "/status", &["drain", "canary"]);
    null_absent(
        &mut patch,
        "/status/canary",
        &["lastError", "latencyP50Ms", "latencyP99Ms"],
    );
    null_absent(&mut patch, "/status/lastRoll", &["canary", "startedAt"]);
    null_absent(&mut patch, "/status/lastRoll/canary", &["latencyP99Ms"]);
    match new.roll {
        None => patch["status"]["roll"] = serde_json::Value::Null,
        Some(_) => null_absent(&mut patch, "/status/roll", &["pod", "podsLeft"]),
    }
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Status { name, source })?;
    Ok(())
}

fn condition<'a>(
    status: Option<&'a KafkaClusterStatus>,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

fn has_reason(status: Option<&KafkaClusterStatus>, type_: &str, reason: &str) -> bool {
    condition(status, type_).is_some_and(|c| c.reason == reason)
}

pub(super) fn has_message(status: Option<&KafkaClusterStatus>, type_: &str, message: &str) -> bool {
    condition(status, type_).is_some_and(|c| c.message == message)
}

/// Records an Event on the KafkaCluster; a failure to record is logged, never fatal.
///
/// kube's Recorder folds events into a series by type, reason, action and objects, not by note, so the
/// action carries a digest of the note: a different message is a new event, a repeated one counts up.
pub(super) async fn publish(
    ctx: &Context,
    cluster: &KafkaCluster,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    tracing::info!(cluster = %cluster.name_any(), reason, "{note}");
    let event = Event {
        type_,
        reason: reason.to_string(),
        action: format!("{action}-{}", crate::render::config_hash(&[&note])),
        note: Some(note),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cluster.object_ref(&())).await {
        tracing::warn!("recording event {reason} failed: {e}");
    }
}

/// Why the operator must not apply anything for this spec: the operator's own rules, or a rendered
/// broker or coordinator file that oxka would refuse (`render::check`).
fn refusal(cluster: &KafkaCluster, cluster_domain: &str) -> Option<String> {
    let options = RenderOptions {
        cluster_domain: cluster_domain.to_string(),
        ..RenderOptions::default()
    };
    match render(cluster, &options) {
        Err(e @ (RenderError::InvalidSpec(_) | RenderError::RefusedConfig(_))) => Some(e.to_string()),
        _ => None,
    }
}
