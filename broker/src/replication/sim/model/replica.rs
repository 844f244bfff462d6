//! A broker's periodic work and its follower side: metadata (`Broker::install_metadata`,
//! `ReplicaManager::apply_image`/`follow`), the fetcher (`FetcherTask::build_request`/`process`) and
//! `Log::truncate_to`.

use super::*;
use crate::replication::partition_state::truncation_offset;

impl Sim {
    /// A broker's periodic work: metadata, fetching as follower, ISR checks and acks=all as leader.
    pub(super) fn broker_tick(&mut self, i: usize) {
        let id = self.brokers[i].id;
        if self.net.connected(id, CONTROLLER) && self.rng.chance(if self.faults_on { 300 } else { 800 }) {
            // `follow_metadata` installs whole images: the latest, or (from a lagging coordinator) an
            // older one that is still newer than what this broker has.
            let lagging = self.config.lagging_metadata && self.faults_on && self.rng.chance(200);
            let behind = if lagging { self.rng.below(8) as usize } else { 0 };
            self.catch_up_metadata(i, behind);
        }
        let step = self.step;
        let b = &mut self.brokers[i];
        if b.fetch_deadline.is_some_and(|d| d <= step) {
            b.fetch_deadline = None;
            b.backoff_until = step + FETCH_BACKOFF_STEPS;
        }
        if b.alter.as_ref().is_some_and(|a| a.deadline <= step) {
            // Unanswered: `IsrClient::submit` classifies it like any failure.
            self.alter_failed(i, None);
        }
        let b = &mut self.brokers[i];
        if step.is_multiple_of(HW_CHECKPOINT_STEPS) {
            b.checkpointed_hw = b.high_watermark;
        }
        self.fetch(i);
        self.shrink_isr(i);
        self.complete_waiters(i);
    }

    /// Installs the image `behind` versions before the latest if it is newer than this broker's
    /// (`Broker::install_metadata`, then `ReplicaManager::apply_image` if the image includes this
    /// broker's registration).
    pub fn catch_up_metadata(&mut self, i: usize, behind: usize) {
        let latest = self.controller.history.len() - 1;
        let target = latest.saturating_sub(behind);
        let b = &mut self.brokers[i];
        if b.image_version >= target {
            return;
        }
        b.image_version = target;
        let includes_registration = b.broker_epoch > 0 && self.controller.history[target].0 >= b.broker_epoch as u64;
        if includes_registration || self.config.variant == Variant::RolesFromAnyImage {
            self.follow(i);
        }
    }

    /// `ReplicaManager::follow` for the partition, then `maybe_advance_high_watermark`.
    pub(super) fn follow(&mut self, i: usize) {
        let now = self.now(self.brokers[i].id);
        let version = self.brokers[i].image_version;
        let Some(p) = self.controller.history[version]
            .1
            .topics
            .get(TOPIC)
            .map(|t| t.partitions[0].clone())
        else {
            return;
        };
        let assignment = PartitionAssignment {
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        };
        let b = &mut self.brokers[i];
        let current_epoch = b.role.leader_epoch();
        if assignment.leader_epoch < current_epoch {
            return;
        }
        let same_epoch = assignment.leader_epoch == current_epoch;
        let log_end_offset = b.log_end_offset();
        let mut line = None;
        if assignment.leader == b.id {
            if let (true, Role::Leader(state)) = (same_epoch, &mut b.role) {
                state.update_assignment(&assignment, log_end_offset, now);
            } else {
                if b.cache.latest_epoch().is_none_or(|e| e < assignment.leader_epoch) {
                    b.cache.assign(assignment.leader_epoch, log_end_offset);
                }
                b.role = Role::Leader(LeaderState::new(b.id, &assignment, log_end_offset, now));
                line = Some(format!(
                    "broker {} leads at epoch {} (isr {:?}, log end {log_end_offset}, hw {})",
                    b.id, assignment.leader_epoch, assignment.isr, b.high_watermark
                ));
            }
        } else if assignment.leader < 0 {
            if !(matches!(b.role, Role::Offline { .. }) && same_epoch) {
                b.role = Role::Offline {
                    leader_epoch: assignment.leader_epoch,
                };
                line = Some(format!("broker {} offline at epoch {}", b.id, assignment.leader_epoch));
            }
        } else {
            let unchanged =
                matches!(b.role, Role::Follower { leader, .. } if same_epoch && leader == assignment.leader);
            if !unchanged {
                b.role = Role::Follower {
                    leader: assignment.leader,
                    leader_epoch: assignment.leader_epoch,
                };
                b.fetch_deadline = None;
                b.backoff_until = 0;
                line = Some(format!(
                    "broker {} follows {} at epoch {}",
                    b.id, assignment.leader, assignment.leader_epoch
                ));
            }
        }
        self.maybe_advance_high_watermark(i);
        if let Some(line) = line {
            self.log(line);
        }
    }

    /// `FetcherTask::process` for one partition of a Fetch answer.
    pub(super) fn process_fetch_answer(
        &mut self,
        i: usize,
        leader: i32,
        leader_epoch: i32,
        fetch_offset: i64,
        result: FetchResult,
    ) {
        let step = self.step;
        let b = &mut self.brokers[i];
        let following =
            matches!(b.role, Role::Follower { leader: l, leader_epoch: e } if l == leader && e == leader_epoch);
        if !following {
            return;
        }
        b.fetch_deadline = None;
        let log_end_offset = b.log_end_offset();
        match result {
            FetchResult::Error(_error) => b.backoff_until = step + FETCH_BACKOFF_STEPS,
            _ if log_end_offset != fetch_offset => {}
            FetchResult::Diverging(epoch, end) => {
                let local = b.cache.end_offset_for(epoch, log_end_offset);
                let to = truncation_offset(epoch, end, local, log_end_offset);
                let line = format!(
                    "broker {} diverges from {leader} (epoch {epoch} ends at {end} there): truncates {log_end_offset} -> {to}",
                    b.id
                );
                self.truncate_to(i, to);
                self.log(line);
            }
            FetchResult::Records {
                records,
                high_watermark,
            } => {
                for r in records {
                    let offset = b.log_end_offset();
                    b.cache.assign(r.epoch, offset);
                    b.log.push(r);
                }
                let hw = high_watermark.min(b.log_end_offset());
                if hw > b.high_watermark {
                    b.high_watermark = hw;
                }
            }
        }
    }

    /// `Log::truncate_to`. Truncating below the high watermark is a violation (invariant 2).
    pub(super) fn truncate_to(&mut self, i: usize, target: i64) {
        let b = &mut self.brokers[i];
        let log_end_offset = b.log_end_offset();
        if target >= log_end_offset {
            b.cache.truncate_from_end(log_end_offset);
            return;
        }
        if target < b.high_watermark && self.config.check_no_loss {
            self.events.push(format!(
                "broker {} truncated to {target}, below its high watermark {}",
                b.id, b.high_watermark
            ));
        }
        b.log.truncate(target as usize);
        b.high_watermark = b.high_watermark.min(target);
        b.cache.truncate_from_end(target);
    }
}
