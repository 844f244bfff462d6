//! The `KafkaTopic` custom resource (`oxka.io/v1alpha1`): one Kafka topic of one KafkaCluster, managed
//! through the Kafka admin API by `reconcile::topic`.
//!
//! The cluster is named by `spec.cluster` (a KafkaCluster in the same namespace), not by a label as
//! Strimzi's `strimzi.io/cluster` does: a required, immutable spec field is checked by the API server
//! (a missing or changed cluster is refused at `kubectl apply`), while a label can be removed or edited
//! at any time and would silently move the topic's ownership to another cluster.
//!
//! The CRD YAML (`crds/kafkatopic.yaml`) is generated from these types like the KafkaCluster's; its CEL
//! rules refuse what Kafka could never do (fewer than one partition or replica, renaming a topic,
//! moving it to another cluster). What only Kafka knows (a replication factor above the broker count,
//! an unknown config key) is Kafka's to refuse, and its error goes to status.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Finalizer that lets the operator delete the Kafka topic before the KafkaTopic goes away.
pub const TOPIC_FINALIZER: &str = "oxka.io/topic";

/// A Kafka topic in a KafkaCluster of the same namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "oxka.io",
    version = "v1alpha1",
    kind = "KafkaTopic",
    namespaced,
    doc = "A Kafka topic of an oxka KafkaCluster, created, altered and deleted by oxka-operator through the Kafka admin API.",
    status = "KafkaTopicStatus",
    shortname = "kt",
    category = "oxka",
    derive = "PartialEq",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".status.partitions"),
    printcolumn(name = "RF", type_ = "integer", json_path = ".status.replicationFactor"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.topicName) || self.metadata.name.matches('^[a-zA-Z0-9._-]{1,249}$')").message(
        "metadata.name is not a valid Kafka topic name (at most 249 of a-z A-Z 0-9 . _ -): set spec.topicName"
    ),
)]
#[x_kube(validation = Rule::new(
    "(has(self.topicName) ? self.topicName : '') == (has(oldSelf.topicName) ? oldSelf.topicName : '')"
).message("spec.topicName cannot change: Kafka cannot rename a topic (create a new KafkaTopic instead)"))]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// Name of the KafkaCluster (same namespace) the topic lives in. Fixed after creation.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.cluster cannot change: a topic cannot move to another cluster"))]
    pub cluster: String,
    /// Kafka's name of the topic. Default: metadata.name. Fixed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[a-zA-Z0-9._-]{1,249}$"))]
    pub topic_name: Option<String>,
    /// Number of partitions. Can grow, never shrink (Kafka cannot remove partitions). Default: the
    /// brokers' num.partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.partitions must be at least 1"))]
    pub partitions: Option<i32>,
    /// Replicas of each partition. Fixed once the topic exists (a change is reported, not applied).
    /// Default: the brokers' default.replication.factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 32767))]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.replicationFactor must be at least 1"))]
    pub replication_factor: Option<i32>,
    /// Topic configs, e.g. `retention.ms: "86400000"`. Keys removed from here are removed from the
    /// topic (back to the broker default); keys set on the topic by others are left alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

impl KafkaTopic {
    /// The topic's name in Kafka: `spec.topicName`, else metadata.name.
    pub fn topic_name(&self) -> String {
        self.spec
            .topic_name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

/// What the operator observed and did, written to the status subresource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The metadata.generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with a reason: `Ready`, a Kafka error (e.g. `InvalidReplicationFactor`, with Kafka's
    /// error name and message), `NotSupported`, `ClusterNotFound`, `KafkaUnreachable` or `TopicConflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The topic's name in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Kafka's topic id (base64 UUID, as Kafka's tools print it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Partitions the topic has now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor the topic has now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// Config keys the operator set on the topic from spec.config: when one leaves the spec, the
    /// operator deletes it from the topic. Keys set by others are never in this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_config_keys: Vec<String>,
    /// The last change made outside the KafkaTopic that the operator found and corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drift: Option<String>,
}
