//! Parses rendered config files with oxka's own parsers and fails on any it refuses:
//! `zookeeper*.properties` with the coordinator's, everything else with the broker's. The e2e tests run
//! it on every file the operator rendered into a live ConfigMap.
//!
//!     cargo run -p oxka-operator --example check-config -- server-0.properties zookeeper-0.properties

use oxka_broker::config::{BrokerConfig, CoordinatorConfig};

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                failed = true;
                continue;
            }
        };
        let file = std::path::Path::new(&path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let result = if file.starts_with("zookeeper") {
            CoordinatorConfig::from_properties_text(&text, &path).map(|c| {
                format!(
                    "coordinator id {}, {} voters, unknown keys {:?}",
                    c.id.0,
                    c.voters.len(),
                    c.unknown_keys
                )
            })
        } else {
            BrokerConfig::from_properties_text(&text, &path)
                .map(|c| format!("broker.id={}, unknown keys {:?}", c.broker_id, c.unknown_keys))
        };
        match result {
            Ok(summary) => println!("{path}: accepted ({summary})"),
            Err(e) => {
                eprintln!("{path}: refused: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
