//! The coordinator role as real processes: `oxka coordinator <zookeeper.properties>`.
//!
//! - The seed's zookeeper.properties (dataDir and clientPort moved to temp ones) starts a single coordinator
//!   that Apache Kafka 4's `kafka-metadata-quorum --bootstrap-controller` describes as leader, and whose
//!   metadata survives a restart.
//! - Three coordinators (`server.1..3`) elect a leader; kill -9 of the leader elects another; the killed one
//!   restarts and catches up; with two of three down, writes are refused with a clear error and are
//!   served again once one returns; after stopping everything, all metadata is back.
//!
//! Writes are Kafka's own RPCs (BrokerRegistration, CreateTopics) sent by a small client built on the
//! `kafka-protocol` crate (`common/coordinator.rs`, with the process helpers, and the requests below).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::coordinator::{call, metadata, quorum, wait_for_leader, Coordinator, Ensemble};
use common::{expect_success, free_port, http_get, kafka_tool, oxka_bin, wait_for};
use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ApiKey, BrokerHeartbeatRequest, BrokerHeartbeatResponse,
    BrokerId, BrokerRegistrationRequest, BrokerRegistrationResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

/// The seed's zookeeper.properties, verbatim.
const SEED_ZOOKEEPER_PROPERTIES: &str =
    "# The coordinator configuration that the seed starts first (Kafka 2.8's config/zookeeper.properties defaults).
dataDir=/tmp/zookeeper
clientPort=2181
maxClientCnxns=0
admin.enableServer=false
";

fn register_broker(address: &str, broker_id: i32) -> BrokerRegistrationResponse {
    let request = BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_incarnation_id(uuid::Uuid::new_v4())
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_static_str("PLAINTEXT"))
            .with_host(StrBytes::from_static_str("localhost"))
            .with_port(9092)]);
    call(address, ApiKey::BrokerRegistration, 2, &request).unwrap()
}

fn create_partitions(address: &str, topic: &str, count: i32) -> (i16, String) {
    let request = CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_count(count)]);
    let response: CreatePartitionsResponse = call(address, ApiKey::CreatePartitions, 3, &request).unwrap();
    let r = &response.results[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default(),
    )
}

fn set_topic_config(address: &str, topic: &str, key: &str, value: &str) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.to_string()))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_string(key.to_string()))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_string(value.to_string())))])]);
    let response: IncrementalAlterConfigsResponse =
        call(address, ApiKey::IncrementalAlterConfigs, 1, &request).unwrap();
    response.responses[0].error_code
}

fn delete_topic(address: &str, topic: &str) -> i16 {
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(StrBytes::from_string(topic.to_string()))])
        .with_timeout_ms(10_000);
    let response: DeleteTopicsResponse = call(address, ApiKey::DeleteTopics, 5, &request).unwrap();
    response.responses[0].error_code
}

fn allocate_producer_ids(address: &str, broker_id: i32, epoch: i64) -> AllocateProducerIdsResponse {
    let request = AllocateProducerIdsRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(epoch);
    call(address, ApiKey::AllocateProducerIds, 0, &request).unwrap()
}

fn broker_heartbeat(address: &str, broker_id: i32, epoch: i64) -> BrokerHeartbeatResponse {
    let request = BrokerHeartbeatRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(epoch)
        .with_current_metadata_offset(epoch);
    call(address, ApiKey::BrokerHeartbeat, 1, &request).unwrap()
}

/// (error code, error message) of creating `topic` through the coordinator at `address`.
fn create_topic(address: &str, topic: &str) -> (i16, String) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(3)
            .with_replication_factor(1)]);
    let response: CreateTopicsResponse = call(address, ApiKey::CreateTopics, 7, &request).unwrap();
    let t = &response.topics[0];
    (
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default(),
    )
}

fn metadata_quorum(address: &str, what: &str) -> String {
    let out = kafka_tool(
        "4",
        "metadata-quorum",
        &["--bootstrap-controller", address, "describe", what],
    );
    expect_success(&format!("kafka-metadata-quorum describe {what}"), &out)
}

