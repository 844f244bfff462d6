//! The simulated network: messages between the controller (node 0) and the brokers (1..=3), each
//! delivered after a random delay (so they reorder), dropped at random, and never across a cut link.
//! A cut is checked when a message is sent and again when it would arrive. Heartbeats, registrations
//! and metadata are not messages here: the model asks `connected` and rolls its own loss for them.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

use super::model::Record;
use super::Rng;
use crate::replication::partition_state::IsrProposal;

pub(super) const CONTROLLER: i32 = 0;
pub(super) const NODES: i32 = 4;

#[derive(Debug, Clone)]
pub(super) enum Message {
    /// A follower's Fetch for the partition (Fetch v15 with KIP-903 replica state).
    Fetch {
        broker_epoch: i64,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
    },
    FetchAnswer {
        /// The leader epoch the follower fetched at (its fetcher's target).
        leader_epoch: i32,
        fetch_offset: i64,
        result: FetchResult,
    },
    AlterPartition {
        broker_epoch: i64,
        seq: u64,
        proposal: IsrProposal,
        member_epochs: Vec<i64>,
    },
    AlterAnswer {
        seq: u64,
        result: Result<(Vec<i32>, i32), ResponseError>,
    },
}

#[derive(Debug, Clone)]
#[allow(dead_code)] // The error is for the trace's `Debug`; the follower only backs off.
pub(super) enum FetchResult {
    Error(ResponseError),
    Diverging(i32, i64),
    Records { records: Vec<Record>, high_watermark: i64 },
}

#[derive(Debug)]
pub(super) struct Envelope {
    pub from: i32,
    pub to: i32,
    pub deliver_at: u64,
    seq: u64,
    pub message: Message,
}

#[derive(Debug, Default)]
pub(super) struct Network {
    in_flight: Vec<Envelope>,
    /// Cut links, as (smaller, larger) node pairs.
    cut: BTreeSet<(i32, i32)>,
    pub drop_per_mille: u64,
    pub max_delay_steps: u64,
    next_seq: u64,
}

fn link(a: i32, b: i32) -> (i32, i32) {
    (a.min(b), a.max(b))
}

impl Network {
    pub fn new(drop_per_mille: u64, max_delay_steps: u64) -> Self {
        Network {
            drop_per_mille,
            max_delay_steps,
            ..Network::default()
        }
    }

    pub fn connected(&self, a: i32, b: i32) -> bool {
        a == b || !self.cut.contains(&link(a, b))
    }

    pub fn send(&mut self, rng: &mut Rng, now_step: u64, from: i32, to: i32, message: Message) {
        if !self.connected(from, to) || rng.chance(self.drop_per_mille) {
            return;
        }
        let delay = 1 + rng.below(self.max_delay_steps.max(1));
        self.next_seq += 1;
        self.in_flight.push(Envelope {
            from,
            to,
            deliver_at: now_step + delay,
            seq: self.next_seq,
            message,
        });
    }

    /// The messages due at `now_step` that a cut has not stopped, in arrival order.
    pub fn due(&mut self, now_step: u64) -> Vec<Envelope> {
        let (mut due, rest): (Vec<Envelope>, Vec<Envelope>) =
            self.in_flight.drain(..).partition(|e| e.deliver_at <= now_step);
        self.in_flight = rest;
        due.retain(|e| self.connected(e.from, e.to));
        due.sort_by_key(|e| (e.deliver_at, e.seq));
        due
    }

    /// Cuts the nodes into two random groups (one of them possibly a single node).
    pub fn partition(&mut self, rng: &mut Rng) -> String {
        self.cut.clear();
        let mut side = [false; NODES as usize];
        loop {
            for s in side.iter_mut() {
                *s = rng.chance(500);
            }
            if side.iter().any(|s| *s) && side.iter().any(|s| !*s) {
                break;
            }
        }
        for a in 0..NODES {
            for b in a + 1..NODES {
                if side[a as usize] != side[b as usize] {
                    self.cut.insert((a, b));
                }
            }
        }
        format!("partition {:?}", self.cut)
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }
}
