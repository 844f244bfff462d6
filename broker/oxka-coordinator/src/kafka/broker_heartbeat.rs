//! BrokerHeartbeat (KIP-631): a registered broker reports it is alive and how far it has caught up with
//! the metadata log. The controller unfences a fenced broker once it has caught up to its own
//! registration (and it does not ask to stay fenced), and fences one that asks to be. Liveness times are
//! kept in memory on the controller (not replicated): a new controller starts counting afresh.
//!
//! A broker that asks to be fenced (`want_fence`: one of its log dirs failed a write) is fenced at once
//! and its partitions get new leaders and ISRs without it; when it asks no more (and has caught up) it
//! is unfenced again.
//!
//! Controlled shutdown: a broker that heartbeats with `want_shut_down` is fenced and the controller at
//! once proposes `partition_leadership_changes`, so its partitions get new leaders (from their live ISR;
//! with RF 1 they go offline, leader -1) before the answer. Only when it leads nothing is it told
//! `should_shut_down`; until then (say, no quorum) it gets an error and asks again with its next
//! heartbeat, as Kafka brokers do.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerHeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use tracing::{info, warn};

use super::{propose_all, ClientContext};
use crate::image::{error_code, partition_leadership_changes_avoiding, MetadataCommand, MetadataResponse};
use crate::ClusterImage;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Rounds of leadership changes a controlled shutdown tries before answering; a round only repeats when
/// a concurrent change (the liveness duty, an ISR change) made one of its proposals stale.
const SHUTDOWN_ROUNDS: usize = 3;

pub async fn handle(ctx: &ClientContext, request: BrokerHeartbeatRequest) -> BrokerHeartbeatResponse {
    let response = BrokerHeartbeatResponse::default().with_is_fenced(true);
    if !ctx.node.is_confirmed_leader().await {
        return response.with_error_code(ResponseError::NotController.code());
    }
    let id = request.broker_id.0;
    let Some(broker) = ctx.node.state.image().brokers.get(&id).cloned() else {
        return response.with_error_code(ResponseError::BrokerIdNotRegistered.code());
    };
    if broker.epoch != request.broker_epoch {
        return response.with_error_code(ResponseError::StaleBrokerEpoch.code());
    }
    let now = super::now_ms();
    ctx.heartbeats.lock().insert(id, now);
    ctx.broker_offsets
        .lock()
        .insert(id, (request.current_metadata_offset, now));
    let caught_up = request.current_metadata_offset >= broker.epoch;
    let want_fenced = request.want_fence || request.want_shut_down;
    let mut fenced = broker.fenced;
    if fenced != want_fenced && (want_fenced || caught_up) {
        let command = MetadataCommand::SetBrokerFenced {
            broker_id: id,
            broker_epoch: broker.epoch,
            fenced: want_fenced,
        };
        match ctx.node.write(command).await {
            Ok(MetadataResponse::Done) => {
                fenced = want_fenced;
                if !fenced || !request.want_shut_down {
                    // A returning broker leads its partitions again now, and one that asks to be fenced
                    // (a failed log dir) leaves its ISRs and leadership now, not at the next liveness
                    // tick. A controlled shutdown moves its leadership below, before answering.
                    super::reconcile_leadership(ctx).await;
                }
            }
            Ok(MetadataResponse::Rejected { error_code, .. }) => return response.with_error_code(error_code),
            Ok(_) => {}
            Err(e) => return response.with_error_code(e.kafka_code()),
        }
    }
    let response = response.with_is_caught_up(caught_up).with_is_fenced(fenced);
    if !(request.want_shut_down && fenced) {
        return response;
    }
    match move_leadership_off(ctx, id).await {
        Ok(()) => response.with_should_shut_down(true),
        Err(code) => response.with_error_code(code),
    }
}

