//! `oxka-operator`: `crd` prints the CRDs, `render` prints what the operator would apply for a
//! KafkaCluster file, `run` runs the controller.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use oxka_operator::crd::KafkaCluster;
use oxka_operator::render::{render, RenderOptions};

#[derive(Parser)]
#[command(name = "oxka-operator", version, about = "Runs oxka KafkaClusters on Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions (KafkaCluster, KafkaTopic) as a YAML stream.
    Crd,
    /// Print, offline, every object the operator would apply for a KafkaCluster.
    Render {
        /// KafkaCluster YAML file; `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// DNS suffix of the Kubernetes cluster.
        #[arg(long, default_value = "cluster.local")]
        cluster_domain: String,
        /// `yaml` (a `---` separated stream) or `json` (a v1 List).
        #[arg(short = 'o', long, default_value = "yaml", value_parser = ["yaml", "json"])]
        output: String,
    },
    /// Run the controller.
    Run(oxka_operator::reconcile::RunArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            let crds: Vec<String> = oxka_operator::crd_files().into_iter().map(|(_, yaml)| yaml).collect();
            print!("{}", crds.join("---\n"));
            Ok(())
        }
        Command::Render {
            file,
            cluster_domain,
            output,
        } => {
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let cluster: KafkaCluster =
                serde_yaml::from_str(&text).with_context(|| format!("{} is not a KafkaCluster", file.display()))?;
            // What `kubectl apply` would refuse, `render` refuses too (the CRD's schema and CEL rules).
            let refused = oxka_operator::crd::admission::problems(&cluster);
            if !refused.is_empty() {
                anyhow::bail!(
                    "{} would be refused by the API server:\n  {}",
                    file.display(),
                    refused.join("\n  ")
                );
            }
            let options = RenderOptions {
                cluster_domain,
                ..RenderOptions::default()
            };
            let objects = render(&cluster, &options)?;
            if output == "json" {
                let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects.to_values()});
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", objects.to_yaml());
            }
            Ok(())
        }
        Command::Run(args) => {
            tracing_subscriber::fmt()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()),
                )
                .init();
            tokio::runtime::Runtime::new()?.block_on(oxka_operator::reconcile::run(args))
        }
    }
}
