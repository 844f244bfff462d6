//! The transaction coordinator runtime against a `TxnHost` whose `__transaction_state` writes wait
//! for the test to let them finish: what happens to a write that completes after its partition moved
//! away and back (a coordinator fail-over and a preferred-leader election racing a request).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use tokio::sync::Semaphore;

use super::coordinator::{TxnConfig, TxnCoordinator};
use super::host::TxnHost;
use super::records::TRANSACTION_STATE_TOPIC;
use crate::log::{Partition, TopicPartition};
use crate::metadata::TopicMeta;
use crate::replication::AppendFailure;
use crate::topic_error::TopicError;

/// Leads every partition of a 50-partition `__transaction_state` that has no log here (loading finds
/// nothing); each state write succeeds once the test adds a permit to `writes`.
struct GatedHost {
    txns: TxnCoordinator,
    writes: Semaphore,
}

impl GatedHost {
    fn new() -> Arc<GatedHost> {
        Arc::new(GatedHost {
            txns: TxnCoordinator::new(
                TxnConfig {
                    num_partitions: 50,
                    replication_factor: 3,
                    min_isr: 2,
                    max_timeout_ms: 900_000,
                    id_expiration_ms: 604_800_000,
                    abort_check_interval_ms: 10_000,
                    expiry_check_interval_ms: 3_600_000,
                },
                Default::default(),
            ),
            writes: Semaphore::new(0),
        })
    }
}

impl TxnHost for GatedHost {
    fn broker_id(&self) -> i32 {
        1
    }
    fn txn_coordinator(&self) -> &TxnCoordinator {
        &self.txns
    }
    fn topic(&self, name: &str) -> Option<TopicMeta> {
        (name == TRANSACTION_STATE_TOPIC).then(|| TopicMeta {
            topic_id: uuid::Uuid::nil(),
            partitions: 50,
            replication_factor: 3,
            configs: BTreeMap::new(),
        })
    }
    fn leader_of(&self, _topic: &str, _partition: i32) -> Option<i32> {
        Some(1)
    }
    fn partition(&self, _topic: &str, _partition: i32) -> Option<Arc<Partition>> {
        None
    }
    async fn allocate_producer_id(&self) -> Result<i64, ResponseError> {
        Ok(1000)
    }
    async fn append_replicated(&self, _tp: &TopicPartition, _records: Vec<u8>) -> Result<(), AppendFailure> {
        self.writes.acquire().await.expect("open semaphore").forget();
        Ok(())
    }
    async fn create_topic(
        &self,
        name: &str,
        _partitions: i32,
        _replication_factor: i16,
        _configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta, TopicError> {
        Err(TopicError::new(ResponseError::TopicAlreadyExists, name))
    }
    async fn write_markers(
        self: &Arc<Self>,
        leader: i32,
        _request: WriteTxnMarkersRequest,
    ) -> Result<WriteTxnMarkersResponse, String> {
        Err(format!("no broker {leader} in this test"))
    }
}

/// Waits until `transactional_id` has a write in flight.
async fn until_pending(host: &GatedHost, transactional_id: &str) {
    for _ in 0..500 {
        let pending = host
            .txns
            .with_inner(|inner| inner.txns.get(transactional_id).is_some_and(|e| e.pending));
        if pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("no write of {transactional_id} in flight");
}

#[tokio::test]
async fn a_write_that_completes_after_its_partition_moved_away_and_back_is_not_installed() {
    let host = GatedHost::new();
    let partition = host.txns.partition_of(&*host, "app");
    host.txns.load_partitions(&*host, &[(partition, 5)]).unwrap();
    let init = tokio::spawn({
        let host = host.clone();
        async move { host.txns.init_producer_id(&host, "app", 10_000, None).await }
    });
    until_pending(&host, "app").await;

    // The partition moves to another broker and back (leader epoch 7) while the write is in flight;
    // the reload found the log without it.
    host.txns.unload_partitions(&*host, &[partition]);
    host.txns.load_partitions(&*host, &[(partition, 7)]).unwrap();
    host.writes.add_permits(1);
    assert_eq!(
        init.await.unwrap(),
        Err(ResponseError::NotCoordinator),
        "the answer of a coordinator epoch that ended"
    );
    assert_eq!(
        host.txns.describe(&*host, "app").map(|m| m.producer_id),
        Err(ResponseError::TransactionalIdNotFound),
        "memory holds what the new load read, not the stale write"
    );

    // The coordinator of epoch 7 serves the id from scratch.
    let init = tokio::spawn({
        let host = host.clone();
        async move { host.txns.init_producer_id(&host, "app", 10_000, None).await }
    });
    until_pending(&host, "app").await;
    host.writes.add_permits(1);
    assert_eq!(init.await.unwrap(), Ok((1000, 0)));
}
