use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(path: &str) -> KafkaCluster {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Renders each input and compares with the committed expected YAML. `UPDATE_EXPECT=1 cargo test`
/// rewrites the expected files; review the diff before committing.
#[test]
fn rendering_matches_committed_expected_output() {
    let cases = [
        ("examples/minimal.yaml", "minimal"),
        ("examples/production.yaml", "production"),
        ("operator/tests/fixtures/loadbalancer.yaml", "loadbalancer"),
        ("examples/secured.yaml", "secured"),
    ];
    let mut stale = Vec::new();
    for (input, name) in cases {
        let rendered = render(&load(input), &RenderOptions::default()).unwrap().to_yaml();
        let expected_path = repo_root().join(format!("operator/tests/fixtures/expected/{name}.yaml"));
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
            std::fs::write(&expected_path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != rendered {
            stale.push(expected_path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "rendered output differs from {stale:?}; if the change is intended run `UPDATE_EXPECT=1 cargo test -p oxka-operator` and review the diff"
    );
}

fn config_of(objects: &ClusterObjects, role: Role, key: &str) -> String {
    let tier = match role {
        Role::Broker => &objects.brokers,
        Role::Coordinator => &objects.coordinators,
    };
    tier.config_map.data.as_ref().unwrap()[key].clone()
}

#[test]
fn each_broker_advertises_its_own_pod_and_external_address() {
    let objects = render(&load("examples/production.yaml"), &RenderOptions::default()).unwrap();
    let b3 = config_of(&objects, Role::Broker, "server-3.properties");
    assert!(b3.contains("\nbroker.id=3\n"), "{b3}");
    assert!(b3.contains(
        "advertised.listeners=INTERNAL://prod-broker-3.prod-broker-headless.kafka.svc.cluster.local:9092,EXTERNAL://kafka.example.com:31093\n"
    ), "{b3}");
    assert!(b3.contains("zookeeper.connect=prod-coordinator-0.prod-coordinator-headless.kafka.svc.cluster.local:2181,prod-coordinator-1."), "{b3}");
    let external: Vec<_> = objects
        .brokers
        .services
        .iter()
        .filter(|s| s.metadata.name.as_ref().unwrap().ends_with("-external"))
        .collect();
    assert_eq!(external.len(), 5);
    let ports = external[3].spec.as_ref().unwrap().ports.as_ref().unwrap();
    assert_eq!(ports[0].node_port, Some(31093));
}

#[test]
fn replication_defaults_follow_the_broker_count_and_yield_to_the_spec() {
    let mut cluster = load("examples/minimal.yaml");
    let settings = |cluster: &crate::crd::KafkaCluster| {
        let objects = render(cluster, &RenderOptions::default()).unwrap();
        let text = config_of(&objects, Role::Broker, "server-0.properties");
        let get = |key: &str| {
            let found: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{key}=")))
                .collect();
            assert!(found.len() <= 1, "{key} rendered twice:\n{text}");
            found.first().map(|v| v.to_string())
        };
        (
            get("default.replication.factor"),
            get("min.insync.replicas"),
            get("offsets.topic.replication.factor"),
        )
    };
    cluster.spec.brokers.replicas = 3;
    assert_eq!(
        settings(&cluster),
        (Some("3".into()), Some("2".into()), Some("3".into()))
    );
    cluster.spec.brokers.replicas = 5;
    assert_eq!(
        settings(&cluster),
        (Some("3".into()), Some("2".into()), Some("3".into()))
    );
    cluster.spec.brokers.replicas = 1;
    assert_eq!(
        settings(&cluster),
        (Some("1".into()), Some("1".into()), Some("1".into()))
    );
    cluster.spec.brokers.replicas = 3;
    cluster
        .spec
        .brokers
        .config
        .insert("min.insync.replicas".into(), "3".into());
    assert_eq!(
        settings(&cluster),
        (Some("3".into()), Some("3".into()), Some("3".into())),
        "the spec wins"
    );
}

#[test]
fn coordinators_get_the_ensemble_and_their_id() {
    let objects = render(&load("examples/minimal.yaml"), &RenderOptions::default()).unwrap();
    let c1 = config_of(&objects, Role::Coordinator, "zookeeper-1.properties");
    assert!(c1.contains("\nmyid=2\n"), "{c1}");
    assert!(
        c1.contains("\nserver.1=demo-coordinator-0.demo-coordinator-headless.default.svc.cluster.local:2888:3888\n"),
        "{c1}"
    );
    assert!(c1.contains("\nserver.3="), "{c1}");
    assert_eq!(config_of(&objects, Role::Coordinator, "myid-1"), "2\n");
}

#[test]
fn scaling_brokers_up_keeps_the_hash_but_config_changes_move_it() {
    let mut cluster = load("examples/minimal.yaml");
    let before = render(&cluster, &RenderOptions::default()).unwrap();
    cluster.spec.brokers.replicas = 5;
    let scaled = render(&cluster, &RenderOptions::default()).unwrap();
    assert_eq!(before.brokers.config_hash, scaled.brokers.config_hash);
    assert_eq!(scaled.brokers.config_map.data.as_ref().unwrap().len(), 5);
    cluster.spec.brokers.config.insert("num.partitions".into(), "12".into());
    let changed = render(&cluster, &RenderOptions::default()).unwrap();
    assert_ne!(before.brokers.config_hash, changed.brokers.config_hash);
    assert_eq!(before.coordinators.config_hash, changed.coordinators.config_hash);
    let template = changed.brokers.stateful_set.spec.unwrap().template.metadata.unwrap();
    assert_eq!(
        template.annotations.unwrap()[CONFIG_HASH_ANNOTATION],
        changed.brokers.config_hash
    );
}

fn racks(entries: &[(&str, &str, &str)]) -> BTreeMap<String, BrokerRack> {
    entries
        .iter()
        .map(|(id, rack, node)| {
            (
                id.to_string(),
                BrokerRack {
                    rack: rack.to_string(),
                    node: node.to_string(),
                },
            )
        })
        .collect()
}

#[test]
fn racks_go_into_their_pods_files_only_and_never_into_the_template() {
    let cluster = load("examples/production.yaml");
    let without = render(&cluster, &RenderOptions::default()).unwrap();
    let options = RenderOptions {
        racks: racks(&[("1", "zone-a", "node-7"), ("3", "zone-b", "node-9")]),
        ..RenderOptions::default()
    };
    let with = render(&cluster, &options).unwrap();
    let data = with.brokers.config_map.data.as_ref().unwrap();
    assert!(
        data["server-1.properties"].contains("\nbroker.rack=zone-a\n"),
        "{}",
        data["server-1.properties"]
    );
    assert!(data["server-3.properties"].contains("\nbroker.rack=zone-b\n"));
    for other in [0, 2, 4] {
        assert!(!data[&format!("server-{other}.properties")].contains("broker.rack"));
        assert!(!data.contains_key(&format!("rack-node-{other}")));
    }
    assert_eq!(data["rack-node-1"], "node-7\n");
    assert_eq!(data["rack-node-3"], "node-9\n");
    // Racks are per pod: the StatefulSet, its hash and every other object stay byte for byte the same.
    assert_eq!(with.brokers.config_hash, without.brokers.config_hash);
    assert_eq!(with.brokers.stateful_set, without.brokers.stateful_set);
    assert_eq!(with.coordinators.config_map, without.coordinators.config_map);
    // What a later reconcile reads back from the live ConfigMap is what was rendered.
    assert_eq!(config::rendered_racks(data), options.racks);
}

#[test]
fn with_spec_rack_brokers_wait_for_their_rack_in_an_init_container() {
    let objects = render(&load("examples/production.yaml"), &RenderOptions::default()).unwrap();
    let pod = objects.brokers.stateful_set.spec.unwrap().template.spec.unwrap();
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.image.as_deref(), Some("registry.example.com/oxka:0.1.0"));
    assert_eq!(
        init.command.as_ref().unwrap(),
        &[
            "oxka",
            "await-config",
            "/etc/oxka/server-$(POD_INDEX).properties",
            "--key",
            "broker.rack",
            "--node",
            "$(NODE_NAME)",
            "--node-file",
            "/etc/oxka/rack-node-$(POD_INDEX)",
            "--node-label",
            "topology.kubernetes.io/zone",
            "--timeout-secs",
            "300",
        ]
    );
    let env: Vec<_> = init.env.as_ref().unwrap().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(env, ["POD_INDEX", "NODE_NAME"]);
    // The kubelet updates a ConfigMap volume only where it is mounted as a directory, not by subPath.
    let mounts = init.volume_mounts.as_ref().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].mount_path, "/etc/oxka");
    assert!(mounts[0].sub_path.is_none() && mounts[0].sub_path_expr.is_none());
    assert_eq!(
        init.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );

    let coordinators = objects.coordinators.stateful_set.spec.unwrap().template.spec.unwrap();
    assert!(coordinators.init_containers.is_none());
    let minimal = render(&load("examples/minimal.yaml"), &RenderOptions::default()).unwrap();
    assert!(minimal
        .brokers
        .stateful_set
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .init_containers
        .is_none());
}

#[test]
fn heap_is_rendered_as_kafka_heap_opts() {
    let objects = render(&load("examples/production.yaml"), &RenderOptions::default()).unwrap();
    let pod = objects.brokers.stateful_set.spec.unwrap().template.spec.unwrap();
    let env = pod.containers[0].env.as_ref().unwrap();
    let heap = env.iter().find(|e| e.name == "KAFKA_HEAP_OPTS").unwrap();
    assert_eq!(heap.value.as_deref(), Some("-Xmx4G -Xms4G"));
}

#[test]
fn owner_references_need_a_uid() {
    let offline = render(&load("examples/minimal.yaml"), &RenderOptions::default()).unwrap();
    assert!(offline.brokers.stateful_set.metadata.owner_references.is_none());
    let live = render(
        &load("operator/tests/fixtures/loadbalancer.yaml"),
        &RenderOptions::default(),
    )
    .unwrap();
    let owners = live.brokers.stateful_set.metadata.owner_references.unwrap();
    assert_eq!(owners[0].kind, "KafkaCluster");
    assert_eq!(owners[0].controller, Some(true));
}

#[test]
fn a_held_scale_down_keeps_the_current_brokers() {
    let cluster = load("examples/production.yaml");
    let options = RenderOptions {
        broker_replicas: Some(7),
        ..RenderOptions::default()
    };
    let objects = render(&cluster, &options).unwrap();
    assert_eq!(objects.brokers.stateful_set.spec.unwrap().replicas, Some(7));
    assert!(objects
        .brokers
        .config_map
        .data
        .unwrap()
        .contains_key("server-6.properties"));
}

#[test]
fn operator_owned_keys_fail_rendering_with_the_reason() {
    let mut cluster = load("examples/minimal.yaml");
    cluster.spec.brokers.config.insert("log.dirs".into(), "/tmp/x".into());
    let err = render(&cluster, &RenderOptions::default()).unwrap_err().to_string();
    assert!(
        err.contains("spec.brokers.config must not set log.dirs: the operator points it at the volume"),
        "{err}"
    );
}

#[test]
fn committed_crds_are_current() {
    for (path, generated) in crate::crd_files().into_iter().flat_map(|(file, yaml)| {
        [
            (format!("crds/{file}"), yaml.clone()),
            (format!("charts/oxka-operator/crds/{file}"), yaml),
        ]
    }) {
        let full = repo_root().join(&path);
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&full).unwrap_or_default();
        assert!(
            committed == generated,
            "{path} is stale: run `UPDATE_EXPECT=1 cargo test -p oxka-operator` and commit it"
        );
    }
}

