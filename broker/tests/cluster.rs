//! Issue 4's acceptance: brokers that join the coordinator ensemble, as real processes on loopback driven
//! by real clients.
//!
//! A [`Cluster`] is three `oxka coordinator`s (the Raft ensemble, `server.1..3`) and three `oxka broker`s
//! (`broker.id` 1, 2 and 3) whose `zookeeper.connect` lists the coordinators' client ports. Clients are
//! only ever given broker 1's address; they learn the rest from Metadata. The tests prove that:
//!
//! 1. the controller spreads partitions over the brokers (12 partitions: each broker leads 4), and Kafka's
//!    Java tools and kcat (librdkafka) produce to and consume from all of them through that one address,
//!    in a consumer group whose committed offsets leave no lag;
//! 2. the brokers stay registered while the coordinator leader is killed -9 and another is elected;
//!    without a quorum, creating a topic fails with a clear error and creates nothing; after stopping
//!    everything and starting it again, the topics and records are back;
//! 3. a broker killed -9 is fenced within its session timeout (it leaves Metadata and its partitions lose
//!    their leader), the other partitions keep taking writes, and the restarted broker rejoins, leads its
//!    partitions again and serves every record produced before the kill;
//! 4. a second broker with a registered `broker.id` is refused and exits, and the first keeps serving;
//! 5. a SIGTERM'd broker leaves Metadata at once (controlled shutdown), long before its session timeout;
//! 6. with `broker.rack` set, replicas go to distinct brokers, and leaders spread evenly.
//!
//! Before issue 4 a broker only logs a warning about `zookeeper.connect` and runs its embedded
//! single-node store, so every test stops at the fixture's first check: the ensemble names no broker.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::coordinator::{quorum, try_metadata, wait_for_leader, Coordinator, Ensemble};
use common::*;
use kafka_protocol::messages::MetadataResponse;

/// `broker.session.timeout.ms` of the coordinators, unless a test says otherwise.
const SESSION_TIMEOUT_MS: u64 = 4000;

/// The fixture's knobs.
struct Options {
    session_timeout_ms: u64,
    /// `broker.rack` of brokers 1, 2 and 3.
    racks: Option<[&'static str; 3]>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            session_timeout_ms: SESSION_TIMEOUT_MS,
            racks: None,
        }
    }
}

/// Three coordinators and three brokers (ids 1, 2, 3), each its own `oxka` process with its own temp
/// dir and loopback ports. Everything is killed on drop; a failing test prints every process's log.
struct Cluster {
    // Dropped in this order: brokers before coordinators, the directory holding the coordinators'
    // data and logs last.
    brokers: Vec<Broker>,
    coordinators: Vec<Coordinator>,
    connect: String,
    session_timeout: Duration,
    /// `--command-config` of the Java tools: bounded admin timeouts.
    client_config: PathBuf,
    _dir: tempfile::TempDir,
}

/// One partition line of `kafka-topics --describe`.
#[derive(Debug)]
struct PartitionRow {
    partition: i32,
    /// `None` for `Leader: none` (or -1).
    leader: Option<i32>,
    replicas: Vec<i32>,
}

impl Cluster {
    fn start() -> Cluster {
        Cluster::start_with(Options::default())
    }

