//! The `KafkaCluster` custom resource (`oxka.io/v1alpha1`): the types users write, their OpenAPI schema
//! with defaults and CEL validation rules, and the status the operator reports.
//!
//! The CRD YAML under `crds/` is generated from these types (`oxka-operator crd`); a unit test fails
//! when the committed file is stale. Rules that the API server can check (shape, ranges, odd ensemble
//! size, external listener addressing, immutable fields) are CEL rules here, so `kubectl apply` rejects a
//! bad spec with a readable message. Rules that need the operator's knowledge (which server.properties
//! keys the operator owns, heap against memory limit) live in `validate` and are reported in status.

pub mod admission;
pub mod security;
pub mod topic;
pub mod user;
pub mod validate;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every oxka custom resource.
pub const GROUP: &str = "oxka.io";
/// Annotation that stops reconciliation of one KafkaCluster while set to `"true"`.
pub const PAUSE_ANNOTATION: &str = "oxka.io/paused";
/// Annotation whose value is copied into every pod template: changing it (e.g. to the current time)
/// restarts every pod through the health-gated roll, as a config change would.
pub const RESTART_ANNOTATION: &str = "oxka.io/restart";
/// Annotation asking the operator to spread replicas and preferred leaders over all brokers (value
/// `spread`); removed by the operator when done.
pub const REBALANCE_ANNOTATION: &str = "oxka.io/rebalance";

/// A Kafka-compatible cluster: a coordinator ensemble plus brokers running the `oxka` image.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "oxka.io",
    version = "v1alpha1",
    kind = "KafkaCluster",
    namespaced,
    doc = "An oxka Kafka cluster: a coordinator ensemble and brokers, reconciled by oxka-operator.",
    status = "KafkaClusterStatus",
    shortname = "kc",
    category = "oxka",
    derive = "PartialEq",
    printcolumn(name = "Brokers", type_ = "integer", json_path = ".spec.brokers.replicas"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Bootstrap", type_ = "string", json_path = ".status.bootstrapAddress"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 40").message(
        "metadata.name must be at most 40 characters: StatefulSet, pod and Service names are derived from it and Kubernetes limits them to 63"
    ),
)]
#[x_kube(validation = Rule::new(
    "!has(self.listeners.external) || self.listeners.external.type != 'NodePort' || !has(self.listeners.external.nodePortBase) || self.listeners.external.nodePortBase + self.brokers.replicas <= 32768"
).message("listeners.external.nodePortBase + brokers.replicas must stay within the NodePort range (at most 32767 for the last broker)"))]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Container image of oxka (one image runs brokers and coordinators).
    #[serde(default = "default_image")]
    pub image: String,
    /// Image pull policy for every pod (Always, IfNotPresent, Never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(Always|IfNotPresent|Never)$"))]
    pub image_pull_policy: Option<String>,
    /// The brokers: Kafka clients connect to them.
    #[serde(default)]
    pub brokers: BrokerSpec,
    /// The coordinator ensemble holding cluster metadata (the role ZooKeeper plays for Kafka).
    #[serde(default)]
    pub coordinators: CoordinatorSpec,
    /// How clients reach the brokers.
    #[serde(default)]
    pub listeners: ListenersSpec,
    /// Rack awareness: spread brokers over this topology domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<RackSpec>,
    /// The built-in canary: the operator produces and consumes a numbered record on the internal topic
    /// `__oxka_canary` and reports what was lost, duplicated and how long records took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySpec>,
    /// Kafka's ACL authorizer on every broker (`authorizer.class.name`, `super.users`); KafkaUsers'
    /// ACLs are what it enforces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<security::ClusterAuthorization>,
    /// The cluster CA the operator creates for the brokers' certificates (and its own client
    /// certificate): how long its certificates are valid and how early they are renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ca: Option<security::ClusterCaSpec>,
    /// NetworkPolicies per role: client ports from `clients`, replication only from brokers, the
    /// ensemble's ports only from brokers and coordinators, metrics from `metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<security::NetworkPolicySpec>,
}

