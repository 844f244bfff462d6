//! Status: a pure function from what the reconciler observed to the KafkaCluster's conditions and
//! counts. `lastTransitionTime` only moves when a condition's status flips, so a no-op reconcile
//! writes nothing.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::canary_status::{canary_status, data_loss, CanaryReport};
use super::roll::Decision;
use crate::crd::{DrainStatus, KafkaClusterStatus, LastRollStatus, RoleStatus, RollStatus};
use crate::render::Role;

/// How far one role's StatefulSet is from running the desired template everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollout {
    pub replicas: i32,
    pub ready: i32,
    pub updated: i32,
    /// The StatefulSet controller has seen the latest spec and every pod runs its update revision.
    pub on_latest_revision: bool,
}

impl Rollout {
    pub fn from_stateful_set(sts: &StatefulSet) -> Rollout {
        let desired = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let Some(status) = &sts.status else {
            return Rollout {
                replicas: desired,
                ..Rollout::default()
            };
        };
        let observed = status.observed_generation.unwrap_or(0) >= sts.metadata.generation.unwrap_or(0);
        let updated = status.updated_replicas.unwrap_or(0);
        // Not `currentRevision == updateRevision`: with `OnDelete` the StatefulSet controller never
        // moves currentRevision, so every pod on the update revision is what says the roll is over.
        Rollout {
            replicas: desired,
            ready: status.ready_replicas.unwrap_or(0),
            updated,
            on_latest_revision: observed
                && status.update_revision.is_some()
                && updated == desired
                && status.replicas == desired,
        }
    }

    /// Every pod runs the latest template and is Ready: safe to touch the next tier.
    pub fn settled(&self) -> bool {
        self.on_latest_revision && self.ready == self.replicas && self.updated == self.replicas
    }
}

/// Why the reconciler did not do everything the spec asks, if it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The spec failed validation: nothing was changed.
    InvalidSpec(String),
    /// Brokers to remove still hold data that cannot be moved (or that could not be checked): kept at
    /// the current count.
    ScaleDownBlocked(String),
    /// Brokers to remove are being drained (reassignments running): kept until Metadata shows them empty.
    Draining(DrainReport),
    /// `oxka.io/rebalance: spread` is being carried out (or failed and is retried): what happens.
    Rebalancing(String),
    /// Broker changes wait until the coordinator ensemble has rolled and is Ready.
    WaitingForCoordinators,
    /// The pause annotation is set.
    Paused,
    /// Some broker's `broker.rack` could not be learned (node without the label, or unreadable).
    RackUnknown(String),
}

/// This reconciliation's step of a rolling restart: the tier that rolls and what `roll::decide` said
/// (never `Done`: a finished roll has no report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollReport {
    pub role: Role,
    pub decision: Decision,
    /// Pods of the tier still on an older revision.
    pub pods_left: Vec<String>,
}

impl RollReport {
    pub fn stuck(&self) -> Option<&str> {
        match &self.decision {
            Decision::Stuck { reason, .. } => Some(reason),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match &self.decision {
            Decision::Done => "every pod runs the current revision".to_string(),
            Decision::Wait(why) => why.clone(),
            Decision::Restart { pod, reason } => format!("restarting pod {pod}: {reason}"),
            Decision::Stuck { reason, .. } if self.pods_left.is_empty() => {
                format!("{reason}; every pod runs the current revision, so no roll is held up by it")
            }
            Decision::Stuck { reason, .. } => format!(
                "{reason}; the roll stops here and no other pod restarts until it is healthy or the spec changes"
            ),
        }
    }
}

/// This reconciliation's view of a drain in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub brokers: Vec<i32>,
    pub partitions_left: usize,
    pub message: String,
}

/// Everything `status` needs.
#[derive(Debug, Clone)]
pub struct Observed {
    pub generation: Option<i64>,
    pub coordinators: Rollout,
    pub brokers: Rollout,
    pub coordinator_hash: Option<String>,
    pub broker_hash: Option<String>,
    pub bootstrap_address: Option<String>,
    pub holds: Vec<Hold>,
    pub roll: Option<RollReport>,
    /// The cluster's canary, while `spec.canary.enabled`.
    pub canary: Option<CanaryReport>,
    /// The roll that finished in this reconciliation (`finished_roll`), for `status.lastRoll`.
    pub finished_roll: Option<LastRollStatus>,
}

