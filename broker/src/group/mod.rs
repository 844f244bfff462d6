//! The group coordinator: Kafka's classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) and committed offsets, made durable in the internal topic `__consumer_offsets`.
//!
//! Map: `member` and `classic_group` hold the data of one group (plain types, below the rest);
//! `state` (join, sync) and `liveness` (heartbeat, leave, timers) are the pure membership state
//! machine (events in, `Effect`s out, no I/O, no clock: the caller passes `now`); `offsets` validates commits
//! and applies them; `records` encodes and decodes Kafka's `__consumer_offsets` keys and values (and
//! picks a group's partition of it, `partition_for`); `txn_offsets` is the pure part of transactional
//! offset commits (pending per producer id until the COMMIT or ABORT marker) and `txn_commit` its
//! runtime (TxnOffsetCommit, `complete_txn`); `config` is `GroupConfig`, below everything else;
//! `coordinator` is the runtime (`GroupCoordinator`): it owns every group behind one lock, turns API
//! requests into state-machine calls, completes waiting (long-polling) JoinGroup and SyncGroup
//! responses through oneshot channels, appends records before it answers, and replays the topic at
//! start-up (`load`). The KIP-848 consumer protocol is `consumer` (pure) and `consumer_coordinator`
//! (its runtime in `GroupCoordinator`); its groups live in the same map, as `Group::consumer`. A
//! non-empty group moves between the protocols online (`consumer::migration`, `consumer::classic_member`,
//! run by `migration_coordinator`; `consumer_protocol` decodes the classic consumer's embedded
//! subscription and encodes its assignment): classic members live on inside a consumer group. What
//! the runtime needs of the broker it runs in is the `GroupHost` trait (`host`), which `Broker`
//! implements, so nothing here imports the broker. Share groups (KIP-932) are `share` (pure) and
//! `share_coordinator` (their runtime, the `share` field of `GroupCoordinator`: membership of the
//! share groups this broker coordinates, and the share partitions of the partitions it leads); their
//! durable state and its lock timer are `crate::share_state`; their membership is durable in
//! `__consumer_offsets` like the consumer groups' (`share::records`, appended by `share_persist`).
//!
//! This broker is the group coordinator of the groups whose partition of `__consumer_offsets` it
//! leads: a group lives in partition `abs(javaHashCode(group)) % offsets.topic.num.partitions`, as in
//! Kafka, so the data stays where a Kafka broker would look for it; the groups of a partition are
//! loaded when this broker becomes its leader and dropped when it stops (`load`).

pub mod classic_group;
pub mod config;
pub mod consumer;
mod consumer_coordinator;
pub mod consumer_protocol;
pub mod coordinator;
pub mod host;
mod liveness;
mod load;
pub mod member;
mod migration_coordinator;
pub mod offsets;
pub mod records;
pub mod share;
pub mod share_coordinator;
mod share_persist;
pub mod state;
pub mod txn_commit;
pub mod txn_offsets;

#[cfg(test)]
mod consumer_coordinator_tests;
#[cfg(test)]
mod coordinator_tests;
#[cfg(test)]
mod migration_coordinator_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod txn_tests;

pub use classic_group::{Group, GroupState};
pub use config::GroupConfig;
pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
pub use host::GroupHost;
pub use member::{Member, Protocol};
pub use offsets::CommittedOffset;
pub use records::partition_for;
pub use share_coordinator::ShareCoordinator;
pub use state::{Effect, JoinRequest, JoinResult, SyncRequest, SyncResult, WaiterId};
