//! The group coordinator's side of share-partition state (KIP-932), as Kafka 4.1 does it: when a
//! share group's members first subscribe to a topic, its partitions are recorded as initializing
//! (`ShareGroupStatePartitionMetadata`, written with the heartbeat's records), their state is started
//! in their share coordinators (InitializeShareGroupState, here through `persister`), and they are
//! recorded as initialized. So `kafka-share-groups --describe` shows a start offset for every
//! partition as soon as a member is assigned, before any ShareFetch. A failed initialization leaves
//! them initializing, tried again at a later heartbeat. DeleteGroups of a share group deletes their
//! state first (`delete_group_state`).
//!
//! The start offset is `share.auto.offset.reset`'s (latest: the high watermark) when this broker
//! leads the partition; otherwise -1, which the partition's leader turns into its high watermark at
//! its first ShareFetch (what Kafka 4.1 initializes every new topic's partitions with). A partition
//! whose state exists already (its leader started it first, or it predates these records) is left as
//! it is: initializing again would throw away what its members acknowledged.
//!
//! State epoch: Kafka initializes at the group epoch; oxka at 0, the epoch a partition's leader gives
//! a state it starts itself. Both may start the same share partition at once (the leader at the
//! member's first ShareFetch, the group coordinator on another broker after its heartbeat); with the
//! same epoch the leader is not fenced, and its next write replaces the initial state with what it
//! holds, instead of the leader reloading an empty state at a later high watermark and skipping the
//! records it had delivered meanwhile.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::broker::Broker;
use crate::group::share::group::TopicPartitionsInfo;
use crate::share_state::persister::{self, PersistError};
use crate::share_state::records::SharePartitionKey;

/// Initializes `partitions` of `group_id` (asked at the group epoch `group_epoch`), then records the outcome.
pub async fn initialize_partitions(
    broker: Arc<Broker>,
    group_id: String,
    group_epoch: i32,
    partitions: TopicPartitionsInfo,
) {
    tracing::debug!(
        group = group_id,
        group_epoch,
        "initializing share partitions of newly subscribed topics"
    );
    let mut done = TopicPartitionsInfo::new();
    let mut failed = TopicPartitionsInfo::new();
    for (topic, (name, ps)) in &partitions {
        for &p in ps {
            let key = (group_id.clone(), *topic, p);
            let outcome = match initialize_one(&broker, &key, name).await {
                Ok(()) => &mut done,
                Err(e) => {
                    let errors = &broker.groups.share.persist_errors;
                    if let Some(count) = errors.should_log("initialize") {
                        tracing::warn!(
                            "cannot initialize share partition {group_id}:{name}-{p}; a later heartbeat tries again: {e}{}",
                            errors.repeats(count)
                        );
                    }
                    &mut failed
                }
            };
            outcome
                .entry(*topic)
                .or_insert_with(|| (name.clone(), BTreeSet::new()))
                .1
                .insert(p);
        }
    }
    if !failed.is_empty() {
        broker.groups.share.init_failed(&group_id, &failed);
    }
    if !done.is_empty() {
        broker.groups.share_initialized(&*broker, &group_id, &done);
    }
}

/// The state epoch of a share partition's first state (see the module's comment).
const INITIAL_STATE_EPOCH: i32 = 0;

async fn initialize_one(broker: &Broker, key: &SharePartitionKey, topic: &str) -> Result<(), PersistError> {
    let share = &broker.groups.share;
    let lock = share.write_lock(key);
    let _one_writer = lock.lock().await;
    if persister::read_summary(broker, key).await?.is_some() {
        return Ok(());
    }
    let start_offset = match broker.leader_replica_at(topic, key.2, -1) {
        Ok(found) => found.log.log.lock().high_watermark(),
        Err(_) => -1,
    };
    persister::initialize(broker, key, INITIAL_STATE_EPOCH, start_offset).await?;
    tracing::info!(
        "initialized share partition {}:{topic}-{} at start offset {start_offset}",
        key.0,
        key.2
    );
    Ok(())
}

/// DeleteGroups of an empty share group: the state of its share partitions is deleted in their
/// share coordinators (Kafka's `DeleteShareGroupState` before the group's tombstones).
pub async fn delete_group_state(broker: &Broker, keys: Vec<SharePartitionKey>) -> Result<(), PersistError> {
    let share = &broker.groups.share;
    for key in keys {
        let lock = share.write_lock(&key);
        let _one_writer = lock.lock().await;
        share.forget(&key);
        persister::delete(broker, &key).await?;
    }
    Ok(())
}
