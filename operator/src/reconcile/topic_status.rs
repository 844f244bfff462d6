//! A KafkaTopic's status from what one reconciliation found and did: pure, so that the condition each
//! outcome produces is tested without an API server.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::topic_admin::KafkaRefusal;
use super::topic_plan::{kafka_error_reason, ActualTopic};
use crate::crd::topic::KafkaTopicStatus;

/// How one reconciliation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The topic matches the spec (after the changes listed, if any).
    Ready { changes: Vec<String> },
    /// Kafka refused a request; nothing of that request changed.
    Refused(KafkaRefusal),
    /// Changes Kafka cannot make or the operator does not make; everything else was applied.
    NotSupported(Vec<String>),
    /// Nothing could be asked or done: `reason` is `ClusterNotFound`, `KafkaUnreachable` or
    /// `TopicConflict`.
    Waiting { reason: &'static str, message: String },
}

/// Everything the status says, besides the condition.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Observed {
    pub topic_name: String,
    /// The topic as Kafka describes it after this reconciliation, when it could be read.
    pub topic: Option<ActualTopic>,
    pub managed_config_keys: BTreeSet<String>,
    /// Drift corrected now; None keeps the last one reported.
    pub drift: Option<String>,
}

/// The new status. The Ready condition keeps its lastTransitionTime while its status stays the same.
pub fn topic_status(
    previous: Option<&KafkaTopicStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    observed: &Observed,
    now: Time,
) -> KafkaTopicStatus {
    let (ready, reason, message) = match outcome {
        Outcome::Ready { changes } => {
            let shape = observed
                .topic
                .as_ref()
                .map(|t| {
                    format!(
                        " ({} partitions, replication factor {})",
                        t.partitions, t.replication_factor
                    )
                })
                .unwrap_or_default();
            let done = if changes.is_empty() {
                String::new()
            } else {
                format!("; {}", changes.join("; "))
            };
            (
                "True",
                "Ready".to_string(),
                format!("topic {} matches the spec{shape}{done}", observed.topic_name),
            )
        }
        Outcome::Refused(refusal) => ("False", kafka_error_reason(refusal.code), refusal.to_string()),
        Outcome::NotSupported(why) => ("False", "NotSupported".to_string(), why.join("; ")),
        Outcome::Waiting { reason, message } => ("False", reason.to_string(), message.clone()),
    };
    let previous_ready = previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let last_transition_time = match previous_ready {
        Some(c) if c.status == ready => c.last_transition_time.clone(),
        _ => now,
    };
    let condition = Condition {
        type_: "Ready".to_string(),
        status: ready.to_string(),
        reason,
        message,
        observed_generation: generation,
        last_transition_time,
    };
    let last_drift = observed
        .drift
        .clone()
        .or_else(|| previous.and_then(|s| s.last_drift.clone()));
    // When Kafka could not be read, the last known shape of the topic stays.
    let (topic_id, partitions, replication_factor) = match &observed.topic {
        Some(t) => (t.topic_id.clone(), Some(t.partitions), Some(t.replication_factor)),
        None => previous
            .map(|s| (s.topic_id.clone(), s.partitions, s.replication_factor))
            .unwrap_or_default(),
    };
    KafkaTopicStatus {
        observed_generation: generation,
        conditions: vec![condition],
        topic_name: Some(observed.topic_name.clone()),
        topic_id,
        partitions,
        replication_factor,
        managed_config_keys: observed.managed_config_keys.iter().cloned().collect(),
        last_drift,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn observed() -> Observed {
        Observed {
            topic_name: "orders".into(),
            topic: Some(ActualTopic {
                topic_id: Some("AAAAAAAAAAAAAAAAAAAAAQ".into()),
                partitions: 3,
                replication_factor: 1,
                configs: Default::default(),
            }),
            managed_config_keys: ["retention.ms".to_string()].into(),
            drift: None,
        }
    }

    fn ready(status: &KafkaTopicStatus) -> &Condition {
        status.conditions.iter().find(|c| c.type_ == "Ready").unwrap()
    }

    #[test]
    fn ready_reports_the_topic_as_kafka_has_it() {
        let outcome = Outcome::Ready {
            changes: vec!["partitions 1 -> 3".into()],
        };
        let s = topic_status(None, Some(2), &outcome, &observed(), at(10));
        assert_eq!(ready(&s).status, "True");
        assert_eq!(
            ready(&s).message,
            "topic orders matches the spec (3 partitions, replication factor 1); partitions 1 -> 3"
        );
        assert_eq!(
            (s.observed_generation, s.partitions, s.replication_factor),
            (Some(2), Some(3), Some(1))
        );
        assert_eq!(s.topic_id.as_deref(), Some("AAAAAAAAAAAAAAAAAAAAAQ"));
        assert_eq!(s.managed_config_keys, vec!["retention.ms"]);
    }

    #[test]
    fn a_kafka_refusal_names_kafkas_error() {
        let refusal = KafkaRefusal {
            request: "CreateTopics",
            code: 38,
            message: Some("only 1 broker(s) are registered".into()),
        };
        let s = topic_status(None, Some(1), &Outcome::Refused(refusal), &observed(), at(10));
        assert_eq!(ready(&s).status, "False");
        assert_eq!(ready(&s).reason, "InvalidReplicationFactor");
        assert!(
            ready(&s)
                .message
                .contains("INVALID_REPLICATION_FACTOR (38): only 1 broker"),
            "{}",
            ready(&s).message
        );
    }

    #[test]
    fn the_transition_time_moves_only_when_readiness_changes_and_drift_is_remembered() {
        let mut o = observed();
        o.drift = Some("config retention.ms was changed to 5 outside the KafkaTopic".into());
        let first = topic_status(None, Some(1), &Outcome::Ready { changes: vec![] }, &o, at(10));
        let again = topic_status(
            Some(&first),
            Some(1),
            &Outcome::Ready { changes: vec![] },
            &observed(),
            at(20),
        );
        assert_eq!(ready(&again).last_transition_time, at(10));
        assert_eq!(again.last_drift, first.last_drift);
        let waiting = Outcome::Waiting {
            reason: "KafkaUnreachable",
            message: "no answer".into(),
        };
        let down = topic_status(Some(&again), Some(1), &waiting, &observed(), at(30));
        assert_eq!(
            (ready(&down).reason.as_str(), ready(&down).last_transition_time.clone()),
            ("KafkaUnreachable", at(30))
        );
    }
}
