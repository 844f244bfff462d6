//! Share sessions (KIP-932): a member's ShareFetch session on this broker, keyed by group and member
//! id, as Kafka's `ShareSessionCache` keeps them. Epoch 0 opens a session (replacing one the member
//! had), -1 closes it, any other epoch must be the session's next one and moves it on; the session
//! remembers the partitions the member fetches, so later requests name only what changes. Pure.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;

/// A share partition key inside a session: topic id and partition.
pub type SessionPartition = (Uuid, i32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSession {
    /// The epoch the next request must carry.
    pub next_epoch: i32,
    pub partitions: BTreeSet<SessionPartition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// SHARE_SESSION_NOT_FOUND: no session for this member here.
    NotFound,
    /// INVALID_SHARE_SESSION_EPOCH: the epoch is not the session's next.
    InvalidEpoch,
    /// SHARE_SESSION_LIMIT_REACHED.
    LimitReached,
}

/// Every share session on this broker.
#[derive(Debug, Default)]
pub struct ShareSessions {
    sessions: BTreeMap<(String, String), ShareSession>,
}

/// What a request did to its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStep {
    /// The session after the request, with the partitions to fetch from.
    Open { partitions: BTreeSet<SessionPartition> },
    /// The member closed its session (epoch -1): what it still holds is released.
    Closed,
}

impl ShareSessions {
    /// Checks a request's epoch and applies its partitions (`added`, `forgotten`) to the session.
    /// `max_sessions` is `group.share.max.share.sessions`.
    pub fn step(
        &mut self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
        added: &[SessionPartition],
        forgotten: &[SessionPartition],
        max_sessions: usize,
    ) -> Result<SessionStep, SessionError> {
        let key = (group_id.to_string(), member_id.to_string());
        match epoch {
            INITIAL_EPOCH => {
                if !self.sessions.contains_key(&key) && self.sessions.len() >= max_sessions {
                    return Err(SessionError::LimitReached);
                }
                let partitions: BTreeSet<SessionPartition> = added.iter().copied().collect();
                self.sessions.insert(
                    key,
                    ShareSession {
                        next_epoch: 1,
                        partitions: partitions.clone(),
                    },
                );
                Ok(SessionStep::Open { partitions })
            }
            FINAL_EPOCH => {
                if self.sessions.remove(&key).is_none() {
                    return Err(SessionError::NotFound);
                }
                Ok(SessionStep::Closed)
            }
            _ => {
                let session = self.sessions.get_mut(&key).ok_or(SessionError::NotFound)?;
                if session.next_epoch != epoch {
                    return Err(SessionError::InvalidEpoch);
                }
                session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
                for p in forgotten {
                    session.partitions.remove(p);
                }
                session.partitions.extend(added.iter().copied());
                Ok(SessionStep::Open {
                    partitions: session.partitions.clone(),
                })
            }
        }
    }

    /// Checks a ShareAcknowledge's epoch (it moves the session on like a fetch, adding nothing).
    pub fn check_ack(&mut self, group_id: &str, member_id: &str, epoch: i32) -> Result<SessionStep, SessionError> {
        if epoch == INITIAL_EPOCH {
            // ShareAcknowledge cannot open a session (Kafka answers INVALID_SHARE_SESSION_EPOCH).
            return Err(SessionError::InvalidEpoch);
        }
        self.step(group_id, member_id, epoch, &[], &[], usize::MAX)
    }

    pub fn remove_member(&mut self, group_id: &str, member_id: &str) {
        self.sessions.remove(&(group_id.to_string(), member_id.to_string()));
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}
