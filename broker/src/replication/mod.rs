//! Replication: every partition has a leader and followers (its replicas); followers copy the leader's
//! log with Fetch, the leader tracks how far each has come, commits records (the high watermark) once
//! every in-sync replica has them, and changes the in-sync replica set through the controller.
//!
//! Map, in Kafka's words: `partition_state` (pure: a leader's view of its followers, high watermark,
//! ISR expansion and shrinking, truncation points; unit-tested and simulated without I/O), `hosted`
//! (`HostedPartition`: a replica on this broker and its role), `manager` (`ReplicaManager`: roles from
//! metadata, appends as leader with acks=all waiting, followers' fetches as leader), `fetcher` (the
//! replica fetcher tasks, one connection per source broker and fetcher), `isr` (AlterPartition to the
//! controller), `quota` (replication throttles).
//!
//! Depends on the log, the cluster channel and the metadata image; the broker (handlers) depends on it.

pub mod fetcher;
pub mod hosted;
pub mod isr;
pub mod manager;
pub mod partition_state;
pub mod quota;
#[cfg(test)]
mod sim;

pub use hosted::{HostedPartition, Role};

pub use isr::IsrClient;
pub use manager::{check_epoch, AppendFailure, FollowerRead, ReplicaManager, RoleChanges, TxnMarker};
