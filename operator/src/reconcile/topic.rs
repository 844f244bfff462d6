//! One reconciliation of one KafkaTopic: find its KafkaCluster, describe the topic through the Kafka
//! admin API at the cluster's bootstrap address, let `topic_plan` decide, send the requests
//! (`topic_admin`), and write status (`topic_status`) and Events. A finalizer deletes the topic
//! (DeleteTopics) before the KafkaTopic goes; when the KafkaCluster is gone or going, the finalizer is
//! dropped at once, since there is nothing left to delete the topic from.
//!
//! Only topics a KafkaTopic names are ever touched. When two KafkaTopics name the same topic of the
//! same cluster, the older one manages it; the newer one reports `TopicConflict`, changes nothing,
//! and deleting it leaves the topic alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::{Api, Resource, ResourceExt};

use super::cluster::Context;
use super::topic_admin::{self, TopicAdminError};
use super::topic_plan::{managed_after, plan, Alteration, DesiredTopic, Plan};
use super::topic_status::{topic_status, Observed, Outcome};
use crate::crd::topic::{KafkaTopic, KafkaTopicStatus, TOPIC_FINALIZER};
use crate::crd::KafkaCluster;

/// Field manager of the status the topic controller writes.
const STATUS_MANAGER: &str = "oxka-operator-topics";
/// Requeue while waiting for a cluster, for Kafka, or after a refusal.
const RETRY: Duration = Duration::from_secs(15);

/// Why a KafkaTopic reconciliation failed; the controller retries after `error_policy`'s delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading KafkaCluster {name} failed: {source}")]
    ReadCluster { name: String, source: kube::Error },
    #[error("listing the KafkaTopics of namespace {namespace} failed: {source}")]
    ListTopics { namespace: String, source: kube::Error },
    #[error("writing the status of KafkaTopic {name} failed: {source}")]
    Status { name: String, source: kube::Error },
    #[error("deleting topic {topic} failed (the KafkaTopic stays until it succeeds): {source}")]
    Delete { topic: String, source: TopicAdminError },
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

pub async fn reconcile(topic: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.topic_reconciles.inc();
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let result = finalizer(&api, TOPIC_FINALIZER, topic, |event| async {
        match event {
            Finalizer::Apply(topic) => apply(&topic, &ctx).await,
            Finalizer::Cleanup(topic) => cleanup(&topic, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if result.is_err() {
        ctx.metrics.topic_errors.inc();
    }
    result
}

pub fn error_policy(topic: Arc<KafkaTopic>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(topic = %topic.name_any(), namespace = ?topic.namespace(), "reconcile failed: {error}");
    Action::requeue(RETRY)
}

fn desired(topic: &KafkaTopic) -> DesiredTopic {
    DesiredTopic {
        name: topic.topic_name(),
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        config: topic.spec.config.clone(),
    }
}

async fn cluster_of(ctx: &Context, topic: &KafkaTopic, namespace: &str) -> Result<Option<KafkaCluster>, Error> {
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), namespace);
    clusters
        .get_opt(&topic.spec.cluster)
        .await
        .map_err(|source| Error::ReadCluster {
            name: topic.spec.cluster.clone(),
            source,
        })
}

/// The older KafkaTopic that manages the same topic of the same cluster, if there is one.
async fn owner_elsewhere(ctx: &Context, topic: &KafkaTopic, namespace: &str) -> Result<Option<String>, Error> {
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), namespace);
    let all = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::ListTopics {
            namespace: namespace.to_string(),
            source,
        })?;
    let key = |t: &KafkaTopic| (t.metadata.creation_timestamp.clone(), t.name_any());
    Ok(all
        .items
        .iter()
        .filter(|other| other.uid() != topic.uid() && other.metadata.deletion_timestamp.is_none())
        .filter(|other| other.spec.cluster == topic.spec.cluster && other.topic_name() == topic.topic_name())
        .filter(|other| key(other) < key(topic))
        .map(|other| other.name_any())
        .next())
}

