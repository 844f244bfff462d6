//! consumer-groups (`oxka tool consumer-groups`) against Kafka 4.x's tool on the same broker: an inactive
//! group whose offsets each tool reset, a live group (a kcat consumer), every describe view, resets of
//! every kind (dry run and executed), errors and deletes. Kafka's tool prints rows (and groups) in
//! hash-map order, so outputs are compared as sorted lines; where Kafka's tool exits 0 after printing
//! an error, ours exits 1 (docs/tools.md), so only stdout is compared there.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::common::tools_compare::{native, stdout};
use super::common::{self, serial, Broker, Target};
use super::java;

/// Runs `consumer-groups --bootstrap-server <b> <args>` with both tools.
fn groups_both(bootstrap: &str, args: &[&str]) -> (Output, Output) {
    let mut full = vec!["--bootstrap-server", bootstrap];
    full.extend_from_slice(args);
    let mut native_args = vec!["consumer-groups"];
    native_args.extend_from_slice(&full);
    (native(&native_args), java("consumer-groups", &full))
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines
}

/// Both tools print the same lines (in any order) with the same exit status.
fn assert_same(bootstrap: &str, args: &[&str]) -> String {
    let (n, j) = groups_both(bootstrap, args);
    assert_eq!(
        n.status.success(),
        j.status.success(),
        "consumer-groups {args:?}: exit status differs\nnative: {n:?}\njava: {j:?}"
    );
    assert_eq!(
        sorted_lines(&stdout(&n)),
        sorted_lines(&stdout(&j)),
        "consumer-groups {args:?}\nnative:\n{}\njava:\n{}",
        stdout(&n),
        stdout(&j)
    );
    stdout(&n)
}

/// A failing command: the same stdout (Kafka's `Error: ...` lines); ours exits 1 where Kafka's exits 0.
fn assert_same_failure(bootstrap: &str, args: &[&str]) -> String {
    let (n, j) = groups_both(bootstrap, args);
    assert_eq!(n.status.code(), Some(1), "consumer-groups {args:?}: {n:?}");
    assert_eq!(stdout(&n), stdout(&j), "consumer-groups {args:?}");
    assert!(stdout(&n).contains("Error: "), "{n:?}");
    stdout(&n)
}

/// A kcat consumer in group `group`, killed on drop.
struct GroupConsumer(Child);

