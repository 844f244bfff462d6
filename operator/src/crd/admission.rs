//! The checks the API server makes when a KafkaCluster is applied, run offline: the CRD's OpenAPI
//! schema constraints (ranges, lengths, enums, patterns) and its CEL rules (`x-kubernetes-validations`,
//! evaluated with kube's CEL validator). The schema is the CRD the operator publishes (`crd()`,
//! generated from the Rust types and their attributes), so `oxka-operator render` refuses exactly what
//! `kubectl apply` would, from one source. Creation rules only: transition rules (`oldSelf`) need the
//! stored object, which only the API server has.

use kube::core::cel::Validator;
use kube::CustomResourceExt;
use serde_json::Value;

use super::KafkaCluster;

/// Every problem the API server would report for `cluster`, as `field: value: reason` lines.
pub fn problems(cluster: &KafkaCluster) -> Vec<String> {
    let crd = KafkaCluster::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(|s| serde_json::to_value(s).expect("the CRD schema serializes"))
        .unwrap_or(Value::Null);
    // Through the Rust types, so defaults are filled in as the API server does before validating.
    let object = serde_json::to_value(cluster).expect("a KafkaCluster serializes");
    let mut found = Vec::new();
    structural(&schema, &object, "", &mut found);
    if let Err(errors) = Validator::new().validate(&schema, &object, None) {
        for e in &errors {
            let field = if e.field_path.is_empty() {
                "spec"
            } else {
                e.field_path.as_str()
            };
            found.push(format!("{field}: {}", e.message));
        }
    }
    found
}

/// The OpenAPI constraints the CRD uses, walked along the object.
fn structural(schema: &Value, value: &Value, path: &str, found: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    let here = |what: String| format!("{}: {}", if path.is_empty() { "<root>" } else { path }, what);
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                found.push(here(format!("{value} is below the minimum {min}")));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                found.push(here(format!("{value} is above the maximum {max}")));
            }
        }
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if chars < min {
                found.push(here(format!("{value} is shorter than {min} characters")));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if chars > max {
                found.push(here(format!("{value} is longer than {max} characters")));
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(pattern) {
                Ok(re) if !re.is_match(s) => found.push(here(format!("{value} does not match {pattern}"))),
                Ok(_) => {}
                Err(e) => found.push(here(format!("the schema's pattern {pattern} does not compile: {e}"))),
            }
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
            found.push(here(format!("{value} is not one of {}", names.join(", "))));
        }
    }
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, v) in fields {
                if let Some(sub) = properties.and_then(|p| p.get(key)) {
                    structural(sub, v, &child(key), found);
                } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                    structural(sub, v, &child(key), found);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    structural(sub, v, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(spec: &str) -> Vec<String> {
        let yaml = format!("apiVersion: oxka.io/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: demo}}\nspec:\n{spec}");
        problems(&serde_yaml::from_str(&yaml).unwrap())
    }

    #[test]
    fn the_examples_are_admitted() {
        for path in [
            "../examples/minimal.yaml",
            "../examples/production.yaml",
            "../examples/secured.yaml",
        ] {
            let cluster: KafkaCluster = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            assert_eq!(problems(&cluster), Vec::<String>::new(), "{path}");
        }
    }

    #[test]
    fn what_the_api_server_refuses_is_refused_with_the_field() {
        // A CEL rule.
        let p = problems_of("  coordinators: {replicas: 2}\n");
        assert!(
            p.iter().any(|m| m.contains("coordinators.replicas must be odd")),
            "{p:?}"
        );
        // A range.
        let p = problems_of("  coordinators: {replicas: 9}\n");
        assert!(
            p.iter()
                .any(|m| m.starts_with("spec.coordinators.replicas: 9 is above the maximum 7")),
            "{p:?}"
        );
        // A pattern.
        let p = problems_of("  imagePullPolicy: Sometimes\n");
        assert!(
            p.iter()
                .any(|m| m.starts_with("spec.imagePullPolicy: \"Sometimes\" does not match")),
            "{p:?}"
        );
    }
}
