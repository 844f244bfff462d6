//! What the transaction coordinator uses of its broker (`TxnHost`): delegation to `Broker`'s own
//! methods, plus sending WriteTxnMarkers to another broker's inter-broker listener (`inter_broker`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::broker::Broker;
use crate::log::{Partition, TopicPartition};
use crate::metadata::TopicMeta;
use crate::replication::AppendFailure;
use crate::topic_error::TopicError;
use crate::txn::{TxnCoordinator, TxnHost};

/// How long a transaction-state write may wait for the in-sync replicas (Kafka: `request.timeout.ms`).
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long another broker may take to answer WriteTxnMarkers (it waits for its replicas first).
const MARKERS_TIMEOUT: Duration = Duration::from_secs(40);
impl TxnHost for Broker {
    fn broker_id(&self) -> i32 {
        Broker::broker_id(self)
    }

    fn txn_coordinator(&self) -> &TxnCoordinator {
        &self.txns
    }

    fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.metadata.topic(name)
    }

    fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        self.metadata.leader_of(topic, partition)
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        Broker::partition(self, topic, partition)
    }

    async fn allocate_producer_id(&self) -> Result<i64, ResponseError> {
        Broker::allocate_producer_id(self).await.map_err(|e| {
            tracing::error!("cannot allocate a producer id: {}", e.message);
            ResponseError::CoordinatorNotAvailable
        })
    }

    async fn append_replicated(&self, tp: &TopicPartition, records: Vec<u8>) -> Result<(), AppendFailure> {
        self.replicas
            .append_as_leader(tp, &records, -1, STATE_WRITE_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta, TopicError> {
        Broker::create_topic(self, name, partitions, replication_factor, configs, Vec::new(), false).await
    }

    async fn write_markers(
        self: &Arc<Self>,
        leader: i32,
        request: WriteTxnMarkersRequest,
    ) -> Result<WriteTxnMarkersResponse, String> {
        if leader == Broker::broker_id(self) {
            return Ok(crate::api::write_txn_markers::write(self, request).await);
        }
        let response = crate::peer_call::call(
            self,
            leader,
            ApiKey::WriteTxnMarkers,
            1,
            RequestKind::WriteTxnMarkers(request),
            MARKERS_TIMEOUT,
        )
        .await?;
        match response {
            ResponseKind::WriteTxnMarkers(r) => Ok(r),
            other => Err(format!("broker {leader} answered WriteTxnMarkers with {other:?}")),
        }
    }
}
