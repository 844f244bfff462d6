//! The Kubernetes objects of each tier, written as JSON that mirrors the YAML a person would write and
//! then checked by deserializing into the typed k8s-openapi structs.
//!
//! Pods select their own file from the role's ConfigMap by ordinal: the downward API puts the
//! `apps.kubernetes.io/pod-index` label into `POD_INDEX`, and a `subPathExpr` mounts
//! `server-$(POD_INDEX).properties` at `/etc/oxka/server.properties`, so the container runs exactly
//! `oxka broker /etc/oxka/server.properties` with no shell in between.
//!
//! With `spec.rack`, a broker pod first runs the init container `await-rack`: it mounts the whole
//! ConfigMap (a `subPath` mount is never updated by the kubelet) and runs `oxka await-config` until the
//! pod's file has the `broker.rack` the operator read from the node the pod was scheduled on.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::config::*;
use super::network_policy::network_policy;
use super::security::{broker_certs_secret, TLS_DIR};
use super::{config_hash, RenderContext, RenderError, Role, Tier, CONFIG_HASH_ANNOTATION};
use crate::crd::validate::heap_opts;
use crate::crd::validate::{OPERATOR_PORT, REPLICATION_PORT};
use crate::crd::{ExternalType, PodOverrides, StorageSpec, RESTART_ANNOTATION};

const POD_INDEX_PLACEHOLDER: &str = "$(POD_INDEX)";
/// How long a broker pod's init container waits for its `broker.rack` before failing (the kubelet then
/// restarts it, with back-off, and the failure's message is in the pod's status).
pub const RACK_WAIT_SECONDS: u64 = 300;

pub fn coordinator_tier(ctx: &RenderContext) -> Result<Tier, RenderError> {
    let role = Role::Coordinator;
    let mut data = BTreeMap::new();
    for i in 0..ctx.coordinator_replicas {
        let ordinal = i.to_string();
        data.insert(coordinator_file(&ordinal), coordinator_properties(ctx, &ordinal));
        data.insert(myid_file(&ordinal), format!("{}\n", coordinator_id(i)));
    }
    let heap = heap_opts(ctx.sizing.coordinator_heap_mib);
    let hash = config_hash(&[&coordinator_properties(ctx, POD_INDEX_PLACEHOLDER), &heap]);
    let spec = &ctx.cluster.spec.coordinators;
    let headless = headless_service(
        ctx,
        role,
        json!([
            {"name": "client", "port": COORDINATOR_CLIENT_PORT, "targetPort": "client"},
            {"name": "peer", "port": COORDINATOR_PEER_PORT, "targetPort": "peer"},
            {"name": "election", "port": COORDINATOR_ELECTION_PORT, "targetPort": "election"},
            {"name": "metrics", "port": COORDINATOR_METRICS_PORT, "targetPort": "metrics"},
        ]),
    );
    let container = json!({
        "name": "coordinator",
        "image": ctx.cluster.spec.image,
        "imagePullPolicy": ctx.cluster.spec.image_pull_policy,
        "command": ["oxka", "coordinator", format!("{CONFIG_DIR}/zookeeper.properties")],
        "env": env(&heap),
        "ports": [
            {"name": "client", "containerPort": COORDINATOR_CLIENT_PORT},
            {"name": "peer", "containerPort": COORDINATOR_PEER_PORT},
            {"name": "election", "containerPort": COORDINATOR_ELECTION_PORT},
            {"name": "metrics", "containerPort": COORDINATOR_METRICS_PORT},
        ],
        // /health answers 200 once this member knows the ensemble's leader and has caught up: a
        // roll restarts the next member only when the ensemble has a quorum again.
        "readinessProbe": {"httpGet": {"path": "/health", "port": "metrics"}, "periodSeconds": 5, "failureThreshold": 3},
        // Liveness only asks whether the process accepts connections: a member without a quorum is not
        // ready but restarting it would not help.
        "livenessProbe": {"tcpSocket": {"port": "client"}, "initialDelaySeconds": 30, "periodSeconds": 10, "failureThreshold": 6},
        "resources": spec.resources,
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": COORDINATOR_DATA_DIR},
            {"name": "config", "mountPath": format!("{CONFIG_DIR}/zookeeper.properties"), "subPathExpr": coordinator_file(POD_INDEX_PLACEHOLDER)},
            {"name": "config", "mountPath": format!("{COORDINATOR_DATA_DIR}/myid"), "subPathExpr": myid_file(POD_INDEX_PLACEHOLDER)},
        ],
    });
    Ok(Tier {
        role,
        config_map: build(ctx, "ConfigMap", config_map(ctx, role, data))?,
        services: vec![build(ctx, "Service", headless)?],
        pdb: build(ctx, "PodDisruptionBudget", pdb(ctx, role))?,
        network_policy: network_policy(ctx, role)
            .map(|p| build(ctx, "NetworkPolicy", p))
            .transpose()?,
        stateful_set: build(
            ctx,
            "StatefulSet",
            stateful_set(
                ctx,
                role,
                ctx.coordinator_replicas,
                Vec::new(),
                container,
                Vec::new(),
                &spec.pod,
                &spec.storage,
                &ctx.sizing.coordinator_storage.0,
                30,
                &hash,
            ),
        )?,
        config_hash: hash,
    })
}

