//! The replication state of one partition, as pure code: what its leader knows about its followers
//! (log end offsets, when each last caught up), the in-sync replica set it has committed with the
//! controller and the change it has in flight, and the decisions that follow (the high watermark, ISR
//! expansion and shrinking), after Apache Kafka's `Partition` / `Replica` (3.x, KIP-497 AlterPartition).
//!
//! No clocks, no I/O: every call takes the time and the leader's log end offset as arguments, and
//! returns what should happen; the replica manager performs it (moves the log's high watermark, sends
//! AlterPartition). So a simulator can drive thousands of histories through exactly this code.
//!
//! What holds: the high watermark is the minimum log end offset over the *maximal* ISR (the committed
//! ISR plus a member being added), so a record counted as committed is on every replica that is or may
//! become in sync; it never moves backwards; at most one ISR change is in flight; a follower joins the
//! ISR only once it has everything up to the high watermark and the start of the current leader epoch.

use std::collections::BTreeMap;

/// A partition's assignment as the controller last committed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAssignment {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset, from its latest fetch offset; -1 until it fetches from this leader.
    pub log_end_offset: i64,
    /// The last time the follower had everything the leader had (see `record_fetch`); 0: never.
    pub last_caught_up_ms: i64,
    /// When its previous fetch arrived, and the leader's log end offset then.
    pub last_fetch_ms: i64,
    pub last_fetch_leader_log_end_offset: i64,
    /// The follower's log start offset, as its latest fetch said; -1 until it fetches from this leader.
    pub log_start_offset: i64,
}

/// An ISR change the leader wants the controller to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// Why a follower fetch is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchRefusal {
    /// The broker is not a replica of this partition (NOT_LEADER_OR_FOLLOWER for it).
    NotAReplica,
}

/// The leader's view of its partition, created when this broker becomes leader at `leader_epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    pub local_id: i32,
    pub leader_epoch: i32,
    /// The leader's log end offset when it became leader: a follower is in sync only past it.
    pub leader_epoch_start_offset: i64,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    /// The ISR the controller has committed.
    pub isr: Vec<i32>,
    /// The ISR sent with AlterPartition and not answered yet.
    pub pending_isr: Option<Vec<i32>>,
    pub followers: BTreeMap<i32, FollowerProgress>,
}

impl LeaderState {
    /// A new leadership at `assignment.leader_epoch`. ISR members start as caught up now (so they are
    /// not dropped before they could fetch), the others as never caught up; no follower's log end
    /// offset is known yet.
    pub fn new(local_id: i32, assignment: &PartitionAssignment, log_end_offset: i64, now_ms: i64) -> Self {
        let followers = assignment
            .replicas
            .iter()
            .filter(|r| **r != local_id)
            .map(|r| {
                let progress = FollowerProgress {
                    log_end_offset: -1,
                    last_caught_up_ms: if assignment.isr.contains(r) { now_ms } else { 0 },
                    last_fetch_ms: now_ms,
                    last_fetch_leader_log_end_offset: log_end_offset,
                    log_start_offset: -1,
                };
                (*r, progress)
            })
            .collect();
        LeaderState {
            local_id,
            leader_epoch: assignment.leader_epoch,
            leader_epoch_start_offset: log_end_offset,
            partition_epoch: assignment.partition_epoch,
            replicas: assignment.replicas.clone(),
            isr: assignment.isr.clone(),
            pending_isr: None,
            followers,
        }
    }

    /// Takes in a newer committed assignment with the same leader and epoch (an ISR change this leader
    /// or the controller made, or a reassignment): the committed ISR and replicas follow it, and an
    /// in-flight change is settled once the partition epoch has moved past the one it was based on.
    pub fn update_assignment(&mut self, assignment: &PartitionAssignment, log_end_offset: i64, now_ms: i64) {
        if assignment.partition_epoch < self.partition_epoch {
            return;
        }
        if assignment.partition_epoch > self.partition_epoch {
            self.pending_isr = None;
        }
        self.partition_epoch = assignment.partition_epoch;
        self.isr = assignment.isr.clone();
        self.replicas = assignment.replicas.clone();
        self.followers.retain(|id, _| assignment.replicas.contains(id));
        for r in &assignment.replicas {
            if *r != self.local_id {
                self.followers.entry(*r).or_insert(FollowerProgress {
                    log_end_offset: -1,
                    last_caught_up_ms: 0,
                    last_fetch_ms: now_ms,
                    last_fetch_leader_log_end_offset: log_end_offset,
                    log_start_offset: -1,
                });
            }
        }
    }