#[test]
fn the_seed_zookeeper_properties_start_a_single_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let data = dir.path().join("zookeeper");
    let properties = SEED_ZOOKEEPER_PROPERTIES
        .replace("dataDir=/tmp/zookeeper", &format!("dataDir={}", data.display()))
        .replace(
            "clientPort=2181",
            &format!("clientPort={port}\nmetrics.port={metrics_port}"),
        );
    let mut c = Coordinator::start(dir.path(), "zookeeper", &properties, port);
    wait_for_leader(&[&c], None);

    // A second coordinator on the same dataDir is refused before it touches the log.
    let mut second = Command::new(oxka_bin());
    second.arg("coordinator").arg(c.config_path());
    let out = common::run(second, b"", Duration::from_secs(10));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is in use by another coordinator"), "{stderr}");

    let status = metadata_quorum(&c.address(), "--status");
    assert!(status.contains("LeaderId:               1"), "{status}");
    assert!(status.contains("\"id\": 1"), "{status}");
    let cluster_id = status
        .lines()
        .find(|l| l.starts_with("ClusterId:"))
        .unwrap()
        .to_string();
    let replication = metadata_quorum(&c.address(), "--replication");
    assert!(
        replication.lines().any(|l| l.starts_with('1') && l.contains("Leader")),
        "{replication}"
    );

    // Metrics and health on metrics.port.
    let metrics = http_get(metrics_port, "/metrics");
    for name in [
        "kafka_server_raft_metrics_current_epoch",
        "kafka_server_raft_metrics_high_watermark",
        "kafka_server_raft_metrics_leader_changes_total 1",
        "kafka_server_raft_metrics_apply_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    assert!(http_get(metrics_port, "/health").starts_with("HTTP/1.1 200"));

    // A broker registers (fenced), heartbeats (unfenced), a second process with its id is refused while
    // it heartbeats, and once its heartbeats stop for broker.session.timeout.ms the controller fences it.
    let registered = register_broker(&c.address(), 0);
    assert_eq!(registered.error_code, 0);
    let heartbeat = broker_heartbeat(&c.address(), 0, registered.broker_epoch);
    assert_eq!(heartbeat.error_code, 0);
    assert!(!heartbeat.is_fenced && heartbeat.is_caught_up);
    assert_eq!(
        broker_heartbeat(&c.address(), 0, registered.broker_epoch - 1).error_code,
        77,
        "stale epoch"
    );
    assert_eq!(
        register_broker(&c.address(), 0).error_code,
        101,
        "duplicate registration"
    );
    wait_for("the silent broker to be fenced", Duration::from_secs(10), || {
        c.log_text().contains("fenced a broker whose heartbeats stopped")
    });
    assert_eq!(
        register_broker(&c.address(), 0).error_code,
        0,
        "a fenced broker's id can be taken over"
    );

    // Topic administration and producer-id blocks through the controller.
    assert_eq!(create_topic(&c.address(), "kept").0, 0);
    assert_eq!(create_topic(&c.address(), "gone").0, 0);
    assert_eq!(create_partitions(&c.address(), "kept", 5), (0, String::new()));
    let (code, message) = create_partitions(&c.address(), "kept", 2);
    assert_eq!(code, 37, "{message}");
    assert_eq!(set_topic_config(&c.address(), "kept", "retention.ms", "1000"), 0);
    assert_eq!(set_topic_config(&c.address(), "missing", "retention.ms", "1000"), 3);
    assert_eq!(delete_topic(&c.address(), "gone"), 0);
    assert_eq!(delete_topic(&c.address(), "gone"), 3);
    let epoch = register_broker(&c.address(), 0).broker_epoch;
    let first = allocate_producer_ids(&c.address(), 0, epoch);
    assert_eq!((first.error_code, first.producer_id_len), (0, 1000));
    let second = allocate_producer_ids(&c.address(), 0, epoch);
    assert_eq!(second.producer_id_start.0, first.producer_id_start.0 + 1000);
    assert_eq!(allocate_producer_ids(&c.address(), 0, epoch - 1).error_code, 77);

    // Metadata from the coordinator: a heartbeating broker is listed and leads its partitions (the
    // controller moved leadership off it while it was fenced and back once it returned).
    wait_for(
        "broker 0 to lead every partition of kept",
        Duration::from_secs(10),
        || {
            assert!(!broker_heartbeat(&c.address(), 0, epoch).is_fenced);
            let m = metadata(&c.address());
            let kept = m
                .topics
                .iter()
                .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("kept"));
            m.brokers.iter().any(|b| b.node_id.0 == 0)
                && kept.is_some_and(|t| t.partitions.len() == 5 && t.partitions.iter().all(|p| p.leader_id.0 == 0))
        },
    );

    // A clean stop and a restart from dataDir: the metadata is back.
    c.stop();
    c.spawn();
    wait_for_leader(&[&c], None);
    assert_eq!(
        create_topic(&c.address(), "kept").0,
        36,
        "the topic survived the restart"
    );
    assert_eq!(
        delete_topic(&c.address(), "gone"),
        3,
        "the deletion survived the restart"
    );
    // The broker was unfenced when the coordinator stopped: the new controller gives it one session
    // before another incarnation may take its id (DUPLICATE_BROKER_REGISTRATION until then, as in Kafka).
    let mut epoch = -1;
    wait_for("the broker id to be free again", Duration::from_secs(10), || {
        let r = register_broker(&c.address(), 0);
        assert!(matches!(r.error_code, 0 | 101), "{r:?}");
        epoch = r.broker_epoch;
        r.error_code == 0
    });
    let third = allocate_producer_ids(&c.address(), 0, epoch);
    assert_eq!(
        third.producer_id_start.0,
        second.producer_id_start.0 + 1000,
        "no producer id block is reused"
    );
    let status = metadata_quorum(&c.address(), "--status");
    assert!(
        status.contains(&cluster_id),
        "cluster id changed across a restart:\n{status}"
    );
}

