//! The consumer protocol's runtime against real logs: members join through ConsumerGroupHeartbeat,
//! one revokes half its partitions for the other, offsets are committed with member epochs, and after
//! a restart the replay of `__consumer_offsets` gives back the same epochs and assignments.

use std::sync::Arc;

use super::consumer::{ConsumerGroup, Heartbeat};
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::log::TopicPartition;

fn config(dir: &std::path::Path) -> BrokerConfig {
    let text = format!(
        "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\noffsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=3\nmetrics.port=-1\n",
        dir.display()
    );
    BrokerConfig::from_properties_text(&text, "test").expect("valid config")
}

async fn start(dir: &std::path::Path) -> Arc<Broker> {
    crate::runtime::start(config(dir)).await.expect("broker starts")
}

fn join(id: &str) -> Heartbeat {
    Heartbeat {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        ..Heartbeat::default()
    }
}

fn beat(id: &str, epoch: i32, owned: &super::consumer::Assignment) -> Heartbeat {
    Heartbeat {
        member_id: id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        ..Heartbeat::default()
    }
}

/// The group without what a restart rightly changes (session and revocation deadlines).
fn durable(mut g: ConsumerGroup) -> ConsumerGroup {
    for m in g.members.values_mut() {
        m.session_deadline_ms = 0;
        m.revocation_deadline_ms = None;
    }
    g
}

#[tokio::test]
async fn consumer_groups_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    broker
        .create_topic("t", 4, 1, Default::default(), Vec::new(), false)
        .await
        .unwrap();
    broker.groups.ensure_offsets_topic(&*broker).await.unwrap();
    let groups = &broker.groups;
    let a = groups.consumer_heartbeat(&*broker, "g", 1, join("a")).unwrap();
    let a_owned = a.assignment.unwrap();
    let b = groups.consumer_heartbeat(&*broker, "g", 1, join("b")).unwrap();
    assert_eq!(b.member_epoch, 2);
    // a revokes half; b then gets it.
    let a = groups
        .consumer_heartbeat(&*broker, "g", 1, beat("a", 1, &a_owned))
        .unwrap();
    let kept = a.assignment.unwrap();
    let a = groups
        .consumer_heartbeat(&*broker, "g", 1, beat("a", 1, &kept))
        .unwrap();
    assert_eq!(a.member_epoch, 2);
    let b = groups
        .consumer_heartbeat(&*broker, "g", 1, beat("b", 2, &Default::default()))
        .unwrap();
    assert_eq!(
        super::consumer::member::partition_count(b.assignment.as_ref().unwrap()),
        2
    );
    let tp = TopicPartition::new("t", 0);
    let commit = |epoch| {
        groups.commit_offsets(
            &*broker,
            "g",
            epoch,
            "a",
            None,
            vec![(
                tp.clone(),
                super::CommittedOffset {
                    offset: 7,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp_ms: 1,
                    record_offset: -1,
                },
            )],
        )
    };
    assert_eq!(
        commit(1),
        vec![Some(kafka_protocol::error::ResponseError::StaleMemberEpoch)]
    );
    assert_eq!(commit(2), vec![None]);
    let before = durable(groups.consumer_describe("g").unwrap());
    crate::runtime::leave_cluster(&broker).await;
    broker.logs.shutdown().unwrap();
    drop(broker);

    let broker = start(dir.path()).await;
    let after = durable(broker.groups.consumer_describe("g").expect("group g is back"));
    assert_eq!(after, before);
    let fetched = broker.groups.fetch_offsets("g", Some(vec![tp.clone()]), false);
    assert_eq!(fetched[0].1.as_ref().unwrap().as_ref().map(|o| o.offset), Some(7));
    // The members carry on at their epochs.
    let b = broker
        .groups
        .consumer_heartbeat(&*broker, "g", 1, beat("b", 2, &b.assignment.unwrap()))
        .unwrap();
    assert_eq!((b.member_epoch, b.assignment), (2, None));
    crate::runtime::leave_cluster(&broker).await;
    broker.logs.shutdown().unwrap();
}

/// A share group's id is not a consumer group's (nor a classic group's): GROUP_ID_NOT_FOUND, as
/// Kafka 4.1 answers.
#[tokio::test]
async fn a_share_groups_id_is_refused_to_consumer_and_classic_members() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let groups = &broker.groups;
    let hb = crate::group::share::group::ShareHeartbeat {
        member_id: "s".into(),
        member_epoch: 0,
        rack_id: None,
        subscribed_topic_names: Some(vec!["t".into()]),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    };
    groups
        .share
        .heartbeat("shared", hb, &Default::default(), 0, |_| Ok(()))
        .unwrap();
    let refused = groups.consumer_heartbeat(&*broker, "shared", 1, join("a")).unwrap_err();
    assert_eq!(refused.error, kafka_protocol::error::ResponseError::GroupIdNotFound);
    assert_eq!(refused.message, "Group shared is not a consumer group.");
    assert!(!groups.holds_group("shared"), "no consumer group was made");
    broker.logs.shutdown().unwrap();
}
