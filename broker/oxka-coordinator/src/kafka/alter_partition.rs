//! AlterPartition (KIP-497, v3 with KIP-903 member epochs): a partition leader asks the controller to
//! commit a new ISR. Checked against the controller's image as Kafka's `ReplicationControlManager`
//! does, then proposed as `MetadataCommand::AlterPartition`, whose apply fences it again by partition
//! epoch (two racing changes: the second is refused everywhere). A change that would leave the ISR as
//! it is answers with the current state.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_request::PartitionData as RequestPartition;
use kafka_protocol::messages::alter_partition_response::{PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use kafka_protocol::protocol::VersionRange;

use super::{propose, ClientContext};
use crate::image::{ClusterImage, MetadataCommand, MetadataResponse, PartitionState};

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 3 };

pub async fn handle(ctx: &ClientContext, version: i16, request: AlterPartitionRequest) -> AlterPartitionResponse {
    let response = AlterPartitionResponse::default();
    if !ctx.node.is_leader() {
        return response.with_error_code(ResponseError::NotController.code());
    }
    let image = ctx.node.state.image();
    match image.brokers.get(&request.broker_id.0) {
        None => return response.with_error_code(ResponseError::BrokerIdNotRegistered.code()),
        Some(b) if b.epoch != request.broker_epoch => {
            return response.with_error_code(ResponseError::StaleBrokerEpoch.code())
        }
        Some(_) => {}
    }
    // Every partition's change is validated and proposed at once (Kafka's controller writes a
    // request's changes in one batch): a leader that shrinks or expands the ISRs of many partitions
    // after a broker left or came back waits for a round trip or two, not one commit per partition.
    let names: Vec<Option<String>> = request
        .topics
        .iter()
        .map(|topic| {
            image
                .topics
                .iter()
                .find(|(_, t)| t.topic_id == topic.topic_id)
                .map(|(n, _)| n.clone())
        })
        .collect();
    let image = &image;
    let answers = futures::future::join_all(request.topics.iter().zip(&names).flat_map(|(topic, name)| {
        topic.partitions.iter().map(move |wanted| async move {
            let answer = PartitionData::default().with_partition_index(wanted.partition_index);
            match name.as_deref() {
                None => answer.with_error_code(ResponseError::UnknownTopicId.code()),
                Some(name) => alter(ctx, image, version, request.broker_id.0, name, wanted, answer).await,
            }
        })
    }))
    .await;
    let mut answers = answers.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            TopicData::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(answers.by_ref().take(topic.partitions.len()).collect())
        })
        .collect();
    response.with_topics(topics)
}

/// The new ISR named by the request: v3 names members with their broker epochs, earlier versions ids.
fn requested_isr(version: i16, wanted: &RequestPartition) -> Vec<(i32, i64)> {
    if version >= 3 {
        wanted
            .new_isr_with_epochs
            .iter()
            .map(|m| (m.broker_id.0, m.broker_epoch))
            .collect()
    } else {
        wanted.new_isr.iter().map(|b| (b.0, -1)).collect()
    }
}

/// Kafka's checks, in its order: the partition exists, the sender leads it at this leader epoch, the
/// partition epoch is current, every member is a replica and an eligible (registered, unfenced, same
/// broker epoch) broker, and the leader stays in.
pub fn validate(
    image: &ClusterImage,
    version: i16,
    leader: i32,
    topic: &str,
    wanted: &RequestPartition,
) -> Result<(PartitionState, Vec<i32>), ResponseError> {
    let p = image
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(usize::try_from(wanted.partition_index).ok()?))
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    if p.leader != leader {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    if wanted.leader_epoch != p.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if wanted.partition_epoch != p.partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion);
    }
    let members = requested_isr(version, wanted);
    let mut isr = Vec::with_capacity(members.len());
    for (id, epoch) in members {
        if !p.replicas.contains(&id) || isr.contains(&id) {
            return Err(ResponseError::InvalidRequest);
        }
        let eligible = image
            .brokers
            .get(&id)
            .is_some_and(|b| !b.fenced && (epoch < 0 || b.epoch == epoch));
        if !eligible && !p.isr.contains(&id) {
            return Err(ResponseError::IneligibleReplica);
        }
        isr.push(id);
    }
    if !isr.contains(&leader) {
        return Err(ResponseError::InvalidRequest);
    }
    Ok((p.clone(), isr))
}

