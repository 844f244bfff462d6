//! What a secured cluster adds to each broker's server.properties: its listeners and their Kafka
//! `ssl.*` / `sasl.*` keys, the authorizer and `super.users`.
//!
//! A cluster whose internal listener has TLS or authentication runs three listeners:
//! - `INTERNAL` (spec.listeners.internal.port) for clients: SSL, SASL_SSL or SASL_PLAINTEXT;
//! - `REPLICATION` (9091), PLAINTEXT, the `inter.broker.listener.name` (built while brokers could not
//!   speak TLS to each other; making it mutual TLS with each broker's certificate is the next step).
//!   Its principal is ANONYMOUS, which the operator grants CLUSTER_ACTION (the inter-broker
//!   operations) with an ACL when authorization is on; the NetworkPolicy admits only broker pods to
//!   this port.
//! - `OPERATOR` (9093), SSL with `ssl.client.auth=required` against the cluster CA: the operator's
//!   own admin connection, authenticated by the client certificate it issued itself
//!   (`CN=oxka-operator`, a super user). This is how the operator creates the first SCRAM credentials
//!   without needing one.
//!
//! Certificates are files in the broker pods' `/etc/oxka/tls` (the Secret `<cluster>-broker-certs`,
//! mounted as a directory so the kubelet updates it): `broker-<id>.pem` holds broker `id`'s key and
//! certificate chain issued by the cluster CA (oxka's PEM keystore takes key and chain in one file),
//! `ca.crt` the cluster CA, and `listener-internal.pem` the key and chain of a user-provided
//! certificate (`tls.secretName`).

use crate::crd::security::AuthenticationType;
use crate::crd::validate::{OPERATOR_PORT, REPLICATION_PORT};
use crate::crd::KafkaClusterSpec;

/// Where the broker certificate Secret is mounted in broker pods.
pub const TLS_DIR: &str = "/etc/oxka/tls";
/// The operator's principal on the OPERATOR listener: the subject of its client certificate.
pub const OPERATOR_PRINCIPAL: &str = "User:CN=oxka-operator";
/// The file in the broker certificate Secret holding a user-provided listener certificate and key.
pub const USER_KEYSTORE_FILE: &str = "listener-internal.pem";
/// The cluster CA certificate's file in the broker certificate Secret.
pub const CA_FILE: &str = "ca.crt";
/// Kafka's class name of its ACL authorizer (oxka's built-in authorizer answers to it).
pub const AUTHORIZER_CLASS: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The Secret (operator-made) mounted into broker pods.
pub fn broker_certs_secret(cluster: &str) -> String {
    format!("{cluster}-broker-certs")
}

/// The Secret holding the cluster CA's certificate and key.
pub fn cluster_ca_secret(cluster: &str) -> String {
    format!("{cluster}-cluster-ca")
}

/// The Secret holding the operator's client certificate for this cluster (never mounted into pods).
pub fn operator_certs_secret(cluster: &str) -> String {
    format!("{cluster}-operator-certs")
}

/// Broker `id`'s key and certificate chain in the broker certificate Secret.
pub fn keystore_file(id: &str) -> String {
    format!("broker-{id}.pem")
}

/// One listener of a broker: name, port, and Kafka's security protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: &'static str,
    pub port: i32,
    pub protocol: &'static str,
}

/// The security protocol of the internal listener.
pub fn internal_protocol(spec: &KafkaClusterSpec) -> &'static str {
    let internal = &spec.listeners.internal;
    match (
        internal.tls_enabled(),
        internal.authentication.as_ref().map(|a| a.type_),
    ) {
        (false, None) => "PLAINTEXT",
        (true, None) | (true, Some(AuthenticationType::Tls)) => "SSL",
        (true, Some(AuthenticationType::ScramSha512)) => "SASL_SSL",
        // Refused by the CRD's rule; SSL is what mutual TLS needs.
        (false, Some(AuthenticationType::Tls)) => "SSL",
        (false, Some(AuthenticationType::ScramSha512)) => "SASL_PLAINTEXT",
    }
}

/// The internal listeners of a broker, client listener first; `inter.broker.listener.name` is the
/// last one's name when the cluster is secured, else INTERNAL.
pub fn internal_listeners(spec: &KafkaClusterSpec) -> Vec<Listener> {
    let mut out = vec![Listener {
        name: "INTERNAL",
        port: spec.listeners.internal.port,
        protocol: internal_protocol(spec),
    }];
    if spec.listeners.internal.secured() {
        out.push(Listener {
            name: "OPERATOR",
            port: OPERATOR_PORT,
            protocol: "SSL",
        });
        out.push(Listener {
            name: "REPLICATION",
            port: REPLICATION_PORT,
            protocol: "PLAINTEXT",
        });
    }
    out
}

/// The listener brokers replicate over.
pub fn inter_broker_listener(spec: &KafkaClusterSpec) -> &'static str {
    if spec.listeners.internal.secured() {
        "REPLICATION"
    } else {
        "INTERNAL"
    }
}

/// The port the operator's admin client uses: the OPERATOR listener of a secured cluster.
pub fn operator_port(spec: &KafkaClusterSpec) -> i32 {
    if spec.listeners.internal.secured() {
        OPERATOR_PORT
    } else {
        spec.listeners.internal.port
    }
}

/// The ssl/sasl keys of broker `id`'s secured listeners and the authorizer, in order.
pub fn security_entries(spec: &KafkaClusterSpec, id: &str) -> Vec<(String, String)> {
    let internal = &spec.listeners.internal;
    if !internal.secured() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut push = |key: String, value: String| out.push((key, value));
    let own_keystore = format!("{TLS_DIR}/{}", keystore_file(id));
    let ca = format!("{TLS_DIR}/{CA_FILE}");
    if internal.tls_enabled() {
        let keystore = match internal.tls.as_ref().and_then(|t| t.secret_name.as_ref()) {
            Some(_) => format!("{TLS_DIR}/{USER_KEYSTORE_FILE}"),
            None => own_keystore.clone(),
        };
        push("listener.name.internal.ssl.keystore.type".into(), "PEM".into());
        push("listener.name.internal.ssl.keystore.location".into(), keystore);
    }
    match internal.authentication.as_ref().map(|a| a.type_) {
        Some(AuthenticationType::ScramSha512) => {
            push(
                "listener.name.internal.sasl.enabled.mechanisms".into(),
                "SCRAM-SHA-512".into(),
            );
        }
        Some(AuthenticationType::Tls) => {
            push("listener.name.internal.ssl.client.auth".into(), "required".into());
            push("listener.name.internal.ssl.truststore.type".into(), "PEM".into());
            push("listener.name.internal.ssl.truststore.location".into(), ca.clone());
        }
        None => {}
    }
    push("listener.name.operator.ssl.keystore.type".into(), "PEM".into());
    push("listener.name.operator.ssl.keystore.location".into(), own_keystore);
    push("listener.name.operator.ssl.truststore.type".into(), "PEM".into());
    push("listener.name.operator.ssl.truststore.location".into(), ca);
    push("listener.name.operator.ssl.client.auth".into(), "required".into());
    if let Some(authorization) = &spec.authorization {
        push("authorizer.class.name".into(), AUTHORIZER_CLASS.into());
        let mut supers = vec![OPERATOR_PRINCIPAL.to_string()];
        supers.extend(authorization.super_users.iter().cloned());
        push("super.users".into(), supers.join(";"));
    }
    out
}