/// Builds the new status from the observation, keeping transition times of unchanged conditions.
pub fn status(previous: Option<&KafkaClusterStatus>, observed: &Observed, now: Time) -> KafkaClusterStatus {
    let previous_conditions = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut conditions = Vec::new();
    let mut set = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = previous_conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message,
            observed_generation: observed.generation,
            last_transition_time,
        });
    };

    let c = observed.coordinators;
    let b = observed.brokers;
    let all_ready = c.settled() && b.settled();
    let (ready_reason, ready_message) = if all_ready {
        (
            "AllPodsReady",
            format!("{} coordinators and {} brokers are Ready", c.ready, b.ready),
        )
    } else {
        (
            "PodsNotReady",
            format!(
                "coordinators {}/{} Ready ({} updated), brokers {}/{} Ready ({} updated)",
                c.ready, c.replicas, c.updated, b.ready, b.replicas, b.updated
            ),
        )
    };
    set("Ready", all_ready, ready_reason, ready_message);

    let hold = |f: fn(&Hold) -> bool| observed.holds.iter().find(|h| f(h));
    let roll = observed.roll.as_ref();
    let roll_message = |role: Role, fallback: &str| match roll.filter(|r| r.role == role) {
        Some(r) => format!("{} left: {}", r.pods_left.len(), r.message()),
        None => fallback.to_string(),
    };
    let (progressing, reason, message) = if hold(|h| matches!(h, Hold::Paused)).is_some() {
        (
            false,
            "ReconciliationPaused",
            "the oxka.io/paused annotation is set: the operator changes nothing until it is removed".to_string(),
        )
    } else if let Some(Hold::InvalidSpec(why)) = hold(|h| matches!(h, Hold::InvalidSpec(_))) {
        (false, "InvalidSpec", why.clone())
    } else if let Some(stuck) = roll.filter(|r| r.stuck().is_some()) {
        (false, "RollStuck", stuck.message())
    } else if let Some(Hold::Draining(d)) = hold(|h| matches!(h, Hold::Draining(_))) {
        (true, "Draining", d.message.clone())
    } else if let Some(Hold::Rebalancing(m)) = hold(|h| matches!(h, Hold::Rebalancing(_))) {
        (true, "Rebalancing", m.clone())
    } else if !c.on_latest_revision {
        (
            true,
            "RollingCoordinators",
            roll_message(
                Role::Coordinator,
                "the coordinator ensemble restarts one pod at a time, the Raft leader last; broker changes wait for it",
            ),
        )
    } else if !c.settled() {
        (
            true,
            "CoordinatorsNotReady",
            format!(
                "{}/{} coordinators are Ready; broker changes wait until all are",
                c.ready, c.replicas
            ),
        )
    } else if !b.on_latest_revision {
        (
            true,
            "RollingBrokers",
            roll_message(
                Role::Broker,
                "brokers restart one at a time, each once every partition keeps min.insync.replicas without it",
            ),
        )
    } else if !b.settled() {
        (
            true,
            "BrokersNotReady",
            format!("{}/{} brokers are Ready", b.ready, b.replicas),
        )
    } else if let Some(Hold::ScaleDownBlocked(why)) = hold(|h| matches!(h, Hold::ScaleDownBlocked(_))) {
        (false, "ScaleDownBlocked", why.clone())
    } else {
        (
            false,
            "Reconciled",
            "every pod runs the current configuration".to_string(),
        )
    };
    set("Progressing", progressing, reason, message);

    let stuck = roll.filter(|r| r.stuck().is_some()).map(|r| ("RollStuck", r.message()));
    let degraded = stuck.or_else(|| {
        observed.holds.iter().find_map(|h| match h {
            Hold::InvalidSpec(why) => Some(("InvalidSpec", why.clone())),
            Hold::ScaleDownBlocked(why) => Some(("ScaleDownBlocked", why.clone())),
            Hold::RackUnknown(why) => Some(("RackUnknown", why.clone())),
            _ => None,
        })
    });
    match degraded {
        Some((reason, why)) => set("Degraded", true, reason, why),
        None => set(
            "Degraded",
            false,
            "AsExpected",
            "the operator applied the spec".to_string(),
        ),
    }
    if let Some(canary) = &observed.canary {
        let (lost, reason, message) = data_loss(canary);
        set("DataLoss", lost, reason, message);
    }

    KafkaClusterStatus {
        observed_generation: observed.generation,
        conditions,
        coordinators: Some(role_status(c, observed.coordinator_hash.clone())),
        brokers: Some(role_status(b, observed.broker_hash.clone())),
        bootstrap_address: observed.bootstrap_address.clone(),
        roll: match roll {
            Some(r) => Some(roll_status(r, previous.and_then(|p| p.roll.as_ref()), now.clone())),
            // Between the last coordinator's restart and its readiness no tier has a step to take, but
            // the roll goes on with the brokers: it keeps its start and count.
            None if hold(|h| matches!(h, Hold::WaitingForCoordinators)).is_some() => {
                previous.and_then(|p| p.roll.clone()).map(|r| RollStatus {
                    state: "Waiting".to_string(),
                    pod: None,
                    message: "waiting for every coordinator to be Ready before the brokers roll".to_string(),
                    ..r
                })
            }
            None => None,
        },
        drain: observed.holds.iter().find_map(|h| match h {
            Hold::Draining(d) => Some(drain_status(d, previous.and_then(|p| p.drain.as_ref()), now.clone())),
            _ => None,
        }),
        canary: observed.canary.as_ref().map(canary_status),
        last_roll: observed
            .finished_roll
            .clone()
            .or_else(|| previous.and_then(|p| p.last_roll.clone())),
    }
}

