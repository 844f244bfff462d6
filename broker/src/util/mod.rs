//! Small helpers shared by several modules.

mod rate_limited_log;

pub use rate_limited_log::RateLimitedLog;
