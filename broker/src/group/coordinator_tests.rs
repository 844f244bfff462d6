//! The group coordinator runtime against real logs: a member joins and syncs through the oneshot
//! long polls, offsets are committed, and everything comes back when the broker restarts and replays
//! `__consumer_offsets`; deleted groups stay deleted.

use std::sync::Arc;

use bytes::Bytes;

use super::member::{subscription, Protocol};
use super::state::{JoinRequest, SyncRequest};
use super::{CommittedOffset, GroupState};
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::log::TopicPartition;

fn config(dir: &std::path::Path) -> BrokerConfig {
    let text = format!(
        "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\noffsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=3\ngroup.initial.rebalance.delay.ms=0\nmetrics.port=-1\n",
        dir.display()
    );
    BrokerConfig::from_properties_text(&text, "test").expect("valid config")
}

async fn start(dir: &std::path::Path) -> Arc<Broker> {
    crate::runtime::start(config(dir)).await.expect("broker starts")
}

fn offset(o: i64) -> CommittedOffset {
    CommittedOffset {
        offset: o,
        leader_epoch: 2,
        metadata: "m".into(),
        commit_timestamp_ms: 1,
        record_offset: -1,
    }
}

/// OffsetFetch answers with the record offsets set to -1, to compare with `offset`.
fn without_record_offsets(
    fetched: Vec<(TopicPartition, super::coordinator::FetchedOffset)>,
) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
    fetched
        .into_iter()
        .map(|(tp, o)| {
            let o = o.expect("no error").map(|o| CommittedOffset { record_offset: -1, ..o });
            (tp, o)
        })
        .collect()
}

#[tokio::test]
async fn groups_and_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    broker
        .create_topic("t", 2, 1, Default::default(), Vec::new(), false)
        .await
        .unwrap();
    broker.groups.ensure_offsets_topic(&*broker).await.unwrap();
    broker.groups.check_group(&*broker, "g").unwrap();

    let join = JoinRequest {
        waiter: 0,
        member_id: String::new(),
        group_instance_id: Some("i".into()),
        fresh_member_id: "i-1".into(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: subscription(&["t"]),
        }],
        require_known_member_id: true,
    };
    let joined = broker.groups.join(&*broker, "g", join).await;
    assert_eq!(
        (joined.error, joined.generation_id, joined.member_id.as_str()),
        (None, 1, "i-1")
    );
    let sync = SyncRequest {
        waiter: 0,
        member_id: "i-1".into(),
        group_instance_id: Some("i".into()),
        generation_id: 1,
        protocol_type: None,
        protocol_name: None,
        assignments: vec![("i-1".into(), Bytes::from_static(b"all of t"))],
    };
    assert_eq!(
        broker.groups.sync(&*broker, "g", sync).await.assignment,
        Bytes::from_static(b"all of t")
    );
    let tp0 = TopicPartition::new("t", 0);
    let tp1 = TopicPartition::new("t", 1);
    let outcomes = broker.groups.commit_offsets(
        &*broker,
        "g",
        1,
        "i-1",
        Some("i"),
        vec![(tp0.clone(), offset(5)), (tp1.clone(), offset(6))],
    );
    assert_eq!(outcomes, vec![None, None]);
    // A standalone consumer, and a group that is deleted again.
    assert_eq!(
        broker
            .groups
            .commit_offsets(&*broker, "solo", -1, "", None, vec![(tp0.clone(), offset(9))]),
        vec![None]
    );
    assert_eq!(
        broker
            .groups
            .commit_offsets(&*broker, "gone", -1, "", None, vec![(tp0.clone(), offset(1))]),
        vec![None]
    );
    assert_eq!(broker.groups.delete_group(&*broker, "gone"), None);
    crate::runtime::leave_cluster(&broker).await;
    broker.logs.shutdown().unwrap();
    drop(broker);

    let broker = start(dir.path()).await;
    let g = broker.groups.describe("g").expect("group g is back");
    assert_eq!(
        (g.state, g.generation_id, g.protocol_name.as_deref()),
        (GroupState::Stable, 1, Some("range"))
    );
    assert_eq!(g.members["i-1"].assignment, Bytes::from_static(b"all of t"));
    assert_eq!(g.static_members["i"], "i-1");
    let fetched = broker.groups.fetch_offsets("g", None, true);
    assert_eq!(
        without_record_offsets(fetched),
        vec![(tp0.clone(), Some(offset(5))), (tp1, Some(offset(6)))]
    );
    assert_eq!(
        without_record_offsets(broker.groups.fetch_offsets("solo", Some(vec![tp0.clone()]), false)),
        vec![(tp0.clone(), Some(offset(9)))]
    );
    assert!(broker.groups.describe("gone").is_none());
    assert_eq!(
        without_record_offsets(broker.groups.fetch_offsets("gone", Some(vec![tp0.clone()]), false)),
        vec![(tp0, None)]
    );
    // The restored member keeps its place: a heartbeat of its generation is accepted.
    assert_eq!(broker.groups.heartbeat(&*broker, "g", "i-1", Some("i"), 1), None);
    crate::runtime::leave_cluster(&broker).await;
    broker.logs.shutdown().unwrap();
}
