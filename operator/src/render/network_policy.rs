//! One NetworkPolicy per role when `spec.networkPolicy.enabled` (pure; applied with the tier's other
//! objects and owned by the KafkaCluster):
//! - brokers: the client listeners (internal, external) from `clients` (anyone when empty); on a
//!   secured cluster the replication listener (9091) only from this cluster's brokers and the
//!   OPERATOR listener (9093) only from the operator; metrics from `metrics` and the operator.
//! - coordinators: the client port from this cluster's brokers and coordinators, the peer and
//!   election ports from coordinators only, metrics (`/health`, read by the operator during rolls) from
//!   `metrics` and the operator.
//!
//! On an unsecured cluster brokers replicate over the internal listener, which is then open to
//! `clients` and to the cluster's own brokers.

use serde_json::{json, Value};

use super::config::{
    COORDINATOR_CLIENT_PORT, COORDINATOR_ELECTION_PORT, COORDINATOR_METRICS_PORT, COORDINATOR_PEER_PORT, METRICS_PORT,
};
use super::{RenderContext, Role};
use crate::crd::validate::{OPERATOR_PORT, REPLICATION_PORT};

/// The operator's pods when `networkPolicy.operator` is empty: the chart's label, any namespace.
fn default_operator_peers() -> Value {
    json!([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "oxka-operator"}}}])
}

fn ports(numbers: &[i32]) -> Value {
    Value::Array(numbers.iter().map(|p| json!({"protocol": "TCP", "port": p})).collect())
}

/// A rule admitting `numbers` from `peers` (from anywhere when `peers` is empty).
fn rule(numbers: &[i32], peers: &Value) -> Value {
    if peers.as_array().is_none_or(|p| p.is_empty()) {
        json!({"ports": ports(numbers)})
    } else {
        json!({"ports": ports(numbers), "from": peers})
    }
}

fn role_peer(ctx: &RenderContext, role: Role) -> Value {
    json!({"podSelector": {"matchLabels": ctx.selector_labels(role)}})
}

/// The NetworkPolicy of `role`, or None when the spec does not ask for them.
pub fn network_policy(ctx: &RenderContext, role: Role) -> Option<Value> {
    let spec = ctx.cluster.spec.network_policy.as_ref().filter(|n| n.enabled)?;
    let operator = if spec.operator.is_empty() {
        default_operator_peers()
    } else {
        json!(spec.operator)
    };
    let metrics_from = if spec.metrics.is_empty() {
        json!([])
    } else {
        let mut peers = spec.metrics.iter().map(|p| json!(p)).collect::<Vec<_>>();
        peers.extend(operator.as_array().cloned().unwrap_or_default());
        json!(peers)
    };
    let listeners = &ctx.cluster.spec.listeners;
    let rules = match role {
        Role::Broker => {
            let mut client_ports = vec![listeners.internal.port];
            if let Some(external) = &listeners.external {
                client_ports.push(external.port);
            }
            let mut rules = vec![rule(&client_ports, &json!(spec.clients))];
            if listeners.internal.secured() {
                rules.push(rule(&[REPLICATION_PORT], &json!([role_peer(ctx, Role::Broker)])));
                rules.push(rule(&[OPERATOR_PORT], &operator));
            } else if !spec.clients.is_empty() {
                // Replication and the operator use the internal listener.
                let mut peers = vec![role_peer(ctx, Role::Broker)];
                peers.extend(operator.as_array().cloned().unwrap_or_default());
                rules.push(rule(&[listeners.internal.port], &json!(peers)));
            }
            rules.push(rule(&[METRICS_PORT], &metrics_from));
            rules
        }
        Role::Coordinator => vec![
            rule(
                &[COORDINATOR_CLIENT_PORT],
                &json!([role_peer(ctx, Role::Broker), role_peer(ctx, Role::Coordinator)]),
            ),
            rule(
                &[COORDINATOR_PEER_PORT, COORDINATOR_ELECTION_PORT],
                &json!([role_peer(ctx, Role::Coordinator)]),
            ),
            rule(&[COORDINATOR_METRICS_PORT], &metrics_from),
        ],
    };
    Some(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": ctx.workload_name(role), "namespace": ctx.namespace, "labels": ctx.labels(role)},
        "spec": {
            "podSelector": {"matchLabels": ctx.selector_labels(role)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }))
}
