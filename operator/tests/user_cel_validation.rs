//! The KafkaUser CRD's CEL rules refuse what could never be a Kafka user or ACL, with readable
//! messages (evaluated with kube's CEL validator over the committed schema).

use kube::core::cel::Validator;
use oxka_operator::crd::user::KafkaUser;
use serde_json::Value;

fn messages(yaml: &str, old: Option<&str>) -> Vec<String> {
    let crd: Value = serde_yaml::from_str(&oxka_operator::user_crd_yaml()).unwrap();
    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    let object = |y: &str| serde_json::to_value(serde_yaml::from_str::<KafkaUser>(y).unwrap()).unwrap();
    let old = old.map(object);
    match Validator::new().validate(&schema, &object(yaml), old.as_ref()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

fn user(name: &str, spec: &str) -> String {
    format!("apiVersion: oxka.io/v1alpha1\nkind: KafkaUser\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

#[test]
fn the_example_passes_and_bad_users_are_refused() {
    let example = std::fs::read_to_string("../examples/user.yaml").unwrap();
    assert_eq!(messages(&example, None), Vec::<String>::new());
    let m = messages(&user("a:b", "  cluster: c\n"), None);
    assert!(
        m.iter().any(|m| m.contains("metadata.name is the Kafka user name")),
        "{m:?}"
    );
    let m = messages(
        &user(
            "alice",
            "  cluster: c\n  authorization:\n    type: simple\n    acls: [{resource: {type: topic}, operations: [Read]}]\n",
        ),
        None,
    );
    assert!(m.iter().any(|m| m.contains("needs a name")), "{m:?}");
    let m = messages(&user("alice", "  cluster: d\n"), Some(&user("alice", "  cluster: c\n")));
    assert!(m.iter().any(|m| m.contains("spec.cluster cannot change")), "{m:?}");
}
