//! Online migration's runtime against real logs: a classic group with a member is upgraded by a
//! ConsumerGroupHeartbeat, survives a restart as a consumer group with a classic member, is
//! downgraded when the consumer-protocol member leaves, and survives a restart as a classic group;
//! a classic static member replacing the last consumer-protocol member downgrades it too (without a
//! rebalance); with `group.consumer.migration.policy=disabled` the upgrade is refused as Kafka refuses it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::consumer::Heartbeat;
use super::consumer_protocol::{decode_assignment, encode_assignment, encode_subscription, TopicPartitions};
use super::member::Protocol;
use super::state::{JoinRequest, SyncRequest};
use super::GroupState;
use crate::broker::Broker;
use crate::config::BrokerConfig;

async fn start(dir: &std::path::Path, extra: &str) -> Arc<Broker> {
    let text = format!(
        "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\noffsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=3\nmetrics.port=-1\ngroup.initial.rebalance.delay.ms=0\n{extra}",
        dir.display()
    );
    let config = BrokerConfig::from_properties_text(&text, "test").expect("valid config");
    crate::runtime::start(config).await.expect("broker starts")
}

async fn stop(broker: Arc<Broker>) {
    crate::runtime::leave_cluster(&broker).await;
    broker.logs.shutdown().unwrap();
}

fn all_of_t() -> TopicPartitions {
    BTreeMap::from([("t".to_string(), (0..4).collect())])
}

/// A classic group `g` whose one member `a` (range) owns all four partitions of `t`, generation 1.
async fn classic_group_of_one(broker: &Broker) {
    broker
        .create_topic("t", 4, 1, Default::default(), Vec::new(), false)
        .await
        .unwrap();
    broker.groups.ensure_offsets_topic(broker).await.unwrap();
    let join = JoinRequest {
        waiter: 0,
        member_id: String::new(),
        group_instance_id: None,
        fresh_member_id: "a".to_string(),
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".to_string(),
        protocols: vec![Protocol {
            name: "range".to_string(),
            metadata: encode_subscription(&["t"], &Default::default(), None),
        }],
        require_known_member_id: false,
    };
    let joined = broker.groups.join(broker, "g", join).await;
    assert_eq!((joined.error, joined.generation_id), (None, 1));
    let sync = SyncRequest {
        waiter: 0,
        member_id: "a".to_string(),
        group_instance_id: None,
        generation_id: 1,
        protocol_type: Some("consumer".to_string()),
        protocol_name: Some("range".to_string()),
        assignments: vec![("a".to_string(), encode_assignment(1, &all_of_t()))],
    };
    assert_eq!(broker.groups.sync(broker, "g", sync).await.error, None);
}

fn consumer_join(id: &str) -> Heartbeat {
    Heartbeat {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        client_id: "k".into(),
        client_host: "/127.0.0.1".into(),
        ..Heartbeat::default()
    }
}

#[tokio::test]
async fn an_upgraded_group_and_its_downgrade_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "").await;
    classic_group_of_one(&broker).await;
    // The consumer-protocol member upgrades the group; every partition is still a's.
    let k = broker
        .groups
        .consumer_heartbeat(&*broker, "g", 1, consumer_join("k"))
        .unwrap();
    assert_eq!(k.member_epoch, 2);
    assert_eq!(k.assignment, Some(Default::default()));
    let g = broker.groups.consumer_describe("g").unwrap();
    assert!(g.members["a"].uses_classic_protocol() && !g.members["k"].uses_classic_protocol());
    assert_eq!(g.members["a"].member_epoch, 1);
    // a must rejoin to give up partitions.
    assert_eq!(
        broker.groups.heartbeat(&*broker, "g", "a", None, 1),
        Some(ResponseError::RebalanceInProgress)
    );
    stop(broker).await;

    let broker = start(dir.path(), "").await;
    let again = broker.groups.consumer_describe("g").expect("still a consumer group");
    let a = &again.members["a"];
    assert_eq!((a.member_epoch, again.group_epoch), (1, 2));
    assert_eq!(a.classic, g.members["a"].classic, "ClassicMemberMetadata was replayed");
    assert_eq!(a.assigned, g.members["a"].assigned);
    // k leaves: only classic members are left, so the group turns classic and rebalances.
    let leave = Heartbeat {
        member_id: "k".into(),
        member_epoch: -1,
        ..Heartbeat::default()
    };
    broker.groups.consumer_heartbeat(&*broker, "g", 1, leave).unwrap();
    assert_eq!(
        broker.groups.consumer_describe("g").unwrap_err().0,
        ResponseError::GroupIdNotFound
    );
    let classic = broker.groups.describe("g").unwrap();
    assert!(classic.consumer.is_none());
    assert_eq!(classic.state, GroupState::PreparingRebalance);
    assert_eq!(classic.generation_id, 3, "generation = the group epoch after k left");
    // a's target assignment (Kafka's `fromConsumerGroup`); the rebalance that follows moves on from it.
    let target: TopicPartitions = again.target["a"]
        .values()
        .map(|ps| ("t".to_string(), ps.clone()))
        .collect();
    assert_eq!(decode_assignment(&classic.members["a"].assignment).unwrap(), target);
    assert_eq!(target["t"].len(), 2, "a shared the topic with k in the target");
    stop(broker).await;

    let broker = start(dir.path(), "").await;
    let classic = broker.groups.describe("g").expect("a classic group after the restart");
    assert!(classic.consumer.is_none());
    assert_eq!(classic.protocol_type.as_deref(), Some("consumer"));
    assert!(classic.members.contains_key("a"));
    stop(broker).await;
}

