//! Completing a decided transaction (Kafka's `TransactionMarkerChannelManager`): a task per
//! transaction in PrepareCommit/PrepareAbort sends WriteTxnMarkers to the leader of every partition
//! in it (grouped by leader, all leaders at once; this broker's own partitions are written in place,
//! other brokers are reached over kept connections), retries with
//! exponential backoff until each has its marker, then writes CompleteCommit/CompleteAbort.
//!
//! What holds: a transaction is completed only after every partition that still exists has its
//! marker; the task gives up as soon as this broker no longer coordinates the transaction at the
//! epoch it started with (the new coordinator loads the Prepare state and starts its own task), or
//! when a partition leader reports that a newer coordinator or producer epoch wrote there.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use super::host::TxnHost;
use super::state::{TxnMetadata, TxnState};
use crate::log::TopicPartition;
use crate::util::ExponentialBackoff;

/// Starts the task that writes the markers of `transactional_id`'s decided transaction and then
/// completes it. Does nothing if the transaction is not (or no longer) waiting for markers here.
pub fn complete_later<H: TxnHost>(host: &Arc<H>, transactional_id: &str) {
    let host = host.clone();
    let id = transactional_id.to_string();
    tokio::spawn(async move { run(host, id).await });
}

async fn run<H: TxnHost>(host: Arc<H>, id: String) {
    let coordinator = host.txn_coordinator();
    let Some((decided, partition, epoch)) = coordinator.preparing(&*host, &id) else {
        return;
    };
    let backoff = ExponentialBackoff::new(Duration::from_millis(20), Duration::from_secs(5));
    let mut remaining: BTreeSet<TopicPartition> = decided.partitions.clone();
    let mut attempts = 0u32;
    loop {
        if !coordinator.still_owns(partition, epoch) {
            return;
        }
        // A deleted topic's partitions get no marker (Kafka skips them too).
        remaining.retain(|tp| host.topic(&tp.topic).is_some_and(|t| tp.partition < t.partitions));
        if remaining.is_empty() {
            break;
        }
        match send_round(&host, &decided, epoch, &mut remaining).await {
            Round::Progress => {}
            Round::Fenced(error) => {
                tracing::warn!(
                    transactional_id = %id,
                    producer_id = decided.producer_id,
                    "a partition leader refused the markers ({error:?}): a newer coordinator or producer \
                     epoch owns the transaction; leaving it to them"
                );
                return;
            }
        }
        if remaining.is_empty() {
            break;
        }
        tokio::time::sleep(backoff.delay(attempts)).await;
        attempts = attempts.saturating_add(1);
    }
    attempts = 0;
    loop {
        match coordinator.complete(&host, &id, &decided).await {
            Ok(()) => return,
            Err(ResponseError::NotCoordinator) => return,
            Err(e) => {
                if !coordinator.still_owns(partition, epoch) {
                    return;
                }
                if let Some(count) = coordinator.errors.should_log(&format!("complete {partition}")) {
                    tracing::warn!(transactional_id = %id, count, "cannot complete a transaction yet: {e:?}; retrying");
                }
            }
        }
        tokio::time::sleep(backoff.delay(attempts)).await;
        attempts = attempts.saturating_add(1);
    }
}

enum Round {
    /// Some or all partitions have their markers; retry the rest.
    Progress,
    /// A leader answered that a newer epoch wrote there: this task is stale.
    Fenced(ResponseError),
}

/// Sends one WriteTxnMarkers to each leader of the remaining partitions; removes those that got it.
async fn send_round<H: TxnHost>(
    host: &Arc<H>,
    decided: &TxnMetadata,
    coordinator_epoch: i32,
    remaining: &mut BTreeSet<TopicPartition>,
) -> Round {
    let mut by_leader: BTreeMap<i32, Vec<&TopicPartition>> = BTreeMap::new();
    for tp in remaining.iter() {
        if let Some(leader) = host.leader_of(&tp.topic, tp.partition).filter(|l| *l >= 0) {
            by_leader.entry(leader).or_default().push(tp);
        }
    }
    let errors = &host.txn_coordinator().errors;
    let mut done: Vec<TopicPartition> = Vec::new();
    // Every leader at once, as Kafka's marker channel drains each broker's queue independently: a
    // slow or unreachable leader does not hold back the others.
    let sent = join_all(by_leader.into_iter().map(|(leader, partitions)| async move {
        let request = marker_request(decided, coordinator_epoch, &partitions);
        (leader, host.write_markers(leader, request).await)
    }))
    .await;
    for (leader, sent) in sent {
        let response = match sent {
            Ok(response) => response,
            Err(reason) => {
                if let Some(count) = errors.should_log(&format!("markers to {leader}")) {
                    tracing::warn!(leader, count, "cannot send transaction markers: {reason}; retrying");
                }
                continue;
            }
        };
        for marker in &response.markers {
            for topic in &marker.topics {
                for p in &topic.partitions {
                    let tp = TopicPartition::new(topic.name.as_str(), p.partition_index);
                    match ResponseError::try_from_code(p.error_code) {
                        None => done.push(tp),
                        Some(
                            e @ (ResponseError::InvalidProducerEpoch | ResponseError::TransactionCoordinatorFenced),
                        ) => return Round::Fenced(e),
                        Some(e) => {
                            if let Some(count) = errors.should_log(&format!("marker {tp}")) {
                                tracing::info!(partition = %tp, leader, count, "transaction marker not written yet: {e:?}; retrying");
                            }
                        }
                    }
                }
            }
        }
    }
    for tp in done {
        remaining.remove(&tp);
    }
    Round::Progress
}

fn marker_request(
    decided: &TxnMetadata,
    coordinator_epoch: i32,
    partitions: &[&TopicPartition],
) -> WriteTxnMarkersRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partition_indexes(partitions)
        })
        .collect();
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(decided.producer_id))
        .with_producer_epoch(decided.producer_epoch)
        .with_transaction_result(decided.state == TxnState::PrepareCommit)
        .with_topics(topics)
        .with_coordinator_epoch(coordinator_epoch);
    WriteTxnMarkersRequest::default().with_markers(vec![marker])
}
