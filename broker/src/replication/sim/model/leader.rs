//! The leader's side: `ReplicaManager::follower_fetch`, `append_now` and `await_replication`,
//! `shrink_isrs`, and `IsrClient` (AlterPartition in flight, retried or dropped by
//! `isr_change_failure`).

use super::*;
use crate::replication::manager::{check_epoch, diverging_epoch_with};
use crate::replication::partition_state::{isr_change_failure, IsrChangeFailure};

impl Sim {
    /// The high watermark the leader state allows (or the broken variant's).
    pub(super) fn hw_target(&self, state: &LeaderState, log_end_offset: i64, current: i64) -> i64 {
        if self.config.variant == Variant::HwOverCommittedIsr {
            let mut committed_only = state.clone();
            committed_only.pending_isr = None;
            return committed_only.high_watermark(log_end_offset, current);
        }
        state.high_watermark(log_end_offset, current)
    }

    /// `HostedPartition::maybe_advance_high_watermark`.
    pub(super) fn maybe_advance_high_watermark(&mut self, i: usize) {
        let b = &self.brokers[i];
        let Role::Leader(state) = &b.role else {
            return;
        };
        let target = self.hw_target(state, b.log_end_offset(), b.high_watermark);
        if target > b.high_watermark {
            self.brokers[i].high_watermark = target;
        }
    }

    /// The fetcher: one Fetch in flight to the leader it follows, from the log end offset, naming the
    /// epoch of its last record (`FetcherTask::build_request`).
    pub(super) fn fetch(&mut self, i: usize) {
        let step = self.step;
        let b = &self.brokers[i];
        let Role::Follower { leader, leader_epoch } = b.role else {
            return;
        };
        if b.fetch_deadline.is_some() || b.backoff_until > step {
            return;
        }
        let message = Message::Fetch {
            broker_epoch: b.broker_epoch,
            fetch_offset: b.log_end_offset(),
            last_fetched_epoch: b.cache.latest_epoch().unwrap_or(-1),
            current_leader_epoch: leader_epoch,
        };
        let from = b.id;
        self.brokers[i].fetch_deadline = Some(step + RPC_TIMEOUT_STEPS);
        self.net.send(&mut self.rng, step, from, leader, message);
    }

    /// `ReplicaManager::follower_fetch` and the read after it, on the leader.
    pub(super) fn follower_fetch(
        &mut self,
        i: usize,
        follower: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
    ) -> FetchResult {
        let now = self.now(self.brokers[i].id);
        // `api::fetch::record_follower_fetch`: eligibility from this broker's (maybe stale) image.
        let eligible = self.controller.history[self.brokers[i].image_version]
            .1
            .brokers
            .get(&follower)
            .is_some_and(|b| !b.fenced && (broker_epoch < 0 || b.epoch == broker_epoch));
        let b = &self.brokers[i];
        if let Err(e) = check_epoch(b.role.leader_epoch(), current_leader_epoch) {
            return FetchResult::Error(e);
        }
        let Role::Leader(state) = &b.role else {
            return FetchResult::Error(ResponseError::NotLeaderOrFollower);
        };
        let log_end_offset = b.log_end_offset();
        let divergence = diverging_epoch_with(
            |epoch| b.cache.end_offset_for(epoch, log_end_offset),
            fetch_offset,
            last_fetched_epoch,
        )
        .filter(|_| self.config.variant != Variant::IgnoreDivergingEpoch);
        if let Some((epoch, end)) = divergence {
            return FetchResult::Diverging(epoch, end);
        }
        let mut state = state.clone();
        if state.record_fetch(follower, fetch_offset, log_end_offset, now).is_err() {
            return FetchResult::Error(ResponseError::NotLeaderOrFollower);
        }
        let current = b.high_watermark;
        let target = self.hw_target(&state, log_end_offset, current);
        let hw = target.max(current);
        let proposal = state.isr_expansion(follower, hw, eligible);
        if let Some(p) = &proposal {
            state.begin_isr_change(p);
        }
        let b = &mut self.brokers[i];
        b.high_watermark = hw;
        b.role = Role::Leader(state);
        let id = b.id;
        if let Some(p) = proposal {
            self.log(format!("leader {id} proposes ISR {:?} ({follower} caught up)", p.isr));
            self.submit_alter(i, p, false);
        }
        let b = &self.brokers[i];
        if fetch_offset > b.log_end_offset() {
            return FetchResult::Error(ResponseError::OffsetOutOfRange);
        }
        let end = (fetch_offset as usize + MAX_FETCH_RECORDS).min(b.log.len());
        FetchResult::Records {
            records: b.log[fetch_offset as usize..end].to_vec(),
            high_watermark: b.high_watermark,
        }
    }

    /// `IsrClient::submit`/`send`: AlterPartition with the members' broker epochs from this broker's
    /// image.
    pub(super) fn submit_alter(&mut self, i: usize, proposal: IsrProposal, retried: bool) {
        self.next_alter_seq += 1;
        let seq = self.next_alter_seq;
        let b = &self.brokers[i];
        let image = &self.controller.history[b.image_version].1;
        let member_epochs = proposal
            .isr
            .iter()
            .map(|id| image.brokers.get(id).map_or(-1, |r| r.epoch))
            .collect();
        let message = Message::AlterPartition {
            broker_epoch: b.broker_epoch,
            seq,
            proposal: proposal.clone(),
            member_epochs,
        };
        let from = b.id;
        self.brokers[i].alter = Some(AlterInFlight {
            seq,
            proposal,
            retried,
            deadline: self.step + RPC_TIMEOUT_STEPS,
        });
        self.net.send(&mut self.rng, self.step, from, CONTROLLER, message);
    }

