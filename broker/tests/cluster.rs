//! Issue 4's acceptance: brokers that join the coordinator ensemble, as real processes on loopback driven
//! by real clients (the fixture is `common/cluster.rs`; broker failures are in `cluster_faults.rs`).
//! The tests prove that:
//!
//! 1. the controller spreads partitions over the brokers (12 partitions: each broker leads 4), and Kafka's
//!    Java tools and kcat (librdkafka) produce to and consume from all of them through one bootstrap
//!    address, in a consumer group whose committed offsets leave no lag; `kafka-metadata-quorum` works
//!    through a broker;
//! 2. the brokers stay registered while the coordinator leader is killed -9 and another is elected;
//!    without a quorum, creating a topic fails with a clear error (and, as the error says, is applied
//!    if the quorum returns, never contradicted); after stopping everything and starting it again, the
//!    topics and records are back;
//! 4. a second broker with a registered `broker.id` is refused and exits, and the first keeps serving;
//! 5. a SIGTERM'd broker leaves Metadata at once (controlled shutdown), long before its session timeout;
//! 6. brokers' racks are in Metadata, leaders spread evenly, and a replication factor above 1 is refused
//!    with the reason until brokers replicate;
//! 7. users' SCRAM credentials and client quotas set through one broker reach every broker, also after
//!    the coordinator leader stops;
//! 8. after its first image, a broker follows metadata by deltas (issue 15), and all brokers agree;
//! 9. a broker refusing a Produce or Fetch because it does not lead the partition names the leader
//!    (KIP-951).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::coordinator::quorum;
use common::*;

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
        status.contains(&format!("LeaderId:               {leader}"))
            && status
                .lines()
                .find(|l| l.starts_with("CurrentVoters:"))
                .is_some_and(|l| l.matches("\"id\": ").count() == 3),
        "metadata-quorum via broker 1 should show leader {leader} and three voters:\n{status}"
    );

    // --replication: the three voters, and the three brokers as observers following the metadata log.
    let out = kafka_tool(
        "4",
        "metadata-quorum",
        &["--bootstrap-server", &cluster.bootstrap(), "describe", "--replication"],
    );
    let replication = expect_success("kafka-metadata-quorum describe --replication", &out);
    let observers: BTreeSet<String> = replication
        .lines()
        .filter(|l| l.contains("Observer"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(
        observers,
        BTreeSet::from(["1".to_string(), "2".to_string(), "3".to_string()]),
        "brokers 1-3 should be the quorum's observers:\n{replication}"
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

    // Idempotent producers still start: InitProducerId hands out an id from the block each broker fetched
    // ahead of time (`producer_ids`), without asking the controller (before, it waited for the controller
    // and the producer gave up). The records are read back after the restart of everything below.
    for p in 0..3 {
        produced.extend(kcat_produce_with(
            &cluster,
            "before",
            p,
            "no-quorum",
            5,
            &["enable.idempotence=true"],
        ));
    }

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

    // Replication factor 3 over three racks: every partition has a replica in each rack.
    cluster.create_topic("racked", 3, 3);
    let (rows, text) = cluster.describe("racked");
    assert_eq!(rows.len(), 3, "--describe racked:\n{text}");
    for r in &rows {
        let mut replicas = r.replicas.clone();
        replicas.sort_unstable();
        assert_eq!(
            replicas,
            vec![1, 2, 3],
            "partition {} replicas span the racks:\n{text}",
            r.partition
        );
    }

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

/// The controller advertises its `server.N` host (what DescribeCluster says); when that name does not
/// resolve where the broker runs (a name only the coordinators' network knows, or `0.0.0.0`), the broker
/// still reaches it through the address in `zookeeper.connect`.
#[test]
fn brokers_use_zookeeper_connect_when_the_controllers_advertised_host_does_not_resolve() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (port, peer) = (free_port(), free_port());
    let data_dir = dir.path().join("zk");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("myid"), "1\n").unwrap();
    let props = format!(
        "dataDir={}\nclientPort={port}\nmetrics.port=-1\nserver.1=no-such-host.invalid:{peer}:{}\n",
        data_dir.display(),
        peer + 1
    );
    let _zk = common::coordinator::Coordinator::start(dir.path(), "zk", &props, port);
    let connect = format!("127.0.0.1:{port}");
    let broker = Broker::start(&[
        ("broker.id", "1"),
        ("zookeeper.connect", connect.as_str()),
        ("initial.broker.registration.timeout.ms", "15000"),
    ]);
    create_topic(&broker, "reached", 1);
    assert!(
        broker.log_text().contains("registered with the coordinator ensemble"),
        "{}",
        broker.log_tail(20)
    );
}

/// Users' SCRAM credentials and client quotas live in the metadata log: set through one broker, every
/// broker describes them (and so logs users in and throttles clients by them), also after the
/// coordinator leader changes.
#[test]
fn credentials_and_quotas_set_through_one_broker_reach_every_broker() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let configs = |via: i32, args: &[&str]| {
        let bootstrap = cluster.broker(via).bootstrap();
        let mut full = vec!["--bootstrap-server", bootstrap.as_str()];
        full.extend_from_slice(args);
        output_text(&kafka_tool_timeout("4", "configs", &full, 90))
    };
    let set = configs(
        1,
        &[
            "--alter",
            "--user",
            "alice",
            "--add-config",
            "SCRAM-SHA-512=[password=alice-secret]",
        ],
    );
    assert!(set.contains("Completed updating config for user alice."), "{set}");
    let set = configs(
        1,
        &["--alter", "--client", "app", "--add-config", "producer_byte_rate=2048"],
    );
    assert!(set.contains("Completed updating config for client app."), "{set}");
    let everywhere = |cluster: &Cluster| {
        cluster.wait_until(
            "every broker describes the credential and the quota",
            Duration::from_secs(20),
            || {
                for id in 1..=3 {
                    let bootstrap = cluster.broker(id).bootstrap();
                    let users = kafka_tool_timeout(
                        "4",
                        "configs",
                        &["--bootstrap-server", &bootstrap, "--describe", "--user", "alice"],
                        90,
                    );
                    let clients = kafka_tool_timeout(
                        "4",
                        "configs",
                        &["--bootstrap-server", &bootstrap, "--describe", "--client", "app"],
                        90,
                    );
                    let text = format!("{}{}", output_text(&users), output_text(&clients));
                    if !text.contains(
                        "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-512=iterations=4096",
                    ) || !text.contains("Quota configs for client-id 'app' are producer_byte_rate=2048.0")
                    {
                        return Err(format!("broker {id}: {text}"));
                    }
                }
                Ok(())
            },
        )
    };
    everywhere(&cluster);
    let leader = cluster.wait_leader();
    cluster.coordinator_mut(leader).stop();
    everywhere(&cluster);
}