impl GroupConsumer {
    fn start(bootstrap: &str, group: &str, topics: &[&str]) -> GroupConsumer {
        let kcat = common::which("kcat").expect("kcat is installed (scripts/install-tools.sh)");
        let child = Command::new(kcat)
            .args(["-b", bootstrap, "-G", group])
            .args(topics)
            .args([
                "-q",
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "auto.commit.interval.ms=200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kcat");
        GroupConsumer(child)
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `group` has `rows` assigned partitions, all consumed (committed at the log end offset,
/// or nothing committed in an empty partition), as our tool sees it.
fn wait_consumed(bootstrap: &str, group: &str, rows: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = stdout(&native(&[
            "consumer-groups",
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ]));
        let consumed: Vec<bool> = out
            .lines()
            .skip(2)
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() == 9 && cols[6] != "-" && (cols[3] == cols[4] || (cols[3] == "-" && cols[4] == "0"))
            })
            .collect();
        if consumed.len() == rows && consumed.iter().all(|c| *c) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} did not consume everything:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn produce(bootstrap: &str, topic: &str, partition: &str, records: &[u8]) {
    let out = common::kcat(&["-P", "-b", bootstrap, "-t", topic, "-p", partition], records);
    assert!(out.status.success(), "kcat: {out:?}");
}

/// Topics `cg-a` (3 partitions: 3 records in 0, 2 in 2) and `cg-b` (1 partition, 2 records).
fn topics_with_records(bootstrap: &str) {
    for (topic, partitions) in [("cg-a", "3"), ("cg-b", "1")] {
        let out = native(&[
            "topics",
            "--bootstrap-server",
            bootstrap,
            "--create",
            "--topic",
            topic,
            "--partitions",
            partitions,
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    produce(bootstrap, "cg-a", "0", b"a\nb\nc\n");
    produce(bootstrap, "cg-a", "2", b"d\ne\n");
    produce(bootstrap, "cg-b", "0", b"f\ng\n");
}

/// A reset run once by each tool, on a group of its own (`n-<name>` natively, `j-<name>` by Kafka's
/// tool): the outputs are the same with the names swapped.
fn assert_same_reset_on_own_groups(bootstrap: &str, name: &str, args: &[&str]) {
    let run = |group: &str, java_side: bool| {
        let mut full = vec!["--bootstrap-server", bootstrap, "--reset-offsets", "--group", group];
        full.extend_from_slice(args);
        if java_side {
            java("consumer-groups", &full)
        } else {
            let mut n = vec!["consumer-groups"];
            n.extend_from_slice(&full);
            native(&n)
        }
    };
    let (n_group, j_group) = (format!("n-{name}"), format!("j-{name}"));
    let (n, j) = (run(&n_group, false), run(&j_group, true));
    assert!(n.status.success() && j.status.success(), "native: {n:?}\njava: {j:?}");
    let swapped = stdout(&n).replace(&n_group, &j_group);
    assert_eq!(sorted_lines(&swapped), sorted_lines(&stdout(&j)), "reset {args:?}");
}

#[test]
fn consumer_groups_matches_kafkas_tool_on_one_oxka_broker() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    topics_with_records(&b);
    // Inactive groups, created by an executed reset of each tool.
    assert_same_reset_on_own_groups(
        &b,
        "idle",
        &["--topic", "cg-a", "--topic", "cg-b", "--to-latest", "--execute"],
    );
    let (n, j) = groups_both(&b, &["--describe", "--group", "n-idle"]);
    let k = java(
        "consumer-groups",
        &["--bootstrap-server", &b, "--describe", "--group", "j-idle"],
    );
    assert_eq!(
        sorted_lines(&stdout(&n)),
        sorted_lines(&stdout(&j)),
        "the same group described by both tools"
    );
    assert_eq!(
        sorted_lines(&stdout(&n).replace("n-idle", "j-idle")),
        sorted_lines(&stdout(&k)),
        "each tool's reset committed the same offsets"
    );
    // Plans for --from-file: one group's (topic,partition,offset), several groups' (group first).
    let one_group_plan = broker.temp_dir().join("one-group.csv").display().to_string();
    std::fs::write(&one_group_plan, "cg-a,0,1\ncg-a,2,9\n").unwrap();
    let groups_plan = broker.temp_dir().join("groups.csv").display().to_string();
    std::fs::write(&groups_plan, "j-idle,cg-b,0,1\ncg-live,cg-a,0,0\n").unwrap();
    // A live group.
    let _live = GroupConsumer::start(&b, "cg-live", &["cg-a", "cg-b"]);
    wait_consumed(&b, "cg-live", 4);
    for args in [
        &["--list"][..],
        &["--list", "--state"],
        &["--list", "--state", "stable"],
        &["--list", "--state", "Empty,Stable"],
        &["--describe", "--group", "j-idle"],
        &["--describe", "--group", "j-idle", "--members"],
        &["--describe", "--group", "j-idle", "--members", "--verbose"],
        &["--describe", "--group", "j-idle", "--state"],
        &["--describe", "--group", "cg-live"],
        &["--describe", "--group", "cg-live", "--offsets"],
        &["--describe", "--group", "cg-live", "--offsets", "--verbose"],
        &[
            "--describe",
            "--group",
            "j-idle",
            "--offsets",
            "--verbose",
            "--timeout",
            "10000",
        ],
        &["--describe", "--group", "cg-live", "--members"],
        &["--describe", "--group", "cg-live", "--members", "--verbose"],
        &["--describe", "--group", "cg-live", "--state"],
        &["--describe", "--group", "cg-live", "--state", "--verbose"],
        &["--describe", "--group", "cg-live", "--group", "j-idle"],
        &["--describe", "--all-groups"],
        &["--describe", "--all-groups", "--state"],
        &["--describe", "--all-groups", "--members"],
        &["--list", "--state", "bogus"],
        // Dry runs on the inactive group.
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a",
            "--to-earliest",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--all-topics",
            "--to-latest",
            "--dry-run",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a:0,2",
            "--to-offset",
            "2",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a:0",
            "--to-offset",
            "9",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-b",
            "--shift-by",
            "-1",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--all-topics",
            "--shift-by",
            "-5",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a",
            "--to-datetime",
            "2000-01-01T00:00:00.000",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a",
            "--to-datetime",
            "2999-01-01T00:00:00.000",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-b",
            "--to-current",
        ],
        // Records were written in the last hour; none after now (the log end, with Kafka's notice).
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a",
            "--by-duration",
            "PT1H",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--all-topics",
            "--by-duration",
            "PT0S",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a:0,2",
            "--to-offset",
            "1",
            "--export",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--group",
            "cg-live",
            "--all-topics",
            "--to-earliest",
            "--export",
        ],
        &[
            "--reset-offsets",
            "--all-groups",
            "--all-topics",
            "--to-earliest",
            "--dry-run",
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--from-file",
            one_group_plan.as_str(),
        ],
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--group",
            "cg-live",
            "--group",
            "n-idle",
            "--from-file",
            groups_plan.as_str(),
        ],
        // A live group is not reset.
        &[
            "--reset-offsets",
            "--group",
            "cg-live",
            "--topic",
            "cg-a",
            "--to-earliest",
        ],
        // Flag errors.
        &["--reset-offsets", "--group", "j-idle", "--to-earliest"],
        &["--reset-offsets", "--group", "j-idle", "--topic", "cg-a"],
    ] {
        assert_same(&b, args);
    }
    let described = assert_same(&b, &["--describe", "--group", "cg-live", "--members", "--verbose"]);
    assert!(described.contains("cg-a:0,1,2;cg-b:0"), "{described}");
    // Executed resets, each tool on its own group; then both describe them alike.
    for args in [
        &["--topic", "cg-a", "--to-earliest", "--execute"][..],
        &["--topic", "cg-a:2", "--shift-by", "1", "--execute"],
        &["--all-topics", "--to-offset", "1", "--execute"],
        &["--from-file", one_group_plan.as_str(), "--execute"],
        &["--topic", "cg-b", "--by-duration", "P1D", "--execute"],
    ] {
        assert_same_reset_on_own_groups(&b, "idle", args);
        let n = stdout(&native(&[
            "consumer-groups",
            "--bootstrap-server",
            &b,
            "--describe",
            "--group",
            "n-idle",
        ]));
        let j = stdout(&java(
            "consumer-groups",
            &["--bootstrap-server", &b, "--describe", "--group", "j-idle"],
        ));
        assert_eq!(
            sorted_lines(&n.replace("n-idle", "j-idle")),
            sorted_lines(&j),
            "after {args:?}"
        );
    }
    // Failures: Kafka's lines on stdout.
    assert_same_failure(&b, &["--describe", "--group", "nope"]);
    assert_same_failure(
        &b,
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a",
            "--by-duration",
            "1H",
        ],
    );
    assert_same_failure(
        &b,
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a",
            "--to-datetime",
            "2000-01-01",
        ],
    );
    assert_same_failure(
        &b,
        &[
            "--reset-offsets",
            "--group",
            "j-idle",
            "--topic",
            "nope",
            "--to-earliest",
        ],
    );
    assert_same_failure(&b, &["--delete", "--group", "nope"]);
    assert_same_failure(&b, &["--delete", "--group", "cg-live"]);
    assert_same_failure(&b, &["--delete-offsets", "--group", "cg-live", "--topic", "cg-a"]);
    assert_same_failure(&b, &["--delete-offsets", "--group", "nope", "--topic", "cg-a:0"]);
    // Deleting offsets: each tool on its own group, then both describe them alike.
    let n = native(&[
        "consumer-groups",
        "--bootstrap-server",
        &b,
        "--delete-offsets",
        "--group",
        "n-idle",
        "--topic",
        "cg-a:0,2",
    ]);
    let j = java(
        "consumer-groups",
        &[
            "--bootstrap-server",
            &b,
            "--delete-offsets",
            "--group",
            "j-idle",
            "--topic",
            "cg-a:0,2",
        ],
    );
    assert!(n.status.success() && j.status.success(), "native: {n:?}\njava: {j:?}");
    assert_eq!(stdout(&n).replace("n-idle", "j-idle"), stdout(&j));
    assert!(stdout(&n).contains("cg-a            0          Successful"), "{n:?}");
    let (n, j) = groups_both(&b, &["--describe", "--group", "n-idle"]);
    let k = java(
        "consumer-groups",
        &["--bootstrap-server", &b, "--describe", "--group", "j-idle"],
    );
    assert_eq!(sorted_lines(&stdout(&n)), sorted_lines(&stdout(&j)));
    assert_eq!(
        sorted_lines(&stdout(&n).replace("n-idle", "j-idle")),
        sorted_lines(&stdout(&k))
    );
    assert!(!stdout(&k).contains("cg-a            0 "), "{k:?}");
    // An unknown topic: a row of its own; the others are deleted.
    assert_same_failure(
        &b,
        &[
            "--delete-offsets",
            "--group",
            "j-idle",
            "--topic",
            "nope",
            "--topic",
            "cg-b",
        ],
    );
    // Deleting: each tool its own group.
    let n = native(&[
        "consumer-groups",
        "--bootstrap-server",
        &b,
        "--delete",
        "--group",
        "n-idle",
    ]);
    let j = java(
        "consumer-groups",
        &["--bootstrap-server", &b, "--delete", "--group", "j-idle"],
    );
    assert!(n.status.success() && j.status.success(), "native: {n:?}\njava: {j:?}");
    assert_eq!(stdout(&n).replace("n-idle", "j-idle"), stdout(&j));
    assert_same(&b, &["--list"]);
    let help = native(&["consumer-groups", "--help"]);
    assert!(
        help.status.success() && stdout(&help).contains("--reset-offsets"),
        "{help:?}"
    );
}