/// Proposes the leadership and ISR changes a fenced `broker_id` needs, until it leads no partition and
/// is in no ISR it can leave (as Kafka's controller, which removes a shutting-down broker from every
/// ISR: an acks=all write would otherwise wait for it until its leader drops it after
/// `replica.lag.time.max.ms`). Returns the Kafka error code to answer with when that cannot be done now.
async fn move_leadership_off(ctx: &ClientContext, broker_id: i32) -> Result<(), i16> {
    for _ in 0..SHUTDOWN_ROUNDS {
        let image = ctx.node.state.image();
        let changes = partition_leadership_changes_avoiding(&image, &ctx.recently_restarted());
        if leads_no_partition(&image, broker_id) && changes.is_empty() {
            info!(
                broker_id,
                "controlled shutdown: the broker leads no partition and is in no ISR it can leave; it may stop"
            );
            return Ok(());
        }
        for outcome in propose_all(ctx, changes).await {
            match outcome {
                Ok(_) => {}
                // Changed under us by another proposal: the next round recomputes from the new image.
                Err((code, _)) if is_stale(code) => {}
                Err((code, message)) => {
                    warn!(
                        broker_id,
                        "controlled shutdown: cannot move partition leadership yet: {message}"
                    );
                    return Err(code);
                }
            }
        }
    }
    if leads_no_partition(&ctx.node.state.image(), broker_id) {
        return Ok(());
    }
    warn!(
        broker_id,
        "controlled shutdown: partition leadership kept changing under the controller; the broker will ask again"
    );
    Err(ResponseError::RequestTimedOut.code())
}

fn is_stale(code: i16) -> bool {
    code == error_code::FENCED_LEADER_EPOCH || code == error_code::UNKNOWN_TOPIC_OR_PARTITION
}

