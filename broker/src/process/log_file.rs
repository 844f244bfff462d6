//! A log file that rotates by size, like log4j's RollingFileAppender: when writing would take
//! `server.log` past `max_bytes`, it becomes `server.log.1` (`.1` becomes `.2`, ... the oldest of
//! `backups` is dropped) and a new `server.log` is started. Lines are never split across files.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Rotation defaults: 100 MiB per file, 10 old files kept.
pub const MAX_BYTES: u64 = 100 << 20;
pub const BACKUPS: u32 = 10;

pub struct RotatingFile {
    inner: Mutex<Inner>,
}

struct Inner {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    backups: u32,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, backups: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            inner: Mutex::new(Inner {
                path: path.to_path_buf(),
                file,
                size,
                max_bytes: max_bytes.max(1),
                backups,
            }),
        })
    }
}

impl Inner {
    fn backup(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(self.backup(self.backups));
        for n in (1..self.backups).rev() {
            let from = self.backup(n);
            if from.exists() {
                std::fs::rename(&from, self.backup(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.backup(1))?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for &RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.size > 0 && inner.size + buf.len() as u64 > inner.max_bytes {
            // A failed rotation keeps writing to the current file rather than losing the line.
            let _ = inner.rotate();
        }
        inner.file.write_all(buf)?;
        inner.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).file.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingFile {
    type Writer = &'a RotatingFile;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_whole_lines_and_the_newest_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        let log = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            (&log)
                .write_all(format!("line {i:02} {}\n", "x".repeat(30)).as_bytes())
                .unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let current = read(&path);
        assert!(current.len() <= 100 && current.ends_with('\n'), "{current:?}");
        assert!(current.contains("line 09"));
        let one = read(&dir.path().join("server.log.1"));
        let two = read(&dir.path().join("server.log.2"));
        assert!(one.contains("line 07") && two.contains("line 05"), "{one:?} {two:?}");
        assert!(!dir.path().join("server.log.3").exists(), "only two backups are kept");
        // Every line is whole in exactly one file.
        let all = format!("{two}{one}{current}");
        assert_eq!(all.lines().filter(|l| l.starts_with("line")).count(), 6);
    }
}
