//! `RateLimitedFormat`: the log line format, with the events of libraries that log a failure on every
//! attempt (openraft logs each failed heartbeat and append to a stopped peer, several a second)
//! written at most once per interval per place in their code, with the number of occurrences since the
//! last line. oxka's own code rate-limits where it logs (`RateLimitedLog`); this does the same for
//! code it does not own.

use std::time::Duration;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use oxka_protocol::util::RateLimitedLog;

/// The log targets whose events are rate-limited.
const LIMITED_TARGETS: &[&str] = &["openraft"];
/// How often one kind of such event is written.
const INTERVAL: Duration = Duration::from_secs(30);

pub struct RateLimitedFormat<F> {
    inner: F,
    limit: RateLimitedLog,
}

impl<F> RateLimitedFormat<F> {
    pub fn new(inner: F) -> Self {
        Self::with_interval(inner, INTERVAL)
    }

    pub fn with_interval(inner: F, interval: Duration) -> Self {
        RateLimitedFormat {
            inner,
            limit: RateLimitedLog::new(interval),
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for RateLimitedFormat<F>
where
    F: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        if !LIMITED_TARGETS.iter().any(|t| meta.target().starts_with(t)) {
            return self.inner.format_event(ctx, writer, event);
        }
        // One kind per place in the library's code (and level): the same failure towards another
        // peer, say, counts as the same kind.
        let kind = format!(
            "{}:{}:{}",
            meta.file().unwrap_or(meta.target()),
            meta.line().unwrap_or(0),
            meta.level()
        );
        let Some(count) = self.limit.should_log(&kind) else {
            return Ok(()); // nothing written: the line is counted for the next one
        };
        if count <= 1 {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        writeln!(writer, "{}{}", line.trim_end_matches('\n'), self.limit.repeats(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn peer_down() {
        tracing::warn!(target: "openraft::replication", "heartbeat error: connection refused");
    }

    #[test]
    fn a_library_failure_repeated_on_every_attempt_is_written_once_per_interval_with_a_count() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(RateLimitedFormat::with_interval(
                tracing_subscriber::fmt::format().with_ansi(false),
                Duration::from_millis(300),
            ))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                peer_down();
                tracing::warn!("oxka's own line");
            }
            std::thread::sleep(Duration::from_millis(350));
            peer_down();
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("heartbeat error")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(!lines[0].contains("times since"), "{text}");
        assert!(
            lines[1].ends_with("(5 times since the last such line; logged at most every 0.3 s)"),
            "{text}"
        );
        assert_eq!(
            text.matches("oxka's own line").count(),
            5,
            "other targets are not limited: {text}"
        );
    }
}
