//! The controller (`oxka-operator run`): watches KafkaClusters and the objects they own, reconciles
//! each one (`cluster`), serves metrics and health (`http`), and runs only while it holds the leader
//! Lease (`leader`) when several replicas run.
//!
//! Startup order: HTTP endpoints (so liveness passes while waiting), optional CRD upgrade, leader
//! election, then the controller. Losing the lease ends the process.

pub mod canary_status;
mod canary_step;
pub mod certs;
pub mod cluster;
pub mod cluster_certs;
pub mod drain;
pub mod draining;
pub mod http;
pub mod kafka_admin;
pub mod kafka_security;
pub mod leader;
pub mod racks;
pub mod roll;
pub mod rolling;
pub mod scale_down;
pub mod spread;
pub mod spreading;
pub mod status;
pub mod throttle;
pub mod topic;
pub mod topic_admin;
pub mod topic_plan;
pub mod topic_status;
pub mod user;
pub mod user_acls;
pub mod user_admin;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, CustomResourceExt, ResourceExt};

use crate::crd::topic::KafkaTopic;
use crate::crd::user::KafkaUser;
use crate::crd::KafkaCluster;
use crate::render::MANAGER;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Watch KafkaClusters in this namespace only (default: all namespaces).
    #[arg(long, env = "OXKA_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// DNS suffix of the Kubernetes cluster, used in advertised listeners.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Take a Lease before reconciling, so that several replicas are safe.
    #[arg(long)]
    pub leader_election: bool,
    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "oxka-operator-leader")]
    pub leader_election_lease: String,
    /// This replica's identity in the Lease (default: the pod name, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Where the operator reaches a cluster's brokers to read partition placement before a scale-down.
    /// Placeholders: {name}, {namespace}, {domain}, {port}. Change it only when the operator runs
    /// outside the cluster (e.g. through a tunnel).
    #[arg(long, default_value = "{name}-bootstrap.{namespace}.svc.{domain}:{port}")]
    pub kafka_bootstrap_template: String,
    /// Apply the operator's own CRD at startup (server-side apply), so that `helm upgrade` of the
    /// operator upgrades the CRD too.
    #[arg(long)]
    pub install_crds: bool,
    /// A pod restarted by a rolling restart that is not Ready within this many seconds stops the roll
    /// (so does, at once, a pod that cannot pull its image or crash-loops).
    #[arg(long, default_value_t = 300)]
    pub roll_ready_timeout_secs: u64,
    /// Seconds a restarted pod must have been Ready before the next one restarts.
    #[arg(long, default_value_t = 10)]
    pub roll_settle_secs: u64,
    /// Seconds a re-created broker pod must exist before the next broker restarts: clients that
    /// resolved its name while its previous pod went away may keep that pod's address this long (the
    /// JVM caches a lookup for 30 s by default, `networkaddress.cache.ttl`).
    #[arg(long, default_value_t = 30)]
    pub roll_address_settle_secs: u64,
    /// Seconds between checks of a Ready KafkaTopic against Kafka: how soon a change made outside the
    /// KafkaTopic (drift) is found and corrected.
    #[arg(long, default_value_t = 60)]
    pub topic_resync_secs: u64,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API server (kubeconfig or in-cluster service account)")?;
    let metrics = Arc::new(http::Metrics::default());
    let listener = tokio::net::TcpListener::bind(args.metrics_address)
        .await
        .with_context(|| format!("binding the metrics endpoint {}", args.metrics_address))?;
    tracing::info!("metrics and health on http://{}", listener.local_addr()?);
    tokio::spawn(http::serve(listener, metrics.clone()));

    if args.install_crds {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in [KafkaCluster::crd(), KafkaTopic::crd(), KafkaUser::crd()] {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&crd))
                .await
                .with_context(|| {
                    format!("applying the CRD {name} (disable with --install-crds=false if it is managed elsewhere)")
                })?;
            tracing::info!("applied CRD {name}");
        }
    }

    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    // Ready means connected and either leading or standing by: a standby must not block a rollout.
    metrics.ready.store(true, Ordering::Relaxed);
    let mut elector = None;
    if args.leader_election {
        let leader = Arc::new(leader::LeaderElector::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.leader_election_lease,
            &identity,
        ));
        leader.acquire().await;
        metrics.leader.set(1);
        let renewing = leader.clone();
        let hold = tokio::spawn(async move {
            renewing.hold().await;
            tracing::error!("lost leadership: exiting so that only one replica reconciles");
            std::process::exit(1);
        });
        elector = Some((leader, hold));
    }

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.to_string(),
            instance: Some(identity),
        },
    );
    let ctx = Arc::new(cluster::Context {
        client: client.clone(),
        recorder,
        metrics: metrics.clone(),
        cluster_domain: args.cluster_domain.clone(),
        kafka_bootstrap_template: args.kafka_bootstrap_template.clone(),
        roll_ready_timeout: std::time::Duration::from_secs(args.roll_ready_timeout_secs),
        roll_settle: std::time::Duration::from_secs(args.roll_settle_secs),
        roll_address_settle: std::time::Duration::from_secs(args.roll_address_settle_secs),
        topic_resync: std::time::Duration::from_secs(args.topic_resync_secs),
        canaries: Arc::new(crate::canary::Canaries::new(metrics.canary.clone())),
        drains: Default::default(),
        rolls: Default::default(),
        finished_rolls: Default::default(),
    });
    let clusters: Api<KafkaCluster> = scoped(&client, args.namespace.as_deref());
    let owned = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    // Pods belong to the StatefulSets, not to the KafkaCluster: map them by their instance label. A
    // broker pod being scheduled (spec.nodeName) is when its broker.rack can be read; any pod turning
    // Ready, failing or going away moves a rolling restart on.
    let oxka_pods = watcher::Config::default().labels("app.kubernetes.io/name=oxka");
    tracing::info!(namespace = ?args.namespace, "controller running");
    let topics = Controller::new(
        scoped::<KafkaTopic>(&client, args.namespace.as_deref()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(topic::reconcile, topic::error_policy, ctx.clone())
    .for_each(|result| async move {
        match result {
            Ok((object, _)) => tracing::debug!(topic = %object.name, "reconciled"),
            Err(e) => tracing::debug!("topic controller: {e}"),
        }
    });
    let users = Controller::new(
        scoped::<KafkaUser>(&client, args.namespace.as_deref()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(user::reconcile, user::error_policy, ctx.clone())
    .for_each(|result| async move {
        match result {
            Ok((object, _)) => tracing::debug!(user = %object.name, "reconciled"),
            Err(e) => tracing::debug!("user controller: {e}"),
        }
    });
    let clusters = Controller::new(clusters, watcher::Config::default())
        .owns(scoped::<StatefulSet>(&client, args.namespace.as_deref()), owned.clone())
        .owns(scoped::<ConfigMap>(&client, args.namespace.as_deref()), owned.clone())
        .owns(scoped::<Service>(&client, args.namespace.as_deref()), owned.clone())
        .owns(scoped::<PodDisruptionBudget>(&client, args.namespace.as_deref()), owned)
        .watches(scoped::<Pod>(&client, args.namespace.as_deref()), oxka_pods, |pod| {
            let cluster = pod.labels().get("app.kubernetes.io/instance").cloned();
            cluster
                .zip(pod.namespace())
                .map(|(name, ns)| ObjectRef::new(&name).within(&ns))
        })
        .shutdown_on_signal()
        .run(cluster::reconcile, cluster::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(cluster = %object.name, "reconciled"),
                Err(e) => tracing::debug!("controller: {e}"),
            }
        });
    futures::join!(clusters, topics, users);
    tracing::info!("controller stopped");
    if let Some((leader, hold)) = elector {
        hold.abort();
        leader.release().await;
    }
    Ok(())
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
