//! `MetadataStateMachine`: openraft's `RaftStateMachine` over a `ClusterImage`, with snapshots in `dataDir`.
//!
//! Committed entries enter through `apply` (openraft's core task calls it in log order); readers (the
//! Kafka-protocol handlers) see the image through `SharedState`, which the state machine updates under a
//! write lock after each batch. A snapshot is the JSON of `StateMachineData`; the current one is kept in
//! memory and in `snapshot.json` (written atomically, fsynced), so a restarted coordinator starts from it
//! and replays only the log after it. Installing a snapshot from the leader replaces the image.
//!
//! Followers of the log (a broker's metadata long-poll, `kafka::metadata_fetch`) wait on the applied-index
//! watch (`SharedState::subscribe_applied`) instead of polling the image.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::image::{apply, ClusterImage, MetadataResponse};
use super::image_delta::ChangeLog;
use super::log_store::write_atomically;
use super::metrics::CoordinatorMetrics;
use super::{Entry, Node, NodeId, TypeConfig};

const SNAPSHOT_FILE: &str = "snapshot.json";

/// What a snapshot holds: the image and how far into the log it reflects. Beside it, not in
/// snapshots, the scopes of the commands applied since this member loaded its image, from which
/// brokers get deltas (`image_delta`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateMachineData {
    pub last_applied: Option<LogId<NodeId>>,
    pub last_membership: StoredMembership<NodeId, Node>,
    /// Shared with readers, who take it without copying; `apply` copies it only when a reader
    /// still holds the one it is about to change.
    pub image: Arc<ClusterImage>,
    #[serde(skip)]
    pub changes: ChangeLog,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Node>,
    data: Vec<u8>,
}

/// State shared between the state machine (the only writer) and readers.
pub struct SharedState {
    pub data: RwLock<StateMachineData>,
    snapshot: Mutex<Option<StoredSnapshot>>,
    snapshots_taken: Mutex<u64>,
    /// The index of the last applied log entry (0 = nothing applied yet). Published after the image is
    /// updated, so a reader woken by it always finds an image at least that new.
    applied_index: watch::Sender<u64>,
    /// Every entry this incarnation applied (log id, payload as JSON), for the Raft test harness's
    /// "never lost or contradicted" check.
    #[cfg(test)]
    pub(crate) applied: Mutex<Vec<(LogId<NodeId>, String)>>,
}

impl SharedState {
    /// The current image, shared (no copy is made).
    pub fn image(&self) -> Arc<ClusterImage> {
        self.data.read().image.clone()
    }

    pub fn last_applied_index(&self) -> Option<u64> {
        self.data.read().last_applied.map(|l| l.index)
    }

    /// Watches the index of the last applied log entry (0 = nothing applied). It changes after every
    /// applied batch, after a snapshot from the leader is installed, and is set on open from the snapshot
    /// on disk, so a waiter wakes as soon as the image it reads would be newer.
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }
}

pub struct MetadataStateMachine {
    dir: PathBuf,
    shared: Arc<SharedState>,
    metrics: Arc<CoordinatorMetrics>,
    sync: bool,
}

fn storage_err(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

impl MetadataStateMachine {
    /// Opens the state machine in `dir`, starting from `snapshot.json` when there is one.
    pub fn open(dir: PathBuf, metrics: Arc<CoordinatorMetrics>, sync: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let (mut data, snapshot) = match std::fs::read(dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => {
                let stored: StoredSnapshot = serde_json::from_slice(&bytes).map_err(invalid)?;
                let data: StateMachineData = serde_json::from_slice(&stored.data).map_err(invalid)?;
                (data, Some(stored))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (StateMachineData::default(), None),
            Err(e) => return Err(e),
        };
        let loaded_at = data.last_applied.map(|l| l.index).unwrap_or(0);
        data.changes = ChangeLog::starting_at(loaded_at);
        let (applied_index, _) = watch::channel(loaded_at);
        Ok(MetadataStateMachine {
            dir,
            shared: Arc::new(SharedState {
                data: RwLock::new(data),
                snapshot: Mutex::new(snapshot),
                snapshots_taken: Mutex::new(0),
                applied_index,
                #[cfg(test)]
                applied: Mutex::default(),
            }),
            metrics,
            sync,
        })
    }

    pub fn shared(&self) -> Arc<SharedState> {
        self.shared.clone()
    }

    fn save_snapshot(&self, stored: StoredSnapshot) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&stored).expect("snapshots serialize");
        write_atomically(&self.dir.join(SNAPSHOT_FILE), &bytes, self.sync)?;
        *self.shared.snapshot.lock() = Some(stored);
        Ok(())
    }
}

