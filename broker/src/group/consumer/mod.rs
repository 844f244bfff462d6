//! The consumer group protocol of KIP-848 as pure state: `member` (one member), `group` (the group
//! epoch, target assignment and members), `assignor` (server-side `uniform` and `range`),
//! `reconcile` (Kafka's `CurrentAssignmentBuilder`: revoke before assign) and `heartbeat` (one
//! ConsumerGroupHeartbeat); `classic_member` serves members still on the classic protocol inside a
//! consumer group and `migration` converts non-empty groups between the two protocols. The runtime
//! around it is `group::consumer_coordinator` (and `group::migration_coordinator`).

pub mod assignor;
pub mod classic_member;
pub mod group;
pub mod heartbeat;
pub mod member;
pub mod migration;
pub mod reconcile;
pub mod records;
pub mod replay;

#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod tests;

pub use group::{ConsumerGroup, ConsumerGroupState, TopicInfo, TopicSource};
pub use heartbeat::{validate, Heartbeat, HeartbeatAnswer, HeartbeatError};
pub use member::{Assignment, ConsumerMember, MemberState};
