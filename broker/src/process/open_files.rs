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
}
