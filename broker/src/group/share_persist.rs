//! Share groups (KIP-932) made durable in `__consumer_offsets`, as Kafka 4.1's group coordinator does:
//! every step of a share group (a member joins, leaves or expires, the group epoch moves, the
//! assignment changes, share partitions are initialized) is appended as the group's records
//! (`share::records`) to the group's partition of the topic before it is answered; `load.rs` replays
//! them when this broker becomes that partition's leader. The steps themselves are the share runtime's
//! (`ShareCoordinator`); this file gives them the group coordinator's append.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::coordinator::GroupCoordinator;
use super::host::GroupHost;
use super::share::group::{ShareHeartbeat, ShareHeartbeatAnswer, ShareHeartbeatError, TopicPartitionsInfo};
use super::share_coordinator::SharePartitionKey;

/// What a heartbeat leaves to do: the share partitions to initialize, at the group epoch.
pub type ShareInit = Option<(i32, TopicPartitionsInfo)>;

impl GroupCoordinator {
    /// ShareGroupHeartbeat for a group this broker coordinates (the handler checked that): the step
    /// and its records.
    pub fn share_heartbeat(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        hb: ShareHeartbeat,
        topics: &BTreeMap<String, (Uuid, i32)>,
        now_ms: i64,
    ) -> Result<(ShareHeartbeatAnswer, ShareInit), ShareHeartbeatError> {
        if self.is_closed() {
            return Err(ShareHeartbeatError::NotPersisted(ResponseError::NotCoordinator));
        }
        self.share.heartbeat(group_id, hb, topics, now_ms, |records| {
            self.append(broker, group_id, records).map(|_| ())
        })
    }

    /// The share partitions' state was initialized in their share coordinators: recorded.
    pub fn share_initialized(&self, broker: &impl GroupHost, group_id: &str, partitions: &TopicPartitionsInfo) {
        let recorded = self.share.initialized(group_id, partitions, |records| {
            self.append(broker, group_id, records).map(|_| ())
        });
        if let Err(e) = recorded {
            // They stay initializing in memory and in the log: a later heartbeat initializes them
            // again (the share coordinator keeps the state it has).
            tracing::warn!(group = group_id, "could not record initialized share partitions: {e:?}");
        }
    }

    /// AlterShareGroupOffsets set these share partitions' state: recorded as initialized (an absent
    /// group is made, as Kafka does).
    pub fn share_offsets_altered(&self, broker: &impl GroupHost, group_id: &str, partitions: &TopicPartitionsInfo) {
        let recorded = self.share.edit_state_partitions(
            group_id,
            true,
            |g| {
                g.mark_initialized(partitions);
            },
            |records| self.append(broker, group_id, records).map(|_| ()),
        );
        if let Err(e) = recorded {
            tracing::warn!(group = group_id, "could not record altered share partitions: {e:?}");
        }
    }

    /// DeleteShareGroupOffsets deleted a topic's share-partition state: the group forgets it.
    pub fn share_offsets_deleted(&self, broker: &impl GroupHost, group_id: &str, topic: Uuid) {
        let recorded = self.share.edit_state_partitions(
            group_id,
            false,
            |g| g.forget_state_topic(&topic),
            |records| self.append(broker, group_id, records).map(|_| ()),
        );
        if let Err(e) = recorded {
            tracing::warn!(group = group_id, "could not record deleted share partitions: {e:?}");
        }
    }

    /// The share groups' members whose session ended leave (the share-partition timer's clock).
    pub fn expire_share_members(&self, broker: &impl GroupHost, topics: &BTreeMap<String, (Uuid, i32)>, now_ms: i64) {
        self.share.expire_members(topics, now_ms, |group_id, records| {
            self.append(broker, group_id, records).map(|_| ())
        });
    }

    /// The share partitions of an empty share group whose state DeleteGroups deletes first.
    pub fn share_group_partitions_to_delete(&self, group_id: &str) -> Result<Vec<SharePartitionKey>, ResponseError> {
        self.share.deletable(group_id)
    }

    /// DeleteGroups of an empty share group, once its share-partition state is deleted: tombstones
    /// for all its records, then it is forgotten.
    pub fn delete_share_group(&self, broker: &impl GroupHost, group_id: &str) -> Result<(), ResponseError> {
        self.share
            .delete_group(group_id, |records| self.append(broker, group_id, records).map(|_| ()))?;
        tracing::info!(group = group_id, "deleted share group");
        Ok(())
    }
}
