//! Checks that need the operator's knowledge, done once before rendering: which server.properties keys
//! the operator owns, and heap against memory limit. The API server's CEL rules catch the rest at
//! `kubectl apply` time. A failure here is reported in status (condition `Degraded`, reason
//! `InvalidSpec`) and as an Event; the operator leaves the running objects alone until the spec is fixed.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{KafkaClusterSpec, StorageSpec};

const MIB: u64 = 1024 * 1024;

/// server.properties keys the operator renders itself, each with the reason a user may not set it.
pub const OPERATOR_OWNED_KEYS: &[(&str, &str)] = &[
    ("broker.id", "the operator sets it from the StatefulSet ordinal"),
    ("node.id", "the operator sets broker.id from the StatefulSet ordinal"),
    ("listeners", "the operator derives it from spec.listeners"),
    (
        "advertised.listeners",
        "the operator derives it from each pod's DNS name and spec.listeners.external",
    ),
    (
        "listener.security.protocol.map",
        "the operator derives it from spec.listeners",
    ),
    (
        "inter.broker.listener.name",
        "brokers replicate over the operator's INTERNAL listener",
    ),
    (
        "zookeeper.connect",
        "the operator points it at the coordinator ensemble it runs",
    ),
    (
        "coordinator.connect",
        "the operator points zookeeper.connect at the coordinator ensemble it runs",
    ),
    (
        "log.dirs",
        "the operator points it at the volume from spec.brokers.storage",
    ),
    (
        "log.dir",
        "the operator sets log.dirs to the volume from spec.brokers.storage",
    ),
    ("metrics.port", "the operator's readiness probe uses the port it chose"),
    ("broker.rack", "set spec.rack instead"),
];

/// What the operator computed from a valid spec; rendering uses these instead of re-reading strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    /// Broker heap in MiB (KAFKA_HEAP_OPTS).
    pub broker_heap_mib: u64,
    /// Coordinator heap in MiB.
    pub coordinator_heap_mib: u64,
    pub broker_storage: Quantity,
    pub coordinator_storage: Quantity,
}

/// Every reason a spec was refused, as sentences for `kubectl describe`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid KafkaCluster spec: {}", .problems.join("; "))]
pub struct InvalidSpec {
    pub problems: Vec<String>,
}

/// Validates what CEL cannot and returns the derived sizes.
pub fn validate(spec: &KafkaClusterSpec) -> Result<Sizing, InvalidSpec> {
    let mut problems = Vec::new();
    for key in spec.brokers.config.keys() {
        if let Some((_, why)) = OPERATOR_OWNED_KEYS.iter().find(|(owned, _)| owned == key) {
            problems.push(format!("spec.brokers.config must not set {key}: {why}; remove it"));
        }
    }
    security_problems(spec, &mut problems);
    let broker_heap_mib = heap_mib(
        "brokers",
        spec.brokers.heap.as_ref(),
        spec.brokers.resources.as_ref(),
        1024,
        &mut problems,
    );
    let coordinator_heap_mib = heap_mib(
        "coordinators",
        spec.coordinators.heap.as_ref(),
        spec.coordinators.resources.as_ref(),
        512,
        &mut problems,
    );
    let broker_storage = storage_size("brokers", &spec.brokers.storage, "10Gi", &mut problems);
    let coordinator_storage = storage_size("coordinators", &spec.coordinators.storage, "1Gi", &mut problems);
    if problems.is_empty() {
        Ok(Sizing {
            broker_heap_mib,
            coordinator_heap_mib,
            broker_storage,
            coordinator_storage,
        })
    } else {
        Err(InvalidSpec { problems })
    }
}

/// Ports a secured cluster's brokers use besides the client listeners: the replication listener
/// (PLAINTEXT, inter-broker only) and the operator's mutual-TLS listener.
pub const REPLICATION_PORT: i32 = 9091;
pub const OPERATOR_PORT: i32 = 9093;

