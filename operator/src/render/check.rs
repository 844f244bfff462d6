//! Nothing bad reaches a pod: before anything is applied, every broker and coordinator file the operator
//! rendered must pass oxka's own start-up parsers (the `oxka-config` crate the broker and the coordinator
//! run). A file they would refuse would crash-loop every pod of its StatefulSet, one after another, as
//! the roll reached it; here it is refused instead, naming the key, the value and the reason, and the
//! running cluster is left untouched.

use k8s_openapi::api::core::v1::ConfigMap;
use oxka_config::{BrokerConfig, CoordinatorConfig};

use super::ClusterObjects;

/// The problems with the rendered files, one line each (empty: all accepted).
pub fn rendered_files(objects: &ClusterObjects) -> Vec<String> {
    let mut problems = Vec::new();
    check_files(
        &objects.brokers.config_map,
        "spec.brokers.config",
        "broker",
        &mut problems,
        |text, origin| BrokerConfig::from_properties_text(text, origin).map(|_| ()),
    );
    check_files(
        &objects.coordinators.config_map,
        "spec.coordinators",
        "coordinator",
        &mut problems,
        |text, origin| CoordinatorConfig::from_properties_text(text, origin).map(|_| ()),
    );
    problems
}

fn check_files(
    config_map: &ConfigMap,
    field: &str,
    role: &str,
    problems: &mut Vec<String>,
    parse: impl Fn(&str, &str) -> Result<(), oxka_config::ConfigError>,
) {
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    for (file, text) in config_map.data.iter().flatten() {
        if !file.ends_with(".properties") {
            continue;
        }
        if let Err(e) = parse(text, &format!("{name}/{file}")) {
            let problem = format!("{field}: the {role} would refuse its configuration at start-up: {e}");
            // The same override fails in every pod's file: say it once.
            if !problems.iter().any(|p| same_reason(p, &problem)) {
                problems.push(problem);
            }
        }
    }
}

/// Two problems differ only in the file named (`server-0.properties:12` vs `server-1.properties:12`).
fn same_reason(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        s.split_whitespace()
            .filter(|w| !w.contains(".properties"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::KafkaCluster;
    use crate::render::{render, RenderOptions};

    fn refused(spec: &str) -> Vec<String> {
        let yaml = format!("apiVersion: oxka.io/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: demo}}\nspec:\n{spec}");
        let cluster: KafkaCluster = serde_yaml::from_str(&yaml).unwrap();
        match render(&cluster, &RenderOptions::default()) {
            Err(crate::render::RenderError::RefusedConfig(problems)) => problems,
            other => panic!("rendered: {:?}", other.map(|o| o.to_yaml())),
        }
    }

    #[test]
    fn the_examples_render_files_the_broker_and_coordinator_accept() {
        for path in [
            "../examples/minimal.yaml",
            "../examples/production.yaml",
            "../examples/secured.yaml",
        ] {
            let cluster: KafkaCluster = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let objects = render(&cluster, &RenderOptions::default()).unwrap();
            assert_eq!(rendered_files(&objects), Vec::<String>::new(), "{path}");
        }
    }

    #[test]
    fn a_broker_override_the_broker_refuses_is_named_once_with_its_reason() {
        let problems = refused("  brokers:\n    replicas: 3\n    config: {log.retention.hours: abc}\n");
        assert_eq!(problems.len(), 1, "one problem, not one per broker: {problems:?}");
        assert!(
            problems[0].starts_with("spec.brokers.config: the broker would refuse")
                && problems[0].contains("\"abc\" for log.retention.hours")
                && problems[0].contains("expected an integer"),
            "{problems:?}"
        );
    }
}