#[test]
fn three_coordinators_fail_over_refuse_writes_without_quorum_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let Ensemble {
        members: mut cs,
        metrics_ports,
    } = Ensemble::start(
        dir.path(),
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\nraft.election.timeout.ms=500\nraft.heartbeat.interval.ms=100\n\
         request.timeout.ms=2000\nsnapCount=10",
    );

    let (leader, leader_id) = wait_for_leader(&cs.iter().collect::<Vec<_>>(), None);
    let replication = metadata_quorum(&cs[(leader + 1) % 3].address(), "--replication");
    for id in 1..=3 {
        assert!(
            replication.lines().any(|l| l.starts_with(&id.to_string())),
            "{replication}"
        );
    }
    assert_eq!(register_broker(&cs[leader].address(), 1).error_code, 0);
    assert_eq!(create_topic(&cs[leader].address(), "before").0, 0);
    // A follower refuses writes with NOT_CONTROLLER and names the controller.
    let (code, message) = create_topic(&cs[(leader + 1) % 3].address(), "on-follower");
    assert_eq!(code, 41, "{message}");
    assert!(
        message.contains(&format!("the controller is coordinator {leader_id}")),
        "{message}"
    );

    // kill -9 the leader: another is elected and takes writes.
    cs[leader].kill9();
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let (new_leader, new_id) = {
        let (i, id) = wait_for_leader(&others.iter().map(|i| &cs[*i]).collect::<Vec<_>>(), Some(leader_id));
        (others[i], id)
    };
    assert_ne!(new_id, leader_id);
    assert_eq!(create_topic(&cs[new_leader].address(), "after-failover").0, 0);
    // Well over twice snapCount entries while it is down: the leader snapshots and compacts its log
    // past everything the stopped member has (it keeps snapCount entries behind its latest snapshot, so
    // 15 entries were not always enough), and the restarted member catches up by InstallSnapshot over
    // the peer transport.
    for i in 0..35 {
        assert_eq!(create_topic(&cs[new_leader].address(), &format!("while-down-{i}")).0, 0);
    }

    // The old leader restarts from its dataDir and catches up.
    cs[leader].spawn();
    wait_for("the restarted coordinator to catch up", Duration::from_secs(20), || {
        let Some((_, _, q)) = quorum(&cs[new_leader].address()) else {
            return false;
        };
        let p = &q.topics[0].partitions[0];
        p.current_voters.len() == 3 && p.current_voters.iter().all(|v| v.log_end_offset == p.high_watermark)
    });
    let log = cs[leader].log_text();
    assert!(log.contains("installed a snapshot from the leader"), "{log}");
    // Its /health (the operator's readiness probe, which gates rolling restarts) says it is caught up:
    // it asked the leader how far its log reaches.
    let health = http_get(metrics_ports[leader], "/health");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("caught up (log end"),
        "{health}"
    );

    // Two of three down: writes are refused with a clear error, not accepted by a minority.
    let survivor = (0..3).find(|i| *i != new_leader && *i != leader).unwrap();
    cs[new_leader].kill9();
    cs[leader].kill9();
    // Every attempt is refused (a minority never accepts a write); once its leader lease and election
    // timeout have passed, the survivor says that no controller is elected.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let started = Instant::now();
        let (code, message) = create_topic(&cs[survivor].address(), "minority");
        assert!(code == 41 || code == 7, "code {code}: {message}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refusing took {:?}",
            started.elapsed()
        );
        if message.contains("no controller is elected") || message.contains("no quorum") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still told to use a dead controller: {message}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // One returns: writes are served again.
    cs[leader].spawn();
    wait_for("writes to be served again", Duration::from_secs(30), || {
        (0..3)
            .filter(|i| *i != new_leader)
            .any(|i| matches!(create_topic(&cs[i].address(), "recovered").0, 0 | 36))
    });

    // Stop everything, start again: all metadata is back.
    for c in cs.iter_mut() {
        c.stop();
    }
    for c in cs.iter_mut() {
        c.spawn();
    }
    // The leader is whichever member takes the writes: right after the restart, a member whose
    // persisted vote was its own may answer as leader of an older term until it hears of the newer one
    // (a CI run caught that one, then asked it for 10 s while it answered NOT_CONTROLLER).
    wait_for_leader(&cs.iter().collect::<Vec<_>>(), None);
    let mut leader = 0;
    for topic in ["before", "after-failover", "while-down-14", "recovered"] {
        wait_for(&format!("{topic} to be known"), Duration::from_secs(20), || {
            let known = (0..3).find(|i| create_topic(&cs[*i].address(), topic).0 == 36);
            leader = known.unwrap_or(leader);
            known.is_some()
        });
    }
    assert_eq!(
        create_topic(&cs[leader].address(), "minority").0,
        0,
        "the refused write never happened"
    );

    // A leader that loses both followers cannot commit: its write fails after request.timeout.ms, and
    // its health check says why.
    for i in (0..3).filter(|i| *i != leader) {
        cs[i].kill9();
    }
    let started = Instant::now();
    let (code, message) = create_topic(&cs[leader].address(), "isolated");
    assert_eq!(code, 7, "{message}");
    assert!(message.contains("no quorum"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let health = http_get(metrics_ports[leader], "/health");
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains("no quorum acknowledges it"), "{health}");
    // Nor does it claim to be the controller: brokers asking would otherwise keep heartbeating a leader
    // the others may already have replaced (and be fenced by the real one).
    let request = DescribeClusterRequest::default().with_endpoint_type(2);
    let described: DescribeClusterResponse = call(&cs[leader].address(), ApiKey::DescribeCluster, 1, &request).unwrap();
    assert_eq!(described.controller_id.0, -1, "{described:?}");
    assert_eq!(
        broker_heartbeat(&cs[leader].address(), 1, 1).error_code,
        41,
        "a heartbeat to a leader without quorum gets NOT_CONTROLLER"
    );
}
