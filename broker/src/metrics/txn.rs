//! Transaction coordinator metrics: transactions completed (committed, aborted), aborted at their
//! timeout, and, set at scrape time from the coordinator's state, the open transactions and the age of
//! the oldest. Kafka exposes no such gauges under a JMX name, so they carry oxka's prefix.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// The counters the transaction coordinator increments (cheap clones of the registered metrics).
#[derive(Clone, Default)]
pub struct TxnCounters {
    /// Transactions completed, by result (`commit`, `abort`).
    pub completed: Family<ResultLabels, Counter>,
    /// Transactions the coordinator aborted because they stayed open past their timeout.
    pub timed_out: Counter,
}

impl TxnCounters {
    pub fn completed(&self, commit: bool) {
        let result = if commit { "commit" } else { "abort" };
        self.completed
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }
}

/// The state-derived gauges, set at scrape time.
#[derive(Clone, Default)]
pub struct TxnGauges {
    pub open: Gauge,
    pub oldest_open_ms: Gauge,
}

pub fn register(registry: &mut Registry, counters: &TxnCounters, gauges: &TxnGauges) {
    registry.register(
        "oxka_transactions_completed",
        "Transactions this broker's transaction coordinator completed, by result",
        counters.completed.clone(),
    );
    registry.register(
        "oxka_transactions_timed_out",
        "Transactions the coordinator aborted because they were open longer than their timeout",
        counters.timed_out.clone(),
    );
    registry.register(
        "oxka_transactions_open",
        "Transactions open (Ongoing, PrepareCommit, PrepareAbort) at this broker's coordinator",
        gauges.open.clone(),
    );
    registry.register(
        "oxka_transactions_oldest_open_ms",
        "How long the oldest open transaction at this broker's coordinator has been open (0: none)",
        gauges.oldest_open_ms.clone(),
    );
}
