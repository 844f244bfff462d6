//! The embedded coordinator: with no `zookeeper.connect`, a broker runs the coordinator's own code in
//! its process as a single voter (node id = broker.id) with its Raft log and snapshots under
//! `<first log dir>/__oxka_metadata/raft`. Nothing about it is special: the broker registers, heartbeats
//! and fetches metadata through the same `ControllerChannel` calls as against an ensemble, which here
//! reach the coordinator's handlers in-process.
//!
//! Brokers from before the embedded coordinator kept metadata in `__oxka_metadata/metadata.json`; on
//! the first start with this code its cluster id, topics (ids, partition counts, configs) and
//! producer-id counter are proposed into the new log, and the file is renamed `metadata.json.migrated`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{BrokerConfig, CoordinatorId, Voter};
use crate::coordinator::image::MetadataCommand;
use crate::coordinator::kafka::{rebalance_leaders, ClientContext};
use crate::coordinator::network::NoPeers;
use crate::coordinator::{CoordinatorNode, MetadataResponse, Node, RaftSettings};
use crate::metadata::{read_legacy_image, METADATA_DIR};

/// Raft timing for a single voter: nothing to wait for but itself, so elections can be quick.
fn settings() -> RaftSettings {
    RaftSettings {
        heartbeat_interval_ms: 50,
        election_timeout_ms: 150,
        ..RaftSettings::default()
    }
}

/// Starts the embedded single-voter coordinator and its controller duties (which stop with `stop`).
pub async fn start(config: &BrokerConfig, stop: &CancellationToken) -> anyhow::Result<Arc<ClientContext>> {
    let id = u64::try_from(config.broker_id.0).context("broker.id must not be negative")?;
    let dir = config.log_dirs[0].join(METADATA_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let node = CoordinatorNode::open(id, &dir, &settings(), NoPeers).await?;
    node.initialize_if_first(&BTreeMap::from([(id, Node::new(""))])).await?;
    // A single voter elects itself within milliseconds; woken by Raft's metrics (polling every 25 ms
    // cost a cold start 25 ms).
    if !node.wait_until_leader(Duration::from_secs(5)).await {
        bail!(
            "the embedded coordinator in {} did not become leader; if these log dirs belonged to a broker with \
             another broker.id, use that id",
            dir.display()
        );
    }
    // Tools asking where the controller is (DescribeQuorum, DescribeCluster) are pointed at this broker,
    // which answers for its embedded coordinator.
    let (client_host, client_port) = config
        .advertised_listeners
        .first()
        .map(|l| (l.host.clone(), l.port))
        .unwrap_or_else(|| ("localhost".into(), 9092));
    let voter = Voter {
        id: CoordinatorId(id),
        host: client_host.clone(),
        peer_port: None,
        client_host,
        client_port,
    };
    let ctx = Arc::new(
        ClientContext::new(
            node.clone(),
            BTreeMap::from([(voter.id, voter)]),
            config.broker_session_timeout_ms,
        )
        .with_shutdown(stop.clone()),
    );
    migrate_legacy_metadata(&node, &dir, config.broker_id.0).await?;
    // The controller's liveness duty (fencing brokers whose heartbeats stop) is not run: the only broker
    // is this process, which cannot outlive its coordinator, and a process paused (SIGSTOP, a debugger)
    // would otherwise fence itself when it resumes.
    tokio::spawn(node.clone().run_controller_duties(stop.clone()));
    // Preferred-leader rebalancing follows this broker's server.properties (it has nothing to move while
    // this broker is the only one, but the embedded controller runs the same duties as an ensemble's).
    tokio::spawn(rebalance_leaders(ctx.clone(), config.leader_balance, stop.clone()));
    Ok(ctx)
}

async fn migrate_legacy_metadata(node: &CoordinatorNode, dir: &Path, broker_id: i32) -> anyhow::Result<()> {
    let path = dir.join("metadata.json");
    let Some(legacy) = read_legacy_image(&path)? else {
        return Ok(());
    };
    let image = node.state.image();
    let mut commands = Vec::new();
    if image.cluster_id.is_empty() {
        commands.push(MetadataCommand::InitCluster {
            cluster_id: legacy.cluster_id.clone(),
        });
    }
    for (name, topic) in &legacy.topics {
        if !image.topics.contains_key(name) {
            commands.push(MetadataCommand::CreateTopic {
                name: name.clone(),
                topic_id: topic.topic_id,
                assignment: vec![vec![broker_id]; topic.partitions.max(0) as usize],
                configs: topic.configs.clone(),
            });
        }
    }
    commands.push(MetadataCommand::SetProducerIdFloor {
        at_least: legacy.next_producer_id_block,
    });
    for command in commands {
        match node.write(command.clone()).await {
            Ok(MetadataResponse::Rejected { message, .. }) => bail!("cannot migrate {}: {message}", path.display()),
            Ok(_) => {}
            Err(e) => bail!("cannot migrate {}: {e}", path.display()),
        }
    }
    let done = path.with_extension("json.migrated");
    std::fs::rename(&path, &done).with_context(|| format!("cannot rename {} after migrating it", path.display()))?;
    info!(
        topics = legacy.topics.len(),
        "migrated the single-node metadata of {} into the embedded coordinator's Raft log",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::BrokerConfig;
    use crate::metadata::{MetadataImage, TopicMeta, METADATA_DIR};

    fn config(dir: &std::path::Path) -> BrokerConfig {
        let text = format!(
            "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\nmetrics.port=-1\n",
            dir.display()
        );
        BrokerConfig::from_properties_text(&text, "test").expect("valid config")
    }

    #[tokio::test]
    async fn a_pre_raft_metadata_file_is_migrated_once() {
        let dir = tempfile::tempdir().unwrap();
        let legacy_dir = dir.path().join(METADATA_DIR);
        std::fs::create_dir_all(&legacy_dir).unwrap();
        let topic_id = uuid::Uuid::new_v4();
        let legacy = MetadataImage {
            cluster_id: "LegacyClusterId0000000".into(),
            topics: BTreeMap::from([(
                "legacy".to_string(),
                TopicMeta {
                    topic_id,
                    partitions: 2,
                    replication_factor: 1,
                    configs: BTreeMap::from([("retention.ms".to_string(), "1234".to_string())]),
                },
            )]),
            next_producer_id_block: 5000,
            epoch: 7,
        };
        std::fs::write(legacy_dir.join("metadata.json"), serde_json::to_vec(&legacy).unwrap()).unwrap();

        for start in 0..2 {
            let broker = crate::runtime::start(config(dir.path())).await.expect("broker starts");
            assert_eq!(broker.metadata.cluster_id(), legacy.cluster_id, "start {start}");
            let topic = broker.metadata.topic("legacy").expect("migrated topic");
            assert_eq!(
                (topic.topic_id, topic.partitions, topic.configs.clone()),
                (topic_id, 2, legacy.topics["legacy"].configs.clone()),
                "start {start}"
            );
            assert!(broker.partition("legacy", 1).is_some(), "its logs exist");
            assert!(
                broker.leader_partition("legacy", 0).is_ok(),
                "and this broker leads them"
            );
            assert!(
                broker.allocate_producer_id().await.unwrap() >= 5000,
                "producer ids never repeat"
            );
            assert!(!legacy_dir.join("metadata.json").exists());
            assert!(legacy_dir.join("metadata.json.migrated").exists());
            crate::runtime::leave_cluster(&broker).await;
            broker.logs.shutdown().unwrap();
        }
    }
}
