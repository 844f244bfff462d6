//! The per-pod configuration files: each broker's `server.properties` and each coordinator's
//! `zookeeper.properties` (plus its `myid`), exactly as the pod reads them from its ConfigMap.
//!
//! `id` is a string so that the same function renders the template the config hash is computed from
//! (with a placeholder instead of an ordinal): the hash then changes when any pod's config changes in a
//! way other than its own id, and not when brokers are added (which must not restart the others).

use std::collections::BTreeMap;

use super::{security, BrokerRack, RenderContext, Role};
use crate::crd::ExternalType;

/// Ports the operator fixes; the pod spec, Services and configs all use these.
pub const COORDINATOR_CLIENT_PORT: i32 = 2181;
pub const COORDINATOR_PEER_PORT: i32 = 2888;
pub const COORDINATOR_ELECTION_PORT: i32 = 3888;
pub const METRICS_PORT: i32 = 9404;
/// The coordinator's `metrics.port` (`/metrics`, and `/health`: 200 once the member knows a leader).
pub const COORDINATOR_METRICS_PORT: i32 = 9405;
pub const BROKER_DATA_DIR: &str = "/var/lib/oxka/data";
pub const COORDINATOR_DATA_DIR: &str = "/var/lib/oxka/coordinator";
pub const CONFIG_DIR: &str = "/etc/oxka";

/// Name of broker `id`'s file in the broker ConfigMap.
pub fn broker_file(id: &str) -> String {
    format!("server-{id}.properties")
}

/// Name of the broker ConfigMap entry holding the node broker `id`'s `broker.rack` was read from
/// (present only when the rack is). The init container of a pod compares it with its own node.
pub fn rack_node_file(id: &str) -> String {
    format!("rack-node-{id}")
}

/// Name of coordinator `ordinal`'s file in the coordinator ConfigMap.
pub fn coordinator_file(ordinal: &str) -> String {
    format!("zookeeper-{ordinal}.properties")
}

/// Name of coordinator `ordinal`'s myid entry in the coordinator ConfigMap.
pub fn myid_file(ordinal: &str) -> String {
    format!("myid-{ordinal}")
}

/// The coordinator id for an ordinal: ZooKeeper numbers ensemble members from 1.
pub fn coordinator_id(ordinal: i32) -> i32 {
    ordinal + 1
}

