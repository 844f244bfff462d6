//! log-dirs (`oxka tool log-dirs`) against Kafka 4.x's tool on the same broker: the two header lines
//! equal, the JSON equal once its arrays are sorted (Kafka's tool prints brokers, dirs and
//! partitions in hash-map order) and its keys in Kafka's order; the unknown-broker error; on one oxka
//! broker and on Apache Kafka.

use std::process::Output;

use serde_json::Value;

use super::common::tools_compare::{native, stdout};
use super::common::{self, serial, Broker, Target};
use super::java;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `<tool> --bootstrap-server b <args>` with both tools.
fn both(tool: &str, bootstrap: &str, args: &[&str]) -> (Output, Output) {
    let mut full = vec!["--bootstrap-server", bootstrap];
    full.extend_from_slice(args);
    let mut n = vec![tool];
    n.extend_from_slice(&full);
    (native(&n), java(tool, &full))
}

/// log-dirs JSON with every array sorted (by its elements' text).
fn normalized(json: &str) -> Value {
    fn sort(v: Value) -> Value {
        match v {
            Value::Array(items) => {
                let mut items: Vec<Value> = items.into_iter().map(sort).collect();
                items.sort_by_key(|i| i.to_string());
                Value::Array(items)
            }
            Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, sort(v))).collect()),
            other => other,
        }
    }
    sort(serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}")))
}

/// The JSON's keys in the order they are written, to check Kafka's key order.
fn key_order(json: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = json;
    while let Some(i) = rest.find("\":") {
        let start = rest[..i].rfind('"').expect("a key is quoted");
        keys.push(rest[start + 1..i].to_string());
        rest = &rest[i + 2..];
    }
    keys.dedup();
    keys
}

pub fn assert_same_log_dirs(bootstrap: &str, args: &[&str]) -> String {
    let (n, j) = both("log-dirs", bootstrap, args);
    assert_eq!(
        n.status.success(),
        j.status.success(),
        "log-dirs {args:?}\nnative: {n:?}\njava: {j:?}"
    );
    let (n, j) = (stdout(&n), stdout(&j));
    let (nl, jl): (Vec<&str>, Vec<&str>) = (n.lines().collect(), j.lines().collect());
    assert_eq!(nl.len(), jl.len(), "log-dirs {args:?}\nnative:\n{n}\njava:\n{j}");
    if nl.len() == 3 {
        assert_eq!(nl[..2], jl[..2], "log-dirs {args:?}");
        assert_eq!(
            normalized(nl[2]),
            normalized(jl[2]),
            "log-dirs {args:?}\nnative:\n{n}\njava:\n{j}"
        );
        let order = key_order(jl[2]);
        let ours = key_order(nl[2]);
        assert!(
            order.iter().all(|k| ours.contains(k)) && ours.starts_with(&order[..order.len().min(ours.len())]),
            "key order: native {ours:?}, java {order:?}"
        );
    }
    n
}

fn produce(bootstrap: &str, topic: &str, partition: &str, lines: &str) {
    let out = common::kcat(
        &["-P", "-b", bootstrap, "-t", topic, "-p", partition, "-K", ":"],
        lines.as_bytes(),
    );
    assert!(out.status.success(), "kcat: {out:?}");
}

#[test]
fn log_dirs_matches_kafkas_tool_on_one_oxka_broker() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    for topic in ["n-d", "j-d"] {
        let out = native(&[
            "topics",
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            topic,
            "--partitions",
            "2",
        ]);
        assert!(out.status.success(), "{out:?}");
        produce(&b, topic, "0", "a:1\nb:2\nc:3\nd:4\ne:5\n");
        produce(&b, topic, "1", "f:6\n");
    }
    let listing = assert_same_log_dirs(&b, &["--describe"]);
    assert!(listing.starts_with("Querying brokers for log directories information\nReceived log directory information from brokers 0\n{\"brokers\":[{\"broker\":0,\"logDirs\":[{\"partitions\":["), "{listing}");
    assert!(listing.contains("{\"partition\":\"n-d-0\",\"size\":"), "{listing}");
    assert_same_log_dirs(&b, &["--describe", "--topic-list", "n-d,j-d"]);
    assert_same_log_dirs(&b, &["--describe", "--broker-list", "0", "--topic-list", "nope"]);
    let (n, j) = both("log-dirs", &b, &["--describe", "--broker-list", "0,5"]);
    let message = "ERROR: The given brokers do not exist from --broker-list: 5. Current existent brokers: 0";
    assert_eq!((n.status.code(), j.status.code()), (Some(1), Some(1)), "{n:?}\n{j:?}");
    assert!(
        stderr(&n).contains(message) && stderr(&j).contains(message),
        "{n:?}\n{j:?}"
    );
    assert!(stdout(&native(&["log-dirs", "--help"])).contains("--topic-list"));
}

#[test]
fn log_dirs_matches_kafkas_tool_on_apache_kafka() {
    let _serial = serial();
    let kafka = Broker::start_target(Target::ApacheKafka, &[]);
    let b = kafka.bootstrap();
    let out = native(&[
        "topics",
        "--bootstrap-server",
        &b,
        "--create",
        "--topic",
        "k-d",
        "--partitions",
        "2",
    ]);
    assert!(out.status.success(), "{out:?}");
    produce(&b, "k-d", "1", "a:1\nb:2\n");
    assert_same_log_dirs(&b, &["--describe", "--topic-list", "k-d"]);
}
