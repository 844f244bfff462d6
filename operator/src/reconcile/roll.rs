//! Health-gated rolling restarts: which pod of a tier may restart now, if any. A pure function from
//! what the reconciler observed (the tier's pods, and Kafka's partition state or the ensemble's Raft
//! leader) to one `Decision`; `rolling` performs it. Both StatefulSets use `updateStrategy: OnDelete`, so
//! a pod restarts only when the operator deletes it, and it deletes at most one per reconciliation.
//!
//! Messages carry no durations that change every second: they go to status, and a status that changed
//! would trigger the next reconciliation at once.
//!
//! The rules, in the order they apply (Strimzi's KafkaRoller and KafkaAvailability follow the same
//! idea):
//!
//! 1. A pod shutting down or not yet re-created: wait.
//! 2. A pod on the current revision that cannot start (image pull or crash loop, unschedulable) or that
//!    stays not Ready past the deadline: the roll is stuck at that pod, and nothing else restarts. This
//!    is re-evaluated every time: when the pod recovers, or a new spec makes it stale, the roll goes on.
//! 3. A stale pod that is not Ready is restarted first: it serves nothing, and its new revision may be
//!    the fix. For brokers only when Kafka confirms that no partition depends on it, or when no broker
//!    is Ready at all (a cluster that is entirely down could otherwise never be repaired by a new spec).
//! 4. A pod on the current revision that is still starting, or Ready for less than the settle time:
//!    wait. Brokers also wait until the last re-created broker pod is `address_settle` old: a re-created
//!    pod has a new IP, and clients that resolved its name while the old pod went away may keep the old
//!    address that long (the JVM caches a lookup for 30 s, `networkaddress.cache.ttl`). Restarting the
//!    next broker sooner moves its partitions' leadership to a broker those clients cannot reach yet.
//! 5. Brokers: Kafka cannot be asked: wait (never restart blind). A partition whose ISR lacks one of
//!    this cluster's brokers: wait (the last restarted broker is not yet back in every ISR).
//! 6. Brokers: restart the stale broker leading the fewest partitions (highest ordinal first among
//!    equals) whose restart leaves every partition it is in-sync for with at least
//!    `min.insync.replicas` in-sync replicas; partitions whose replication factor is at most their
//!    `min.insync.replicas` cannot stay writable through any restart and never block. None may: wait.
//! 7. Coordinators: every member is Ready (so a quorum stands without any one of them): restart the
//!    stale member with the highest ordinal, the Raft leader last.

use std::collections::BTreeMap;
use std::time::Duration;

/// One pod of the tier being rolled, as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    /// The StatefulSet ordinal: a broker's `broker.id`, a coordinator's id minus one.
    pub ordinal: i32,
    /// Runs an older revision than the StatefulSet's update revision.
    pub stale: bool,
    /// Has a deletion timestamp: shutting down.
    pub terminating: bool,
    pub ready: bool,
    /// How long the pod has been Ready, or not Ready (since its Ready condition last changed, or since
    /// it was created).
    pub since: Duration,
    /// How long ago the pod was created (a re-created pod has a new IP address).
    pub age: Duration,
    /// Why the pod cannot start, when Kubernetes says so: a container waiting reason such as
    /// `ImagePullBackOff` or `CrashLoopBackOff` (with its message), or `Unschedulable`.
    pub waiting: Option<Waiting>,
    /// Container restarts, shown in the message of a pod that stays not Ready past the deadline.
    pub restarts: i32,
}

/// A reason Kubernetes gives for a pod not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Waiting reasons that do not go away by waiting: the pod's spec (image, command, config) is wrong.
const CANNOT_START: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "Unschedulable",
];

/// Kafka's view of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// The topic's effective `min.insync.replicas`.
    pub min_insync: i32,
}

impl PartitionView {
    fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// What makes a restart safe, per tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Safety {
    /// Brokers: every partition's replicas and ISR, or why Kafka could not be asked.
    Kafka(Result<Vec<PartitionView>, String>),
    /// Coordinators: the ordinal of the Raft leader, when some member said who it is.
    Quorum { leader: Option<i32> },
}

