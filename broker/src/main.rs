//! `oxka`: one binary, two roles. `oxka broker server.properties` serves Kafka clients;
//! `oxka coordinator zookeeper.properties` runs a member of the coordinator ensemble.
//! `oxka await-config FILE --key KEY` waits for a key in a properties file (a Kubernetes init step).
//! `-daemon` (anywhere in the arguments, as Kafka's scripts take it) starts a role in the background;
//! `oxka stop` and `oxka status` stop and list the running processes of this install.
//! `oxka tool <name> [Kafka's flags]` runs a native Kafka command-line tool (the `oxka-tools` crate).
//! Started under a script's name (`bin/kafka-topics.sh` as a link to it), it runs what that script runs.

mod await_config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "oxka", version, about = "A Kafka-compatible broker")]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Run a broker from a Kafka server.properties file.
    Broker {
        /// Path to server.properties.
        config: PathBuf,
        /// Override a property, as kafka-server-start.sh --override key=value.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Validate the configuration, print the effective settings and exit.
        #[arg(long)]
        check: bool,
    },
    /// Run a coordinator (metadata quorum member) from a zookeeper.properties file.
    Coordinator { config: PathBuf },
    /// Wait until a properties file sets a key (e.g. broker.rack written by the Kubernetes operator
    /// once the pod's node is known); exit 1 with the likely reasons after the timeout.
    AwaitConfig(await_config::AwaitArgs),
    /// Stop the running brokers (or coordinators) of this install with SIGTERM and wait for them to
    /// exit (what bin/kafka-server-stop.sh and bin/zookeeper-server-stop.sh run).
    Stop {
        /// `broker` or `coordinator` (Kafka's --process-role names work too: broker, controller).
        #[arg(value_parser = ["broker", "coordinator", "controller"], default_value = "broker")]
        role: String,
        /// Kafka 3.7+'s spelling of the role.
        #[arg(long = "process-role", value_parser = ["broker", "controller", "coordinator"])]
        process_role: Option<String>,
        /// Stop only the process with this broker.id (or coordinator id).
        #[arg(long = "node-id")]
        node_id: Option<String>,
        /// How long to wait for them to exit, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// List the running oxka processes of this install: role, id, listeners, data dirs.
    Status,
    /// Run one of Kafka's command-line tools, natively: `oxka tool --help` lists them.
    #[command(disable_help_flag = true)]
    Tool {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Started as bin/kafka-topics.sh and the like (the images' bin/ links to this binary).
    let mut args = match oxka_broker::process::invoked_as::resolve(std::env::args_os().collect()) {
        oxka_broker::process::invoked_as::Invocation::Run(args) => args,
        oxka_broker::process::invoked_as::Invocation::Usage(line) => {
            println!("{line}");
            return ExitCode::FAILURE;
        }
    };
    // The tools parse their own (Kafka's) flags and log nothing; they share no setup with the roles.
    if args.get(1).is_some_and(|a| a == "tool") {
        return oxka_tools::main(args.split_off(2));
    }
    if let Some(i) = args.iter().position(|a| a == "-daemon" || a == "--daemon") {
        args.remove(i);
        return match oxka_broker::process::daemon::start(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("oxka: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    use oxka_broker::process::log_limit::RateLimitedFormat;
    let filter =
        || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=warn".into());
    let log_file = std::env::var_os(oxka_broker::process::daemon::LOG_FILE_ENV).map(|path| {
        oxka_broker::process::log_file::RotatingFile::open(
            std::path::Path::new(&path),
            oxka_broker::process::log_file::MAX_BYTES,
            oxka_broker::process::log_file::BACKUPS,
        )
    });
    match log_file {
        Some(Ok(file)) => tracing_subscriber::fmt()
            .event_format(RateLimitedFormat::new(
                tracing_subscriber::fmt::format().with_ansi(false),
            ))
            .with_env_filter(filter())
            .with_writer(file)
            .init(),
        other => {
            // Colours only for a terminal: -daemon sends stderr to a file (zookeeper.out).
            tracing_subscriber::fmt()
                .event_format(RateLimitedFormat::new(
                    tracing_subscriber::fmt::format().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
                ))
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .init();
            if let Some(Err(e)) = other {
                tracing::warn!("cannot open the log file ({e}): logging to stderr");
            }
        }
    }
    let cli = Cli::parse_from(args);
    let result = match cli.role {
        Role::Broker {
            config,
            overrides,
            check,
        } => oxka_broker::runtime::load_broker_config(&config, &overrides).and_then(|c| {
            if check {
                println!("{} is valid: broker.id={}", config.display(), c.broker_id);
                if !c.unknown_keys.is_empty() {
                    println!("unknown keys (ignored): {}", c.unknown_keys.join(", "));
                }
                Ok(())
            } else {
                oxka_broker::runtime::run_broker(c)
            }
        }),
        Role::Coordinator { config } => oxka_broker::config::CoordinatorConfig::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(oxka_broker::coordinator::runtime::run_coordinator),
        Role::AwaitConfig(args) => await_config::run(&args),
        Role::Stop {
            role,
            process_role,
            node_id,
            timeout,
        } => stop(process_role.unwrap_or(role), node_id, Duration::from_secs(timeout)),
        Role::Status => {
            status();
            Ok(())
        }
        Role::Tool { .. } => unreachable!("`oxka tool` is dispatched before the roles' setup"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxka: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `oxka stop`: SIGTERM to the matching processes of this install, then wait for them to exit.
fn stop(role: String, node_id: Option<String>, timeout: Duration) -> anyhow::Result<()> {
    let role = if role == "controller" {
        "coordinator".to_string()
    } else {
        role
    };
    let targets: Vec<_> = oxka_broker::process::running::find()
        .into_iter()
        .filter(|p| p.role == role && node_id.as_ref().is_none_or(|id| p.id.as_ref() == Some(id)))
        .collect();
    if targets.is_empty() {
        // Kafka's scripts' words, and their exit status.
        let what = if role == "broker" {
            "kafka server"
        } else {
            "zookeeper server"
        };
        let which = node_id.map(|id| format!(" with node id {id}")).unwrap_or_default();
        anyhow::bail!("No {what} to stop{which}");
    }
    for p in &targets {
        println!("stopping {} {} (pid {})", p.role, p.id.as_deref().unwrap_or("?"), p.pid);
    }
    let left = oxka_broker::process::running::stop(&targets, timeout);
    if !left.is_empty() {
        let pids: Vec<String> = left.iter().map(|p| p.pid.to_string()).collect();
        anyhow::bail!(
            "still running after {} s: pid {} (a controlled shutdown can take long on a busy cluster; kill -9 loses nothing acknowledged but skips it)",
            timeout.as_secs(),
            pids.join(", ")
        );
    }
    println!("stopped");
    Ok(())
}

/// `oxka status`: one line per running process of this install.
fn status() {
    let running = oxka_broker::process::running::find();
    if running.is_empty() {
        println!("no oxka process of this install is running");
        return;
    }
    println!(
        "{:<8} {:<12} {:<4} {:<40} {:<30} CONFIG",
        "PID", "ROLE", "ID", "LISTENERS", "DATA"
    );
    for p in running {
        println!(
            "{:<8} {:<12} {:<4} {:<40} {:<30} {}",
            p.pid,
            p.role,
            p.id.as_deref().unwrap_or("?"),
            p.listeners,
            p.data,
            p.config.display()
        );
    }
}
