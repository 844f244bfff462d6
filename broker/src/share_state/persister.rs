//! The share partition leader's and the group coordinator's side of share-partition state
//! (Kafka's `Persister`): reads, writes, initializes, summarizes and deletes the state of a share
//! partition at its share coordinator, the leader of the state's `__share_group_state` partition:
//! in-process when that is this broker, else with Read/Write/Initialize/DeleteShareGroupState and
//! ReadShareGroupStateSummary over the inter-broker connections (`inter_broker`). Errors
//! that pass with time (no coordinator yet, it is loading or moving, the write did not reach
//! min.insync.replicas yet) are retried for up to `RETRY_FOR`, so a failover of the state's own
//! partition only delays the answer.

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    delete_share_group_state_request as del, initialize_share_group_state_request as init,
    read_share_group_state_request as rd, read_share_group_state_summary_request as sum,
    write_share_group_state_request as wr, ApiKey, DeleteShareGroupStateRequest, InitializeShareGroupStateRequest,
    ReadShareGroupStateRequest, ReadShareGroupStateSummaryRequest, RequestKind, ResponseKind,
    WriteShareGroupStateRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::Summary;
use super::records::{SharePartitionKey, ShareSnapshot, StateBatch};
use crate::broker::Broker;

/// How long a state call keeps retrying passing errors.
const RETRY_FOR: Duration = Duration::from_secs(20);
/// How long another broker may take to answer (it waits for its replicas first).
const CALL_TIMEOUT: Duration = Duration::from_secs(35);

/// Why a state call failed: the Kafka error and what happened, for the caller's log line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("share-partition state {step} failed with {error:?}: {detail}")]
pub struct PersistError {
    pub step: &'static str,
    pub error: ResponseError,
    pub detail: String,
}

fn retriable(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::NotCoordinator
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend
            | ResponseError::RequestTimedOut
            | ResponseError::NotLeaderOrFollower
            | ResponseError::KafkaStorageError
    )
}

/// One call to the key's share coordinator; `Err((error, detail))`.
enum Call {
    Read(i32),
    Write(ShareSnapshot),
    Delete,
    /// State epoch, start offset.
    Initialize(i32, i64),
    ReadSummary,
}

enum Answer {
    Read(Option<ShareSnapshot>),
    Summary(Option<Summary>),
    Done,
}

