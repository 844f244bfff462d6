//! The I/O around `roll::decide`: reads one tier's pods and StatefulSet, asks Kafka (brokers) or the
//! coordinators' `/health` (who the Raft leader is) only when some pod is stale, and deletes the one pod
//! the decision names. Called by `cluster` once per reconciliation per tier, coordinators first.
//!
//! A pod is stale when its `controller-revision-hash` label differs from the StatefulSet's
//! `status.updateRevision`; with `updateStrategy: OnDelete` the StatefulSet controller re-creates a
//! deleted pod on the update revision and restarts nothing by itself.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cluster::{publish, Context, Error};
use super::kafka_admin;
use super::roll::{decide, Decision, PodView, Policy, Safety, Waiting};
use super::status::RollReport;
use crate::crd::KafkaCluster;
use crate::render::config::COORDINATOR_METRICS_PORT;
use crate::render::Role;

/// How long one coordinator's `/health` may take to answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// One roll step for `role`: `None` when the tier has nothing left to roll and no pod is stuck, and
/// when it only waits for a pod being re-created while no roll is `under_way` (a deleted pod, a new
/// replica: no roll, so no `status.roll` and no `lastRoll` for it).
pub async fn step(
    ctx: &Context,
    cluster: &KafkaCluster,
    namespace: &str,
    role: Role,
    sts: &StatefulSet,
    bootstrap: &str,
    under_way: bool,
) -> Result<Option<RollReport>, Error> {
    let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let status = sts.status.as_ref();
    let seen = status.and_then(|s| s.observed_generation).unwrap_or(0) >= sts.metadata.generation.unwrap_or(0);
    let Some(update_revision) = status.and_then(|s| s.update_revision.clone()).filter(|_| seen) else {
        // The StatefulSet controller has not yet computed the revision of the template just applied.
        if !under_way {
            return Ok(None);
        }
        return Ok(Some(RollReport {
            role,
            decision: Decision::Wait(format!(
                "the StatefulSet controller has not yet seen the {} template",
                role.as_str()
            )),
            pods_left: Vec::new(),
        }));
    };
    let pods = list_pods(ctx, namespace, &cluster.name_any(), role).await?;
    let views: Vec<PodView> = pods.iter().filter_map(|p| view(p, &update_revision)).collect();
    let pods_left: Vec<String> = views.iter().filter(|p| p.stale).map(|p| p.name.clone()).collect();
    let safety = if pods_left.is_empty() {
        // Nothing to restart: the decision needs no answer from Kafka or the ensemble.
        Safety::Kafka(Err("not asked: no pod is stale".to_string()))
    } else {
        match role {
            Role::Broker => Safety::Kafka(
                kafka_admin::partition_health(bootstrap)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            Role::Coordinator => Safety::Quorum {
                leader: coordinator_leader(&pods).await,
            },
        }
    };
    let policy = Policy {
        ready_timeout: ctx.roll_ready_timeout,
        settle: ctx.roll_settle,
        address_settle: ctx.roll_address_settle,
    };
    let decision = decide(&views, replicas, &safety, policy);
    if let Decision::Restart { pod, reason } = &decision {
        restart(ctx, cluster, namespace, &pods, pod, reason).await?;
    }
    let replacement_only = pods_left.is_empty() && !under_way && matches!(decision, Decision::Wait(_));
    Ok((decision != Decision::Done && !replacement_only).then_some(RollReport {
        role,
        decision,
        pods_left,
    }))
}

async fn list_pods(ctx: &Context, namespace: &str, name: &str, role: Role) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!(
        "app.kubernetes.io/name=oxka,app.kubernetes.io/instance={name},app.kubernetes.io/component={}",
        role.as_str()
    );
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::Read {
            kind: "Pod",
            name: selector,
            source,
        })?;
    Ok(list.items)
}

/// Deletes `name` (only the pod that was decided on: a re-created pod of the same name has another
/// uid). The pod's grace period lets a broker do its controlled shutdown.
async fn restart(
    ctx: &Context,
    cluster: &KafkaCluster,
    namespace: &str,
    pods: &[Pod],
    name: &str,
    reason: &str,
) -> Result<(), Error> {
    let uid = pods.iter().find(|p| p.name_any() == name).and_then(|p| p.uid());
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {}
        // Already gone, or already replaced: the next reconciliation sees the new pod.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(()),
        Err(source) => {
            return Err(Error::Restart {
                pod: name.to_string(),
                source,
            })
        }
    }
    ctx.metrics.roll_restarts.inc();
    publish(
        ctx,
        cluster,
        EventType::Normal,
        "RestartingPod",
        "Roll",
        format!("restarting pod {name} on the new revision: {reason}"),
    )
    .await;
    Ok(())
}