/// `zookeeper.connect`: every ensemble member's client endpoint.
pub fn coordinator_connect(ctx: &RenderContext) -> String {
    (0..ctx.coordinator_replicas)
        .map(|i| {
            format!(
                "{}:{COORDINATOR_CLIENT_PORT}",
                ctx.pod_host(Role::Coordinator, &i.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Broker `id`'s server.properties.
pub fn broker_properties(ctx: &RenderContext, id: &str) -> String {
    let spec = &ctx.cluster.spec;
    let host = ctx.pod_host(Role::Broker, id);
    let internal = security::internal_listeners(spec);
    let mut listeners: Vec<String> = internal.iter().map(|l| format!("{}://:{}", l.name, l.port)).collect();
    let mut advertised: Vec<String> = internal
        .iter()
        .map(|l| format!("{}://{host}:{}", l.name, l.port))
        .collect();
    let mut protocols: Vec<String> = internal.iter().map(|l| format!("{}:{}", l.name, l.protocol)).collect();
    if let Some(external) = &spec.listeners.external {
        let host = external.advertised_host_template.replace("{id}", id);
        let port = match (external.type_, external.node_port_base) {
            (ExternalType::NodePort, Some(base)) => match id.parse::<i32>() {
                Ok(n) => (base + n).to_string(),
                Err(_) => format!("{base}+{id}"),
            },
            _ => external.port.to_string(),
        };
        listeners.push(format!("EXTERNAL://:{}", external.port));
        advertised.push(format!("EXTERNAL://{host}:{port}"));
        protocols.push("EXTERNAL:PLAINTEXT".to_string());
    }
    let (listeners, advertised, protocols) = (listeners.join(","), advertised.join(","), protocols.join(","));
    let mut out = header("server.properties", "broker", id, ctx);
    let owned = [
        ("broker.id", id.to_string()),
        ("listeners", listeners),
        ("advertised.listeners", advertised),
        ("listener.security.protocol.map", protocols),
        (
            "inter.broker.listener.name",
            security::inter_broker_listener(spec).to_string(),
        ),
        ("zookeeper.connect", coordinator_connect(ctx)),
        ("log.dirs", BROKER_DATA_DIR.to_string()),
        ("metrics.port", METRICS_PORT.to_string()),
    ];
    for (key, value) in owned {
        push_entry(&mut out, key, &value);
    }
    let secured = security::security_entries(spec, id);
    if !secured.is_empty() {
        out.push_str("\n# From spec.listeners (TLS, authentication) and spec.authorization:\n");
        for (key, value) in &secured {
            push_entry(&mut out, key, value);
        }
    }
    // Known only once the pod is scheduled (the operator reads its node's label): per pod, and never
    // in the template the config hash is computed from (its id is a placeholder).
    if let Some(rack) = ctx.racks.get(id) {
        push_entry(&mut out, "broker.rack", &rack.rack);
    }
    let defaults: Vec<(&str, String)> = replication_defaults(spec.brokers.replicas)
        .into_iter()
        .filter(|(key, _)| !spec.brokers.config.contains_key(*key))
        .collect();
    if !defaults.is_empty() {
        out.push_str("\n# Replication defaults for this many brokers (spec.brokers.config overrides them):\n");
        for (key, value) in defaults {
            push_entry(&mut out, key, &value);
        }
    }
    if !spec.brokers.config.is_empty() {
        out.push_str("\n# From spec.brokers.config:\n");
        for (key, value) in &spec.brokers.config {
            push_entry(&mut out, key, value);
        }
    }
    out
}

/// The replication defaults a cluster of `brokers` brokers gets (what Kafka operators render): with three
/// or more brokers every partition gets three replicas and acks=all needs two of them in sync, so one
/// broker can fail (or roll) without losing availability or an acknowledged record; smaller clusters
/// replicate as far as they can. They change only when the broker count crosses 2 or 3.
pub fn replication_defaults(brokers: i32) -> Vec<(&'static str, String)> {
    let rf = brokers.clamp(1, 3);
    let min_isr = if rf >= 3 { 2 } else { 1 };
    vec![
        ("default.replication.factor", rf.to_string()),
        ("min.insync.replicas", min_isr.to_string()),
        ("offsets.topic.replication.factor", rf.to_string()),
        ("transaction.state.log.replication.factor", rf.to_string()),
        ("transaction.state.log.min.isr", min_isr.to_string()),
        ("share.coordinator.state.topic.replication.factor", rf.to_string()),
        ("share.coordinator.state.topic.min.isr", min_isr.to_string()),
    ]
}

/// Coordinator `ordinal`'s zookeeper.properties: the ensemble's `server.N` lines and its own id, both
/// as the `myid` key and (through the ConfigMap's `myid-N` entry mounted into dataDir) as the file.
pub fn coordinator_properties(ctx: &RenderContext, ordinal: &str) -> String {
    let mut out = header("zookeeper.properties", "coordinator", ordinal, ctx);
    push_entry(&mut out, "dataDir", COORDINATOR_DATA_DIR);
    push_entry(&mut out, "clientPort", &COORDINATOR_CLIENT_PORT.to_string());
    let myid = match ordinal.parse::<i32>() {
        Ok(n) => coordinator_id(n).to_string(),
        Err(_) => format!("{ordinal}+1"),
    };
    push_entry(&mut out, "myid", &myid);
    push_entry(&mut out, "metrics.port", &COORDINATOR_METRICS_PORT.to_string());
    for i in 0..ctx.coordinator_replicas {
        let host = ctx.pod_host(Role::Coordinator, &i.to_string());
        push_entry(
            &mut out,
            &format!("server.{}", coordinator_id(i)),
            &format!("{host}:{COORDINATOR_PEER_PORT}:{COORDINATOR_ELECTION_PORT}"),
        );
    }
    out
}

/// The racks an earlier reconciliation rendered into a live broker ConfigMap: `broker.rack` of each
/// `server-N.properties` that has one, with the node named by its `rack-node-N` entry. The reconciler
/// keeps these for brokers whose node cannot be read now, so a rack does not come and go.
pub fn rendered_racks(data: &BTreeMap<String, String>) -> BTreeMap<String, BrokerRack> {
    let mut racks = BTreeMap::new();
    for (key, text) in data {
        let Some(id) = key.strip_prefix("server-").and_then(|k| k.strip_suffix(".properties")) else {
            continue;
        };
        let rack = text
            .lines()
            .find_map(|line| line.strip_prefix("broker.rack="))
            .map(unescape_value);
        let node = data.get(&rack_node_file(id)).map(|n| n.trim().to_string());
        if let (Some(rack), Some(node)) = (rack, node) {
            racks.insert(id.to_string(), BrokerRack { rack, node });
        }
    }
    racks
}

/// The inverse of `escape` for a value `push_entry` wrote.
fn unescape_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn header(file: &str, role: &str, id: &str, ctx: &RenderContext) -> String {
    format!(
        "# {file} of {role} {id} in KafkaCluster {}/{}.\n# Rendered by oxka-operator: change the KafkaCluster, not this file.\n",
        ctx.namespace, ctx.name
    )
}

fn push_entry(out: &mut String, key: &str, value: &str) {
    out.push_str(&escape(key, true));
    out.push('=');
    out.push_str(&escape(value, false));
    out.push('\n');
}

/// Escapes text for `java.util.Properties.load`: backslashes, line breaks, leading blanks, and in keys
/// the separators `=`, `:` and blanks.
fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | '#' | '!' if is_key => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{escape, rendered_racks, unescape_value, BrokerRack};

    #[test]
    fn escaping_keeps_values_literal() {
        assert_eq!(escape("a b", true), "a\\ b");
        assert_eq!(escape("x=y:z", false), "x=y:z");
        assert_eq!(escape(" lead", false), "\\ lead");
        assert_eq!(escape("c:\\dir\nnext", false), "c:\\\\dir\\nnext");
    }

    #[test]
    fn unescaping_inverts_escaping() {
        for value in ["zone-a", " lead", "c:\\dir\nnext\ttab", "a=b"] {
            assert_eq!(unescape_value(&escape(value, false)), value);
        }
    }

    #[test]
    fn rendered_racks_need_the_rack_and_its_node() {
        let data = BTreeMap::from([
            (
                "server-0.properties".to_string(),
                "broker.id=0\nbroker.rack=zone-a\n".to_string(),
            ),
            ("rack-node-0".to_string(), "node-1\n".to_string()),
            (
                "server-1.properties".to_string(),
                "broker.id=1\nbroker.rack=zone-b\n".to_string(),
            ),
            ("server-2.properties".to_string(), "broker.id=2\n".to_string()),
            ("rack-node-2".to_string(), "node-3\n".to_string()),
        ]);
        let racks = rendered_racks(&data);
        assert_eq!(
            racks,
            BTreeMap::from([(
                "0".to_string(),
                BrokerRack {
                    rack: "zone-a".into(),
                    node: "node-1".into()
                }
            )])
        );
    }
}
