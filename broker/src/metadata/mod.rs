//! Cluster metadata as this broker knows it: topics (id, partition count, replication factor, configs),
//! the cluster id, and the producer-id block. In the single-node setup this broker is its own
//! controller, and `MetadataStore` is the embedded coordinator's state.
//!
//! Ownership: one `MetadataStore` per broker, shared by handlers. Writers hold the write lock across
//! the change *and* its persistence, so what a client is told has happened is on disk. The image is
//! persisted as one JSON document, replaced atomically (write temp file, fsync, rename, fsync dir).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod topic_name;

pub use topic_name::validate_topic_name;

/// The directory under the first log dir that holds the embedded coordinator's state. It contains no
/// `-`, so it is never mistaken for a `<topic>-<partition>` directory.
pub const METADATA_DIR: &str = "__oxka_metadata";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMeta {
    pub topic_id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic-level config overrides (Kafka names, e.g. `retention.ms`).
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub topics: BTreeMap<String, TopicMeta>,
    /// Next producer id the controller hands out (persisted in blocks, see `allocate_producer_id`).
    pub next_producer_id_block: i64,
    /// Bumped on every change; clients can't see it, tests and logs can.
    pub epoch: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot create metadata directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read cluster metadata from {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cluster metadata in {path} is corrupt ({reason}); restore it from a backup or move it away to start empty"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot persist cluster metadata to {path}: {source}; check free space and permissions")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How many producer ids a persisted block holds: one fsync per block, not per InitProducerId.
const PRODUCER_ID_BLOCK: i64 = 1000;

pub struct MetadataStore {
    path: PathBuf,
    image: RwLock<MetadataImage>,
    /// Producer ids handed out from the current block: (next, end exclusive).
    producer_ids: parking_lot::Mutex<(i64, i64)>,
}

impl MetadataStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, MetadataError> {
        std::fs::create_dir_all(dir).map_err(|source| MetadataError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("metadata.json");
        let image = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<MetadataImage>(&bytes).map_err(|e| MetadataError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetadataImage {
                cluster_id: new_cluster_id(),
                ..Default::default()
            },
            Err(source) => return Err(MetadataError::Read { path, source }),
        };
        let store = MetadataStore {
            path,
            image: RwLock::new(image),
            producer_ids: parking_lot::Mutex::new((0, 0)),
        };
        store.persist(&store.image.read())?;
        Ok(store)
    }

    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, MetadataImage> {
        self.image.read()
    }

    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.image.read().topics.get(name).cloned()
    }

    pub fn cluster_id(&self) -> String {
        self.image.read().cluster_id.clone()
    }

    /// Applies `change` to a copy of the image and persists it; the change is visible only once on disk.
    pub fn update<T>(&self, change: impl FnOnce(&mut MetadataImage) -> T) -> Result<T, MetadataError> {
        let mut guard = self.image.write();
        let mut next = guard.clone();
        let out = change(&mut next);
        next.epoch += 1;
        self.persist(&next)?;
        *guard = next;
        Ok(out)
    }

    /// Hands out a fresh producer id, persisting a new block when the current one runs out, so that no
    /// id is ever handed out twice across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, MetadataError> {
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            let start = self.update(|image| {
                let start = image.next_producer_id_block;
                image.next_producer_id_block = start + PRODUCER_ID_BLOCK;
                start
            })?;
            *ids = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    fn persist(&self, image: &MetadataImage) -> Result<(), MetadataError> {
        let write_err = |source| MetadataError::Write {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(image).expect("metadata image serializes");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp).map_err(write_err)?;
            file.write_all(&bytes).map_err(write_err)?;
            file.sync_all().map_err(write_err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(write_err)?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// A cluster id like Kafka's: 16 random bytes, URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits >> 122) as usize & 63] as char);
        bits <<= 6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_reopen_and_producer_ids_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        let cluster_id = store.cluster_id();
        assert_eq!(cluster_id.len(), 22);
        store
            .update(|i| {
                i.topics.insert(
                    "t".into(),
                    TopicMeta {
                        topic_id: Uuid::new_v4(),
                        partitions: 3,
                        replication_factor: 1,
                        configs: BTreeMap::new(),
                    },
                )
            })
            .unwrap();
        let first = store.allocate_producer_id().unwrap();
        let second = store.allocate_producer_id().unwrap();
        assert_eq!(second, first + 1);
        drop(store);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.cluster_id(), cluster_id);
        assert_eq!(store.topic("t").unwrap().partitions, 3);
        assert!(store.allocate_producer_id().unwrap() >= first + PRODUCER_ID_BLOCK);
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metadata.json"), b"{not json").unwrap();
        let err = MetadataStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