    /// Starts the ensemble, waits for a leader, starts the brokers one by one (each returns once it
    /// accepts connections, i.e. once it has registered) and waits until the ensemble names all three.
    fn start_with(options: Options) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("oxka-cluster-")
            .tempdir()
            .expect("create temp dir");
        let ensemble = Ensemble::start(
            dir.path(),
            &format!(
                "raft.election.timeout.ms=500\nraft.heartbeat.interval.ms=100\nrequest.timeout.ms=3000\n\
                 broker.session.timeout.ms={}",
                options.session_timeout_ms
            ),
        );
        let connect = ensemble.connect_string();
        let coordinators = ensemble.members;
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
            connect,
            session_timeout: Duration::from_millis(options.session_timeout_ms),
            client_config,
            _dir: dir,
        };
        for id in 1..=3 {
            let rack = options.racks.map(|r| r[id as usize - 1]);
            let config = cluster.broker_config(id, rack);
            let overrides: Vec<(&str, &str)> = config.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            cluster.brokers.push(Broker::start(&overrides));
        }
        cluster.wait_registered(&[1, 2, 3]);
        cluster
    }

    /// The settings that make a broker a member of this cluster (the harness adds listeners, log.dirs
    /// etc., and writes `broker.id=0` first; these come later and win).
    fn broker_config(&self, id: i32, rack: Option<&str>) -> Vec<(String, String)> {
        let mut config = vec![
            ("broker.id".to_string(), id.to_string()),
            ("zookeeper.connect".to_string(), self.connect.clone()),
            ("broker.heartbeat.interval.ms".to_string(), "500".to_string()),
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

    fn broker(&self, id: i32) -> &Broker {
        &self.brokers[id as usize - 1]
    }

    fn broker_mut(&mut self, id: i32) -> &mut Broker {
        &mut self.brokers[id as usize - 1]
    }

    fn coordinator(&self, id: i32) -> &Coordinator {
        &self.coordinators[id as usize - 1]
    }

    fn coordinator_mut(&mut self, id: i32) -> &mut Coordinator {
        &mut self.coordinators[id as usize - 1]
    }

    /// The one address clients are given: broker 1.
    fn bootstrap(&self) -> String {
        self.broker(1).bootstrap()
    }

    /// The tail of every process's log, for failure messages.
    fn logs(&self) -> String {
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
    fn wait_until<T>(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
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
    fn leader(&self) -> Option<i32> {
        self.coordinators
            .iter()
            .find_map(|c| quorum(&c.address()).map(|(leader, _, _)| leader))
    }

    #[track_caller]
    fn wait_leader(&self) -> i32 {
        self.wait_until("a coordinator leader", Duration::from_secs(20), || {
            self.leader().ok_or_else(|| "no coordinator says it leads".to_string())
        })
    }

    /// Metadata (all topics) as broker `via` answers it.
    fn try_metadata_via(&self, via: i32) -> Result<MetadataResponse, String> {
        try_metadata(&self.broker(via).bootstrap()).map_err(|e| format!("Metadata via broker {via}: {e}"))
    }

    #[track_caller]
    fn metadata_via(&self, via: i32) -> MetadataResponse {
        self.try_metadata_via(via)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Waits (15 s) until the ensemble's own Metadata, asked of its leader, names exactly `ids` as live
    /// brokers, each at the port its process listens on.
    #[track_caller]
    fn wait_registered(&self, ids: &[i32]) {
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
    fn expect_ok(&self, what: &str, out: &Output) -> String {
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
    fn topics(&self, args: &[&str]) -> Output {
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
    fn topics_ok(&self, args: &[&str]) -> String {
        self.expect_ok(&format!("kafka-topics {}", args.join(" ")), &self.topics(args))
    }

    #[track_caller]
    fn create_topic(&self, topic: &str, partitions: u32, replication_factor: u32) {
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
    fn create_topic_retrying(&self, topic: &str, partitions: u32, timeout: Duration) {
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
    fn describe(&self, topic: &str) -> (Vec<PartitionRow>, String) {
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
            })
            .collect();
        rows.sort_by_key(|r| r.partition);
        (rows, text)
    }

    /// Waits (15 s) until Metadata via broker 1 shows every partition of `topic` (`partitions` of them)
    /// with a leader; returns partition -> leader.
    #[track_caller]
    fn wait_all_led(&self, topic: &str, partitions: usize) -> BTreeMap<i32, i32> {
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
    fn stop_all(&mut self) {
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
    fn start_all(&mut self) {
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
fn create_args(topic: &str, partitions: u32, replication_factor: u32) -> Vec<String> {
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

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn tail_text(text: &str, lines: usize) -> String {
    tail(text.as_bytes(), lines)
}

/// `Key: value` fields of a tab-separated `kafka-topics --describe` line.
fn describe_fields(line: &str) -> BTreeMap<String, String> {
    line.split('\t')
        .filter_map(|f| f.trim().split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The broker ids a Metadata response names.
fn broker_ids(m: &MetadataResponse) -> BTreeSet<i32> {
    m.brokers.iter().map(|b| b.node_id.0).collect()
}

/// partition -> leader id (-1: none) of `topic` in a Metadata response; empty if the topic is absent.
fn partition_leaders(m: &MetadataResponse, topic: &str) -> BTreeMap<i32, i32> {
    m.topics
        .iter()
        .filter(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0)))
        .collect()
}

fn topic_names(m: &MetadataResponse) -> BTreeSet<String> {
    m.topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect()
}

/// How many partitions each broker leads.
fn leader_counts(leaders: impl IntoIterator<Item = i32>) -> BTreeMap<i32, usize> {
    let mut counts = BTreeMap::new();
    for leader in leaders {
        *counts.entry(leader).or_default() += 1;
    }
    counts
}

/// Kafka's `Utils.murmur2`, which the Java producer's default partitioner applies to the key bytes.
fn murmur2(data: &[u8]) -> i32 {
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
fn java_partition(key: &str, partitions: i32) -> i32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

/// A record as the tests track it: (partition, key, value).
type Record = (i32, String, String);

/// Produces `count` keyed records `<tag>-<partition>-<i>` to one partition with kcat (librdkafka),
/// bootstrapping from broker 1 (the client finds the partition's leader itself); returns them.
#[track_caller]
fn kcat_produce(cluster: &Cluster, topic: &str, partition: i32, tag: &str, count: usize) -> Vec<Record> {
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
    let out = kcat_timeout(
        &[
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
        ],
        input.as_bytes(),
        Duration::from_secs(40),
    );
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
fn kcat_consume(cluster: &Cluster, topic: &str) -> Vec<Record> {
    let bootstrap = cluster.bootstrap();
    let out = kcat_timeout(
        &[
            "-C",
            "-b",
            &bootstrap,
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

fn per_partition(records: &[Record]) -> BTreeMap<i32, usize> {
    leader_counts(records.iter().map(|r| r.0))
}

fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort();
    records
}

// ------------------------------------------------------------------------------------------------
// 1. Partitions spread over the brokers; every client works through one bootstrap address
// ------------------------------------------------------------------------------------------------

#[test]
fn twelve_partitions_spread_and_all_clients_work() {
    let _serial = serial();
    let cluster = Cluster::start();
    let topic = "spread";
    cluster.create_topic(topic, 12, 1);

    let (rows, text) = cluster.describe(topic);
    assert_eq!(
        rows.iter().map(|r| r.partition).collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>(),
        "--describe does not show partitions 0..11:\n{text}"
    );
    let leaders: Vec<i32> = rows
        .iter()
        .map(|r| {
            r.leader
                .unwrap_or_else(|| panic!("partition {} has no leader:\n{text}\n{}", r.partition, cluster.logs()))
        })
        .collect();
    assert_eq!(
        leader_counts(leaders),
        BTreeMap::from([(1, 4), (2, 4), (3, 4)]),
        "each broker should lead 4 of the 12 partitions:\n{text}\n{}",
        cluster.logs()
    );

    // kafka-metadata-quorum through a broker (KIP-919 --bootstrap-server): the broker forwards
    // DescribeQuorum to the controller, so the tool sees the ensemble's leader and its three voters.
    let leader = cluster.wait_leader();
    let out = kafka_tool(
        "4",
        "metadata-quorum",
        &["--bootstrap-server", &cluster.bootstrap(), "describe", "--status"],
    );
    let status = expect_success(
        "kafka-metadata-quorum --bootstrap-server <broker> describe --status",
        &out,
    );
    assert!(
        status.contains(&format!("LeaderId:               {leader}")) && status.matches("\"id\": ").count() == 3,
        "metadata-quorum via broker 1 should show leader {leader} and three voters:\n{status}"
    );

    // librdkafka: 25 records to each partition, by explicit partition.
    let mut produced: Vec<Record> = Vec::new();
    for p in 0..12 {
        produced.extend(kcat_produce(&cluster, topic, p, "kcat", 25));
    }
    // Kafka's console producer: 600 keyed records, placed by the Java partitioner (murmur2 of the key).
    let java: Vec<Record> = (0..600)
        .map(|i| {
            let key = format!("k{i}");
            (java_partition(&key, 12), key, format!("java-{i}"))
        })
        .collect();
    let java_partitions: BTreeSet<i32> = java.iter().map(|r| r.0).collect();
    assert_eq!(java_partitions.len(), 12, "the keys do not cover every partition");
    let input: String = java.iter().map(|(_, k, v)| format!("{k}:{v}\n")).collect();
    let bootstrap = cluster.bootstrap();
    let out = kafka_tool_stdin(
        "4",
        "console-producer",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            topic,
            "--producer-property",
            "acks=all",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        input.as_bytes(),
        120,
    );
    cluster.expect_ok("kafka-console-producer", &out);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("ERROR"),
        "the console producer logged errors:\n{}\n{}",
        tail(&out.stderr, 40),
        cluster.logs()
    );
    produced.extend(java);
    let expected = sorted(produced);
    let expected_counts = per_partition(&expected);

    // kcat reads every record back from its partition.
    let read = sorted(kcat_consume(&cluster, topic));
    assert_eq!(
        per_partition(&read),
        expected_counts,
        "records per partition read by kcat (left) vs produced (right)\n{}",
        cluster.logs()
    );
    assert_eq!(read, expected, "kcat read other records than were produced");

    // Kafka's console consumer in a group reads the same records and commits its offsets on exit.
    let group = "spread-readers";
    let max = expected.len().to_string();
    let out = kafka_tool(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--max-messages",
            &max,
            "--timeout-ms",
            "60000",
            "--property",
            "print.partition=true",
            "--property",
            "print.key=true",
        ],
    );
    let stdout = cluster.expect_ok("kafka-console-consumer --group", &out);
    let consumed: Vec<Record> = stdout
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let partition = cols.first()?.strip_prefix("Partition:")?.parse().ok()?;
            (cols.len() >= 3).then(|| {
                (
                    partition,
                    cols[cols.len() - 2].to_string(),
                    cols[cols.len() - 1].to_string(),
                )
            })
        })
        .collect();
    let consumed = sorted(consumed);
    assert_eq!(
        per_partition(&consumed),
        expected_counts,
        "records per partition read by the console consumer (left) vs produced (right); stderr:\n{}\n{}",
        tail(&out.stderr, 30),
        cluster.logs()
    );
    assert_eq!(
        consumed, expected,
        "the console consumer read other records than were produced"
    );

    // kafka-consumer-groups shows the group on all 12 partitions, everything committed: lag 0.
    let config = cluster.client_config.display().to_string();
    let out = kafka_tool(
        "4",
        "consumer-groups",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--command-config",
            &config,
            "--describe",
            "--group",
            group,
        ],
    );
    let text = cluster.expect_ok("kafka-consumer-groups --describe", &out);
    let mut rows: BTreeMap<i32, (i64, i64, i64)> = BTreeMap::new();
    for cols in text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()) {
        if cols.len() >= 6 && cols[0] == group && cols[1] == topic {
            let num = |i: usize| -> i64 {
                cols[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("column {i} of {cols:?} in:\n{text}"))
            };
            rows.insert(num(2) as i32, (num(3), num(4), num(5)));
        }
    }
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>(),
        "kafka-consumer-groups --describe should list all 12 partitions:\n{text}"
    );
    for (p, (committed, end, lag)) in &rows {
        assert_eq!(
            (*committed, *lag),
            (*end, 0),
            "partition {p}: committed {committed}, log end {end}, lag {lag}:\n{text}"
        );
        assert_eq!(
            *end as usize, expected_counts[p],
            "log end offset of partition {p}:\n{text}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// 2. Coordinator fail-over, loss of quorum, and a restart of everything
// ------------------------------------------------------------------------------------------------

#[test]
fn coordinator_leader_failover_keeps_brokers_registered() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    cluster.create_topic("before", 3, 1);
    cluster.wait_all_led("before", 3);
    let mut produced: Vec<Record> = Vec::new();
    for p in 0..3 {
        produced.extend(kcat_produce(&cluster, "before", p, "before", 20));
    }

    // kill -9 the Raft leader: another is elected, and topic creation through a broker works again.
    let old_leader = cluster.wait_leader();
    let killed_at = Instant::now();
    cluster.coordinator_mut(old_leader).kill9();
    let new_leader = cluster.wait_until(
        &format!("a coordinator other than {old_leader} to lead"),
        Duration::from_secs(20),
        || match cluster.leader() {
            Some(l) if l != old_leader => Ok(l),
            other => Err(format!("leader {other:?}")),
        },
    );
    eprintln!(
        "coordinator {new_leader} leads {:?} after the kill -9 of {old_leader}",
        killed_at.elapsed()
    );
    cluster.create_topic_retrying("after-failover", 3, Duration::from_secs(30));

    // The brokers stay registered throughout: for two session timeouts after the kill, every broker's
    // Metadata names all three.
    let window_end = killed_at + cluster.session_timeout * 2 + Duration::from_secs(1);
    while Instant::now() < window_end {
        for via in 1..=3 {
            let named = broker_ids(&cluster.metadata_via(via));
            assert_eq!(
                named,
                BTreeSet::from([1, 2, 3]),
                "{:?} after the coordinator leader's kill -9, Metadata via broker {via} names brokers {named:?}\n{}",
                killed_at.elapsed(),
                cluster.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.wait_registered(&[1, 2, 3]);
    cluster.wait_all_led("after-failover", 3);

    // The killed coordinator restarts and catches up.
    cluster.coordinator_mut(old_leader).spawn();
    cluster.wait_until("the restarted coordinator to catch up", Duration::from_secs(20), || {
        let leader = cluster.leader().ok_or("no leader")?;
        let (_, _, q) = quorum(&cluster.coordinator(leader).address()).ok_or("leader stopped answering")?;
        let p = &q.topics[0].partitions[0];
        let offsets: Vec<(i32, i64)> = p
            .current_voters
            .iter()
            .map(|v| (v.replica_id.0, v.log_end_offset))
            .collect();
        if offsets.len() == 3 && offsets.iter().all(|(_, end)| *end == p.high_watermark) {
            Ok(())
        } else {
            Err(format!(
                "high watermark {}, voters' log end offsets {offsets:?}",
                p.high_watermark
            ))
        }
    });

    // Two of three coordinators down: creating a topic fails with a clear error and creates nothing.
    let leader = cluster.wait_leader();
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.coordinator_mut(leader).kill9();
    cluster.coordinator_mut(follower).kill9();
    let started = Instant::now();
    let out = cluster.topics(&as_strs(&create_args("minority", 3, 1)));
    let text = output_text(&out);
    eprintln!(
        "kafka-topics --create with only one of three coordinators up ({:?}, {}):\n{}",
        started.elapsed(),
        out.status,
        tail_text(&text, 20)
    );
    assert!(
        !out.status.success() && !text.contains("Created topic"),
        "a topic was created without a coordinator quorum:\n{text}\n{}",
        cluster.logs()
    );
    let lower = text.to_lowercase();
    assert!(
        ["quorum", "timeout", "timed out", "controller"]
            .iter()
            .any(|w| lower.contains(w)),
        "the error should say that there is no quorum or that the request timed out:\n{text}\n{}",
        cluster.logs()
    );
    let topics = topic_names(&cluster.metadata_via(1));
    assert!(
        !topics.contains("minority"),
        "the refused topic is in Metadata via broker 1: {topics:?}\n{}",
        cluster.logs()
    );

    // One comes back: creation works again, and the refused topic never happened.
    cluster.coordinator_mut(follower).spawn();
    cluster.create_topic_retrying("recovered", 3, Duration::from_secs(30));
    cluster.wait_all_led("recovered", 3);
    // The refusal said the write is applied if the quorum returns (Kafka's REQUEST_TIMED_OUT: the outcome
    // is unknown): the lone leader may have appended it, and then it commits now. Either way there is
    // one answer everywhere, and creating it again is either done or "already exists".
    let again = cluster.topics(&as_strs(&create_args("minority", 3, 1)));
    let again_text = output_text(&again);
    assert!(
        again.status.success() || again_text.contains("already exists"),
        "creating the refused topic after recovery:\n{again_text}\n{}",
        cluster.logs()
    );

    // Stop everything, start everything: topics and records are back.
    cluster.stop_all();
    cluster.start_all();
    cluster.wait_registered(&[1, 2, 3]);
    for topic in ["before", "after-failover", "recovered", "minority"] {
        cluster.wait_all_led(topic, 3);
    }
    let read = sorted(kcat_consume(&cluster, "before"));
    assert_eq!(
        read,
        sorted(produced),
        "the records produced before the restart of everything\n{}",
        cluster.logs()
    );
}

// ------------------------------------------------------------------------------------------------
// 3. A killed broker is fenced, and rejoins with its data
// ------------------------------------------------------------------------------------------------

#[test]
fn killed_broker_is_fenced_and_rejoins_with_its_data() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topic = "keyed";
    cluster.create_topic(topic, 6, 1);
    let leaders = cluster.wait_all_led(topic, 6);
    let on_2: BTreeSet<i32> = leaders.iter().filter(|(_, l)| **l == 2).map(|(p, _)| *p).collect();
    assert!(
        !on_2.is_empty(),
        "broker 2 leads none of the 6 partitions: {leaders:?}\n{}",
        cluster.logs()
    );
    for id in [1, 2, 3] {
        let health = common::http_get(cluster.broker(id).metrics_port(), "/health");
        assert!(
            health.starts_with("HTTP/1.1 200") && health.contains("registered (broker epoch"),
            "broker {id} /health should say it is registered and unfenced:\n{health}"
        );
    }
    let mut produced: Vec<Record> = Vec::new();
    for p in 0..6 {
        produced.extend(kcat_produce(&cluster, topic, p, "before", 20));
    }

    // kill -9 broker 2: within its session timeout (plus slack) broker 1 no longer names it, and its
    // partitions have no leader (replication factor 1: nowhere to move them).
    let killed_at = Instant::now();
    cluster.broker_mut(2).kill9();
    let limit = cluster.session_timeout + Duration::from_secs(6);
    cluster.wait_until(
        "broker 2 to leave Metadata via broker 1 and its partitions to lose their leader",
        limit,
        || {
            let m = cluster.try_metadata_via(1)?;
            let brokers = broker_ids(&m);
            let leaders = partition_leaders(&m, topic);
            let offline = on_2.iter().all(|p| leaders.get(p) == Some(&-1));
            let others_led = leaders.iter().all(|(p, l)| on_2.contains(p) || (*l >= 0 && *l != 2));
            if !brokers.contains(&2) && offline && others_led && leaders.len() == 6 {
                Ok(())
            } else {
                Err(format!(
                    "brokers {brokers:?}, leaders {leaders:?} (broker 2 led {on_2:?})"
                ))
            }
        },
    );
    eprintln!("broker 2 fenced {:?} after its kill -9", killed_at.elapsed());
    let (rows, text) = cluster.describe(topic);
    for r in &rows {
        if on_2.contains(&r.partition) {
            assert_eq!(
                r.leader, None,
                "partition {} of the dead broker 2:\n{text}",
                r.partition
            );
        } else {
            assert!(
                r.leader.is_some_and(|l| l != 2),
                "partition {} should keep its leader:\n{text}",
                r.partition
            );
        }
    }

    // The other partitions keep taking writes.
    for p in (0..6).filter(|p| !on_2.contains(p)) {
        produced.extend(kcat_produce(&cluster, topic, p, "during", 10));
    }

    // Broker 2 restarts (the harness waits until it accepts connections, i.e. has registered), rejoins
    // and leads its partitions again.
    let restarted_at = Instant::now();
    cluster.broker_mut(2).restart();
    cluster.wait_until(
        "broker 2 to be back in Metadata via broker 1, leading its partitions",
        Duration::from_secs(15),
        || {
            let m = cluster.try_metadata_via(1)?;
            let brokers = broker_ids(&m);
            let now = partition_leaders(&m, topic);
            if brokers == BTreeSet::from([1, 2, 3]) && now == leaders {
                Ok(())
            } else {
                Err(format!(
                    "brokers {brokers:?}, leaders {now:?} (before the kill: {leaders:?})"
                ))
            }
        },
    );
    eprintln!("broker 2 rejoined {:?} after its restart", restarted_at.elapsed());
    cluster.wait_registered(&[1, 2, 3]);

    let read = sorted(kcat_consume(&cluster, topic));
    let expected = sorted(produced);
    assert_eq!(
        per_partition(&read),
        per_partition(&expected),
        "records per partition read (left) vs produced (right)\n{}",
        cluster.logs()
    );
    assert_eq!(read, expected, "records read vs produced");
}

/// Clients recover from leadership changes: Apache Kafka's Java producer (idempotent, acks=all, the
/// defaults) sends numbered records through broker 1 to six partitions while broker 2 is killed with
/// SIGKILL and restarted. Its partitions are offline meanwhile (NOT_LEADER_OR_FOLLOWER /
/// LEADER_NOT_AVAILABLE); the producer waits, finds the leader again and every number is in the topic
/// exactly once, in order per partition.
#[test]
fn java_producer_rides_out_a_broker_kill() {
    let _serial = serial();
    const COUNT: u64 = 200_000;
    let mut cluster = Cluster::start();
    let topic = "numbers";
    cluster.create_topic(topic, 6, 1);
    cluster.wait_all_led(topic, 6);
    let work = tempfile::tempdir().unwrap();
    let classpath = numbered_producer_classpath(work.path());
    let log4j = tool_cache().join("kafka-4/log4j2.properties");
    let (out_path, err_path) = (work.path().join("producer.out"), work.path().join("producer.err"));
    let mut producer = std::process::Command::new("java")
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(&classpath)
        .arg("NumberedProducer")
        .arg(cluster.bootstrap())
        .arg(topic)
        .arg(COUNT.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start java");
    let high_watermarks = |cluster: &Cluster| -> i64 {
        let script = r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "progress"})
total = 0
for p in range(6):
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition("numbers", p), timeout=5)
        total += hi
    except Exception:
        pass
print(total)
"#;
        python(script, &cluster.bootstrap())
            .stdout
            .iter()
            .map(|b| *b as char)
            .collect::<String>()
            .trim()
            .parse()
            .unwrap_or(0)
    };
    wait_for("a fifth of the records", Duration::from_secs(120), || {
        high_watermarks(&cluster) >= (COUNT / 5) as i64
    });
    assert!(
        producer.try_wait().expect("try_wait").is_none(),
        "the producer finished before broker 2 was killed: the test would prove nothing"
    );
    cluster.broker_mut(2).kill9();
    std::thread::sleep(Duration::from_secs(2));
    cluster.broker_mut(2).restart();
    let during = high_watermarks(&cluster);
    assert!(
        during < COUNT as i64,
        "all records were in before broker 2 came back ({during}): nothing was retried"
    );

    let status = wait_child(&mut producer, Duration::from_secs(240));
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success() && stdout.trim() == format!("acked={COUNT} failed=0"),
        "the producer did not get every record acknowledged: {stdout}\n{}\n{}",
        tail(stderr.as_bytes(), 30),
        cluster.logs()
    );
    let script = r#"
import os
from confluent_kafka import Consumer, TopicPartition
count = int(os.environ["COUNT"])
seen = bytearray(count)
for p in range(6):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "check", "check.crcs": True})
    lo, hi = c.get_watermark_offsets(TopicPartition("numbers", p), timeout=10)
    rows = consume_all("numbers", p, hi - lo, timeout=120)
    last = -1
    for off, key, value, _ in rows:
        n = int(value)
        if seen[n]:
            fail(f"number {n} appears twice (again at partition {p} offset {off})")
        seen[n] = 1
        if n <= last:
            fail(f"partition {p}: {n} after {last} at offset {off}: out of order")
        last = n
missing = [i for i in range(count) if not seen[i]]
if missing:
    fail(f"{len(missing)} numbers missing, first {missing[:5]}")
print("ok", count)
"#;
    let count = COUNT.to_string();
    let out = python_env_ok(script, &cluster.bootstrap(), &[("COUNT", &count)]);
    assert_eq!(out.trim(), format!("ok {COUNT}"));
}

/// A topic deleted and created again (same name, new topic id) while one of its brokers was down must
/// not get that broker's old records: the broker sees the id in `partition.metadata` differ and drops
/// the old data when it returns.
#[test]
fn recreated_topic_does_not_resurrect_old_data() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topic = "reborn";
    cluster.topics_ok(&["--create", "--topic", topic, "--replica-assignment", "2,2,2"]);
    cluster.wait_all_led(topic, 3);
    for p in 0..3 {
        kcat_produce(&cluster, topic, p, "old", 10);
    }
    let status = cluster.broker_mut(2).stop();
    assert!(status.success(), "broker 2 exited with {status}\n{}", cluster.logs());
    cluster.topics_ok(&["--delete", "--topic", topic]);
    cluster.wait_until("the deletion to reach broker 1", Duration::from_secs(10), || {
        let m = cluster.try_metadata_via(1)?;
        match topic_names(&m).contains(topic) {
            false => Ok(()),
            true => Err("still listed".into()),
        }
    });
    cluster.topics_ok(&["--create", "--topic", topic, "--replica-assignment", "2,2,2"]);
    cluster.broker_mut(2).restart();
    cluster.wait_all_led(topic, 3);
    let read = kcat_consume(&cluster, topic);
    assert!(
        read.is_empty(),
        "the re-created topic must start empty, but returned the old topic's records: {:?}\n{}",
        &read[..read.len().min(5)],
        cluster.logs()
    );
    let log = cluster.broker(2).log_text();
    assert!(
        log.contains("belongs to an earlier topic of the same name"),
        "broker 2 should say why it dropped the old data\n{}",
        cluster.logs()
    );
    kcat_produce(&cluster, topic, 0, "new", 5);
    assert_eq!(kcat_consume(&cluster, topic).len(), 5, "{}", cluster.logs());
}

// ------------------------------------------------------------------------------------------------
// 4. A duplicate broker.id is refused
// ------------------------------------------------------------------------------------------------

/// Whether the log says that `broker.id` `id` is already registered: a line with "already", and
/// "broker.id" followed by the id (`broker.id=1`, `broker.id 1`, `broker.id: 1`, ...).
fn says_already_registered(log: &str, id: i32) -> bool {
    let lower = log.to_lowercase();
    let id = id.to_string();
    let names_id = lower.lines().any(|line| {
        let tokens: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || "=:,;()[]{}'\"`".contains(c))
            .filter(|t| !t.is_empty())
            .map(|t| t.trim_end_matches('.'))
            .collect();
        tokens.windows(2).any(|w| w[0] == "broker.id" && w[1] == id)
    });
    names_id && lower.lines().any(|l| l.contains("already"))
}

#[test]
fn duplicate_broker_id_is_refused_on_the_newcomer() {
    let _serial = serial();
    let cluster = Cluster::start();
    let mut config = cluster.broker_config(1, None);
    config.retain(|(k, _)| k != "initial.broker.registration.timeout.ms");
    config.push(("initial.broker.registration.timeout.ms".to_string(), "8000".to_string()));
    let overrides: Vec<(&str, &str)> = config.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let started = Instant::now();
    let mut newcomer = Broker::launch(&overrides);
    let status = newcomer.wait_exit(Duration::from_secs(20));
    let log = newcomer.log_text();
    eprintln!(
        "---- the second broker with broker.id=1 ({:?}, {status:?}) ----\n{}\n----",
        started.elapsed(),
        tail_text(&log, 40)
    );
    let status = status.unwrap_or_else(|| {
        panic!(
            "a second broker with broker.id=1 still runs 20 s after it started: it should have been refused \
             and exited\n{}\n{}",
            newcomer.log_tail(40),
            cluster.logs()
        )
    });
    assert!(
        !status.success(),
        "the refused broker exited with {status}, not an error\n{}",
        newcomer.log_tail(40)
    );
    assert!(
        says_already_registered(&log, 1),
        "the refused broker's log should say that broker.id 1 is already registered:\n{}",
        newcomer.log_tail(40)
    );

    // Broker 1 keeps its registration (at its own port) and keeps serving.
    cluster.wait_registered(&[1, 2, 3]);
    let named = broker_ids(&cluster.metadata_via(1));
    assert_eq!(
        named,
        BTreeSet::from([1, 2, 3]),
        "Metadata via broker 1\n{}",
        cluster.logs()
    );
    cluster.create_topic("after-duplicate", 3, 1);
    cluster.wait_all_led("after-duplicate", 3);
    let mut produced = Vec::new();
    for p in 0..3 {
        produced.extend(kcat_produce(&cluster, "after-duplicate", p, "ok", 5));
    }
    assert_eq!(
        sorted(kcat_consume(&cluster, "after-duplicate")),
        sorted(produced),
        "records through broker 1 after the refusal"
    );
}

// ------------------------------------------------------------------------------------------------
// 5. Controlled shutdown
// ------------------------------------------------------------------------------------------------

#[test]
fn controlled_shutdown_moves_leadership_at_once() {
    let _serial = serial();
    let mut cluster = Cluster::start_with(Options {
        session_timeout_ms: 10_000,
        ..Options::default()
    });
    let topic = "moving";
    cluster.create_topic(topic, 3, 1);
    let leaders = cluster.wait_all_led(topic, 3);
    let on_3: BTreeSet<i32> = leaders.iter().filter(|(_, l)| **l == 3).map(|(p, _)| *p).collect();
    assert!(
        !on_3.is_empty(),
        "broker 3 leads none of the 3 partitions: {leaders:?}\n{}",
        cluster.logs()
    );

    // SIGTERM: the broker tells the controller it is shutting down; with a 10 s session timeout, only that
    // can make it leave Metadata within 3 s.
    let signalled = Instant::now();
    cluster.broker(3).sigterm();
    let gone_after = cluster.wait_until(
        "broker 3 to leave Metadata via broker 1 (controlled shutdown), well before its 10 s session timeout",
        Duration::from_secs(3),
        || {
            let m = cluster.try_metadata_via(1)?;
            let brokers = broker_ids(&m);
            let now = partition_leaders(&m, topic);
            if !brokers.contains(&3) && now.len() == 3 && now.values().all(|l| *l != 3) {
                Ok(signalled.elapsed())
            } else {
                Err(format!(
                    "{:?} after SIGTERM: brokers {brokers:?}, leaders {now:?}",
                    signalled.elapsed()
                ))
            }
        },
    );
    eprintln!("broker 3 left Metadata {gone_after:?} after SIGTERM");
    let status = cluster.broker_mut(3).stop();
    assert!(
        status.success(),
        "broker 3 exited with {status} after SIGTERM\n{}",
        cluster.logs()
    );
    cluster.wait_registered(&[1, 2]);
}

// ------------------------------------------------------------------------------------------------
// 6. Replica placement with racks
// ------------------------------------------------------------------------------------------------

#[test]
fn rack_aware_placement() {
    let _serial = serial();
    let cluster = Cluster::start_with(Options {
        racks: Some(["a", "b", "c"]),
        ..Options::default()
    });
    let m = cluster.metadata_via(1);
    let racks: BTreeMap<i32, String> = m
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.rack.as_ref().map(|r| r.to_string()).unwrap_or_default()))
        .collect();
    assert_eq!(
        racks,
        BTreeMap::from([(1, "a".to_string()), (2, "b".to_string()), (3, "c".to_string())]),
        "broker racks in Metadata via broker 1\n{}",
        cluster.logs()
    );

    // Replication factor 3 is refused until brokers replicate (a replica without data would be a lie);
    // placement of RF > 1 over racks is unit-tested in coordinator/placement.rs.
    let refused = cluster.topics(&as_strs(&create_args("racked", 3, 3)));
    let text = output_text(&refused);
    assert!(
        !refused.status.success() && text.contains("Use replication factor 1"),
        "RF 3 must be refused with the reason:\n{text}"
    );

    // Replication factor 1, 6 partitions: two leaders per broker (per rack).
    cluster.create_topic("six", 6, 1);
    let (rows, text) = cluster.describe("six");
    assert_eq!(rows.len(), 6, "--describe six:\n{text}");
    let leaders: Vec<i32> = rows
        .iter()
        .map(|r| {
            let leader = r
                .leader
                .unwrap_or_else(|| panic!("partition {} has no leader:\n{text}", r.partition));
            assert_eq!(r.replicas, vec![leader], "partition {} replicas:\n{text}", r.partition);
            leader
        })
        .collect();
    assert_eq!(
        leader_counts(leaders),
        BTreeMap::from([(1, 2), (2, 2), (3, 2)]),
        "each broker should lead 2 of the 6 partitions:\n{text}"
    );
}

#[test]
fn murmur2_matches_kafka() {
    // Kafka's own test vectors (UtilsTest.testMurmur2).
    for (input, hash) in [
        ("21", -973_932_308),
        ("foobar", -790_332_482),
        ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        ("abc", 479_470_107),
    ] {
        assert_eq!(murmur2(input.as_bytes()), hash, "murmur2({input:?})");
    }
}
