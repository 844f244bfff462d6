//! The share-partition timer (Kafka's acquisition-lock timer in `SharePartition`): one task per
//! broker that releases acquisition locks when they expire (`group.share.record.lock.duration.ms`)
//! and persists share-partition changes no request will write: those locks, and the records a
//! member gave back when it left (ShareGroupHeartbeat with epoch -1, session expiry, a closed share
//! session). Without it, an expired lock would wait for the next ShareFetch or ShareAcknowledge of
//! its partition, and a release on leave would stay in memory only, so a crash right after would
//! deliver those records again with the wrong delivery count.
//!
//! It sleeps until the earliest lock expiry of this broker's share partitions (found by a walk over
//! their in-flight records; at most a second, so a lock taken meanwhile is not missed by more than
//! that), or until the share runtime wakes it (`ShareCoordinator::timer_wake`). Releasing wakes the
//! ShareFetches waiting for records (`ShareCoordinator::subscribe_available`). At each wake-up it
//! also ends the sessions of share group members that stopped heartbeating (their records go to
//! `__consumer_offsets`), so an idle group empties, also after a load brought its members back, and
//! it starts the share-partition initializations a previous group coordinator left unfinished. Writes go through
//! `persister::flush`, one writer per share partition; a write that fails is tried again at the
//! next wake-up, its error logged once per interval with a count.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

/// The longest the timer sleeps: how late a lock taken while it slept may be released at most.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Runs until `shutdown`.
pub async fn run(broker: Arc<Broker>, shutdown: CancellationToken) {
    let share = &broker.groups.share;
    loop {
        let now = crate::util::now_ms();
        let sleep = share
            .next_lock_expiry()
            .map_or(MAX_SLEEP, |at| {
                Duration::from_millis(at.saturating_sub(now).max(0) as u64)
            })
            .min(MAX_SLEEP);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
            _ = share.timer_wake.notified() => {}
        }
        for (group_id, group_epoch, partitions) in share.take_initializations() {
            // What a previous group coordinator left initializing (`initialize_after_takeover`).
            tokio::spawn(super::initialize::initialize_partitions(
                broker.clone(),
                group_id,
                group_epoch,
                partitions,
            ));
        }
        if !share.group_ids().is_empty() {
            // Share group members whose session ended leave (also those a load brought back).
            let topics = crate::api::share_group_heartbeat::share_topics(&broker);
            broker
                .groups
                .expire_share_members(&*broker, &topics, crate::util::now_ms());
        }
        let released = share.expire_locks(crate::util::now_ms());
        if released > 0 {
            tracing::debug!(released, "share-partition acquisition locks expired");
        }
        let keys = share.unpersisted_keys();
        if keys.is_empty() {
            continue;
        }
        for (key, e) in super::persister::flush(&broker, keys).await {
            let errors = &share.persist_errors;
            if let Some(count) = errors.should_log("timer write") {
                tracing::warn!(
                    "cannot persist share partition {}:{}:{} (released records); trying again: {e}{}",
                    key.0,
                    key.1,
                    key.2,
                    errors.repeats(count)
                );
            }
        }
    }
}
