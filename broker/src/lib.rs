//! oxka: a Kafka-compatible broker. See `docs/architecture.md` for the map of modules.

pub mod admin;
pub mod api;
pub mod broker;
pub mod cluster;
/// The configuration lives in its own crate (`broker/oxka-config`), which the operator shares.
pub use oxka_config as config;
pub mod disk;
pub mod group;
pub mod inter_broker;
pub mod log_dir_health;
mod logs_behind;
pub mod peer_call;
pub use oxka_coordinator as coordinator;
pub use oxka_coordinator::metadata;
pub use oxka_log as log;
pub use oxka_protocol as protocol;
pub use oxka_protocol::{network, util};
pub mod metrics;
pub mod process;
pub mod producer_ids;
pub mod quota;
pub mod replication;
pub mod runtime;
pub mod share_state;
pub mod topic_error;
pub mod txn;
mod txn_host;
pub mod txn_verify;
