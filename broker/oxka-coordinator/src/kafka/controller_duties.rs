//! The controller's periodic duties, run on every member and acting only on the Raft leader: fencing
//! brokers whose heartbeats stopped and moving leadership off them (`fence_expired_brokers`,
//! `reconcile_leadership`, which some handlers also call after a change), and preferred-leader
//! rebalancing (`rebalance_leaders`). Re-exported from `kafka`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::context::{propose_all, ClientContext};
use crate::{ClusterImage, MetadataCommand};
use oxka_config::LeaderBalanceConfig;
use oxka_protocol::util::now_ms;

/// The controller's liveness duty: every second, on the leader, fence the unfenced brokers whose
/// heartbeats stopped for longer than the session timeout, then move partition leadership off fenced
/// brokers (`partition_leadership_changes`). Heartbeat times live only on the controller,
/// so a new controller starts every broker's clock when it first looks (a grace period of one timeout).
pub async fn fence_expired_brokers(ctx: Arc<ClientContext>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    let problems = oxka_protocol::util::RateLimitedLog::new(std::time::Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if !ctx.node.is_leader() {
            ctx.heartbeats.lock().clear();
            continue;
        }
        let image = ctx.node.state.image();
        let expired = {
            let mut heartbeats = ctx.heartbeats.lock();
            expired_brokers(&image, &mut heartbeats, now_ms(), ctx.session_timeout_ms)
        };
        for (broker_id, broker_epoch) in expired {
            let command = MetadataCommand::SetBrokerFenced {
                broker_id,
                broker_epoch,
                fenced: true,
            };
            match ctx.node.write(command).await {
                Ok(_) => tracing::info!(broker_id, "fenced a broker whose heartbeats stopped"),
                Err(e) => {
                    if let Some(count) = problems.should_log("fence") {
                        warn!(
                            broker_id,
                            "cannot fence a broker whose heartbeats stopped: {e}; retrying every second{}",
                            problems.repeats(count)
                        );
                    }
                }
            }
        }
        reconcile_leadership(&ctx).await;
    }
}

/// Proposes every `partition_leadership_changes` command for the current image: partitions led by
/// fenced brokers get new leaders, fenced brokers leave ISRs, offline partitions whose ISR member
/// returned get it back as leader. Refusals are left for the next round (the liveness duty's tick).
pub async fn reconcile_leadership(ctx: &ClientContext) {
    let image = ctx.node.state.image();
    let changes = crate::image::partition_leadership_changes_avoiding(&image, &ctx.recently_restarted());
    let completions = crate::image::reassignment_completions(&image);
    for outcome in propose_all(ctx, changes.into_iter().chain(completions).collect()).await {
        if let Err((_, message)) = outcome {
            debug!("partition leadership change not applied (retried later): {message}");
        }
    }
}

/// The controller's preferred-leader duty (`auto.leader.rebalance.enable`): every
/// `leader.imbalance.check.interval.seconds`, on the leader, propose the preferred elections that
/// `election::preferred_leader_rebalance` finds (brokers leading too few of the partitions they are
/// preferred for get them back). Returns at once when disabled. A refused proposal (the partition
/// changed meanwhile) waits for the next check.
pub async fn rebalance_leaders(ctx: Arc<ClientContext>, settings: LeaderBalanceConfig, shutdown: CancellationToken) {
    if !settings.enabled {
        return;
    }
    let mut ticker = tokio::time::interval(settings.check_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if !ctx.node.is_leader() {
            continue;
        }
        let image = ctx.node.state.image();
        let changes = crate::election::preferred_leader_rebalance(&image, settings.imbalance_per_broker_percentage);
        if changes.is_empty() {
            continue;
        }
        let (mut elected, wanted) = (0, changes.len());
        for outcome in propose_all(&ctx, changes).await {
            match outcome {
                Ok(_) => elected += 1,
                Err((_, message)) => debug!("preferred leader election not applied (retried later): {message}"),
            }
        }
        tracing::info!(elected, wanted, "auto leader rebalance: elected preferred leaders");
    }
}

/// The unfenced brokers (id, epoch) whose last heartbeat is older than `timeout_ms`. Brokers never seen
/// by this controller start their clock now.
pub fn expired_brokers(
    image: &ClusterImage,
    heartbeats: &mut BTreeMap<i32, i64>,
    now: i64,
    timeout_ms: i64,
) -> Vec<(i32, i64)> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .filter(|b| now - *heartbeats.entry(b.broker_id).or_insert(now) > timeout_ms)
        .map(|b| (b.broker_id, b.epoch))
        .collect()
}
