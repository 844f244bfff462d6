//! Share groups (KIP-932), pure: `group` (membership and Kafka's `SimpleAssignor`), `partition`
//! (`SharePartition`: in-flight records, acquisition locks, delivery counts, acknowledgements),
//! `session` (share sessions and their epochs), `store` (the share partitions' durable state). The
//! runtime is `group/share_coordinator.rs`.

pub mod group;
pub mod partition;
pub mod session;
pub mod store;

#[cfg(test)]
mod tests;
