//! The controller: watches KafkaClusters and their children, applies rendered objects with
//! server-side apply, rolls pods via the config hash and reports status.

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {}

pub async fn run(_args: RunArgs) -> anyhow::Result<()> {
    Ok(())
}
