use super::*;

const POLICY: Policy = Policy {
    ready_timeout: Duration::from_secs(300),
    settle: Duration::from_secs(10),
    address_settle: Duration::from_secs(30),
};

/// A Ready pod of ordinal `ordinal`, Ready for a minute, on the old revision when `stale`.
fn pod(ordinal: i32, stale: bool) -> PodView {
    PodView {
        name: format!("demo-broker-{ordinal}"),
        ordinal,
        stale,
        terminating: false,
        ready: true,
        since: Duration::from_secs(60),
        age: Duration::from_secs(600),
        waiting: None,
        restarts: 0,
    }
}

fn not_ready(mut p: PodView, secs: u64) -> PodView {
    p.ready = false;
    p.since = Duration::from_secs(secs);
    p
}

fn waiting(mut p: PodView, reason: &str) -> PodView {
    p.waiting = Some(Waiting {
        reason: reason.to_string(),
        message: "Back-off pulling image \"oxka:nope\"".to_string(),
    });
    not_ready(p, 20)
}

fn partition(index: i32, leader: i32, replicas: &[i32], isr: &[i32], min_insync: i32) -> PartitionView {
    PartitionView {
        topic: "orders".to_string(),
        partition: index,
        leader,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        min_insync,
    }
}

/// RF 3, min.insync 2, full ISR; leaders 0, 0, 1 (broker 2 leads nothing, broker 0 two).
fn healthy() -> Vec<PartitionView> {
    vec![
        partition(0, 0, &[0, 1, 2], &[0, 1, 2], 2),
        partition(1, 0, &[0, 1, 2], &[0, 1, 2], 2),
        partition(2, 1, &[1, 2, 0], &[1, 2, 0], 2),
    ]
}

fn kafka(partitions: Vec<PartitionView>) -> Safety {
    Safety::Kafka(Ok(partitions))
}

fn restarted(d: &Decision) -> &str {
    match d {
        Decision::Restart { pod, .. } => pod,
        other => panic!("expected a restart, got {other:?}"),
    }
}

#[test]
fn nothing_stale_is_done() {
    let pods = [pod(0, false), pod(1, false), pod(2, false)];
    assert_eq!(decide(&pods, 3, &kafka(healthy()), POLICY), Decision::Done);
    // Kafka is not even needed to say so.
    let unreachable = Safety::Kafka(Err("connection refused".into()));
    assert_eq!(decide(&pods, 3, &unreachable, POLICY), Decision::Done);
}

#[test]
fn brokers_leading_fewest_partitions_go_first_and_the_busiest_last() {
    let pods = [pod(0, true), pod(1, true), pod(2, true)];
    assert_eq!(restarted(&decide(&pods, 3, &kafka(healthy()), POLICY)), "demo-broker-2");
    let pods = [pod(0, true), pod(1, true), pod(2, false)];
    assert_eq!(restarted(&decide(&pods, 3, &kafka(healthy()), POLICY)), "demo-broker-1");
    // Equal leaderships: highest ordinal first, as the StatefulSet controller would.
    let even = vec![
        partition(0, 0, &[0, 1, 2], &[0, 1, 2], 2),
        partition(1, 1, &[0, 1, 2], &[0, 1, 2], 2),
        partition(2, 2, &[0, 1, 2], &[0, 1, 2], 2),
    ];
    let pods = [pod(0, true), pod(1, true), pod(2, true)];
    assert_eq!(restarted(&decide(&pods, 3, &kafka(even), POLICY)), "demo-broker-2");
}

#[test]
fn one_pod_at_a_time_each_after_the_previous_is_ready_and_settled() {
    let shutting_down = PodView {
        terminating: true,
        ..pod(2, true)
    };
    let pods = [pod(0, true), pod(1, true), shutting_down];
    assert!(
        matches!(decide(&pods, 3, &kafka(healthy()), POLICY), Decision::Wait(w) if w.contains("demo-broker-2 is shutting down"))
    );
    let pods = [pod(0, true), pod(1, true)];
    assert!(
        matches!(decide(&pods, 3, &kafka(healthy()), POLICY), Decision::Wait(w) if w.contains("ordinal 2 is being created"))
    );
    let pods = [pod(0, true), pod(1, true), not_ready(pod(2, false), 5)];
    assert!(
        matches!(decide(&pods, 3, &kafka(healthy()), POLICY), Decision::Wait(w) if w.contains("demo-broker-2 is not Ready yet"))
    );
    let just_ready = PodView {
        since: Duration::from_secs(3),
        ..pod(2, false)
    };
    let pods = [pod(0, true), pod(1, true), just_ready];
    assert!(
        matches!(decide(&pods, 3, &kafka(healthy()), POLICY), Decision::Wait(w) if w.contains("Ready for less than 10 s"))
    );
}

