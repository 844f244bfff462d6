//! Small helpers shared by several modules.

mod accept_failures;
mod backoff;
mod rate_limited_log;

pub use accept_failures::AcceptFailures;
pub use backoff::ExponentialBackoff;
pub use rate_limited_log::RateLimitedLog;

/// `host:port`, with an IPv6 host in brackets (defined with the configuration, which needs it too).
pub use oxka_config::join_host_port;

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A Kafka protocol string holding a copy of `s`.
pub fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

/// A Kafka error code as a log line names it: `NAME (description)`.
pub fn describe_error(code: i16) -> String {
    match kafka_protocol::error::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({e})"),
        None => format!("error code {code}"),
    }
}
