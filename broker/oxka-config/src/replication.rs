//! `ReplicationConfig`: Kafka's `replica.*` keys, `num.replica.fetchers`, the inter-broker listener and
//! the broker default of `unclean.leader.election.enable`, validated once at start-up. The replica
//! manager and its fetchers read only this struct.

use super::raw::{ConfigError, RawConfig};

/// How this broker replicates: how followers fetch and when the leader drops a follower from the ISR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `num.replica.fetchers` (1): fetcher tasks per source broker; partitions are spread over them.
    pub num_replica_fetchers: usize,
    /// `replica.fetch.max.bytes` (1 MiB): bytes per partition in one follower fetch.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB): bytes per follower fetch response.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500): how long a leader holds a follower fetch waiting for data.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1): bytes a follower fetch waits for.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000): pause after a failed fetch.
    pub fetch_backoff_ms: u64,
    /// `replica.lag.time.max.ms` (30000): a follower that has not caught up for this long leaves the ISR.
    pub lag_time_max_ms: i64,
    /// `replica.socket.timeout.ms` (30000): how long a follower waits for a leader's answer.
    pub socket_timeout_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000): how often high watermarks are written.
    pub high_watermark_checkpoint_interval_ms: u64,
    /// `inter.broker.listener.name` or `security.inter.broker.protocol` (the PLAINTEXT listener, else the
    /// first): the listener followers fetch through and other brokers are called on.
    pub inter_broker_listener: String,
    /// How connections to that listener are secured (TLS, SASL login): set by `BrokerConfig`, which
    /// knows each listener's protocol.
    pub inter_broker_security: crate::inter_broker::InterBrokerSecurity,
    /// `unclean.leader.election.enable` (false): the broker default of the topic config.
    pub unclean_leader_election: bool,
    /// `replication.quota.window.num` (11): windows the replication throttles measure over.
    pub quota_window_num: usize,
    /// `replication.quota.window.size.seconds` (1): the length of one window.
    pub quota_window_size_seconds: u64,
}

impl ReplicationConfig {
    /// Reads and validates the keys; `listeners` are the names of the broker's listeners, in order.
    /// The inter-broker security is left PLAINTEXT here.
    pub fn from_raw(raw: &RawConfig, listeners: &[&str]) -> Result<Self, ConfigError> {
        let fetch_max_bytes = raw
            .ranged::<i32>("replica.fetch.max.bytes", 0, i32::MAX)?
            .unwrap_or(1 << 20);
        let fetch_wait_max_ms = raw
            .ranged::<i32>("replica.fetch.wait.max.ms", 0, i32::MAX)?
            .unwrap_or(500);
        let socket_timeout_ms = raw
            .ranged::<u64>("replica.socket.timeout.ms", 1, i32::MAX as u64)?
            .unwrap_or(30_000);
        if socket_timeout_ms < fetch_wait_max_ms as u64 {
            // Kafka refuses this too: every idle follower fetch would time out.
            return Err(raw.invalid(
                "replica.socket.timeout.ms",
                format!("must be at least replica.fetch.wait.max.ms ({fetch_wait_max_ms})"),
            ));
        }
        Ok(ReplicationConfig {
            num_replica_fetchers: raw.ranged::<usize>("num.replica.fetchers", 1, 1024)?.unwrap_or(1),
            fetch_max_bytes,
            fetch_response_max_bytes: raw
                .ranged::<i32>("replica.fetch.response.max.bytes", 0, i32::MAX)?
                .unwrap_or(10 << 20),
            fetch_wait_max_ms,
            fetch_min_bytes: raw.ranged::<i32>("replica.fetch.min.bytes", 1, i32::MAX)?.unwrap_or(1),
            fetch_backoff_ms: raw
                .ranged::<u64>("replica.fetch.backoff.ms", 0, i32::MAX as u64)?
                .unwrap_or(1000),
            lag_time_max_ms: raw
                .ranged::<i64>("replica.lag.time.max.ms", 1, i32::MAX as i64)?
                .unwrap_or(30_000),
            socket_timeout_ms,
            high_watermark_checkpoint_interval_ms: raw
                .ranged::<u64>("replica.high.watermark.checkpoint.interval.ms", 1, i32::MAX as u64)?
                .unwrap_or(5000),
            inter_broker_listener: crate::inter_broker::listener_name(raw, listeners)?,
            inter_broker_security: Default::default(),
            unclean_leader_election: raw.boolean("unclean.leader.election.enable")?.unwrap_or(false),
            quota_window_num: raw
                .ranged::<usize>("replication.quota.window.num", 1, 1000)?
                .unwrap_or(11),
            quota_window_size_seconds: raw
                .ranged::<u64>("replication.quota.window.size.seconds", 1, 3600)?
                .unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReplicationConfig, ConfigError> {
        let raw = RawConfig::from_text(text, "test").unwrap();
        ReplicationConfig::from_raw(&raw, &["PLAINTEXT"])
    }

    #[test]
    fn kafka_defaults_and_overrides() {
        let d = parse("").unwrap();
        assert_eq!(
            (
                d.num_replica_fetchers,
                d.fetch_max_bytes,
                d.fetch_wait_max_ms,
                d.lag_time_max_ms
            ),
            (1, 1 << 20, 500, 30_000)
        );
        assert_eq!(d.inter_broker_listener, "PLAINTEXT");
        assert!(!d.unclean_leader_election);
        let c = parse("num.replica.fetchers=4\nreplica.lag.time.max.ms=10000\nunclean.leader.election.enable=true\n")
            .unwrap();
        assert_eq!((c.num_replica_fetchers, c.lag_time_max_ms), (4, 10_000));
        assert!(c.unclean_leader_election);
    }

    #[test]
    fn a_socket_timeout_below_the_fetch_wait_is_refused() {
        let e = parse("replica.fetch.wait.max.ms=5000\nreplica.socket.timeout.ms=1000\n").unwrap_err();
        assert!(e.to_string().contains("replica.socket.timeout.ms"), "{e}");
        assert!(parse("num.replica.fetchers=0\n").is_err());
    }
}
