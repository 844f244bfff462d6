//! Partition reassignment (KIP-455, as KRaft does it), as pure functions of a partition's state.
//!
//! Starting: the replica set becomes the target followed by the current replicas not in it; those
//! are marked `adding` (target minus current) and `removing` (current minus target); ISR and leader
//! are unchanged. The new replicas get logs and fetch from the leader like any follower, and its leader
//! adds them to the ISR once they have caught up. Completing (the controller checks every image): once
//! every adding replica is in the ISR, the replica set becomes the target, the removed replicas leave
//! the ISR, and a leader being removed hands leadership to the first target replica in the ISR (a new
//! leader epoch). Cancelling goes back to the original replicas (the current ones minus those being
//! added). Brokers that stop being replicas delete their copy.

use super::cluster_image::PartitionState;

/// Why a reassignment cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassignmentError {
    /// INVALID_REPLICA_ASSIGNMENT, with the reason.
    InvalidAssignment(String),
    /// NO_REASSIGNMENT_IN_PROGRESS: a cancel for a partition that is not being reassigned.
    NoneInProgress,
}

/// The partition with a reassignment to `target` started (or, with `None`, the one in progress
/// cancelled). `registered` says whether a broker id may receive a replica.
pub fn start(
    p: &PartitionState,
    target: Option<&[i32]>,
    registered: impl Fn(i32) -> bool,
) -> Result<PartitionState, ReassignmentError> {
    let Some(target) = target else {
        return cancel(p);
    };
    if target.is_empty() {
        return Err(ReassignmentError::InvalidAssignment(
            "the target replica list is empty".into(),
        ));
    }
    let mut distinct = target.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != target.len() {
        return Err(ReassignmentError::InvalidAssignment(format!(
            "the target replica list {target:?} names a broker twice"
        )));
    }
    if let Some(unknown) = target.iter().find(|b| !registered(**b)) {
        return Err(ReassignmentError::InvalidAssignment(format!(
            "broker {unknown} in the target replica list {target:?} is not registered"
        )));
    }
    // A new target replaces one in progress: start from the original replicas.
    let original = original_replicas(p);
    let mut replicas = target.to_vec();
    replicas.extend(original.iter().copied().filter(|r| !target.contains(r)));
    let adding: Vec<i32> = target.iter().copied().filter(|r| !original.contains(r)).collect();
    let removing: Vec<i32> = original.iter().copied().filter(|r| !target.contains(r)).collect();
    Ok(PartitionState {
        replicas,
        adding_replicas: adding,
        removing_replicas: removing,
        partition_epoch: p.partition_epoch + 1,
        ..p.clone()
    })
}

/// The replicas before the reassignment in progress (all of them when there is none).
fn original_replicas(p: &PartitionState) -> Vec<i32> {
    p.replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect()
}

fn cancel(p: &PartitionState) -> Result<PartitionState, ReassignmentError> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return Err(ReassignmentError::NoneInProgress);
    }
    let replicas = original_replicas(p);
    Ok(finish(p, replicas))
}

/// The partition with its reassignment completed, once every adding replica is in the ISR; `None` while
/// some are still catching up, or when no reassignment is in progress.
pub fn completion(p: &PartitionState) -> Option<PartitionState> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return None;
    }
    if !p.adding_replicas.iter().all(|r| p.isr.contains(r)) {
        return None;
    }
    let target: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.removing_replicas.contains(r))
        .collect();
    let done = finish(p, target);
    // Never complete into a partition without an in-sync replica: wait instead.
    (!done.isr.is_empty()).then_some(done)
}

/// Sets the replica set to `replicas`, keeps the ISR members among them, moves leadership to the
/// first of them in the ISR if the leader is not among them, and clears the reassignment.
fn finish(p: &PartitionState, replicas: Vec<i32>) -> PartitionState {
    let isr: Vec<i32> = p.isr.iter().copied().filter(|r| replicas.contains(r)).collect();
    let leader = if replicas.contains(&p.leader) {
        p.leader
    } else {
        replicas.iter().copied().find(|r| isr.contains(r)).unwrap_or(-1)
    };
    PartitionState {
        leader_epoch: if leader != p.leader {
            p.leader_epoch + 1
        } else {
            p.leader_epoch
        },
        leader,
        isr,
        replicas,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        partition_epoch: p.partition_epoch + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionState {
        PartitionState {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 3,
            partition_epoch: 7,
            adding_replicas: vec![],
            removing_replicas: vec![],
        }
    }

    #[test]
    fn moving_a_partition_adds_first_and_removes_once_caught_up() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let moving = start(&p, Some(&[4, 2, 3]), |_| true).unwrap();
        assert_eq!(moving.replicas, vec![4, 2, 3, 1]);
        assert_eq!(
            (moving.adding_replicas.clone(), moving.removing_replicas.clone()),
            (vec![4], vec![1])
        );
        assert_eq!((moving.leader, moving.leader_epoch, moving.partition_epoch), (1, 3, 8));
        assert_eq!(completion(&moving), None, "broker 4 is not in sync yet");
        let caught_up = PartitionState {
            isr: vec![1, 2, 3, 4],
            ..moving
        };
        let done = completion(&caught_up).unwrap();
        assert_eq!(done.replicas, vec![4, 2, 3]);
        assert_eq!(done.isr, vec![2, 3, 4]);
        assert_eq!(
            (done.leader, done.leader_epoch),
            (4, 4),
            "the removed leader hands over to the first target replica in sync"
        );
        assert!(done.adding_replicas.is_empty() && done.removing_replicas.is_empty());
        assert_eq!(completion(&done), None);
    }

    #[test]
    fn a_leader_that_stays_keeps_its_epoch_and_cancelling_restores_the_original() {
        let p = partition(&[1, 2], &[1, 2], 2);
        let moving = start(&p, Some(&[2, 3]), |_| true).unwrap();
        let done = completion(&PartitionState {
            isr: vec![1, 2, 3],
            ..moving.clone()
        })
        .unwrap();
        assert_eq!(
            (done.replicas.clone(), done.leader, done.leader_epoch),
            (vec![2, 3], 2, 3)
        );
        let cancelled = start(&moving, None, |_| true).unwrap();
        // Kafka's revert keeps the current order minus the replicas being added.
        assert_eq!(
            (cancelled.replicas.clone(), cancelled.isr.clone()),
            (vec![2, 1], vec![1, 2])
        );
        assert_eq!(
            start(&cancelled, None, |_| true),
            Err(ReassignmentError::NoneInProgress)
        );
        // A new target while one is in progress starts from the original replicas.
        let again = start(&moving, Some(&[2, 4]), |_| true).unwrap();
        assert_eq!(
            (again.replicas, again.adding_replicas, again.removing_replicas),
            (vec![2, 4, 1], vec![4], vec![1])
        );
    }

    #[test]
    fn bad_targets_are_refused_with_the_reason() {
        let p = partition(&[1, 2], &[1, 2], 1);
        for (target, needle) in [(vec![], "empty"), (vec![1, 1], "twice"), (vec![1, 9], "broker 9")] {
            match start(&p, Some(&target), |b| b < 5) {
                Err(ReassignmentError::InvalidAssignment(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{target:?}: {other:?}"),
            }
        }
    }
}