async fn call_once(broker: &Broker, key: &SharePartitionKey, call: &Call) -> Result<Answer, (ResponseError, String)> {
    let coordinator = &broker.share_state;
    coordinator
        .ensure_topic(broker)
        .await
        .map_err(|e| (e, "no __share_group_state topic".to_string()))?;
    let leader = coordinator
        .coordinator_of(broker, key)
        .map_err(|e| (e, "its partition has no leader".to_string()))?;
    if leader == broker.broker_id() {
        return match call {
            Call::Read(epoch) => coordinator.read(broker, key, *epoch).await.map(Answer::Read),
            Call::Write(s) => coordinator.write(broker, key, s.clone()).await.map(|()| Answer::Done),
            Call::Delete => coordinator.delete(broker, key).await.map(|()| Answer::Done),
            Call::Initialize(state_epoch, start_offset) => coordinator
                .initialize(broker, key, *state_epoch, *start_offset)
                .await
                .map(|()| Answer::Done),
            Call::ReadSummary => coordinator.read_summary(broker, key).await.map(Answer::Summary),
        }
        .map_err(|e| (e, "at this broker".to_string()));
    }
    let (api, request) = match call {
        Call::Read(epoch) => (
            ApiKey::ReadShareGroupState,
            RequestKind::ReadShareGroupState(read_request(key, *epoch)),
        ),
        Call::Write(s) => (
            ApiKey::WriteShareGroupState,
            RequestKind::WriteShareGroupState(write_request(key, s)),
        ),
        Call::Delete => (
            ApiKey::DeleteShareGroupState,
            RequestKind::DeleteShareGroupState(delete_request(key)),
        ),
        Call::Initialize(state_epoch, start_offset) => (
            ApiKey::InitializeShareGroupState,
            RequestKind::InitializeShareGroupState(initialize_request(key, *state_epoch, *start_offset)),
        ),
        Call::ReadSummary => (
            ApiKey::ReadShareGroupStateSummary,
            RequestKind::ReadShareGroupStateSummary(summary_request(key)),
        ),
    };
    let response = crate::peer_call::call(broker, leader, api, 0, request, CALL_TIMEOUT)
        .await
        .map_err(|e| (ResponseError::CoordinatorNotAvailable, format!("broker {leader}: {e}")))?;
    let at = |code: i16, message: Option<StrBytes>| {
        let e = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
        (e, format!("broker {leader}: {}", message.as_deref().unwrap_or("")))
    };
    match response {
        ResponseKind::ReadShareGroupState(r) => {
            let p = r.results.into_iter().flat_map(|t| t.partitions).next().ok_or((
                ResponseError::UnknownServerError,
                format!("broker {leader} answered no partition"),
            ))?;
            if p.error_code != 0 {
                return Err(at(p.error_code, p.error_message));
            }
            if p.state_epoch < 0 && p.start_offset < 0 {
                return Ok(Answer::Read(None));
            }
            Ok(Answer::Read(Some(ShareSnapshot {
                snapshot_epoch: 0,
                state_epoch: p.state_epoch,
                leader_epoch: *match call {
                    Call::Read(e) => e,
                    _ => &-1,
                },
                start_offset: p.start_offset,
                create_timestamp: -1,
                write_timestamp: -1,
                state_batches: p
                    .state_batches
                    .iter()
                    .map(|b| StateBatch {
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        delivery_state: b.delivery_state,
                        delivery_count: b.delivery_count,
                    })
                    .collect(),
            })))
        }
        ResponseKind::WriteShareGroupState(r) => match r.results.into_iter().flat_map(|t| t.partitions).next() {
            Some(p) if p.error_code != 0 => Err(at(p.error_code, p.error_message)),
            _ => Ok(Answer::Done),
        },
        ResponseKind::DeleteShareGroupState(r) => match r.results.into_iter().flat_map(|t| t.partitions).next() {
            Some(p) if p.error_code != 0 => Err(at(p.error_code, p.error_message)),
            _ => Ok(Answer::Done),
        },
        ResponseKind::InitializeShareGroupState(r) => match r.results.into_iter().flat_map(|t| t.partitions).next() {
            Some(p) if p.error_code != 0 => Err(at(p.error_code, p.error_message)),
            _ => Ok(Answer::Done),
        },
        ResponseKind::ReadShareGroupStateSummary(r) => {
            let p = r.results.into_iter().flat_map(|t| t.partitions).next().ok_or((
                ResponseError::UnknownServerError,
                format!("broker {leader} answered no partition"),
            ))?;
            if p.error_code != 0 {
                return Err(at(p.error_code, p.error_message));
            }
            Ok(Answer::Summary((p.start_offset >= 0 || p.state_epoch >= 0).then_some(
                Summary {
                    state_epoch: p.state_epoch,
                    leader_epoch: p.leader_epoch,
                    start_offset: p.start_offset,
                },
            )))
        }
        _ => Err((
            ResponseError::UnknownServerError,
            format!("broker {leader} answered with another API's response"),
        )),
    }
}

async fn call(
    broker: &Broker,
    key: &SharePartitionKey,
    call: Call,
    step: &'static str,
) -> Result<Answer, PersistError> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        match call_once(broker, key, &call).await {
            Ok(answer) => return Ok(answer),
            Err((error, detail)) if retriable(error) && started.elapsed() < RETRY_FOR => {
                tracing::debug!(
                    group = key.0,
                    partition = key.2,
                    "share-partition state {step}: {error:?} ({detail}); retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err((error, detail)) => return Err(PersistError { step, error, detail }),
        }
    }
}

/// The persisted state of a share partition, read by its leader at `leader_epoch` (which fences
/// the writes of former leaders); `None` when it has none.
pub async fn read(
    broker: &Broker,
    key: &SharePartitionKey,
    leader_epoch: i32,
) -> Result<Option<ShareSnapshot>, PersistError> {
    match call(broker, key, Call::Read(leader_epoch), "read").await? {
        Answer::Read(state) => Ok(state),
        _ => Ok(None),
    }
}

/// The summary of a share partition's persisted state (its state epoch and start offset); `None`
/// when it has none.
pub async fn read_summary(broker: &Broker, key: &SharePartitionKey) -> Result<Option<Summary>, PersistError> {
    match call(broker, key, Call::ReadSummary, "summary read").await? {
        Answer::Summary(summary) => Ok(summary),
        _ => Ok(None),
    }
}

/// Starts a share partition's persisted state anew at `start_offset`, with `state_epoch`.
pub async fn initialize(
    broker: &Broker,
    key: &SharePartitionKey,
    state_epoch: i32,
    start_offset: i64,
) -> Result<(), PersistError> {
    call(broker, key, Call::Initialize(state_epoch, start_offset), "initialize")
        .await
        .map(|_| ())
}