fn invalid(e: serde_json::Error) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the coordinator snapshot is corrupt ({e}); move it away and let the leader send a new one"),
    )
}

/// Builds a snapshot from the image as it was when the builder was made.
pub struct SnapshotBuilder {
    data: StateMachineData,
    machine: MetadataStateMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let bytes = serde_json::to_vec(&self.data).expect("state serializes");
        let n = {
            let mut taken = self.machine.shared.snapshots_taken.lock();
            *taken += 1;
            *taken
        };
        let snapshot_id = match self.data.last_applied {
            Some(l) => format!("{}-{}-{n}", l.leader_id.term, l.index),
            None => format!("0-0-{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.data.last_applied,
            last_membership: self.data.last_membership.clone(),
            snapshot_id,
        };
        self.machine
            .save_snapshot(StoredSnapshot {
                meta: meta.clone(),
                data: bytes.clone(),
            })
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), storage_err(e)))?;
        self.machine.metrics.snapshot_taken();
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        let data = self.shared.data.read();
        Ok((data.last_applied, data.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetadataResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let started = Instant::now();
        let mut guard = self.shared.data.write();
        let data = &mut *guard;
        let mut out = Vec::new();
        for entry in entries {
            data.last_applied = Some(entry.log_id);
            #[cfg(test)]
            self.shared.applied.lock().push((
                entry.log_id,
                serde_json::to_string(&entry.payload).expect("entries serialize"),
            ));
            let response = match entry.payload {
                EntryPayload::Blank => MetadataResponse::Done,
                EntryPayload::Normal(command) => {
                    data.changes.record(entry.log_id.index, command.scope());
                    apply(Arc::make_mut(&mut data.image), entry.log_id.index, &command)
                }
                EntryPayload::Membership(m) => {
                    data.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    MetadataResponse::Done
                }
            };
            out.push(response);
        }
        let applied = data.last_applied.map(|l| l.index).unwrap_or(0);
        drop(guard);
        self.shared.applied_index.send_replace(applied);
        self.metrics.applied(out.len(), applied, started.elapsed());
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let data = self.shared.data.read();
        SnapshotBuilder {
            data: StateMachineData {
                last_applied: data.last_applied,
                last_membership: data.last_membership.clone(),
                image: data.image.clone(),
                changes: ChangeLog::default(),
            },
            machine: MetadataStateMachine {
                dir: self.dir.clone(),
                shared: self.shared.clone(),
                metrics: self.metrics.clone(),
                sync: self.sync,
            },
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let data: StateMachineData = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), storage_err(e)))?;
        self.save_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        })
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), storage_err(e)))?;
        let installed = StateMachineData {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            image: data.image,
            changes: ChangeLog::starting_at(meta.last_log_id.map(|l| l.index).unwrap_or(0)),
        };
        *self.shared.data.write() = installed;
        self.shared
            .applied_index
            .send_replace(meta.last_log_id.map(|l| l.index).unwrap_or(0));
        tracing::info!(snapshot = %meta.snapshot_id, "installed a snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.shared.snapshot.lock().as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::MetadataCommand;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(MetadataCommand::SetProducerIdFloor { at_least: index as i64 }),
        }
    }

    fn open(dir: &std::path::Path) -> MetadataStateMachine {
        MetadataStateMachine::open(dir.to_path_buf(), Arc::new(CoordinatorMetrics::new()), false).unwrap()
    }

    #[tokio::test]
    async fn the_applied_index_is_published_after_batches_snapshots_and_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let mut applied = sm.shared().subscribe_applied();
        assert_eq!(*applied.borrow_and_update(), 0, "nothing applied");
        sm.apply([entry(1), entry(2), entry(3)]).await.unwrap();
        assert!(applied.has_changed().unwrap());
        assert_eq!(*applied.borrow_and_update(), 3);
        assert_eq!(
            sm.shared().image().next_producer_id,
            3,
            "the image is updated before the index"
        );

        // A snapshot on disk: a reopened state machine starts from its index.
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let snapshot = sm.get_current_snapshot().await.unwrap().unwrap();
        let reopened = open(dir.path());
        assert_eq!(*reopened.shared().subscribe_applied().borrow(), 3);

        // Installing a snapshot from the leader moves the index to the snapshot's.
        let elsewhere = tempfile::tempdir().unwrap();
        let mut follower = open(elsewhere.path());
        let mut applied = follower.shared().subscribe_applied();
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(*applied.borrow_and_update(), 3);
        assert_eq!(follower.shared().image().next_producer_id, 3);
    }
}