fn drain_status(report: &DrainReport, previous: Option<&DrainStatus>, now: Time) -> DrainStatus {
    DrainStatus {
        brokers: report.brokers.clone(),
        partitions_left: report.partitions_left as i32,
        message: report.message.clone(),
        started_at: Some(
            previous
                .filter(|p| p.brokers == report.brokers)
                .and_then(|p| p.started_at.clone())
                .unwrap_or(now),
        ),
    }
}

fn roll_status(report: &RollReport, previous: Option<&RollStatus>, now: Time) -> RollStatus {
    let (state, pod) = match &report.decision {
        Decision::Done => ("Done", None),
        Decision::Wait(_) => ("Waiting", None),
        Decision::Restart { pod, .. } => ("Restarting", Some(pod.clone())),
        Decision::Stuck { pod, .. } => ("Stuck", Some(pod.clone())),
    };
    RollStatus {
        tier: format!("{}s", report.role.as_str()),
        state: state.to_string(),
        pod,
        pods_left: report.pods_left.clone(),
        message: report.message(),
        // One roll runs from the first report to the last, across both tiers.
        started_at: Some(previous.and_then(|p| p.started_at.clone()).unwrap_or(now)),
    }
}

fn role_status(r: Rollout, hash: Option<String>) -> RoleStatus {
    RoleStatus {
        replicas: r.replicas,
        ready_replicas: r.ready,
        updated_replicas: r.updated,
        config_hash: hash,
    }
}

#[cfg(test)]
mod tests {
    use super::super::roll::Decision;
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn settled(n: i32) -> Rollout {
        Rollout {
            replicas: n,
            ready: n,
            updated: n,
            on_latest_revision: true,
        }
    }

    fn observed(coordinators: Rollout, brokers: Rollout, holds: Vec<Hold>) -> Observed {
        Observed {
            generation: Some(2),
            coordinators,
            brokers,
            coordinator_hash: Some("c".into()),
            broker_hash: Some("b".into()),
            bootstrap_address: Some("x-bootstrap.ns.svc:9092".into()),
            holds,
            roll: None,
            canary: None,
            finished_roll: None,
        }
    }

    fn condition<'a>(s: &'a KafkaClusterStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn rolling_then_ready_keeps_transition_times_stable() {
        let rolling = Rollout {
            updated: 1,
            on_latest_revision: false,
            ..settled(3)
        };
        let s1 = status(None, &observed(settled(3), rolling, vec![]), at(10));
        assert_eq!(condition(&s1, "Progressing").status, "True");
        assert_eq!(condition(&s1, "Progressing").reason, "RollingBrokers");
        assert_eq!(condition(&s1, "Ready").status, "False");
        let s2 = status(Some(&s1), &observed(settled(3), settled(3), vec![]), at(20));
        assert_eq!(condition(&s2, "Ready").status, "True");
        assert_eq!(condition(&s2, "Progressing").reason, "Reconciled");
        assert_eq!(condition(&s2, "Ready").last_transition_time, at(20));
        assert_eq!(condition(&s2, "Degraded").last_transition_time, at(10));
        let s3 = status(Some(&s2), &observed(settled(3), settled(3), vec![]), at(30));
        assert_eq!(s2, s3, "a no-op reconcile must not change status");
    }

    #[test]
    fn blocked_scale_down_is_degraded_with_the_reason() {
        let why = "brokers 3, 4 still host replicas of 2 partitions".to_string();
        let s = status(
            None,
            &observed(settled(3), settled(5), vec![Hold::ScaleDownBlocked(why.clone())]),
            at(1),
        );
        assert_eq!(condition(&s, "Degraded").reason, "ScaleDownBlocked");
        assert_eq!(condition(&s, "Degraded").message, why);
        assert_eq!(condition(&s, "Progressing").reason, "ScaleDownBlocked");
        assert_eq!(condition(&s, "Ready").status, "True");
    }

