//! `OpenFiles`: the budget of segment `.log` files a broker keeps open at once.
//!
//! Apache Kafka keeps a file handle per segment for as long as the segment exists, so a broker's
//! partition count is bounded by its open-file limit. Here a segment names its file by a `FileId`
//! and asks for a handle when it reads or writes; the handles live in one least-recently-used map
//! whose size is the budget (`log.open.files.max`). Past the budget the handle used longest ago is
//! closed, and reopened by path the next time its segment needs it. A handle that a reader still
//! holds (a planned fetch, a recovery scan) stays open until that reader drops it, so eviction never
//! breaks a read in progress; the budget bounds the idle handles, not the ones in use.
//! The index files (`.index`, `.timeindex`, `.txnindex`) hold no handle at all: their entries live
//! in memory and are written through a file opened for the write (`index.rs`, `txn_index.rs`).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// Names one segment file for the lifetime of its `LogSegment` (renames keep the id).
pub type FileId = u64;

/// The budget when nothing sets one (`set_budget` at broker start-up does).
const DEFAULT_BUDGET: usize = 1024;

/// What `OpenFiles` has done, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFilesStats {
    /// Handles open in the map now.
    pub open: usize,
    /// Files opened because their handle was not in the map.
    pub opened: u64,
    /// Handles closed to stay within the budget.
    pub evicted: u64,
}

#[derive(Debug, Default)]
struct Lru {
    handles: HashMap<FileId, (Arc<File>, u64)>,
    /// Use tick -> id: the first entry is the handle used longest ago.
    by_use: BTreeMap<u64, FileId>,
    tick: u64,
}

impl Lru {
    fn touch(&mut self, id: FileId) -> Option<Arc<File>> {
        self.tick += 1;
        let tick = self.tick;
        let (file, used) = self.handles.get_mut(&id)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, id);
        Some(Arc::clone(file))
    }

    fn insert(&mut self, id: FileId, file: Arc<File>) {
        self.tick += 1;
        if let Some((_, used)) = self.handles.insert(id, (file, self.tick)) {
            self.by_use.remove(&used);
        }
        self.by_use.insert(self.tick, id);
    }

    fn remove(&mut self, id: FileId) {
        if let Some((_, used)) = self.handles.remove(&id) {
            self.by_use.remove(&used);
        }
    }

    /// Closes the least recently used handles until at most `budget` remain; returns how many.
    fn shrink_to(&mut self, budget: usize) -> u64 {
        let mut evicted = 0;
        while self.handles.len() > budget {
            let Some((_, id)) = self.by_use.pop_first() else { break };
            self.handles.remove(&id);
            evicted += 1;
        }
        evicted
    }
}

#[derive(Debug)]
pub struct OpenFiles {
    lru: Mutex<Lru>,
    budget: AtomicUsize,
    next_id: AtomicU64,
    opened: AtomicU64,
    evicted: AtomicU64,
}

