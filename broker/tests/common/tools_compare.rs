//! Comparing a native tool's output (`oxka tool <name>`) with Apache Kafka's tool's, with only the
//! differences `docs/tools.md` documents normalized away.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

use super::{oxka_bin, run};

/// Runs `oxka tool <args>` (60 s timeout).
pub fn native(args: &[&str]) -> Output {
    let mut cmd = Command::new(oxka_bin());
    cmd.arg("tool").args(args);
    run(cmd, b"", Duration::from_secs(60))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A broker-api-versions listing as comparable blocks, one per broker, sorted by broker (Kafka's tool
/// prints brokers in hash-map order, the native one by id), each block's lines without the trailing
/// comma; API lines whose key the `other` listing does not have and that say UNSUPPORTED are dropped
/// (APIs one client knows and the other does not, e.g. Kafka 4.1's unstable StreamsGroup* that the
/// kafka-protocol crate leaves out).
pub fn api_versions_blocks(listing: &str, other: &str) -> Vec<Vec<String>> {
    let other_keys: BTreeSet<String> = other.lines().filter_map(api_key_of).collect();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    for line in listing.lines() {
        let line = line.trim_end_matches(',').to_string();
        if line.ends_with("-> (") {
            blocks.push(vec![line]);
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            panic!("a listing starts with a broker line:\n{listing}")
        };
        if line.ends_with("UNSUPPORTED") && api_key_of(&line).is_some_and(|k| !other_keys.contains(&k)) {
            continue;
        }
        block.push(line);
    }
    blocks.sort();
    blocks
}

/// `12` of `\tName(12): ...`.
fn api_key_of(line: &str) -> Option<String> {
    let start = line.find('(')?;
    let end = line[start..].find("):")? + start;
    Some(line[start + 1..end].to_string())
}

/// kafka-topics --describe output as blocks (a topic line and its partition lines), sorted by topic
/// (Kafka's tool prints topics in hash-map order, the native one by name).
pub fn describe_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Topic: ") || blocks.is_empty() {
            blocks.push(String::new());
        }
        let block = blocks.last_mut().expect("pushed above");
        block.push_str(line);
        block.push('\n');
    }
    blocks.sort();
    blocks
}

/// kafka-configs --describe output as blocks (a header line and its config lines), sorted (Kafka's
/// tool prints every topic in hash-set order, the native one by name).
pub fn config_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if !line.starts_with("  ") || blocks.is_empty() {
            blocks.push(String::new());
        }
        let block = blocks.last_mut().expect("pushed above");
        block.push_str(line);
        block.push('\n');
    }
    blocks.sort();
    blocks
}
