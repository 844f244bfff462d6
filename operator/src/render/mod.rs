//! Rendering: a pure function from a `KafkaCluster` (plus the few facts the operator observed, such as
//! which brokers may be removed) to every Kubernetes object the operator applies. No I/O here: the
//! `render` subcommand prints exactly what `reconcile` applies, and unit tests compare it with committed
//! expected YAML (`tests/fixtures/`).
//!
//! Objects are grouped by role (`Tier`) because the reconciler applies the coordinator tier first and
//! holds the broker tier while the ensemble is rolling.

pub mod check;
pub mod config;
pub mod network_policy;
mod objects;
pub mod security;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::crd::validate::{validate, InvalidSpec, Sizing};
use crate::crd::KafkaCluster;

/// Pod template annotation carrying the config hash: changing it rolls the StatefulSet.
pub const CONFIG_HASH_ANNOTATION: &str = "oxka.io/config-hash";
/// Value of `app.kubernetes.io/managed-by` on everything the operator creates.
pub const MANAGER: &str = "oxka-operator";

/// The two roles of an oxka pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Broker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Broker => "broker",
        }
    }
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the KafkaCluster has no metadata.name")]
    MissingName,
    #[error(transparent)]
    InvalidSpec(#[from] InvalidSpec),
    /// A rendered file oxka itself would refuse at start-up (`check`).
    #[error("{}", .0.join("; "))]
    RefusedConfig(Vec<String>),
    #[error("building the {kind} {name} failed: {source}")]
    Build {
        kind: &'static str,
        name: String,
        source: serde_json::Error,
    },
}

/// Inputs to rendering beyond the KafkaCluster itself.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// DNS suffix of the cluster (`cluster.local` by default).
    pub cluster_domain: String,
    /// Brokers to run when it differs from spec (a refused scale-down keeps the current count).
    pub broker_replicas: Option<i32>,
    /// `broker.rack` per broker id (the pod ordinal), learned from the label `spec.rack.topologyKey` of
    /// the node each broker pod was scheduled on. Per-pod: never part of the config hash.
    pub racks: BTreeMap<String, BrokerRack>,
    /// Digest of the certificates in the broker certificate Secret (`reconcile::certs`): part of the
    /// brokers' config hash, so a renewal restarts them. None offline (`render`) and when unsecured.
    pub certificates_hash: Option<String>,
}

/// A broker's rack and the node it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRack {
    /// The value of the node's topology label: rendered as `broker.rack`.
    pub rack: String,
    /// The node the broker's pod was scheduled on when the label was read. Rendered next to the file
    /// (`rack-node-N`) so that a pod rescheduled to another node waits for its new rack instead of
    /// starting with the previous node's.
    pub node: String,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            cluster_domain: "cluster.local".to_string(),
            broker_replicas: None,
            racks: BTreeMap::new(),
            certificates_hash: None,
        }
    }
}

/// Everything the renderer needs, resolved once.
pub struct RenderContext<'a> {
    pub cluster: &'a KafkaCluster,
    pub name: String,
    pub namespace: String,
    pub cluster_domain: String,
    pub broker_replicas: i32,
    pub coordinator_replicas: i32,
    pub sizing: Sizing,
    pub racks: BTreeMap<String, BrokerRack>,
    pub certificates_hash: Option<String>,
}

