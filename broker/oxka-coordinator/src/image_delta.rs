//! Metadata deltas: what a broker that holds the image at one log offset needs to reach a later one,
//! instead of the whole image (issue 15: with tens of thousands of partitions the whole image is
//! megabytes of JSON, and every leader or ISR change would send it to every broker). KRaft brokers get
//! the same from `__cluster_metadata` records replayed into a `MetadataDelta`.
//!
//! Every command changes either one topic (`ImageScope::Topic`) or the small rest of the image
//! (brokers, configs, credentials, quotas, ACLs, the producer-id counter: `ImageScope::Cluster`). The
//! state machine records each applied command's scope in a `ChangeLog`; `ImageDelta::since` reads it to
//! copy only the topics changed after the broker's offset (a topic changed and no longer in the image
//! was deleted), and the rest only when it changed. The log is bounded: a broker further behind than
//! it reaches, or behind a snapshot the member installed, gets the whole image, as before.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::cluster_image::{ClusterImage, TopicState};
use crate::image::MetadataCommand;

/// The part of the image a command can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageScope {
    Topic(String),
    Cluster,
}

impl MetadataCommand {
    /// The part of the image this command can change (a rejected command changes nothing, which a
    /// delta may still carry: resending an unchanged topic is harmless).
    pub fn scope(&self) -> ImageScope {
        use MetadataCommand as C;
        match self {
            C::CreateTopic { name, .. }
            | C::DeleteTopic { name }
            | C::CreatePartitions { name, .. }
            | C::AlterTopicConfigs { name, .. } => ImageScope::Topic(name.clone()),
            C::AlterPartition { topic, .. }
            | C::ReassignPartition { topic, .. }
            | C::CompleteReassignment { topic, .. } => ImageScope::Topic(topic.clone()),
            C::InitCluster { .. }
            | C::RegisterBroker { .. }
            | C::SetBrokerFenced { .. }
            | C::AlterBrokerConfigs { .. }
            | C::AllocateProducerIds { .. }
            | C::SetProducerIdFloor { .. }
            | C::AlterScramCredentials { .. }
            | C::AlterClientQuotas { .. }
            | C::CreateAcls { .. }
            | C::DeleteAcls { .. } => ImageScope::Cluster,
        }
    }
}

/// How many applied commands a `ChangeLog` remembers: a broker that fell further behind than this gets
/// the whole image. At ~60 bytes an entry it is a few MB at most.
pub const CHANGE_LOG_ENTRIES: usize = 100_000;

/// The scopes of the commands applied after `horizon`, in log order. Kept beside the image by the state
/// machine (not in snapshots: a member that starts from one, or installs one, knows nothing before it).
/// The default reaches back nowhere, so a log never set up from its image's offset makes no delta.
#[derive(Debug, Clone)]
pub struct ChangeLog {
    /// Deltas can be made from any offset at or after this one.
    horizon: u64,
    entries: VecDeque<(u64, ImageScope)>,
    capacity: usize,
}

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog::starting_at(u64::MAX)
    }
}

/// What changed after an offset, by scope.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub topics: BTreeSet<String>,
    pub cluster: bool,
}

impl ChangeLog {
    /// An empty log whose deltas start at `horizon` (the image's offset when it was loaded).
    pub fn starting_at(horizon: u64) -> ChangeLog {
        ChangeLog::with_capacity(horizon, CHANGE_LOG_ENTRIES)
    }

    pub fn with_capacity(horizon: u64, capacity: usize) -> ChangeLog {
        ChangeLog {
            horizon,
            entries: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records the command applied at `index`; the oldest entry goes once the log is full, and the
    /// horizon moves up to it.
    pub fn record(&mut self, index: u64, scope: ImageScope) {
        if self.entries.len() == self.capacity {
            if let Some((oldest, _)) = self.entries.pop_front() {
                self.horizon = self.horizon.max(oldest);
            }
        }
        self.entries.push_back((index, scope));
    }

    /// What changed after `after`; `None` when the log does not reach back that far (the caller sends
    /// the whole image).
    pub fn changed_since(&self, after: u64) -> Option<Changed> {
        if after < self.horizon {
            return None;
        }
        let first = self.entries.partition_point(|(index, _)| *index <= after);
        let mut changed = Changed::default();
        for (_, scope) in self.entries.range(first..) {
            match scope {
                ImageScope::Topic(name) => {
                    changed.topics.insert(name.clone());
                }
                ImageScope::Cluster => changed.cluster = true,
            }
        }
        Some(changed)
    }
}

/// The difference between the image at a broker's offset and a later one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDelta {
    /// Topics created or changed, whole.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topics: BTreeMap<String, TopicState>,
    /// Topics deleted (or created and deleted since): gone from the newer image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_topics: Vec<String>,
    /// Everything but the topics, when any of it changed (its `topics` map is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterImage>,
}

impl ImageDelta {
    /// The delta from the image at `after` to `image` (the current one), from `log`; `None` when the
    /// log does not reach back to `after`.
    pub fn since(image: &ClusterImage, log: &ChangeLog, after: u64) -> Option<ImageDelta> {
        let changed = log.changed_since(after)?;
        let mut delta = ImageDelta::default();
        for name in changed.topics {
            match image.topics.get(&name) {
                Some(topic) => {
                    delta.topics.insert(name, topic.clone());
                }
                None => delta.deleted_topics.push(name),
            }
        }
        if changed.cluster {
            delta.cluster = Some(ClusterImage {
                cluster_id: image.cluster_id.clone(),
                brokers: image.brokers.clone(),
                topics: BTreeMap::new(),
                next_producer_id: image.next_producer_id,
                broker_configs: image.broker_configs.clone(),
                scram_credentials: image.scram_credentials.clone(),
                client_quotas: image.client_quotas.clone(),
                acls: image.acls.clone(),
            });
        }
        Some(delta)
    }