/// Replaces the persisted state of a share partition (acks=all at its share coordinator).
pub async fn write(broker: &Broker, key: &SharePartitionKey, state: ShareSnapshot) -> Result<(), PersistError> {
    call(broker, key, Call::Write(state), "write").await.map(|_| ())
}

/// Deletes the persisted state of a share partition.
pub async fn delete(broker: &Broker, key: &SharePartitionKey) -> Result<(), PersistError> {
    call(broker, key, Call::Delete, "delete").await.map(|_| ())
}

fn read_request(key: &SharePartitionKey, leader_epoch: i32) -> ReadShareGroupStateRequest {
    ReadShareGroupStateRequest::default()
        .with_group_id(StrBytes::from_string(key.0.clone()))
        .with_topics(vec![rd::ReadStateData::default().with_topic_id(key.1).with_partitions(
            vec![rd::PartitionData::default()
                .with_partition(key.2)
                .with_leader_epoch(leader_epoch)],
        )])
}

fn write_request(key: &SharePartitionKey, s: &ShareSnapshot) -> WriteShareGroupStateRequest {
    let batches = s
        .state_batches
        .iter()
        .map(|b| {
            wr::StateBatch::default()
                .with_first_offset(b.first_offset)
                .with_last_offset(b.last_offset)
                .with_delivery_state(b.delivery_state)
                .with_delivery_count(b.delivery_count)
        })
        .collect();
    WriteShareGroupStateRequest::default()
        .with_group_id(StrBytes::from_string(key.0.clone()))
        .with_topics(vec![wr::WriteStateData::default()
            .with_topic_id(key.1)
            .with_partitions(vec![wr::PartitionData::default()
                .with_partition(key.2)
                .with_state_epoch(s.state_epoch)
                .with_leader_epoch(s.leader_epoch)
                .with_start_offset(s.start_offset)
                .with_state_batches(batches)])])
}

fn initialize_request(
    key: &SharePartitionKey,
    state_epoch: i32,
    start_offset: i64,
) -> InitializeShareGroupStateRequest {
    InitializeShareGroupStateRequest::default()
        .with_group_id(StrBytes::from_string(key.0.clone()))
        .with_topics(vec![init::InitializeStateData::default()
            .with_topic_id(key.1)
            .with_partitions(vec![init::PartitionData::default()
                .with_partition(key.2)
                .with_state_epoch(state_epoch)
                .with_start_offset(start_offset)])])
}

fn summary_request(key: &SharePartitionKey) -> ReadShareGroupStateSummaryRequest {
    ReadShareGroupStateSummaryRequest::default()
        .with_group_id(StrBytes::from_string(key.0.clone()))
        .with_topics(vec![sum::ReadStateSummaryData::default()
            .with_topic_id(key.1)
            .with_partitions(vec![sum::PartitionData::default()
                .with_partition(key.2)
                .with_leader_epoch(-1)])])
}

fn delete_request(key: &SharePartitionKey) -> DeleteShareGroupStateRequest {
    DeleteShareGroupStateRequest::default()
        .with_group_id(StrBytes::from_string(key.0.clone()))
        .with_topics(vec![del::DeleteStateData::default()
            .with_topic_id(key.1)
            .with_partitions(vec![del::PartitionData::default().with_partition(key.2)])])
}

/// Makes sure this broker's share partition `key` is loaded at `leader_epoch` (this broker leads
/// its topic partition at that epoch): reads its persisted state, or starts it at
/// `initial_offset` and persists that, so records appended from then on are never skipped, even
/// after a failover.
pub async fn load(
    broker: &Broker,
    key: &SharePartitionKey,
    leader_epoch: i32,
    initial_offset: i64,
) -> Result<(), PersistError> {
    let share = &broker.groups.share;
    if !share.needs_load(key, leader_epoch) {
        return Ok(());
    }
    let lock = share.write_lock(key);
    let _one_writer = lock.lock().await;
    if !share.needs_load(key, leader_epoch) {
        return Ok(());
    }
    let state = read(broker, key, leader_epoch).await?;
    share.install(key, leader_epoch, state.as_ref(), initial_offset);
    write_unpersisted(broker, key).await?;
    let start = state.as_ref().map_or(initial_offset, |s| s.start_offset);
    tracing::info!(
        "loaded share partition {}:{}:{} at leader epoch {leader_epoch} ({}), start offset {start}",
        key.0,
        key.1,
        key.2,
        if state.is_some() {
            "from its persisted state"
        } else {
            "new"
        }
    );
    Ok(())
}