#[tokio::test]
async fn the_disabled_policy_refuses_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "group.consumer.migration.policy=disabled\n").await;
    classic_group_of_one(&broker).await;
    let refused = broker
        .groups
        .consumer_heartbeat(&*broker, "g", 1, consumer_join("k"))
        .unwrap_err();
    assert_eq!(refused.error, ResponseError::GroupIdNotFound);
    assert_eq!(refused.message, "Group g is not a consumer group.");
    let classic = broker.groups.describe("g").unwrap();
    assert!(classic.consumer.is_none() && classic.is(GroupState::Stable));
    stop(broker).await;
}

#[tokio::test]
async fn a_classic_static_member_replacing_the_last_consumer_member_downgrades_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "").await;
    classic_group_of_one(&broker).await;
    // A static consumer-protocol member k (instance i) upgrades the group.
    let k_join = Heartbeat {
        instance_id: Some("i".into()),
        ..consumer_join("k")
    };
    let k = broker.groups.consumer_heartbeat(&*broker, "g", 1, k_join).unwrap();
    assert_eq!(k.member_epoch, 2);
    let before = broker.groups.consumer_describe("g").unwrap();
    // Instance i comes back on the classic protocol (a JoinGroup without member id).
    let join = JoinRequest {
        waiter: 0,
        member_id: String::new(),
        group_instance_id: Some("i".into()),
        fresh_member_id: "k2".into(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: encode_subscription(&["t"], &Default::default(), None),
        }],
        require_known_member_id: false,
    };
    let joined = broker.groups.join(&*broker, "g", join).await;
    assert_eq!(joined.error, None);
    assert_eq!((joined.member_id.as_str(), joined.generation_id), ("k2", 2));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    // A classic group now, Stable at the group epoch (no rebalance), k2 holding k's target.
    let classic = broker.groups.describe("g").unwrap();
    assert!(classic.consumer.is_none());
    assert_eq!((classic.state, classic.generation_id), (GroupState::Stable, 2));
    let mut ids: Vec<&String> = classic.members.keys().collect();
    ids.sort();
    assert_eq!(ids, ["a", "k2"]);
    let sync = SyncRequest {
        waiter: 0,
        member_id: "k2".into(),
        group_instance_id: Some("i".into()),
        generation_id: 2,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: Vec::new(),
    };
    let synced = broker.groups.sync(&*broker, "g", sync).await;
    assert_eq!(synced.error, None);
    let k_target: TopicPartitions = before.target["k"]
        .values()
        .map(|ps| ("t".to_string(), ps.clone()))
        .collect();
    assert_eq!(decode_assignment(&synced.assignment).unwrap(), k_target);
    assert_eq!(k_target["t"].len(), 2);
    stop(broker).await;

    // The log says the same: a classic group with a and k2, no consumer group records left.
    let broker = start(dir.path(), "").await;
    let classic = broker.groups.describe("g").expect("a classic group after the restart");
    assert!(classic.consumer.is_none());
    assert!(classic.members.contains_key("k2") && classic.members.contains_key("a"));
    assert_eq!(classic.static_members.get("i").map(String::as_str), Some("k2"));
    stop(broker).await;
}