/// What the decision needs to know about one pod; `None` for a pod without an ordinal.
fn view(pod: &Pod, update_revision: &str) -> Option<PodView> {
    let labels = pod.labels();
    let ordinal = labels
        .get("apps.kubernetes.io/pod-index")
        .cloned()
        .or_else(|| pod.name_any().rsplit('-').next().map(str::to_string))?
        .parse()
        .ok()?;
    let status = pod.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let ready_condition = conditions.iter().find(|c| c.type_ == "Ready");
    let ready = ready_condition.is_some_and(|c| c.status == "True");
    let since = ready_condition
        .and_then(|c| c.last_transition_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map(age)
        .unwrap_or_default();
    let created = pod.metadata.creation_timestamp.as_ref().map(age).unwrap_or_default();
    let containers = status.into_iter().flat_map(|s| {
        s.init_container_statuses
            .iter()
            .flatten()
            .chain(s.container_statuses.iter().flatten())
    });
    let mut waiting = None;
    let mut restarts = 0;
    for c in containers {
        restarts += c.restart_count;
        let w = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let (None, Some(reason)) = (&waiting, w.and_then(|w| w.reason.clone())) {
            waiting = Some(Waiting {
                reason,
                message: w.and_then(|w| w.message.clone()).unwrap_or_default(),
            });
        }
    }
    if waiting.is_none() {
        waiting = conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
            .map(|c| Waiting {
                reason: "Unschedulable".to_string(),
                message: c.message.clone().unwrap_or_default(),
            });
    }
    Some(PodView {
        name: pod.name_any(),
        ordinal,
        stale: labels.get("controller-revision-hash").map(String::as_str) != Some(update_revision),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        ready,
        since,
        age: created,
        waiting,
        restarts,
    })
}

fn age(t: &Time) -> Duration {
    let seconds = Timestamp::now().as_second() - t.0.as_second();
    Duration::from_secs(seconds.max(0) as u64)
}

/// The ordinal of the ensemble's Raft leader, as the first Ready coordinator that answers says.
/// `None` when none can be asked (e.g. the operator runs outside the cluster's pod network): the roll
/// then goes by ordinal, which is safe, only not leader-last.
async fn coordinator_leader(pods: &[Pod]) -> Option<i32> {
    for pod in pods {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let address = if ip.contains(':') {
            format!("[{ip}]:{COORDINATOR_METRICS_PORT}")
        } else {
            format!("{ip}:{COORDINATOR_METRICS_PORT}")
        };
        let body = tokio::time::timeout(HEALTH_TIMEOUT, http_get(&address, "/health")).await;
        if let Some(leader) = body.ok().and_then(Result::ok).and_then(|b| parse_leader(&b)) {
            return Some(leader);
        }
    }
    None
}

async fn http_get(address: &str, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The leader's ordinal from a coordinator's `/health` body ("coordinator N is the leader" or "leader
/// is coordinator N"; coordinator ids are ordinals + 1).
fn parse_leader(body: &str) -> Option<i32> {
    let re = regex::Regex::new(r"(?:coordinator (\d+) is the leader|leader is coordinator (\d+))").expect("valid");
    let caps = re.captures(body)?;
    let id: i32 = caps.get(1).or(caps.get(2))?.as_str().parse().ok()?;
    Some(id - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_comes_from_either_health_answer() {
        assert_eq!(
            parse_leader("HTTP/1.1 200 OK\r\n\r\nok: coordinator 3 is the leader\n"),
            Some(2)
        );
        assert_eq!(
            parse_leader("ok: leader is coordinator 1; caught up (log end 5, high watermark 5)\n"),
            Some(0)
        );
        assert_eq!(
            parse_leader("no leader: this coordinator cannot reach a quorum\n"),
            None
        );
    }

    #[test]
    fn a_pod_is_seen_with_its_revision_readiness_and_why_it_cannot_start() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-broker-2", "labels": {
                "apps.kubernetes.io/pod-index": "2", "controller-revision-hash": "demo-broker-abc"}},
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "containerStatuses": [{"name": "broker", "image": "oxka:nope", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}}]
            }
        }))
        .unwrap();
        let v = view(&pod, "demo-broker-abc").unwrap();
        assert_eq!((v.ordinal, v.stale, v.ready), (2, false, false));
        assert_eq!(v.waiting.unwrap().reason, "ImagePullBackOff");
        assert!(v.since > Duration::from_secs(3600));
        assert!(view(&pod, "demo-broker-def").unwrap().stale);
    }
}
