//! The reconciler's side of the built-in canary (`crate::canary`): start, update or stop a cluster's
//! canary as `spec.canary` says and read its figures for status (`canary_step`, every reconciliation),
//! and record a finished roll with the canary's figures during it (`roll_record`). The pure parts
//! (status, condition, messages) are in `canary_status`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::runtime::events::EventType;
use kube::ResourceExt;

use super::canary_status::{self, CanaryReport};
use super::cluster::{publish, Context};
use super::status::{Hold, RollReport};
use crate::canary::{ClusterLabels, RollStart, Settings};
use crate::crd::{KafkaCluster, KafkaClusterStatus, LastRollStatus};

pub(super) fn canary_key(namespace: &str, name: &str) -> ClusterLabels {
    ClusterLabels {
        namespace: namespace.to_string(),
        cluster: name.to_string(),
    }
}

/// Starts, updates or stops the cluster's canary as `spec.canary` says, and reports on it: a
/// Warning Event `DataLoss` when it found acknowledged records lost since the last status.
pub(super) async fn canary_step(ctx: &Context, cluster: &KafkaCluster, namespace: &str) -> Option<CanaryReport> {
    let name = cluster.name_any();
    let key = canary_key(namespace, &name);
    let Some(spec) = cluster.spec.canary.as_ref().filter(|c| c.enabled) else {
        ctx.canaries.stop(&key);
        return None;
    };
    let settings = Settings {
        bootstrap: ctx.kafka_address(cluster, namespace),
        brokers: cluster.spec.brokers.replicas,
        interval: Duration::from_secs(spec.interval_seconds.max(1) as u64),
        lost_after: Duration::from_secs(spec.lost_after_seconds.max(1) as u64),
    };
    let previous = cluster.status.as_ref().and_then(|s| s.canary.as_ref());
    let carried = previous.map(canary_status::carried).unwrap_or_default();
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), namespace);
    let view = ctx.canaries.ensure(&key, settings, carried, move || {
        let (api, name) = (api.clone(), name.clone());
        async move {
            match api.get_opt(&name).await {
                Ok(Some(c)) => {
                    c.metadata.deletion_timestamp.is_none() && c.spec.canary.as_ref().is_some_and(|c| c.enabled)
                }
                Ok(None) => false,
                Err(_) => true, // the API server is unreachable: keep measuring
            }
        }
    });
    let report = CanaryReport {
        view,
        lost_after_seconds: spec.lost_after_seconds,
    };
    let lost_before = previous.map_or(0, |p| p.lost);
    if report.view.snapshot.counts.lost as i64 > lost_before {
        publish(
            ctx,
            cluster,
            EventType::Warning,
            "DataLoss",
            "Canary",
            canary_status::data_loss_message(&report),
        )
        .await;
    }
    Some(report)
}

/// The canary's side of a roll: its figures are remembered when a roll begins; when the roll that
/// `status.roll` showed is over, returns its record for `status.lastRoll` and publishes a
/// `RollFinished` Event with it.
pub(super) async fn roll_record(
    ctx: &Context,
    cluster: &KafkaCluster,
    namespace: &str,
    previous: Option<&KafkaClusterStatus>,
    roll: Option<&RollReport>,
    holds: &[Hold],
) -> Option<LastRollStatus> {
    let key = canary_key(namespace, &cluster.name_any());
    let previous_roll = previous.and_then(|s| s.roll.as_ref());
    if roll.is_some() {
        // Not `previous_roll.is_none()` alone: the status read here may still show the roll that just
        // ended (found by the e2e suite when a roll followed another within a second).
        let started = match previous_roll {
            None => RollStart::Now,
            Some(r) => r.started_at.as_ref().map_or(RollStart::Unknown, |t| RollStart::At(t.0)),
        };
        ctx.canaries.begin_roll(&key, started);
        return None;
    }
    // Between the tiers (coordinators rolled, not all Ready yet) the roll is not over.
    if holds.iter().any(|h| matches!(h, Hold::WaitingForCoordinators)) {
        return None;
    }
    let previous_roll = previous_roll?;
    // The status read here may still show a roll this process has just recorded as finished (its
    // write not read back yet; found by the e2e suite): the same record again, and no second Event.
    if let Some(done) = ctx.finished_rolls.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        if done.started_at == previous_roll.started_at {
            return Some(done.clone());
        }
    }
    let figures = ctx
        .canaries
        .end_roll(&key)
        .zip(ctx.canaries.view(&key))
        .map(|(baseline, now)| canary_status::during_roll(&baseline, &now.snapshot));
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("app.kubernetes.io/instance={}", cluster.name_any());
    let created: Vec<Time> = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|p| p.metadata.creation_timestamp)
            .collect(),
        Err(e) => {
            tracing::warn!(cluster = %cluster.name_any(), "cannot list pods to count the roll's restarts: {e}");
            Vec::new()
        }
    };
    let last = canary_status::finished_roll(previous_roll, Time(Timestamp::now()), &created, figures);
    ctx.finished_rolls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, last.clone());
    publish(
        ctx,
        cluster,
        EventType::Normal,
        "RollFinished",
        "Roll",
        canary_status::roll_finished_message(&last),
    )
    .await;
    Some(last)
}