impl OpenFiles {
    pub fn new(budget: usize) -> OpenFiles {
        OpenFiles {
            lru: Mutex::new(Lru::default()),
            budget: AtomicUsize::new(budget.max(1)),
            next_id: AtomicU64::new(1),
            opened: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// The broker's one map, shared by every partition's segments.
    pub fn global() -> &'static OpenFiles {
        static GLOBAL: OnceLock<OpenFiles> = OnceLock::new();
        GLOBAL.get_or_init(|| OpenFiles::new(DEFAULT_BUDGET))
    }

    pub fn budget(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }

    /// Sets the budget, closing idle handles past it now.
    pub fn set_budget(&self, budget: usize) {
        let budget = budget.max(1);
        self.budget.store(budget, Ordering::Relaxed);
        let evicted = self.lru.lock().shrink_to(budget);
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
    }

    pub fn new_id(&self) -> FileId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes `file` (just created or opened by its segment) into the map.
    pub fn adopt(&self, id: FileId, file: File) -> Arc<File> {
        let file = Arc::new(file);
        self.insert(id, Arc::clone(&file));
        file
    }

    /// The handle of file `id`, opened for reading and writing at `path` when the map does not hold
    /// it (it was evicted, or never opened). A file that is gone is an error: the segment owning
    /// `id` is the only one that creates or removes it.
    pub fn get(&self, id: FileId, path: &Path) -> io::Result<Arc<File>> {
        if let Some(file) = self.lru.lock().touch(id) {
            return Ok(file);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| opening_error(e, path, self.budget()))?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let file = Arc::new(file);
        let mut lru = self.lru.lock();
        // Another reader may have opened it meanwhile: keep one handle.
        if let Some(existing) = lru.touch(id) {
            return Ok(existing);
        }
        lru.insert(id, Arc::clone(&file));
        let evicted = lru.shrink_to(self.budget());
        drop(lru);
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        Ok(file)
    }

    /// Closes the map's handle of `id` (its segment was deleted or dropped). Readers keep theirs.
    pub fn forget(&self, id: FileId) {
        self.lru.lock().remove(id);
    }

    pub fn stats(&self) -> OpenFilesStats {
        OpenFilesStats {
            open: self.lru.lock().handles.len(),
            opened: self.opened.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn insert(&self, id: FileId, file: Arc<File>) {
        let mut lru = self.lru.lock();
        lru.insert(id, file);
        let evicted = lru.shrink_to(self.budget());
        drop(lru);
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
    }
}

/// An open that failed on the process's open-file limit says which limit and what to change.
pub(crate) fn opening_error(e: io::Error, path: &Path, budget: usize) -> io::Error {
    if e.raw_os_error() == Some(24) || e.raw_os_error() == Some(23) {
        return io::Error::new(
            e.kind(),
            format!(
                "cannot open {}: {e}: the process is at its open-file limit (RLIMIT_NOFILE) with {budget} segment files \
                 budgeted (log.open.files.max); lower log.open.files.max or max.connections, or raise the limit \
                 (ulimit -n, systemd LimitNOFILE=, a container's nofile ulimit)",
                path.display()
            ),
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
        (0..n)
            .map(|i| {
                let p = dir.join(format!("{i}.log"));
                std::fs::write(&p, format!("file {i}")).unwrap();
                p
            })
            .collect()
    }

    fn read_all(file: &File) -> String {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; 16];
        let n = file.read_at(&mut buf, 0).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn the_map_never_holds_more_than_the_budget_and_reopens_what_it_closed() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 10);
        let open = OpenFiles::new(3);
        let ids: Vec<FileId> = paths.iter().map(|_| open.new_id()).collect();
        for _ in 0..3 {
            for (id, path) in ids.iter().zip(&paths) {
                let f = open.get(*id, path).unwrap();
                assert_eq!(
                    read_all(&f),
                    format!("file {}", path.file_stem().unwrap().to_string_lossy())
                );
                assert!(open.stats().open <= 3);
            }
        }
        let stats = open.stats();
        assert_eq!(stats.open, 3);
        assert_eq!(
            stats.opened, 30,
            "cycling 10 files through 3 slots reopens every one each round"
        );
        assert_eq!(stats.evicted, 27);
    }

    #[test]
    fn the_least_recently_used_handle_is_the_one_closed() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 3);
        let open = OpenFiles::new(2);
        let ids: Vec<FileId> = paths.iter().map(|_| open.new_id()).collect();
        open.get(ids[0], &paths[0]).unwrap();
        open.get(ids[1], &paths[1]).unwrap();
        open.get(ids[0], &paths[0]).unwrap(); // 0 is now newer than 1
        open.get(ids[2], &paths[2]).unwrap(); // evicts 1
        let before = open.stats().opened;
        open.get(ids[0], &paths[0]).unwrap();
        assert_eq!(open.stats().opened, before, "0 stayed open");
        open.get(ids[1], &paths[1]).unwrap();
        assert_eq!(open.stats().opened, before + 1, "1 was closed and is reopened");
    }

    #[test]
    fn a_reader_keeps_its_handle_through_eviction_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 2);
        let open = OpenFiles::new(1);
        let (a, b) = (open.new_id(), open.new_id());
        let held = open.get(a, &paths[0]).unwrap();
        open.get(b, &paths[1]).unwrap(); // evicts a's map entry
        std::fs::remove_file(&paths[0]).unwrap();
        assert_eq!(read_all(&held), "file 0");
        open.forget(b);
        assert_eq!(open.stats().open, 0);
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_new_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let open = OpenFiles::new(4);
        let path = dir.path().join("gone.log");
        let e = open.get(open.new_id(), &path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!path.exists());
    }

    #[test]
    fn lowering_the_budget_closes_idle_handles_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 5);
        let open = OpenFiles::new(10);
        for p in &paths {
            open.get(open.new_id(), p).unwrap();
        }
        assert_eq!(open.stats().open, 5);
        open.set_budget(2);
        assert_eq!(open.stats().open, 2);
    }

    #[test]
    fn the_open_file_limit_error_names_the_limit_and_the_fix() {
        let e = opening_error(io::Error::from_raw_os_error(24), Path::new("/d/t-0/0.log"), 512);
        let text = e.to_string();
        assert!(
            text.contains("/d/t-0/0.log") && text.contains("RLIMIT_NOFILE"),
            "{text}"
        );
        assert!(
            text.contains("log.open.files.max") && text.contains("ulimit -n"),
            "{text}"
        );
    }
}
