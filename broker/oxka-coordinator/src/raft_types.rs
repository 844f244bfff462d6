//! The types openraft runs the metadata log with: `TypeConfig` (`MetadataCommand` in, `MetadataResponse`
//! out) and its aliases, and the log's Kafka name. Below everything in the coordinator that touches Raft
//! (`log_store`, `state_machine`, `network`, `node`, `metrics`); re-exported from `coordinator`.

use std::io::Cursor;

use super::image::{MetadataCommand, MetadataResponse};

openraft::declare_raft_types!(
    /// openraft's type configuration for the metadata log.
    pub TypeConfig:
        D = MetadataCommand,
        R = MetadataResponse,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;

/// Kafka's name for the metadata log, shown by DescribeQuorum.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
