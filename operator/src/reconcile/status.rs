//! Status: a pure function from what the reconciler observed to the KafkaCluster's conditions and
//! counts. `lastTransitionTime` only moves when a condition's status flips, so a no-op reconcile
//! writes nothing.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{KafkaClusterStatus, RoleStatus};

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
        let same_revision = status.current_revision.is_some() && status.current_revision == status.update_revision;
        Rollout {
            replicas: desired,
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            on_latest_revision: observed && same_revision && status.replicas == desired,
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
    /// Brokers to remove still hold data (or that could not be checked): kept at the current count.
    ScaleDownBlocked(String),
    /// Broker changes wait until the coordinator ensemble has rolled and is Ready.
    WaitingForCoordinators,
    /// The pause annotation is set.
    Paused,
    /// Some broker's `broker.rack` could not be learned (node without the label, or unreadable).
    RackUnknown(String),
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
    let (progressing, reason, message) = if hold(|h| matches!(h, Hold::Paused)).is_some() {
        (
            false,
            "ReconciliationPaused",
            "the oxka.io/paused annotation is set: the operator changes nothing until it is removed".to_string(),
        )
    } else if let Some(Hold::InvalidSpec(why)) = hold(|h| matches!(h, Hold::InvalidSpec(_))) {
        (false, "InvalidSpec", why.clone())
    } else if !c.on_latest_revision {
        (
            true,
            "RollingCoordinators",
            "the coordinator ensemble is restarting one pod at a time, each after the previous is Ready; broker changes wait for it".to_string(),
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
            "brokers are restarting one at a time, each after the previous is Ready".to_string(),
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

    let degraded = observed.holds.iter().find_map(|h| match h {
        Hold::InvalidSpec(why) => Some(("InvalidSpec", why.clone())),
        Hold::ScaleDownBlocked(why) => Some(("ScaleDownBlocked", why.clone())),
        Hold::RackUnknown(why) => Some(("RackUnknown", why.clone())),
        _ => None,
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

    KafkaClusterStatus {
        observed_generation: observed.generation,
        conditions,
        coordinators: Some(role_status(c, observed.coordinator_hash.clone())),
        brokers: Some(role_status(b, observed.broker_hash.clone())),
        bootstrap_address: observed.bootstrap_address.clone(),
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
        sts.status.as_mut().unwrap().update_revision = Some("x-2".into());
        assert!(!Rollout::from_stateful_set(&sts).settled());
        sts.status = None;
        assert_eq!(Rollout::from_stateful_set(&sts).replicas, 3);
        assert!(!Rollout::from_stateful_set(&sts).settled());
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