    /// Turns the image at the delta's base offset into the newer one.
    pub fn apply_to(self, image: &mut ClusterImage) {
        for name in &self.deleted_topics {
            image.topics.remove(name);
        }
        image.topics.extend(self.topics);
        if let Some(cluster) = self.cluster {
            let topics = std::mem::take(&mut image.topics);
            *image = ClusterImage { topics, ..cluster };
        }
    }

    /// Whether the delta changes nothing (the commands after the base offset were all rejected
    /// cluster-wide ones, say... or there were none).
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.deleted_topics.is_empty() && self.cluster.is_none()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::image::apply;

    fn create(name: &str, partitions: usize) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            topic_id: Uuid::new_v4(),
            assignment: vec![vec![0]; partitions],
            configs: BTreeMap::new(),
        }
    }

    fn alter_configs(name: &str, value: &str) -> MetadataCommand {
        MetadataCommand::AlterTopicConfigs {
            name: name.into(),
            set: vec![("retention.ms".into(), value.into())].into_iter().collect(),
            delete: Default::default(),
        }
    }

    /// Applies `commands` from index 1 on, keeping the image after each and the change log.
    fn run(commands: &[MetadataCommand], capacity: usize) -> (Vec<ClusterImage>, ChangeLog) {
        let mut image = ClusterImage::default();
        let mut log = ChangeLog::with_capacity(0, capacity);
        let mut images = vec![image.clone()];
        for (i, command) in commands.iter().enumerate() {
            let index = i as u64 + 1;
            apply(&mut image, index, command);
            log.record(index, command.scope());
            images.push(image.clone());
        }
        (images, log)
    }

    fn commands() -> Vec<MetadataCommand> {
        vec![
            MetadataCommand::InitCluster { cluster_id: "c".into() },
            create("a", 2),
            create("b", 1),
            alter_configs("a", "1000"),
            MetadataCommand::SetProducerIdFloor { at_least: 5000 },
            MetadataCommand::DeleteTopic { name: "b".into() },
            create("c", 3),
            create("gone", 1),
            MetadataCommand::DeleteTopic { name: "gone".into() },
            // Rejected: the topic exists. It changes nothing, and the delta may carry "a" again.
            create("a", 9),
            MetadataCommand::CreatePartitions {
                name: "c".into(),
                new_assignment: vec![vec![0]],
            },
            MetadataCommand::RegisterBroker {
                broker_id: 0,
                incarnation_id: Uuid::new_v4(),
                endpoints: vec![],
                rack: Some("r".into()),
            },
            MetadataCommand::SetBrokerFenced {
                broker_id: 0,
                broker_epoch: 12,
                fenced: false,
            },
            MetadataCommand::AlterPartition {
                topic: "a".into(),
                partition: 1,
                partition_epoch: 0,
                leader: -1,
                isr: vec![],
            },
            MetadataCommand::AlterBrokerConfigs {
                entity: "".into(),
                set: vec![("log.retention.ms".into(), "5".into())].into_iter().collect(),
                delete: vec![],
            },
            MetadataCommand::AllocateProducerIds {
                broker_id: 0,
                block_size: 1000,
            },
            MetadataCommand::ReassignPartition {
                topic: "c".into(),
                partition: 0,
                partition_epoch: 0,
                target: Some(vec![0]),
            },
        ]
    }

    #[test]
    fn the_image_at_any_offset_plus_its_delta_is_the_current_image() {
        let commands = commands();
        let (images, log) = run(&commands, CHANGE_LOG_ENTRIES);
        let current = images.last().unwrap();
        for (after, base) in images.iter().enumerate() {
            let delta = ImageDelta::since(current, &log, after as u64).expect("the log reaches back");
            let mut rebuilt = base.clone();
            delta.apply_to(&mut rebuilt);
            assert_eq!(&rebuilt, current, "from offset {after}");
        }
    }

    #[test]
    fn a_delta_holds_only_what_changed() {
        let commands = commands();
        let (images, log) = run(&commands, CHANGE_LOG_ENTRIES);
        let current = images.last().unwrap();
        // After offset 7 ("c" created): "gone" created and deleted, the rejected "a", "c" grown, then a
        // broker registered and unfenced, "a"'s partition 1 left leaderless, a broker config, a
        // producer-id block, "c"'s partition 0 reassigned.
        let delta = ImageDelta::since(current, &log, 7).unwrap();
        assert_eq!(delta.topics.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(delta.topics["c"].partitions.len(), 4);
        assert_eq!(delta.topics["a"].partitions[1].leader, -1);
        assert_eq!(delta.deleted_topics, ["gone"]);
        let cluster = delta.cluster.expect("brokers and configs changed");
        assert!(!cluster.brokers[&0].fenced);
        // After the last topic creation: "a"'s ISR change and "c"'s reassignment.
        let delta = ImageDelta::since(current, &log, 11).unwrap();
        assert_eq!(delta.topics.keys().collect::<Vec<_>>(), ["a", "c"]);
        let delta = ImageDelta::since(current, &log, 15).unwrap();
        assert_eq!(delta.topics.keys().collect::<Vec<_>>(), ["c"]);
        assert_eq!(delta.cluster.map(|c| c.next_producer_id), Some(6000));
        // Caught up: an empty delta.
        assert!(ImageDelta::since(current, &log, commands.len() as u64)
            .unwrap()
            .is_empty());
        // After the producer-id floor's offset minus one, the rest of the image comes too, without topics.
        let delta = ImageDelta::since(current, &log, 4).unwrap();
        let cluster = delta.cluster.expect("the producer-id counter changed");
        assert!(cluster.topics.is_empty());
        assert_eq!(cluster.next_producer_id, 6000, "the floor, then a block of 1000");
        assert_eq!(cluster.cluster_id, "c");
    }

    #[test]
    fn a_broker_behind_the_log_gets_no_delta() {
        let commands = commands();
        let (images, log) = run(&commands, 4);
        let current = images.last().unwrap();
        // The last 4 commands are kept: deltas can start at the offset before them or later.
        let kept_from = images.len() - 1 - 4;
        assert!(ImageDelta::since(current, &log, kept_from as u64 - 1).is_none());
        for (after, base) in images.iter().enumerate().skip(kept_from) {
            let mut rebuilt = base.clone();
            ImageDelta::since(current, &log, after as u64)
                .unwrap()
                .apply_to(&mut rebuilt);
            assert_eq!(&rebuilt, current, "from offset {after}");
        }
        // A log that starts at a snapshot's offset reaches back to it and no further.
        let loaded = ChangeLog::starting_at(17);
        assert!(ImageDelta::since(current, &loaded, 16).is_none());
        assert!(ImageDelta::since(current, &loaded, 17).unwrap().is_empty());
    }

    #[test]
    fn at_fifty_thousand_partitions_a_leader_change_is_a_small_fraction_of_the_image() {
        // 1,000 topics of 50 partitions, three replicas each; then one partition's ISR shrinks.
        let mut commands: Vec<MetadataCommand> = (0..1000)
            .map(|t| MetadataCommand::CreateTopic {
                name: format!("topic-{t:04}"),
                topic_id: Uuid::new_v4(),
                assignment: (0..50).map(|p| vec![p % 3, (p + 1) % 3, (p + 2) % 3]).collect(),
                configs: BTreeMap::new(),
            })
            .collect();
        commands.push(MetadataCommand::AlterPartition {
            topic: "topic-0500".into(),
            partition: 7,
            partition_epoch: 0,
            leader: 1,
            isr: vec![1, 2],
        });
        let mut image = ClusterImage::default();
        let mut log = ChangeLog::starting_at(0);
        for (i, command) in commands.iter().enumerate() {
            apply(&mut image, i as u64 + 1, command);
            log.record(i as u64 + 1, command.scope());
        }
        let whole = serde_json::to_vec(&image).unwrap().len();
        let delta = ImageDelta::since(&image, &log, 1000).unwrap();
        assert_eq!(delta.topics.keys().collect::<Vec<_>>(), ["topic-0500"]);
        let sent = serde_json::to_vec(&delta).unwrap().len();
        println!("50,000 partitions: whole image {whole} bytes, delta for one ISR change {sent} bytes");
        assert!(
            sent * 500 < whole,
            "the delta ({sent} B) should be a tiny part of the image ({whole} B)"
        );
    }

    #[test]
    fn deltas_and_images_survive_json() {
        let commands = commands();
        let (images, log) = run(&commands, CHANGE_LOG_ENTRIES);
        let delta = ImageDelta::since(images.last().unwrap(), &log, 3).unwrap();
        let json = serde_json::to_vec(&delta).unwrap();
        assert_eq!(serde_json::from_slice::<ImageDelta>(&json).unwrap(), delta);
    }
}
