//! `oxka`: one binary, two roles. `oxka broker server.properties` serves Kafka clients;
//! `oxka coordinator zookeeper.properties` runs a member of the coordinator ensemble.
//! `oxka await-config FILE --key KEY` waits for a key in a properties file (a Kubernetes init step).

mod await_config;

use std::path::PathBuf;
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxka: {e:#}");
            ExitCode::FAILURE
        }
    }
}
