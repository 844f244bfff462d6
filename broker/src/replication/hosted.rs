//! `HostedPartition`: one partition this broker holds a replica of, with its role (leader, follower,
//! or neither while the partition has no leader) and a version counter that acks=all produce requests
//! wait on.
//!
//! Locking: `role` before the log's lock, never the reverse. Whoever moves the high watermark or
//! changes the role bumps `changed` after releasing both.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::partition_state::LeaderState;
use crate::log::{Partition, TopicPartition};

/// What this broker is for the partition.
#[derive(Debug)]
pub enum Role {
    /// This broker leads at `state.leader_epoch`.
    Leader(LeaderState),
    /// This broker follows `leader` at `leader_epoch` (its fetcher copies the leader's log).
    Follower { leader: i32, leader_epoch: i32 },
    /// No leader is elected (all in-sync replicas are down); nothing is served or fetched.
    Offline { leader_epoch: i32 },
}

impl Role {
    pub fn leader_epoch(&self) -> i32 {
        match self {
            Role::Leader(s) => s.leader_epoch,
            Role::Follower { leader_epoch, .. } | Role::Offline { leader_epoch } => *leader_epoch,
        }
    }
}

pub struct HostedPartition {
    pub tp: TopicPartition,
    pub topic_id: uuid::Uuid,
    pub log: Arc<Partition>,
    pub(crate) role: Mutex<Role>,
    /// Bumped whenever the high watermark moves or the role changes; acks=all waiters re-check then.
    changed: watch::Sender<u64>,
}

impl HostedPartition {
    pub(crate) fn new(tp: TopicPartition, topic_id: uuid::Uuid, log: Arc<Partition>, role: Role) -> Self {
        HostedPartition {
            tp,
            topic_id,
            log,
            role: Mutex::new(role),
            changed: watch::channel(0).0,
        }
    }

    pub(crate) fn notify_changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The leader epoch this replica is at, and whether it leads.
    pub fn leader_epoch(&self) -> (i32, bool) {
        let role = self.role.lock();
        (role.leader_epoch(), matches!(*role, Role::Leader(_)))
    }

    /// The committed ISR when this broker leads; `None` otherwise.
    pub fn isr_if_leader(&self) -> Option<Vec<i32>> {
        match &*self.role.lock() {
            Role::Leader(s) => Some(s.isr.clone()),
            _ => None,
        }
    }

    /// Moves the high watermark to what the ISR allows, if that is further; returns whether it moved.
    /// Takes the role lock, then the log's.
    pub(crate) fn maybe_advance_high_watermark(&self) -> bool {
        let role = self.role.lock();
        let Role::Leader(state) = &*role else {
            return false;
        };
        advance_high_watermark(state, &mut self.log.log.lock())
    }
}

/// Moves `log`'s high watermark to what the leader's ISR allows, if that is further; returns whether
/// it moved. Called with the role lock held (role before log).
pub(crate) fn advance_high_watermark(state: &LeaderState, log: &mut crate::log::Log) -> bool {
    let current = log.high_watermark();
    let target = state.high_watermark(log.log_end_offset(), current);
    if target > current {
        log.set_high_watermark(target);
    }
    target > current
}