#[test]
fn a_secured_internal_listener_renders_kafkas_keys_and_separate_replication_and_operator_listeners() {
    let objects = render(&load("examples/secured.yaml"), &RenderOptions::default()).unwrap();
    let b1 = config_of(&objects, Role::Broker, "server-1.properties");
    for line in [
        "listeners=INTERNAL://:9092,OPERATOR://:9093,REPLICATION://:9091\n",
        "listener.security.protocol.map=INTERNAL:SASL_SSL,OPERATOR:SSL,REPLICATION:PLAINTEXT\n",
        "inter.broker.listener.name=REPLICATION\n",
        "advertised.listeners=INTERNAL://secured-broker-1.secured-broker-headless.default.svc.cluster.local:9092,OPERATOR://secured-broker-1.",
        "listener.name.internal.ssl.keystore.type=PEM\n",
        "listener.name.internal.ssl.keystore.location=/etc/oxka/tls/broker-1.pem\n",
        "listener.name.internal.sasl.enabled.mechanisms=SCRAM-SHA-512\n",
        "listener.name.operator.ssl.client.auth=required\n",
        "listener.name.operator.ssl.truststore.location=/etc/oxka/tls/ca.crt\n",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n",
        "super.users=User:CN=oxka-operator\n",
    ] {
        assert!(b1.contains(line), "missing {line:?} in\n{b1}");
    }
    // The broker certificates are mounted as a directory (renewals reach the files), read-only.
    let pod = objects
        .brokers
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let volume = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "tls").unwrap();
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("secured-broker-certs")
    );
    let mount = pod.containers[0]
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "tls")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.sub_path_expr.as_deref()),
        ("/etc/oxka/tls", None)
    );
}