    /// The answer to the AlterPartition in flight (`IsrClient::submit`'s completion).
    pub(super) fn alter_answered(&mut self, i: usize, seq: u64, result: Result<(Vec<i32>, i32), ResponseError>) {
        if self.brokers[i].alter.as_ref().is_none_or(|a| a.seq != seq) {
            return;
        }
        let line = format!("broker {} AlterPartition answer {result:?}", self.brokers[i].id);
        match result {
            Ok((isr, partition_epoch)) => {
                let b = &mut self.brokers[i];
                let a = b.alter.take().expect("checked");
                if let Role::Leader(state) = &mut b.role {
                    if state.leader_epoch == a.proposal.leader_epoch {
                        state.isr_change_committed(isr, partition_epoch);
                    }
                }
                self.maybe_advance_high_watermark(i);
            }
            Err(e) => self.alter_failed(i, Some(e)),
        }
        self.log(line);
    }

    /// `IsrClient::submit` after a failure (`error`: the controller's, `None`: no answer).
    pub(super) fn alter_failed(&mut self, i: usize, error: Option<ResponseError>) {
        let faithful = self.config.variant != Variant::DropUnansweredIsrChange;
        let b = &mut self.brokers[i];
        let a = b.alter.take().expect("an AlterPartition in flight");
        let Role::Leader(state) = &mut b.role else {
            return;
        };
        if state.leader_epoch != a.proposal.leader_epoch {
            return;
        }
        let next = if faithful {
            isr_change_failure(error, a.retried)
        } else {
            IsrChangeFailure::Drop
        };
        match next {
            IsrChangeFailure::Drop => state.isr_change_failed(),
            IsrChangeFailure::AwaitMetadata => {}
            IsrChangeFailure::Retry => {
                let pending = state.pending_isr.as_ref() == Some(&a.proposal.isr)
                    && state.partition_epoch == a.proposal.partition_epoch;
                if pending {
                    self.submit_alter(i, a.proposal, true);
                }
            }
        }
    }

    /// `ReplicaManager::shrink_isrs`, every half lag time.
    pub(super) fn shrink_isr(&mut self, i: usize) {
        let now = self.now(self.brokers[i].id);
        let b = &mut self.brokers[i];
        if now < b.next_shrink_ms {
            return;
        }
        b.next_shrink_ms = now + LAG_TIME_MAX_MS / 2;
        let log_end_offset = b.log_end_offset();
        let Role::Leader(state) = &mut b.role else {
            return;
        };
        let Some(p) = state.isr_shrink(log_end_offset, now, LAG_TIME_MAX_MS) else {
            return;
        };
        state.begin_isr_change(&p);
        let line = format!("leader {} proposes ISR {:?} (followers fell behind)", b.id, p.isr);
        self.log(line);
        self.submit_alter(i, p, false);
    }

    /// A client sends one record to the broker some broker's (maybe stale) metadata names leader
    /// (`ReplicaManager::append_now`, then the acks=all wait).
    pub(super) fn produce(&mut self) {
        let asked = self.rng.below(self.brokers.len() as u64) as usize;
        let version = self.brokers[asked].image_version;
        let Some(leader) = self.controller.history[version]
            .1
            .topics
            .get(TOPIC)
            .map(|t| t.partitions[0].leader)
        else {
            return;
        };
        if leader < 0 || self.rng.chance(self.net.drop_per_mille) {
            return;
        }
        let i = (leader - 1) as usize;
        let (min_insync, acks_all, step) = (self.config.min_insync, self.config.acks_all, self.step);
        let b = &mut self.brokers[i];
        if !b.alive {
            return;
        }
        let Role::Leader(state) = &b.role else {
            return;
        };
        if acks_all && (state.isr.len() as i32) < min_insync {
            return; // NOT_ENOUGH_REPLICAS, nothing written.
        }
        self.next_record_id += 1;
        let id = self.next_record_id;
        let offset = b.log_end_offset();
        let epoch = state.leader_epoch;
        b.cache.assign(epoch, offset);
        b.log.push(Record { epoch, id });
        self.stats.produced += 1;
        self.maybe_advance_high_watermark(i);
        let b = &mut self.brokers[i];
        if acks_all {
            b.waiters.push(Waiter {
                id,
                offset,
                leader_epoch: epoch,
                deadline: step + PRODUCE_TIMEOUT_STEPS,
            });
        } else {
            self.acked.push((offset, id));
        }
    }

    /// `ReplicaManager::await_replication` for every waiting acks=all produce on this broker.
    pub(super) fn complete_waiters(&mut self, i: usize) {
        let (min_insync, step) = (self.config.min_insync, self.step);
        let b = &mut self.brokers[i];
        let mut acked = Vec::new();
        let hw = b.high_watermark;
        let role = &b.role;
        b.waiters.retain(|w| {
            let Role::Leader(state) = role else {
                return false;
            };
            if state.leader_epoch != w.leader_epoch || w.deadline <= step {
                return false;
            }
            match state.enough_replicas(hw, w.offset + 1, min_insync) {
                Some(true) => {
                    acked.push((w.offset, w.id));
                    false
                }
                Some(false) => false,
                None => true,
            }
        });
        let id = b.id;
        for (offset, record) in acked {
            self.stats.acked += 1;
            self.acked.push((offset, record));
            self.log(format!("leader {id} acknowledges record {record} at offset {offset}"));
        }
    }
}
