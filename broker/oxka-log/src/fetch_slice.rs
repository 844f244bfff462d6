//! `FetchSlice`: a read planned under a partition's lock, done after it (`read`, or a zero-copy send
//! of `file()`'s region).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::open_files::{FileId, OpenFiles};

/// A planned read: whole batches at `[position, position + len)` of a segment file. Cheap to make
/// under the partition lock; `read()` does the `pread` afterwards. It names the file rather than
/// holding it open, so a fetch planned over 20,000 partitions does not hold 20,000 files: `file()`
/// takes the handle from `OpenFiles` (reopening it by path, checked by inode) when the bytes are read
/// or sent. A segment deleted or replaced by the cleaner in between reads as empty, which the client
/// fetches again (and then finds the offset moved on, as if it had fetched a moment later).
#[derive(Debug, Clone, Default)]
pub struct FetchSlice {
    source: Option<SliceSource>,
    /// Base offset of the segment read (to find where the read ends, `Log::fetch_upper_bound`).
    segment_base: i64,
    position: u64,
    len: usize,
}

impl FetchSlice {
    pub(crate) fn of_segment(source: SliceSource, segment_base: i64, position: u64, len: usize) -> FetchSlice {
        FetchSlice {
            source: Some(source),
            segment_base,
            position,
            len,
        }
    }

    pub fn empty() -> FetchSlice {
        FetchSlice::default()
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn position(&self) -> u64 {
        self.position
    }
    pub(crate) fn segment_base(&self) -> i64 {
        self.segment_base
    }

    /// The segment file to read, or None when there is nothing to read or the segment is gone.
    pub fn file(&self) -> io::Result<Option<Arc<File>>> {
        match &self.source {
            Some(source) => source.open(),
            None => Ok(None),
        }
    }

    /// Reads the planned bytes with one `pread` (more only on short reads). If the file was
    /// truncated meanwhile (recovery, replica truncation), returns the bytes still there; Kafka
    /// clients accept a trailing partial batch.
    pub fn read(&self) -> io::Result<Bytes> {
        let Some(file) = self.file()? else {
            return Ok(Bytes::new());
        };
        let mut buf = BytesMut::zeroed(self.len);
        let mut done = 0;
        while done < self.len {
            match file.read_at(&mut buf[done..], self.position + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(done);
        Ok(buf.freeze())
    }
}

/// Which file a `FetchSlice` reads: its segment's handle id, path and inode.
#[derive(Debug, Clone)]
pub(crate) struct SliceSource {
    pub file_id: FileId,
    pub path: PathBuf,
    pub inode: u64,
}

impl SliceSource {
    /// The segment's file; None when the segment was deleted, or its name now belongs to another
    /// file (the cleaner's replacement).
    fn open(&self) -> io::Result<Option<Arc<File>>> {
        let open_files = OpenFiles::global();
        match open_files.get(self.file_id, &self.path) {
            Ok(file) if std::os::unix::fs::MetadataExt::ino(&file.metadata()?) == self.inode => Ok(Some(file)),
            Ok(_) => {
                open_files.forget(self.file_id);
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
