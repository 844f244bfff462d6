//! The security parts of a KafkaCluster's spec, shaped like Strimzi's so that users recognise them:
//! a listener's `tls` and `authentication`, the cluster's `authorization`, and its `clusterCa`.
//!
//! What they render into (listeners, `listener.security.protocol.map`, Kafka's `ssl.*` and
//! `sasl.*` keys, `authorizer.class.name`, `super.users`) is in `render::security`; the certificates
//! the operator issues are in `reconcile::certs`.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// TLS on a listener.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// Serve TLS on this listener (security protocol SSL, or SASL_SSL with authentication
    /// scram-sha-512).
    #[serde(default)]
    pub enabled: bool,
    /// A Secret in the cluster's namespace with the listener's certificate (`tls.crt`, the chain),
    /// its key (`tls.key`, unencrypted PEM) and optionally the CA clients should trust (`ca.crt`).
    /// Unset: the operator issues each broker a certificate from its cluster CA (Secret
    /// `<cluster>-cluster-ca`) whose names cover the broker pods' DNS names and the bootstrap Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
}

/// How clients authenticate on a listener.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthenticationType {
    /// SASL SCRAM-SHA-512 with credentials kept in the coordinator ensemble (KafkaUsers create them).
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// Mutual TLS: the client presents a certificate issued by the cluster CA
    /// (`ssl.client.auth=required`); its subject is the principal.
    #[serde(rename = "tls")]
    Tls,
}

impl AuthenticationType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticationType::ScramSha512 => "scram-sha-512",
            AuthenticationType::Tls => "tls",
        }
    }
}

/// A listener's authentication.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ListenerAuthentication {
    #[serde(rename = "type")]
    pub type_: AuthenticationType,
}

/// The authorizer's kind: Kafka's ACL authorizer (Strimzi's `simple`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationType {
    #[serde(rename = "simple")]
    Simple,
}

/// The cluster's authorizer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAuthorization {
    #[serde(rename = "type")]
    pub type_: AuthorizationType,
    /// Principals allowed everything besides the operator's own (`User:admin`). Kafka's
    /// `super.users`.
    /// Checked by the operator (Type:name, no `;`), not by CEL: a rule over an unbounded list of
    /// unbounded strings exceeds the API server's cost budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub super_users: Vec<String>,
}

/// The cluster CA's certificate lifetimes (Strimzi's `clusterCa`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.renewalDays < self.validityDays").message(
    "clusterCa.renewalDays must be less than clusterCa.validityDays: certificates are renewed that many days before they expire"
))]
pub struct ClusterCaSpec {
    /// Days the CA and the certificates it issues are valid.
    #[serde(default = "default_validity_days")]
    #[schemars(range(min = 2, max = 36500))]
    pub validity_days: i32,
    /// Days before expiry a certificate is replaced (the brokers then restart one at a time onto it).
    #[serde(default = "default_renewal_days")]
    #[schemars(range(min = 1, max = 36499))]
    pub renewal_days: i32,
}

impl Default for ClusterCaSpec {
    fn default() -> Self {
        ClusterCaSpec {
            validity_days: default_validity_days(),
            renewal_days: default_renewal_days(),
        }
    }
}

fn default_validity_days() -> i32 {
    365
}

fn default_renewal_days() -> i32 {
    30
}

/// NetworkPolicies for the cluster's pods (opt-in: `enabled: true`). Each peer list is Kubernetes'
/// `NetworkPolicyPeer`s; an empty list means from anywhere.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Render one NetworkPolicy per role (brokers, coordinators).
    #[serde(default)]
    pub enabled: bool,
    /// Who may reach the brokers' client listeners (internal and external). Empty: anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<k8s_openapi::api::networking::v1::NetworkPolicyPeer>,
    /// Who may scrape `/metrics` of brokers and coordinators. Empty: anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<k8s_openapi::api::networking::v1::NetworkPolicyPeer>,
    /// Where the operator runs: it reaches the brokers' OPERATOR listener and the coordinators'
    /// `/health`. Empty: pods labelled `app.kubernetes.io/name: oxka-operator` in any namespace (the
    /// chart's label).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator: Vec<k8s_openapi::api::networking::v1::NetworkPolicyPeer>,
}
