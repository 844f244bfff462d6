//! `IsrClient`: sends a leader's ISR changes to the controller with AlterPartition (KIP-497) and settles
//! them in the partition's `LeaderState` when the answer comes (Kafka's `AlterPartitionManager`).
//!
//! Each change is followed by its own task, but the changes are sent together: one AlterPartition
//! request at a time on the controller channel's ISR lane carries every change waiting then (as
//! Kafka's `AlterPartitionManager` batches its pending items), so a leader whose follower left or came
//! back changes the ISRs of all its partitions in a round trip or two, not one request per partition
//! one after another. A change the controller refused is dropped from the leader state, so the next fetch or shrink round proposes it
//! again from fresh state; an unanswered one is sent again (it may have been committed), and one that
//! may have been committed by an unanswered attempt stays pending until metadata settles it
//! (`partition_state::isr_change_failure`). Refusals are logged once per interval per kind, with a count.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, ApiKey, BrokerId, RequestKind, ResponseKind};
use tokio::sync::{mpsc, oneshot};

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
    /// The batching sender's queue (started with the first change).
    queue: std::sync::OnceLock<mpsc::UnboundedSender<Pending>>,
}

/// A controller's answer about one partition: the committed ISR and partition epoch, or its error
/// (`None`: no answer, or none that says what happened) and a description.
type Answer = Result<(Vec<i32>, i32), (Option<ResponseError>, String)>;

/// A change waiting for the next AlterPartition request.
struct Pending {
    topic_id: uuid::Uuid,
    partition: i32,
    proposal: IsrProposal,
    reply: oneshot::Sender<Answer>,
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
            queue: std::sync::OnceLock::new(),
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

    /// The controller's answer about `proposal`, sent in the next batch.
    async fn send(self: &Arc<Self>, hosted: &HostedPartition, proposal: &IsrProposal) -> Answer {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(self.clone().send_batches(rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            topic_id: hosted.topic_id,
            partition: hosted.tp.partition,
            proposal: proposal.clone(),
            reply,
        };
        if queue.send(pending).is_err() {
            return Err((None, "the ISR change sender stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err((None, "the ISR change sender stopped".into())))
    }

    /// One AlterPartition request at a time, each with every change that waited meanwhile.
    async fn send_batches(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<Pending>) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = queue.try_recv() {
                batch.push(more);
            }
            let answers = self.send_batch(&batch).await;
            for (pending, answer) in batch.into_iter().zip(answers) {
                let _ = pending.reply.send(answer);
            }
        }
    }

    /// Sends `batch` as one request; the answers in batch order.
    async fn send_batch(&self, batch: &[Pending]) -> Vec<Answer> {
        let mut topics: Vec<TopicData> = Vec::new();
        for pending in batch {
            let members = pending
                .proposal
                .isr
                .iter()
                .map(|id| {
                    BrokerState::default()
                        .with_broker_id(BrokerId(*id))
                        .with_broker_epoch((self.member_epochs)(*id))
                })
                .collect();
            let partition = PartitionData::default()
                .with_partition_index(pending.partition)
                .with_leader_epoch(pending.proposal.leader_epoch)
                .with_new_isr_with_epochs(members)
                .with_partition_epoch(pending.proposal.partition_epoch);
            match topics.iter_mut().find(|t| t.topic_id == pending.topic_id) {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    TopicData::default()
                        .with_topic_id(pending.topic_id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = AlterPartitionRequest::default()
            .with_broker_id(BrokerId(self.local_id))
            .with_broker_epoch((self.broker_epoch)())
            .with_topics(topics);
        let all = |e: (Option<ResponseError>, String)| batch.iter().map(|_| Err(e.clone())).collect();
        let response = match self
            .controller
            .send(
                Lane::Isr,
                ApiKey::AlterPartition,
                ALTER_PARTITION_VERSION,
                RequestKind::AlterPartition(request),
                TIMEOUT,
            )
            .await
        {
            Ok(ResponseKind::AlterPartition(response)) => response,
            Ok(_) => {
                return all((
                    None,
                    "the controller answered AlterPartition with another response".into(),
                ))
            }
            Err(e) => return all((None, e)),
        };
        if response.error_code != 0 {
            return all(refusal(response.error_code));
        }
        batch
            .iter()
            .map(|pending| {
                let partition = response
                    .topics
                    .iter()
                    .filter(|t| t.topic_id == pending.topic_id)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == pending.partition)
                    .ok_or((
                        None,
                        "the controller's AlterPartition answer does not name the partition".to_string(),
                    ))?;
                if partition.error_code != 0 {
                    return Err(refusal(partition.error_code));
                }
                Ok((partition.isr.iter().map(|b| b.0).collect(), partition.partition_epoch))
            })
            .collect()
    }
}

fn refusal(code: i16) -> (Option<ResponseError>, String) {
    (ResponseError::try_from_code(code), crate::util::describe_error(code))
}
