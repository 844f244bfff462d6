//! `TxnHost`: what the transaction coordinator needs from the broker it runs in: its id and settings,
//! the metadata and logs of `__transaction_state`, producer ids, appending state records with acks=all,
//! having the controller create the topic, and writing markers on partition leaders (itself or another
//! broker). `Broker` implements it (in `broker.rs`), so nothing in `txn` imports the broker.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::coordinator::TxnCoordinator;
use crate::log::{Partition, TopicPartition};
use crate::metadata::TopicMeta;
use crate::replication::AppendFailure;
use crate::topic_error::TopicError;

pub trait TxnHost: Send + Sync + 'static {
    fn broker_id(&self) -> i32;
    /// The coordinator this host runs (for tasks that outlive a request).
    fn txn_coordinator(&self) -> &TxnCoordinator;
    /// A topic as this broker's metadata shows it.
    fn topic(&self, name: &str) -> Option<TopicMeta>;
    /// The leader of a partition, as this broker's metadata shows it.
    fn leader_of(&self, topic: &str, partition: i32) -> Option<i32>;
    /// The partition's log on this broker, if it has one.
    fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>>;
    /// A fresh producer id from the controller.
    fn allocate_producer_id(&self) -> impl Future<Output = Result<i64, ResponseError>> + Send;
    /// Appends `records` as the partition's leader with acks=all, answering once the in-sync replicas
    /// have them.
    fn append_replicated(
        &self,
        tp: &TopicPartition,
        records: Vec<u8>,
    ) -> impl Future<Output = Result<(), AppendFailure>> + Send;
    /// Creates a topic through the controller.
    fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<TopicMeta, TopicError>> + Send;
    /// Sends WriteTxnMarkers to broker `leader` (handled in place when it is this broker).
    fn write_markers(
        self: &Arc<Self>,
        leader: i32,
        request: WriteTxnMarkersRequest,
    ) -> impl Future<Output = Result<WriteTxnMarkersResponse, String>> + Send;
}
