//! `IsrClient`: sends a leader's ISR changes to the controller with AlterPartition (KIP-497) and settles
//! them in the partition's `LeaderState` when the answer comes (Kafka's `AlterPartitionManager`).
//!
//! One request per change, each in its own task, on the controller channel's ISR lane. A change the
//! controller refused is dropped from the leader state, so the next fetch or shrink round proposes it
//! again from fresh state; an unanswered one is sent again (it may have been committed), and one that
//! may have been committed by an unanswered attempt stays pending until metadata settles it
//! (`partition_state::isr_change_failure`). Refusals are logged once per interval per kind, with a count.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, ApiKey, BrokerId, RequestKind, ResponseKind};

use super::hosted::{HostedPartition, Role};
use super::partition_state::{isr_change_failure, IsrChangeFailure, IsrProposal};
use crate::cluster::{ControllerChannel, Lane};
use crate::metrics::ReplicationCounters;
use crate::util::{ExponentialBackoff, RateLimitedLog};

/// Pause before an ISR change the controller refused or did not answer is sent again.
const ISR_RETRY_BACKOFF: ExponentialBackoff = ExponentialBackoff {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(5),
    jitter: 0.2,
};

/// AlterPartition v3: ISR members with their broker epochs (KIP-903) and topic ids.
pub const ALTER_PARTITION_VERSION: i16 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The broker's channel to the controller for ISR changes.
pub struct IsrClient {
    local_id: i32,
    controller: Arc<ControllerChannel>,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Broker epochs of the members, from the latest metadata (KIP-903).
    member_epochs: Arc<dyn Fn(i32) -> i64 + Send + Sync>,
    refusals: RateLimitedLog,
    counters: ReplicationCounters,
}

impl IsrClient {
    pub fn new(
        local_id: i32,
        controller: Arc<ControllerChannel>,
        broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
        member_epochs: Arc<dyn Fn(i32) -> i64 + Send + Sync>,
        counters: ReplicationCounters,
    ) -> Self {
        IsrClient {
            local_id,
            controller,
            broker_epoch,
            member_epochs,
            counters,
            refusals: RateLimitedLog::new(Duration::from_secs(10)),
        }
    }

    /// Sends `proposal` for `hosted` (already marked in flight in its leader state) in the background,
    /// again while it goes unanswered (it may have been committed: dropping it would let the high
    /// watermark pass a member the controller counts as in sync), until the controller answers or
    /// metadata settles it (`isr_change_failure`).
    pub fn submit(self: &Arc<Self>, hosted: Arc<HostedPartition>, proposal: IsrProposal) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut retried = false;
            let mut attempts = 0u32;
            loop {
                let outcome = this.send(&hosted, &proposal).await;
                let again = {
                    let mut role = hosted.role.lock();
                    match &mut *role {
                        Role::Leader(state) if state.leader_epoch == proposal.leader_epoch => match &outcome {
                            Ok((isr, partition_epoch)) => {
                                if isr.len() < state.isr.len() {
                                    this.counters.isr_shrinks.inc();
                                } else if isr.len() > state.isr.len() {
                                    this.counters.isr_expands.inc();
                                }
                                state.isr_change_committed(isr.clone(), *partition_epoch);
                                false
                            }
                            Err((error, _)) => match isr_change_failure(*error, retried) {
                                IsrChangeFailure::Drop => {
                                    state.isr_change_failed();
                                    false
                                }
                                IsrChangeFailure::AwaitMetadata => false,
                                IsrChangeFailure::Retry => {
                                    state.pending_isr.as_ref() == Some(&proposal.isr)
                                        && state.partition_epoch == proposal.partition_epoch
                                }
                            },
                        },
                        _ => false,
                    }
                };
                match outcome {
                    Ok((isr, partition_epoch)) => {
                        tracing::info!(partition = %hosted.tp, ?isr, partition_epoch, "ISR change committed");
                        hosted.maybe_advance_high_watermark();
                        hosted.notify_changed();
                    }
                    Err((_, problem)) => {
                        if let Some(count) = this.refusals.should_log(&problem) {
                            tracing::warn!(
                                partition = %hosted.tp,
                                isr = ?proposal.isr,
                                "ISR change not committed ({count} such in the last interval): {problem}; {}",
                                if again { "sending it again" } else { "proposed again from the next fetch or check, or settled by metadata" }
                            );
                        }
                        // Back off (200 ms doubling to 5 s, with jitter) so a refusal is not retried in a
                        // tight loop.
                        tokio::time::sleep(ISR_RETRY_BACKOFF.delay(attempts)).await;
                        attempts = attempts.saturating_add(1);
                    }
                }
                if !again {
                    return;
                }
                retried = true;
            }
        });
    }

    /// The controller's answer: the committed ISR and partition epoch, or its error (`None`: no answer,
    /// or none that says what happened) and a description.
    async fn send(
        &self,
        hosted: &HostedPartition,
        proposal: &IsrProposal,
    ) -> Result<(Vec<i32>, i32), (Option<ResponseError>, String)> {
        let members = proposal
            .isr
            .iter()
            .map(|id| {
                BrokerState::default()
                    .with_broker_id(BrokerId(*id))
                    .with_broker_epoch((self.member_epochs)(*id))
            })
            .collect();
        let request = AlterPartitionRequest::default()
            .with_broker_id(BrokerId(self.local_id))
            .with_broker_epoch((self.broker_epoch)())
            .with_topics(vec![TopicData::default()
                .with_topic_id(hosted.topic_id)
                .with_partitions(vec![PartitionData::default()
                    .with_partition_index(hosted.tp.partition)
                    .with_leader_epoch(proposal.leader_epoch)
                    .with_new_isr_with_epochs(members)
                    .with_partition_epoch(proposal.partition_epoch)])]);
        let response = self
            .controller
            .send(
                Lane::Isr,
                ApiKey::AlterPartition,
                ALTER_PARTITION_VERSION,
                RequestKind::AlterPartition(request),
                TIMEOUT,
            )
            .await
            .map_err(|e| (None, e))?;
        let ResponseKind::AlterPartition(response) = response else {
            return Err((
                None,
                "the controller answered AlterPartition with another response".into(),
            ));
        };
        if response.error_code != 0 {
            return Err(refusal(response.error_code));
        }
        let partition = response.topics.first().and_then(|t| t.partitions.first()).ok_or((
            None,
            "the controller's AlterPartition answer names no partition".to_string(),
        ))?;
        if partition.error_code != 0 {
            return Err(refusal(partition.error_code));
        }
        Ok((partition.isr.iter().map(|b| b.0).collect(), partition.partition_epoch))
    }
}

fn refusal(code: i16) -> (Option<ResponseError>, String) {
    (ResponseError::try_from_code(code), crate::util::describe_error(code))
}
