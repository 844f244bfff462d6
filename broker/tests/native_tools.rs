//! The native tools (`oxka tool <name>`, `bin/kafka-<name>.sh`: broker-api-versions, topics, configs,
//! get-offsets; consumer-groups in `native_tools/consumer_groups.rs`) against Apache Kafka 4.x's tools of the
//! same name, run against the same broker, output compared line by line with only the differences
//! `docs/tools.md` documents normalized (see `common::tools_compare`): a single oxka broker, a
//! three-broker oxka cluster with a replication factor of 3 and a broker down, and a real Apache Kafka
//! 4.x broker (KRaft, started by `scripts/apache-kafka-broker.sh`).

mod common;
#[path = "native_tools/console.rs"]
mod console;
#[path = "native_tools/consumer_groups.rs"]
mod consumer_groups;
#[path = "native_tools/delete_records.rs"]
mod delete_records;
#[path = "native_tools/dump_log.rs"]
mod dump_log;
#[path = "native_tools/log_dirs.rs"]
mod log_dirs;
#[path = "native_tools/metadata_quorum.rs"]
mod metadata_quorum;
#[path = "native_tools/user_configs.rs"]
mod user_configs;

use std::process::Output;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::tools_compare::{api_versions_blocks, config_blocks, describe_blocks, native, stdout};
use common::{kafka_tool, serial, Broker, Target};

fn java(tool: &str, args: &[&str]) -> Output {
    kafka_tool("4", tool, args)
}

/// Runs `topics <args>` with both tools; asserts the same exit status and returns both stdouts.
fn topics_both(bootstrap: &str, args: &[&str]) -> (String, String) {
    let mut full = vec!["--bootstrap-server", bootstrap];
    full.extend_from_slice(args);
    let mut native_args = vec!["topics"];
    native_args.extend_from_slice(&full);
    let n = native(&native_args);
    let j = java("topics", &full);
    assert_eq!(
        n.status.success(),
        j.status.success(),
        "topics {args:?}: exit status differs\nnative: {n:?}\njava: {j:?}"
    );
    (stdout(&n), stdout(&j))
}

/// The same command gives the same output (describe output compared as sorted topic blocks).
fn assert_same_topics(bootstrap: &str, args: &[&str]) -> String {
    let (n, j) = topics_both(bootstrap, args);
    if args.contains(&"--describe") {
        assert_eq!(describe_blocks(&n), describe_blocks(&j), "topics {args:?}");
    } else {
        assert_eq!(n, j, "topics {args:?}");
    }
    n
}

/// `get-offsets <args>` prints the same with both tools, with the same exit status.
fn assert_same_offsets(bootstrap: &str, args: &[&str]) -> String {
    let mut full = vec!["--bootstrap-server", bootstrap];
    full.extend_from_slice(args);
    let mut native_args = vec!["get-offsets"];
    native_args.extend_from_slice(&full);
    let (n, j) = (native(&native_args), java("get-offsets", &full));
    assert_eq!(
        n.status.success(),
        j.status.success(),
        "get-offsets {args:?}\nnative: {n:?}\njava: {j:?}"
    );
    assert_eq!(stdout(&n), stdout(&j), "get-offsets {args:?}");
    stdout(&n)
}

/// The get-offsets cases every setup runs (the topic `topic` has records in partition 1).
fn assert_same_offsets_cases(bootstrap: &str, topic: &str) {
    let regex = format!("{}.*", &topic[..topic.len() - 1]);
    let one = format!("{topic}:1-");
    let latest = assert_same_offsets(bootstrap, &["--topic", topic]);
    assert!(latest.contains(&format!("{topic}:1:3\n")), "{latest}");
    for args in [
        &[][..],
        &["--topic", &regex, "--time", "-2"],
        &["--topic", topic, "--time", "earliest"],
        &["--topic", topic, "--time", "-3"],
        &["--topic", topic, "--time", "99999999999999"],
        &["--topic", topic, "--time", "0"],
        &["--topic", topic, "--partitions", "0,1"],
        &["--topic-partitions", &one],
        &["--topic", "nope"],
        &["--time", "bogus"],
    ] {
        assert_same_offsets(bootstrap, args);
    }
}

