//! The `KafkaUser` custom resource (`oxka.io/v1alpha1`): one Kafka user of one KafkaCluster, its SCRAM
//! credential and its ACLs, managed through the Kafka admin API by `reconcile::user`.
//!
//! Shaped like Strimzi's KafkaUser (`authentication.type`, `authorization.type: simple` with a list of
//! ACL rules), except that the cluster is named by `spec.cluster` as KafkaTopic does (a required,
//! immutable field the API server checks, rather than a label). The operator writes the user's
//! password and a ready `sasl.jaas.config` line into a Secret named like the KafkaUser.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Finalizer that lets the operator delete the user's credential and ACLs before the KafkaUser goes.
pub const USER_FINALIZER: &str = "oxka.io/user";

/// A Kafka user of a KafkaCluster in the same namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "oxka.io",
    version = "v1alpha1",
    kind = "KafkaUser",
    namespaced,
    doc = "A Kafka user of an oxka KafkaCluster: its SCRAM-SHA-512 credential (password in a Secret named like the KafkaUser) and its ACLs, kept by oxka-operator through the Kafka admin API.",
    status = "KafkaUserStatus",
    shortname = "ku",
    category = "oxka",
    derive = "PartialEq",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Authentication", type_ = "string", json_path = ".spec.authentication.type"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.matches('^[a-zA-Z0-9._-]{1,64}$')").message(
        "metadata.name is the Kafka user name and the Secret's name: at most 64 of a-z A-Z 0-9 . _ -"
    ),
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// Name of the KafkaCluster (same namespace) the user belongs to. Fixed after creation.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.cluster cannot change: a user cannot move to another cluster"))]
    pub cluster: String,
    /// How the user logs in. Unset: no credential (ACLs only, e.g. for a principal from elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<UserAuthentication>,
    /// The user's ACLs. Unset: the operator leaves the user's ACLs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<UserAuthorization>,
}

/// A user's credential.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthentication {
    #[serde(rename = "type")]
    pub type_: UserAuthenticationType,
    /// Take the password from this key of a Secret instead of generating one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSource>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAuthenticationType {
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
}

/// Where a user's password comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSource {
    pub value_from: PasswordSecretRef,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSecretRef {
    pub secret_key_ref: SecretKeyRef,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A user's ACLs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthorization {
    #[serde(rename = "type")]
    pub type_: crate::crd::security::AuthorizationType,
    /// Exactly these ACLs exist for the user: others found for `User:<name>` are deleted.
    #[serde(default)]
    pub acls: Vec<AclRule>,
}

/// One ACL rule: on a resource, these operations, allowed or denied, from a host.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    pub resource: AclResource,
    /// Kafka's operations (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All).
    #[schemars(length(min = 1))]
    pub operations: Vec<AclOperation>,
    /// The client host the rule applies to; `*` (every host) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub host: Option<String>,
    /// `allow` (default) or `deny`; a deny wins over an allow.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<AclRuleType>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'cluster' || has(self.name)").message(
    "an ACL resource other than cluster needs a name (a prefix with patternType prefix, or * for all)"
))]
pub struct AclResource {
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// The resource's name (`*` for all); ignored for `cluster` (always `kafka-cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub name: Option<String>,
    /// `literal` (default) or `prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<AclPatternType>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum AclResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum AclPatternType {
    Literal,
    Prefix,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum AclRuleType {
    Allow,
    Deny,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

/// What the operator observed and did, written to the status subresource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    /// The metadata.generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with a reason: `Ready`, `ClusterNotFound`, `KafkaUnreachable`, `PasswordNotFound`, or
    /// Kafka's error name when Kafka refused a request (with Kafka's message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The principal the ACLs are for (`User:<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The Secret holding the user's password and `sasl.jaas.config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// ACL bindings the user has in Kafka now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acls: Option<i32>,
}
