//! Disk faults for tests: a small tmpfs mounted over a directory (filled to ENOSPC with a ballast file
//! and freed again). Mounting needs root (CI runs as root); tests check [`is_root`] and skip otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted over a directory, with the directory's former contents copied in; lazily unmounted
/// on drop (the harness then removes the directory's own, older contents).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub fn mount_over(dir: &Path, size_mib: u32) -> Tmpfs {
        let saved = dir.with_extension("saved");
        std::fs::rename(dir, &saved).expect("move the data dir aside");
        std::fs::create_dir(dir).expect("recreate the data dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs on {} failed", dir.display());
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", saved.display()))
            .arg(dir)
            .status()
            .expect("run cp");
        assert!(status.success(), "copy the data dir into the tmpfs");
        Tmpfs { dir: dir.to_path_buf() }
    }

    pub fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }

    /// Writes a file until the filesystem is full (ENOSPC).
    pub fn fill(&self) {
        let out = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M"])
            .arg(format!("of={}", self.ballast().display()))
            .output()
            .expect("run dd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("No space left"), "dd did not fill the tmpfs: {stderr}");
    }

    pub fn free(&self) {
        std::fs::remove_file(self.ballast()).expect("remove the ballast");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
