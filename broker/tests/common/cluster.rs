//! The multi-process cluster fixture of `tests/cluster*.rs`: three `oxka coordinator`s (the Raft
//! ensemble, `server.1..3`) and three `oxka broker`s (`broker.id` 1, 2 and 3) whose `zookeeper.connect`
//! lists the coordinators' client ports, plus helpers to drive them with Kafka's tools and kcat.
//! Clients are only ever given broker 1's address; they learn the rest from Metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataResponse;

use super::coordinator::{quorum, try_metadata, wait_for_leader, Coordinator, Ensemble};
use super::*;

/// `broker.session.timeout.ms` of the coordinators, unless a test says otherwise.
pub const SESSION_TIMEOUT_MS: u64 = 4000;

/// The fixture's knobs.
pub struct Options {
    pub session_timeout_ms: u64,
    /// `broker.rack` of brokers 1, 2 and 3.
    pub racks: Option<[&'static str; 3]>,
    /// More `zookeeper.properties` lines for every coordinator (say, the leader rebalance keys).
    pub coordinator_config: &'static str,
    /// More `server.properties` settings for every broker.
    pub broker_config: &'static [(&'static str, &'static str)],
    /// More settings for each broker (index 0 is broker 1), after `broker_config`: say, a listener on
    /// a port of its own, or paths made by the test.
    pub per_broker: Vec<Vec<(String, String)>>,
    /// More `zookeeper.properties` lines for each coordinator (index 0 is coordinator 1).
    pub per_coordinator: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            session_timeout_ms: SESSION_TIMEOUT_MS,
            racks: None,
            coordinator_config: "",
            broker_config: &[],
            per_broker: Vec::new(),
            per_coordinator: Vec::new(),
        }
    }
}

/// Three coordinators and three brokers (ids 1, 2, 3), each its own `oxka` process with its own temp
/// dir and loopback ports. Everything is killed on drop; a failing test prints every process's log.
pub struct Cluster {
    // Dropped in this order: brokers before coordinators, the directory holding the coordinators'
    // data and logs last.
    pub brokers: Vec<Broker>,
    pub coordinators: Vec<Coordinator>,
    /// The coordinators' `metrics.port`s, member `i` at index `i - 1`.
    pub coordinator_metrics_ports: Vec<u16>,
    pub connect: String,
    pub session_timeout: Duration,
    /// `--command-config` of the Java tools: bounded admin timeouts.
    pub client_config: PathBuf,
    pub _dir: tempfile::TempDir,
}

