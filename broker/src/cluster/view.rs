//! `MetadataView`: the cluster metadata as this broker last received it from the coordinator ensemble
//! (or its embedded coordinator), with the metadata offset (the Raft log index it reflects).
//!
//! Updates only ever move forward: an image with an offset at or below the current one is ignored, so a
//! broker never goes back to older metadata, whichever coordinator answered. Readers get cheap clones
//! (`Arc`) of the current image; handlers that only need topics use the derived `MetadataImage`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use tokio::sync::watch;

use crate::coordinator::image::{BrokerEndpoint, PartitionState, RegisteredBroker};
use crate::coordinator::ClusterImage;
use crate::metadata::{MetadataImage, TopicMeta};

struct Current {
    offset: u64,
    image: Arc<ClusterImage>,
    /// Topics in the shape most handlers use (name → id, partition count, configs).
    topics: MetadataImage,
}

/// A partition's leader as `MetadataView::current_leader` finds it.
pub struct CurrentLeader {
    pub id: i32,
    pub epoch: i32,
    /// The leader's endpoint and rack, when it is alive.
    pub node: Option<(BrokerEndpoint, Option<String>)>,
}

pub struct MetadataView {
    current: RwLock<Current>,
    /// The offset of the current image; waiters watch it.
    changed: watch::Sender<u64>,
}

impl Default for MetadataView {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataView {
    pub fn new() -> Self {
        MetadataView {
            current: RwLock::new(Current {
                offset: 0,
                image: Arc::new(ClusterImage::default()),
                topics: MetadataImage::default(),
            }),
            changed: watch::channel(0).0,
        }
    }

    /// Installs `image` at `offset` if it is newer than the current one; returns whether it was.
    pub fn install(&self, offset: u64, image: Arc<ClusterImage>) -> bool {
        let mut current = self.current.write();
        if offset <= current.offset {
            return false;
        }
        let mut topics = image.to_metadata_image();
        topics.epoch = offset;
        *current = Current { offset, image, topics };
        drop(current);
        self.changed.send_replace(offset);
        true
    }

    /// The metadata offset this broker has applied (0 before the first image).
    pub fn offset(&self) -> u64 {
        self.current.read().offset
    }

    pub fn image(&self) -> Arc<ClusterImage> {
        self.current.read().image.clone()
    }

    /// The current offset and image, read together.
    pub fn offset_and_image(&self) -> (u64, Arc<ClusterImage>) {
        let current = self.current.read();
        (current.offset, current.image.clone())
    }

    /// Topics as `MetadataImage` (read-locked while the guard lives: keep it short).
    pub fn read(&self) -> MappedRwLockReadGuard<'_, MetadataImage> {
        RwLockReadGuard::map(self.current.read(), |c| &c.topics)
    }

    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.current.read().topics.topics.get(name).cloned()
    }

    /// The name of a topic named by id (newer request versions, KIP-516), or `name` when the id is nil.
    pub fn topic_name(&self, name: &str, topic_id: uuid::Uuid) -> Option<String> {
        if topic_id.is_nil() {
            return Some(name.to_string());
        }
        self.read()
            .topics
            .iter()
            .find(|(_, m)| m.topic_id == topic_id)
            .map(|(n, _)| n.clone())
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<PartitionState> {
        let current = self.current.read();
        let t = current.image.topics.get(topic)?;
        t.partitions.get(usize::try_from(partition).ok()?).cloned()
    }

    /// The leader of a partition (-1: none), without copying its state; `None` when it does not exist.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        self.leader_and_epoch(topic, partition).map(|(leader, _)| leader)
    }

    /// (leader, leader epoch) of a partition; `None` when it does not exist.
    pub fn leader_and_epoch(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let current = self.current.read();
        let t = current.image.topics.get(topic)?;
        t.partitions
            .get(usize::try_from(partition).ok()?)
            .map(|p| (p.leader, p.leader_epoch))
    }

    /// Partitions without a leader (the controller's OfflinePartitionsCount, as this broker sees it).
    pub fn offline_partition_count(&self) -> i64 {
        let current = self.current.read();
        current
            .image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.leader < 0)
            .count() as i64
    }

    pub fn cluster_id(&self) -> String {
        self.current.read().image.cluster_id.clone()
    }

    /// The unfenced brokers, each with its endpoint for `listener` (or its first one).
    pub fn live_brokers(&self, listener: &str) -> Vec<(RegisteredBroker, BrokerEndpoint)> {
        let image = self.image();
        image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let endpoint = b
                    .endpoints
                    .iter()
                    .find(|e| e.name == listener)
                    .or(b.endpoints.first())?;
                Some((b.clone(), endpoint.clone()))
            })
            .collect()
    }

    /// KIP-951: the leader of a partition as a client that was refused (NOT_LEADER_OR_FOLLOWER,
    /// FENCED_LEADER_EPOCH) should learn it from the refusal: its id and epoch (-1 when there is no such
    /// partition), and its endpoint for `listener` when it is alive, as Metadata would list it.
    pub fn current_leader(&self, topic: &str, partition: i32, listener: &str) -> CurrentLeader {
        let current = self.current.read();
        let image = &current.image;
        let (id, epoch) = image
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
            .map_or((-1, -1), |p| (p.leader, p.leader_epoch));
        let node = image.brokers.get(&id).filter(|b| !b.fenced).and_then(|b| {
            let endpoint = b
                .endpoints
                .iter()
                .find(|e| e.name == listener)
                .or(b.endpoints.first())?;
            Some((endpoint.clone(), b.rack.clone()))
        });
        CurrentLeader { id, epoch, node }
    }

    /// Waits until `ready` holds for the current image, up to `timeout`; returns whether it did.
    pub async fn wait_until(&self, timeout: Duration, ready: impl Fn(&ClusterImage) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if ready(&self.image()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return ready(&self.image());
            }
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_newer_images_are_installed() {
        let view = MetadataView::new();
        let image = ClusterImage {
            cluster_id: "a".into(),
            ..Default::default()
        };
        assert!(view.install(5, Arc::new(image.clone())));
        let older = ClusterImage {
            cluster_id: "old".into(),
            ..Default::default()
        };
        assert!(!view.install(4, Arc::new(older.clone())));
        assert!(!view.install(5, Arc::new(older)));
        assert_eq!(view.cluster_id(), "a");
        assert_eq!(view.offset(), 5);
        assert_eq!(view.read().epoch, 5);
    }
}