/// Runs `<tool> --bootstrap-server <bootstrap> <args>` with both tools; asserts the same exit status and
/// returns both outputs (native, Java).
fn run_both(tool: &str, bootstrap: &str, args: &[&str]) -> (Output, Output) {
    let mut full = vec!["--bootstrap-server", bootstrap];
    full.extend_from_slice(args);
    let mut native_args = vec![tool];
    native_args.extend_from_slice(&full);
    let (n, j) = (native(&native_args), java(tool, &full));
    assert_eq!(
        n.status.success(),
        j.status.success(),
        "{tool} {args:?}: exit status differs\nnative: {n:?}\njava: {j:?}"
    );
    (n, j)
}

/// `configs <args>` prints the same with both tools (describe output compared as sorted blocks).
fn assert_same_configs(bootstrap: &str, args: &[&str]) -> String {
    let (n, j) = run_both("configs", bootstrap, args);
    assert_eq!(
        config_blocks(&stdout(&n)),
        config_blocks(&stdout(&j)),
        "configs {args:?}"
    );
    stdout(&n)
}

/// `configs <args>` run once by each tool, the native one on names with `n-`, Kafka's on `j-`; the outputs
/// must be the same with the names swapped.
fn assert_same_configs_change(bootstrap: &str, args: &[&str]) -> String {
    let with = |prefix: &str| -> Vec<String> { args.iter().map(|a| a.replace("T-", prefix)).collect() };
    let (n_args, j_args) = (with("n-"), with("j-"));
    let mut full: Vec<&str> = vec!["configs", "--bootstrap-server", bootstrap];
    full.extend(n_args.iter().map(String::as_str));
    let n = native(&full);
    let mut full: Vec<&str> = vec!["--bootstrap-server", bootstrap];
    full.extend(j_args.iter().map(String::as_str));
    let j = java("configs", &full);
    assert_eq!(
        n.status.success(),
        j.status.success(),
        "configs {args:?}\nnative: {n:?}\njava: {j:?}"
    );
    assert_eq!(stdout(&n).replace("n-", "j-"), stdout(&j), "configs {args:?}");
    stdout(&n)
}

fn produce_three(bootstrap: &str, topic: &str) {
    let out = common::kcat(&["-P", "-b", bootstrap, "-t", topic, "-p", "1"], b"a\nb\nc\n");
    assert!(out.status.success(), "kcat: {out:?}");
}

fn assert_same_api_versions(bootstrap: &str) {
    let n = native(&["broker-api-versions", "--bootstrap-server", bootstrap]);
    let j = java("broker-api-versions", &["--bootstrap-server", bootstrap]);
    assert!(n.status.success() && j.status.success(), "native: {n:?}\njava: {j:?}");
    let (n, j) = (stdout(&n), stdout(&j));
    assert!(n.contains("\tApiVersions(18): "), "{n}");
    assert_eq!(
        api_versions_blocks(&n, &j),
        api_versions_blocks(&j, &n),
        "native:\n{n}\njava:\n{j}"
    );
}

