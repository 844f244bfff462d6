//! Share groups (KIP-932), pure: `group` (membership and Kafka's `SimpleAssignor`), `partition`
//! (`SharePartition`: in-flight records, acquisition locks, delivery counts, acknowledgements),
//! `session` (share sessions and their epochs); their durable state is `share_state`'s. The
//! runtime is `group/share_coordinator.rs`.

pub mod group;
pub mod partition;
pub mod session;

#[cfg(test)]
mod tests;