pub fn broker_tier(ctx: &RenderContext) -> Result<Tier, RenderError> {
    let role = Role::Broker;
    let spec = &ctx.cluster.spec.brokers;
    let listeners = &ctx.cluster.spec.listeners;
    let mut data = BTreeMap::new();
    for i in 0..ctx.broker_replicas {
        let id = i.to_string();
        data.insert(broker_file(&id), broker_properties(ctx, &id));
        if let Some(rack) = ctx.racks.get(&id) {
            data.insert(rack_node_file(&id), format!("{}\n", rack.node));
        }
    }
    let heap = heap_opts(ctx.sizing.broker_heap_mib);
    // A renewed certificate or CA changes the hash: brokers restart onto it one at a time, health-gated
    // (they would also reload the files, but a restart proves every broker serves the new ones).
    // Only when there are certificates: an unsecured cluster's hash stays what it was before they
    // existed, so upgrading the operator restarts nothing.
    let template = broker_properties(ctx, POD_INDEX_PLACEHOLDER);
    let mut hashed = vec![template.as_str(), heap.as_str()];
    hashed.extend(ctx.certificates_hash.as_deref());
    let hash = config_hash(&hashed);
    let internal = listeners.internal.port;
    let secured = listeners.internal.secured();
    let mut headless_ports = vec![
        json!({"name": "kafka", "port": internal, "targetPort": "kafka"}),
        json!({"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}),
    ];
    if secured {
        headless_ports.push(json!({"name": "replication", "port": REPLICATION_PORT, "targetPort": "replication"}));
        headless_ports.push(json!({"name": "operator", "port": OPERATOR_PORT, "targetPort": "operator"}));
    }
    let mut services = vec![
        build(ctx, "Service", headless_service(ctx, role, json!(headless_ports)))?,
        build(ctx, "Service", bootstrap_service(ctx))?,
    ];
    let mut ports = vec![
        json!({"name": "kafka", "containerPort": internal}),
        json!({"name": "metrics", "containerPort": METRICS_PORT}),
    ];
    if secured {
        ports.push(json!({"name": "replication", "containerPort": REPLICATION_PORT}));
        ports.push(json!({"name": "operator", "containerPort": OPERATOR_PORT}));
    }
    if let Some(external) = &listeners.external {
        ports.push(json!({"name": "external", "containerPort": external.port}));
        for i in 0..ctx.broker_replicas {
            services.push(build(ctx, "Service", external_service(ctx, i))?);
        }
    }
    let mut mounts = vec![
        json!({"name": "data", "mountPath": BROKER_DATA_DIR}),
        json!({"name": "config", "mountPath": format!("{CONFIG_DIR}/server.properties"), "subPathExpr": broker_file(POD_INDEX_PLACEHOLDER)}),
    ];
    let mut extra_volumes = Vec::new();
    if secured {
        // The whole Secret as a directory (no subPath): the kubelet updates renewed certificates in place.
        mounts.push(json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true}));
        extra_volumes.push(
            json!({"name": "tls", "secret": {"secretName": broker_certs_secret(&ctx.name), "defaultMode": 0o440}}),
        );
    }
    let container = json!({
        "name": "broker",
        "image": ctx.cluster.spec.image,
        "imagePullPolicy": ctx.cluster.spec.image_pull_policy,
        "command": ["oxka", "broker", format!("{CONFIG_DIR}/server.properties")],
        "env": env(&heap),
        "ports": ports,
        // /health answers 200 once the broker is registered with the ensemble and serving; a roll
        // restarts the next pod only after this one is Ready and back in every ISR.
        "readinessProbe": {"httpGet": {"path": "/health", "port": "metrics"}, "periodSeconds": 5, "failureThreshold": 3},
        // Liveness only asks whether the process serves Kafka connections at all: a broker catching
        // up on replication is not ready, but must not be killed.
        "livenessProbe": {"tcpSocket": {"port": "kafka"}, "initialDelaySeconds": 30, "periodSeconds": 10, "failureThreshold": 6},
        "resources": spec.resources,
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    });
    let init_containers: Vec<Value> = ctx
        .cluster
        .spec
        .rack
        .as_ref()
        .map(|rack| await_rack_container(ctx, &rack.topology_key))
        .into_iter()
        .collect();
    Ok(Tier {
        role,
        config_map: build(ctx, "ConfigMap", config_map(ctx, role, data))?,
        services,
        pdb: build(ctx, "PodDisruptionBudget", pdb(ctx, role))?,
        network_policy: network_policy(ctx, role)
            .map(|p| build(ctx, "NetworkPolicy", p))
            .transpose()?,
        stateful_set: build(
            ctx,
            "StatefulSet",
            stateful_set(
                ctx,
                role,
                ctx.broker_replicas,
                init_containers,
                container,
                extra_volumes,
                &spec.pod,
                &spec.storage,
                &ctx.sizing.broker_storage.0,
                60,
                &hash,
            ),
        )?,
        config_hash: hash,
    })
}