#[test]
fn the_next_broker_waits_until_clients_can_have_let_go_of_the_last_ones_old_address() {
    // Broker 2 was re-created 12 s ago and has been Ready for 11 s: settled, but clients that
    // resolved its name while its previous pod went away may still hold that pod's IP.
    let recreated = |age: u64| PodView {
        since: Duration::from_secs(11),
        age: Duration::from_secs(age),
        ..pod(2, false)
    };
    let pods = [pod(0, true), pod(1, true), recreated(12)];
    let d = decide(&pods, 3, &kafka(healthy()), POLICY);
    assert!(
        matches!(&d, Decision::Wait(w) if w.contains("demo-broker-2 was created less than 30 s ago")),
        "{d:?}"
    );
    let pods = [pod(0, true), pod(1, true), recreated(31)];
    assert!(matches!(
        decide(&pods, 3, &kafka(healthy()), POLICY),
        Decision::Restart { .. }
    ));
    // Coordinators are reached by brokers, which resolve names afresh: no such wait.
    let young = PodView {
        age: Duration::from_secs(12),
        ..coordinator(2, false)
    };
    let pods = [coordinator(0, true), coordinator(1, true), young];
    let leader_is_0 = Safety::Quorum { leader: Some(0) };
    assert_eq!(restarted(&decide(&pods, 3, &leader_is_0, POLICY)), "demo-coordinator-1");
}

#[test]
fn a_restarted_broker_must_be_back_in_every_isr_first() {
    let mut partitions = healthy();
    partitions[1].isr = vec![0, 1];
    let pods = [pod(0, true), pod(1, true), pod(2, false)];
    let d = decide(&pods, 3, &kafka(partitions.clone()), POLICY);
    assert!(
        matches!(&d, Decision::Wait(w) if w.contains("1 partitions are under-replicated") && w.contains("broker 2 is not in the ISR of orders-1")),
        "{d:?}"
    );
    // A replica missing from the ISR on a broker this cluster does not run (an id past the
    // StatefulSet) does not hold the roll.
    partitions[1].replicas = vec![0, 1, 7, 2];
    partitions[1].isr = vec![0, 1, 2];
    assert_eq!(
        restarted(&decide(&pods, 3, &kafka(partitions), POLICY)),
        "demo-broker-1"
    );
}

#[test]
fn a_broker_whose_restart_would_break_min_insync_waits() {
    // Replicas [0, 1, 2] but an ISR of [0, 1] (broker 2 lives elsewhere: not one of these pods).
    let partitions = vec![
        partition(0, 0, &[0, 1, 5], &[0, 1], 2),
        partition(1, 1, &[0, 1, 2], &[0, 1, 2], 2),
    ];
    let pods = [pod(0, true), pod(1, true), pod(2, false)];
    let d = decide(&pods, 3, &kafka(partitions), POLICY);
    assert!(
        matches!(&d, Decision::Wait(w) if w.contains("orders-0 would keep 1 in-sync replicas without broker") && w.contains("min.insync.replicas=2")),
        "{d:?}"
    );
    // A safe candidate is taken even when the preferred one is refused.
    let partitions = vec![
        partition(0, 1, &[1, 5, 6], &[1, 5], 2),
        partition(1, 0, &[0, 1, 2], &[0, 1, 2], 2),
    ];
    assert_eq!(
        restarted(&decide(&pods, 3, &kafka(partitions), POLICY)),
        "demo-broker-0"
    );
}

#[test]
fn partitions_with_replication_factor_at_most_min_insync_never_block() {
    let partitions = vec![partition(0, 0, &[0], &[0], 1), partition(1, 1, &[1, 2], &[1, 2], 2)];
    let pods = [pod(0, true), pod(1, true), pod(2, true)];
    assert_eq!(
        restarted(&decide(&pods, 3, &kafka(partitions), POLICY)),
        "demo-broker-2"
    );
}

#[test]
fn kafka_unreachable_means_wait_never_restart_blind() {
    let pods = [pod(0, true), pod(1, true), pod(2, true)];
    let d = decide(&pods, 3, &Safety::Kafka(Err("connection refused".into())), POLICY);
    assert!(
        matches!(&d, Decision::Wait(w) if w.contains("connection refused")),
        "{d:?}"
    );
    // Also for a stale pod that is not Ready while others are.
    let pods = [pod(0, true), pod(1, true), not_ready(pod(2, true), 30)];
    let d = decide(&pods, 3, &Safety::Kafka(Err("timed out".into())), POLICY);
    assert!(
        matches!(&d, Decision::Wait(w) if w.contains("cannot be asked")),
        "{d:?}"
    );
}