async fn alter(
    ctx: &ClientContext,
    image: &ClusterImage,
    version: i16,
    leader: i32,
    topic: &str,
    wanted: &RequestPartition,
    answer: PartitionData,
) -> PartitionData {
    let (current, isr) = match validate(image, version, leader, topic, wanted) {
        Ok(v) => v,
        Err(e) => return answer.with_error_code(e.code()),
    };
    let state = |isr: Vec<i32>, leader_epoch: i32, partition_epoch: i32| {
        answer
            .clone()
            .with_leader_id(BrokerId(leader))
            .with_leader_epoch(leader_epoch)
            .with_isr(isr.into_iter().map(BrokerId).collect())
            .with_partition_epoch(partition_epoch)
    };
    if isr == current.isr {
        return state(isr, current.leader_epoch, current.partition_epoch);
    }
    let command = MetadataCommand::AlterPartition {
        topic: topic.to_string(),
        partition: wanted.partition_index,
        partition_epoch: current.partition_epoch,
        leader,
        isr: isr.clone(),
    };
    match propose(ctx, command).await {
        Ok(MetadataResponse::PartitionChanged {
            leader_epoch,
            partition_epoch,
        }) => {
            tracing::info!(
                topic,
                partition = wanted.partition_index,
                ?isr,
                partition_epoch,
                "ISR changed by its leader"
            );
            // A reassignment waiting for this member to be in sync completes now, not at the next tick.
            if !current.adding_replicas.is_empty() {
                super::reconcile_leadership(ctx).await;
            }
            state(isr, leader_epoch, partition_epoch)
        }
        Ok(_) => answer.with_error_code(ResponseError::UnknownServerError.code()),
        Err((code, message)) => {
            tracing::debug!(
                topic,
                partition = wanted.partition_index,
                "AlterPartition refused: {message}"
            );
            // The apply-time fence uses FENCED_LEADER_EPOCH for a stale partition epoch.
            let code = if code == ResponseError::FencedLeaderEpoch.code() {
                ResponseError::InvalidUpdateVersion.code()
            } else {
                code
            };
            answer.with_error_code(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_partition_request::BrokerState;

    use super::*;
    use crate::image::{apply, MetadataCommand};

    fn image() -> ClusterImage {
        let mut image = ClusterImage::default();
        for id in [1, 2, 3] {
            apply(
                &mut image,
                id as u64,
                &MetadataCommand::RegisterBroker {
                    broker_id: id,
                    incarnation_id: uuid::Uuid::nil(),
                    endpoints: vec![],
                    rack: None,
                },
            );
            apply(
                &mut image,
                10 + id as u64,
                &MetadataCommand::SetBrokerFenced {
                    broker_id: id,
                    broker_epoch: id as i64,
                    fenced: false,
                },
            );
        }
        apply(
            &mut image,
            20,
            &MetadataCommand::CreateTopic {
                name: "t".into(),
                topic_id: uuid::Uuid::nil(),
                assignment: vec![vec![1, 2, 3]],
                configs: Default::default(),
            },
        );
        image
    }

    fn wanted(isr: &[(i32, i64)], leader_epoch: i32, partition_epoch: i32) -> RequestPartition {
        RequestPartition::default()
            .with_partition_index(0)
            .with_leader_epoch(leader_epoch)
            .with_partition_epoch(partition_epoch)
            .with_new_isr_with_epochs(
                isr.iter()
                    .map(|(id, e)| {
                        BrokerState::default()
                            .with_broker_id(BrokerId(*id))
                            .with_broker_epoch(*e)
                    })
                    .collect(),
            )
    }

    #[test]
    fn the_controller_checks_leader_epochs_and_members() {
        let mut image = image();
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(1, 1), (2, 2)], 0, 0)).unwrap().1,
            vec![1, 2]
        );
        assert_eq!(
            validate(&image, 3, 2, "t", &wanted(&[(1, 1), (2, 2)], 0, 0)).unwrap_err(),
            ResponseError::NotLeaderOrFollower
        );
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(1, 1)], 1, 0)).unwrap_err(),
            ResponseError::FencedLeaderEpoch
        );
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(1, 1)], 0, 7)).unwrap_err(),
            ResponseError::InvalidUpdateVersion
        );
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(2, 2)], 0, 0)).unwrap_err(),
            ResponseError::InvalidRequest,
            "the leader must stay in the ISR"
        );
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(1, 1), (4, 4)], 0, 0)).unwrap_err(),
            ResponseError::InvalidRequest,
            "only replicas"
        );
        // Shrink to [1], then adding a fenced broker (or one at a stale broker epoch) is refused.
        apply(
            &mut image,
            30,
            &MetadataCommand::AlterPartition {
                topic: "t".into(),
                partition: 0,
                partition_epoch: 0,
                leader: 1,
                isr: vec![1],
            },
        );
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(1, 1), (2, 99)], 0, 1)).unwrap_err(),
            ResponseError::IneligibleReplica
        );
        apply(
            &mut image,
            31,
            &MetadataCommand::SetBrokerFenced {
                broker_id: 3,
                broker_epoch: 3,
                fenced: true,
            },
        );
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(1, 1), (3, 3)], 0, 1)).unwrap_err(),
            ResponseError::IneligibleReplica
        );
        assert_eq!(
            validate(&image, 3, 1, "t", &wanted(&[(1, 1), (2, 2)], 0, 1)).unwrap().1,
            vec![1, 2]
        );
    }

    /// Many partitions in one request, as a leader batches them: each is validated and committed on its
    /// own (one stale change is refused, the others committed), and the answer keeps the request's
    /// topics and partitions in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_request_changes_the_isrs_of_many_partitions_each_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::testing::single_voter(0, dir.path()).await;
        let ctx = ClientContext::new(node, Default::default(), 9000);
        let write = |command| {
            let ctx = &ctx;
            async move { ctx.node.write(command).await.unwrap() }
        };
        for id in [1, 2] {
            write(MetadataCommand::RegisterBroker {
                broker_id: id,
                incarnation_id: uuid::Uuid::new_v4(),
                endpoints: vec![],
                rack: None,
            })
            .await;
            let epoch = ctx.node.state.image().brokers[&id].epoch;
            write(MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch: epoch,
                fenced: false,
            })
            .await;
        }
        let ids = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
        for (name, topic_id, count) in [("a", ids[0], 3), ("b", ids[1], 2)] {
            write(MetadataCommand::CreateTopic {
                name: name.into(),
                topic_id,
                assignment: vec![vec![1, 2]; count],
                configs: Default::default(),
            })
            .await;
        }
        let image = ctx.node.state.image();
        let shrink = |partition: i32, partition_epoch: i32| {
            RequestPartition::default()
                .with_partition_index(partition)
                .with_leader_epoch(0)
                .with_partition_epoch(partition_epoch)
                .with_new_isr_with_epochs(vec![BrokerState::default()
                    .with_broker_id(BrokerId(1))
                    .with_broker_epoch(image.brokers[&1].epoch)])
        };
        let request = AlterPartitionRequest::default()
            .with_broker_id(BrokerId(1))
            .with_broker_epoch(image.brokers[&1].epoch)
            .with_topics(vec![
                kafka_protocol::messages::alter_partition_request::TopicData::default()
                    .with_topic_id(ids[0])
                    .with_partitions(vec![shrink(2, 0), shrink(0, 0), shrink(1, 5)]),
                kafka_protocol::messages::alter_partition_request::TopicData::default()
                    .with_topic_id(ids[1])
                    .with_partitions(vec![shrink(1, 0), shrink(0, 0)]),
            ]);
        let response = handle(&ctx, 3, request).await;
        assert_eq!(response.error_code, 0);
        let answered: Vec<(uuid::Uuid, i32, i16, Vec<i32>, i32)> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let isr = p.isr.iter().map(|b| b.0).collect();
                    (t.topic_id, p.partition_index, p.error_code, isr, p.partition_epoch)
                })
            })
            .collect();
        let stale = ResponseError::InvalidUpdateVersion.code();
        assert_eq!(
            answered,
            vec![
                (ids[0], 2, 0, vec![1], 1),
                (ids[0], 0, 0, vec![1], 1),
                (ids[0], 1, stale, vec![], 0),
                (ids[1], 1, 0, vec![1], 1),
                (ids[1], 0, 0, vec![1], 1),
            ]
        );
        let image = ctx.node.state.image();
        let isrs: Vec<Vec<i32>> = ["a", "b"]
            .iter()
            .flat_map(|t| image.topics[*t].partitions.iter().map(|p| p.isr.clone()))
            .collect();
        assert_eq!(isrs, vec![vec![1], vec![1, 2], vec![1], vec![1], vec![1]]);
    }
}