/// Deadlines of a roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A pod on the current revision not Ready for longer than this stops the roll.
    pub ready_timeout: Duration,
    /// How long a pod must have been Ready before the next one restarts (lets every broker's metadata
    /// catch up with the ISR changes of the last restart).
    pub settle: Duration,
    /// Brokers: how old the youngest broker pod must be before the next broker restarts (clients'
    /// DNS caches let go of its previous pod's address).
    pub address_settle: Duration,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every pod runs the update revision and none is stuck.
    Done,
    /// Nothing may restart yet; the reason is for status.
    Wait(String),
    /// Delete this pod (its StatefulSet re-creates it on the update revision).
    Restart { pod: String, reason: String },
    /// This pod does not become healthy; nothing else restarts until it does or the spec changes.
    Stuck { pod: String, reason: String },
}

/// The decision for one tier with `replicas` desired pods.
pub fn decide(pods: &[PodView], replicas: i32, safety: &Safety, policy: Policy) -> Decision {
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return Decision::Wait(format!("pod {} is shutting down", p.name));
    }
    if let Some(missing) = (0..replicas).find(|o| !pods.iter().any(|p| p.ordinal == *o)) {
        return Decision::Wait(format!("the pod with ordinal {missing} is being created"));
    }
    if let Some((pod, reason)) = pods.iter().filter(|p| !p.stale).find_map(|p| stuck(p, policy)) {
        return Decision::Stuck { pod, reason };
    }
    let anyone_ready = pods.iter().any(|p| p.ready);
    if let Some(p) = pods.iter().filter(|p| p.stale && !p.ready).max_by_key(|p| p.ordinal) {
        return restart_not_ready(p, anyone_ready, safety);
    }
    if let Some(p) = pods.iter().find(|p| !p.ready) {
        return Decision::Wait(format!(
            "pod {} is not Ready yet (the roll stops if it is not Ready within {} s)",
            p.name,
            policy.ready_timeout.as_secs()
        ));
    }
    let stale: Vec<&PodView> = pods.iter().filter(|p| p.stale).collect();
    if stale.is_empty() {
        return Decision::Done;
    }
    if let Some(p) = pods.iter().find(|p| p.since < policy.settle) {
        return Decision::Wait(format!(
            "pod {} has been Ready for less than {} s; the next restart waits for that",
            p.name,
            policy.settle.as_secs()
        ));
    }
    if let Some(p) = pods
        .iter()
        .filter(|p| p.age < policy.address_settle && matches!(safety, Safety::Kafka(_)))
        .min_by_key(|p| p.age)
    {
        return Decision::Wait(format!(
            "broker pod {} was created less than {} s ago; clients may still hold its previous pod's \
             address (the JVM caches a resolved name for 30 s), so the next broker restarts after that",
            p.name,
            policy.address_settle.as_secs()
        ));
    }
    match safety {
        Safety::Kafka(Err(why)) => Decision::Wait(format!(
            "cannot read partition state from Kafka ({why}); no broker restarts without it"
        )),
        Safety::Kafka(Ok(partitions)) => next_broker(&stale, pods, partitions),
        Safety::Quorum { leader } => next_coordinator(&stale, *leader),
    }
}

/// `Some((pod, reason))` when `p` (on the current revision) will not become healthy by waiting.
fn stuck(p: &PodView, policy: Policy) -> Option<(String, String)> {
    if p.ready {
        return None;
    }
    if let Some(w) = p.waiting.as_ref().filter(|w| CANNOT_START.contains(&w.reason.as_str())) {
        let message = if w.message.is_empty() {
            String::new()
        } else {
            format!(": {}", w.message)
        };
        return Some((
            p.name.clone(),
            format!("pod {} cannot start ({}{message})", p.name, w.reason),
        ));
    }
    (p.since > policy.ready_timeout).then(|| {
        (
            p.name.clone(),
            format!(
                "pod {} has not become Ready within {} s ({} container restarts)",
                p.name,
                policy.ready_timeout.as_secs(),
                p.restarts
            ),
        )
    })
}

