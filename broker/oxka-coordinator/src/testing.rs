//! Test helpers: a single-voter `CoordinatorNode` on `NoPeers`, the way a broker embeds one.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::network::NoPeers;
use super::node::{CoordinatorNode, RaftSettings};
use super::{Node, NodeId};

/// Short timeouts so a lone voter elects itself in well under a second.
pub fn fast_settings() -> RaftSettings {
    RaftSettings {
        heartbeat_interval_ms: 30,
        election_timeout_ms: 150,
        snapshot_every_entries: 1000,
        write_timeout: Duration::from_secs(2),
        sync: false,
    }
}

/// The membership of a single voter `id` (no peer address: it never connects to anyone).
pub fn only(id: NodeId) -> BTreeMap<NodeId, Node> {
    BTreeMap::from([(id, Node::new(""))])
}

/// Opens (or reopens) the single voter `id` in `dir`, initializes it on first start and waits until it
/// leads.
pub async fn single_voter(id: NodeId, dir: &Path) -> CoordinatorNode {
    let node = CoordinatorNode::open(id, dir, &fast_settings(), NoPeers)
        .await
        .expect("a single voter opens");
    node.initialize_if_first(&only(id))
        .await
        .expect("a single voter initializes");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !node.is_leader() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a single voter elects itself");
    node
}