    #[test]
    fn an_unknown_rack_is_degraded_with_the_node_and_key() {
        let why = "node n1 has no label topology.kubernetes.io/zone: broker 0 gets no broker.rack".to_string();
        let s = status(
            None,
            &observed(settled(3), settled(3), vec![Hold::RackUnknown(why.clone())]),
            at(1),
        );
        assert_eq!(condition(&s, "Degraded").status, "True");
        assert_eq!(condition(&s, "Degraded").reason, "RackUnknown");
        assert_eq!(condition(&s, "Degraded").message, why);
    }

    #[test]
    fn a_stateful_set_is_settled_only_on_its_latest_revision_with_every_pod_ready() {
        let mut sts: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "serviceName": "x", "template": {}},
            "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "observedGeneration": 3,
                       "currentRevision": "x-1", "updateRevision": "x-1"}
        }))
        .unwrap();
        assert!(Rollout::from_stateful_set(&sts).settled());
        sts.metadata.generation = Some(4); // the controller has not seen the new template yet
        assert!(!Rollout::from_stateful_set(&sts).settled());
        sts.metadata.generation = Some(3);
        // A new revision, no pod on it yet (OnDelete: currentRevision stays where it was).
        sts.status.as_mut().unwrap().update_revision = Some("x-2".into());
        sts.status.as_mut().unwrap().updated_replicas = Some(0);
        assert!(!Rollout::from_stateful_set(&sts).settled());
        sts.status.as_mut().unwrap().updated_replicas = Some(3);
        assert!(Rollout::from_stateful_set(&sts).settled());
        sts.status = None;
        assert_eq!(Rollout::from_stateful_set(&sts).replicas, 3);
        assert!(!Rollout::from_stateful_set(&sts).settled());
    }

    #[test]
    fn a_stuck_roll_is_degraded_naming_the_pod_and_shows_progress() {
        let rolling = Rollout {
            updated: 2,
            ready: 2,
            on_latest_revision: false,
            ..settled(3)
        };
        let mut o = observed(settled(3), rolling, vec![]);
        o.roll = Some(RollReport {
            role: Role::Broker,
            decision: Decision::Wait("pod demo-broker-2 is shutting down".into()),
            pods_left: vec!["demo-broker-0".into()],
        });
        let s1 = status(None, &o, at(10));
        assert_eq!(condition(&s1, "Progressing").reason, "RollingBrokers");
        assert_eq!(
            condition(&s1, "Progressing").message,
            "1 left: pod demo-broker-2 is shutting down"
        );
        let roll = s1.roll.clone().unwrap();
        assert_eq!((roll.tier.as_str(), roll.state.as_str()), ("brokers", "Waiting"));
        assert_eq!(roll.started_at, Some(at(10)));
        o.roll = Some(RollReport {
            role: Role::Broker,
            decision: Decision::Stuck {
                pod: "demo-broker-2".into(),
                reason: "pod demo-broker-2 cannot start (ImagePullBackOff)".into(),
            },
            pods_left: vec!["demo-broker-0".into()],
        });
        let s2 = status(Some(&s1), &o, at(20));
        assert_eq!(condition(&s2, "Degraded").reason, "RollStuck");
        assert!(condition(&s2, "Degraded")
            .message
            .starts_with("pod demo-broker-2 cannot start (ImagePullBackOff)"));
        assert_eq!(condition(&s2, "Progressing").reason, "RollStuck");
        let roll = s2.roll.unwrap();
        assert_eq!(
            (roll.state.as_str(), roll.pod.as_deref()),
            ("Stuck", Some("demo-broker-2"))
        );
        assert_eq!(roll.started_at, Some(at(10)), "one roll keeps its start time");
        o.roll = None;
        assert_eq!(status(Some(&s1), &o, at(30)).roll, None);
        // A pod that cannot start when nothing is left to roll (say, its node was cordoned) is reported
        // without claiming that a roll waits for it.
        let report = RollReport {
            role: Role::Coordinator,
            decision: Decision::Stuck {
                pod: "demo-coordinator-0".into(),
                reason: "pod demo-coordinator-0 cannot start (Unschedulable)".into(),
            },
            pods_left: vec![],
        };
        assert!(report
            .message()
            .ends_with("every pod runs the current revision, so no roll is held up by it"));
    }

    #[test]
    fn coordinators_roll_first() {
        let rolling = Rollout {
            on_latest_revision: false,
            ..settled(3)
        };
        let s = status(
            None,
            &observed(rolling, settled(3), vec![Hold::WaitingForCoordinators]),
            at(1),
        );
        assert_eq!(condition(&s, "Progressing").reason, "RollingCoordinators");
    }
}
