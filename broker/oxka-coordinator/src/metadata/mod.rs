//! Topic metadata in the shape the broker's handlers use (`MetadataImage`: name → id, partition count,
//! replication factor, configs), derived from the coordinator's `ClusterImage` by
//! `cluster::MetadataView`; topic name rules; and the reader of the pre-Raft single-node metadata file,
//! which the embedded coordinator migrates on first start.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod topic_name;

pub use topic_name::validate_topic_name;

/// The directory under the first log dir that holds the embedded coordinator's state (`raft/`). It contains no
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

/// Reads the metadata file of brokers from before the embedded coordinator
/// (`__oxka_metadata/metadata.json`), if there is one, for migration into the Raft log.
pub fn read_legacy_image(path: &Path) -> anyhow::Result<Option<MetadataImage>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "cluster metadata in {} is corrupt ({e}); restore it from a backup or move it away to start empty",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!(
            "cannot read cluster metadata from {}: {e}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_files_are_read_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.json");
        assert!(read_legacy_image(&path).unwrap().is_none());
        let image = MetadataImage {
            cluster_id: "c".into(),
            ..Default::default()
        };
        std::fs::write(&path, serde_json::to_vec(&image).unwrap()).unwrap();
        assert_eq!(read_legacy_image(&path).unwrap().unwrap(), image);
        std::fs::write(&path, b"{not json").unwrap();
        let err = read_legacy_image(&path).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
