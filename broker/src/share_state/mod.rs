//! Share-partition state (KIP-932) in Kafka's internal topic `__share_group_state`: `records`
//! (Kafka's ShareSnapshot key and value, the partition of a share partition's state),
//! `coordinator` (`ShareStateCoordinator`, Kafka's share coordinator: owns the state of the
//! partitions of that topic this broker leads, loads them on becoming leader, writes with
//! acks=all), `persister` (what a share partition's leader calls: the share coordinator
//! in-process or over the inter-broker connection; also what the group coordinator calls for
//! AlterShareGroupOffsets and DescribeShareGroupOffsets), `timer` (releases expired acquisition
//! locks on time and persists changes no request writes, and expires share group members),
//! `initialize` (the group coordinator starts a share partition's state when a share group first
//! subscribes to its topic, and deletes it with the group). The share partitions themselves are
//! `group::share` and `group::share_coordinator`.

pub mod coordinator;
pub mod initialize;
pub mod persister;
pub mod records;
pub mod timer;

pub use coordinator::{ShareStateConfig, ShareStateCoordinator};
pub use records::SHARE_GROUP_STATE_TOPIC;