/// Persists the changes of these share partitions that are not persisted yet; returns the share
/// partitions whose write failed. Only the caller's: a share partition whose writes fail (its
/// share coordinator is down) must not hold up requests about others. Changes nobody's request
/// made (a member left and its records became available again) are written with the share
/// partition's next change; until then its persisted form differs only where such a release
/// archived a record at the delivery limit or moved the start offset.
pub async fn flush(
    broker: &Broker,
    keys: impl IntoIterator<Item = SharePartitionKey>,
) -> Vec<(SharePartitionKey, PersistError)> {
    let share = &broker.groups.share;
    let all: std::collections::BTreeSet<SharePartitionKey> = keys.into_iter().collect();
    let mut failed = Vec::new();
    for key in all {
        let lock = share.write_lock(&key);
        let _one_writer = lock.lock().await;
        if let Err(e) = write_unpersisted(broker, &key).await {
            failed.push((key, e));
        }
    }
    failed
}

/// Writes the share partition's unpersisted version, if any (the caller holds its write lock).
async fn write_unpersisted(broker: &Broker, key: &SharePartitionKey) -> Result<(), PersistError> {
    let share = &broker.groups.share;
    let Some((state, version)) = share.unpersisted(key) else {
        return Ok(());
    };
    match write(broker, key, state).await {
        Ok(()) => {
            share.persisted(key, version);
            Ok(())
        }
        Err(e) => {
            if matches!(
                e.error,
                ResponseError::FencedLeaderEpoch | ResponseError::FencedStateEpoch
            ) {
                // A newer leader of the partition has loaded it, or the group coordinator started
                // its state anew (AlterShareGroupOffsets): what this broker holds is stale.
                tracing::info!(
                    "share partition {}:{}:{} is stale here ({:?}): it is loaded again at its next fetch",
                    key.0,
                    key.1,
                    key.2,
                    e.error
                );
                share.forget(key);
            }
            Err(e)
        }
    }
}

/// AlterShareGroupOffsets of one share partition (its group is empty), as Kafka's group
/// coordinator does it: InitializeShareGroupState at `start_offset` with nothing in flight and the
/// next state epoch. This broker forgets its copy at once; the partition's leader elsewhere finds
/// the new state epoch when a share session opens there (`revalidate`), or is fenced at its next
/// write (FENCED_STATE_EPOCH), and loads the share partition again.
pub async fn alter_start_offset(
    broker: &Broker,
    key: &SharePartitionKey,
    start_offset: i64,
) -> Result<(), PersistError> {
    let share = &broker.groups.share;
    let lock = share.write_lock(key);
    let _one_writer = lock.lock().await;
    share.forget(key);
    let state_epoch = read_summary(broker, key)
        .await?
        .map_or(0, |s| s.state_epoch.max(-1).wrapping_add(1));
    initialize(broker, key, state_epoch, start_offset).await
}

/// A share session opened here: its share partitions loaded on this broker whose persisted state
/// was initialized anew or deleted since they were loaded (AlterShareGroupOffsets,
/// DeleteShareGroupOffsets, answered by the group coordinator, maybe on another broker) are
/// forgotten, so the fetch loads them again. Such changes need an empty group, so any member
/// fetching after one opens a new session first. A summary that cannot be read keeps the copy.
pub async fn revalidate(broker: &Broker, keys: Vec<SharePartitionKey>) {
    let share = &broker.groups.share;
    for key in keys {
        let Some(loaded_epoch) = share.loaded_state_epoch(&key) else {
            continue;
        };
        let persisted = match read_summary(broker, &key).await {
            Ok(summary) => summary.map(|s| s.state_epoch),
            Err(e) => {
                tracing::debug!("cannot check share partition {}:{}:{}: {e}", key.0, key.1, key.2);
                continue;
            }
        };
        if persisted != Some(loaded_epoch) {
            let lock = share.write_lock(&key);
            let _one_writer = lock.lock().await;
            tracing::info!(
                "share partition {}:{}:{} was reset (state epoch {loaded_epoch} here, {persisted:?} at its share \
                 coordinator): loading it again",
                key.0,
                key.1,
                key.2
            );
            share.forget(&key);
        }
    }
}

/// DeleteShareGroupOffsets of a topic (its group is empty): the state of each of its `partitions`
/// share partitions is deleted; their next fetch starts them anew.
pub async fn delete_topic_state(
    broker: &Broker,
    group_id: &str,
    topic_id: uuid::Uuid,
    partitions: i32,
) -> Result<(), PersistError> {
    let share = &broker.groups.share;
    for p in 0..partitions {
        let key = (group_id.to_string(), topic_id, p);
        let lock = share.write_lock(&key);
        let _one_writer = lock.lock().await;
        share.forget(&key);
        delete(broker, &key).await?;
    }
    Ok(())
}
