//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`: which replicas of
//! a topic replication throttles apply to. Kafka's format: empty (none), `*` (every replica), or a
//! comma-separated list of `partition:broker` pairs (`0:101,0:102,1:101`), as `kafka-reassign-partitions
//! --throttle` writes it. Parsed and validated here, so a topic config with a bad list is refused with
//! INVALID_CONFIG, and the replication layer only asks `covers`.

/// A parsed throttled-replicas list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ThrottledReplicas {
    #[default]
    None,
    All,
    Listed(Vec<(i32, i32)>),
}

impl ThrottledReplicas {
    /// Parses Kafka's format; the error says what is wrong and what is expected.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(ThrottledReplicas::None);
        }
        if value == "*" {
            return Ok(ThrottledReplicas::All);
        }
        let mut pairs = Vec::new();
        for item in value.split(',').map(str::trim) {
            let parsed = item.split_once(':').and_then(|(p, b)| {
                let partition = p.trim().parse::<i32>().ok().filter(|p| *p >= 0)?;
                let broker = b.trim().parse::<i32>().ok().filter(|b| *b >= 0)?;
                Some((partition, broker))
            });
            match parsed {
                Some(pair) => pairs.push(pair),
                None => {
                    return Err(format!(
                        "`{item}` is not a replica: expected `*` or a comma-separated list of \
                         [partitionId]:[brokerId] pairs, e.g. 0:101,0:102"
                    ))
                }
            }
        }
        Ok(ThrottledReplicas::Listed(pairs))
    }

    /// Whether the replica of `partition` on `broker` is throttled.
    pub fn covers(&self, partition: i32, broker: i32) -> bool {
        match self {
            ThrottledReplicas::None => false,
            ThrottledReplicas::All => true,
            ThrottledReplicas::Listed(pairs) => pairs.contains(&(partition, broker)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_formats_parse() {
        assert_eq!(ThrottledReplicas::parse("").unwrap(), ThrottledReplicas::None);
        assert_eq!(ThrottledReplicas::parse(" * ").unwrap(), ThrottledReplicas::All);
        let listed = ThrottledReplicas::parse("0:101, 0:102,1:101").unwrap();
        assert!(listed.covers(0, 101) && listed.covers(0, 102) && listed.covers(1, 101));
        assert!(!listed.covers(1, 102) && !listed.covers(2, 101));
        assert!(ThrottledReplicas::All.covers(7, 3));
        assert!(!ThrottledReplicas::None.covers(0, 1));
    }

    #[test]
    fn malformed_lists_are_refused_with_the_expected_format() {
        for bad in ["0", "a:1", "0:b", "0:1,", "-1:2", "0:1;1:2", "*,0:1"] {
            let err = ThrottledReplicas::parse(bad).unwrap_err();
            assert!(err.contains("[partitionId]:[brokerId]"), "{bad}: {err}");
        }
    }
}
