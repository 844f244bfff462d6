//! `Lane`: which of a broker's connections to the controller a call uses. Remote lanes are separate
//! connections (`remote`), so a heartbeat never waits behind a topic creation that is waiting for a
//! quorum, and the metadata long-poll never blocks either. Plain data, below `channel` and `remote`.

/// Which connection a remote call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Registration and heartbeats.
    Lifecycle = 0,
    /// Topic administration and producer-id blocks.
    Admin = 1,
    /// The metadata long-poll.
    Metadata = 2,
    /// AlterPartition from partition leaders (ISR changes never wait behind topic administration).
    Isr = 3,
}