/// The init container that holds a broker until the operator has written its `broker.rack`, read from
/// the label `topology_key` of the node the pod was scheduled on (unknown before scheduling). It
/// mounts the whole ConfigMap directory, which the kubelet keeps up to date, and also waits until the
/// rack was read from this pod's node (`rack-node-N`), not from the node an earlier pod of the same
/// ordinal ran on.
fn await_rack_container(ctx: &RenderContext, topology_key: &str) -> Value {
    json!({
        "name": "await-rack",
        "image": ctx.cluster.spec.image,
        "imagePullPolicy": ctx.cluster.spec.image_pull_policy,
        "command": [
            "oxka", "await-config", format!("{CONFIG_DIR}/{}", broker_file(POD_INDEX_PLACEHOLDER)),
            "--key", "broker.rack",
            "--node", "$(NODE_NAME)",
            "--node-file", format!("{CONFIG_DIR}/{}", rack_node_file(POD_INDEX_PLACEHOLDER)),
            "--node-label", topology_key,
            "--timeout-secs", RACK_WAIT_SECONDS.to_string(),
        ],
        "env": [
            {"name": "POD_INDEX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        // The pod's requests are the larger of its init containers' and the sum of its containers':
        // the broker's own resources cost nothing extra and satisfy any quota the broker does.
        "resources": ctx.cluster.spec.brokers.resources,
        // On timeout the reason (node without the label, operator without RBAC for nodes) is the
        // last thing logged: show it in the pod's status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": true}],
    })
}

fn build<T: DeserializeOwned>(ctx: &RenderContext, kind: &'static str, mut value: Value) -> Result<T, RenderError> {
    strip_nulls(&mut value);
    if let Some(owners) = ctx.owner_references() {
        value["metadata"]["ownerReferences"] = serde_json::to_value(owners).expect("owner references serialize");
    }
    let name = value["metadata"]["name"].as_str().unwrap_or_default().to_string();
    serde_json::from_value(value).map_err(|source| RenderError::Build { kind, name, source })
}

/// Drops `null` fields (unset options) so the applied object lists only what the operator decides.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn metadata(ctx: &RenderContext, role: Role, name: String) -> Value {
    json!({"name": name, "namespace": ctx.namespace, "labels": ctx.labels(role)})
}

fn env(heap: &str) -> Value {
    json!([
        {"name": "POD_INDEX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}},
        {"name": "KAFKA_HEAP_OPTS", "value": heap},
    ])
}

fn container_security_context() -> Value {
    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
}

fn config_map(ctx: &RenderContext, role: Role, data: BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(ctx, role, ctx.config_map_name(role)),
        "data": data,
    })
}

fn headless_service(ctx: &RenderContext, role: Role, ports: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ctx, role, ctx.headless_name(role)),
        "spec": {
            "clusterIP": "None",
            // Members must find each other before they are Ready (ensemble formation, replication).
            "publishNotReadyAddresses": true,
            "selector": ctx.selector_labels(role),
            "ports": ports,
        },
    })
}