#[test]
fn broker_api_versions_matches_kafkas_tool_on_oxka_and_errors_are_one_line() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    assert_same_api_versions(&broker.bootstrap());

    // Several bootstrap addresses: a dead one is skipped.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let list = format!("{dead},{}", broker.bootstrap());
    let out = native(&["broker-api-versions", "--bootstrap-server", &list]);
    assert!(out.status.success(), "{out:?}");

    // Nothing listening: one line naming the address, exit 1.
    let out = native(&["broker-api-versions", "--bootstrap-server", &dead]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("cannot connect to {dead}")), "{err}");

    // --help lists the tools; an unknown tool and a bad flag exit 1.
    let help = native(&["--help"]);
    assert!(
        help.status.success() && stdout(&help).contains("broker-api-versions"),
        "{help:?}"
    );
    assert!(stdout(&help).contains("topics"), "{help:?}");
    assert_eq!(native(&["no-such-tool"]).status.code(), Some(1));
    assert_eq!(
        native(&["topics", "--bootstrap-server", "x:1", "--bogus"])
            .status
            .code(),
        Some(1)
    );

    // A --command-config security line the tools do not speak is refused, naming the line; TLS
    // without a truststore says which key to set.
    let bootstrap = broker.bootstrap();
    for (text, expected) in [
        (
            "security.protocol=SASL_SSL\nsasl.login.class=x.Y\n",
            "line 2: sasl.login.class=x.Y: this security setting is not supported",
        ),
        ("security.protocol=SSL\n", "set ssl.truststore.location"),
    ] {
        let config = broker.temp_dir().join("client.properties");
        std::fs::write(&config, text).unwrap();
        let config = config.display().to_string();
        let out = native(&[
            "topics",
            "--bootstrap-server",
            &bootstrap,
            "--list",
            "--command-config",
            &config,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn topics_matches_kafkas_tool_on_one_oxka_broker() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    // Changes are made once by each tool, each on its own topic, and their outputs compared with the
    // names swapped.
    let changes: &[&[&str]] = &[
        &[
            "--create",
            "--topic",
            "T-a",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=1000",
        ],
        &["--create", "--topic", "T.b_c", "--partitions", "1"],
        &["--create", "--topic", "T-a", "--partitions", "1"],
        &["--create", "--topic", "T-a", "--if-not-exists"],
        &["--create", "--topic", "T-z", "--partitions", "0"],
        &["--create", "--topic", "T-z", "--replication-factor", "0"],
        &["--alter", "--topic", "T-a", "--partitions", "5"],
        &["--alter", "--topic", "T-a", "--partitions", "2"],
    ];
    for args in changes {
        let with = |prefix: &str| -> Vec<String> {
            args.iter()
                .map(|a| a.replace("T-", prefix).replace("T.", prefix))
                .collect()
        };
        let (n_args, j_args) = (with("n-"), with("j-"));
        let n_args: Vec<&str> = n_args.iter().map(String::as_str).collect();
        let j_args: Vec<&str> = j_args.iter().map(String::as_str).collect();
        let mut full = vec!["topics", "--bootstrap-server", &b];
        full.extend_from_slice(&n_args);
        let n = native(&full);
        let mut full = vec!["--bootstrap-server", b.as_str()];
        full.extend_from_slice(&j_args);
        let j = java("topics", &full);
        assert_eq!(
            n.status.success(),
            j.status.success(),
            "{args:?}\nnative: {n:?}\njava: {j:?}"
        );
        assert_eq!(stdout(&n).replace("n-", "j-"), stdout(&j), "{args:?}");
    }
    assert_same_topics(&b, &["--list"]);
    assert_same_topics(&b, &["--list", "--exclude-internal"]);
    let all = assert_same_topics(&b, &["--describe"]);
    assert!(
        all.contains("Configs: retention.ms=1000\n") && all.contains("PartitionCount: 5"),
        "{all}"
    );
    // The two tools' topics describe alike, ids aside.
    let id_free = |text: &str, prefix: &str| -> String {
        text.lines()
            .filter(|l| l.contains(&format!("Topic: {prefix}a")))
            .map(|l| {
                let l = l.replace(prefix, "X-");
                match l.find("\tTopicId: ") {
                    Some(i) => format!("{}{}", &l[..i], &l[i + 32..]),
                    None => l,
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(id_free(&all, "n-"), id_free(&all, "j-"), "{all}");
    for args in [
        &["--describe", "--topic", "n-.*"][..],
        &["--describe", "--topic", "n-a,j-a"],
        &["--describe", "--topic", "nope"],
        &["--describe", "--topic", "nope", "--if-exists"],
        &["--describe", "--topics-with-overrides"],
        &["--describe", "--under-replicated-partitions"],
        &["--describe", "--unavailable-partitions"],
        &["--delete", "--topic", "nope"],
    ] {
        assert_same_topics(&b, args);
    }
    produce_three(&b, "n-a");
    assert_same_offsets_cases(&b, "n-a");
    // Deleting: each tool its own topics, by regex.
    let (n, j) = (
        native(&["topics", "--bootstrap-server", &b, "--delete", "--topic", "n-.*"]),
        java("topics", &["--bootstrap-server", &b, "--delete", "--topic", "j-.*"]),
    );
    assert!(n.status.success() && j.status.success(), "native: {n:?}\njava: {j:?}");
    assert_eq!(stdout(&n), stdout(&j));
    assert_same_topics(&b, &["--list"]);
}

#[test]
fn topics_describe_matches_kafkas_tool_on_a_three_broker_cluster_with_a_broker_down() {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let b = cluster.bootstrap();
    let out = native(&[
        "topics",
        "--bootstrap-server",
        &b,
        "--create",
        "--topic",
        "rf3",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    assert_eq!(stdout(&out), "Created topic rf3.\n", "{out:?}");
    cluster.wait_all_led("rf3", 3);
    produce_three(&b, "rf3");
    // Partitions led by three brokers: one ListOffsets per leader.
    assert_same_offsets_cases(&b, "rf3");
    assert_same_api_versions(&b);
    assert_same_topics(&b, &["--describe", "--topic", "rf3"]);

    cluster.broker_mut(3).kill9();
    let deadline = Instant::now() + Duration::from_secs(60);
    let under = loop {
        let out = stdout(&native(&[
            "topics",
            "--bootstrap-server",
            &b,
            "--describe",
            "--under-replicated-partitions",
        ]));
        if out.lines().count() == 3 || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        under.lines().count(),
        3,
        "every partition lost a replica:\n{under}\n{}",
        cluster.logs()
    );
    assert_same_topics(&b, &["--describe", "--under-replicated-partitions"]);
    assert_same_topics(&b, &["--describe", "--unavailable-partitions"]);
    assert_same_topics(&b, &["--describe", "--topic", "rf3"]);
}

#[test]
fn native_tools_match_kafkas_tools_on_apache_kafka() {
    let _serial = serial();
    let kafka = Broker::start_target(Target::ApacheKafka, &[]);
    let b = kafka.bootstrap();
    assert_same_api_versions(&b);
    // This is Apache Kafka: it serves what oxka does not.
    let listing = stdout(&native(&["broker-api-versions", "--bootstrap-server", &b]));
    assert!(
        listing.contains("\tDescribeTopicPartitions(75): 0 [usable: 0]"),
        "{listing}"
    );
    let out = native(&[
        "topics",
        "--bootstrap-server",
        &b,
        "--create",
        "--topic",
        "k-a",
        "--partitions",
        "2",
        "--config",
        "retention.ms=5000",
    ]);
    assert_eq!(stdout(&out), "Created topic k-a.\n", "{out:?}");
    let out = native(&["topics", "--bootstrap-server", &b, "--create", "--topic", "k-a"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "Error while executing topic command : Topic 'k-a' already exists.\n"
    );
    // Apache Kafka serves DescribeTopicPartitions: both tools print its ELR lists.
    let described = assert_same_topics(&b, &["--describe", "--topic", "k-a"]);
    assert!(described.contains("\tElr: \tLastKnownElr: \n"), "{described}");
    assert_same_topics(&b, &["--list"]);
    assert_same_topics(&b, &["--describe", "--topic", "nope"]);
    let (n, j) = topics_both(&b, &["--alter", "--topic", "k-a", "--partitions", "1"]);
    assert_eq!(n, j);
    produce_three(&b, "k-a");
    assert_same_offsets_cases(&b, "k-a");
    let configs = assert_same_configs(&b, &["--describe", "--topic", "k-a"]);
    assert!(configs.contains("  retention.ms=5000 sensitive=false"), "{configs}");
    assert_same_configs(&b, &["--describe", "--topic", "k-a", "--all"]);
    assert_same_configs(&b, &["--describe", "--topic", "nope"]);
}

#[test]
fn configs_matches_kafkas_tool_on_one_oxka_broker() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    for topic in ["n-c", "j-c"] {
        let out = native(&[
            "topics",
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            topic,
            "--config",
            "retention.ms=1000",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    // Topic changes: each tool on its own topic, outputs compared with the names swapped.
    for args in [
        &["--describe", "--topic", "T-c"][..],
        &[
            "--alter",
            "--topic",
            "T-c",
            "--add-config",
            "retention.ms=3000,cleanup.policy=[compact,delete]",
        ],
        &["--describe", "--entity-type", "topics", "--entity-name", "T-c"],
        &[
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "T-c",
            "--delete-config",
            "cleanup.policy",
        ],
        &["--alter", "--topic", "T-c", "--delete-config", "cleanup.policy"],
        &["--alter", "--topic", "T-c", "--add-config", "bogus.key=1"],
        &["--alter", "--topic", "T-c", "--add-config", "retention.ms"],
        &["--alter", "--topic", "T-c"],
        &["--describe", "--topic", "T-c", "--all"],
    ] {
        assert_same_configs_change(&b, args);
    }
    let described = assert_same_configs(&b, &["--describe", "--entity-type", "topics"]);
    assert!(
        described.contains("Dynamic configs for topic n-c are:\n  retention.ms=3000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3000"),
        "{described}"
    );
    for args in [
        &["--describe", "--topic", "nope"][..],
        &["--alter", "--topic", "nope", "--add-config", "retention.ms=1"],
        &["--describe", "--entity-type", "brokers"],
        &["--describe", "--entity-type", "brokers", "--all"],
        &["--describe", "--broker", "0", "--all"],
        &["--describe", "--broker", "7"],
        &["--describe", "--broker", "x"],
        &["--describe", "--broker-defaults"],
        &["--describe"],
        &["--alter", "--broker", "0", "--add-config", "log.cleaner.threads=2"],
    ] {
        assert_same_configs(&b, args);
    }
    // Broker changes: one tool changes, both describe, the other undoes.
    for (entity, key) in [
        (&["--broker", "0"][..], "follower.replication.throttled.rate"),
        (
            &["--entity-type", "brokers", "--entity-default"],
            "leader.replication.throttled.rate",
        ),
    ] {
        let add = format!("{key}=1000");
        let run = |java_side: bool, action: &[&str]| {
            let mut full = vec!["--bootstrap-server", b.as_str(), "--alter"];
            full.extend_from_slice(entity);
            full.extend_from_slice(action);
            let out = if java_side {
                java("configs", &full)
            } else {
                let mut n = vec!["configs"];
                n.extend_from_slice(&full);
                native(&n)
            };
            assert!(out.status.success(), "{out:?}");
            stdout(&out)
        };
        let mut describe = vec!["--describe"];
        describe.extend_from_slice(entity);
        let added = run(false, &["--add-config", &add]);
        assert_eq!(added, run(true, &["--add-config", &add]));
        assert!(assert_same_configs(&b, &describe).contains(&format!("  {add} sensitive=false")));
        assert_eq!(run(true, &["--delete-config", key]), added);
        assert_same_configs(&b, &describe);
        run(false, &["--add-config", &add]);
        assert_eq!(run(false, &["--delete-config", key]), added);
        assert_same_configs(&b, &["--alter", "--broker", "0", "--delete-config", key]);
    }
    // Quotas and SCRAM credentials of users and clients on oxka: each tool alters its own entities and
    // prints what Kafka's prints, refusals included (oxka refuses the quotas it does not enforce).
    for args in [
        &[
            "--alter",
            "--user",
            "T-alice",
            "--add-config",
            "producer_byte_rate=1024,consumer_byte_rate=2048",
        ][..],
        &["--describe", "--user", "T-alice"],
        &[
            "--alter",
            "--client",
            "T-app",
            "--add-config",
            "producer_byte_rate=4096",
        ],
        &["--describe", "--client", "T-app"],
        &[
            "--alter",
            "--user",
            "T-bob",
            "--client",
            "T-app",
            "--add-config",
            "consumer_byte_rate=10",
        ],
        &["--describe", "--user", "T-bob", "--client", "T-app"],
        &[
            "--alter",
            "--user",
            "T-alice",
            "--add-config",
            "controller_mutation_rate=20",
        ],
        &["--alter", "--user", "T-alice", "--add-config", "producer_byte_rate=1.5"],
        &[
            "--alter",
            "--user",
            "T-carol",
            "--add-config",
            "SCRAM-SHA-256=[iterations=8192,password=T-secret]",
        ],
        &["--describe", "--user", "T-carol"],
        &["--alter", "--user", "T-alice", "--delete-config", "producer_byte_rate"],
        &["--describe", "--user", "T-alice"],
        &["--alter", "--user", "T-carol", "--delete-config", "SCRAM-SHA-256"],
        &["--describe", "--user", "T-carol"],
    ] {
        assert_same_configs_change(&b, args);
    }
    let described = assert_same_configs_change(&b, &["--describe", "--user", "T-alice"]);
    assert_eq!(
        described.trim(),
        "Quota configs for user-principal 'n-alice' are consumer_byte_rate=2048.0"
    );
    let described = assert_same_configs_change(&b, &["--describe", "--client", "T-app"]);
    assert_eq!(
        described.trim(),
        "Quota configs for client-id 'n-app' are producer_byte_rate=4096.0"
    );
    assert!(stdout(&native(&["configs", "--help"])).contains("--add-config"));
}
