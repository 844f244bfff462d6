//! The group coordinator answers only what is committed: an answer that reports a change (a member
//! epoch, an assignment, offsets, a deleted group) waits until the records behind it are on every
//! in-sync replica of the group's `__consumer_offsets` partition, so a failover of that partition right
//! after the answer cannot take the change back. This is Kafka's coordinator runtime: a write completes
//! once the high watermark passes its records (acks=all, with `min.insync.replicas`), and a request
//! that wrote nothing waits for earlier writes it may have read.
//!
//! Use: `let writes = GroupWrites::begin(broker, group_id);`, run the coordinator step, then
//! `writes.committed().await` before answering.

use std::time::Duration;

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::log::TopicPartition;

/// How long an answer waits for the in-sync replicas (Kafka's `offsets.commit.timeout.ms` default,
/// which its group coordinator uses for every write).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The group's `__consumer_offsets` partition and its log end offset before a coordinator step.
pub(super) struct GroupWrites<'a> {
    broker: &'a Broker,
    group_id: &'a str,
    tp: TopicPartition,
    end_before: Option<i64>,
}

impl<'a> GroupWrites<'a> {
    pub(super) fn begin(broker: &'a Broker, group_id: &'a str) -> GroupWrites<'a> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, broker.groups.partition_of(broker, group_id));
        let end_before = log_end_and_high_watermark(broker, &tp).map(|(end, _)| end);
        GroupWrites {
            broker,
            group_id,
            tp,
            end_before,
        }
    }

    /// Waits until what the step wrote, and what was written before it, is on the in-sync replicas.
    /// A step that wrote nothing while nothing waits for replication is answered at once (no
    /// `min.insync.replicas` check: Kafka refuses writes below it, not reads). On failure, the error
    /// the answer carries: NOT_COORDINATOR when this broker no longer leads the partition, else
    /// COORDINATOR_NOT_AVAILABLE (Kafka's mapping of NOT_ENOUGH_REPLICAS and REQUEST_TIMED_OUT), both of
    /// which send the client to find its coordinator again.
    pub(super) async fn committed(self) -> Result<(), ResponseError> {
        let Some((end, high_watermark)) = log_end_and_high_watermark(self.broker, &self.tp) else {
            // Not hosted here: the step found no group to change (or refused it) on this broker.
            return Ok(());
        };
        let wrote = self.end_before.is_some_and(|before| end > before);
        if !wrote && high_watermark >= end {
            return Ok(());
        }
        await_written(self.broker, self.group_id, &self.tp).await
    }
}

/// Waits until everything written to the group's partition `tp` so far is on its in-sync replicas
/// (`min.insync.replicas` applies). The error is the one the answer carries: NOT_COORDINATOR when this
/// broker no longer leads the partition, else COORDINATOR_NOT_AVAILABLE.
pub(super) async fn await_written(broker: &Broker, group_id: &str, tp: &TopicPartition) -> Result<(), ResponseError> {
    let waited = broker.replicas.await_replication_of_log_end(tp, WRITE_TIMEOUT).await;
    waited.map_err(|failure| {
        tracing::debug!(
            group = group_id,
            partition = %tp,
            "group coordinator records not replicated: {:?} {:?}",
            failure.error,
            failure.message
        );
        match failure.error {
            ResponseError::NotLeaderOrFollower => ResponseError::NotCoordinator,
            _ => ResponseError::CoordinatorNotAvailable,
        }
    })
}

fn log_end_and_high_watermark(broker: &Broker, tp: &TopicPartition) -> Option<(i64, i64)> {
    let hosted = broker.replicas.get(tp)?;
    let log = hosted.log.log.lock();
    Some((log.log_end_offset(), log.high_watermark()))
}
