//! `oxka coordinator` processes, an ensemble of three, and a small Kafka-protocol client (built on the
//! `kafka-protocol` crate) that talks to coordinators and brokers alike: DescribeQuorum to find the Raft
//! leader, Metadata to see which brokers and partition leaders a node knows. Shared by `coordinator.rs`
//! and `cluster.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, MetadataRequest, MetadataResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{free_port, oxka_bin, tail, wait_for};

/// One `oxka coordinator` process; killed on drop, its log printed when the test fails.
pub struct Coordinator {
    config: PathBuf,
    log: PathBuf,
    client_port: u16,
    child: Option<Child>,
}

impl Coordinator {
    /// Writes `properties` to `<dir>/<name>.properties` and starts a coordinator on it; returns once
    /// `client_port` accepts connections.
    pub fn start(dir: &Path, name: &str, properties: &str, client_port: u16) -> Coordinator {
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

    /// Starts the process (again) on the same config and dataDir.
    pub fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "coordinator {} is already running",
            self.address()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(oxka_bin())
            .arg("coordinator")
            .arg(&self.config)
            .env(
                "RUST_LOG",
                "warn,oxka_broker=info,oxka_coordinator=info,oxka_log=info,oxka_protocol=info",
            )
            .env("KAFKA_HEAP_OPTS", "-Xmx64m")
            .env("NO_COLOR", "1") // plain text in the log
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start oxka coordinator");
        self.child = Some(child);
        let port = self.client_port;
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "coordinator on port {port} exited during startup with {status}\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "coordinator on port {port} did not accept connections within 15 s\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait; the coordinator must exit 0.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            let status: ExitStatus = child.wait().unwrap();
            assert!(
                status.success(),
                "coordinator exited with {status} on SIGTERM:\n{}",
                self.log_tail()
            );
        }
    }

    /// The last 30 lines of its log.
    pub fn log_tail(&self) -> String {
        self.log_tail_lines(30)
    }

    pub fn log_tail_lines(&self, lines: usize) -> String {
        tail(&std::fs::read(&self.log).unwrap_or_default(), lines)
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

/// Three coordinators (`server.1..3` on loopback), member `i` at index `i - 1`, each with its own
/// dataDir (`<dir>/zk<i>`, with a `myid` file), client port, peer port and metrics port.
pub struct Ensemble {
    pub members: Vec<Coordinator>,
    pub metrics_ports: Vec<u16>,
}

impl Ensemble {
    /// Starts the three; `extra` is appended to every member's properties (one `key=value` a line).
    /// Returns once every client port accepts connections (not necessarily with a leader elected).
    pub fn start(dir: &Path, extra: &str) -> Ensemble {
        Ensemble::start_with(dir, extra, &[])
    }

    /// As `start`, with `per_member[i]` appended to member i+1's properties too (say, its own
    /// `secureClientPort`).
    pub fn start_with(dir: &Path, extra: &str, per_member: &[String]) -> Ensemble {
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
        let members = (0..3)
            .map(|i| {
                let data = dir.join(format!("zk{}", i + 1));
                std::fs::create_dir_all(&data).unwrap();
                std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
                let own = per_member.get(i).map(String::as_str).unwrap_or("");
                let properties = format!(
                    "dataDir={}\nclientPort={}\nmetrics.port={}\n{extra}\n{own}\n{servers}",
                    data.display(),
                    client_ports[i],
                    metrics_ports[i]
                );
                Coordinator::start(dir, &format!("zk{}", i + 1), &properties, client_ports[i])
            })
            .collect();
        Ensemble { members, metrics_ports }
    }

    /// `host:port` of every member's client port, comma-separated: a broker's `zookeeper.connect`.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(Coordinator::address)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Sends one request and decodes its response. Connection, I/O and decoding problems are errors (a
/// node that is down or answers garbage is something tests wait out or report).
pub fn call<Req: Encodable, Resp: Decodable>(
    address: &str,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> std::io::Result<Resp> {
    let addr: SocketAddr = address
        .parse()
        .map_err(|e| std::io::Error::other(format!("{address}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("oxka-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, api.request_header_version(version))
        .map_err(std::io::Error::other)?;
    request.encode(&mut body, version).map_err(std::io::Error::other)?;
    stream.write_all(&(body.len() as u32).to_be_bytes())?;
    stream.write_all(&body)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut response = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response)?;
    let mut buf = bytes::Bytes::from(response);
    let header =
        ResponseHeader::decode(&mut buf, api.response_header_version(version)).map_err(std::io::Error::other)?;
    if header.correlation_id != 7 {
        return Err(std::io::Error::other(format!(
            "{address}: correlation id {} in the answer to 7",
            header.correlation_id
        )));
    }
    let decoded = Resp::decode(&mut buf, version).map_err(std::io::Error::other)?;
    if buf.remaining() != 0 {
        return Err(std::io::Error::other(format!(
            "{address}: {} bytes left after the {api:?} v{version} response",
            buf.remaining()
        )));
    }
    Ok(decoded)
}

/// (leader id, epoch, whole response) as the coordinator at `address` sees it, if it is the leader (a
/// follower answers NOT_LEADER_OR_FOLLOWER, a dead one not at all: both are `None`).
pub fn quorum(address: &str) -> Option<(i32, i32, DescribeQuorumResponse)> {
    let request = DescribeQuorumRequest::default().with_topics(vec![
        kafka_protocol::messages::describe_quorum_request::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![Default::default()]),
    ]);
    let response: DescribeQuorumResponse = call(address, ApiKey::DescribeQuorum, 1, &request).ok()?;
    let p = &response.topics[0].partitions[0];
    (p.error_code == 0).then(|| (p.leader_id.0, p.leader_epoch, response.clone()))
}

/// Waits (20 s) until one of `coordinators` is leader, other than coordinator id `not`; returns its
/// index in `coordinators` and its id.
pub fn wait_for_leader(coordinators: &[&Coordinator], not: Option<i32>) -> (usize, i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, c) in coordinators.iter().enumerate() {
            if let Some((leader, _, _)) = quorum(&c.address()) {
                if Some(leader) != not {
                    return (i, leader);
                }
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = coordinators
                .iter()
                .map(|c| format!("--- {} ---\n{}", c.log_path().display(), c.log_tail()))
                .collect();
            panic!(
                "no coordinator became leader within 20 s (excluding {not:?})\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (20 s) until the leader among `coordinators` reports every voter's log end offset at the high
/// watermark: a restarted member has caught up.
pub fn wait_for_caught_up(coordinators: &[&Coordinator]) {
    wait_for(
        "every coordinator to catch up with the leader",
        Duration::from_secs(20),
        || {
            coordinators.iter().any(|c| {
                let Some((_, _, q)) = quorum(&c.address()) else {
                    return false;
                };
                let p = &q.topics[0].partitions[0];
                p.current_voters.len() == coordinators.len()
                    && p.current_voters.iter().all(|v| v.log_end_offset == p.high_watermark)
            })
        },
    );
}

/// Metadata v12 for all topics (`topics: null`, so nothing is auto-created), from a coordinator or a
/// broker.
pub fn try_metadata(address: &str) -> std::io::Result<MetadataResponse> {
    call(
        address,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
}

pub fn metadata(address: &str) -> MetadataResponse {
    try_metadata(address).unwrap_or_else(|e| panic!("Metadata from {address}: {e}"))
}
