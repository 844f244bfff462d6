//! One request to another broker named by its id: its inter-broker listener's address from this
//! broker's metadata, sent over the connections `inter_broker` keeps between calls. Used by the
//! transaction coordinator's markers (`txn_host`), KIP-890 verification (`txn_verify`) and the share
//! persister (`share_state::persister`).

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::broker::Broker;

/// Sends `request` to broker `target` and waits up to `timeout` for the answer; the error says what
/// failed, for the caller's (rate-limited) log line.
pub async fn call(
    broker: &Broker,
    target: i32,
    api: ApiKey,
    version: i16,
    request: RequestKind,
    timeout: Duration,
) -> Result<ResponseKind, String> {
    let address = broker
        .metadata
        .image()
        .brokers
        .get(&target)
        .and_then(|b| b.address(&broker.config.replication.inter_broker_listener))
        .ok_or_else(|| format!("broker {target} has no registered endpoint"))?;
    let client_id = format!("oxka-broker-{}", broker.broker_id());
    let settings = &broker.config.replication.inter_broker_security;
    broker
        .inter_broker
        .call(target, &address, &client_id, api, version, &request, timeout, settings)
        .await
        .map_err(|e| e.to_string())
}
