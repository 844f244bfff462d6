//! The consumer group protocol of KIP-848 as pure state: `member` (one member), `group` (the group
//! epoch, target assignment and members), `assignor` (server-side `uniform` and `range`),
//! `reconcile` (Kafka's `CurrentAssignmentBuilder`: revoke before assign) and `heartbeat` (one
//! ConsumerGroupHeartbeat). The runtime around it is `group::consumer_coordinator`.

pub mod assignor;
pub mod group;
pub mod heartbeat;
pub mod member;
pub mod reconcile;
pub mod records;
pub mod replay;

#[cfg(test)]
mod tests;

pub use group::{ConsumerGroup, ConsumerGroupState, TopicInfo, TopicSource};
pub use heartbeat::{validate, Heartbeat, HeartbeatAnswer, HeartbeatError};
pub use member::{Assignment, ConsumerMember, MemberState};
