//! The classic group membership state machine (Kafka's `GroupCoordinator` join/sync/heartbeat/leave
//! logic), as pure functions: each takes the group, a request or the clock, and `now`, changes the
//! group, and returns `Effect`s for the runtime to perform (answer waiting requests, persist the group).
//!
//! Long polls: a JoinGroup or SyncGroup that must wait is parked as a `WaiterId` on its member; the
//! effect `CompleteJoin`/`CompleteSync` later names that id. Every waiter is completed exactly once or
//! dropped when superseded (a client that resent its request has abandoned the old one).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::classic_group::{Group, GroupState, JoinTimer};
use super::config::GroupConfig;
use super::member::{Member, Protocol};

pub use super::member::WaiterId;

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub waiter: WaiterId,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The id this member gets if it is new (`<client id or instance id>-<uuid>`), made by the runtime.
    pub fresh_member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and its id (KIP-394).
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: every member's metadata for the selected protocol.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn error(member_id: &str, error: ResponseError) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub waiter: WaiterId,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// From the leader only: member id → assignment.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ResponseError) -> SyncResult {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What the runtime must do after a state-machine step, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    CompleteJoin(WaiterId, JoinResult),
    CompleteSync(WaiterId, SyncResult),
    /// Persist the group's metadata as it is after this step (a tombstone if it is Dead).
    StoreGroup,
}

/// Outcome of one member's LeaveGroup.
pub type LeaveOutcome = Option<ResponseError>;

