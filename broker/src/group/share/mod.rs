//! Share groups (KIP-932), pure: `group` (membership and Kafka's `SimpleAssignor`), `partition`
//! (`SharePartition`: in-flight records, acquisition locks, delivery counts, acknowledgements),
//! `session` (share sessions and their epochs), `records` (the group's records in
//! `__consumer_offsets`: what a step changed, and their replay at load); their durable state is `share_state`'s. The
//! runtime is `group/share_coordinator.rs`.

pub mod group;
pub mod partition;
pub mod records;
pub mod session;

#[cfg(test)]
mod records_tests;
#[cfg(test)]
mod tests;