/// Whether `broker_id` leads no partition in `image`: the condition for telling it to shut down.
pub fn leads_no_partition(image: &ClusterImage, broker_id: i32) -> bool {
    !image
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .any(|p| p.leader == broker_id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{
        BrokerId, BrokerRegistrationRequest, CreateTopicsRequest, RequestKind, ResponseKind,
    };
    use uuid::Uuid;

    use super::*;
    use crate::image::{apply, partition_leadership_changes};
    use crate::kafka::dispatch;
    use crate::testing::single_voter;

    fn image_with(brokers: &[i32], topics: &[(&str, Vec<Vec<i32>>)]) -> ClusterImage {
        let mut image = ClusterImage::default();
        let mut index = 1;
        let mut next = || {
            index += 1;
            index
        };
        for &id in brokers {
            let register = MetadataCommand::RegisterBroker {
                broker_id: id,
                incarnation_id: Uuid::nil(),
                endpoints: vec![],
                rack: None,
            };
            let MetadataResponse::BrokerRegistered { broker_epoch } = apply(&mut image, next(), &register) else {
                panic!("registers");
            };
            let unfence = MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch,
                fenced: false,
            };
            apply(&mut image, next(), &unfence);
        }
        for (name, assignment) in topics {
            let create = MetadataCommand::CreateTopic {
                name: name.to_string(),
                topic_id: Uuid::nil(),
                assignment: assignment.clone(),
                configs: BTreeMap::new(),
            };
            apply(&mut image, next(), &create);
        }
        image
    }

    /// Registers `ids` through `dispatch`; their broker epochs.
    async fn register(ctx: &ClientContext, ids: &[i32]) -> BTreeMap<i32, i64> {
        let mut epochs = BTreeMap::new();
        for &id in ids {
            let registration = BrokerRegistrationRequest::default()
                .with_broker_id(BrokerId(id))
                .with_incarnation_id(Uuid::new_v4());
            let ResponseKind::BrokerRegistration(registered) =
                dispatch(ctx, 4, RequestKind::BrokerRegistration(registration))
                    .await
                    .unwrap()
            else {
                panic!("a registration answer");
            };
            epochs.insert(id, registered.broker_epoch);
        }
        epochs
    }

    /// One heartbeat from each registered broker (caught up with the metadata log): all unfenced.
    async fn unfence(ctx: &ClientContext, epochs: &BTreeMap<i32, i64>) {
        for (&id, &epoch) in epochs {
            let heartbeat = BrokerHeartbeatRequest::default()
                .with_broker_id(BrokerId(id))
                .with_broker_epoch(epoch)
                .with_current_metadata_offset(i64::MAX / 2);
            let ResponseKind::BrokerHeartbeat(alive) =
                dispatch(ctx, 1, RequestKind::BrokerHeartbeat(heartbeat)).await.unwrap()
            else {
                panic!("a heartbeat answer");
            };
            assert_eq!((alive.error_code, alive.is_fenced), (0, false));
        }
    }

    /// Creates topic `t` through CreateTopics.
    async fn create_topic(ctx: &ClientContext, partitions: i32, replication_factor: i16) {
        let topic = CreatableTopic::default()
            .with_name(super::super::str_bytes("t").into())
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor);
        let create = CreateTopicsRequest::default().with_topics(vec![topic]);
        let ResponseKind::CreateTopics(created) = dispatch(ctx, 7, RequestKind::CreateTopics(create)).await.unwrap()
        else {
            panic!("a CreateTopics answer");
        };
        assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0].error_message);
    }

    #[test]
    fn fencing_then_reconciling_moves_all_leadership_off_a_broker() {
        let mut image = image_with(
            &[1, 2, 3],
            &[
                ("solo", vec![vec![1], vec![2]]),
                ("replicated", vec![vec![1, 2, 3], vec![3, 1, 2]]),
            ],
        );
        assert!(!leads_no_partition(&image, 1));
        let epoch = image.brokers[&1].epoch;
        let fence = MetadataCommand::SetBrokerFenced {
            broker_id: 1,
            broker_epoch: epoch,
            fenced: true,
        };
        apply(&mut image, 100, &fence);
        for (i, change) in partition_leadership_changes(&image).iter().enumerate() {
            apply(&mut image, 101 + i as u64, change);
        }
        assert!(leads_no_partition(&image, 1));
        let solo = &image.topics["solo"].partitions;
        assert_eq!(
            (solo[0].leader, solo[0].isr.clone()),
            (-1, vec![1]),
            "RF 1 goes offline"
        );
        assert_eq!(solo[1].leader, 2, "other brokers' partitions are untouched");
        let replicated = &image.topics["replicated"].partitions;
        assert_eq!((replicated[0].leader, replicated[0].isr.clone()), (2, vec![2, 3]));
        assert_eq!((replicated[1].leader, replicated[1].isr.clone()), (3, vec![3, 2]));
    }

    /// Through `dispatch` on a single voter, as a broker's embedded coordinator is driven.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_asking_to_shut_down_is_told_to_once_it_leads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let node = single_voter(0, dir.path()).await;
        let ctx = ClientContext::new(node, BTreeMap::new(), 9000);
        let registration = BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(0))
            .with_incarnation_id(Uuid::new_v4());
        let ResponseKind::BrokerRegistration(registered) =
            dispatch(&ctx, 4, RequestKind::BrokerRegistration(registration))
                .await
                .unwrap()
        else {
            panic!("a registration answer");
        };
        assert_eq!(registered.error_code, 0);
        let heartbeat = |want_shut_down| {
            RequestKind::BrokerHeartbeat(
                BrokerHeartbeatRequest::default()
                    .with_broker_id(BrokerId(0))
                    .with_broker_epoch(registered.broker_epoch)
                    .with_current_metadata_offset(registered.broker_epoch)
                    .with_want_shut_down(want_shut_down),
            )
        };
        let ResponseKind::BrokerHeartbeat(alive) = dispatch(&ctx, 1, heartbeat(false)).await.unwrap() else {
            panic!("a heartbeat answer");
        };
        assert_eq!(
            (alive.error_code, alive.is_fenced, alive.should_shut_down),
            (0, false, false)
        );
        let topic = CreatableTopic::default()
            .with_name(super::super::str_bytes("t").into())
            .with_num_partitions(2)
            .with_replication_factor(1);
        let create = CreateTopicsRequest::default().with_topics(vec![topic]);
        let ResponseKind::CreateTopics(created) = dispatch(&ctx, 7, RequestKind::CreateTopics(create)).await.unwrap()
        else {
            panic!("a CreateTopics answer");
        };
        assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0].error_message);
        assert!(ctx.node.state.image().topics["t"]
            .partitions
            .iter()
            .all(|p| p.leader == 0));

        let ResponseKind::BrokerHeartbeat(leaving) = dispatch(&ctx, 1, heartbeat(true)).await.unwrap() else {
            panic!("a heartbeat answer");
        };
        assert_eq!(
            (leaving.error_code, leaving.is_fenced, leaving.should_shut_down),
            (0, true, true)
        );
        let image = ctx.node.state.image();
        assert!(
            image.topics["t"].partitions.iter().all(|p| p.leader == -1),
            "RF 1: offline"
        );
        assert!(dispatch(&ctx, 0, RequestKind::Fetch(Default::default()))
            .await
            .unwrap_err()
            .contains("not served"));
        ctx.node.raft.shutdown().await.unwrap();
    }

    /// A broker whose log dir failed asks to be fenced: it leaves every ISR and leads nothing at once,
    /// and comes back when it asks no more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_asking_to_be_fenced_loses_its_isrs_and_leadership_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let node = single_voter(0, dir.path()).await;
        let ctx = ClientContext::new(node, BTreeMap::new(), 9000);
        let epochs = register(&ctx, &[1, 2]).await;
        let heartbeat = |id: i32, want_fence: bool| {
            RequestKind::BrokerHeartbeat(
                BrokerHeartbeatRequest::default()
                    .with_broker_id(BrokerId(id))
                    .with_broker_epoch(epochs[&id])
                    .with_current_metadata_offset(i64::MAX / 2)
                    .with_want_fence(want_fence),
            )
        };
        unfence(&ctx, &epochs).await;
        create_topic(&ctx, 2, 2).await;
        let led_by_1 = |image: &ClusterImage| image.topics["t"].partitions.iter().filter(|p| p.leader == 1).count();
        assert_eq!(led_by_1(&ctx.node.state.image()), 1, "one partition each");

        let ResponseKind::BrokerHeartbeat(out) = dispatch(&ctx, 1, heartbeat(1, true)).await.unwrap() else {
            panic!("a heartbeat answer");
        };
        assert_eq!((out.error_code, out.is_fenced, out.should_shut_down), (0, true, false));
        let image = ctx.node.state.image();
        for p in &image.topics["t"].partitions {
            assert_eq!((p.leader, p.isr.clone()), (2, vec![2]), "broker 1 is out at once");
        }

        let ResponseKind::BrokerHeartbeat(back) = dispatch(&ctx, 1, heartbeat(1, false)).await.unwrap() else {
            panic!("a heartbeat answer");
        };
        assert_eq!((back.error_code, back.is_fenced), (0, false));
        assert!(!ctx.node.state.image().brokers[&1].fenced);
        ctx.node.raft.shutdown().await.unwrap();
    }

    /// A broker that leads nothing but follows partitions leaves their ISRs in its controlled shutdown,
    /// as Kafka's controller removes a shutting-down broker from every ISR: otherwise acks=all writes
    /// on those partitions wait for it until their leader drops it after `replica.lag.time.max.ms`
    /// (30 s), which is what a rolling restart showed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_only_broker_shutting_down_leaves_every_isr() {
        let dir = tempfile::tempdir().unwrap();
        let node = single_voter(0, dir.path()).await;
        let ctx = ClientContext::new(node, BTreeMap::new(), 9000);
        let epochs = register(&ctx, &[1, 2]).await;
        let heartbeat = |id: i32, want_shut_down: bool| {
            RequestKind::BrokerHeartbeat(
                BrokerHeartbeatRequest::default()
                    .with_broker_id(BrokerId(id))
                    .with_broker_epoch(epochs[&id])
                    .with_current_metadata_offset(i64::MAX / 2)
                    .with_want_shut_down(want_shut_down),
            )
        };
        unfence(&ctx, &epochs).await;
        create_topic(&ctx, 1, 2).await;
        let p = ctx.node.state.image().topics["t"].partitions[0].clone();
        assert_eq!(p.isr.len(), 2);
        let follower = if p.leader == 1 { 2 } else { 1 };

        let ResponseKind::BrokerHeartbeat(out) = dispatch(&ctx, 1, heartbeat(follower, true)).await.unwrap() else {
            panic!("a heartbeat answer");
        };
        assert_eq!((out.error_code, out.is_fenced, out.should_shut_down), (0, true, true));
        let after = ctx.node.state.image().topics["t"].partitions[0].clone();
        assert_eq!(
            (after.leader, after.isr.clone()),
            (p.leader, vec![p.leader]),
            "broker {follower} left the ISR before it was told to shut down"
        );
        ctx.node.raft.shutdown().await.unwrap();
    }
}