#[test]
fn consumer_groups_describe_matches_kafkas_tool_on_apache_kafka() {
    let _serial = serial();
    let kafka = Broker::start_target(Target::ApacheKafka, &[]);
    let b = kafka.bootstrap();
    topics_with_records(&b);
    let out = java(
        "consumer-groups",
        &[
            "--bootstrap-server",
            &b,
            "--reset-offsets",
            "--group",
            "k-idle",
            "--topic",
            "cg-a",
            "--topic",
            "cg-b",
            "--to-latest",
            "--execute",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let _live = GroupConsumer::start(&b, "k-live", &["cg-a", "cg-b"]);
    wait_consumed(&b, "k-live", 4);
    for args in [
        &["--list"][..],
        &["--list", "--state"],
        &["--describe", "--group", "k-idle"],
        &["--describe", "--group", "k-idle", "--state"],
        &["--describe", "--group", "k-live"],
        &["--describe", "--group", "k-live", "--members", "--verbose"],
        &["--describe", "--group", "k-live", "--state"],
        &["--describe", "--group", "k-live", "--offsets", "--verbose"],
        &[
            "--reset-offsets",
            "--group",
            "k-idle",
            "--all-topics",
            "--by-duration",
            "PT1H",
        ],
        &["--describe", "--all-groups"],
        &[
            "--reset-offsets",
            "--group",
            "k-idle",
            "--topic",
            "cg-a",
            "--to-earliest",
        ],
    ] {
        assert_same(&b, args);
    }
    assert_same_failure(&b, &["--describe", "--group", "nope"]);
    assert_same_failure(&b, &["--delete-offsets", "--group", "k-live", "--topic", "cg-a"]);
}
