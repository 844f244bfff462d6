//! Small helpers shared by several modules.

mod backoff;
mod rate_limited_log;

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
