//! Every server.properties the operator renders is accepted by the broker's own config parser, with
//! the id the operator meant, and no operator-rendered key the broker does not know.

use std::path::Path;

use oxka_broker::config::{BrokerConfig, CoordinatorConfig};
use oxka_operator::crd::KafkaCluster;
use oxka_operator::render::{render, BrokerRack, RenderOptions};

fn load(path: &str) -> KafkaCluster {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    serde_yaml::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

#[test]
fn every_rendered_broker_config_is_accepted_by_the_broker() {
    for input in [
        "examples/minimal.yaml",
        "examples/production.yaml",
        "operator/tests/fixtures/loadbalancer.yaml",
        "examples/secured.yaml",
    ] {
        let cluster = load(input);
        let objects = render(&cluster, &RenderOptions::default()).unwrap();
        let data = objects.brokers.config_map.data.unwrap();
        assert!(!data.is_empty());
        for (file, text) in &data {
            let config = BrokerConfig::from_properties_text(text, file)
                .unwrap_or_else(|e| panic!("{input}: {file} was refused by the broker: {e}\n{text}"));
            let id: i32 = file
                .trim_start_matches("server-")
                .trim_end_matches(".properties")
                .parse()
                .unwrap();
            assert_eq!(config.broker_id.0, id, "{input}: {file}");
            // Keys from spec.brokers.config are the user's; the broker warns about those it does not
            // know. Every key the operator itself renders must be one the broker reads.
            let unknown: Vec<_> = config
                .unknown_keys
                .iter()
                .filter(|k| !cluster.spec.brokers.config.contains_key(k.as_str()))
                .collect();
            assert!(
                unknown.is_empty(),
                "{input}: {file}: the broker does not know the operator's keys {unknown:?}"
            );
        }
    }
}

#[test]
fn a_rendered_rack_is_the_brokers_rack() {
    let cluster = load("examples/production.yaml");
    let options = RenderOptions {
        racks: [(
            "2".to_string(),
            BrokerRack {
                rack: "zone-a".into(),
                node: "node-1".into(),
            },
        )]
        .into(),
        ..RenderOptions::default()
    };
    let data = render(&cluster, &options).unwrap().brokers.config_map.data.unwrap();
    let rack = |file: &str| BrokerConfig::from_properties_text(&data[file], file).unwrap().rack;
    assert_eq!(rack("server-2.properties").as_deref(), Some("zone-a"));
    assert_eq!(rack("server-1.properties"), None);
}

#[test]
fn every_rendered_coordinator_config_is_accepted_by_the_coordinator() {
    for input in [
        "examples/minimal.yaml",
        "examples/production.yaml",
        "operator/tests/fixtures/loadbalancer.yaml",
    ] {
        let cluster = load(input);
        let objects = render(&cluster, &RenderOptions::default()).unwrap();
        let data = objects.coordinators.config_map.data.unwrap();
        for ordinal in 0..cluster.spec.coordinators.replicas {
            let file = format!("zookeeper-{ordinal}.properties");
            let text = &data[&file];
            let config = CoordinatorConfig::from_properties_text(text, &file)
                .unwrap_or_else(|e| panic!("{input}: {file} was refused by the coordinator: {e}\n{text}"));
            let id = u64::try_from(ordinal + 1).unwrap();
            assert_eq!(config.id.0, id, "{input}: {file}");
            assert_eq!(
                data[&format!("myid-{ordinal}")].trim(),
                id.to_string(),
                "{input}: myid file and key agree"
            );
            assert_eq!(config.voters.len(), cluster.spec.coordinators.replicas as usize);
            assert_eq!(config.client_port, 2181);
            assert!(
                config.unknown_keys.is_empty(),
                "{input}: {file}: unknown keys {:?}",
                config.unknown_keys
            );
        }
    }
}
