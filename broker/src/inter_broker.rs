//! One request from this broker to another over the inter-broker listener, on a connection of its own
//! (the transaction coordinator's WriteTxnMarkers, a partition leader's KIP-890 verification). The
//! address comes from the registration in this broker's metadata.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::broker::Broker;
use crate::network::client::{ClientConnection, CONNECT_TIMEOUT};

/// Largest answer accepted (markers and verifications are small).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Sends `request` to broker `target` and waits up to `timeout` for the answer; the error says what
/// failed, for the caller's (rate-limited) log line.
pub async fn call(
    broker: &Broker,
    target: i32,
    purpose: &str,
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
    let client_id = format!("oxka-{purpose}-{}", broker.broker_id());
    let mut connection = ClientConnection::connect(&address, &client_id, CONNECT_TIMEOUT, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    connection
        .call(api, version, &request, timeout)
        .await
        .map_err(|e| e.to_string())
}
