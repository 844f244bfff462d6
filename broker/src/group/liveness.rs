//! The parts of the group state machine driven by the clock and by members going away: Heartbeat,
//! LeaveGroup, member removal, and the timers (KIP-394 pending members, session timeouts, the initial
//! and rebalance join timers, the SyncGroup deadline). Pure, like `state.rs`: `now` comes from the caller.

use kafka_protocol::error::ResponseError;

use super::classic_group::{Group, GroupState, JoinTimer};
use super::config::GroupConfig;
use super::state::{Effect, JoinResult, LeaveOutcome, SyncResult};

impl Group {
    /// Heartbeat: keeps the member's session alive and tells it when to rejoin.
    pub fn heartbeat(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> (Option<ResponseError>, Vec<Effect>) {
        let mut fx = Vec::new();
        let error = if self.is(GroupState::Dead) {
            Some(ResponseError::CoordinatorNotAvailable)
        } else if let Some(e) = self.validate_current_member(member_id, instance_id) {
            Some(e)
        } else if generation_id != self.generation_id {
            Some(ResponseError::IllegalGeneration)
        } else {
            match self.state {
                GroupState::Empty | GroupState::Dead => Some(ResponseError::UnknownMemberId),
                state => {
                    if let Some(m) = self.members.get_mut(member_id) {
                        m.last_heartbeat_ms = now_ms;
                    }
                    (state == GroupState::PreparingRebalance).then_some(ResponseError::RebalanceInProgress)
                }
            }
        };
        self.check_timers(config, now_ms, &mut fx);
        (error, fx)
    }

    /// LeaveGroup for a list of members (by member id, or by instance id with an empty member id).
    pub fn leave(
        &mut self,
        config: &GroupConfig,
        leaving: &[(String, Option<String>)],
        now_ms: i64,
    ) -> (Vec<LeaveOutcome>, Vec<Effect>) {
        let mut fx = Vec::new();
        let mut outcomes = Vec::with_capacity(leaving.len());
        for (member_id, instance_id) in leaving {
            let outcome = if member_id.is_empty() {
                match instance_id.as_ref().and_then(|i| self.static_members.get(i)).cloned() {
                    Some(id) => {
                        self.remove_member_and_update_group(config, &id, now_ms, &mut fx);
                        None
                    }
                    None => Some(ResponseError::UnknownMemberId),
                }
            } else if self.pending_members.remove(member_id).is_some() {
                self.try_complete_join(now_ms, &mut fx);
                None
            } else if let Some(e) = self.validate_leaving_member(member_id, instance_id.as_deref()) {
                Some(e)
            } else {
                self.remove_member_and_update_group(config, member_id, now_ms, &mut fx);
                None
            };
            outcomes.push(outcome);
        }
        self.check_timers(config, now_ms, &mut fx);
        (outcomes, fx)
    }

    fn validate_leaving_member(&self, member_id: &str, instance_id: Option<&str>) -> Option<ResponseError> {
        if let Some(instance) = instance_id {
            if self.static_members.get(instance).is_some_and(|id| id != member_id) {
                return Some(ResponseError::FencedInstanceId);
            }
        }
        (!self.members.contains_key(member_id)).then_some(ResponseError::UnknownMemberId)
    }

    pub(crate) fn remove_member_and_update_group(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        now_ms: i64,
        fx: &mut Vec<Effect>,
    ) {
        let Some(mut member) = self.remove_member(member_id) else {
            return;
        };
        if let Some(w) = member.awaiting_join.take() {
            fx.push(Effect::CompleteJoin(
                w,
                JoinResult::error("", ResponseError::UnknownMemberId),
            ));
        }
        if let Some(w) = member.awaiting_sync.take() {
            fx.push(Effect::CompleteSync(
                w,
                SyncResult::error(ResponseError::UnknownMemberId),
            ));
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.maybe_prepare_rebalance(config, now_ms, fx),
            GroupState::PreparingRebalance => self.try_complete_join(now_ms, fx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Runs the clock: expires pending and silent members, ends rebalance waits, and removes members
    /// that did not send SyncGroup within the rebalance timeout.
    pub fn tick(&mut self, config: &GroupConfig, now_ms: i64) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.check_timers(config, now_ms, &mut fx);
        fx
    }

    pub(super) fn check_timers(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Vec<Effect>) {
        let before = self.pending_members.len();
        self.pending_members.retain(|_, deadline| *deadline > now_ms);
        if self.pending_members.len() != before {
            self.try_complete_join(now_ms, fx);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.has_expired(config, now_ms))
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.group_id, member = %id, "member's session expired; removing it");
            self.remove_member_and_update_group(config, &id, now_ms, fx);
        }
        match self.join_timer {
            Some(JoinTimer::Initial {
                deadline_ms,
                remaining_ms,
            }) if now_ms >= deadline_ms => {
                if self.new_member_added && remaining_ms > 0 {
                    self.new_member_added = false;
                    let delay = config.initial_rebalance_delay_ms.min(remaining_ms);
                    self.join_timer = Some(JoinTimer::Initial {
                        deadline_ms: now_ms + delay,
                        remaining_ms: (remaining_ms - delay).max(0),
                    });
                } else {
                    self.new_member_added = false;
                    self.complete_join(now_ms, fx);
                }
            }
            Some(JoinTimer::Rebalance { deadline_ms }) if now_ms >= deadline_ms => self.complete_join(now_ms, fx),
            _ => {}
        }
        if self.pending_sync_deadline_ms.is_some_and(|d| now_ms >= d) {
            self.pending_sync_deadline_ms = None;
            if matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable) {
                let laggards: Vec<String> = std::mem::take(&mut self.pending_sync).into_iter().collect();
                for id in laggards {
                    tracing::info!(group = %self.group_id, member = %id, "member did not sync within the rebalance timeout");
                    self.remove_member_and_update_group(config, &id, now_ms, fx);
                }
            }
        }
    }
}