    /// The committed ISR plus any member an in-flight change adds (Kafka's `maximalIsr`): what the high
    /// watermark waits for.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        for r in self.pending_isr.iter().flatten() {
            if !isr.contains(r) {
                isr.push(*r);
            }
        }
        isr
    }

    /// The high watermark the ISR allows: the smallest log end offset over the maximal ISR (the leader's
    /// own is `log_end_offset`). A member whose offset is unknown holds it where it is (`current`); the
    /// result never goes below `current`.
    pub fn high_watermark(&self, log_end_offset: i64, current: i64) -> i64 {
        let mut hw = log_end_offset;
        for r in self.maximal_isr() {
            if r == self.local_id {
                continue;
            }
            let offset = self.followers.get(&r).map_or(-1, |f| f.log_end_offset);
            hw = hw.min(offset);
        }
        hw.max(current)
    }

    /// A follower fetched from `fetch_offset` at `now_ms`, the leader's log end offset being
    /// `leader_log_end_offset` (Kafka's `updateFetchState`): the follower has everything below the fetch
    /// offset, and it counts as caught up at this fetch if it asked for the leader's end, or at its
    /// previous fetch if it now has what the leader had then.
    pub fn record_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) -> Result<(), FetchRefusal> {
        let progress = self.followers.get_mut(&follower).ok_or(FetchRefusal::NotAReplica)?;
        if fetch_offset >= leader_log_end_offset {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= progress.last_fetch_leader_log_end_offset {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.log_end_offset = fetch_offset;
        progress.last_fetch_ms = now_ms;
        progress.last_fetch_leader_log_end_offset = leader_log_end_offset;
        Ok(())
    }

    /// The log start offset a follower's fetch reported.
    pub fn record_log_start_offset(&mut self, follower: i32, log_start_offset: i64) {
        if let Some(progress) = self.followers.get_mut(&follower) {
            progress.log_start_offset = log_start_offset;
        }
    }

    /// The lowest log start offset of the replicas (Kafka's `lowWatermarkIfLeader`): this leader's and
    /// every live follower's that has fetched from it. DeleteRecords completes once it reaches the
    /// requested offset, i.e. once every live replica has deleted the records too.
    pub fn low_watermark(&self, leader_log_start_offset: i64, alive: impl Fn(i32) -> bool) -> i64 {
        self.followers
            .iter()
            .filter(|(id, p)| p.log_start_offset >= 0 && alive(**id))
            .map(|(_, p)| p.log_start_offset)
            .fold(leader_log_start_offset, i64::min)
    }

    /// Whether `follower` may join the ISR now (Kafka's `maybeExpandIsr`): no change in flight, not a
    /// member yet, and its log reaches both the high watermark and the start of this leader epoch.
    /// `eligible` says whether the controller would accept it (registered and not fenced).
    pub fn isr_expansion(&self, follower: i32, high_watermark: i64, eligible: bool) -> Option<IsrProposal> {
        if self.pending_isr.is_some() || self.isr.contains(&follower) || !eligible {
            return None;
        }
        let offset = self.followers.get(&follower)?.log_end_offset;
        if offset < high_watermark || offset < self.leader_epoch_start_offset {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.push(follower);
        Some(self.proposal(isr))
    }

    /// The ISR without the followers that have not caught up for longer than `lag_time_max_ms` (Kafka's
    /// `getOutOfSyncReplicas`), if any; `None` while a change is in flight. A follower whose log end
    /// offset equals the leader's is never out of sync, however long ago it last fetched.
    pub fn isr_shrink(&self, log_end_offset: i64, now_ms: i64, lag_time_max_ms: i64) -> Option<IsrProposal> {
        if self.pending_isr.is_some() {
            return None;
        }
        let out_of_sync = |r: &i32| {
            *r != self.local_id
                && self.followers.get(r).is_some_and(|f| {
                    f.log_end_offset != log_end_offset && now_ms - f.last_caught_up_ms > lag_time_max_ms
                })
        };
        if !self.isr.iter().any(out_of_sync) {
            return None;
        }
        let isr: Vec<i32> = self.isr.iter().copied().filter(|r| !out_of_sync(r)).collect();
        Some(self.proposal(isr))
    }

    /// How many offsets the slowest follower is behind the leader (Kafka's replica max lag metric).
    pub fn max_follower_lag(&self, log_end_offset: i64) -> i64 {
        self.followers
            .values()
            .map(|f| {
                if f.log_end_offset < 0 {
                    0
                } else {
                    log_end_offset - f.log_end_offset
                }
            })
            .max()
            .unwrap_or(0)
    }

    fn proposal(&self, isr: Vec<i32>) -> IsrProposal {
        IsrProposal {
            isr,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
        }
    }

    /// Marks `proposal` as sent: until it is answered no other change is proposed, and the high
    /// watermark also waits for a member it adds.
    pub fn begin_isr_change(&mut self, proposal: &IsrProposal) {
        self.pending_isr = Some(proposal.isr.clone());
    }

    /// The controller committed an ISR change at `partition_epoch` (the AlterPartition answer).
    pub fn isr_change_committed(&mut self, isr: Vec<i32>, partition_epoch: i32) {
        if partition_epoch >= self.partition_epoch {
            self.isr = isr;
            self.partition_epoch = partition_epoch;
        }
        self.pending_isr = None;
    }

    /// The change was refused or not answered; it may be proposed again later.
    pub fn isr_change_failed(&mut self) {
        self.pending_isr = None;
    }

    /// Whether acks=all may be answered for records below `required_offset` (Kafka's
    /// `checkEnoughReplicasReachOffset`): `Some(true)` when the high watermark passed it with at least
    /// `min_insync` committed ISR members, `Some(false)` when it passed it but the ISR has shrunk below
    /// `min_insync` meanwhile (NOT_ENOUGH_REPLICAS_AFTER_APPEND), `None` while it has not.
    pub fn enough_replicas(&self, high_watermark: i64, required_offset: i64, min_insync: i32) -> Option<bool> {
        if high_watermark < required_offset {
            return None;
        }
        Some(self.isr.len() as i32 >= min_insync)
    }
}

/// What a leader does with an ISR change that did not come back committed (Kafka's
/// `handleAlterPartitionError`, behind a channel that resends unanswered requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsrChangeFailure {
    /// Certainly not committed: drop it (`isr_change_failed`) and propose again from fresh state.
    Drop,
    /// No answer, or the controller could not tell (no quorum, timeout): it may have been committed,
    /// so send the same change again, still waiting for the maximal ISR.
    Retry,
    /// An earlier attempt went unanswered and may have been committed: keep waiting for the maximal
    /// ISR until metadata settles it (`update_assignment` with a newer partition epoch).
    AwaitMetadata,
}

/// Classifies an AlterPartition failure: `error` is the controller's answer (`None`: no answer), and
/// `retried` says an earlier attempt of the same change went unanswered. Dropping a change the
/// controller did commit would let the high watermark pass a member the controller counts as in sync
/// (and may elect) without the records. The controller's checks refuse a request before it reaches
/// the log, so a refusal of the first attempt means nothing was committed; after a retry only the
/// checks that come after the partition epoch check (eligibility, the leader staying in) prove that.
pub fn isr_change_failure(error: Option<kafka_protocol::error::ResponseError>, retried: bool) -> IsrChangeFailure {
    use kafka_protocol::error::ResponseError as E;
    match error {
        None => IsrChangeFailure::Retry,
        Some(E::IneligibleReplica | E::InvalidRequest) => IsrChangeFailure::Drop,
        Some(
            E::UnknownTopicOrPartition
            | E::UnknownTopicId
            | E::NotLeaderOrFollower
            | E::FencedLeaderEpoch
            | E::InvalidUpdateVersion
            | E::BrokerIdNotRegistered
            | E::StaleBrokerEpoch,
        ) => {
            if retried {
                IsrChangeFailure::AwaitMetadata
            } else {
                IsrChangeFailure::Drop
            }
        }
        Some(_) => IsrChangeFailure::Retry,
    }
}

/// Where a follower truncates to when its leader reports that its log diverges (a Fetch response's
/// `diverging_epoch`, KIP-320/KIP-595): the leader's log ends epoch `leader_epoch` at
/// `leader_end_offset`. `local` is the follower's own `end_offset_for_epoch(leader_epoch)`; the result
/// is the first offset the follower must drop (its log is kept below it). Kafka's
/// `getOffsetTruncationState`: when the follower has that epoch, the smaller end wins; when it only has
/// an older epoch, it keeps what it has up to where that epoch ends here and checks again on the next
/// fetch; with no common epoch it keeps only what the leader has.
pub fn truncation_offset(
    leader_epoch: i32,
    leader_end_offset: i64,
    local: Option<(i32, i64)>,
    log_end_offset: i64,
) -> i64 {
    let target = match local {
        Some((epoch, end)) if epoch == leader_epoch => end.min(leader_end_offset),
        Some((_, end)) => end.min(leader_end_offset),
        None => leader_end_offset,
    };
    target.min(log_end_offset).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(isr: &[i32]) -> PartitionAssignment {
        PartitionAssignment {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader: 1,
            leader_epoch: 4,
            partition_epoch: 10,
        }
    }

    #[test]
    fn the_high_watermark_waits_for_every_isr_member_and_never_goes_back() {
        let mut s = LeaderState::new(1, &assignment(&[1, 2, 3]), 100, 0);
        assert_eq!(s.high_watermark(100, 90), 90, "followers unknown: stays");
        s.record_fetch(2, 100, 100, 1).unwrap();
        assert_eq!(s.high_watermark(110, 90), 90, "follower 3 still unknown");
        s.record_fetch(3, 95, 110, 2).unwrap();
        assert_eq!(s.high_watermark(110, 90), 95);
        s.record_fetch(3, 110, 110, 3).unwrap();
        assert_eq!(s.high_watermark(110, 95), 100, "follower 2 is the slowest now");
        assert_eq!(s.high_watermark(110, 105), 105, "never backwards");
        // A single-replica ISR commits what the leader has.
        let alone = LeaderState::new(1, &assignment(&[1]), 7, 0);
        assert_eq!(alone.high_watermark(12, 7), 12);
    }

    #[test]
    fn a_lagging_follower_leaves_the_isr_after_the_lag_time_and_a_caught_up_one_stays() {
        let mut s = LeaderState::new(1, &assignment(&[1, 2, 3]), 100, 0);
        s.record_fetch(2, 100, 100, 1_000).unwrap();
        s.record_fetch(3, 50, 100, 1_000).unwrap();
        assert_eq!(s.isr_shrink(100, 20_000, 30_000), None, "within the lag time");
        // Follower 2 keeps fetching at the end; the leader's log grows; 3 never catches up.
        s.record_fetch(2, 100, 100, 20_000).unwrap();
        s.record_fetch(2, 100, 130, 31_500).unwrap();
        let p = s.isr_shrink(130, 31_500, 30_000).expect("3 is out of sync");
        assert_eq!(p.isr, vec![1, 2]);
        assert_eq!((p.leader_epoch, p.partition_epoch), (4, 10));
        s.begin_isr_change(&p);
        assert_eq!(s.isr_shrink(130, 40_000, 30_000), None, "one change at a time");
        assert_eq!(s.maximal_isr(), vec![1, 2, 3], "the member being removed still counts");
        s.isr_change_committed(vec![1, 2], 11);
        assert_eq!(s.isr, vec![1, 2]);
        // A follower whose offset equals the leader's is in sync however long it has been idle.
        s.record_fetch(2, 130, 130, 32_000).unwrap();
        assert_eq!(s.isr_shrink(130, 10_000_000, 30_000), None);
    }

    #[test]
    fn the_low_watermark_is_the_lowest_log_start_of_the_live_replicas_that_reported_one() {
        let mut s = LeaderState::new(1, &assignment(&[1, 2, 3]), 100, 0);
        assert_eq!(s.low_watermark(40, |_| true), 40, "no follower has reported yet");
        s.record_log_start_offset(2, 10);
        s.record_log_start_offset(3, 40);
        assert_eq!(s.low_watermark(40, |_| true), 10);
        assert_eq!(
            s.low_watermark(40, |id| id != 2),
            40,
            "a dead broker does not hold it back"
        );
        s.record_log_start_offset(2, 40);
        assert_eq!(s.low_watermark(50, |_| true), 40);
        s.record_log_start_offset(9, 0);
        assert_eq!(s.low_watermark(50, |_| true), 40, "not a replica: ignored");
    }

    #[test]
    fn caught_up_time_uses_the_previous_fetch_when_the_follower_has_what_the_leader_had_then() {
        let mut s = LeaderState::new(1, &assignment(&[1, 2]), 100, 0);
        s.record_fetch(2, 100, 120, 5_000).unwrap();
        assert_eq!(
            s.followers[&2].last_caught_up_ms, 0,
            "behind the leader's end at this fetch"
        );
        // Next fetch: it has what the leader had at the previous fetch (120), so it was caught up then.
        s.record_fetch(2, 120, 150, 6_000).unwrap();
        assert_eq!(s.followers[&2].last_caught_up_ms, 5_000);
        s.record_fetch(2, 150, 150, 7_000).unwrap();
        assert_eq!(s.followers[&2].last_caught_up_ms, 7_000);
        assert_eq!(s.record_fetch(9, 1, 150, 8_000), Err(FetchRefusal::NotAReplica));
    }

    #[test]
    fn a_follower_rejoins_only_past_the_high_watermark_and_the_epoch_start() {
        let mut s = LeaderState::new(1, &assignment(&[1, 2]), 100, 0);
        s.record_fetch(3, 90, 120, 1).unwrap();
        assert_eq!(s.isr_expansion(3, 95, true), None, "below the high watermark");
        s.record_fetch(3, 98, 120, 2).unwrap();
        assert_eq!(
            s.isr_expansion(3, 95, true),
            None,
            "below the leader epoch's start (100)"
        );
        s.record_fetch(3, 101, 120, 3).unwrap();
        assert_eq!(s.isr_expansion(3, 95, false), None, "fenced brokers are not proposed");
        let p = s.isr_expansion(3, 95, true).expect("in sync");
        assert_eq!(p.isr, vec![1, 2, 3]);
        s.begin_isr_change(&p);
        assert_eq!(s.maximal_isr(), vec![1, 2, 3]);
        assert_eq!(
            s.high_watermark(120, 95),
            95,
            "the joining member holds the high watermark too"
        );
        s.isr_change_failed();
        assert_eq!(s.maximal_isr(), vec![1, 2]);
    }

    #[test]
    fn metadata_settles_an_in_flight_change() {
        let mut s = LeaderState::new(1, &assignment(&[1, 2, 3]), 100, 0);
        s.begin_isr_change(&IsrProposal {
            isr: vec![1, 2],
            leader_epoch: 4,
            partition_epoch: 10,
        });
        s.update_assignment(&assignment(&[1, 2, 3]), 100, 1);
        assert!(s.pending_isr.is_some(), "same partition epoch: still waiting");
        let mut newer = assignment(&[1, 2]);
        newer.partition_epoch = 11;
        s.update_assignment(&newer, 100, 2);
        assert_eq!((s.pending_isr.clone(), s.isr.clone()), (None, vec![1, 2]));
        let mut older = assignment(&[1, 2, 3]);
        older.partition_epoch = 9;
        s.update_assignment(&older, 100, 3);
        assert_eq!(s.isr, vec![1, 2], "older metadata is ignored");
    }

    #[test]
    fn acks_all_needs_the_high_watermark_and_enough_isr_members() {
        let mut s = LeaderState::new(1, &assignment(&[1, 2, 3]), 100, 0);
        assert_eq!(s.enough_replicas(100, 101, 2), None);
        assert_eq!(s.enough_replicas(101, 101, 2), Some(true));
        s.isr_change_committed(vec![1], 11);
        assert_eq!(s.enough_replicas(101, 101, 2), Some(false));
    }

    #[test]
    fn an_isr_change_that_may_have_been_committed_is_never_dropped() {
        use kafka_protocol::error::ResponseError as E;
        assert_eq!(isr_change_failure(None, false), IsrChangeFailure::Retry, "no answer");
        assert_eq!(
            isr_change_failure(Some(E::NotController), false),
            IsrChangeFailure::Retry
        );
        assert_eq!(
            isr_change_failure(Some(E::RequestTimedOut), true),
            IsrChangeFailure::Retry
        );
        assert_eq!(
            isr_change_failure(Some(E::InvalidUpdateVersion), false),
            IsrChangeFailure::Drop,
            "the first attempt was refused by the checks"
        );
        assert_eq!(
            isr_change_failure(Some(E::InvalidUpdateVersion), true),
            IsrChangeFailure::AwaitMetadata,
            "the unanswered attempt may be what moved the partition epoch"
        );
        assert_eq!(
            isr_change_failure(Some(E::FencedLeaderEpoch), true),
            IsrChangeFailure::AwaitMetadata
        );
        assert_eq!(
            isr_change_failure(Some(E::IneligibleReplica), true),
            IsrChangeFailure::Drop
        );
    }

    #[test]
    fn truncation_follows_the_leaders_epoch_boundaries() {
        // Same epoch on both: the smaller end.
        assert_eq!(truncation_offset(3, 120, Some((3, 150)), 150), 120);
        assert_eq!(truncation_offset(3, 150, Some((3, 120)), 130), 120);
        // The follower only has an older epoch: keep up to where it ends, check again next fetch.
        assert_eq!(truncation_offset(5, 200, Some((4, 170)), 190), 170);
        // Nothing in common: keep what the leader has at most.
        assert_eq!(truncation_offset(2, 40, None, 90), 40);
        assert_eq!(truncation_offset(2, 140, None, 90), 90);
    }
}
