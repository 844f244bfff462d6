//! Replication throttles (Kafka's `ReplicationQuotaManager`, KIP-73): a byte rate per broker for the
//! leader side (`leader.replication.throttled.rate`: bytes this broker serves to followers) and for the
//! follower side (`follower.replication.throttled.rate`: bytes its fetchers copy), applied only to the
//! replicas the topic configs `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` name, and only while such a replica is out of sync. This is
//! what `kafka-reassign-partitions --throttle` sets, so a reassignment cannot starve clients or in-sync
//! followers.
//!
//! The rate is measured as Kafka measures it: `replication.quota.window.num` (11) windows of
//! `replication.quota.window.size.seconds` (1), over at least all but one window's length, so a
//! throttle lets about ten seconds' worth through at first and then holds the average. A throttled
//! replica is left out of a fetch (follower) or gets no records (leader) while the rate is above the
//! limit; bytes of throttled replicas are recorded whether or not the limit is reached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::coordinator::ClusterImage;
use crate::log::{ThrottledReplicas, TopicPartition};
use crate::quota::SampledRate;

/// Kafka's `leader.replication.throttled.rate` / `follower.replication.throttled.rate` default: none.
pub const UNLIMITED: u64 = i64::MAX as u64;

/// One side's throttle: the limit, the measured rate, and which replicas on this broker it applies to.
pub struct ReplicationQuota {
    limit: AtomicU64,
    rate: Mutex<SampledRate>,
    throttled: RwLock<HashMap<String, ThrottledPartitions>>,
}

/// The partitions of one topic whose replica on this broker is throttled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ThrottledPartitions {
    All,
    Some(Vec<i32>),
}

impl ReplicationQuota {
    pub fn new(samples: usize, window_ms: i64) -> Self {
        ReplicationQuota {
            limit: AtomicU64::new(UNLIMITED),
            rate: Mutex::new(SampledRate::new(samples, window_ms)),
            throttled: RwLock::default(),
        }
    }

    /// The limit in bytes per second (`UNLIMITED` when none is set).
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    pub fn is_throttled(&self, tp: &TopicPartition) -> bool {
        match self.throttled.read().get(&tp.topic) {
            None => false,
            Some(ThrottledPartitions::All) => true,
            Some(ThrottledPartitions::Some(partitions)) => partitions.contains(&tp.partition),
        }
    }

    pub fn is_quota_exceeded(&self, now_ms: i64) -> bool {
        let limit = self.limit();
        limit != UNLIMITED && self.rate.lock().rate(now_ms) > limit as f64
    }

    pub fn record(&self, bytes: u64, now_ms: i64) {
        if bytes > 0 {
            self.rate.lock().record(bytes, now_ms);
        }
    }

    /// The measured rate, bytes per second.
    pub fn rate(&self, now_ms: i64) -> f64 {
        self.rate.lock().rate(now_ms)
    }

    /// Takes the limit and the throttled replicas of `broker` from the image: the broker's dynamic config
    /// `rate_key`, else the cluster-wide default's, else none; the topics' `replicas_key` lists.
    fn update(&self, image: &ClusterImage, broker: i32, rate_key: &str, replicas_key: &str) {
        let limit = image
            .dynamic_broker_config(broker, rate_key)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(UNLIMITED);
        self.limit.store(limit, Ordering::Relaxed);
        let mut throttled = HashMap::new();
        for (name, topic) in &image.topics {
            let Some(value) = topic.configs.get(replicas_key) else {
                continue;
            };
            // Validated when it was set; a list this broker cannot read throttles nothing.
            match ThrottledReplicas::parse(value).unwrap_or_default() {
                ThrottledReplicas::None => {}
                ThrottledReplicas::All => {
                    throttled.insert(name.clone(), ThrottledPartitions::All);
                }
                listed @ ThrottledReplicas::Listed(_) => {
                    let partitions: Vec<i32> = (0..topic.partitions.len() as i32)
                        .filter(|p| listed.covers(*p, broker))
                        .collect();
                    if !partitions.is_empty() {
                        throttled.insert(name.clone(), ThrottledPartitions::Some(partitions));
                    }
                }
            }
        }
        *self.throttled.write() = throttled;
    }
}

/// The leader-side and follower-side throttles of one broker.
pub struct ReplicationQuotas {
    pub leader: ReplicationQuota,
    pub follower: ReplicationQuota,
}

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

impl ReplicationQuotas {
    pub fn new(samples: usize, window_ms: i64) -> Self {
        ReplicationQuotas {
            leader: ReplicationQuota::new(samples, window_ms),
            follower: ReplicationQuota::new(samples, window_ms),
        }
    }

    /// Applies what the image says for `broker` (every metadata update).
    pub fn update(&self, image: &ClusterImage, broker: i32) {
        self.leader.update(image, broker, LEADER_RATE, LEADER_REPLICAS);
        self.follower.update(image, broker, FOLLOWER_RATE, FOLLOWER_REPLICAS);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::coordinator::image::{PartitionState, TopicState};

    #[test]
    fn a_quota_is_exceeded_only_above_its_limit_and_only_when_set() {
        let q = ReplicationQuota::new(11, 1000);
        q.record(1 << 30, 0);
        assert!(!q.is_quota_exceeded(0), "no limit set: never exceeded");
        q.limit.store(1_000_000, Ordering::Relaxed);
        assert!(q.is_quota_exceeded(0));
        q.limit.store(200_000_000, Ordering::Relaxed);
        assert!(!q.is_quota_exceeded(0), "1 GiB over 10 s is below 200 MB/s");
    }

    fn image(broker_configs: &[(&str, &str, &str)], topic_configs: &[(&str, &str)]) -> ClusterImage {
        let mut image = ClusterImage::default();
        for (entity, k, v) in broker_configs {
            image
                .broker_configs
                .entry(entity.to_string())
                .or_default()
                .insert(k.to_string(), v.to_string());
        }
        let partition = PartitionState {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        image.topics.insert(
            "t".into(),
            TopicState {
                topic_id: uuid::Uuid::nil(),
                partitions: vec![partition.clone(), partition.clone(), partition],
                configs: topic_configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            },
        );
        image
    }

    #[test]
    fn limits_and_replicas_come_from_the_image_for_this_broker() {
        let q = ReplicationQuotas::new(11, 1000);
        let tp = |p| TopicPartition::new("t", p);
        q.update(
            &image(
                &[
                    ("2", LEADER_RATE, "5000"),
                    ("", LEADER_RATE, "7000"),
                    ("", FOLLOWER_RATE, "9000"),
                ],
                &[(LEADER_REPLICAS, "0:2,1:3"), (FOLLOWER_REPLICAS, "*")],
            ),
            2,
        );
        assert_eq!(q.leader.limit(), 5000, "the broker's own value wins over the default");
        assert_eq!(
            q.follower.limit(),
            9000,
            "the cluster default applies when the broker has none"
        );
        assert!(q.leader.is_throttled(&tp(0)));
        assert!(!q.leader.is_throttled(&tp(1)), "1:3 names broker 3, not this one");
        assert!((0..3).all(|p| q.follower.is_throttled(&tp(p))));
        assert!(!q.leader.is_throttled(&TopicPartition::new("other", 0)));
        // Configs removed (`kafka-reassign-partitions --verify`): no limit, nothing throttled.
        q.update(&image(&[], &[]), 2);
        assert_eq!(q.leader.limit(), UNLIMITED);
        assert!(!q.leader.is_throttled(&tp(0)) && !q.follower.is_throttled(&tp(0)));
    }
}
