//! The simulated cluster: a controller holding the real `ClusterImage`, three brokers each with an
//! in-memory log (records with offset = index, leader epoch and a unique id), the real
//! `LeaderEpochCache`, the real `Role` (a leader holds a real `LeaderState`) and a high watermark, and
//! clients producing. `Sim::step` advances one tick of `STEP_MS`: faults, message deliveries, every
//! broker's periodic work, the controller's liveness duty, clients. Each piece below names the runtime
//! code it models; the pure calls are the same, in the same order.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use kafka_protocol::error::ResponseError;

mod controller;
mod leader;
mod replica;

use super::network::{Envelope, FetchResult, Message, Network, CONTROLLER};
use super::Rng;
use crate::coordinator::image::{apply, partition_leadership_changes, ClusterImage, MetadataCommand, MetadataResponse};
use crate::log::LeaderEpochCache;
use crate::replication::hosted::Role;
use crate::replication::partition_state::{IsrProposal, LeaderState, PartitionAssignment};

pub(super) const TOPIC: &str = "t";
pub(super) const BROKERS: [i32; 3] = [1, 2, 3];
pub(super) const STEP_MS: i64 = 100;
const SESSION_TIMEOUT_MS: i64 = 1_500;
const HEARTBEAT_MS: i64 = 300;
const LIVENESS_TICK_MS: i64 = 1_000;
const LAG_TIME_MAX_MS: i64 = 3_000;
const RPC_TIMEOUT_STEPS: u64 = 10;
const FETCH_BACKOFF_STEPS: u64 = 2;
const HW_CHECKPOINT_STEPS: u64 = 20;
const PRODUCE_TIMEOUT_STEPS: u64 = 30;
const MAX_FETCH_RECORDS: usize = 4;

/// A deliberately broken variant for the negative control; `Faithful` is the code as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    Faithful,
    /// The high watermark over the committed ISR only, ignoring a member being added.
    HwOverCommittedIsr,
    /// Truncation ignores the diverging epoch: the leader never reports one, so a follower keeps a
    /// divergent tail and appends the leader's records after it.
    IgnoreDivergingEpoch,
    /// An unanswered or refused AlterPartition is always dropped (the code before the fix for the bug
    /// this simulator found): the high watermark may pass a member the controller committed.
    DropUnansweredIsrChange,
    /// Roles follow any image, even one older than the broker's registration (the code before the fix
    /// for the second bug this simulator found).
    RolesFromAnyImage,
}

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub name: &'static str,
    pub min_insync: i32,
    pub unclean: bool,
    pub acks_all: bool,
    /// Check invariants 1 and 2 (no acknowledged record lost, no divergence below the high watermark).
    pub check_no_loss: bool,
    pub variant: Variant,
    /// Brokers may install an image from a lagging coordinator (after a restart: older than what the
    /// broker's previous incarnation had seen).
    pub lagging_metadata: bool,
    pub steps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub epoch: i32,
    pub id: u64,
}

/// An acks=all produce waiting for the ISR (Kafka's delayed produce).
#[derive(Debug)]
struct Waiter {
    id: u64,
    offset: i64,
    leader_epoch: i32,
    deadline: u64,
}

#[derive(Debug)]
struct AlterInFlight {
    seq: u64,
    proposal: IsrProposal,
    /// An earlier attempt went unanswered.
    retried: bool,
    deadline: u64,
}

#[derive(Debug)]
pub(super) struct Broker {
    pub id: i32,
    pub alive: bool,
    /// Bumped at every restart: a leadership lasts at most one incarnation.
    pub incarnation: u64,
    /// Kept through crashes (written to the page cache), as is the epoch cache (persisted on change).
    pub log: Vec<Record>,
    pub cache: LeaderEpochCache,
    pub high_watermark: i64,
    /// `replication-offset-checkpoint`: where the high watermark restarts from.
    pub checkpointed_hw: i64,
    pub role: Role,
    /// The controller's image version this broker has applied (an index into `Controller::history`).
    pub image_version: usize,
    /// -1 until registered (again, after a restart).
    pub broker_epoch: i64,
    fetch_deadline: Option<u64>,
    backoff_until: u64,
    /// The AlterPartition in flight (`IsrClient::submit`'s task).
    alter: Option<AlterInFlight>,
    waiters: Vec<Waiter>,
    next_heartbeat_ms: i64,
    next_shrink_ms: i64,
    pub skew_ms: i64,
}

