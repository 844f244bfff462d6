//! The KafkaTopic CRD's CEL rules, evaluated with kube's CEL validator over the committed schema (the
//! e2e topic scenarios check them against a real kube-apiserver too).

use kube::core::cel::Validator;
use oxka_operator::crd::topic::KafkaTopic;
use serde_json::Value;

fn schema() -> Value {
    let crd: Value = serde_yaml::from_str(&oxka_operator::topic_crd_yaml()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn object(yaml: &str) -> Value {
    let topic: KafkaTopic = serde_yaml::from_str(yaml).unwrap();
    serde_json::to_value(topic).unwrap()
}

fn messages(new: &str, old: Option<&str>) -> Vec<String> {
    let old = old.map(object);
    match Validator::new().validate(&schema(), &object(new), old.as_ref()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

fn topic(name: &str, spec: &str) -> String {
    format!("apiVersion: oxka.io/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

#[test]
fn the_example_passes() {
    let text = std::fs::read_to_string("../examples/topic.yaml").unwrap();
    assert_eq!(messages(&text, None), Vec::<String>::new());
}

#[test]
fn partitions_and_replicas_are_at_least_one() {
    let m = messages(
        &topic("orders", "{cluster: demo, partitions: 0, replicationFactor: 0}"),
        None,
    );
    assert!(
        m.iter().any(|m| m.contains("spec.partitions must be at least 1")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|m| m.contains("spec.replicationFactor must be at least 1")),
        "{m:?}"
    );
}

#[test]
fn the_topic_name_and_cluster_are_fixed() {
    let old = topic("orders", "{cluster: demo, topicName: orders.v1}");
    for new in [
        topic("orders", "{cluster: demo, topicName: orders.v2}"),
        topic("orders", "{cluster: demo}"),
    ] {
        let m = messages(&new, Some(&old));
        assert!(m.iter().any(|m| m.contains("spec.topicName cannot change")), "{m:?}");
    }
    let m = messages(&topic("orders", "{cluster: other, topicName: orders.v1}"), Some(&old));
    assert!(m.iter().any(|m| m.contains("spec.cluster cannot change")), "{m:?}");
    let m = messages(
        &topic("orders", "{cluster: demo, topicName: orders.v1, partitions: 9}"),
        Some(&old),
    );
    assert_eq!(m, Vec::<String>::new(), "growing partitions is allowed");
}

#[test]
fn a_name_kafka_would_refuse_needs_a_topic_name() {
    let long = "x".repeat(250);
    let m = messages(&topic(&long, "{cluster: demo}"), None);
    assert!(m.iter().any(|m| m.contains("not a valid Kafka topic name")), "{m:?}");
    assert_eq!(
        messages(&topic(&long, "{cluster: demo, topicName: short}"), None),
        Vec::<String>::new()
    );
}
