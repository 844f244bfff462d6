//! What the TLS and SASL tests do the same way with Kafka's Java tools and a client properties file
//! (`--command-config`, `--producer.config`, `--consumer.config`).

use std::path::Path;
use std::process::Output;

use super::{kafka_tool_stdin, kafka_tool_timeout};

/// stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kafka-topics.sh --bootstrap-server B --command-config CONFIG ARGS`.
pub fn topics(bootstrap: &str, config: &Path, args: &[&str]) -> Output {
    admin_tool("topics", bootstrap, config, args)
}

/// Kafka 4's `kafka-<tool>.sh --bootstrap-server B --command-config CONFIG ARGS` (90 s timeout).
pub fn admin_tool(tool: &str, bootstrap: &str, config: &Path, args: &[&str]) -> Output {
    let mut full = vec![
        "--bootstrap-server",
        bootstrap,
        "--command-config",
        config.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    kafka_tool_timeout("4", tool, &full, 90)
}

/// Kafka's console producer writes `records` to `topic`, then a console consumer in `group` reads them
/// back from the beginning, both with `config`: the lines read, sorted.
pub fn round_trip(bootstrap: &str, config: &Path, topic: &str, group: &str, records: &[&str]) -> Vec<String> {
    let config = config.to_str().unwrap();
    let input: String = records.iter().map(|r| format!("{r}\n")).collect();
    let produced = kafka_tool_stdin(
        "4",
        "console-producer",
        &[
            "--bootstrap-server",
            bootstrap,
            "--producer.config",
            config,
            "--topic",
            topic,
        ],
        input.as_bytes(),
        90,
    );
    assert!(produced.status.success(), "{produced:?}");
    let count = records.len().to_string();
    let consumed = kafka_tool_timeout(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            bootstrap,
            "--consumer.config",
            config,
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--max-messages",
            &count,
            "--timeout-ms",
            "30000",
        ],
        90,
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}
