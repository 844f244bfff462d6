//! oxka's native command-line tools: `oxka tool <name> [Kafka's flags]`, with Kafka's tool names
//! (`bin/kafka-<name>.sh`), flags and output formats, speaking the Kafka protocol to any
//! Kafka-compatible cluster (oxka or Apache Kafka) without a JVM.
//!
//! Data enters as command-line arguments (parsed per tool with clap, into validated
//! `settings::ClientSettings` plus the tool's own flags), leaves as requests over one `admin::Admin`
//! connection at a time, and the answers are printed in Kafka's format by pure functions that the
//! unit tests check. This crate depends on oxka-protocol (the client connection) and the
//! `kafka-protocol` codecs only, never on the broker, so the tools work against any cluster.
//!
//! Exit status: 0 on success, 1 on any failure (as Kafka's tools), with one line saying what failed.

mod admin;
mod broker_api_versions;
mod client_props;
mod configs;
mod console_consumer;
mod console_producer;
mod consumer_groups;
mod delete_records;
mod dump_log;
mod error;
mod get_offsets;
mod java;
mod leaders;
mod log_dirs;
mod metadata_quorum;
mod offsets;
mod records;
mod security;
mod settings;
mod topics;

use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;

use clap::Parser;

pub use error::ToolError;

/// One native tool: its Kafka name (`kafka-<name>.sh`), a line for `oxka tool --help`, its entry.
struct Tool {
    name: &'static str,
    about: &'static str,
    run: fn(Vec<OsString>) -> Result<(), ToolError>,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "broker-api-versions",
        about: "the API versions each broker serves (kafka-broker-api-versions.sh)",
        run: |args| parse_and_run(args, broker_api_versions::run),
    },
    Tool {
        name: "configs",
        about: "describe and alter the configs of topics and brokers, quotas and SCRAM credentials (kafka-configs.sh)",
        run: configs::main,
    },
    Tool {
        name: "console-consumer",
        about: "print the records of topics, alone or in a consumer group (kafka-console-consumer.sh)",
        run: |args| parse_and_run(args, console_consumer::run),
    },
    Tool {
        name: "console-producer",
        about: "produce each line of standard input as a record (kafka-console-producer.sh)",
        run: |args| parse_and_run(args, console_producer::run),
    },
    Tool {
        name: "consumer-groups",
        about: "list, describe, reset offsets of and delete consumer groups (kafka-consumer-groups.sh)",
        run: |args| parse_and_run(args, consumer_groups::run),
    },
    Tool {
        name: "delete-records",
        about: "delete the records of partitions below an offset (kafka-delete-records.sh)",
        run: |args| parse_and_run(args, delete_records::run),
    },
    Tool {
        name: "dump-log",
        about: "print the batches and records of log segment files, offline (kafka-dump-log.sh)",
        run: |args| parse_and_run(args, dump_log::run),
    },
    Tool {
        name: "get-offsets",
        about: "offsets of topic partitions at a time: latest, earliest, a timestamp (kafka-get-offsets.sh)",
        run: |args| parse_and_run(args, get_offsets::run),
    },
    Tool {
        name: "log-dirs",
        about: "the log directories of brokers and the partitions in them (kafka-log-dirs.sh)",
        run: |args| parse_and_run(args, log_dirs::run),
    },
    Tool {
        name: "metadata-quorum",
        about: "describe the metadata quorum: on oxka, the coordinator ensemble (kafka-metadata-quorum.sh)",
        run: |args| parse_and_run(args, metadata_quorum::run),
    },
    Tool {
        name: "topics",
        about: "create, list, describe, alter (partitions) and delete topics (kafka-topics.sh)",
        run: |args| parse_and_run(args, topics::run),
    },
];

/// `oxka tool <args>`: `args` are what follows `tool` (the tool's name first).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some(name) = args.first().map(|a| a.to_string_lossy().into_owned()) else {
        eprint!("{}", usage());
        return ExitCode::FAILURE;
    };
    if name == "--help" || name == "-h" || name == "help" {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let name = name.trim_start_matches("kafka-").trim_end_matches(".sh");
    let Some(tool) = TOOLS.iter().find(|t| t.name == name) else {
        eprintln!("oxka tool: no tool named '{name}'\n");
        eprint!("{}", usage());
        return ExitCode::FAILURE;
    };
    // Usage lines name the command as it was typed through oxka.
    let mut args = args;
    args[0] = OsString::from(format!("oxka tool {}", tool.name));
    match (tool.run)(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ToolError::Reported) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("oxka tool {}: {e}", tool.name);
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    let mut text = String::from(
        "Usage: oxka tool <name> [Kafka's flags for it]   (bin/kafka-<name>.sh runs the same)\n\
         Kafka's command-line tools, native. Supported:\n",
    );
    for tool in TOOLS {
        text.push_str(&format!("  {:<22}{}\n", tool.name, tool.about));
    }
    text.push_str("`oxka tool <name> --help` lists a tool's flags.\n");
    text
}

/// Parses a tool's flags (usage errors exit 1 as Kafka's tools do; --help exits 0) and runs it on a
/// single-threaded runtime.
fn parse_and_run<A, F>(args: Vec<OsString>, run: fn(A) -> F) -> Result<(), ToolError>
where
    A: Parser,
    F: Future<Output = Result<(), ToolError>>,
{
    let bin_name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed = match A::command()
        .bin_name(bin_name)
        .try_get_matches_from(args)
        .and_then(|matches| A::from_arg_matches(&matches))
    {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Err(ToolError::Reported)
            } else {
                Ok(())
            };
        }
    };
    block_on(run(parsed))
}

/// Runs a tool on a single-threaded runtime.
fn block_on<F: Future<Output = Result<(), ToolError>>>(tool: F) -> Result<(), ToolError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ToolError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(tool)
}