impl RenderContext<'_> {
    /// Name of a role's StatefulSet (and prefix of its pods).
    pub fn workload_name(&self, role: Role) -> String {
        format!("{}-{}", self.name, role.as_str())
    }

    pub fn headless_name(&self, role: Role) -> String {
        format!("{}-{}-headless", self.name, role.as_str())
    }

    pub fn config_map_name(&self, role: Role) -> String {
        format!("{}-{}-config", self.name, role.as_str())
    }

    pub fn bootstrap_name(&self) -> String {
        format!("{}-bootstrap", self.name)
    }

    /// The stable DNS name of pod `ordinal` of a role under its headless Service.
    pub fn pod_host(&self, role: Role, ordinal: &str) -> String {
        format!(
            "{}-{ordinal}.{}.{}.svc.{}",
            self.workload_name(role),
            self.headless_name(role),
            self.namespace,
            self.cluster_domain
        )
    }

    pub fn bootstrap_address(&self) -> String {
        format!(
            "{}.{}.svc:{}",
            self.bootstrap_name(),
            self.namespace,
            self.cluster.spec.listeners.internal.port
        )
    }

    /// Labels that select a role's pods.
    pub fn selector_labels(&self, role: Role) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "oxka".to_string()),
            ("app.kubernetes.io/instance".to_string(), self.name.clone()),
            ("app.kubernetes.io/component".to_string(), role.as_str().to_string()),
        ])
    }

    /// Labels on every object of a role.
    pub fn labels(&self, role: Role) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels(role);
        labels.insert("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string());
        labels.insert("app.kubernetes.io/part-of".to_string(), "oxka".to_string());
        labels
    }

    /// The controller owner reference, when the KafkaCluster came from the API server (has a uid).
    pub fn owner_references(&self) -> Option<Vec<OwnerReference>> {
        let uid = self.cluster.uid()?;
        Some(vec![OwnerReference {
            api_version: KafkaCluster::api_version(&()).to_string(),
            kind: KafkaCluster::kind(&()).to_string(),
            name: self.name.clone(),
            uid,
            controller: Some(true),
            block_owner_deletion: Some(true),
        }])
    }
}

/// One role's objects, in the order they are applied.
#[derive(Debug, Clone)]
pub struct Tier {
    pub role: Role,
    pub config_map: ConfigMap,
    pub services: Vec<Service>,
    pub pdb: PodDisruptionBudget,
    /// Present when `spec.networkPolicy.enabled`.
    pub network_policy: Option<NetworkPolicy>,
    pub stateful_set: StatefulSet,
    /// Hash of the config every pod of the role should run (also on the pod template).
    pub config_hash: String,
}

/// Every object of one KafkaCluster.
#[derive(Debug, Clone)]
pub struct ClusterObjects {
    pub coordinators: Tier,
    pub brokers: Tier,
    pub bootstrap_address: String,
}

impl ClusterObjects {
    /// All objects as JSON values, coordinators first.
    pub fn to_values(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for tier in [&self.coordinators, &self.brokers] {
            push_value(&mut out, &tier.config_map);
            for service in &tier.services {
                push_value(&mut out, service);
            }
            push_value(&mut out, &tier.pdb);
            if let Some(policy) = &tier.network_policy {
                push_value(&mut out, policy);
            }
            push_value(&mut out, &tier.stateful_set);
        }
        out
    }

    /// A multi-document YAML stream (`---` separated), as `render` prints it.
    pub fn to_yaml(&self) -> String {
        self.to_values()
            .iter()
            .map(|v| {
                format!(
                    "---\n{}",
                    serde_yaml::to_string(v).expect("JSON values serialize to YAML")
                )
            })
            .collect()
    }
}

fn push_value<T: Serialize>(out: &mut Vec<serde_json::Value>, object: &T) {
    out.push(serde_json::to_value(object).expect("Kubernetes objects serialize to JSON"));
}

/// Renders every object the operator applies for `cluster`.
pub fn render(cluster: &KafkaCluster, options: &RenderOptions) -> Result<ClusterObjects, RenderError> {
    let name = cluster.metadata.name.clone().ok_or(RenderError::MissingName)?;
    let sizing = validate(&cluster.spec)?;
    let ctx = RenderContext {
        cluster,
        name,
        namespace: cluster.namespace().unwrap_or_else(|| "default".to_string()),
        cluster_domain: options.cluster_domain.clone(),
        broker_replicas: options.broker_replicas.unwrap_or(cluster.spec.brokers.replicas),
        coordinator_replicas: cluster.spec.coordinators.replicas,
        sizing,
        racks: options.racks.clone(),
        certificates_hash: options.certificates_hash.clone(),
    };
    let objects = ClusterObjects {
        coordinators: objects::coordinator_tier(&ctx)?,
        brokers: objects::broker_tier(&ctx)?,
        bootstrap_address: ctx.bootstrap_address(),
    };
    let refused = check::rendered_files(&objects);
    if !refused.is_empty() {
        return Err(RenderError::RefusedConfig(refused));
    }
    Ok(objects)
}

/// Short, stable hash of the inputs that require a restart when they change.
pub fn config_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
