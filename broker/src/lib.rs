//! oxka: a Kafka-compatible broker. See `docs/architecture.md` for the map of modules.
pub mod config;
