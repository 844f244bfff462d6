//! Dynamic broker configs: the broker settings that `kafka-configs --alter --entity-type brokers` (and
//! `kafka-reassign-partitions --throttle`) change at run time, without a restart. They are kept in the
//! cluster metadata per broker (`--entity-name 1`) or for all brokers (`--entity-default`), and a
//! broker's own value wins over the default, which wins over `server.properties`. Only the replication
//! throttles are dynamic in oxka so far; any other name is refused with the reason and the fix.

/// Name, Kafka's default, and a description of valid values.
pub const DYNAMIC_BROKER_CONFIGS: &[(&str, &str)] = &[
    ("leader.replication.throttled.rate", "9223372036854775807"),
    ("follower.replication.throttled.rate", "9223372036854775807"),
];

/// Why a dynamic broker config change is refused: Kafka's error (INVALID_REQUEST for a name that
/// cannot change at run time, INVALID_CONFIG for a bad value) and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynamicConfigError {
    NotDynamic(String),
    InvalidValue(String),
}

impl DynamicConfigError {
    /// Kafka's error code: INVALID_REQUEST (42) for a name that cannot change, INVALID_CONFIG (40) for a
    /// bad value; and the message.
    pub fn into_code_and_message(self) -> (i16, String) {
        match self {
            DynamicConfigError::NotDynamic(m) => (42, m),
            DynamicConfigError::InvalidValue(m) => (40, m),
        }
    }
}

/// Checks one SET of a dynamic broker config for `entity` ("" for the cluster-wide default).
pub fn validate(entity: &str, name: &str, value: &str) -> Result<(), DynamicConfigError> {
    if !DYNAMIC_BROKER_CONFIGS.iter().any(|(n, _)| *n == name) {
        let dynamic: Vec<&str> = DYNAMIC_BROKER_CONFIGS.iter().map(|(n, _)| *n).collect();
        return Err(DynamicConfigError::NotDynamic(format!(
            "Invalid config value for resource ConfigResource(type=BROKER, name='{entity}'): Cannot update \
             these configs dynamically: Set({name}). oxka changes only {} at run time; set {name} in \
             server.properties and restart the broker",
            dynamic.join(", ")
        )));
    }
    match value.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Ok(()),
        _ => Err(DynamicConfigError::InvalidValue(format!(
            "Invalid value {value} for configuration {name}: expected a number of bytes per second, at least 0"
        ))),
    }
}

/// Checks the resource name of a broker config change: a broker id, or "" for the default.
pub fn validate_entity(entity: &str) -> Result<(), String> {
    if entity.is_empty() || entity.parse::<i32>().is_ok_and(|id| id >= 0) {
        Ok(())
    } else {
        Err(format!(
            "'{entity}' is not a broker id; name a broker (--entity-name 1) or all brokers (--entity-default)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_throttles_change_at_run_time_and_only_to_byte_rates() {
        assert_eq!(validate("1", "leader.replication.throttled.rate", "1048576"), Ok(()));
        assert_eq!(validate("", "follower.replication.throttled.rate", "0"), Ok(()));
        assert!(matches!(
            validate("1", "follower.replication.throttled.rate", "-5"),
            Err(DynamicConfigError::InvalidValue(m)) if m.contains("at least 0")
        ));
        assert!(matches!(
            validate("1", "log.retention.hours", "5"),
            Err(DynamicConfigError::NotDynamic(m)) if m.contains("Cannot update these configs dynamically: Set(log.retention.hours)")
                && m.contains("server.properties")
        ));
        assert_eq!(
            validate("1", "log.retention.hours", "5")
                .unwrap_err()
                .into_code_and_message()
                .0,
            42,
            "INVALID_REQUEST"
        );
        assert_eq!(
            validate("1", "leader.replication.throttled.rate", "x")
                .unwrap_err()
                .into_code_and_message()
                .0,
            40,
            "INVALID_CONFIG"
        );
        assert!(validate_entity("").is_ok() && validate_entity("3").is_ok());
        assert!(validate_entity("x").unwrap_err().contains("--entity-default"));
        assert!(validate_entity("-1").is_err());
    }
}
