//! The open-file limit. A broker holds files for every segment of every partition it hosts, so the
//! soft `RLIMIT_NOFILE` a shell usually starts it with (1024) is reached long before the hard limit
//! the system allows. At start-up the soft limit is raised to the hard one, with a log line saying so;
//! if that is refused the broker goes on with the limit it has and says how to raise it.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tracing::{info, warn};

/// Raises the soft open-file limit to the hard limit; returns (before, after) when it changed.
pub fn raise_to_hard_limit() -> nix::Result<Option<(u64, u64)>> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(None);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(Some((soft, hard)))
}

/// `raise_to_hard_limit`, logged: what changed, or why not and what to do.
pub fn raise_and_log() {
    match raise_to_hard_limit() {
        Ok(Some((before, after))) => info!(before, after, "raised the open file limit (RLIMIT_NOFILE) to the hard limit"),
        Ok(None) => {}
        Err(e) => warn!(
            "cannot raise the open file limit (RLIMIT_NOFILE) to the hard limit: {e}; raise it where the broker is started (ulimit -n, systemd LimitNOFILE=, a container's nofile ulimit)"
        ),
    }
}

/// File descriptors left for everything but segment files when the budget is derived from the limit
/// or checked against it: connections, checkpoints, sockets to peers, the binary's own.
const RESERVED_FOR_THE_REST: u64 = 64;

/// The segment-file budget (`log.open.files.max`): the configured value, checked to leave room under
/// the open-file limit, or half the limit when unset.
pub fn segment_file_budget(configured: Option<usize>) -> anyhow::Result<usize> {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    budget_under(configured, soft)
}

fn budget_under(configured: Option<usize>, limit: u64) -> anyhow::Result<usize> {
    let room = limit.saturating_sub(RESERVED_FOR_THE_REST);
    match configured {
        Some(n) if n as u64 > room => anyhow::bail!(
            "log.open.files.max={n} does not fit under the open-file limit (RLIMIT_NOFILE) of {limit}, which must also \
             hold connections and other files ({RESERVED_FOR_THE_REST} kept for them): lower log.open.files.max to at \
             most {room}, or raise the limit (ulimit -n, systemd LimitNOFILE=, a container's nofile ulimit)"
        ),
        Some(n) => Ok(n),
        None => Ok(usize::try_from(limit / 2).unwrap_or(usize::MAX).max(16)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_soft_limit_is_raised_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let low = hard.min(256);
        setrlimit(Resource::RLIMIT_NOFILE, low, hard).unwrap();
        let changed = raise_to_hard_limit().unwrap();
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
        if low < hard {
            assert_eq!(changed, Some((low, hard)));
        }
        assert_eq!(raise_to_hard_limit().unwrap(), None, "already at the hard limit");
    }

    #[test]
    fn the_segment_budget_is_half_the_limit_unless_configured_and_must_fit_under_it() {
        assert_eq!(budget_under(None, 4096).unwrap(), 2048);
        assert_eq!(budget_under(None, 20).unwrap(), 16);
        assert_eq!(budget_under(Some(4000), 4096).unwrap(), 4000);
        let e = budget_under(Some(5000), 4096).unwrap_err().to_string();
        assert!(
            e.contains("log.open.files.max=5000") && e.contains("4096") && e.contains("ulimit -n"),
            "{e}"
        );
    }
}
