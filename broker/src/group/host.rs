//! `GroupHost`: what the group coordinator's runtime (`coordinator`, `load`) needs from the broker it
//! runs in: its id, the `offsets.topic.*` settings, the metadata of `__consumer_offsets`, that topic's
//! logs, appending to it as leader, and having the controller create it. `Broker` implements it (in
//! `broker.rs`), so nothing in `group` imports the broker that owns the group coordinator.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::log::{Partition, TopicPartition};
use crate::metadata::TopicMeta;
use crate::replication::AppendFailure;
use crate::topic_error::TopicError;

pub trait GroupHost: Sync {
    /// This broker's id.
    fn broker_id(&self) -> i32;
    /// `offsets.topic.num.partitions`.
    fn offsets_topic_num_partitions(&self) -> i32;
    /// `offsets.topic.replication.factor`.
    fn offsets_topic_replication_factor(&self) -> i16;
    /// A topic as this broker's metadata shows it.
    fn topic(&self, name: &str) -> Option<TopicMeta>;
    /// Every topic's name, as this broker's metadata shows it (subscriptions by regex).
    fn topic_names(&self) -> Vec<String>;
    /// The racks (`broker.rack`) of each partition's replicas (index = partition), for rack-aware
    /// assignment; empty when none of the topic's replicas is on a broker with a rack.
    fn partition_racks(&self, topic: &str) -> Vec<std::collections::BTreeSet<String>>;
    /// The leader of a partition, as this broker's metadata shows it.
    fn leader_of(&self, topic: &str, partition: i32) -> Option<i32>;
    /// The partition's log on this broker, if it has one.
    fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>>;
    /// Appends `records` as the partition's leader without waiting for followers
    /// (`ReplicaManager::append_now`). Returns the base offset the batch was given.
    fn append_now(&self, tp: &TopicPartition, records: &[u8], acks: i16) -> Result<i64, AppendFailure>;
    /// Appends a transactional batch the group coordinator wrote (producer id and epoch of the
    /// transaction, `baseSequence` -1) as the partition's leader, without waiting for followers: the
    /// producer's epoch is checked, its sequence is not (Kafka's `AppendOrigin.COORDINATOR`). Returns
    /// the base offset the batch was given.
    fn append_as_coordinator(&self, tp: &TopicPartition, records: &[u8]) -> Result<i64, AppendFailure>;
    /// Creates a topic through the controller (`Broker::create_topic`).
    fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> impl Future<Output = Result<TopicMeta, TopicError>> + Send;
}