/// The built-in canary (an acks=all idempotent producer and a consumer run by the operator itself).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.lostAfterSeconds >= 2 * self.intervalSeconds").message(
    "canary.lostAfterSeconds must be at least twice canary.intervalSeconds: a record is declared lost only after it had time to arrive"
))]
pub struct CanarySpec {
    /// Run the canary for this cluster.
    #[serde(default)]
    pub enabled: bool,
    /// Seconds between two canary records.
    #[serde(default = "default_canary_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: i32,
    /// An acknowledged record not consumed within this many seconds counts as lost (DataLoss).
    #[serde(default = "default_canary_lost_after")]
    #[schemars(range(min = 2, max = 86400))]
    pub lost_after_seconds: i32,
}

impl Default for CanarySpec {
    fn default() -> Self {
        CanarySpec {
            enabled: false,
            interval_seconds: default_canary_interval(),
            lost_after_seconds: default_canary_lost_after(),
        }
    }
}

fn default_canary_interval() -> i32 {
    1
}

fn default_canary_lost_after() -> i32 {
    60
}

pub fn default_image() -> String {
    format!("oxka:{}", env!("CARGO_PKG_VERSION"))
}

/// The broker tier.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
// Heap against the memory limit is checked by the operator (status `InvalidSpec`): as a CEL rule over
// the unbounded quantity strings of `resources`, the API server's cost estimate refuses it.
#[x_kube(validation = Rule::new("!has(self.heap) || isQuantity(string(self.heap))").message("heap must be a quantity such as 1Gi or 512Mi"))]
pub struct BrokerSpec {
    /// Number of brokers; broker.id is the pod's ordinal (0..replicas-1).
    #[serde(default = "default_broker_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,
    /// CPU and memory requests and limits of each broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Heap (memory budget) of each broker, rendered as KAFKA_HEAP_OPTS (-Xmx/-Xms). Must be below the
    /// memory limit: the rest is page cache. Default: half the memory limit, or 1Gi without a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<Quantity>,
    /// Where each broker keeps its log.dirs.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Extra server.properties keys, e.g. `num.partitions: "6"`. Keys the operator owns (broker.id,
    /// listeners, zookeeper.connect, log.dirs, ...) are refused, with the reason in status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Labels, annotations and scheduling of broker pods.
    #[serde(default)]
    pub pod: PodOverrides,
    /// Replication throttle, in bytes/s on each broker, while the operator moves replicas (draining
    /// brokers before a scale-down, or spreading them on `oxka.io/rebalance: spread`): Kafka's
    /// leader/follower.replication.throttled.rate, applied to the moving replicas only, removed when
    /// the move is done. 0: no throttle.
    #[serde(default = "default_reassignment_throttle")]
    #[schemars(range(min = 0))]
    pub reassignment_throttle_bytes_per_second: i64,
}

impl Default for BrokerSpec {
    fn default() -> Self {
        BrokerSpec {
            replicas: default_broker_replicas(),
            resources: None,
            heap: None,
            storage: StorageSpec::default(),
            config: BTreeMap::new(),
            pod: PodOverrides::default(),
            reassignment_throttle_bytes_per_second: default_reassignment_throttle(),
        }
    }
}

fn default_broker_replicas() -> i32 {
    3
}

/// 100 MiB/s: a drain or rebalance copies data without starving clients of a broker's disk and network.
pub const DEFAULT_REASSIGNMENT_THROTTLE: i64 = 100 * 1024 * 1024;

fn default_reassignment_throttle() -> i64 {
    DEFAULT_REASSIGNMENT_THROTTLE
}

