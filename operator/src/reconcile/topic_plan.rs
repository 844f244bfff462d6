//! What a KafkaTopic reconciliation should do: pure functions from the spec, the topic as Kafka
//! describes it and what the operator did before, to the admin requests to send and the refusals to
//! report. `topic` performs the requests (through `topic_admin`) and writes status.
//!
//! Rules (Strimzi's topic operator where the issue is silent):
//! - a missing topic is created with the spec's partitions, replication factor and configs;
//! - partitions only grow; a spec below the topic's count is refused (`NotSupported`) and the
//!   partitions are left as they are, while config changes still apply;
//! - a replication factor that differs from the topic's is refused (`NotSupported`): changing it
//!   needs a partition reassignment the operator does not perform;
//! - configs: every key of the spec whose value differs (or that Kafka reports as a default, not set
//!   on the topic) is SET; keys the operator set earlier that left the spec are DELETEd; keys set by
//!   anyone else are never touched;
//! - a difference found while the spec is unchanged since the last successful reconciliation was made
//!   outside the KafkaTopic (drift): it is reported and corrected like any other difference.

use std::collections::{BTreeMap, BTreeSet};

/// The topic as the spec wants it (validated by the CRD's schema and CEL rules).
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTopic {
    pub name: String,
    /// None: the brokers' default (num.partitions), and no later check.
    pub partitions: Option<i32>,
    /// None: the brokers' default (default.replication.factor), and no later check.
    pub replication_factor: Option<i32>,
    pub config: BTreeMap<String, String>,
}

/// One config of the topic as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActualConfig {
    pub value: Option<String>,
    /// Set on the topic itself (config source DYNAMIC_TOPIC_CONFIG), not inherited from a default.
    pub set_on_topic: bool,
}

/// The topic as Kafka describes it (Metadata plus DescribeConfigs).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ActualTopic {
    pub topic_id: Option<String>,
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: BTreeMap<String, ActualConfig>,
}

/// A change Kafka cannot make, or the operator does not make; reported in status, nothing sent.
#[derive(Clone, Debug, PartialEq)]
pub struct NotSupported(pub String);

/// Changes to an existing topic. Empty when the topic matches the spec.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Alteration {
    /// CreatePartitions to this total count.
    pub grow_partitions_to: Option<i32>,
    /// IncrementalAlterConfigs SET operations.
    pub set_configs: BTreeMap<String, String>,
    /// IncrementalAlterConfigs DELETE operations (keys the operator set earlier, gone from the spec).
    pub delete_configs: Vec<String>,
    pub not_supported: Vec<NotSupported>,
    /// Differences made outside the KafkaTopic, in words, for status and an Event.
    pub drift: Vec<String>,
}

impl Alteration {
    /// True when nothing is to be sent to Kafka.
    pub fn sends_nothing(&self) -> bool {
        self.grow_partitions_to.is_none() && self.set_configs.is_empty() && self.delete_configs.is_empty()
    }
}

/// What one reconciliation does to Kafka.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// CreateTopics with the spec (-1 asks for the brokers' default).
    Create {
        partitions: i32,
        replication_factor: i32,
        configs: BTreeMap<String, String>,
    },
    Alter(Alteration),
}

/// Decides what to do. `managed` are the config keys the operator set before (status);
/// `spec_unchanged` says the spec is the one the last successful reconciliation made true, so any
/// difference now was made by someone else.
pub fn plan(
    desired: &DesiredTopic,
    actual: Option<&ActualTopic>,
    managed: &BTreeSet<String>,
    spec_unchanged: bool,
) -> Plan {
    let Some(actual) = actual else {
        return Plan::Create {
            partitions: desired.partitions.unwrap_or(-1),
            replication_factor: desired.replication_factor.unwrap_or(-1),
            configs: desired.config.clone(),
        };
    };
    let mut out = Alteration::default();
    if let Some(want) = desired.partitions {
        if want > actual.partitions {
            if spec_unchanged {
                out.drift.push(format!(
                    "partitions went down to {} outside the KafkaTopic (the topic was re-created?)",
                    actual.partitions
                ));
            }
            out.grow_partitions_to = Some(want);
        } else if want < actual.partitions {
            if spec_unchanged {
                out.drift.push(format!(
                    "partitions were raised to {} outside the KafkaTopic",
                    actual.partitions
                ));
            }
            out.not_supported.push(NotSupported(format!(
                "spec.partitions is {want} but topic {} has {} partitions: Kafka cannot remove partitions, so they are left as they are (raise spec.partitions to {} or more)",
                desired.name, actual.partitions, actual.partitions
            )));
        }
    }
    if let Some(want) = desired.replication_factor.filter(|rf| *rf != actual.replication_factor) {
        if spec_unchanged {
            out.drift.push(format!(
                "the replication factor became {} outside the KafkaTopic",
                actual.replication_factor
            ));
        }
        out.not_supported.push(NotSupported(format!(
            "spec.replicationFactor is {want} but topic {} has replication factor {}: changing it needs a partition reassignment, which the operator does not perform (set it back to {}, or reassign with kafka-reassign-partitions)",
            desired.name, actual.replication_factor, actual.replication_factor
        )));
    }
    for (key, want) in &desired.config {
        let have = actual.configs.get(key);
        let matches = have.is_some_and(|c| c.set_on_topic && c.value.as_deref() == Some(want.as_str()));
        if matches {
            continue;
        }
        if spec_unchanged && managed.contains(key) {
            let now = match have {
                Some(ActualConfig {
                    set_on_topic: true,
                    value: Some(v),
                }) => format!("changed to {v}"),
                _ => "removed".to_string(),
            };
            out.drift.push(format!("config {key} was {now} outside the KafkaTopic"));
        }
        out.set_configs.insert(key.clone(), want.clone());
    }
    for key in managed {
        let on_topic = actual.configs.get(key).is_some_and(|c| c.set_on_topic);
        if !desired.config.contains_key(key) && on_topic {
            out.delete_configs.push(key.clone());
        }
    }
    Plan::Alter(out)
}