// ------------------------------------------------------------------------------------------------
// 8. Brokers follow metadata by deltas (issue 15): after its first image, a broker gets only what
//    changed, and every broker still ends at the same topics
// ------------------------------------------------------------------------------------------------

#[test]
fn brokers_follow_metadata_by_deltas_and_agree() {
    let _serial = serial();
    let cluster = Cluster::start();
    let sent = |name: &str| -> f64 {
        cluster
            .coordinator_metrics_ports
            .iter()
            .map(|&port| metric_value(port, name))
            .sum()
    };
    // Every broker has its first image once its Metadata names the three brokers.
    for id in 1..=3 {
        cluster.wait_until(
            &format!("broker {id}'s Metadata to name brokers 1-3"),
            Duration::from_secs(20),
            || {
                let named = broker_ids(&cluster.try_metadata_via(id)?);
                (named == BTreeSet::from([1, 2, 3]))
                    .then_some(())
                    .ok_or(format!("{named:?}"))
            },
        );
    }
    let images_at_start = sent("oxka_coordinator_metadata_images_sent_total");
    // 40 topics in one CreateTopics, 10 of them deleted, one grown: 51 metadata changes.
    let script = r#"
import os
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions
admin = AdminClient({"bootstrap.servers": os.environ["BOOTSTRAP"]})
for f in admin.create_topics([NewTopic(f"d{i}", 2, 1) for i in range(40)], request_timeout=30).values():
    f.result(timeout=60)
for f in admin.delete_topics([f"d{i}" for i in range(10)], request_timeout=30).values():
    f.result(timeout=60)
for f in admin.create_partitions([NewPartitions("d10", 4)], request_timeout=30).values():
    f.result(timeout=60)
"#;
    cluster.expect_ok("create, delete and grow topics", &python(script, &cluster.bootstrap()));

    let want: BTreeMap<String, usize> = (10..40)
        .map(|i| (format!("d{i}"), if i == 10 { 4 } else { 2 }))
        .collect();
    for id in 1..=3 {
        cluster.wait_until(
            &format!("broker {id}'s Metadata to show topics d10..d39 (d10 with 4 partitions)"),
            Duration::from_secs(20),
            || {
                let m = cluster.try_metadata_via(id)?;
                let seen: BTreeMap<String, usize> = m
                    .topics
                    .iter()
                    .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.partitions.len())))
                    .filter(|(name, _)| name.starts_with('d'))
                    .collect();
                if seen == want {
                    Ok(())
                } else {
                    Err(format!("{seen:?}"))
                }
            },
        );
    }
    let images = sent("oxka_coordinator_metadata_images_sent_total") - images_at_start;
    let deltas = sent("oxka_coordinator_metadata_deltas_sent_total");
    println!("metadata answers to 3 brokers over 51 changes: {images} whole images, {deltas} deltas");
    assert!(
        deltas >= 3.0,
        "each broker should have followed the changes by deltas (got {deltas}):\n{}",
        cluster.logs()
    );
    assert_eq!(
        images,
        0.0,
        "brokers that already had an image should get no other whole image:\n{}",
        cluster.logs()
    );
}