impl Broker {
    fn new(id: i32) -> Self {
        Broker {
            id,
            alive: true,
            incarnation: 0,
            log: Vec::new(),
            cache: LeaderEpochCache::empty(Path::new("/sim/in-memory")),
            high_watermark: 0,
            checkpointed_hw: 0,
            role: Role::Offline { leader_epoch: -1 },
            image_version: 0,
            broker_epoch: -1,
            fetch_deadline: None,
            backoff_until: 0,
            alter: None,
            waiters: Vec::new(),
            next_heartbeat_ms: 0,
            next_shrink_ms: 0,
            skew_ms: 0,
        }
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.len() as i64
    }
}

#[derive(Debug)]
pub(super) struct Controller {
    pub image: ClusterImage,
    index: u64,
    /// Every committed image with its Raft index; brokers apply them in order, late.
    pub history: Vec<(u64, ClusterImage)>,
    heartbeats: BTreeMap<i32, i64>,
    next_tick_ms: i64,
    incarnations: u128,
    pub skew_ms: i64,
}

impl Controller {
    fn commit(&mut self, command: &MetadataCommand) -> MetadataResponse {
        self.index += 1;
        let response = apply(&mut self.image, self.index, command);
        if !matches!(response, MetadataResponse::Rejected { .. }) {
            self.history.push((self.index, self.image.clone()));
        }
        response
    }

