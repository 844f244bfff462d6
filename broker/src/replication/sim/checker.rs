//! The invariants, checked after every step (`Checker::check`) and at the end of a history
//! (`converged`):
//!
//! 1. No acknowledged acks=all record is lost: the broker that leads at the controller's current
//!    leader epoch (once it knows it) has every acknowledged record at its offset.
//! 2. Logs never diverge below the high watermark: any two brokers agree below the smaller of their
//!    high watermarks, and no follower truncates below its own.
//! 3. A leader's high watermark never decreases during its leadership (one epoch of one
//!    incarnation); the leader epoch in the controller's image, and in each broker's applied image,
//!    only increases.
//! 4. (Liveness, at the end) with faults stopped and the network healed, every broker's log equals the
//!    leader's up to the leader's high watermark and the ISR is all three brokers.
//!
//! 1 and 2 are checked only where they must hold (`Config::check_no_loss`): not with unclean election,
//! and not for acks=1 records.

use std::collections::BTreeMap;

use super::model::{Sim, TOPIC};
use crate::replication::hosted::Role;

#[derive(Debug, Default)]
pub(super) struct Checker {
    /// Per broker: (incarnation, leader epoch, high watermark) of its current leadership.
    leader_hw: BTreeMap<i32, (u64, i32, i64)>,
    controller_epoch: i32,
    /// Per broker: (incarnation, leader epoch of its applied image).
    applied_epoch: BTreeMap<i32, (u64, i32)>,
}

impl Checker {
    pub fn check(&mut self, sim: &mut Sim) -> Result<(), String> {
        if let Some(event) = sim.events.pop() {
            return Err(format!("invariant 2: {event}"));
        }
        let p = &sim.controller.image.topics[TOPIC].partitions[0];
        let (leader, leader_epoch) = (p.leader, p.leader_epoch);
        if leader_epoch < self.controller_epoch {
            return Err(format!(
                "invariant 3: the controller's leader epoch went from {} to {leader_epoch}",
                self.controller_epoch
            ));
        }
        self.controller_epoch = leader_epoch;
        if sim.config.check_no_loss && leader > 0 {
            let b = &sim.brokers[(leader - 1) as usize];
            if b.alive && matches!(&b.role, Role::Leader(s) if s.leader_epoch == leader_epoch) {
                for (offset, id) in &sim.acked {
                    let found = b.log.get(*offset as usize).map(|r| r.id);
                    if found != Some(*id) {
                        return Err(format!(
                            "invariant 1: leader {leader} at epoch {leader_epoch} lacks acknowledged record {id} at offset {offset} (has {found:?})"
                        ));
                    }
                }
            }
        }
        if sim.config.check_no_loss {
            for a in &sim.brokers {
                for b in &sim.brokers {
                    if a.id >= b.id {
                        continue;
                    }
                    let below = a.high_watermark.min(b.high_watermark) as usize;
                    let upto = below.min(a.log.len()).min(b.log.len());
                    if let Some(o) = (0..upto).find(|o| a.log[*o] != b.log[*o]) {
                        return Err(format!(
                            "invariant 2: brokers {} and {} differ at offset {o} below their high watermarks ({}, {}): {:?} vs {:?}",
                            a.id, b.id, a.high_watermark, b.high_watermark, a.log[o], b.log[o]
                        ));
                    }
                    if below > a.log.len().min(b.log.len()) {
                        return Err(format!(
                            "invariant 2: a high watermark past a log end (broker {} hw {} leo {}, broker {} hw {} leo {})",
                            a.id, a.high_watermark, a.log.len(), b.id, b.high_watermark, b.log.len()
                        ));
                    }
                }
            }
        }
        for b in &sim.brokers {
            if let (true, Role::Leader(s)) = (b.alive, &b.role) {
                let now = (b.incarnation, s.leader_epoch, b.high_watermark);
                if let Some(&(inc, epoch, hw)) = self.leader_hw.get(&b.id) {
                    if inc == now.0 && epoch == now.1 && now.2 < hw {
                        return Err(format!(
                            "invariant 3: leader {} at epoch {epoch} moved its high watermark back from {hw} to {}",
                            b.id, now.2
                        ));
                    }
                }
                self.leader_hw.insert(b.id, now);
            }
            let applied = &sim.controller.history[b.image_version].1;
            if let Some(t) = applied.topics.get(TOPIC) {
                let now = (b.incarnation, t.partitions[0].leader_epoch);
                if let Some(&(inc, epoch)) = self.applied_epoch.get(&b.id) {
                    if inc == now.0 && now.1 < epoch {
                        return Err(format!(
                            "invariant 3: broker {} applied leader epoch {} after {epoch}",
                            b.id, now.1
                        ));
                    }
                }
                self.applied_epoch.insert(b.id, now);
            }
        }
        Ok(())
    }
}

/// Invariant 4: whether the healed cluster has converged (every broker alive, registered, unfenced,
/// on the latest image, in the ISR, with the leader's log up to its high watermark), and if not, why.
pub(super) fn converged(sim: &Sim) -> Result<(), String> {
    let image = &sim.controller.image;
    let p = &image.topics[TOPIC].partitions[0];
    let mut isr = p.isr.clone();
    isr.sort_unstable();
    if isr != [1, 2, 3] {
        return Err(format!("the ISR is {:?} (leader {})", p.isr, p.leader));
    }
    if p.leader < 0 {
        return Err("no leader".into());
    }
    let leader = &sim.brokers[(p.leader - 1) as usize];
    if !matches!(&leader.role, Role::Leader(s) if s.leader_epoch == p.leader_epoch) {
        return Err(format!(
            "broker {} does not know it leads at epoch {}",
            leader.id, p.leader_epoch
        ));
    }
    let hw = leader.high_watermark as usize;
    if hw < leader.log.len() {
        return Err(format!(
            "the leader's high watermark {hw} is below its log end {}",
            leader.log.len()
        ));
    }
    for b in &sim.brokers {
        if b.image_version + 1 != sim.controller.history.len() {
            return Err(format!("broker {} has not applied the latest image", b.id));
        }
        if image.brokers.get(&b.id).is_none_or(|r| r.fenced) {
            return Err(format!("broker {} is fenced", b.id));
        }
        if b.log.len() < hw || b.log[..hw] != leader.log[..hw] {
            return Err(format!(
                "broker {}'s log (end {}) differs from the leader's below its high watermark {hw}",
                b.id,
                b.log.len()
            ));
        }
    }
    Ok(())
}