async fn apply(topic: &KafkaTopic, ctx: &Context) -> Result<Action, Error> {
    let namespace = topic.namespace().unwrap_or_default();
    let desired = desired(topic);
    let previous = topic.status.as_ref();
    let previous_managed: BTreeSet<String> = previous
        .map(|s| s.managed_config_keys.iter().cloned().collect())
        .unwrap_or_default();
    let mut observed = Observed {
        topic_name: desired.name.clone(),
        managed_config_keys: previous_managed.clone(),
        ..Observed::default()
    };
    let Some(cluster) = cluster_of(ctx, topic, &namespace).await? else {
        let message = format!(
            "KafkaCluster {} does not exist in namespace {namespace}: the topic is created once it does",
            topic.spec.cluster
        );
        return waiting(ctx, topic, "ClusterNotFound", message, &observed).await;
    };
    if let Some(owner) = owner_elsewhere(ctx, topic, &namespace).await? {
        let message = format!(
            "KafkaTopic {owner} already manages topic {} of KafkaCluster {}: this one changes nothing",
            desired.name, topic.spec.cluster
        );
        return waiting(ctx, topic, "TopicConflict", message, &observed).await;
    }
    let address = ctx.kafka_address(&cluster, &namespace);
    // A secured cluster's admin connection uses the operator's client certificate.
    if let Err(e) = super::cluster_certs::register_existing(ctx, &cluster, &namespace, &address).await {
        let message = format!("cannot reach the Kafka admin API of {}: {e}", topic.spec.cluster);
        return waiting(ctx, topic, "KafkaUnreachable", message, &observed).await;
    }
    let actual = match topic_admin::describe(&address, &desired.name).await {
        Ok(actual) => actual,
        Err(TopicAdminError::Kafka(refusal)) => {
            return finish(ctx, topic, &Outcome::Refused(refusal), &observed).await;
        }
        Err(TopicAdminError::Admin(e)) => {
            let message = format!("cannot reach the Kafka admin API of {}: {e}", topic.spec.cluster);
            return waiting(ctx, topic, "KafkaUnreachable", message, &observed).await;
        }
    };
    let spec_unchanged = previous.is_some_and(|s| {
        s.observed_generation == topic.metadata.generation
            && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
    });
    let outcome = match plan(&desired, actual.as_ref(), &previous_managed, spec_unchanged) {
        Plan::Create {
            partitions,
            replication_factor,
            ..
        } => match topic_admin::create(&address, &desired, partitions, replication_factor).await {
            Ok(()) => {
                observed.managed_config_keys = managed_after(&desired, &previous_managed, true);
                event(
                    ctx,
                    topic,
                    EventType::Normal,
                    "Created",
                    format!("created topic {}", desired.name),
                )
                .await;
                Outcome::Ready {
                    changes: vec!["created".into()],
                }
            }
            Err(e) => refused(e)?,
        },
        Plan::Alter(alteration) => alter(ctx, topic, &address, &desired, alteration, &mut observed).await?,
    };
    // What Kafka has now (after the changes), for status; a failed read keeps the last known shape.
    observed.topic = topic_admin::describe(&address, &desired.name).await.ok().flatten();
    finish(ctx, topic, &outcome, &observed).await
}

/// A refused request becomes the outcome; anything else is an error to retry.
fn refused(error: TopicAdminError) -> Result<Outcome, Error> {
    match error {
        TopicAdminError::Kafka(refusal) => Ok(Outcome::Refused(refusal)),
        TopicAdminError::Admin(e) => Ok(Outcome::Waiting {
            reason: "KafkaUnreachable",
            message: format!("the Kafka admin API stopped answering: {e}"),
        }),
    }
}

async fn alter(
    ctx: &Context,
    topic: &KafkaTopic,
    address: &str,
    desired: &DesiredTopic,
    alteration: Alteration,
    observed: &mut Observed,
) -> Result<Outcome, Error> {
    if !alteration.drift.is_empty() {
        let drift = alteration.drift.join("; ");
        ctx.metrics.topic_drift.inc();
        event(
            ctx,
            topic,
            EventType::Warning,
            "DriftDetected",
            format!("{drift}: correcting toward the spec"),
        )
        .await;
        observed.drift = Some(drift);
    }
    let mut changes = Vec::new();
    if let Some(count) = alteration.grow_partitions_to {
        if let Err(e) = topic_admin::create_partitions(address, &desired.name, count).await {
            return refused(e);
        }
        changes.push(format!("partitions raised to {count}"));
    }
    if !(alteration.set_configs.is_empty() && alteration.delete_configs.is_empty()) {
        let result = topic_admin::alter_configs(
            address,
            &desired.name,
            &alteration.set_configs,
            &alteration.delete_configs,
        )
        .await;
        if let Err(e) = result {
            return refused(e);
        }
        let mut what: Vec<String> = alteration.set_configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        what.extend(alteration.delete_configs.iter().map(|k| format!("{k} removed")));
        changes.push(format!("configs {}", what.join(", ")));
    }
    // Configs were applied or had nothing to change: either way the spec's keys are the managed ones.
    observed.managed_config_keys = managed_after(desired, &observed.managed_config_keys, true);
    if !changes.is_empty() {
        event(ctx, topic, EventType::Normal, "Altered", changes.join("; ")).await;
    }
    if !alteration.not_supported.is_empty() {
        return Ok(Outcome::NotSupported(
            alteration.not_supported.into_iter().map(|n| n.0).collect(),
        ));
    }
    Ok(Outcome::Ready { changes })
}

