//! oxka's configuration (the `oxka-config` crate; the broker re-exports it as `oxka_broker::config`):
//! Java properties parsing (`properties`), raw settings with origins (`raw`), and the
//! validated configs each role runs with (`broker`, with its `replication` settings and the client side
//! of the inter-broker listener, `inter_broker`; `coordinator`;
//! `leader_balance`, which both read; `dynamic`, the broker configs that change at run time). Everything behind this module uses typed values.

pub mod authorizer;
pub mod broker;
pub mod coordinator;
pub mod dynamic;
pub mod ensemble_tls;
pub mod inter_broker;
pub mod jks;
pub mod keystore;
pub mod leader_balance;
pub mod oauthbearer;
pub mod principal_mapping;
pub mod properties;
pub mod quorum_tls;
pub mod raw;
pub mod replication;
pub mod sasl;
pub mod tls;

pub use broker::{BrokerConfig, BrokerId, HostPort, Listener, LogDefaults, TimestampKind};
pub use coordinator::{CoordinatorConfig, CoordinatorId, Voter};
pub use leader_balance::LeaderBalanceConfig;
pub use raw::{ConfigError, RawConfig};
pub use replication::ReplicationConfig;

/// `host:port`, with an IPv6 host in brackets.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