/// One partition line of `kafka-topics --describe`.
#[derive(Debug)]
pub struct PartitionRow {
    pub partition: i32,
    /// `None` for `Leader: none` (or -1).
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(Options::default())
    }

    /// Starts the ensemble, waits for a leader, starts the brokers one by one (each returns once it
    /// accepts connections, i.e. once it has registered) and waits until the ensemble names all three.
    pub fn start_with(options: Options) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("oxka-cluster-")
            .tempdir()
            .expect("create temp dir");
        let ensemble = Ensemble::start_with(
            dir.path(),
            &format!(
                "raft.election.timeout.ms=500\nraft.heartbeat.interval.ms=100\nrequest.timeout.ms=3000\n\
                 broker.session.timeout.ms={}\n{}",
                options.session_timeout_ms, options.coordinator_config
            ),
            &options.per_coordinator,
        );
        let connect = ensemble.connect_string();
        let coordinators = ensemble.members;
        let coordinator_metrics_ports = ensemble.metrics_ports;
        wait_for_leader(&coordinators.iter().collect::<Vec<_>>(), None);
        let client_config = dir.path().join("client.properties");
        std::fs::write(
            &client_config,
            "default.api.timeout.ms=15000\nrequest.timeout.ms=10000\n",
        )
        .unwrap();
        let mut cluster = Cluster {
            brokers: Vec::new(),
            coordinators,
            coordinator_metrics_ports,
            connect,
            session_timeout: Duration::from_millis(options.session_timeout_ms),
            client_config,
            _dir: dir,
        };
        for id in 1..=3 {
            let rack = options.racks.map(|r| r[id as usize - 1]);
            let config = cluster.broker_config(id, rack);
            let overrides: Vec<(&str, &str)> = config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(options.broker_config.iter().copied())
                .chain(
                    options
                        .per_broker
                        .get(id as usize - 1)
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                )
                .collect();
            cluster.brokers.push(Broker::start(&overrides));
        }
        cluster.wait_registered(&[1, 2, 3]);
        cluster
    }

    /// The settings that make a broker a member of this cluster (the harness adds listeners, log.dirs
    /// etc., and writes `broker.id=0` first; these come later and win).
    pub fn broker_config(&self, id: i32, rack: Option<&str>) -> Vec<(String, String)> {
        let mut config = vec![
            ("broker.id".to_string(), id.to_string()),
            ("zookeeper.connect".to_string(), self.connect.clone()),
            ("broker.heartbeat.interval.ms".to_string(), "500".to_string()),
            // Groups fail over with their __consumer_offsets partition, as in a real cluster.
            ("offsets.topic.replication.factor".to_string(), "3".to_string()),
            // So does share-group state with its __share_group_state partition (Kafka's defaults; the
            // single-broker harness sets 1).
            (
                "share.coordinator.state.topic.replication.factor".to_string(),
                "3".to_string(),
            ),
            ("share.coordinator.state.topic.min.isr".to_string(), "2".to_string()),
            // Shorter than the harness's 30 s wait for the listener, so a broker that cannot register
            // exits with its own error first.
            (
                "initial.broker.registration.timeout.ms".to_string(),
                "20000".to_string(),
            ),
        ];
        if let Some(rack) = rack {
            config.push(("broker.rack".to_string(), rack.to_string()));
        }
        config
    }

    pub fn broker(&self, id: i32) -> &Broker {
        &self.brokers[id as usize - 1]
    }

    pub fn broker_mut(&mut self, id: i32) -> &mut Broker {
        &mut self.brokers[id as usize - 1]
    }

    pub fn coordinator(&self, id: i32) -> &Coordinator {
        &self.coordinators[id as usize - 1]
    }

    pub fn coordinator_mut(&mut self, id: i32) -> &mut Coordinator {
        &mut self.coordinators[id as usize - 1]
    }

    /// The one address clients are given: broker 1.
    pub fn bootstrap(&self) -> String {
        self.broker(1).bootstrap()
    }

    /// The tail of every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::from("==== process logs ====\n");
        for (i, c) in self.coordinators.iter().enumerate() {
            out += &format!(
                "---- coordinator {} ({}) ----\n{}\n",
                i + 1,
                c.log_path().display(),
                c.log_tail_lines(25)
            );
        }
        for (i, b) in self.brokers.iter().enumerate() {
            out += &format!("broker {}: {}\n", i + 1, b.log_tail(25));
        }
        out
    }

    /// Polls `check` every 200 ms until it returns `Ok`; after `timeout`, panics with what it last
    /// reported and the processes' logs.
    #[track_caller]
    pub fn wait_until<T>(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match check() {
                Ok(value) => return value,
                Err(state) if Instant::now() >= deadline => panic!(
                    "timed out after {timeout:?} waiting for {what}\nlast seen: {state}\n{}",
                    self.logs()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The id of the coordinator that says it is the Raft leader, if any.
    pub fn leader(&self) -> Option<i32> {
        self.coordinators
            .iter()
            .find_map(|c| quorum(&c.address()).map(|(leader, _, _)| leader))
    }

    #[track_caller]
    pub fn wait_leader(&self) -> i32 {
        self.wait_until("a coordinator leader", Duration::from_secs(20), || {
            self.leader().ok_or_else(|| "no coordinator says it leads".to_string())
        })
    }

    /// Metadata (all topics) as broker `via` answers it.
    pub fn try_metadata_via(&self, via: i32) -> Result<MetadataResponse, String> {
        try_metadata(&self.broker(via).bootstrap()).map_err(|e| format!("Metadata via broker {via}: {e}"))
    }

    #[track_caller]
    pub fn metadata_via(&self, via: i32) -> MetadataResponse {
        self.try_metadata_via(via)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Waits (15 s) until the ensemble's own Metadata, asked of its leader, names exactly `ids` as live
    /// brokers, each at the port its process listens on.
    #[track_caller]
    pub fn wait_registered(&self, ids: &[i32]) {
        let want: BTreeSet<i32> = ids.iter().copied().collect();
        self.wait_until(
            &format!("the coordinator ensemble to name brokers {want:?} (registered and unfenced)"),
            Duration::from_secs(15),
            || {
                let leader = self.leader().ok_or("no coordinator leader")?;
                let address = self.coordinator(leader).address();
                let m = try_metadata(&address).map_err(|e| format!("Metadata from coordinator {leader}: {e}"))?;
                let named = broker_ids(&m);
                if named != want {
                    return Err(format!("coordinator {leader} names brokers {named:?}"));
                }
                for b in &m.brokers {
                    let port = self.broker(b.node_id.0).port() as i32;
                    if b.port != port {
                        return Err(format!(
                            "coordinator {leader} has broker {} at {}:{}, but that broker listens on port {port}",
                            b.node_id.0, b.host, b.port
                        ));
                    }
                }
                Ok(())
            },
        );
    }

    /// Panics with the tool's output and the processes' logs unless it exited 0; returns stdout.
    #[track_caller]
    pub fn expect_ok(&self, what: &str, out: &Output) -> String {
        if !out.status.success() {
            panic!(
                "{what} failed with {}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}\n{}",
                out.status,
                tail(&out.stdout, 40),
                tail(&out.stderr, 40),
                self.logs()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Apache Kafka 4's `kafka-topics` through broker 1, with bounded admin timeouts (60 s in all).
    pub fn topics(&self, args: &[&str]) -> Output {
        let bootstrap = self.bootstrap();
        let config = self.client_config.display().to_string();
        let mut all = vec![
            "--bootstrap-server",
            bootstrap.as_str(),
            "--command-config",
            config.as_str(),
        ];
        all.extend_from_slice(args);
        kafka_tool_timeout("4", "topics", &all, 60)
    }

    #[track_caller]
    pub fn topics_ok(&self, args: &[&str]) -> String {
        self.expect_ok(&format!("kafka-topics {}", args.join(" ")), &self.topics(args))
    }

    #[track_caller]
    pub fn create_topic(&self, topic: &str, partitions: u32, replication_factor: u32) {
        let created = self.topics_ok(&as_strs(&create_args(topic, partitions, replication_factor)));
        assert!(
            created.contains(&format!("Created topic {topic}.")),
            "kafka-topics --create {topic} printed:\n{created}\n{}",
            self.logs()
        );
    }

    /// Creates a topic, trying again for up to `timeout` while the tool fails (say, during a
    /// coordinator fail-over). "already exists" counts: an attempt the tool gave up on may have worked.
    #[track_caller]
    pub fn create_topic_retrying(&self, topic: &str, partitions: u32, timeout: Duration) {
        let args = create_args(topic, partitions, 1);
        let started = Instant::now();
        let mut attempts = 0;
        self.wait_until(&format!("kafka-topics --create {topic} to succeed"), timeout, || {
            attempts += 1;
            let out = self.topics(&as_strs(&args));
            let text = output_text(&out);
            if out.status.success() && text.contains(&format!("Created topic {topic}."))
                || text.contains("already exists")
            {
                Ok(())
            } else {
                Err(format!(
                    "attempt {attempts} exited with {}:\n{}",
                    out.status,
                    tail_text(&text, 30)
                ))
            }
        });
        eprintln!("created {topic} after {attempts} attempt(s), {:?}", started.elapsed());
    }

    /// `kafka-topics --describe` of one topic: its partition lines (sorted by partition) and the text.
    #[track_caller]
    pub fn describe(&self, topic: &str) -> (Vec<PartitionRow>, String) {
        let text = self.topics_ok(&["--describe", "--topic", topic]);
        let number = |field: &str, value: &str| -> i32 {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{field} {value:?} is not a number in:\n{text}"))
        };
        let mut rows: Vec<PartitionRow> = text
            .lines()
            .map(describe_fields)
            .filter(|f| f.contains_key("Partition"))
            .map(|f| PartitionRow {
                partition: number("Partition", &f["Partition"]),
                leader: match f.get("Leader").map(String::as_str) {
                    None | Some("none") | Some("-1") => None,
                    Some(v) => Some(number("Leader", v)),
                },
                replicas: f
                    .get("Replicas")
                    .map(|r| {
                        r.split(',')
                            .filter(|s| !s.is_empty())
                            .map(|s| number("Replicas", s))
                            .collect()
                    })
                    .unwrap_or_default(),
                isr: f
                    .get("Isr")
                    .map(|r| {
                        r.split(',')
                            .filter(|s| !s.is_empty())
                            .map(|s| number("Isr", s))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        rows.sort_by_key(|r| r.partition);
        (rows, text)
    }

    /// Waits (15 s) until Metadata via broker 1 shows every partition of `topic` (`partitions` of them)
    /// with a leader; returns partition -> leader.
    #[track_caller]
    /// The broker that coordinates `group` as FindCoordinator v4 answers it through broker `via`
    /// (which creates `__consumer_offsets` first), once that is not `moved_from`.
    pub fn group_coordinator(&self, via: i32, group: &str, moved_from: Option<i32>) -> i32 {
        use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
        use kafka_protocol::protocol::StrBytes;
        self.wait_until("a coordinator for the group", Duration::from_secs(60), || {
            let mut conn = super::raw::Connection::connect(&self.broker(via).bootstrap());
            let find = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())]);
            conn.send(ApiKey::FindCoordinator, 4, &find);
            let (_, r): (_, FindCoordinatorResponse) =
                super::raw::decode(ApiKey::FindCoordinator, 4, super::raw::read_frame(&mut conn.stream));
            let c = &r.coordinators[0];
            match (c.error_code, c.node_id.0) {
                (0, node) if Some(node) != moved_from => Ok(node),
                (code, node) => Err(format!("error {code}, node {node}")),
            }
        })
    }

    pub fn wait_all_led(&self, topic: &str, partitions: usize) -> BTreeMap<i32, i32> {
        self.wait_until(
            &format!("all {partitions} partitions of {topic} to have a leader in Metadata via broker 1"),
            Duration::from_secs(15),
            || {
                let m = self.try_metadata_via(1)?;
                let leaders = partition_leaders(&m, topic);
                if leaders.len() == partitions && leaders.values().all(|l| *l >= 0) {
                    Ok(leaders)
                } else {
                    Err(format!("leaders of {topic}: {leaders:?}"))
                }
            },
        )
    }

    /// SIGTERM every broker (each must exit 0), then every running coordinator.
    #[track_caller]
    pub fn stop_all(&mut self) {
        for (i, b) in self.brokers.iter_mut().enumerate() {
            assert!(
                b.is_running(),
                "broker {} exited by itself before the cluster was stopped\n{}",
                i + 1,
                b.log_tail(60)
            );
            let status = b.stop();
            assert!(
                status.success(),
                "broker {} exited with {status} on SIGTERM\n{}",
                i + 1,
                b.log_tail(60)
            );
        }
        for c in self.coordinators.iter_mut() {
            c.stop();
        }
    }

    /// Starts every coordinator that is not running, waits for a leader, then every broker.
    #[track_caller]
    pub fn start_all(&mut self) {
        for c in self.coordinators.iter_mut() {
            if !c.is_running() {
                c.spawn();
            }
        }
        self.wait_leader();
        for b in self.brokers.iter_mut() {
            if !b.is_running() {
                b.restart();
            }
        }
    }
}

/// `kafka-topics` arguments that create a topic.
pub fn create_args(topic: &str, partitions: u32, replication_factor: u32) -> Vec<String> {
    [
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions.to_string(),
        "--replication-factor",
        &replication_factor.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn tail_text(text: &str, lines: usize) -> String {
    tail(text.as_bytes(), lines)
}

/// `Key: value` fields of a tab-separated `kafka-topics --describe` line.
pub fn describe_fields(line: &str) -> BTreeMap<String, String> {
    line.split('\t')
        .filter_map(|f| f.trim().split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The broker ids a Metadata response names.
pub fn broker_ids(m: &MetadataResponse) -> BTreeSet<i32> {
    m.brokers.iter().map(|b| b.node_id.0).collect()
}

/// partition -> leader id (-1: none) of `topic` in a Metadata response; empty if the topic is absent.
pub fn partition_leaders(m: &MetadataResponse, topic: &str) -> BTreeMap<i32, i32> {
    m.topics
        .iter()
        .filter(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0)))
        .collect()
}

pub fn topic_names(m: &MetadataResponse) -> BTreeSet<String> {
    m.topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect()
}

/// How many partitions each broker leads.
pub fn leader_counts(leaders: impl IntoIterator<Item = i32>) -> BTreeMap<i32, usize> {
    let mut counts = BTreeMap::new();
    for leader in leaders {
        *counts.entry(leader).or_default() += 1;
    }
    counts
}

/// Kafka's `Utils.murmur2`, which the Java producer's default partitioner applies to the key bytes.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java producer picks for a key.
pub fn java_partition(key: &str, partitions: i32) -> i32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

/// A record as the tests track it: (partition, key, value).
pub type Record = (i32, String, String);

/// Produces `count` keyed records `<tag>-<partition>-<i>` to one partition with kcat (librdkafka),
/// bootstrapping from broker 1 (the client finds the partition's leader itself); returns them.
#[track_caller]
pub fn kcat_produce(cluster: &Cluster, topic: &str, partition: i32, tag: &str, count: usize) -> Vec<Record> {
    kcat_produce_with(cluster, topic, partition, tag, count, &[])
}

/// `kcat_produce` with extra librdkafka properties (`-X key=value` each), e.g. `acks=all`.
#[track_caller]
pub fn kcat_produce_with(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    tag: &str,
    count: usize,
    properties: &[&str],
) -> Vec<Record> {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            (
                partition,
                format!("key-{tag}-{partition}-{i}"),
                format!("{tag}-{partition}-{i}"),
            )
        })
        .collect();
    let input: String = records.iter().map(|(_, k, v)| format!("{k}:{v}\n")).collect();
    let p = partition.to_string();
    let bootstrap = cluster.bootstrap();
    let mut args = vec![
        "-P",
        "-b",
        &bootstrap,
        "-t",
        topic,
        "-p",
        &p,
        "-K",
        ":",
        "-X",
        "message.timeout.ms=15000",
    ];
    for property in properties {
        args.extend(["-X", property]);
    }
    let out = kcat_timeout(&args, input.as_bytes(), Duration::from_secs(40));
    cluster.expect_ok(&format!("kcat -P to {topic}-{partition}"), &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Delivery failed"),
        "kcat -P to {topic}-{partition}:\n{stderr}\n{}",
        cluster.logs()
    );
    records
}

/// Reads all of `topic` from the beginning to the end of every partition with kcat, bootstrapping from
/// broker 1.
#[track_caller]
pub fn kcat_consume(cluster: &Cluster, topic: &str) -> Vec<Record> {
    kcat_consume_via(cluster, &cluster.bootstrap(), topic)
}

/// `kcat_consume` bootstrapping from `bootstrap` (say, the one broker still running).
#[track_caller]
pub fn kcat_consume_via(cluster: &Cluster, bootstrap: &str, topic: &str) -> Vec<Record> {
    let out = kcat_timeout(
        &[
            "-C",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p\t%k\t%s\n",
        ],
        b"",
        Duration::from_secs(60),
    );
    let text = cluster.expect_ok(&format!("kcat -C {topic}"), &out);
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.splitn(3, '\t').collect();
            assert_eq!(cols.len(), 3, "kcat line {l:?}");
            (
                cols[0].parse().unwrap_or_else(|_| panic!("kcat line {l:?}")),
                cols[1].to_string(),
                cols[2].to_string(),
            )
        })
        .collect()
}

pub fn per_partition(records: &[Record]) -> BTreeMap<i32, usize> {
    leader_counts(records.iter().map(|r| r.0))
}

pub fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort();
    records
}

/// Java's `String.hashCode`, as Kafka maps a group to its `__consumer_offsets` partition.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Kafka's `Utils.abs(groupId.hashCode) % partitions`: the `__consumer_offsets` partition of a group.
pub fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let h = java_hash(group);
    (if h == i32::MIN { 0 } else { h.abs() }) % partitions
}
