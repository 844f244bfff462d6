//! Disk facts the broker reports (DescribeLogDirs) and checks (free space).

use std::path::Path;

/// Total and usable bytes of the filesystem holding `path`, or `None` if it can't be read.
pub fn disk_space(path: &Path) -> Option<(i64, i64)> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    let fragment = stat.fragment_size() as i64;
    Some((
        stat.blocks() as i64 * fragment,
        stat.blocks_available() as i64 * fragment,
    ))
}
