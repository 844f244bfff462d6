//! `oxka tool metadata-quorum` (kafka-metadata-quorum.sh, Kafka's MetadataQuorumCommand):
//! `describe --status` (Kafka's eight `Name:   value` lines) and `describe --replication`
//! (`--human-readable`), from DescribeQuorum of the `__cluster_metadata` partition. Against an oxka
//! cluster the answer is the coordinator ensemble's Raft state: brokers forward DescribeQuorum to the
//! controller, and `--bootstrap-controller` asks a coordinator itself. `add-controller` and
//! `remove-controller` are not supported (oxka's ensemble is changed through `server.N` lines).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::{Node, ReplicaState};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{kafka_message, ToolError};
use crate::settings::ClientSettings;

const METADATA_TOPIC: &str = "__cluster_metadata";

#[derive(Parser, Debug)]
#[command(
    name = "kafka-metadata-quorum.sh",
    about = "Describe the metadata quorum: on oxka, the coordinator ensemble (Kafka's kafka-metadata-quorum.sh)"
)]
pub struct Args {
    /// host:port of brokers (one of --bootstrap-server or --bootstrap-controller is required).
    #[arg(long = "bootstrap-server", conflicts_with = "bootstrap_controller")]
    bootstrap_server: Option<String>,
    /// host:port of controllers (oxka: the coordinators' client ports).
    #[arg(long = "bootstrap-controller")]
    bootstrap_controller: Option<String>,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config")]
    command_config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe the metadata quorum.
    Describe {
        /// A short summary of the quorum status.
        #[arg(long)]
        status: bool,
        /// Detailed information about the status of replication.
        #[arg(long)]
        replication: bool,
        /// With --replication: timestamps as "N ms ago".
        #[arg(long = "human-readable")]
        human_readable: bool,
    },
    /// Not supported natively.
    #[command(name = "add-controller")]
    AddController {
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// Not supported natively.
    #[command(name = "remove-controller")]
    RemoveController {
        #[arg(long = "controller-id")]
        controller_id: Option<i32>,
        #[arg(long = "controller-directory-id")]
        controller_directory_id: Option<String>,
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
}

/// What DescribeQuorum answered for the metadata partition.
struct Quorum {
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<ReplicaState>,
    observers: Vec<ReplicaState>,
    nodes: Vec<Node>,
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    let (status, replication, human_readable) = match args.command {
        Command::Describe {
            status,
            replication,
            human_readable,
        } => (status, replication, human_readable),
        _ => {
            return Err(ToolError::Usage(
                "add-controller and remove-controller are not supported: an oxka coordinator ensemble changes through its members' server.N lines (docs/coordinator.md)".to_string(),
            ))
        }
    };
    let terse = |m: &str| {
        eprintln!("{m}");
        Err(ToolError::Reported)
    };
    if status && replication {
        return terse("Only one of --status or --replication should be specified with describe sub-command");
    }
    if !status && !replication {
        return terse("One of --status or --replication must be specified with describe sub-command");
    }
    if status && human_readable {
        return terse("The option --human-readable is only supported along with --replication");
    }
    let bootstrap = match (&args.bootstrap_server, &args.bootstrap_controller) {
        (Some(b), None) | (None, Some(b)) => b.clone(),
        _ => {
            return Err(ToolError::Usage(
                "one of --bootstrap-server or --bootstrap-controller is required".to_string(),
            ))
        }
    };
    let settings = ClientSettings::from_flags(&bootstrap, args.command_config.as_deref())?;
    let mut admin = Admin::bootstrap(&settings).await?;
    let quorum = describe_quorum(&mut admin).await?;
    if quorum.voters.iter().all(|v| v.replica_id.0 != quorum.leader_id) {
        return Err(ToolError::Kafka(format!(
            "the quorum has no leader among its voters (leader id {}): try again once a controller is elected",
            quorum.leader_id
        )));
    }
    if status {
        let cluster_id = cluster_id(&mut admin).await?;
        print!("{}", format_status(&cluster_id, &quorum));
    } else {
        print!("{}", format_replication(&quorum, human_readable.then(now_ms)));
    }
    Ok(())
}

async fn describe_quorum(admin: &mut Admin) -> Result<Quorum, ToolError> {
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = admin.send(request, 0).await?;
    if response.error_code != 0 {
        return Err(ToolError::Kafka(kafka_message(
            response.error_code,
            response.error_message.as_deref(),
        )));
    }
    let partition = response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .next()
        .ok_or_else(|| ToolError::Kafka("DescribeQuorum answered no partition".to_string()))?;
    if partition.error_code != 0 {
        return Err(ToolError::Kafka(kafka_message(
            partition.error_code,
            partition.error_message.as_deref(),
        )));
    }
    Ok(Quorum {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: partition.current_voters,
        observers: partition.observers,
        nodes: response.nodes,
    })
}

/// The cluster id: DescribeCluster where served (controllers), else Metadata.
async fn cluster_id(admin: &mut Admin) -> Result<String, ToolError> {
    if admin.serves(ApiKey::DescribeCluster) {
        let response = admin.send(DescribeClusterRequest::default(), 0).await?;
        if response.error_code == 0 {
            return Ok(response.cluster_id.to_string());
        }
    }
    let metadata = admin.metadata(Some(Vec::new())).await?;
    Ok(metadata.cluster_id.map(|c| c.to_string()).unwrap_or_default())
}

fn format_status(cluster_id: &str, q: &Quorum) -> String {
    let leader = q
        .voters
        .iter()
        .find(|v| v.replica_id.0 == q.leader_id)
        .expect("checked by the caller");
    let laggard = q
        .voters
        .iter()
        .min_by_key(|v| v.log_end_offset)
        .expect("the leader is a voter");
    let max_lag = leader.log_end_offset - laggard.log_end_offset;
    let max_lag_time = if std::ptr::eq(leader, laggard) {
        0
    } else if leader.last_caught_up_timestamp != -1 && laggard.last_caught_up_timestamp != -1 {
        leader.last_caught_up_timestamp - laggard.last_caught_up_timestamp
    } else {
        -1
    };
    format!(
        "ClusterId:              {cluster_id}\nLeaderId:               {}\nLeaderEpoch:            {}\nHighWatermark:          {}\nMaxFollowerLag:         {max_lag}\nMaxFollowerLagTimeMs:   {max_lag_time}\nCurrentVoters:          {}\nCurrentObservers:       {}\n",
        q.leader_id,
        q.leader_epoch,
        q.high_watermark,
        replica_list(&q.voters, &q.nodes),
        replica_list(&q.observers, &q.nodes)
    )
}

/// `[{"id": 1, "endpoints": ["CONTROLLER://host:9093"]}, ...]` as Kafka 4.1 prints it.
fn replica_list(replicas: &[ReplicaState], nodes: &[Node]) -> String {
    let items: Vec<String> = replicas
        .iter()
        .map(|r| {
            // Kafka 4.1 leaves the directory id out when there is none.
            let directory = if r.replica_directory_id.is_nil() {
                String::new()
            } else {
                format!(
                    ", \"directoryId\": \"{}\"",
                    uuid_text(r.replica_directory_id.as_bytes())
                )
            };
            let endpoints: Vec<String> = nodes
                .iter()
                .filter(|n| n.node_id == r.replica_id)
                .flat_map(|n| n.listeners.iter())
                .map(|l| {
                    let host = l.host.as_str();
                    let host = if host.contains(':') {
                        format!("[{host}]")
                    } else {
                        host.to_string()
                    };
                    format!("\"{}://{host}:{}\"", l.name.as_str(), l.port)
                })
                .collect();
            let endpoints = if endpoints.is_empty() {
                String::new()
            } else {
                format!(", \"endpoints\": [{}]", endpoints.join(", "))
            };
            format!("{{\"id\": {}{directory}{endpoints}}}", r.replica_id.0)
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Kafka's `Uuid.toString`: URL-safe base64 without padding.
fn uuid_text(id: &[u8; 16]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn format_replication(q: &Quorum, now: Option<i64>) -> String {
    let leader = q
        .voters
        .iter()
        .find(|v| v.replica_id.0 == q.leader_id)
        .expect("checked by the caller");
    let time = |t: i64| -> String {
        match (t, now) {
            (-1, _) => "-1".to_string(),
            (t, Some(now)) => format!("{} ms ago", (now - t).max(0)),
            (t, None) => t.to_string(),
        }
    };
    let row = |r: &ReplicaState, status: &str| -> Vec<String> {
        vec![
            r.replica_id.0.to_string(),
            uuid_text(r.replica_directory_id.as_bytes()),
            r.log_end_offset.to_string(),
            (leader.log_end_offset - r.log_end_offset).to_string(),
            time(r.last_fetch_timestamp),
            time(r.last_caught_up_timestamp),
            status.to_string(),
        ]
    };
    let mut rows = vec![row(leader, "Leader")];
    rows.extend(
        q.voters
            .iter()
            .filter(|v| v.replica_id.0 != q.leader_id)
            .map(|v| row(v, "Follower")),
    );
    rows.extend(q.observers.iter().map(|o| row(o, "Observer")));
    let headers = [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter().zip(r) {
            out.push_str(&format!("{cell:<w$}\t"));
        }
        out.push('\n');
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;

    use super::*;

    fn replica(id: i32, end: i64, caught_up: i64) -> ReplicaState {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(end)
            .with_last_fetch_timestamp(caught_up)
            .with_last_caught_up_timestamp(caught_up)
    }

    #[test]
    fn status_and_replication_print_as_kafkas_tool() {
        let q = Quorum {
            leader_id: 1,
            leader_epoch: 3,
            high_watermark: 40,
            voters: vec![replica(1, 42, 1000), replica(2, 40, 900)],
            observers: vec![replica(7, 41, -1)],
            nodes: Vec::new(),
        };
        assert_eq!(
            format_status("abc", &q),
            "ClusterId:              abc\nLeaderId:               1\nLeaderEpoch:            3\nHighWatermark:          40\nMaxFollowerLag:         2\nMaxFollowerLagTimeMs:   100\nCurrentVoters:          [{\"id\": 1}, {\"id\": 2}]\nCurrentObservers:       [{\"id\": 7}]\n"
        );
        let table = format_replication(&q, None);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t"
        );
        assert_eq!(
            lines[1],
            "1     \tAAAAAAAAAAAAAAAAAAAAAA\t42          \t0  \t1000              \t1000                 \tLeader  \t"
        );
        assert_eq!(
            lines[3],
            "7     \tAAAAAAAAAAAAAAAAAAAAAA\t41          \t1  \t-1                \t-1                   \tObserver\t"
        );
    }
}
