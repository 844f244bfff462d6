//! How the operator's own Kafka connections are secured, per address.
//!
//! Every admin function (`kafka_admin`, `topic_admin`, `user_admin`) and the canary take only a
//! `host:port`; the brokers' Metadata answers hand the canary further addresses (each broker's
//! OPERATOR endpoint). So the security is looked up by address here: the cluster reconciler
//! registers, for a secured cluster, its admin address and every broker's OPERATOR endpoint with
//! the TLS client configuration built from the operator's client certificate (`reconcile::certs`).
//! An address nobody registered is PLAINTEXT, as before.
//!
//! The operator checks a secured cluster's brokers by their chain to the cluster's own CA, not by
//! host name: that CA signs only this cluster's brokers, and the admin address may be a tunnel or a
//! Service whose name no certificate lists (`--kafka-bootstrap-template`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use oxka_protocol::network::secure::{tls_client_config, ClientSecurity, PemSource};

/// address -> (the cluster, `namespace/name`, that registered it; how to connect).
type Registry = HashMap<String, (String, ClientSecurity)>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The security to use for `address` (PLAINTEXT when none was registered).
pub fn for_address(address: &str) -> ClientSecurity {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(address)
        .map(|(_, security)| security.clone())
        .unwrap_or_default()
}

/// Connections to each of `addresses` use `security` from now on, registered for `cluster`.
pub fn register(cluster: &str, addresses: impl IntoIterator<Item = String>, security: &ClientSecurity) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    for address in addresses {
        map.insert(address, (cluster.to_string(), security.clone()));
    }
}

/// Connections to the addresses `cluster` registered are PLAINTEXT again (it is no longer secured).
/// Only its own: two clusters may share an address when the operator reaches them through one
/// tunnel (`--kafka-bootstrap-template` without placeholders, as the e2e tests do).
pub fn forget(cluster: &str) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, (owner, _)| owner != cluster);
    granted().lock().unwrap_or_else(|e| e.into_inner()).remove(cluster);
}

fn granted() -> &'static Mutex<std::collections::HashSet<String>> {
    static GRANTED: OnceLock<Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    GRANTED.get_or_init(Default::default)
}

/// Whether this process already granted `cluster`'s replication listener its ACL.
pub fn replication_granted(cluster: &str) -> bool {
    granted().lock().unwrap_or_else(|e| e.into_inner()).contains(cluster)
}

pub fn set_replication_granted(cluster: &str) {
    granted()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(cluster.to_string());
}

/// TLS with the operator's client certificate (`keystore_pem`: key then chain) trusting `ca_pem`.
pub fn mutual_tls(ca_pem: &str, keystore_pem: &str) -> Result<ClientSecurity, String> {
    let tls = tls_client_config(
        Some(PemSource::Inline(ca_pem)),
        Some(PemSource::Inline(keystore_pem)),
        false,
    )?;
    Ok(ClientSecurity {
        tls: Some(tls),
        sasl: None,
    })
}