    /// `kafka::reconcile_leadership`.
    fn reconcile(&mut self) {
        for command in partition_leadership_changes(&self.image) {
            self.commit(&command);
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(super) struct Stats {
    pub steps: u64,
    pub faults: u64,
    pub produced: u64,
    pub acked: u64,
}

pub(super) struct Sim {
    pub config: Config,
    pub rng: Rng,
    pub step: u64,
    pub controller: Controller,
    pub brokers: Vec<Broker>,
    pub net: Network,
    pub faults_on: bool,
    /// Acknowledged records: (offset, id) and, for acks=all, the epoch they were acknowledged at.
    pub acked: Vec<(i64, u64)>,
    next_record_id: u64,
    next_alter_seq: u64,
    pub trace: VecDeque<String>,
    pub stats: Stats,
    /// Violations seen while stepping (truncation below the high watermark), for the checker.
    pub events: Vec<String>,
}

impl Sim {
    pub fn new(config: Config, seed: u64) -> Self {
        let mut controller = Controller {
            image: ClusterImage::default(),
            index: 0,
            history: Vec::new(),
            heartbeats: BTreeMap::new(),
            next_tick_ms: 0,
            incarnations: 0,
            skew_ms: 0,
        };
        controller.history.push((0, ClusterImage::default()));
        let mut brokers: Vec<Broker> = BROKERS.iter().map(|id| Broker::new(*id)).collect();
        for b in brokers.iter_mut() {
            controller.incarnations += 1;
            let registered = controller.commit(&register(b.id, controller.incarnations));
            let MetadataResponse::BrokerRegistered { broker_epoch } = registered else {
                panic!("registration refused: {registered:?}");
            };
            b.broker_epoch = broker_epoch;
            controller.commit(&MetadataCommand::SetBrokerFenced {
                broker_id: b.id,
                broker_epoch,
                fenced: false,
            });
        }
        let mut configs = BTreeMap::new();
        configs.insert("min.insync.replicas".to_string(), config.min_insync.to_string());
        if config.unclean {
            configs.insert("unclean.leader.election.enable".to_string(), "true".to_string());
        }
        controller.commit(&MetadataCommand::CreateTopic {
            name: TOPIC.into(),
            topic_id: uuid::Uuid::from_u128(1),
            assignment: vec![BROKERS.to_vec()],
            configs,
        });
        let mut sim = Sim {
            config,
            rng: Rng::new(seed),
            step: 0,
            controller,
            brokers,
            net: Network::new(0, 4),
            faults_on: true,
            acked: Vec::new(),
            next_record_id: 0,
            next_alter_seq: 0,
            trace: VecDeque::new(),
            stats: Stats::default(),
            events: Vec::new(),
        };
        for i in 0..sim.brokers.len() {
            sim.catch_up_metadata(i, 0);
        }
        sim
    }

    pub fn log(&mut self, line: String) {
        if self.trace.len() >= 120 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{:>5} {line}", self.step));
    }

    fn now(&self, node: i32) -> i64 {
        let base = self.step as i64 * STEP_MS;
        if node == CONTROLLER {
            base + self.controller.skew_ms
        } else {
            base + self.brokers[(node - 1) as usize].skew_ms
        }
    }

    /// One tick: faults, deliveries, brokers, controller, clients.
    pub fn step(&mut self) {
        self.step += 1;
        self.stats.steps += 1;
        if self.faults_on {
            self.inject_faults();
        }
        for envelope in self.net.due(self.step) {
            self.deliver(envelope);
        }
        for i in 0..self.brokers.len() {
            if self.brokers[i].alive {
                self.broker_tick(i);
            }
        }
        self.controller_tick();
        if self.faults_on && self.rng.chance(300) {
            self.produce();
        }
    }

    /// Stops the faults: every broker runs again, the network heals, nothing is dropped.
    pub fn heal(&mut self) {
        self.faults_on = false;
        self.net.heal();
        self.net.drop_per_mille = 0;
        for i in 0..self.brokers.len() {
            if !self.brokers[i].alive {
                self.restart(i);
            }
        }
        self.log("faults stop, network healed".into());
    }

    fn inject_faults(&mut self) {
        let r = self.rng.below(1000);
        let i = self.rng.below(self.brokers.len() as u64) as usize;
        let mut fault = None;
        if r < 8 {
            if self.brokers[i].alive && self.brokers.iter().filter(|b| b.alive).count() > 1 {
                self.crash(i);
                fault = Some(format!("crash {}", self.brokers[i].id));
            }
        } else if r < 40 {
            if !self.brokers[i].alive {
                self.restart(i);
                fault = Some(format!("restart {}", self.brokers[i].id));
            }
        } else if r < 48 {
            fault = Some(self.net.partition(&mut self.rng));
        } else if r < 70 {
            self.net.heal();
        } else if r < 74 {
            self.net.drop_per_mille = [0, 20, 100, 300][self.rng.below(4) as usize];
            fault = Some(format!("drop {}‰", self.net.drop_per_mille));
        } else if r < 78 {
            let jump = self.rng.range(-500, 2_000);
            let node = self.rng.below(4) as i32;
            let skew = if node == CONTROLLER {
                &mut self.controller.skew_ms
            } else {
                &mut self.brokers[(node - 1) as usize].skew_ms
            };
            *skew = (*skew + jump).clamp(-2_000, 5_000);
            fault = Some(format!("clock of node {node} jumps {jump} ms"));
        }
        if let Some(f) = fault {
            self.stats.faults += 1;
            self.log(f);
        }
    }

    /// A crash keeps the log and the epoch cache (page cache, persisted file) and loses the rest.
    fn crash(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        b.alive = false;
        b.high_watermark = b.checkpointed_hw;
        b.role = Role::Offline { leader_epoch: -1 };
        b.waiters.clear();
        b.alter = None;
        b.fetch_deadline = None;
    }

    /// A restarted broker starts from its high-watermark checkpoint, with no role, and registers again.
    fn restart(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        b.alive = true;
        b.incarnation += 1;
        b.high_watermark = b.checkpointed_hw.min(b.log_end_offset());
        b.role = Role::Offline { leader_epoch: -1 };
        b.image_version = 0;
        b.broker_epoch = -1;
        b.next_heartbeat_ms = 0;
    }

    fn deliver(&mut self, envelope: Envelope) {
        let Envelope { from, to, message, .. } = envelope;
        if to == CONTROLLER {
            if let Message::AlterPartition {
                broker_epoch,
                seq,
                proposal,
                member_epochs,
            } = message
            {
                let result = self.alter_partition(from, broker_epoch, &proposal, &member_epochs);
                self.net.send(
                    &mut self.rng,
                    self.step,
                    CONTROLLER,
                    from,
                    Message::AlterAnswer { seq, result },
                );
            }
            return;
        }
        let i = (to - 1) as usize;
        if !self.brokers[i].alive {
            return;
        }
        match message {
            Message::Fetch {
                broker_epoch,
                fetch_offset,
                last_fetched_epoch,
                current_leader_epoch,
            } => {
                let result = self.follower_fetch(
                    i,
                    from,
                    broker_epoch,
                    fetch_offset,
                    last_fetched_epoch,
                    current_leader_epoch,
                );
                let answer = Message::FetchAnswer {
                    leader_epoch: current_leader_epoch,
                    fetch_offset,
                    result,
                };
                self.net.send(&mut self.rng, self.step, to, from, answer);
            }
            Message::FetchAnswer {
                leader_epoch,
                fetch_offset,
                result,
            } => self.process_fetch_answer(i, from, leader_epoch, fetch_offset, result),
            Message::AlterAnswer { seq, result } => self.alter_answered(i, seq, result),
            Message::AlterPartition { .. } => {}
        }
    }
}

fn register(broker_id: i32, incarnation: u128) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        broker_id,
        incarnation_id: uuid::Uuid::from_u128(incarnation),
        endpoints: vec![],
        rack: None,
    }
}
