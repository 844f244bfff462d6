//! Requests from this broker to another over the inter-broker listener (the transaction coordinator's
//! WriteTxnMarkers, a partition leader's KIP-890 verification), on connections kept between calls as
//! Kafka's `TransactionMarkerChannelManager` and `AddPartitionsToTxnManager` keep theirs: a connection
//! per call would leave a socket in TIME_WAIT for every remote leader of every transaction (hundreds a
//! second on a busy coordinator, until the ephemeral ports run out). The address comes from the
//! registration in this broker's metadata (`peer_call`, which names the target by broker id).
//!
//! Every connection to another broker (these, and the replica fetchers') is secured as the
//! inter-broker listener's protocol says (`client_security`): TLS with that listener's truststore and
//! keystore, then a SASL login with the JAAS line's username and password.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::config::inter_broker::InterBrokerSecurity;
use crate::config::keystore::{load_keystore, load_truststore};
use crate::config::tls::{KeyStore, Pem};
use crate::network::client::{ClientConnection, ClientError, CONNECT_TIMEOUT};
use crate::network::secure::{tls_client_config, ClientSecurity, PemSource, SaslLogin};

/// The client side of the inter-broker listener as `ClientConnection::connect_secured` takes it. The
/// PEM files are read on every call, so a connection opened after a certificate rotation uses the
/// new files (the listener reloads its own the same way); the broker calls it once at start-up so
/// that an unreadable file stops it with the reason.
pub fn client_security(settings: &InterBrokerSecurity) -> Result<ClientSecurity, String> {
    let tls = match &settings.tls {
        None => None,
        Some(tls) => {
            // JKS and PKCS12 stores are read here as PEM, on every call too.
            let pem_truststore;
            let truststore = match &tls.truststore {
                Pem::File(path) => PemSource::File(path),
                Pem::Inline(text) => PemSource::Inline(text),
                Pem::Store(store) => {
                    pem_truststore = String::from_utf8(
                        load_truststore(store).map_err(|e| format!("the inter-broker listener's TLS settings: {e}"))?,
                    )
                    .unwrap_or_default();
                    PemSource::Inline(&pem_truststore)
                }
            };
            let inline_keystore;
            let keystore = match &tls.keystore {
                KeyStore::File(path) => PemSource::File(path),
                KeyStore::Inline { chain, key } => {
                    inline_keystore = format!("{key}\n{chain}");
                    PemSource::Inline(&inline_keystore)
                }
                KeyStore::Store(store) => {
                    inline_keystore = String::from_utf8(
                        load_keystore(store).map_err(|e| format!("the inter-broker listener's TLS settings: {e}"))?,
                    )
                    .unwrap_or_default();
                    PemSource::Inline(&inline_keystore)
                }
            };
            Some(
                tls_client_config(Some(truststore), Some(keystore), tls.check_host_name)
                    .map_err(|e| format!("the inter-broker listener's TLS settings: {e}"))?,
            )
        }
    };
    let sasl = settings.sasl.as_ref().map(|login| SaslLogin {
        mechanism: login.mechanism.clone(),
        user: login.username.clone(),
        password: login.password.clone(),
    });
    Ok(ClientSecurity { tls, sasl })
}

/// Idle connections kept per broker: as many as the marker and verification tasks usually send to
/// it at once.
const MAX_IDLE_PER_BROKER: usize = 4;
/// Largest answer accepted (markers and verifications are small).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Idle connections to other brokers, by broker id. Owned by `Broker`. A caller takes an idle
/// connection to the broker's current address (or opens one), calls on it without holding the lock,
/// and gives it back only after a whole answer: a call that failed or timed out may leave a response
/// in flight, so its connection is dropped.
#[derive(Default)]
pub struct InterBrokerConnections {
    idle: parking_lot::Mutex<HashMap<i32, Vec<ClientConnection>>>,
}

impl InterBrokerConnections {
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

    /// Sends `request` to `broker` at `address`. A kept connection that turns out closed (the broker
    /// restarted since) is replaced by a new one once; both callers' requests are safe to resend (a
    /// leader writes a marker it already has again harmlessly, as in Kafka; a verification writes
    /// nothing).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call(
        &self,
        broker: i32,
        address: &str,
        client_id: &str,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
        timeout: Duration,
        settings: &InterBrokerSecurity,
    ) -> Result<ResponseKind, ClientError> {
        if let Some(mut connection) = self.take(broker, address) {
            match connection.call(api, version, request, timeout).await {
                Ok(response) => {
                    self.put(broker, connection);
                    return Ok(response);
                }
                Err(ClientError::Io { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // Built only for a new connection: a kept one needs no PEM files read.
        let security = client_security(settings).map_err(ClientError::Protocol)?;
        let mut connection =
            ClientConnection::connect_secured(address, client_id, CONNECT_TIMEOUT, MAX_RESPONSE_BYTES, &security)
                .await?;
        let response = connection.call(api, version, request, timeout).await?;
        self.put(broker, connection);
        Ok(response)
    }
}
