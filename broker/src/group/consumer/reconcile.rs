//! The reconciliation of a member's assignment with its target (Kafka's `CurrentAssignmentBuilder`):
//! a member first revokes the partitions it loses (staying at its epoch), and only then moves to the
//! target epoch and receives new partitions, and only those no other member still owns. Pure: the
//! caller passes who owns what.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::member::{Assignment, ConsumerMember, MemberState};

/// What reconciling needs to know besides the member.
pub struct Target<'a> {
    pub epoch: i32,
    pub partitions: &'a Assignment,
}

/// The member after one reconciliation step. `owned` is what the member reported owning in this
/// heartbeat (None: not sent). `owned_by_other(topic, partition)` says whether another member still
/// owns (or must still revoke) the partition.
pub fn reconcile(
    member: &ConsumerMember,
    target: &Target<'_>,
    owned: Option<&Assignment>,
    owned_by_other: &dyn Fn(&Uuid, i32) -> bool,
) -> ConsumerMember {
    match member.state {
        MemberState::Stable if member.member_epoch == target.epoch => member.clone(),
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            next_assignment(member, member.member_epoch, target, owned, owned_by_other)
        }
        MemberState::UnrevokedPartitions => {
            // Without its owned partitions we cannot know it revoked them: keep waiting.
            if owned.is_none() || owns_any(owned, &member.pending_revocation) {
                return member.clone();
            }
            let epoch = (member.member_epoch + 1).min(target.epoch);
            next_assignment(member, epoch, target, owned, owned_by_other)
        }
    }
}

/// Whether the member (by what it reported) still owns any of `revoked`. Unknown counts as owning.
fn owns_any(owned: Option<&Assignment>, revoked: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    revoked
        .iter()
        .any(|(topic, parts)| owned.get(topic).is_some_and(|o| !o.is_disjoint(parts)))
}

fn next_assignment(
    member: &ConsumerMember,
    epoch: i32,
    target: &Target<'_>,
    owned: Option<&Assignment>,
    owned_by_other: &dyn Fn(&Uuid, i32) -> bool,
) -> ConsumerMember {
    let topics: BTreeSet<&Uuid> = target.partitions.keys().chain(member.assigned.keys()).collect();
    let mut kept = Assignment::new();
    let mut revoke = Assignment::new();
    let mut add = Assignment::new();
    let mut unreleased = false;
    let empty = BTreeSet::new();
    for topic in topics {
        let wanted = target.partitions.get(topic).unwrap_or(&empty);
        let current = member.assigned.get(topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = current.intersection(wanted).copied().collect();
        let lose: BTreeSet<i32> = current.difference(&keep).copied().collect();
        let mut gain: BTreeSet<i32> = wanted.difference(&keep).copied().collect();
        let before = gain.len();
        gain.retain(|p| !owned_by_other(topic, *p));
        unreleased |= gain.len() != before;
        for (map, set) in [(&mut kept, keep), (&mut revoke, lose), (&mut add, gain)] {
            if !set.is_empty() {
                map.insert(*topic, set);
            }
        }
    }
    let mut next = member.clone();
    next.pending_revocation = Assignment::new();
    if !revoke.is_empty() && owns_any(owned, &revoke) {
        // Revocation first: the member stays at its epoch until it confirms.
        next.state = MemberState::UnrevokedPartitions;
        set_epoch(&mut next, epoch);
        next.assigned = kept;
        next.pending_revocation = revoke;
        return next;
    }
    for (topic, parts) in add {
        kept.entry(topic).or_default().extend(parts);
    }
    next.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    set_epoch(&mut next, target.epoch);
    next.assigned = kept;
    next
}

/// Kafka's `updateMemberEpoch`: the previous epoch remembers the one the member had before this step
/// (a member that lost the answer may come back with it).
fn set_epoch(member: &mut ConsumerMember, epoch: i32) {
    member.previous_member_epoch = member.member_epoch;
    member.member_epoch = epoch;
}
