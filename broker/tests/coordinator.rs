//! The coordinator role as real processes: `oxka coordinator <zookeeper.properties>`.
//!
//! - The seed's zookeeper.properties (dataDir and clientPort moved to temp ones) starts a single coordinator
//!   that Apache Kafka 4's `kafka-metadata-quorum --bootstrap-controller` describes as leader, and whose
//!   metadata survives a restart.
//! - Three coordinators (`server.1..3`) elect a leader; kill -9 of the leader elects another; the killed one
//!   restarts and catches up; with two of three down, writes are refused with a clear error and are
//!   served again once one returns; after stopping everything, all metadata is back.
//!
//! Writes are Kafka's own RPCs (BrokerRegistration, CreateTopics) sent by a small client below, built on
//! the `kafka-protocol` crate.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use common::{expect_success, free_port, kafka_tool, oxka_bin, tail, wait_for};
use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ApiKey, BrokerHeartbeatRequest, BrokerHeartbeatResponse,
    BrokerId, BrokerRegistrationRequest, BrokerRegistrationResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeQuorumRequest,
    DescribeQuorumResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest,
    MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The seed's zookeeper.properties, verbatim.
const SEED_ZOOKEEPER_PROPERTIES: &str =
    "# The coordinator configuration that the seed starts first (Kafka 2.8's config/zookeeper.properties defaults).
dataDir=/tmp/zookeeper
clientPort=2181
maxClientCnxns=0
admin.enableServer=false
";

/// One `oxka coordinator` process; killed on drop, its log printed when the test fails.
struct Coordinator {
    config: PathBuf,
    log: PathBuf,
    client_port: u16,
    child: Option<Child>,
}

impl Coordinator {
    fn start(dir: &Path, name: &str, properties: &str, client_port: u16) -> Coordinator {
        let config = dir.join(format!("{name}.properties"));
        std::fs::write(&config, properties).unwrap();
        let mut c = Coordinator {
            config,
            log: dir.join(format!("{name}.log")),
            client_port,
            child: None,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(oxka_bin())
            .arg("coordinator")
            .arg(&self.config)
            .env("RUST_LOG", "warn,oxka_broker=info")
            .env("KAFKA_HEAP_OPTS", "-Xmx64m")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start oxka coordinator");
        self.child = Some(child);
        let port = self.client_port;
        wait_for(&format!("coordinator on port {port}"), Duration::from_secs(15), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "coordinator exited with {status} on SIGTERM:\n{}",
                self.log_tail()
            );
        }
    }

    fn log_tail(&self) -> String {
        tail(&std::fs::read(&self.log).unwrap_or_default(), 30)
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log_tail());
        }
        self.kill9();
    }
}

/// Sends one request and decodes its response.
fn call<Req: Encodable, Resp: Decodable>(
    address: &str,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("coordinator-test")));
    let mut body = BytesMut::new();
    header.encode(&mut body, api.request_header_version(version)).unwrap();
    request.encode(&mut body, version).unwrap();
    stream.write_all(&(body.len() as u32).to_be_bytes())?;
    stream.write_all(&body)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut response = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response)?;
    let mut buf = bytes::Bytes::from(response);
    let header = ResponseHeader::decode(&mut buf, api.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    let decoded = Resp::decode(&mut buf, version).unwrap();
    assert_eq!(buf.remaining(), 0);
    Ok(decoded)
}

/// (leader id, epoch) as the coordinator at `address` sees it, if it is the leader.
fn quorum(address: &str) -> Option<(i32, i32, DescribeQuorumResponse)> {
    let request = DescribeQuorumRequest::default().with_topics(vec![
        kafka_protocol::messages::describe_quorum_request::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![Default::default()]),
    ]);
    let response: DescribeQuorumResponse = call(address, ApiKey::DescribeQuorum, 1, &request).ok()?;
    let p = &response.topics[0].partitions[0];
    (p.error_code == 0).then(|| (p.leader_id.0, p.leader_epoch, response.clone()))
}

/// Waits until one of `coordinators` is leader and returns its index.
fn wait_for_leader(coordinators: &[&Coordinator], not: Option<i32>) -> (usize, i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, c) in coordinators.iter().enumerate() {
            if let Some((leader, _, _)) = quorum(&c.address()) {
                if Some(leader) != not {
                    return (i, leader);
                }
            }
        }
        assert!(Instant::now() < deadline, "no coordinator became leader within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

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

fn metadata(address: &str) -> MetadataResponse {
    call(
        address,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
    .unwrap()
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
    second.arg("coordinator").arg(&c.config);
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
        std::fs::read_to_string(&c.log)
            .unwrap()
            .contains("fenced a broker whose heartbeats stopped")
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

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn three_coordinators_fail_over_refuse_writes_without_quorum_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let metrics_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let servers: String = (0..3)
        .map(|i| {
            format!(
                "server.{}=127.0.0.1:{}:{};127.0.0.1:{}\n",
                i + 1,
                peer_ports[i],
                peer_ports[i] + 1,
                client_ports[i]
            )
        })
        .collect();
    let mut cs: Vec<Coordinator> = (0..3)
        .map(|i| {
            let data = dir.path().join(format!("zk{}", i + 1));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            let properties = format!(
                "dataDir={}\nclientPort={}\nmetrics.port={}\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n\
                 raft.election.timeout.ms=500\nraft.heartbeat.interval.ms=100\nrequest.timeout.ms=2000\nsnapCount=10\n{servers}",
                data.display(),
                client_ports[i],
                metrics_ports[i]
            );
            Coordinator::start(dir.path(), &format!("zk{}", i + 1), &properties, client_ports[i])
        })
        .collect();

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
    // More than snapCount entries while it is down: the leader snapshots and compacts its log, so the
    // restarted member catches up by InstallSnapshot over the peer transport.
    for i in 0..15 {
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
    let log = std::fs::read_to_string(&cs[leader].log).unwrap();
    assert!(log.contains("installed a snapshot from the leader"), "{log}");

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
    let (leader, _) = wait_for_leader(&cs.iter().collect::<Vec<_>>(), None);
    for topic in ["before", "after-failover", "while-down-14", "recovered"] {
        wait_for(&format!("{topic} to be known"), Duration::from_secs(10), || {
            create_topic(&cs[leader].address(), topic).0 == 36
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
}