#[test]
fn a_cluster_that_is_entirely_down_is_still_rolled() {
    let down = Safety::Kafka(Err("connection refused".into()));
    let pods = [
        waiting(pod(0, true), "CrashLoopBackOff"),
        waiting(pod(1, true), "CrashLoopBackOff"),
        waiting(pod(2, true), "CrashLoopBackOff"),
    ];
    assert_eq!(restarted(&decide(&pods, 3, &down, POLICY)), "demo-broker-2");
    // The restarted pod starting does not hold back the other broken ones.
    let pods = [
        waiting(pod(0, true), "CrashLoopBackOff"),
        waiting(pod(1, true), "CrashLoopBackOff"),
        not_ready(pod(2, false), 5),
    ];
    assert_eq!(restarted(&decide(&pods, 3, &down, POLICY)), "demo-broker-1");
}

#[test]
fn a_pod_that_cannot_start_stops_the_roll_and_names_the_reason() {
    let pods = [pod(0, true), pod(1, true), waiting(pod(2, false), "ImagePullBackOff")];
    let d = decide(&pods, 3, &kafka(healthy()), POLICY);
    assert_eq!(
        d,
        Decision::Stuck {
            pod: "demo-broker-2".into(),
            reason: "pod demo-broker-2 cannot start (ImagePullBackOff: Back-off pulling image \"oxka:nope\")".into()
        }
    );
    // Not Ready past the deadline, without a reason from Kubernetes.
    let pods = [pod(0, true), pod(1, true), not_ready(pod(2, false), 301)];
    let d = decide(&pods, 3, &kafka(healthy()), POLICY);
    assert!(
        matches!(&d, Decision::Stuck { pod, reason } if pod == "demo-broker-2" && reason.contains("has not become Ready within 300 s")),
        "{d:?}"
    );
    // A waiting reason that passes by itself (ContainerCreating) is not stuck.
    let pods = [pod(0, true), pod(1, true), waiting(pod(2, false), "ContainerCreating")];
    assert!(matches!(decide(&pods, 3, &kafka(healthy()), POLICY), Decision::Wait(_)));
}

#[test]
fn a_new_spec_repairs_the_stuck_pod_first() {
    // The broken pod is now stale (the spec was fixed): it restarts first, even though the others are
    // stale too and Ready, and Kafka confirms no partition needs it (it left every ISR).
    let mut partitions = healthy();
    for p in &mut partitions {
        p.isr.retain(|r| *r != 1);
        if p.leader == 1 {
            p.leader = 0;
        }
    }
    let pods = [pod(0, true), waiting(pod(1, true), "ImagePullBackOff"), pod(2, true)];
    let d = decide(&pods, 3, &kafka(partitions), POLICY);
    assert_eq!(restarted(&d), "demo-broker-1");
    assert!(matches!(&d, Decision::Restart { reason, .. } if reason.contains("not Ready and runs an old revision")));
}

#[test]
fn a_stuck_pod_on_the_current_revision_is_reported_even_when_nothing_else_is_stale() {
    let pods = [pod(0, false), pod(1, false), waiting(pod(2, false), "CrashLoopBackOff")];
    assert!(
        matches!(decide(&pods, 3, &kafka(healthy()), POLICY), Decision::Stuck { pod, .. } if pod == "demo-broker-2")
    );
}

fn coordinator(ordinal: i32, stale: bool) -> PodView {
    PodView {
        name: format!("demo-coordinator-{ordinal}"),
        ..pod(ordinal, stale)
    }
}

#[test]
fn coordinators_roll_followers_first_and_the_leader_last() {
    let pods = [coordinator(0, true), coordinator(1, true), coordinator(2, true)];
    let leader_is_2 = Safety::Quorum { leader: Some(2) };
    assert_eq!(restarted(&decide(&pods, 3, &leader_is_2, POLICY)), "demo-coordinator-1");
    let pods = [coordinator(0, true), coordinator(1, false), coordinator(2, true)];
    assert_eq!(restarted(&decide(&pods, 3, &leader_is_2, POLICY)), "demo-coordinator-0");
    let pods = [coordinator(0, false), coordinator(1, false), coordinator(2, true)];
    let d = decide(&pods, 3, &leader_is_2, POLICY);
    assert_eq!(restarted(&d), "demo-coordinator-2");
    assert!(matches!(&d, Decision::Restart { reason, .. } if reason.contains("the Raft leader, restarted last")));
    let pods = [coordinator(0, true), coordinator(1, true), coordinator(2, true)];
    assert_eq!(
        restarted(&decide(&pods, 3, &Safety::Quorum { leader: None }, POLICY)),
        "demo-coordinator-2"
    );
}

#[test]
fn a_coordinator_that_cannot_start_stops_the_roll() {
    let pods = [
        coordinator(0, true),
        coordinator(1, true),
        waiting(coordinator(2, false), "ErrImagePull"),
    ];
    let d = decide(&pods, 3, &Safety::Quorum { leader: Some(0) }, POLICY);
    assert!(
        matches!(&d, Decision::Stuck { pod, reason } if pod == "demo-coordinator-2" && reason.contains("ErrImagePull")),
        "{d:?}"
    );
}