/// What the security settings need beyond their schema: the keys they own, and ports that must not
/// collide with the extra listeners a secured cluster runs.
fn security_problems(spec: &KafkaClusterSpec, problems: &mut Vec<String>) {
    if let Some(authorization) = &spec.authorization {
        for principal in &authorization.super_users {
            if !principal.contains(':') || principal.contains(';') {
                problems.push(format!(
                    "spec.authorization.superUsers: {principal:?} is not a principal; write Type:name (User:admin), without ';'"
                ));
            }
        }
        for key in ["authorizer.class.name", "super.users"] {
            if spec.brokers.config.contains_key(key) {
                problems.push(format!(
                    "spec.brokers.config must not set {key}: spec.authorization renders it (add principals to authorization.superUsers); remove it"
                ));
            }
        }
        if !spec.listeners.internal.secured() {
            problems.push(
                "spec.authorization needs listeners.internal.tls or listeners.internal.authentication: without them every client is ANONYMOUS, and the operator could not prove it is the super user"
                    .to_string(),
            );
        }
    }
    if !spec.listeners.internal.secured() {
        return;
    }
    if spec.brokers.config.keys().any(|k| k.starts_with("listener.name.")) {
        problems.push(
            "spec.brokers.config must not set listener.name.* keys on a secured cluster: the operator renders each listener's ssl and sasl keys from spec.listeners; remove them"
                .to_string(),
        );
    }
    let mut ports = vec![("listeners.internal.port", spec.listeners.internal.port)];
    if let Some(external) = &spec.listeners.external {
        ports.push(("listeners.external.port", external.port));
    }
    for (field, port) in ports {
        if port == REPLICATION_PORT || port == OPERATOR_PORT {
            problems.push(format!(
                "spec.{field} {port} collides with a secured cluster's own listeners ({REPLICATION_PORT}: replication between brokers, {OPERATOR_PORT}: the operator); choose another port"
            ));
        }
    }
}

fn memory_limit(resources: Option<&ResourceRequirements>) -> Option<&Quantity> {
    resources?.limits.as_ref()?.get("memory")
}

/// Heap in MiB: the spec's value, else half the memory limit, else the seed's default.
fn heap_mib(
    role: &str,
    heap: Option<&Quantity>,
    resources: Option<&ResourceRequirements>,
    default_mib: u64,
    problems: &mut Vec<String>,
) -> u64 {
    let limit = match memory_limit(resources) {
        None => None,
        Some(q) => match quantity_bytes(&q.0) {
            Some(bytes) => Some(bytes),
            None => {
                problems.push(format!(
                    "spec.{role}.resources.limits.memory {:?} is not a quantity such as 2Gi",
                    q.0
                ));
                return default_mib;
            }
        },
    };
    let Some(heap) = heap else {
        return match limit {
            Some(limit) => (limit / 2 / MIB).max(64),
            None => default_mib,
        };
    };
    let Some(bytes) = quantity_bytes(&heap.0) else {
        problems.push(format!(
            "spec.{role}.heap {:?} is not a quantity such as 1Gi or 512Mi",
            heap.0
        ));
        return default_mib;
    };
    let mib = bytes / MIB;
    if mib < 64 {
        problems.push(format!("spec.{role}.heap {} is below the 64Mi minimum", heap.0));
    }
    if let Some(limit) = limit {
        if bytes >= limit {
            problems.push(format!(
                "spec.{role}.heap {} must be less than resources.limits.memory {}: the process needs memory beyond its heap, and the page cache holds the log; half the limit is a good start",
                heap.0,
                memory_limit(resources).map(|q| q.0.as_str()).unwrap_or_default()
            ));
        }
    }
    mib
}

fn storage_size(role: &str, storage: &StorageSpec, default: &str, problems: &mut Vec<String>) -> Quantity {
    let size = storage.size.clone().unwrap_or_else(|| Quantity(default.to_string()));
    if !storage.ephemeral && quantity_bytes(&size.0).is_none_or(|b| b == 0) {
        problems.push(format!(
            "spec.{role}.storage.size {:?} is not a positive quantity such as 10Gi",
            size.0
        ));
    }
    size
}

