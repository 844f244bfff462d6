//! The transaction coordinator (KIP-98, transaction protocol version 1): transactional ids, their
//! producer ids and epochs, and the transactions they run, made durable in the internal topic
//! `__transaction_state`.
//!
//! Map: `state` is the pure state of one transactional id and its transitions (InitProducerId,
//! AddPartitionsToTxn, EndTxn, completion, timeouts); `records` encodes and decodes Kafka's
//! `__transaction_state` keys and values; `coordinator` is the runtime (`TxnCoordinator`): every id of
//! the partitions this broker leads behind one lock, each transition written with acks=all before it
//! is answered; `markers` completes a decided transaction by having WriteTxnMarkers written on its
//! partitions' leaders; `load` replays a partition when this broker becomes its leader. What the
//! runtime needs of the broker is the `TxnHost` trait (`host`), which `Broker` implements.
//!
//! A transactional id lives in partition `abs(javaHashCode(id)) % transaction.state.log.num.partitions`
//! of `__transaction_state`, as in Kafka.

pub mod coordinator;
#[cfg(test)]
mod coordinator_tests;
pub mod host;
mod load;
pub mod markers;
pub mod records;
pub mod state;

pub use coordinator::{TxnConfig, TxnCoordinator};
pub use host::TxnHost;
pub use load::LoadSummary;
pub use records::TRANSACTION_STATE_TOPIC;
pub use state::{TxnMetadata, TxnState};