fn restart_not_ready(p: &PodView, anyone_ready: bool, safety: &Safety) -> Decision {
    let restart = |why: &str| Decision::Restart {
        pod: p.name.clone(),
        reason: format!("pod {} is not Ready and runs an old revision: {why}", p.name),
    };
    match safety {
        Safety::Quorum { .. } => restart("it counts toward no quorum now"),
        Safety::Kafka(Ok(partitions)) => match blocker(p.ordinal, partitions) {
            None => restart("no partition depends on it"),
            Some(why) => Decision::Wait(format!("pod {} is not Ready; {why}", p.name)),
        },
        Safety::Kafka(Err(_)) if !anyone_ready => {
            restart("no broker is Ready, so there is no availability to protect (the cluster is down)")
        }
        Safety::Kafka(Err(why)) => Decision::Wait(format!(
            "pod {} is not Ready and runs an old revision, but Kafka cannot be asked whether partitions depend on it ({why})",
            p.name
        )),
    }
}

fn next_broker(stale: &[&PodView], pods: &[PodView], partitions: &[PartitionView]) -> Decision {
    let ours = |id: i32| pods.iter().any(|p| p.ordinal == id);
    let lagging: Vec<(String, i32)> = partitions
        .iter()
        .flat_map(|p| {
            p.replicas
                .iter()
                .filter(|r| ours(**r) && !p.isr.contains(r))
                .map(|r| (p.name(), *r))
        })
        .collect();
    if let Some((partition, broker)) = lagging.first() {
        return Decision::Wait(format!(
            "{} partitions are under-replicated (e.g. broker {broker} is not in the ISR of {partition}); waiting until every broker is back in every ISR",
            lagging.iter().map(|(p, _)| p).collect::<std::collections::BTreeSet<_>>().len()
        ));
    }
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for p in partitions {
        *leaders.entry(p.leader).or_default() += 1;
    }
    let mut candidates = stale.to_vec();
    candidates.sort_by_key(|p| {
        (
            leaders.get(&p.ordinal).copied().unwrap_or(0),
            std::cmp::Reverse(p.ordinal),
        )
    });
    let mut first_refusal = None;
    for p in &candidates {
        match blocker(p.ordinal, partitions) {
            None => {
                let led = leaders.get(&p.ordinal).copied().unwrap_or(0);
                return Decision::Restart {
                    pod: p.name.clone(),
                    reason: format!(
                        "every broker is in every ISR, and without broker {} every partition keeps min.insync.replicas in-sync replicas (it leads {led} partitions)",
                        p.ordinal
                    ),
                };
            }
            Some(why) => {
                first_refusal.get_or_insert(format!("not restarting pod {}: {why}", p.name));
            }
        }
    }
    Decision::Wait(first_refusal.unwrap_or_default())
}

/// Why restarting `broker` would take a partition below its `min.insync.replicas`, if it would.
fn blocker(broker: i32, partitions: &[PartitionView]) -> Option<String> {
    partitions
        .iter()
        .find(|p| {
            p.isr.contains(&broker)
                && p.replicas.len() as i32 > p.min_insync
                && (p.isr.len() as i32 - 1) < p.min_insync
        })
        .map(|p| {
            format!(
                "{} would keep {} in-sync replicas without broker {broker} (ISR {:?}), below its min.insync.replicas={}",
                p.name(),
                p.isr.len() - 1,
                p.isr,
                p.min_insync
            )
        })
}

fn next_coordinator(stale: &[&PodView], leader: Option<i32>) -> Decision {
    let p = stale
        .iter()
        .min_by_key(|p| (Some(p.ordinal) == leader, std::cmp::Reverse(p.ordinal)))
        .expect("called with stale pods");
    let role = match leader {
        Some(l) if l == p.ordinal => "the Raft leader, restarted last",
        Some(_) => "a follower (the Raft leader restarts last)",
        None => "the Raft leader is unknown, so highest ordinal first",
    };
    Decision::Restart {
        pod: p.name.clone(),
        reason: format!("every coordinator is Ready; pod {} is {role}", p.name),
    }
}

#[cfg(test)]
#[path = "roll_tests.rs"]
mod tests;