fn bootstrap_service(ctx: &RenderContext) -> Value {
    let mut ports =
        vec![json!({"name": "kafka", "port": ctx.cluster.spec.listeners.internal.port, "targetPort": "kafka"})];
    if ctx.cluster.spec.listeners.internal.secured() {
        // The operator's admin address (`--kafka-bootstrap-template`'s {port}) on a secured cluster.
        ports.push(json!({"name": "operator", "port": OPERATOR_PORT, "targetPort": "operator"}));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ctx, Role::Broker, ctx.bootstrap_name()),
        "spec": {
            "type": "ClusterIP",
            "selector": ctx.selector_labels(Role::Broker),
            "ports": ports,
        },
    })
}

fn external_service(ctx: &RenderContext, ordinal: i32) -> Value {
    let external = ctx
        .cluster
        .spec
        .listeners
        .external
        .as_ref()
        .expect("called only with an external listener");
    let pod = format!("{}-{ordinal}", ctx.workload_name(Role::Broker));
    let mut selector = ctx.selector_labels(Role::Broker);
    selector.insert("statefulset.kubernetes.io/pod-name".to_string(), pod.clone());
    let mut port = json!({"name": "external", "port": external.port, "targetPort": "external"});
    let type_ = match external.type_ {
        ExternalType::NodePort => {
            port["nodePort"] = json!(external.node_port_base.map(|base| base + ordinal));
            "NodePort"
        }
        ExternalType::LoadBalancer => "LoadBalancer",
    };
    let mut meta = metadata(ctx, Role::Broker, format!("{pod}-external"));
    if !external.annotations.is_empty() {
        meta["annotations"] = json!(external.annotations);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": type_, "selector": selector, "ports": [port]},
    })
}

fn pdb(ctx: &RenderContext, role: Role) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(ctx, role, ctx.workload_name(role)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": ctx.selector_labels(role)}},
    })
}

#[allow(clippy::too_many_arguments)]
fn stateful_set(
    ctx: &RenderContext,
    role: Role,
    replicas: i32,
    init_containers: Vec<Value>,
    container: Value,
    extra_volumes: Vec<Value>,
    pod: &PodOverrides,
    storage: &StorageSpec,
    storage_size: &str,
    grace_seconds: i64,
    hash: &str,
) -> Value {
    let mut pod_labels = pod.labels.clone();
    pod_labels.extend(ctx.selector_labels(role));
    let mut pod_annotations = pod.annotations.clone();
    pod_annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), hash.to_string());
    if let Some(restart) = ctx
        .cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESTART_ANNOTATION))
    {
        pod_annotations.insert(RESTART_ANNOTATION.to_string(), restart.clone());
    }
    let mut volumes = vec![json!({"name": "config", "configMap": {"name": ctx.config_map_name(role)}})];
    volumes.extend(extra_volumes);
    let mut claims = Vec::new();
    if storage.ephemeral {
        volumes.push(json!({"name": "data", "emptyDir": {}}));
    } else {
        claims.push(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "labels": ctx.selector_labels(role)},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": storage.storage_class_name,
                "resources": {"requests": {"storage": storage_size}},
            },
        }));
    }
    let mut spread = pod.topology_spread_constraints.clone();
    if let (Some(rack), true) = (&ctx.cluster.spec.rack, spread.is_empty()) {
        spread.push(
            serde_json::from_value(json!({
                "maxSkew": 1,
                "topologyKey": rack.topology_key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": ctx.selector_labels(role)},
            }))
            .expect("a valid topology spread constraint"),
        );
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(ctx, role, ctx.workload_name(role)),
        "spec": {
            "replicas": replicas,
            "serviceName": ctx.headless_name(role),
            // Parallel: an ensemble needs a quorum before any member is Ready, so ordered start
            // would deadlock.
            "podManagementPolicy": "Parallel",
            // OnDelete: the operator restarts pods itself, one at a time and gated on the cluster's
            // health (reconcile::roll), not only on the last pod's readiness.
            "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "selector": {"matchLabels": ctx.selector_labels(role)},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {
                    "initContainers": if init_containers.is_empty() { Value::Null } else { json!(init_containers) },
                    "containers": [container],
                    "volumes": volumes,
                    "terminationGracePeriodSeconds": grace_seconds,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
                    "affinity": pod.affinity,
                    "tolerations": if pod.tolerations.is_empty() { Value::Null } else { json!(pod.tolerations) },
                    "topologySpreadConstraints": if spread.is_empty() { Value::Null } else { json!(spread) },
                    "priorityClassName": pod.priority_class_name,
                },
            },
            "volumeClaimTemplates": claims,
        },
    })
}
