//! `broker.rack` from the nodes the broker pods run on. With `spec.rack.topologyKey` set, the operator
//! lists the cluster's broker pods, reads that label of each scheduled pod's node, and renders it into
//! the pod's own file (`RenderOptions::racks`); the pod's init container waits for it.
//!
//! What the operator cannot read now it keeps as it rendered it before (read back from the live
//! ConfigMap), so that a rack does not come and go with an API error. A node without the label gives
//! its brokers no rack: that, and every read failure, is reported (status `Degraded`, reason
//! `RackUnknown`, and a Warning Event) with the node and the key.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::render::config::rendered_racks;
use crate::render::{BrokerRack, MANAGER};

/// The StatefulSet controller's label with a pod's ordinal (the broker id).
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// A broker pod as far as racks are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub id: String,
    /// `spec.nodeName`: set once the pod is scheduled.
    pub node: Option<String>,
}

/// What reading a node's topology label gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeLabel {
    Value(String),
    /// The node exists but has no such label (or an empty one).
    Missing,
    /// The node could not be read; the sentence says why.
    Unreadable(String),
}

/// The racks to render and what stood in the way, one sentence each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Racks {
    pub racks: BTreeMap<String, BrokerRack>,
    pub problems: Vec<String>,
}

/// Decides every broker's rack from the pods' nodes and their labels, starting from the racks
/// rendered before: a pod that is not scheduled, or whose node cannot be read, keeps what it had.
pub fn decide(
    previous: &BTreeMap<String, BrokerRack>,
    pods: &[Placement],
    nodes: &BTreeMap<String, NodeLabel>,
    key: &str,
) -> Racks {
    let mut racks = previous.clone();
    let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unreadable: BTreeMap<&str, (Vec<&str>, &str)> = BTreeMap::new();
    for pod in pods {
        let Some(node) = pod.node.as_deref() else {
            continue;
        };
        match nodes.get(node) {
            Some(NodeLabel::Value(rack)) => {
                racks.insert(
                    pod.id.clone(),
                    BrokerRack {
                        rack: rack.clone(),
                        node: node.to_string(),
                    },
                );
            }
            Some(NodeLabel::Missing) => {
                racks.remove(&pod.id);
                missing.entry(node).or_default().push(&pod.id);
            }
            Some(NodeLabel::Unreadable(why)) => unreadable.entry(node).or_insert((Vec::new(), why)).0.push(&pod.id),
            None => {}
        }
    }
    let mut problems = Vec::new();
    for (node, ids) in missing {
        problems.push(format!(
            "node {node} has no label {key}: {} no broker.rack, and the pod waits for it (label the node, or remove spec.rack)",
            brokers_get(&ids)
        ));
    }
    for (node, (ids, why)) in unreadable {
        let kept: Vec<String> = ids
            .iter()
            .map(|id| match racks.get(*id) {
                Some(r) => format!("broker {id} keeps broker.rack={}", r.rack),
                None => format!("broker {id} has no broker.rack yet"),
            })
            .collect();
        problems.push(format!(
            "cannot read the label {key} of node {node} ({why}): {}",
            kept.join(", ")
        ));
    }
    Racks { racks, problems }
}

fn brokers_get(ids: &[&str]) -> String {
    match ids {
        [one] => format!("broker {one} gets"),
        many => format!("brokers {} get", many.join(", ")),
    }
}

/// A broker pod's id: its ordinal label, else the suffix of its name.
pub fn broker_id(pod: &Pod, stateful_set: &str) -> Option<String> {
    if let Some(index) = pod.labels().get(POD_INDEX_LABEL) {
        return Some(index.clone());
    }
    let name = pod.metadata.name.as_deref()?;
    let ordinal = name.strip_prefix(stateful_set)?.strip_prefix('-')?;
    ordinal.parse::<u32>().ok().map(|n| n.to_string())
}