/// The config keys the operator manages after a reconciliation: the spec's keys once Kafka accepted
/// them; when the config change failed, the earlier keys still count (they may still be set).
pub fn managed_after(desired: &DesiredTopic, previous: &BTreeSet<String>, configs_applied: bool) -> BTreeSet<String> {
    if configs_applied {
        desired.config.keys().cloned().collect()
    } else {
        previous.clone()
    }
}

/// A Kafka error code as Kafka's tools print it (`INVALID_REPLICATION_FACTOR`), from the
/// `kafka-protocol` crate's variant name (`InvalidReplicationFactor`).
pub fn kafka_error_name(code: i16) -> String {
    let Some(error) = kafka_protocol::error::ResponseError::try_from_code(code) else {
        return "NONE".to_string();
    };
    if let kafka_protocol::error::ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_ERROR_CODE_{code}");
    }
    let camel = error.to_string();
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The condition reason for a Kafka error code: the crate's variant name, a valid reason string.
pub fn kafka_error_reason(code: i16) -> String {
    match kafka_protocol::error::ResponseError::try_from_code(code) {
        Some(kafka_protocol::error::ResponseError::Unknown(_)) | None => "KafkaError".to_string(),
        Some(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(partitions: i32, rf: i32, config: &[(&str, &str)]) -> DesiredTopic {
        DesiredTopic {
            name: "orders".into(),
            partitions: Some(partitions),
            replication_factor: Some(rf),
            config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn actual(partitions: i32, rf: i32, set: &[(&str, &str)], defaults: &[(&str, &str)]) -> ActualTopic {
        let mut configs = BTreeMap::new();
        for (set_on_topic, list) in [(true, set), (false, defaults)] {
            for (k, v) in list {
                configs.insert(
                    k.to_string(),
                    ActualConfig {
                        value: Some(v.to_string()),
                        set_on_topic,
                    },
                );
            }
        }
        ActualTopic {
            topic_id: Some("id".into()),
            partitions,
            replication_factor: rf,
            configs,
        }
    }

    fn managed(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    fn alteration(plan: Plan) -> Alteration {
        match plan {
            Plan::Alter(a) => a,
            Plan::Create { .. } => panic!("expected an alteration, got {plan:?}"),
        }
    }

    #[test]
    fn a_missing_topic_is_created_with_the_spec_and_defaults_for_what_it_leaves_out() {
        let mut d = desired(3, 1, &[("retention.ms", "1000")]);
        assert_eq!(
            plan(&d, None, &managed(&[]), false),
            Plan::Create {
                partitions: 3,
                replication_factor: 1,
                configs: d.config.clone()
            }
        );
        d.partitions = None;
        d.replication_factor = None;
        let Plan::Create {
            partitions,
            replication_factor,
            ..
        } = plan(&d, None, &managed(&[]), false)
        else {
            panic!("expected a creation");
        };
        assert_eq!((partitions, replication_factor), (-1, -1));
    }

    #[test]
    fn a_matching_topic_sends_nothing() {
        let d = desired(3, 1, &[("retention.ms", "1000")]);
        let a = actual(3, 1, &[("retention.ms", "1000"), ("cleanup.policy", "compact")], &[]);
        let out = alteration(plan(&d, Some(&a), &managed(&["retention.ms"]), true));
        assert!(
            out.sends_nothing() && out.not_supported.is_empty() && out.drift.is_empty(),
            "{out:?}"
        );
    }

    #[test]
    fn partitions_grow_but_never_shrink() {
        let a = actual(3, 1, &[], &[]);
        let out = alteration(plan(&desired(6, 1, &[]), Some(&a), &managed(&[]), false));
        assert_eq!(out.grow_partitions_to, Some(6));
        assert!(out.drift.is_empty());
        let out = alteration(plan(&desired(2, 1, &[]), Some(&a), &managed(&[]), false));
        assert_eq!(out.grow_partitions_to, None);
        assert!(
            out.not_supported[0].0.contains("Kafka cannot remove partitions"),
            "{out:?}"
        );
    }

    #[test]
    fn a_decrease_refuses_the_partitions_but_configs_still_apply() {
        let a = actual(4, 1, &[], &[("retention.ms", "604800000")]);
        let out = alteration(plan(
            &desired(2, 1, &[("retention.ms", "1000")]),
            Some(&a),
            &managed(&[]),
            false,
        ));
        assert_eq!(out.grow_partitions_to, None);
        assert_eq!(out.set_configs.get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(out.not_supported.len(), 1);
    }

    #[test]
    fn a_replication_factor_change_is_reported_not_sent() {
        let a = actual(3, 1, &[], &[]);
        let out = alteration(plan(&desired(3, 3, &[]), Some(&a), &managed(&[]), false));
        assert!(out.sends_nothing());
        assert!(out.not_supported[0].0.contains("replication factor 1"), "{out:?}");
    }

    #[test]
    fn spec_configs_are_set_when_different_or_only_a_default() {
        let d = desired(1, 1, &[("retention.ms", "1000"), ("segment.ms", "60000")]);
        let a = actual(1, 1, &[("retention.ms", "5000")], &[("segment.ms", "60000")]);
        let out = alteration(plan(&d, Some(&a), &managed(&[]), false));
        assert_eq!(
            out.set_configs, d.config,
            "a default equal to the spec is still set on the topic"
        );
        assert!(out.delete_configs.is_empty());
    }

    #[test]
    fn only_keys_the_operator_set_are_deleted_when_they_leave_the_spec() {
        let d = desired(1, 1, &[]);
        let a = actual(1, 1, &[("retention.ms", "1000"), ("cleanup.policy", "compact")], &[]);
        let out = alteration(plan(&d, Some(&a), &managed(&["retention.ms", "segment.ms"]), false));
        assert_eq!(
            out.delete_configs,
            vec!["retention.ms".to_string()],
            "cleanup.policy was set by someone else; segment.ms is no longer on the topic"
        );
        assert!(out.set_configs.is_empty());
    }

    #[test]
    fn changes_made_outside_an_unchanged_spec_are_drift_and_corrected() {
        let d = desired(3, 1, &[("retention.ms", "1000")]);
        let a = actual(3, 1, &[("retention.ms", "9999")], &[]);
        let out = alteration(plan(&d, Some(&a), &managed(&["retention.ms"]), true));
        assert_eq!(
            out.drift,
            vec!["config retention.ms was changed to 9999 outside the KafkaTopic"]
        );
        assert_eq!(out.set_configs.get("retention.ms").map(String::as_str), Some("1000"));
        // The same difference after a spec edit is the edit itself, not drift.
        let out = alteration(plan(&d, Some(&a), &managed(&["retention.ms"]), false));
        assert!(out.drift.is_empty());
        // Partitions raised outside cannot be corrected: drift and a refusal.
        let out = alteration(plan(
            &d,
            Some(&actual(5, 1, &[("retention.ms", "1000")], &[])),
            &managed(&[]),
            true,
        ));
        assert_eq!(out.drift.len(), 1);
        assert_eq!(out.not_supported.len(), 1);
    }

    #[test]
    fn managed_keys_follow_the_spec_once_kafka_accepted_it() {
        let d = desired(1, 1, &[("retention.ms", "1")]);
        let before = managed(&["segment.ms"]);
        assert_eq!(managed_after(&d, &before, true), managed(&["retention.ms"]));
        assert_eq!(managed_after(&d, &before, false), before);
    }

    #[test]
    fn kafka_error_codes_read_as_kafka_names_them() {
        assert_eq!(kafka_error_name(38), "INVALID_REPLICATION_FACTOR");
        assert_eq!(kafka_error_reason(38), "InvalidReplicationFactor");
        assert_eq!(kafka_error_name(40), "INVALID_CONFIG");
        assert_eq!(kafka_error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(kafka_error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(kafka_error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }
}
