//! Parses server.properties files with the broker's own config parser and fails on the first one it
//! refuses. The e2e tests run it on every file the operator rendered into a live ConfigMap.
//!
//!     cargo run -p oxka-operator --example check-broker-config -- server-0.properties ...

use oxka_broker::config::BrokerConfig;

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
        match BrokerConfig::from_properties_text(&text, &path) {
            Ok(config) => println!(
                "{path}: accepted (broker.id={}, unknown keys: {:?})",
                config.broker_id, config.unknown_keys
            ),
            Err(e) => {
                eprintln!("{path}: refused by the broker: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