// ------------------------------------------------------------------------------------------------
// 9. KIP-951: a refusal names the partition's leader
// ------------------------------------------------------------------------------------------------

/// A broker that does not lead a partition refuses a Produce (v10+) and a Fetch (v16+) for it with
/// NOT_LEADER_OR_FOLLOWER and names the leader it knows: id, leader epoch, and its endpoint for the
/// client's listener, as Apache Kafka 3.7+ answers (KIP-951). Java clients then send to the new leader
/// without a Metadata round trip and without backing off, which is what keeps produce latency low
/// while leadership moves in a rolling restart (issue 11). Older versions carry no such fields.
#[test]
fn a_refused_produce_or_fetch_names_the_partitions_leader() {
    use common::raw::{decode, read_frame, Connection};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    let cluster = Cluster::start();
    let topic = "hints";
    cluster.create_topic(topic, 1, 3);
    let leader = cluster.wait_all_led(topic, 1)[&0];
    let other = (1..=3).find(|b| *b != leader).unwrap();
    let m = cluster.metadata_via(other);
    let partition = &m
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
        .unwrap()
        .partitions[0];
    assert_eq!(partition.leader_id.0, leader);
    let epoch = partition.leader_epoch;
    let listed = m.brokers.iter().find(|b| b.node_id.0 == leader).unwrap();

    let mut batch = bytes::BytesMut::new();
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(bytes::Bytes::from_static(b"to the wrong broker")),
        headers: Default::default(),
    };
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, [&record], &options).unwrap();
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.freeze()))])]);
    let mut conn = Connection::connect(&cluster.broker(other).bootstrap());
    for version in [9, 12] {
        conn.send(ApiKey::Produce, version, &produce);
        let (_, r): (_, ProduceResponse) = decode(ApiKey::Produce, version, read_frame(&mut conn.stream));
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            p.error_code, 6,
            "Produce v{version} to broker {other}, which does not lead: {r:?}"
        );
        let named = (p.current_leader.leader_id.0, p.current_leader.leader_epoch);
        let endpoints: Vec<_> = r
            .node_endpoints
            .iter()
            .map(|n| (n.node_id.0, n.host.to_string(), n.port))
            .collect();
        if version < 10 {
            assert_eq!(named, (-1, -1), "Produce v{version} has no current leader: {r:?}");
            assert!(endpoints.is_empty(), "{r:?}");
        } else {
            assert_eq!(named, (leader, epoch), "Produce v{version}: {r:?}");
            assert_eq!(
                endpoints,
                vec![(leader, listed.host.to_string(), listed.port)],
                "Produce v{version}: {r:?}"
            );
        }
    }

    let fetch = |version: i16| {
        let mut wanted = FetchTopic::default().with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_current_leader_epoch(-1)
            .with_partition_max_bytes(1 << 20)]);
        if version >= 13 {
            let id = m
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
                .unwrap()
                .topic_id;
            wanted = wanted.with_topic_id(id);
        } else {
            wanted = wanted.with_topic(TopicName(StrBytes::from_static_str(topic)));
        }
        FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![wanted])
    };
    for version in [15, 16] {
        conn.send(ApiKey::Fetch, version, &fetch(version));
        let (_, r): (_, FetchResponse) = decode(ApiKey::Fetch, version, read_frame(&mut conn.stream));
        let p = &r.responses[0].partitions[0];
        assert_eq!(
            p.error_code, 6,
            "Fetch v{version} from broker {other}, which does not lead: {r:?}"
        );
        let endpoints: Vec<_> = r
            .node_endpoints
            .iter()
            .map(|n| (n.node_id.0, n.host.to_string(), n.port))
            .collect();
        if version < 16 {
            assert!(endpoints.is_empty(), "Fetch v{version} has no endpoints: {r:?}");
        } else {
            let named = (p.current_leader.leader_id.0, p.current_leader.leader_epoch);
            assert_eq!(named, (leader, epoch), "Fetch v{version}: {r:?}");
            assert_eq!(
                endpoints,
                vec![(leader, listed.host.to_string(), listed.port)],
                "Fetch v{version}: {r:?}"
            );
        }
    }
}
