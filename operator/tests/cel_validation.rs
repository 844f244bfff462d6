//! The CEL rules in the committed CRD reject bad specs with readable messages. Evaluated client-side
//! with kube's CEL validator over the same schema the API server gets (the e2e tests check a few of
//! them against a real kube-apiserver too).

use kube::core::cel::Validator;
use oxka_operator::crd::KafkaCluster;
use serde_json::Value;

fn schema() -> Value {
    let crd: Value = serde_yaml::from_str(&oxka_operator::crd_yaml()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Parses YAML through the Rust types so defaults are filled in, as the API server does before CEL.
fn object(yaml: &str) -> Value {
    let cluster: KafkaCluster = serde_yaml::from_str(yaml).unwrap();
    serde_json::to_value(cluster).unwrap()
}

fn messages(new: &str, old: Option<&str>) -> Vec<String> {
    let old = old.map(object);
    match Validator::new().validate(&schema(), &object(new), old.as_ref()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

const HEAD: &str = "apiVersion: oxka.io/v1alpha1\nkind: KafkaCluster\nmetadata: {name: demo}\n";

#[test]
fn examples_pass() {
    for path in [
        "../examples/minimal.yaml",
        "../examples/production.yaml",
        "../examples/secured.yaml",
    ] {
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(messages(&text, None), Vec::<String>::new(), "{path}");
    }
}

#[test]
fn even_coordinator_ensembles_are_refused() {
    let m = messages(&format!("{HEAD}spec:\n  coordinators: {{replicas: 4}}\n"), None);
    assert!(
        m.iter().any(|m| m.contains("coordinators.replicas must be odd")),
        "{m:?}"
    );
}

#[test]
fn the_ensemble_size_is_fixed_after_creation() {
    let old = format!("{HEAD}spec:\n  coordinators: {{replicas: 3}}\n");
    let new = format!("{HEAD}spec:\n  coordinators: {{replicas: 5}}\n");
    let m = messages(&new, Some(&old));
    assert!(m.iter().any(|m| m.contains("cannot change after creation")), "{m:?}");
}

#[test]
fn external_listeners_need_a_distinct_address_per_broker() {
    let np = format!(
        "{HEAD}spec:\n  listeners:\n    external: {{type: NodePort, advertisedHostTemplate: node.example.com}}\n"
    );
    let m = messages(&np, None);
    assert!(m.iter().any(|m| m.contains("needs nodePortBase")), "{m:?}");
    let lb = format!(
        "{HEAD}spec:\n  listeners:\n    external: {{type: LoadBalancer, advertisedHostTemplate: kafka.example.com}}\n"
    );
    let m = messages(&lb, None);
    assert!(
        m.iter().any(|m| m.contains("needs {id} in advertisedHostTemplate")),
        "{m:?}"
    );
    let range = format!("{HEAD}spec:\n  brokers: {{replicas: 10}}\n  listeners:\n    external: {{type: NodePort, nodePortBase: 32760, advertisedHostTemplate: n}}\n");
    let m = messages(&range, None);
    assert!(m.iter().any(|m| m.contains("within the NodePort range")), "{m:?}");
}

#[test]
fn long_names_are_refused() {
    let m = messages(
        &format!(
            "apiVersion: oxka.io/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: {}}}\nspec: {{}}\n",
            "x".repeat(41)
        ),
        None,
    );
    assert!(m.iter().any(|m| m.contains("at most 40 characters")), "{m:?}");
}

#[test]
fn heap_must_be_a_quantity() {
    let m = messages(&format!("{HEAD}spec:\n  coordinators:\n    heap: lots\n"), None);
    assert!(m.iter().any(|m| m.contains("heap must be a quantity")), "{m:?}");
    assert_eq!(
        messages(&format!("{HEAD}spec:\n  brokers:\n    heap: 1536Mi\n"), None),
        Vec::<String>::new()
    );
}

#[test]
fn the_canary_needs_time_to_read_a_record_back_before_calling_it_lost() {
    let m = messages(
        &format!("{HEAD}spec:\n  canary: {{enabled: true, intervalSeconds: 30, lostAfterSeconds: 40}}\n"),
        None,
    );
    assert!(
        m.iter().any(|m| m.contains("lostAfterSeconds must be at least twice")),
        "{m:?}"
    );
    // Defaults (1 s, 60 s) pass, and so does an interval alone up to half the default grace.
    for spec in ["{enabled: true}", "{enabled: true, intervalSeconds: 30}"] {
        assert_eq!(
            messages(&format!("{HEAD}spec:\n  canary: {spec}\n"), None),
            Vec::<String>::new(),
            "{spec}"
        );
    }
}

#[test]
fn mutual_tls_needs_tls_and_renewal_comes_before_expiry() {
    let m = messages(
        &format!("{HEAD}spec:\n  listeners: {{internal: {{authentication: {{type: tls}}}}}}\n"),
        None,
    );
    assert!(
        m.iter()
            .any(|m| m.contains("authentication.type tls (mutual TLS) needs listeners.internal.tls.enabled")),
        "{m:?}"
    );
    let m = messages(
        &format!("{HEAD}spec:\n  listeners: {{internal: {{tls: {{enabled: true}}, authentication: {{type: tls}}}}}}\n"),
        None,
    );
    assert_eq!(m, Vec::<String>::new());
    let m = messages(
        &format!("{HEAD}spec:\n  clusterCa: {{validityDays: 30, renewalDays: 30}}\n"),
        None,
    );
    assert!(
        m.iter().any(|m| m.contains("clusterCa.renewalDays must be less than")),
        "{m:?}"
    );
}