async fn waiting(
    ctx: &Context,
    topic: &KafkaTopic,
    reason: &'static str,
    message: String,
    observed: &Observed,
) -> Result<Action, Error> {
    finish(ctx, topic, &Outcome::Waiting { reason, message }, observed).await
}

/// Writes status (and a Warning Event when a refusal is new) and picks the requeue delay.
async fn finish(ctx: &Context, topic: &KafkaTopic, outcome: &Outcome, observed: &Observed) -> Result<Action, Error> {
    let now = Time(Timestamp::now());
    let new = topic_status(topic.status.as_ref(), topic.metadata.generation, outcome, observed, now);
    let ready = new.conditions.iter().find(|c| c.type_ == "Ready").cloned();
    let before = topic
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    if let Some(c) = ready.as_ref().filter(|c| c.status == "False") {
        ctx.metrics.topic_errors.inc();
        if before.map(|b| (&b.reason, &b.message)) != Some((&c.reason, &c.message)) {
            event(ctx, topic, EventType::Warning, &c.reason, c.message.clone()).await;
        }
    }
    write_status(ctx, topic, new).await?;
    Ok(match outcome {
        Outcome::Ready { .. } => Action::requeue(ctx.topic_resync),
        _ => Action::requeue(RETRY),
    })
}

async fn write_status(ctx: &Context, topic: &KafkaTopic, new: KafkaTopicStatus) -> Result<(), Error> {
    if topic.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let name = topic.name_any();
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    // Server-side apply of the whole status: fields this manager set before and leaves out now go.
    let patch = serde_json::json!({
        "apiVersion": KafkaTopic::api_version(&()),
        "kind": KafkaTopic::kind(&()),
        "status": new,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::Status { name, source })?;
    Ok(())
}

async fn cleanup(topic: &KafkaTopic, ctx: &Context) -> Result<Action, Error> {
    let namespace = topic.namespace().unwrap_or_default();
    let name = topic.topic_name();
    let cluster = cluster_of(ctx, topic, &namespace).await?;
    let Some(cluster) = cluster.filter(|c| c.metadata.deletion_timestamp.is_none()) else {
        tracing::info!(topic = %name, cluster = %topic.spec.cluster, "KafkaCluster gone: dropping the finalizer");
        return Ok(Action::await_change());
    };
    if let Some(owner) = owner_elsewhere(ctx, topic, &namespace).await? {
        tracing::info!(topic = %name, %owner, "another KafkaTopic manages this topic: not deleting it");
        return Ok(Action::await_change());
    }
    let address = ctx.kafka_address(&cluster, &namespace);
    if let Err(e) = super::cluster_certs::register_existing(ctx, &cluster, &namespace, &address).await {
        tracing::info!(topic = %name, "the operator's certificate for {} is unreadable: {e}", topic.spec.cluster);
    }
    topic_admin::delete(&address, &name)
        .await
        .map_err(|source| Error::Delete {
            topic: name.clone(),
            source,
        })?;
    event(
        ctx,
        topic,
        EventType::Normal,
        "Deleted",
        format!("deleted topic {name}"),
    )
    .await;
    Ok(Action::await_change())
}

async fn event(ctx: &Context, topic: &KafkaTopic, type_: EventType, reason: &str, note: String) {
    tracing::info!(topic = %topic.name_any(), reason, "{note}");
    let event = Event {
        type_,
        reason: reason.to_string(),
        action: format!("{reason}-{}", crate::render::config_hash(&[&note])),
        note: Some(note),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &topic.object_ref(&())).await {
        tracing::warn!("recording event {reason} failed: {e}");
    }
}