/// Parses a Kubernetes quantity (`512Mi`, `1G`, `1.5Gi`, `1073741824`) into bytes, rounding down.
pub fn quantity_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        _ => return None,
    };
    if number.is_empty() || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    Some((value * multiplier) as u64)
}

/// KAFKA_HEAP_OPTS for a heap in MiB, in the JVM's notation the broker parses (`-Xmx1G -Xms1G`).
pub fn heap_opts(mib: u64) -> String {
    let size = if mib.is_multiple_of(1024) {
        format!("{}G", mib / 1024)
    } else {
        format!("{mib}M")
    };
    format!("-Xmx{size} -Xms{size}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec() -> KafkaClusterSpec {
        serde_yaml::from_str("brokers: {replicas: 3}").unwrap()
    }

    fn limits(memory: &str) -> ResourceRequirements {
        ResourceRequirements {
            limits: Some(BTreeMap::from([("memory".to_string(), Quantity(memory.to_string()))])),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_the_seed() {
        let sizing = validate(&spec()).unwrap();
        assert_eq!(sizing.broker_heap_mib, 1024);
        assert_eq!(sizing.coordinator_heap_mib, 512);
        assert_eq!(sizing.broker_storage.0, "10Gi");
        assert_eq!(sizing.coordinator_storage.0, "1Gi");
    }

    #[test]
    fn heap_defaults_to_half_the_memory_limit() {
        let mut s = spec();
        s.brokers.resources = Some(limits("4Gi"));
        assert_eq!(validate(&s).unwrap().broker_heap_mib, 2048);
    }

    #[test]
    fn heap_at_or_above_the_limit_is_refused_with_the_reason() {
        let mut s = spec();
        s.brokers.resources = Some(limits("2Gi"));
        s.brokers.heap = Some(Quantity("2Gi".into()));
        let err = validate(&s).unwrap_err().to_string();
        assert!(
            err.contains("spec.brokers.heap 2Gi must be less than resources.limits.memory 2Gi"),
            "{err}"
        );
    }

    #[test]
    fn operator_owned_keys_are_refused_each_with_why() {
        let mut s = spec();
        s.brokers.config.insert("broker.id".into(), "7".into());
        s.brokers.config.insert("zookeeper.connect".into(), "x:2181".into());
        s.brokers.config.insert("num.partitions".into(), "6".into());
        let err = validate(&s).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].contains("must not set broker.id: the operator sets it from the StatefulSet ordinal"));
        assert!(err.problems[1].contains("zookeeper.connect"));
    }

    #[test]
    fn security_settings_are_refused_with_what_to_fix() {
        let s: KafkaClusterSpec = serde_yaml::from_str("authorization: {type: simple}").unwrap();
        let err = validate(&s).unwrap_err().to_string();
        assert!(err.contains("spec.authorization needs listeners.internal.tls"), "{err}");
        let s: KafkaClusterSpec = serde_yaml::from_str(
            "listeners: {internal: {port: 9093, authentication: {type: scram-sha-512}}}\nauthorization: {type: simple}\nbrokers: {config: {super.users: 'User:x'}}",
        )
        .unwrap();
        let err = validate(&s).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].contains("must not set super.users"), "{err}");
        assert!(
            err.problems[1].contains("spec.listeners.internal.port 9093 collides"),
            "{err}"
        );
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(quantity_bytes("512Mi"), Some(512 * MIB));
        assert_eq!(quantity_bytes("1.5Gi"), Some(1536 * MIB));
        assert_eq!(quantity_bytes("1G"), Some(1_000_000_000));
        assert_eq!(quantity_bytes("123"), Some(123));
        assert_eq!(quantity_bytes("1X"), None);
        assert_eq!(quantity_bytes("Gi"), None);
        assert_eq!(heap_opts(1024), "-Xmx1G -Xms1G");
        assert_eq!(heap_opts(1536), "-Xmx1536M -Xms1536M");
    }
}
