//! The simulated cluster: a controller holding the real `ClusterImage`, three brokers each with an
//! in-memory log (records with offset = index, leader epoch and a unique id), the real
//! `LeaderEpochCache`, the real `Role` (a leader holds a real `LeaderState`) and a high watermark, and
//! clients producing. `Sim::step` advances one tick of `STEP_MS`: faults, message deliveries, every
//! broker's periodic work, the controller's liveness duty, clients. Each piece below names the runtime
//! code it models; the pure calls are the same, in the same order.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData};
use kafka_protocol::messages::BrokerId;

use super::network::{Envelope, FetchResult, Message, Network, CONTROLLER};
use super::Rng;
use crate::coordinator::image::{apply, partition_leadership_changes, ClusterImage, MetadataCommand, MetadataResponse};
use crate::coordinator::kafka::{alter_partition, expired_brokers};
use crate::log::LeaderEpochCache;
use crate::replication::hosted::Role;
use crate::replication::manager::{check_epoch, diverging_epoch_with};
use crate::replication::partition_state::{
    isr_change_failure, truncation_offset, IsrChangeFailure, IsrProposal, LeaderState, PartitionAssignment,
};

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

    /// The controller's AlterPartition handler (`alter_partition::handle`/`alter`): broker epoch, then
    /// `validate`, then the command through `apply` (fenced again by partition epoch).
    fn alter_partition(
        &mut self,
        leader: i32,
        broker_epoch: i64,
        proposal: &IsrProposal,
        member_epochs: &[i64],
    ) -> Result<(Vec<i32>, i32), ResponseError> {
        match self.controller.image.brokers.get(&leader) {
            None => return Err(ResponseError::BrokerIdNotRegistered),
            Some(b) if b.epoch != broker_epoch => return Err(ResponseError::StaleBrokerEpoch),
            Some(_) => {}
        }
        let members = proposal
            .isr
            .iter()
            .zip(member_epochs)
            .map(|(id, epoch)| {
                BrokerState::default()
                    .with_broker_id(BrokerId(*id))
                    .with_broker_epoch(*epoch)
            })
            .collect();
        let wanted = PartitionData::default()
            .with_partition_index(0)
            .with_leader_epoch(proposal.leader_epoch)
            .with_new_isr_with_epochs(members)
            .with_partition_epoch(proposal.partition_epoch);
        let (current, isr) = alter_partition::validate(&self.controller.image, 3, leader, TOPIC, &wanted)?;
        if isr == current.isr {
            return Ok((isr, current.partition_epoch));
        }
        let command = MetadataCommand::AlterPartition {
            topic: TOPIC.into(),
            partition: 0,
            partition_epoch: current.partition_epoch,
            leader,
            isr: isr.clone(),
        };
        match self.controller.commit(&command) {
            MetadataResponse::PartitionChanged { partition_epoch, .. } => {
                self.log(format!(
                    "controller: ISR {isr:?} from leader {leader} (partition epoch {partition_epoch})"
                ));
                Ok((isr, partition_epoch))
            }
            _ => Err(ResponseError::InvalidUpdateVersion),
        }
    }

    /// The controller: registrations and heartbeats (`broker_registration`, `broker_heartbeat`) from
    /// every connected live broker, and the liveness duty every second (`fence_expired_brokers`).
    fn controller_tick(&mut self) {
        let now = self.now(CONTROLLER);
        for i in 0..self.brokers.len() {
            let (id, alive, epoch) = (self.brokers[i].id, self.brokers[i].alive, self.brokers[i].broker_epoch);
            if !alive || !self.net.connected(id, CONTROLLER) || self.rng.chance(self.net.drop_per_mille) {
                continue;
            }
            let broker_now = self.now(id);
            if epoch < 0 {
                self.register(i, now);
            } else if broker_now >= self.brokers[i].next_heartbeat_ms {
                self.brokers[i].next_heartbeat_ms = broker_now + HEARTBEAT_MS;
                self.heartbeat(i, now);
            }
        }
        if now >= self.controller.next_tick_ms {
            self.controller.next_tick_ms = now + LIVENESS_TICK_MS;
            let image = self.controller.image.clone();
            let expired = expired_brokers(&image, &mut self.controller.heartbeats, now, SESSION_TIMEOUT_MS);
            for (broker_id, broker_epoch) in expired {
                self.controller.commit(&MetadataCommand::SetBrokerFenced {
                    broker_id,
                    broker_epoch,
                    fenced: true,
                });
                self.log(format!("controller: fenced {broker_id} (heartbeats stopped)"));
            }
            self.controller.reconcile();
        }
    }

    fn register(&mut self, i: usize, now: i64) {
        let id = self.brokers[i].id;
        let c = &mut self.controller;
        if let Some(existing) = c.image.brokers.get(&id) {
            let live = c.heartbeats.get(&id).is_some_and(|t| now - t <= SESSION_TIMEOUT_MS);
            if !existing.fenced && live {
                return; // DUPLICATE_BROKER_REGISTRATION: the old incarnation still counts as alive.
            }
        }
        c.incarnations += 1;
        if let MetadataResponse::BrokerRegistered { broker_epoch } = c.commit(&register(id, c.incarnations)) {
            c.heartbeats.insert(id, now);
            self.brokers[i].broker_epoch = broker_epoch;
            self.log(format!("broker {id} registered, epoch {broker_epoch}"));
        }
    }

    fn heartbeat(&mut self, i: usize, now: i64) {
        let b = &self.brokers[i];
        let (id, epoch) = (b.id, b.broker_epoch);
        let metadata_offset = self.controller.history[b.image_version].0 as i64;
        let c = &mut self.controller;
        let Some(registered) = c.image.brokers.get(&id) else {
            return;
        };
        if registered.epoch != epoch {
            return;
        }
        c.heartbeats.insert(id, now);
        if registered.fenced && metadata_offset >= epoch {
            c.commit(&MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch: epoch,
                fenced: false,
            });
            c.reconcile();
            self.log(format!("controller: unfenced {id}"));
        }
    }

    /// A broker's periodic work: metadata, fetching as follower, ISR checks and acks=all as leader.
    fn broker_tick(&mut self, i: usize) {
        let id = self.brokers[i].id;
        if self.net.connected(id, CONTROLLER) && self.rng.chance(if self.faults_on { 300 } else { 800 }) {
            // `follow_metadata` installs whole images: the latest, or (from a lagging coordinator) an
            // older one that is still newer than what this broker has.
            let lagging = self.config.lagging_metadata && self.faults_on && self.rng.chance(200);
            let behind = if lagging { self.rng.below(8) as usize } else { 0 };
            self.catch_up_metadata(i, behind);
        }
        let step = self.step;
        let b = &mut self.brokers[i];
        if b.fetch_deadline.is_some_and(|d| d <= step) {
            b.fetch_deadline = None;
            b.backoff_until = step + FETCH_BACKOFF_STEPS;
        }
        if b.alter.as_ref().is_some_and(|a| a.deadline <= step) {
            // Unanswered: `IsrClient::submit` classifies it like any failure.
            self.alter_failed(i, None);
        }
        let b = &mut self.brokers[i];
        if step.is_multiple_of(HW_CHECKPOINT_STEPS) {
            b.checkpointed_hw = b.high_watermark;
        }
        self.fetch(i);
        self.shrink_isr(i);
        self.complete_waiters(i);
    }

    /// Installs the image `behind` versions before the latest if it is newer than this broker's
    /// (`Broker::install_metadata`, then `ReplicaManager::apply_image` if the image includes this
    /// broker's registration).
    pub fn catch_up_metadata(&mut self, i: usize, behind: usize) {
        let latest = self.controller.history.len() - 1;
        let target = latest.saturating_sub(behind);
        let b = &mut self.brokers[i];
        if b.image_version >= target {
            return;
        }
        b.image_version = target;
        let includes_registration = b.broker_epoch > 0 && self.controller.history[target].0 >= b.broker_epoch as u64;
        if includes_registration || self.config.variant == Variant::RolesFromAnyImage {
            self.follow(i);
        }
    }

    /// `ReplicaManager::follow` for the partition, then `maybe_advance_high_watermark`.
    fn follow(&mut self, i: usize) {
        let now = self.now(self.brokers[i].id);
        let version = self.brokers[i].image_version;
        let Some(p) = self.controller.history[version]
            .1
            .topics
            .get(TOPIC)
            .map(|t| t.partitions[0].clone())
        else {
            return;
        };
        let assignment = PartitionAssignment {
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        };
        let b = &mut self.brokers[i];
        let current_epoch = b.role.leader_epoch();
        if assignment.leader_epoch < current_epoch {
            return;
        }
        let same_epoch = assignment.leader_epoch == current_epoch;
        let log_end_offset = b.log_end_offset();
        let mut line = None;
        if assignment.leader == b.id {
            if let (true, Role::Leader(state)) = (same_epoch, &mut b.role) {
                state.update_assignment(&assignment, log_end_offset, now);
            } else {
                if b.cache.latest_epoch().is_none_or(|e| e < assignment.leader_epoch) {
                    b.cache.assign(assignment.leader_epoch, log_end_offset);
                }
                b.role = Role::Leader(LeaderState::new(b.id, &assignment, log_end_offset, now));
                line = Some(format!(
                    "broker {} leads at epoch {} (isr {:?}, log end {log_end_offset}, hw {})",
                    b.id, assignment.leader_epoch, assignment.isr, b.high_watermark
                ));
            }
        } else if assignment.leader < 0 {
            if !(matches!(b.role, Role::Offline { .. }) && same_epoch) {
                b.role = Role::Offline {
                    leader_epoch: assignment.leader_epoch,
                };
                line = Some(format!("broker {} offline at epoch {}", b.id, assignment.leader_epoch));
            }
        } else {
            let unchanged =
                matches!(b.role, Role::Follower { leader, .. } if same_epoch && leader == assignment.leader);
            if !unchanged {
                b.role = Role::Follower {
                    leader: assignment.leader,
                    leader_epoch: assignment.leader_epoch,
                };
                b.fetch_deadline = None;
                b.backoff_until = 0;
                line = Some(format!(
                    "broker {} follows {} at epoch {}",
                    b.id, assignment.leader, assignment.leader_epoch
                ));
            }
        }
        self.maybe_advance_high_watermark(i);
        if let Some(line) = line {
            self.log(line);
        }
    }

    /// The high watermark the leader state allows (or the broken variant's).
    fn hw_target(&self, state: &LeaderState, log_end_offset: i64, current: i64) -> i64 {
        if self.config.variant == Variant::HwOverCommittedIsr {
            let mut committed_only = state.clone();
            committed_only.pending_isr = None;
            return committed_only.high_watermark(log_end_offset, current);
        }
        state.high_watermark(log_end_offset, current)
    }

    /// `HostedPartition::maybe_advance_high_watermark`.
    fn maybe_advance_high_watermark(&mut self, i: usize) {
        let b = &self.brokers[i];
        let Role::Leader(state) = &b.role else {
            return;
        };
        let target = self.hw_target(state, b.log_end_offset(), b.high_watermark);
        if target > b.high_watermark {
            self.brokers[i].high_watermark = target;
        }
    }

    /// The fetcher: one Fetch in flight to the leader it follows, from the log end offset, naming the
    /// epoch of its last record (`FetcherTask::build_request`).
    fn fetch(&mut self, i: usize) {
        let step = self.step;
        let b = &self.brokers[i];
        let Role::Follower { leader, leader_epoch } = b.role else {
            return;
        };
        if b.fetch_deadline.is_some() || b.backoff_until > step {
            return;
        }
        let message = Message::Fetch {
            broker_epoch: b.broker_epoch,
            fetch_offset: b.log_end_offset(),
            last_fetched_epoch: b.cache.latest_epoch().unwrap_or(-1),
            current_leader_epoch: leader_epoch,
        };
        let from = b.id;
        self.brokers[i].fetch_deadline = Some(step + RPC_TIMEOUT_STEPS);
        self.net.send(&mut self.rng, step, from, leader, message);
    }

    /// `ReplicaManager::follower_fetch` and the read after it, on the leader.
    fn follower_fetch(
        &mut self,
        i: usize,
        follower: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
    ) -> FetchResult {
        let now = self.now(self.brokers[i].id);
        // `api::fetch::record_follower_fetch`: eligibility from this broker's (maybe stale) image.
        let eligible = self.controller.history[self.brokers[i].image_version]
            .1
            .brokers
            .get(&follower)
            .is_some_and(|b| !b.fenced && (broker_epoch < 0 || b.epoch == broker_epoch));
        let b = &self.brokers[i];
        if let Err(e) = check_epoch(b.role.leader_epoch(), current_leader_epoch) {
            return FetchResult::Error(e);
        }
        let Role::Leader(state) = &b.role else {
            return FetchResult::Error(ResponseError::NotLeaderOrFollower);
        };
        let log_end_offset = b.log_end_offset();
        let divergence = diverging_epoch_with(
            |epoch| b.cache.end_offset_for(epoch, log_end_offset),
            fetch_offset,
            last_fetched_epoch,
        )
        .filter(|_| self.config.variant != Variant::IgnoreDivergingEpoch);
        if let Some((epoch, end)) = divergence {
            return FetchResult::Diverging(epoch, end);
        }
        let mut state = state.clone();
        if state.record_fetch(follower, fetch_offset, log_end_offset, now).is_err() {
            return FetchResult::Error(ResponseError::NotLeaderOrFollower);
        }
        let current = b.high_watermark;
        let target = self.hw_target(&state, log_end_offset, current);
        let hw = target.max(current);
        let proposal = state.isr_expansion(follower, hw, eligible);
        if let Some(p) = &proposal {
            state.begin_isr_change(p);
        }
        let b = &mut self.brokers[i];
        b.high_watermark = hw;
        b.role = Role::Leader(state);
        let id = b.id;
        if let Some(p) = proposal {
            self.log(format!("leader {id} proposes ISR {:?} ({follower} caught up)", p.isr));
            self.submit_alter(i, p, false);
        }
        let b = &self.brokers[i];
        if fetch_offset > b.log_end_offset() {
            return FetchResult::Error(ResponseError::OffsetOutOfRange);
        }
        let end = (fetch_offset as usize + MAX_FETCH_RECORDS).min(b.log.len());
        FetchResult::Records {
            records: b.log[fetch_offset as usize..end].to_vec(),
            high_watermark: b.high_watermark,
        }
    }

    /// `IsrClient::submit`/`send`: AlterPartition with the members' broker epochs from this broker's
    /// image.
    fn submit_alter(&mut self, i: usize, proposal: IsrProposal, retried: bool) {
        self.next_alter_seq += 1;
        let seq = self.next_alter_seq;
        let b = &self.brokers[i];
        let image = &self.controller.history[b.image_version].1;
        let member_epochs = proposal
            .isr
            .iter()
            .map(|id| image.brokers.get(id).map_or(-1, |r| r.epoch))
            .collect();
        let message = Message::AlterPartition {
            broker_epoch: b.broker_epoch,
            seq,
            proposal: proposal.clone(),
            member_epochs,
        };
        let from = b.id;
        self.brokers[i].alter = Some(AlterInFlight {
            seq,
            proposal,
            retried,
            deadline: self.step + RPC_TIMEOUT_STEPS,
        });
        self.net.send(&mut self.rng, self.step, from, CONTROLLER, message);
    }

    /// The answer to the AlterPartition in flight (`IsrClient::submit`'s completion).
    fn alter_answered(&mut self, i: usize, seq: u64, result: Result<(Vec<i32>, i32), ResponseError>) {
        if self.brokers[i].alter.as_ref().is_none_or(|a| a.seq != seq) {
            return;
        }
        let line = format!("broker {} AlterPartition answer {result:?}", self.brokers[i].id);
        match result {
            Ok((isr, partition_epoch)) => {
                let b = &mut self.brokers[i];
                let a = b.alter.take().expect("checked");
                if let Role::Leader(state) = &mut b.role {
                    if state.leader_epoch == a.proposal.leader_epoch {
                        state.isr_change_committed(isr, partition_epoch);
                    }
                }
                self.maybe_advance_high_watermark(i);
            }
            Err(e) => self.alter_failed(i, Some(e)),
        }
        self.log(line);
    }

    /// `IsrClient::submit` after a failure (`error`: the controller's, `None`: no answer).
    fn alter_failed(&mut self, i: usize, error: Option<ResponseError>) {
        let faithful = self.config.variant != Variant::DropUnansweredIsrChange;
        let b = &mut self.brokers[i];
        let a = b.alter.take().expect("an AlterPartition in flight");
        let Role::Leader(state) = &mut b.role else {
            return;
        };
        if state.leader_epoch != a.proposal.leader_epoch {
            return;
        }
        let next = if faithful {
            isr_change_failure(error, a.retried)
        } else {
            IsrChangeFailure::Drop
        };
        match next {
            IsrChangeFailure::Drop => state.isr_change_failed(),
            IsrChangeFailure::AwaitMetadata => {}
            IsrChangeFailure::Retry => {
                let pending = state.pending_isr.as_ref() == Some(&a.proposal.isr)
                    && state.partition_epoch == a.proposal.partition_epoch;
                if pending {
                    self.submit_alter(i, a.proposal, true);
                }
            }
        }
    }

    /// `ReplicaManager::shrink_isrs`, every half lag time.
    fn shrink_isr(&mut self, i: usize) {
        let now = self.now(self.brokers[i].id);
        let b = &mut self.brokers[i];
        if now < b.next_shrink_ms {
            return;
        }
        b.next_shrink_ms = now + LAG_TIME_MAX_MS / 2;
        let log_end_offset = b.log_end_offset();
        let Role::Leader(state) = &mut b.role else {
            return;
        };
        let Some(p) = state.isr_shrink(log_end_offset, now, LAG_TIME_MAX_MS) else {
            return;
        };
        state.begin_isr_change(&p);
        let line = format!("leader {} proposes ISR {:?} (followers fell behind)", b.id, p.isr);
        self.log(line);
        self.submit_alter(i, p, false);
    }

    /// `FetcherTask::process` for one partition of a Fetch answer.
    fn process_fetch_answer(
        &mut self,
        i: usize,
        leader: i32,
        leader_epoch: i32,
        fetch_offset: i64,
        result: FetchResult,
    ) {
        let step = self.step;
        let b = &mut self.brokers[i];
        let following =
            matches!(b.role, Role::Follower { leader: l, leader_epoch: e } if l == leader && e == leader_epoch);
        if !following {
            return;
        }
        b.fetch_deadline = None;
        let log_end_offset = b.log_end_offset();
        match result {
            FetchResult::Error(_error) => b.backoff_until = step + FETCH_BACKOFF_STEPS,
            _ if log_end_offset != fetch_offset => {}
            FetchResult::Diverging(epoch, end) => {
                let local = b.cache.end_offset_for(epoch, log_end_offset);
                let to = truncation_offset(epoch, end, local, log_end_offset);
                let line = format!(
                    "broker {} diverges from {leader} (epoch {epoch} ends at {end} there): truncates {log_end_offset} -> {to}",
                    b.id
                );
                self.truncate_to(i, to);
                self.log(line);
            }
            FetchResult::Records {
                records,
                high_watermark,
            } => {
                for r in records {
                    let offset = b.log_end_offset();
                    b.cache.assign(r.epoch, offset);
                    b.log.push(r);
                }
                let hw = high_watermark.min(b.log_end_offset());
                if hw > b.high_watermark {
                    b.high_watermark = hw;
                }
            }
        }
    }

    /// `Log::truncate_to`. Truncating below the high watermark is a violation (invariant 2).
    fn truncate_to(&mut self, i: usize, target: i64) {
        let b = &mut self.brokers[i];
        let log_end_offset = b.log_end_offset();
        if target >= log_end_offset {
            b.cache.truncate_from_end(log_end_offset);
            return;
        }
        if target < b.high_watermark && self.config.check_no_loss {
            self.events.push(format!(
                "broker {} truncated to {target}, below its high watermark {}",
                b.id, b.high_watermark
            ));
        }
        b.log.truncate(target as usize);
        b.high_watermark = b.high_watermark.min(target);
        b.cache.truncate_from_end(target);
    }

    /// A client sends one record to the broker some broker's (maybe stale) metadata names leader
    /// (`ReplicaManager::append_now`, then the acks=all wait).
    fn produce(&mut self) {
        let asked = self.rng.below(self.brokers.len() as u64) as usize;
        let version = self.brokers[asked].image_version;
        let Some(leader) = self.controller.history[version]
            .1
            .topics
            .get(TOPIC)
            .map(|t| t.partitions[0].leader)
        else {
            return;
        };
        if leader < 0 || self.rng.chance(self.net.drop_per_mille) {
            return;
        }
        let i = (leader - 1) as usize;
        let (min_insync, acks_all, step) = (self.config.min_insync, self.config.acks_all, self.step);
        let b = &mut self.brokers[i];
        if !b.alive {
            return;
        }
        let Role::Leader(state) = &b.role else {
            return;
        };
        if acks_all && (state.isr.len() as i32) < min_insync {
            return; // NOT_ENOUGH_REPLICAS, nothing written.
        }
        self.next_record_id += 1;
        let id = self.next_record_id;
        let offset = b.log_end_offset();
        let epoch = state.leader_epoch;
        b.cache.assign(epoch, offset);
        b.log.push(Record { epoch, id });
        self.stats.produced += 1;
        self.maybe_advance_high_watermark(i);
        let b = &mut self.brokers[i];
        if acks_all {
            b.waiters.push(Waiter {
                id,
                offset,
                leader_epoch: epoch,
                deadline: step + PRODUCE_TIMEOUT_STEPS,
            });
        } else {
            self.acked.push((offset, id));
        }
    }

    /// `ReplicaManager::await_replication` for every waiting acks=all produce on this broker.
    fn complete_waiters(&mut self, i: usize) {
        let (min_insync, step) = (self.config.min_insync, self.step);
        let b = &mut self.brokers[i];
        let mut acked = Vec::new();
        let hw = b.high_watermark;
        let role = &b.role;
        b.waiters.retain(|w| {
            let Role::Leader(state) = role else {
                return false;
            };
            if state.leader_epoch != w.leader_epoch || w.deadline <= step {
                return false;
            }
            match state.enough_replicas(hw, w.offset + 1, min_insync) {
                Some(true) => {
                    acked.push((w.offset, w.id));
                    false
                }
                Some(false) => false,
                None => true,
            }
        });
        let id = b.id;
        for (offset, record) in acked {
            self.stats.acked += 1;
            self.acked.push((offset, record));
            self.log(format!("leader {id} acknowledges record {record} at offset {offset}"));
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