/// The coordinator ensemble.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
// Heap against the memory limit is checked by the operator (status `InvalidSpec`): as a CEL rule over
// the unbounded quantity strings of `resources`, the API server's cost estimate refuses it.
#[x_kube(validation = Rule::new("!has(self.heap) || isQuantity(string(self.heap))").message("heap must be a quantity such as 1Gi or 512Mi"))]
pub struct CoordinatorSpec {
    /// Ensemble size: odd, so that a majority survives losing members. Fixed after creation.
    #[serde(default = "default_coordinator_replicas")]
    #[schemars(range(min = 1, max = 7))]
    #[x_kube(
        validation = Rule::new("self % 2 == 1").message("coordinators.replicas must be odd (1, 3, 5 or 7): an even ensemble tolerates no more failures than the odd one below it"),
        validation = Rule::new("self == oldSelf").message("coordinators.replicas cannot change after creation: resizing the ensemble needs a membership change the operator does not perform yet")
    )]
    pub replicas: i32,
    /// CPU and memory requests and limits of each coordinator container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Heap of each coordinator (KAFKA_HEAP_OPTS). Default: half the memory limit, or 512Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<Quantity>,
    /// Where each coordinator keeps its Raft log (dataDir).
    #[serde(default)]
    pub storage: StorageSpec,
    /// Labels, annotations and scheduling of coordinator pods.
    #[serde(default)]
    pub pod: PodOverrides,
}

impl Default for CoordinatorSpec {
    fn default() -> Self {
        CoordinatorSpec {
            replicas: default_coordinator_replicas(),
            resources: None,
            heap: None,
            storage: StorageSpec::default(),
            pod: PodOverrides::default(),
        }
    }
}

fn default_coordinator_replicas() -> i32 {
    3
}

/// Persistent (a PVC per pod) or ephemeral (emptyDir: data is lost with the pod; for tests) storage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message(
    "storage cannot change after creation: StatefulSet volumeClaimTemplates are immutable (resize the PVCs directly)"
))]
pub struct StorageSpec {
    /// Size of each pod's PersistentVolumeClaim. Default: 10Gi for brokers, 1Gi for coordinators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// StorageClass of the claims; the cluster's default class when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Use an emptyDir instead of a PVC. Data does not survive a pod restart.
    #[serde(default)]
    pub ephemeral: bool,
}

/// Pod-level overrides, merged into what the operator renders.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Extra pod labels (the operator's selector labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Pod priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Listeners: `internal` always exists; `external` adds one address per broker outside the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListenersSpec {
    #[serde(default)]
    pub internal: InternalListener,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalListener>,
}

/// The in-cluster listener, advertised as each pod's DNS name under the headless Service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.authentication) || self.authentication.type != 'tls' || (has(self.tls) && self.tls.enabled)"
).message("listeners.internal.authentication.type tls (mutual TLS) needs listeners.internal.tls.enabled: true"))]
pub struct InternalListener {
    #[serde(default = "default_internal_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// TLS on this listener: certificates from a Secret, or issued by the operator's cluster CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<security::ListenerTls>,
    /// How clients authenticate on this listener (none when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<security::ListenerAuthentication>,
}

impl Default for InternalListener {
    fn default() -> Self {
        InternalListener {
            port: default_internal_port(),
            tls: None,
            authentication: None,
        }
    }
}

impl InternalListener {
    /// TLS is on (`tls.enabled`).
    pub fn tls_enabled(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.enabled)
    }

    /// Anything beyond PLAINTEXT: the cluster then runs the operator's CA, a separate replication
    /// listener and the operator's own mTLS listener.
    pub fn secured(&self) -> bool {
        self.tls_enabled() || self.authentication.is_some()
    }
}

fn default_internal_port() -> i32 {
    9092
}

/// How the external listener is exposed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalType {
    NodePort,
    LoadBalancer,
}

/// A listener reachable from outside the cluster, with a distinct advertised address per broker: a
/// Service per broker, advertised as `advertisedHostTemplate` with `{id}` replaced by broker.id, on
/// `nodePortBase + id` (NodePort) or `port` (LoadBalancer).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'NodePort' || has(self.nodePortBase)").message(
        "a NodePort external listener needs nodePortBase: broker N gets node port nodePortBase+N, so each broker has its own advertised address"
    ),
    validation = Rule::new("self.type != 'LoadBalancer' || self.advertisedHostTemplate.contains('{id}')").message(
        "a LoadBalancer external listener needs {id} in advertisedHostTemplate (e.g. kafka-{id}.example.com): every broker has its own load balancer and address"
    )
)]
pub struct ExternalListener {
    #[serde(rename = "type")]
    pub type_: ExternalType,
    /// Port the broker listens on for external clients, and the LoadBalancer port.
    #[serde(default = "default_external_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Host advertised to external clients; `{id}` becomes the broker id.
    #[schemars(length(min = 1, max = 253))]
    pub advertised_host_template: String,
    /// First NodePort; broker N uses nodePortBase + N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30000, max = 32767))]
    pub node_port_base: Option<i32>,
    /// Annotations of the per-broker Services (e.g. cloud load-balancer settings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn default_external_port() -> i32 {
    9094
}

