//! `LeaderBalanceConfig`: Kafka's automatic preferred-leader rebalancing keys, read by a coordinator
//! from its `zookeeper.properties` and by a broker from `server.properties` (where they configure the
//! embedded coordinator of a broker without `zookeeper.connect`; with an ensemble, the coordinators'
//! own files decide and a broker only validates them).

use std::time::Duration;

use super::raw::{ConfigError, RawConfig};

/// How the controller keeps partition leadership on preferred replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderBalanceConfig {
    /// `auto.leader.rebalance.enable` (true): run the periodic check at all.
    pub enabled: bool,
    /// `leader.imbalance.check.interval.seconds` (300): how often the controller checks.
    pub check_interval: Duration,
    /// `leader.imbalance.per.broker.percentage` (10): a broker whose share of preferred partitions it
    /// does not lead is above this gets them back.
    pub imbalance_per_broker_percentage: u32,
}

impl Default for LeaderBalanceConfig {
    fn default() -> Self {
        LeaderBalanceConfig {
            enabled: true,
            check_interval: Duration::from_secs(300),
            imbalance_per_broker_percentage: 10,
        }
    }
}

impl LeaderBalanceConfig {
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = LeaderBalanceConfig::default();
        Ok(LeaderBalanceConfig {
            enabled: raw.boolean("auto.leader.rebalance.enable")?.unwrap_or(defaults.enabled),
            check_interval: raw
                .ranged::<u64>("leader.imbalance.check.interval.seconds", 1, i32::MAX as u64)?
                .map(Duration::from_secs)
                .unwrap_or(defaults.check_interval),
            imbalance_per_broker_percentage: raw
                .ranged::<u32>("leader.imbalance.per.broker.percentage", 0, 100)?
                .unwrap_or(defaults.imbalance_per_broker_percentage),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LeaderBalanceConfig, ConfigError> {
        LeaderBalanceConfig::from_raw(&RawConfig::from_text(text, "test").unwrap())
    }

    #[test]
    fn kafka_defaults_overrides_and_ranges() {
        assert_eq!(parse("").unwrap(), LeaderBalanceConfig::default());
        let c = parse(
            "auto.leader.rebalance.enable=false\nleader.imbalance.check.interval.seconds=2\n\
             leader.imbalance.per.broker.percentage=0\n",
        )
        .unwrap();
        assert_eq!(
            (c.enabled, c.check_interval, c.imbalance_per_broker_percentage),
            (false, Duration::from_secs(2), 0)
        );
        for bad in [
            "auto.leader.rebalance.enable=yes",
            "leader.imbalance.check.interval.seconds=0",
            "leader.imbalance.per.broker.percentage=101",
        ] {
            let key = bad.split('=').next().unwrap();
            assert!(parse(bad).unwrap_err().to_string().contains(key), "{bad}");
        }
    }
}
