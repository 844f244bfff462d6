//! metadata-quorum (`oxka tool metadata-quorum`) against Kafka 4.x's tool: `describe --status` and
//! `--replication` through a broker and (oxka) straight from a coordinator, on a three-coordinator
//! oxka ensemble with three brokers and on Apache Kafka. Offsets, lags and timestamps move between the
//! two runs (the Raft log grows with every heartbeat), so those fields are compared by shape; ids,
//! epochs, voters, observers and statuses exactly.

use std::process::Output;

use super::common::cluster::Cluster;
use super::common::tools_compare::{native, stdout};
use super::common::{serial, Broker, Target};
use super::java;

/// Runs `metadata-quorum <connect flag> <address> <args>` with both tools.
fn both(connect: &[&str], args: &[&str]) -> (Output, Output) {
    let mut full: Vec<&str> = connect.to_vec();
    full.extend_from_slice(args);
    let mut n = vec!["metadata-quorum"];
    n.extend_from_slice(&full);
    (native(&n), java("metadata-quorum", &full))
}

/// `describe --status` with the moving numbers replaced by `N`.
fn status_shape(text: &str) -> String {
    text.lines()
        .map(|l| {
            let moving = ["HighWatermark:", "MaxFollowerLag:", "MaxFollowerLagTimeMs:"];
            match moving.iter().find(|m| l.starts_with(*m)) {
                Some(m) => format!("{m} N"),
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `describe --replication` rows as (NodeId, DirectoryId, Status), sorted, plus the header line.
fn replication_shape(text: &str) -> Vec<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let mut rows: Vec<String> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').map(str::trim).collect();
            assert_eq!(cells.len(), 8, "seven cells and a trailing tab: {l:?}");
            format!("{} {} {}", cells[0], cells[1], cells[6])
        })
        .collect();
    rows.sort();
    rows.insert(0, header);
    rows
}

fn assert_same_quorum(connect: &[&str]) -> (String, String) {
    let (n, j) = both(connect, &["describe", "--status"]);
    assert!(n.status.success() && j.status.success(), "native: {n:?}\njava: {j:?}");
    let status = stdout(&n);
    assert_eq!(
        status_shape(&status),
        status_shape(&stdout(&j)),
        "native:\n{status}\njava:\n{}",
        stdout(&j)
    );
    for args in [
        &["describe", "--replication"][..],
        &["describe", "--replication", "--human-readable"],
    ] {
        let (n, j) = both(connect, args);
        assert!(
            n.status.success() && j.status.success(),
            "{args:?}\nnative: {n:?}\njava: {j:?}"
        );
        assert_eq!(
            replication_shape(&stdout(&n)),
            replication_shape(&stdout(&j)),
            "{args:?}\nnative:\n{}\njava:\n{}",
            stdout(&n),
            stdout(&j)
        );
        if args.len() == 3 {
            assert!(stdout(&n).contains(" ms ago"), "{n:?}");
        }
    }
    // Kafka's refusals, on stderr with exit 1.
    for (args, message) in [
        (
            &["describe", "--status", "--replication"][..],
            "Only one of --status or --replication should be specified with describe sub-command",
        ),
        (
            &["describe"],
            "One of --status or --replication must be specified with describe sub-command",
        ),
        (
            &["describe", "--status", "--human-readable"],
            "The option --human-readable is only supported along with --replication",
        ),
    ] {
        let (n, j) = both(connect, args);
        assert_eq!(
            (n.status.code(), j.status.code()),
            (Some(1), Some(1)),
            "{args:?}\n{n:?}\n{j:?}"
        );
        let (ne, je) = (String::from_utf8_lossy(&n.stderr), String::from_utf8_lossy(&j.stderr));
        assert!(
            ne.contains(message) && je.contains(message),
            "{args:?}\nnative: {ne}\njava: {je}"
        );
    }
    (status, stdout(&both(connect, &["describe", "--replication"]).0))
}

#[test]
fn metadata_quorum_matches_kafkas_tool_on_an_oxka_ensemble() {
    let _serial = serial();
    let cluster = Cluster::start();
    let b = cluster.bootstrap();
    let (status, replication) = assert_same_quorum(&["--bootstrap-server", &b]);
    assert!(status.contains("CurrentVoters:          [{\"id\": "), "{status}");
    assert_eq!(replication.matches("Follower").count(), 2, "{replication}");
    // Straight from a coordinator (Kafka's --bootstrap-controller).
    let coordinator = cluster.coordinator(1).address();
    let (from_coordinator, _) = assert_same_quorum(&["--bootstrap-controller", &coordinator]);
    assert_eq!(status_shape(&from_coordinator), status_shape(&status));
    let out = native(&["metadata-quorum", "--bootstrap-server", &b, "add-controller"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not supported"),
        "{out:?}"
    );
}

#[test]
fn metadata_quorum_matches_kafkas_tool_on_apache_kafka() {
    let _serial = serial();
    let kafka = Broker::start_target(Target::ApacheKafka, &[]);
    let b = kafka.bootstrap();
    let (status, _) = assert_same_quorum(&["--bootstrap-server", &b]);
    assert!(status.starts_with("ClusterId:              "), "{status}");
}
