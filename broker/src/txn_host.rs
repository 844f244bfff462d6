//! What the transaction coordinator uses of its broker (`TxnHost`): delegation to `Broker`'s own
//! methods, plus sending WriteTxnMarkers to another broker's inter-broker listener over the
//! connections `MarkerConnections` keeps open between calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::broker::Broker;
use crate::log::{Partition, TopicPartition};
use crate::metadata::TopicMeta;
use crate::network::client::{ClientConnection, ClientError, CONNECT_TIMEOUT};
use crate::replication::AppendFailure;
use crate::topic_error::TopicError;
use crate::txn::{TxnCoordinator, TxnHost};

/// How long a transaction-state write may wait for the in-sync replicas (Kafka: `request.timeout.ms`).
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long another broker may take to answer WriteTxnMarkers (it waits for its replicas first).
const MARKERS_TIMEOUT: Duration = Duration::from_secs(40);
/// Idle connections kept per broker: as many as marker tasks usually send to it at once.
const MAX_IDLE_PER_BROKER: usize = 4;
/// The largest WriteTxnMarkers response accepted.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Connections to other brokers' inter-broker listeners for WriteTxnMarkers, kept open between calls
/// as Kafka's `TransactionMarkerChannelManager` keeps its connections: a connection per call would
/// leave a socket in TIME_WAIT for every remote partition leader of every transaction (hundreds a
/// second on a busy coordinator, until the ephemeral ports run out).
///
/// Owned by `Broker`; the marker tasks take an idle connection to a broker's current address (or
/// open one), call on it without holding the lock, and give it back only after a whole answer: a call
/// that failed or timed out may leave a response in flight, so its connection is dropped.
#[derive(Default)]
pub struct MarkerConnections {
    idle: parking_lot::Mutex<HashMap<i32, Vec<ClientConnection>>>,
}

impl MarkerConnections {
    /// An idle connection to `broker` at `address`; connections to an older address are dropped.
    fn take(&self, broker: i32, address: &str) -> Option<ClientConnection> {
        let mut idle = self.idle.lock();
        let connections = idle.get_mut(&broker)?;
        connections.retain(|c| c.address() == address);
        connections.pop()
    }

    fn put(&self, broker: i32, connection: ClientConnection) {
        let mut idle = self.idle.lock();
        let connections = idle.entry(broker).or_default();
        if connections.len() < MAX_IDLE_PER_BROKER {
            connections.push(connection);
        }
    }

    /// Sends WriteTxnMarkers to `broker` at `address`. A kept connection that turns out closed (the
    /// broker restarted since) is replaced by a new one once; resending is safe, a partition leader
    /// writes a marker it already has again harmlessly, as in Kafka.
    async fn call(
        &self,
        broker: i32,
        address: &str,
        client_id: &str,
        request: &RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        if let Some(mut connection) = self.take(broker, address) {
            match connection
                .call(ApiKey::WriteTxnMarkers, 1, request, MARKERS_TIMEOUT)
                .await
            {
                Ok(response) => {
                    self.put(broker, connection);
                    return Ok(response);
                }
                Err(ClientError::Io { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let mut connection = ClientConnection::connect(address, client_id, CONNECT_TIMEOUT, MAX_RESPONSE_BYTES).await?;
        let response = connection
            .call(ApiKey::WriteTxnMarkers, 1, request, MARKERS_TIMEOUT)
            .await?;
        self.put(broker, connection);
        Ok(response)
    }
}

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
        let address = self
            .metadata
            .image()
            .brokers
            .get(&leader)
            .and_then(|b| b.address(&self.config.replication.inter_broker_listener))
            .ok_or_else(|| format!("broker {leader} has no registered endpoint"))?;
        let client_id = format!("oxka-txn-markers-{}", Broker::broker_id(self));
        let response = self
            .marker_connections
            .call(leader, &address, &client_id, &RequestKind::WriteTxnMarkers(request))
            .await
            .map_err(|e| e.to_string())?;
        match response {
            ResponseKind::WriteTxnMarkers(r) => Ok(r),
            other => Err(format!("broker {leader} answered WriteTxnMarkers with {other:?}")),
        }
    }
}
