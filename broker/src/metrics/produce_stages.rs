//! Where a Produce request's time goes, stage by stage (issue 15 item 5: find where a batch waits), in
//! the vocabulary of Kafka's `RequestMetrics` (`LocalTimeMs`, `RemoteTimeMs`, `ResponseQueueTimeMs`,
//! `ResponseSendTimeMs`, `TotalTimeMs`), plus the two waits a connection has before a request starts:
//! reading the frame and the memory budget. One histogram per stage,
//! `oxka_produce_stage_seconds{stage="..."}`; an observation is a few atomic adds.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A stage of a Produce request, in the order a request passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// From the frame's first bytes in the connection's buffer to its whole body read.
    Read,
    /// Waiting for the memory budget to admit the frame (backpressure).
    Budget,
    /// Decoding, authorizing and appending every partition (Kafka's local time).
    Local,
    /// acks=all: waiting until the in-sync replicas have the records (Kafka's remote time).
    Remote,
    /// From the response encoded to its first byte written: behind earlier responses, or waiting for
    /// the connection's task to pick it up (Kafka's response queue time).
    ResponseQueue,
    /// Writing the response to the socket (Kafka's response send time).
    ResponseSend,
    /// From the frame's first bytes to the response written.
    Total,
}

const STAGES: [(Stage, &str); 7] = [
    (Stage::Read, "read"),
    (Stage::Budget, "budget"),
    (Stage::Local, "local"),
    (Stage::Remote, "remote"),
    (Stage::ResponseQueue, "response_queue"),
    (Stage::ResponseSend, "response_send"),
    (Stage::Total, "total"),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

/// The stage histograms, each taken out of the family once so an observation looks nothing up.
pub struct ProduceStages {
    by_stage: Vec<Histogram>,
}

impl ProduceStages {
    /// Registers `oxka_produce_stage_seconds` (buckets from 50 µs to about 3.3 s).
    pub fn register(registry: &mut Registry) -> Self {
        let family = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 17))
        });
        registry.register(
            "oxka_produce_stage_seconds",
            "Time a Produce request spends in each stage: read, budget, local, remote (acks=all), response_queue, response_send, total",
            family.clone(),
        );
        let by_stage = STAGES
            .iter()
            .map(|(_, name)| family.get_or_create(&StageLabels { stage: name }).clone())
            .collect();
        ProduceStages { by_stage }
    }

    pub fn observe(&self, stage: Stage, elapsed: Duration) {
        let index = STAGES
            .iter()
            .position(|(s, _)| *s == stage)
            .expect("every stage is listed");
        self.by_stage[index].observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_has_its_own_histogram() {
        let mut registry = Registry::default();
        let stages = ProduceStages::register(&mut registry);
        stages.observe(Stage::Remote, Duration::from_millis(3));
        stages.observe(Stage::Total, Duration::from_millis(4));
        stages.observe(Stage::Total, Duration::from_millis(5));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("oxka_produce_stage_seconds_count{stage=\"remote\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("oxka_produce_stage_seconds_count{stage=\"total\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("oxka_produce_stage_seconds_count{stage=\"read\"} 0"),
            "{text}"
        );
    }
}