/// Rack awareness.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RackSpec {
    /// Node label whose value names a broker's rack; brokers are spread evenly across its values.
    #[serde(default = "default_topology_key")]
    #[schemars(length(min = 1))]
    pub topology_key: String,
}

fn default_topology_key() -> String {
    "topology.kubernetes.io/zone".to_string()
}

/// What the operator observed and did, written to the status subresource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The metadata.generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<RoleStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinators: Option<RoleStatus>,
    /// In-cluster bootstrap address for clients (`bootstrap.servers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_address: Option<String>,
    /// The rolling restart in progress (absent when every pod runs the current revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll: Option<RollStatus>,
    /// Brokers being drained before a scale-down (absent when none is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainStatus>,
    /// The built-in canary's figures (absent while it is disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// The last rolling restart that finished: when, what it restarted, and the canary's figures during it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_roll: Option<LastRollStatus>,
}

/// What the canary counted since it started (carried over an operator restart from the previous status).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The internal topic the canary writes to and reads from.
    pub topic: String,
    /// Records sent.
    pub produced: i64,
    /// Records the cluster acknowledged (acks=all).
    pub acknowledged: i64,
    /// Records the producer gave up on (an error that is not retriable, or no answer in time).
    pub failed: i64,
    /// Distinct records read back.
    pub consumed: i64,
    /// Acknowledged records not read back within `lostAfterSeconds`.
    pub lost: i64,
    /// Records read back more than once.
    pub duplicated: i64,
    /// End-to-end latency (send to read back) of the most recent records, median, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<i64>,
    /// The same, 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<i64>,
    /// The canary's last problem (cannot reach the cluster, topic refused, ...), if it has one now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The last rolling restart that finished.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LastRollStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Pods of the cluster (both tiers) created since the roll began: the ones it restarted.
    pub pods_restarted: i32,
    /// The canary's figures during the roll, when the canary ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<RollCanaryStatus>,
}

/// The canary's counts between the start and the end of one roll.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollCanaryStatus {
    pub produced: i64,
    pub acknowledged: i64,
    pub failed: i64,
    pub lost: i64,
    pub duplicated: i64,
    /// 99th percentile end-to-end latency of the records read back during the roll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<i64>,
    /// False when the operator restarted during the roll: the figures cover only part of it.
    pub complete: bool,
}

/// Progress of moving every partition off the brokers a scale-down removes (AlterPartitionReassignments).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DrainStatus {
    /// Ids of the brokers being emptied (the highest ordinals).
    pub brokers: Vec<i32>,
    /// Partitions that still have a replica on those brokers.
    pub partitions_left: i32,
    /// What the drain did or waits for.
    pub message: String,
    /// When this drain began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// Progress of a health-gated rolling restart: coordinators first, then brokers, one pod at a time.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollStatus {
    /// The tier rolling now: `coordinators` or `brokers`.
    pub tier: String,
    /// `Restarting` (a pod was just deleted), `Waiting` (for health), or `Stuck` (a pod does not become
    /// healthy; nothing else restarts until it does or the spec changes).
    pub state: String,
    /// The pod restarted or stuck, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Pods of this tier still on an older revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods_left: Vec<String>,
    /// Why the roll waits, what it restarted, or why it is stuck.
    pub message: String,
    /// When this roll began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// Pod counts of one role, from its StatefulSet.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Desired pods.
    pub replicas: i32,
    /// Pods passing their readiness probe.
    pub ready_replicas: i32,
    /// Pods running the current config (hash).
    pub updated_replicas: i32,
    /// Hash of the rendered configuration the pods should run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}