#[test]
fn a_certificate_renewal_changes_the_broker_hash_only() {
    let cluster = load("examples/secured.yaml");
    let before = render(&cluster, &RenderOptions::default()).unwrap();
    let options = RenderOptions {
        certificates_hash: Some("renewed".into()),
        ..RenderOptions::default()
    };
    let after = render(&cluster, &options).unwrap();
    assert_ne!(before.brokers.config_hash, after.brokers.config_hash);
    assert_eq!(before.coordinators.config_hash, after.coordinators.config_hash);
}

#[test]
fn network_policies_keep_replication_to_brokers_and_the_ensemble_to_its_members() {
    let objects = render(&load("examples/secured.yaml"), &RenderOptions::default()).unwrap();
    let broker = serde_json::to_value(objects.brokers.network_policy.as_ref().unwrap()).unwrap();
    let rules = broker["spec"]["ingress"].as_array().unwrap();
    let rule_for = |port: i64| rules.iter().find(|r| r["ports"][0]["port"] == port).unwrap().clone();
    assert!(rule_for(9092).get("from").is_none(), "clients from anywhere by default");
    assert_eq!(
        rule_for(9091)["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "broker"
    );
    assert_eq!(
        rule_for(9093)["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "oxka-operator"
    );
    let coordinator = serde_json::to_value(objects.coordinators.network_policy.as_ref().unwrap()).unwrap();
    let rules = coordinator["spec"]["ingress"].as_array().unwrap();
    let peers = rules.iter().find(|r| r["ports"][0]["port"] == 2888).unwrap()["from"].clone();
    assert_eq!(peers.as_array().unwrap().len(), 1);
    assert_eq!(
        peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "coordinator"
    );
    // Not asked for: none.
    let plain = render(&load("examples/minimal.yaml"), &RenderOptions::default()).unwrap();
    assert!(plain.brokers.network_policy.is_none() && plain.coordinators.network_policy.is_none());
}