impl Group {
    /// JoinGroup. The answer comes as a `CompleteJoin` for `request.waiter`, now or later.
    pub fn join(&mut self, config: &GroupConfig, request: JoinRequest, now_ms: i64) -> Vec<Effect> {
        let mut fx = Vec::new();
        let reject = |fx: &mut Vec<Effect>, e| {
            fx.push(Effect::CompleteJoin(
                request.waiter,
                JoinResult::error(&request.member_id, e),
            ))
        };
        let session = request.session_timeout_ms;
        if session < config.min_session_timeout_ms || session > config.max_session_timeout_ms {
            reject(&mut fx, ResponseError::InvalidSessionTimeout);
        } else if !self.members.contains_key(&request.member_id) && self.members.len() >= config.max_size {
            reject(&mut fx, ResponseError::GroupMaxSizeReached);
        } else if self.is(GroupState::Dead) {
            reject(&mut fx, ResponseError::CoordinatorNotAvailable);
        } else if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            reject(&mut fx, ResponseError::InconsistentGroupProtocol);
        } else if request.member_id.is_empty() {
            self.join_new_member(config, request, now_ms, &mut fx);
        } else {
            self.join_known_member(config, request, now_ms, &mut fx);
        }
        self.check_timers(config, now_ms, &mut fx);
        fx
    }

    fn join_new_member(&mut self, config: &GroupConfig, request: JoinRequest, now_ms: i64, fx: &mut Vec<Effect>) {
        let new_id = request.fresh_member_id.clone();
        if let Some(instance) = request.group_instance_id.clone() {
            match self.static_members.get(&instance).cloned() {
                Some(old_id) => self.replace_static_member(config, request, &old_id, now_ms, fx),
                None => self.add_member_and_rebalance(config, request, new_id, now_ms, fx),
            }
        } else if request.require_known_member_id {
            self.pending_members
                .insert(new_id.clone(), now_ms + request.session_timeout_ms as i64);
            fx.push(Effect::CompleteJoin(
                request.waiter,
                JoinResult::error(&new_id, ResponseError::MemberIdRequired),
            ));
        } else {
            self.add_member_and_rebalance(config, request, new_id, now_ms, fx);
        }
    }

    fn join_known_member(&mut self, config: &GroupConfig, request: JoinRequest, now_ms: i64, fx: &mut Vec<Effect>) {
        let member_id = request.member_id.clone();
        if self.pending_members.contains_key(&member_id) && request.group_instance_id.is_none() {
            self.add_member_and_rebalance(config, request, member_id, now_ms, fx);
            return;
        }
        if let Some(e) = self.validate_current_member(&member_id, request.group_instance_id.as_deref()) {
            fx.push(Effect::CompleteJoin(request.waiter, JoinResult::error(&member_id, e)));
            return;
        }
        let member = &self.members[&member_id];
        let unchanged = member.matches(&request.protocols);
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(config, request, now_ms, fx),
            GroupState::CompletingRebalance if unchanged => {
                // A resent JoinGroup (its response was lost): answer with the current generation.
                let result = self.join_result(&member_id);
                fx.push(Effect::CompleteJoin(request.waiter, result));
            }
            GroupState::Stable if unchanged && !self.is_leader(&member_id) => {
                let mut result = self.join_result(&member_id);
                result.members.clear();
                fx.push(Effect::CompleteJoin(request.waiter, result));
            }
            // A changed subscription, or the leader asking for a new assignment.
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(config, request, now_ms, fx)
            }
            GroupState::Empty | GroupState::Dead => fx.push(Effect::CompleteJoin(
                request.waiter,
                JoinResult::error(&member_id, ResponseError::UnknownMemberId),
            )),
        }
    }

    /// The JoinGroup answer of the current generation for `member_id` (member list for the leader).
    fn join_result(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if self.is_leader(member_id) {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        member_id: String,
        now_ms: i64,
        fx: &mut Vec<Effect>,
    ) {
        let member = Member {
            member_id,
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(request.waiter),
            awaiting_sync: None,
            is_new: true,
            last_heartbeat_ms: now_ms,
        };
        if self.is(GroupState::PreparingRebalance) && self.generation_id == 0 {
            self.new_member_added = true;
        }
        self.add_member(member);
        self.maybe_prepare_rebalance(config, now_ms, fx);
    }

    fn update_member_and_rebalance(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        now_ms: i64,
        fx: &mut Vec<Effect>,
    ) {
        let member = self.members.get_mut(&request.member_id).expect("validated member");
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        member.last_heartbeat_ms = now_ms;
        if let Some(old) = member.awaiting_join.replace(request.waiter) {
            // The client gave up on its earlier JoinGroup and sent this one.
            fx.push(Effect::CompleteJoin(
                old,
                JoinResult::error(&request.member_id, ResponseError::RebalanceInProgress),
            ));
        }
        self.maybe_prepare_rebalance(config, now_ms, fx);
        self.try_complete_join(now_ms, fx);
    }

    /// A static member rejoined without its member id (it restarted): it takes over the old member's
    /// place under a new id, fencing requests still waiting under the old one. A Stable group whose
    /// selected protocol stays the same does not rebalance.
    fn replace_static_member(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        old_id: &str,
        now_ms: i64,
        fx: &mut Vec<Effect>,
    ) {
        let new_id = request.fresh_member_id.clone();
        let previous_leader = self.leader_id.clone().unwrap_or_default();
        let mut member = self.members.remove(old_id).expect("static member is a member");
        if let Some(w) = member.awaiting_join.take() {
            fx.push(Effect::CompleteJoin(
                w,
                JoinResult::error(old_id, ResponseError::FencedInstanceId),
            ));
        }
        if let Some(w) = member.awaiting_sync.take() {
            fx.push(Effect::CompleteSync(
                w,
                SyncResult::error(ResponseError::FencedInstanceId),
            ));
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        member.member_id = new_id.clone();
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.awaiting_join = Some(request.waiter);
        member.last_heartbeat_ms = now_ms;
        if self.is_leader(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol_name => {
                fx.push(Effect::StoreGroup);
                let member = self.members.get_mut(&new_id).expect("just inserted");
                let waiter = member.awaiting_join.take().expect("just set");
                let mut result = self.join_result(&new_id);
                // The old leader id: the member must not think it leads and reassign a Stable group.
                result.leader = previous_leader;
                result.members.clear();
                fx.push(Effect::CompleteJoin(waiter, result));
            }
            GroupState::Stable => self.maybe_prepare_rebalance(config, now_ms, fx),
            // The leader may be assigning with the old member id: rebalance so the new id gets a share.
            GroupState::CompletingRebalance => self.prepare_rebalance(config, now_ms, fx),
            GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(crate) fn maybe_prepare_rebalance(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Vec<Effect>) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(config, now_ms, fx);
        }
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Vec<Effect>) {
        if self.is(GroupState::CompletingRebalance) {
            self.reset_and_propagate_assignment_error(ResponseError::RebalanceInProgress, fx);
        }
        self.pending_sync.clear();
        self.pending_sync_deadline_ms = None;
        let rebalance_timeout = self.rebalance_timeout_ms();
        self.join_timer = Some(if self.is(GroupState::Empty) {
            let delay = config.initial_rebalance_delay_ms;
            JoinTimer::Initial {
                deadline_ms: now_ms + delay,
                remaining_ms: (rebalance_timeout - delay).max(0),
            }
        } else {
            JoinTimer::Rebalance {
                deadline_ms: now_ms + rebalance_timeout,
            }
        });
        self.transition(GroupState::PreparingRebalance, now_ms);
        // Like Kafka's delayed join, try to complete at once (everyone may already be waiting).
        self.try_complete_join(now_ms, fx);
    }

    fn reset_and_propagate_assignment_error(&mut self, error: ResponseError, fx: &mut Vec<Effect>) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            if let Some(w) = member.awaiting_sync.take() {
                fx.push(Effect::CompleteSync(w, SyncResult::error(error)));
            }
        }
    }

    /// Completes the join phase early when everyone has rejoined (not during the initial delay).
    pub(crate) fn try_complete_join(&mut self, now_ms: i64, fx: &mut Vec<Effect>) {
        if self.is(GroupState::PreparingRebalance)
            && matches!(self.join_timer, Some(JoinTimer::Rebalance { .. }))
            && self.has_all_members_joined()
        {
            self.complete_join(now_ms, fx);
        }
    }

    /// Kafka's `onCompleteJoin`: drops dynamic members that did not rejoin, starts the next
    /// generation and answers every waiting JoinGroup (the leader gets the member list).
    pub(super) fn complete_join(&mut self, now_ms: i64, fx: &mut Vec<Effect>) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        if self.is(GroupState::Dead) {
            return;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait another rebalance timeout.
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline_ms: now_ms + self.rebalance_timeout_ms(),
            });
            return;
        }
        self.generation_id += 1;
        self.pending_sync.clear();
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition(GroupState::Empty, now_ms);
            fx.push(Effect::StoreGroup);
            return;
        }
        self.protocol_name = self.select_protocol();
        self.subscribed_topics = self.compute_subscribed_topics();
        self.transition(GroupState::CompletingRebalance, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result(&id);
            let member = self.members.get_mut(&id).expect("listed member");
            if let Some(w) = member.awaiting_join.take() {
                fx.push(Effect::CompleteJoin(w, result));
            }
            member.last_heartbeat_ms = now_ms;
            member.is_new = false;
            self.pending_sync.insert(id);
        }
        self.pending_sync_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
    }

    /// SyncGroup. The answer comes as a `CompleteSync` for `request.waiter`, now or later.
    pub fn sync(&mut self, config: &GroupConfig, request: SyncRequest, now_ms: i64) -> Vec<Effect> {
        let mut fx = Vec::new();
        let waiter = request.waiter;
        let member_id = request.member_id.as_str();
        let error = if self.is(GroupState::Dead) {
            Some(ResponseError::CoordinatorNotAvailable)
        } else if let Some(e) = self.validate_current_member(member_id, request.group_instance_id.as_deref()) {
            Some(e)
        } else if request.generation_id != self.generation_id {
            Some(ResponseError::IllegalGeneration)
        } else if request
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || request
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != self.protocol_name.as_ref())
        {
            Some(ResponseError::InconsistentGroupProtocol)
        } else {
            match self.state {
                GroupState::Empty => Some(ResponseError::UnknownMemberId),
                GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
                _ => None,
            }
        };
        if let Some(e) = error {
            fx.push(Effect::CompleteSync(waiter, SyncResult::error(e)));
            return fx;
        }
        self.pending_sync.remove(member_id);
        let stable = self.is(GroupState::Stable);
        let member = self.members.get_mut(member_id).expect("validated member");
        member.last_heartbeat_ms = now_ms;
        if stable {
            let result = self.sync_result(member_id);
            fx.push(Effect::CompleteSync(waiter, result));
        } else {
            if let Some(old) = member.awaiting_sync.replace(waiter) {
                fx.push(Effect::CompleteSync(
                    old,
                    SyncResult::error(ResponseError::RebalanceInProgress),
                ));
            }
            if self.is_leader(member_id) {
                for member in self.members.values_mut() {
                    member.assignment = request
                        .assignments
                        .iter()
                        .find(|(id, _)| *id == member.member_id)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default();
                }
                fx.push(Effect::StoreGroup);
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for id in ids {
                    let result = self.sync_result(&id);
                    if let Some(w) = self.members.get_mut(&id).and_then(|m| m.awaiting_sync.take()) {
                        fx.push(Effect::CompleteSync(w, result));
                    }
                }
                self.transition(GroupState::Stable, now_ms);
            }
        }
        self.check_timers(config, now_ms, &mut fx);
        fx
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }
}
