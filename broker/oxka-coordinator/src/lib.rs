//! The coordinator: one member of the metadata quorum (the role ZooKeeper plays in the seed).
//!
//! Cluster metadata (`image::ClusterImage`: brokers, topics, partition assignment, leaders, ISR, topic
//! configs, producer-id blocks) is the state machine of a Raft log replicated with openraft 0.9:
//!
//! - `cluster_image`: the metadata as plain data (`ClusterImage`), below everything else here;
//! - `image`: the commands that change it and the pure `apply` (plus controller decisions such as
//!   `partition_leadership_changes`), unit-tested without Raft;
//! - `reassignment`: partition reassignment (KIP-455) as pure functions of a partition's state;
//! - `placement`: the controller's rack-aware replica placement (`assign_replicas`);
//! - `election`: the controller's leader elections on request (ElectLeaders, preferred and unclean) and
//!   on schedule (`auto.leader.rebalance.enable`), pure functions of the image;
//! - `raft_types`: openraft's `TypeConfig` for the metadata log and its aliases (`NodeId`, `Entry`,
//!   `Raft`);
//! - `log_store` / `state_machine`: openraft's `RaftLogStorage` / `RaftStateMachine` on files in `dataDir`
//!   (fsynced log and vote, snapshots, log compaction);
//! - `network`: the TCP transport between coordinators (`server.N` peer ports), and `NoPeers` for a
//!   single voter;
//! - `node`: one running member (`CoordinatorNode`): Raft plus writes with NOT_CONTROLLER / no-quorum
//!   answers, first-start initialization, and the controller's own duties;
//! - `kafka`: the Kafka-protocol listener on `clientPort` (ApiVersions, DescribeQuorum, DescribeCluster,
//!   BrokerRegistration, BrokerHeartbeat, topic admin, ElectLeaders, producer ids, Metadata, and oxka's MetadataFetch
//!   long-poll), and `dispatch`, its typed core that a broker's embedded coordinator calls in-process;
//! - `metrics`: Prometheus metrics and the health endpoint;
//! - `runtime`: `oxka coordinator zookeeper.properties`.
//!
//! - `metadata`: topic metadata in the shape the broker's handlers use (`MetadataImage`), topic name
//!   rules, and the reader of the pre-Raft single-node metadata file.
//!
//! Its own crate (`broker/oxka-coordinator`), above `oxka-config` and `oxka-protocol` and knowing
//! nothing of the broker, which re-exports it as `oxka_broker::coordinator` (and `metadata`).
//!
//! Data enters as Kafka requests on `clientPort`, becomes `MetadataCommand`s proposed by the leader (the
//! controller), is replicated and applied in log order on every member, and leaves as Kafka responses.

pub mod acl;
pub mod client_quotas;
pub mod cluster_image;
pub mod election;
pub mod image;
pub mod image_delta;
pub mod kafka;
pub mod log_store;
pub mod metadata;
pub mod metrics;
pub mod network;
pub mod node;
pub mod placement;
pub mod raft_types;
pub mod reassignment;
pub mod runtime;
pub mod state_machine;

#[cfg(test)]
mod raft_tests;
#[cfg(test)]
pub(crate) mod testing;

pub use image::{ClusterImage, MetadataCommand, MetadataResponse};
pub use node::{CoordinatorNode, RaftSettings, WriteError};
pub use raft_types::{Entry, Node, NodeId, Raft, TypeConfig, METADATA_TOPIC};