/// Reads the broker pods of KafkaCluster `name`, their nodes' label `key`, and decides the racks.
/// `live` is the broker ConfigMap as it is now, for the racks rendered before.
pub async fn observe(client: &Client, namespace: &str, name: &str, key: &str, live: Option<&ConfigMap>) -> Racks {
    let previous = live
        .and_then(|cm| cm.data.as_ref())
        .map(rendered_racks)
        .unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector =
        format!("app.kubernetes.io/name=oxka,app.kubernetes.io/instance={name},app.kubernetes.io/component=broker");
    let listed = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list.items,
        Err(e) => {
            return Racks {
                racks: previous,
                problems: vec![format!(
                    "cannot list the broker pods to read their nodes' label {key} ({}): broker.rack stays as rendered",
                    explain(&e, "list pods", "the Helm chart grants it with rbac.create=true")
                )],
            };
        }
    };
    let stateful_set = format!("{name}-broker");
    let placements: Vec<Placement> = listed
        .iter()
        // A pod being deleted is about to be replaced, perhaps on another node: wait for the new one.
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| {
            Some(Placement {
                id: broker_id(pod, &stateful_set)?,
                node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            })
        })
        .collect();
    let api: Api<Node> = Api::all(client.clone());
    let mut nodes = BTreeMap::new();
    for node in placements.iter().filter_map(|p| p.node.as_deref()) {
        if nodes.contains_key(node) {
            continue;
        }
        let label = match api.get_opt(node).await {
            Ok(Some(n)) => match n.labels().get(key).filter(|v| !v.is_empty()) {
                Some(value) => NodeLabel::Value(value.clone()),
                None => NodeLabel::Missing,
            },
            Ok(None) => NodeLabel::Unreadable("the node does not exist".to_string()),
            Err(e) => NodeLabel::Unreadable(explain(
                &e,
                "get nodes",
                "the Helm chart grants it with rbac.nodes=true",
            )),
        };
        nodes.insert(node.to_string(), label);
    }
    decide(&previous, &placements, &nodes, key)
}

/// An API error as a sentence; a refusal names the permission and the chart value that grants it.
fn explain(error: &kube::Error, what: &str, grant: &str) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            format!("forbidden: {MANAGER} may not {what}; {grant}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack(rack: &str, node: &str) -> BrokerRack {
        BrokerRack {
            rack: rack.into(),
            node: node.into(),
        }
    }

    fn placed(id: &str, node: Option<&str>) -> Placement {
        Placement {
            id: id.into(),
            node: node.map(String::from),
        }
    }

    const KEY: &str = "topology.kubernetes.io/zone";

    #[test]
    fn each_scheduled_broker_gets_its_nodes_label() {
        let nodes = BTreeMap::from([
            ("n1".to_string(), NodeLabel::Value("zone-a".into())),
            ("n2".to_string(), NodeLabel::Value("zone-b".into())),
        ]);
        let pods = [placed("0", Some("n1")), placed("1", Some("n2")), placed("2", None)];
        let r = decide(&BTreeMap::new(), &pods, &nodes, KEY);
        assert_eq!(
            r.racks,
            BTreeMap::from([("0".into(), rack("zone-a", "n1")), ("1".into(), rack("zone-b", "n2"))])
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn a_node_without_the_label_gives_no_rack_and_says_so() {
        let nodes = BTreeMap::from([("n1".to_string(), NodeLabel::Missing)]);
        let previous = BTreeMap::from([("0".to_string(), rack("zone-a", "old-node"))]);
        let r = decide(
            &previous,
            &[placed("0", Some("n1")), placed("1", Some("n1"))],
            &nodes,
            KEY,
        );
        assert!(r.racks.is_empty());
        assert_eq!(
            r.problems,
            vec![format!(
                "node n1 has no label {KEY}: brokers 0, 1 get no broker.rack, and the pod waits for it (label the node, or remove spec.rack)"
            )]
        );
    }

    #[test]
    fn what_cannot_be_read_keeps_the_rack_rendered_before() {
        let previous = BTreeMap::from([
            ("0".to_string(), rack("zone-a", "n1")),
            ("1".to_string(), rack("zone-b", "n2")),
        ]);
        let nodes = BTreeMap::from([("n1".to_string(), NodeLabel::Unreadable("forbidden".into()))]);
        // Broker 1's pod was deleted and its replacement is not scheduled yet.
        let r = decide(&previous, &[placed("0", Some("n1")), placed("1", None)], &nodes, KEY);
        assert_eq!(r.racks, previous);
        assert_eq!(
            r.problems,
            vec![format!(
                "cannot read the label {KEY} of node n1 (forbidden): broker 0 keeps broker.rack=zone-a"
            )]
        );
    }

    #[test]
    fn a_pod_on_a_new_node_gets_that_nodes_rack() {
        let previous = BTreeMap::from([("0".to_string(), rack("zone-a", "n1"))]);
        let nodes = BTreeMap::from([("n9".to_string(), NodeLabel::Value("zone-c".into()))]);
        let r = decide(&previous, &[placed("0", Some("n9"))], &nodes, KEY);
        assert_eq!(r.racks["0"], rack("zone-c", "n9"));
    }

    #[test]
    fn the_broker_id_is_the_pod_ordinal() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-broker-12", "labels": {"apps.kubernetes.io/pod-index": "12"}}
        }))
        .unwrap();
        assert_eq!(broker_id(&pod, "demo-broker").as_deref(), Some("12"));
        pod.metadata.labels = None;
        assert_eq!(broker_id(&pod, "demo-broker").as_deref(), Some("12"));
        assert_eq!(broker_id(&pod, "other-broker"), None);
    }
}
