//! `Session`: this broker's registration with the controller (incarnation, broker epoch, fenced or
//! not, shutting down). Held by `Broker` (`broker.session`); only `runtime::lifecycle` changes it
//! (registration, heartbeats, controlled shutdown), everyone else reads it. Plain state, below both.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use uuid::Uuid;

/// This broker's registration: its incarnation (one per process start) and current broker epoch.
pub struct Session {
    pub incarnation_id: Uuid,
    /// -1 until registered.
    pub(crate) epoch: AtomicI64,
    pub(crate) fenced: AtomicBool,
    /// Set when the controlled shutdown starts: every later heartbeat asks to be shut down too, so a
    /// regular one racing with it cannot unfence the broker again.
    pub(crate) shutting_down: AtomicBool,
    /// The cluster id from `meta.properties`, if the log dirs have one (sent at registration).
    pub known_cluster_id: Option<String>,
}

impl Session {
    pub fn new(known_cluster_id: Option<String>) -> Self {
        Session {
            incarnation_id: Uuid::new_v4(),
            epoch: AtomicI64::new(-1),
            fenced: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
            known_cluster_id,
        }
    }

    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }
}
