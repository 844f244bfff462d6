//! One cluster's canary at work: the producer (this task) sends a numbered record every interval with
//! acks=all as an idempotent producer, one consumer task per partition reads them back from its leader,
//! and both report to the cluster's `Tally`. Started and stopped by `canary::Canaries`; it ends by
//! itself when its KafkaCluster is gone.
//!
//! The producer has one record in flight at a time. A batch that fails with a retriable error (no
//! leader, not enough replicas, no answer) is sent again *with the same sequence number*, so the
//! leader deduplicates it if the first attempt was written after all; after `DELIVERY_TIMEOUT` the
//! record counts as failed. A sequence or producer-id refusal (a recreated topic, an expired producer)
//! starts a new idempotent session (InitProducerId) with sequences from 0.
//!
//! The topic is created on first use with one partition per broker, replication factor
//! min(3, brokers) and min.insync.replicas 2 at replication factor 3 (else 1); when brokers are
//! added it grows to one partition per broker (CreatePartitions).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oxka_protocol::network::client::ClientConnection;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::client::{self, CanaryError, Layout, ProducerIdentity, TOPIC};
use super::tally::{Read, Tally};
use super::Shared;

/// What a canary needs to know about its cluster; changed by the reconciler through a watch channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The cluster's bootstrap address (the operator's `--kafka-bootstrap-template`).
    pub bootstrap: String,
    /// `spec.brokers.replicas`: partitions and replication factor of the canary topic follow it.
    pub brokers: i32,
    pub interval: Duration,
    pub lost_after: Duration,
}

impl Settings {
    pub fn replication_factor(&self) -> i16 {
        self.brokers.clamp(1, 3) as i16
    }

    pub fn min_insync(&self) -> i32 {
        if self.replication_factor() >= 3 {
            2
        } else {
            1
        }
    }
}

/// How long the producer keeps retrying one record before counting it failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the topic's layout is read again when nothing failed (new brokers, new leaders).
const REFRESH: Duration = Duration::from_secs(30);
const BACKOFF: Duration = Duration::from_millis(250);
/// How long a consumer's Fetch waits at the leader for a record.
const FETCH_WAIT: Duration = Duration::from_millis(500);

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// This run's id in every record's value: records of earlier runs are not counted.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}", nanos ^ ((std::process::id() as u128) << 64))
}

/// The producer side and the supervisor of the consumers. Runs until aborted.
pub async fn run(mut settings: watch::Receiver<Settings>, shared: Arc<Shared>) {
    let run = run_id();
    let mut current = settings.borrow_and_update().clone();
    let mut producer = Producer::default();
    // The topic first: consumers start at each partition's end before the first record is sent.
    let layout = loop {
        match ensure_topic(&current).await {
            Ok(layout) => break layout,
            Err(e) => {
                shared.problem(Some(format!("preparing topic {TOPIC}: {e}")));
                tokio::time::sleep(Duration::from_secs(2)).await;
                current = settings.borrow_and_update().clone();
            }
        }
    };
    shared.problem(None);
    producer.layout = layout;
    let mut consumers = JoinSet::new();
    let mut consuming = Vec::new();
    start_consumers(
        &mut consumers,
        &mut consuming,
        &producer.layout,
        &settings,
        &shared,
        &run,
    );

    let mut ticker = tokio::time::interval(current.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_refresh = tokio::time::Instant::now();
    let mut number = 0u64;
    loop {
        ticker.tick().await;
        if settings.has_changed().unwrap_or(false) {
            let next = settings.borrow_and_update().clone();
            if next.interval != current.interval {
                ticker = tokio::time::interval(next.interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            }
            if next.bootstrap != current.bootstrap {
                producer.connections.clear();
            }
            shared.tally().set_lost_after(next.lost_after.as_millis() as u64);
            if layout_may_change(&current, &next) {
                // New brokers want their canary partitions now (before a rebalance that follows the
                // scale-up), not at the next periodic refresh.
                last_refresh = tokio::time::Instant::now() - REFRESH;
            }
            current = next;
        }
        if last_refresh.elapsed() >= REFRESH {
            last_refresh = tokio::time::Instant::now();
            match ensure_topic(&current).await {
                Ok(layout) => producer.layout = layout,
                Err(e) => {
                    // Logged as well: the next delivered record clears `problem` within a second,
                    // before status could show it.
                    tracing::warn!(bootstrap = %current.bootstrap, "canary: checking topic {TOPIC}: {e}");
                    shared.problem(Some(format!("checking topic {TOPIC}: {e}")));
                }
            }
            start_consumers(
                &mut consumers,
                &mut consuming,
                &producer.layout,
                &settings,
                &shared,
                &run,
            );
        }
        let newly_lost = shared.tally().expire(now_ms());
        for l in newly_lost {
            tracing::error!(
                bootstrap = %current.bootstrap,
                "canary record {} (acknowledged at {TOPIC}-{} offset {}) was not read back within {:?}: lost",
                l.number,
                l.partition,
                l.offset,
                current.lost_after
            );
        }
        let partitions = producer.partition_count();
        if partitions == 0 {
            shared.problem(Some(format!("topic {TOPIC} has no partitions")));
            continue;
        }
        let partition = (number % partitions as u64) as i32;
        let sent = now_ms();
        shared.tally().sent(number, partition, sent);
        match producer
            .deliver(&current, partition, client::value(&run, number, sent))
            .await
        {
            Ok(offset) => {
                shared.tally().acknowledged(number, offset, now_ms());
                shared.problem(None);
            }
            Err(e) => {
                shared.tally().failed(number);
                shared.problem(Some(format!("record {number} to {TOPIC}-{partition} failed: {e}")));
                last_refresh = tokio::time::Instant::now() - REFRESH;
            }
        }
        number += 1;
    }
}

/// Whether a settings change asks for the topic's layout to be checked at once: a different broker
/// count (partitions to add) or a different cluster address.
fn layout_may_change(current: &Settings, next: &Settings) -> bool {
    current.brokers != next.brokers || current.bootstrap != next.bootstrap
}

/// Reads the topic's layout, creating the topic or adding partitions to reach one per broker.
async fn ensure_topic(settings: &Settings) -> Result<Layout, CanaryError> {
    let mut c = client::connect(&settings.bootstrap).await?;
    let layout = client::layout(&mut c).await?;
    let wanted = settings.brokers.max(1);
    match &layout.partitions {
        None => {
            client::create_topic(&mut c, wanted, settings.replication_factor(), settings.min_insync()).await?;
        }
        Some(p) if (p.len() as i32) < wanted => client::grow_topic(&mut c, wanted).await?,
        Some(_) => return Ok(layout),
    }
    // Leaders of new partitions are elected right after creation: ask until every one has a leader.
    for _ in 0..20 {
        let layout = client::layout(&mut c).await?;
        if let Some(p) = &layout.partitions {
            if p.len() as i32 >= wanted && p.values().all(|i| i.leader >= 0) {
                return Ok(layout);
            }
        }
        tokio::time::sleep(BACKOFF).await;
    }
    client::layout(&mut c).await
}

fn start_consumers(
    consumers: &mut JoinSet<()>,
    consuming: &mut Vec<i32>,
    layout: &Layout,
    settings: &watch::Receiver<Settings>,
    shared: &Arc<Shared>,
    run: &str,
) {
    let Some(partitions) = &layout.partitions else { return };
    for partition in partitions.keys() {
        if consuming.contains(partition) {
            continue;
        }
        consuming.push(*partition);
        let consumer = Consumer {
            partition: *partition,
            settings: settings.clone(),
            shared: shared.clone(),
            run: run.to_string(),
            connection: None,
            position: None,
            from: client::EARLIEST,
            leader_epoch: -1,
        };
        consumers.spawn(consumer.run());
    }
}

#[derive(Default)]
struct Producer {
    identity: Option<ProducerIdentity>,
    sequences: BTreeMap<i32, i32>,
    layout: Layout,
    connections: HashMap<String, ClientConnection>,
}

impl Producer {
    fn partition_count(&self) -> usize {
        self.layout.partitions.as_ref().map_or(0, BTreeMap::len)
    }

    /// Sends one record until it is acknowledged (its offset), refused for good, or
    /// `DELIVERY_TIMEOUT` passes; retries reuse the batch's sequence number.
    async fn deliver(&mut self, settings: &Settings, partition: i32, value: bytes::Bytes) -> Result<i64, CanaryError> {
        let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
        let timestamp = now_ms() as i64;
        loop {
            let attempt = self.attempt(settings, partition, value.clone(), timestamp).await;
            let retry = match &attempt {
                Ok(_) => false,
                Err(CanaryError::Refused { code: 45 | 47 | 59, .. }) => {
                    // OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID:
                    // this session is over; the next record starts a new one.
                    self.reset();
                    false
                }
                Err(CanaryError::Refused { code, .. }) => client::retriable(*code),
                Err(_) => true, // no connection, no answer: the same batch again
            };
            if !retry {
                return attempt;
            }
            self.connections.clear();
            if tokio::time::Instant::now() + BACKOFF >= deadline {
                // The batch may have been written: a new session, so that the next sequence is
                // not refused as out of order.
                self.reset();
                return attempt;
            }
            tokio::time::sleep(BACKOFF).await;
            if let Ok(layout) = ensure_layout(settings).await {
                self.layout = layout;
            }
        }
    }

    async fn attempt(
        &mut self,
        settings: &Settings,
        partition: i32,
        value: bytes::Bytes,
        timestamp: i64,
    ) -> Result<i64, CanaryError> {
        let identity = match self.identity {
            Some(identity) => identity,
            None => {
                let mut c = client::connect(&settings.bootstrap).await?;
                let identity = client::init_producer_id(&mut c).await?;
                self.identity = Some(identity);
                self.sequences.clear();
                identity
            }
        };
        let leader = self
            .layout
            .leader_address(partition)
            .ok_or_else(|| CanaryError::Refused {
                request: "Produce",
                code: 5, // LEADER_NOT_AVAILABLE
                message: Some(format!("{TOPIC}-{partition} has no live leader in Metadata")),
            })?
            .to_string();
        let sequence = self.sequences.get(&partition).copied().unwrap_or(0);
        let batch = client::batch(identity, sequence, value, timestamp)?;
        if !self.connections.contains_key(&leader) {
            let c = client::connect(&leader).await?;
            self.connections.insert(leader.clone(), c);
        }
        let c = self.connections.get_mut(&leader).expect("inserted above");
        match client::produce(c, partition, batch).await {
            Ok(offset) => {
                self.sequences.insert(partition, sequence.wrapping_add(1));
                Ok(offset)
            }
            // DUPLICATE_SEQUENCE_NUMBER: an earlier attempt of this very batch was written.
            Err(CanaryError::Refused { code: 46, .. }) => {
                self.sequences.insert(partition, sequence.wrapping_add(1));
                Ok(-1)
            }
            Err(e) => {
                self.connections.remove(&leader);
                Err(e)
            }
        }
    }

    fn reset(&mut self) {
        self.identity = None;
        self.sequences.clear();
    }
}

async fn ensure_layout(settings: &Settings) -> Result<Layout, CanaryError> {
    let mut c = client::connect(&settings.bootstrap).await?;
    client::layout(&mut c).await
}

/// Reads one partition back from its leader.
struct Consumer {
    partition: i32,
    settings: watch::Receiver<Settings>,
    shared: Arc<Shared>,
    run: String,
    connection: Option<ClientConnection>,
    /// The next offset to read; `None` until the partition's start (or, after OFFSET_OUT_OF_RANGE,
    /// its end) is known.
    position: Option<i64>,
    /// Where reading starts when `position` is `None`.
    from: i64,
    leader_epoch: i32,
}

impl Consumer {
    async fn run(mut self) {
        loop {
            if self.position.is_none() {
                self.start_position().await;
                if self.position.is_none() {
                    tokio::time::sleep(BACKOFF * 4).await;
                    continue;
                }
            }
            if let Err(e) = self.poll().await {
                tracing::debug!(partition = self.partition, "canary consumer: {e}");
                self.connection = None;
                if e.code() == Some(1) {
                    // OFFSET_OUT_OF_RANGE: the log no longer holds the position (records deleted,
                    // the topic recreated). Acknowledged records that were there expire as lost;
                    // reading on from the end (not the start) reads no record of this run twice.
                    self.position = None;
                    self.from = client::LATEST;
                }
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }

    /// The partition's first offset becomes the position: nothing this run sends can be missed, even
    /// when the consumer starts after the producer (records of earlier runs are skipped by their run
    /// id; an hour of retention at one record a second is little to read).
    async fn start_position(&mut self) {
        let (partition, from) = (self.partition, self.from);
        let result = async {
            let c = self.connect().await?;
            client::list_offset(c, partition, from).await
        }
        .await;
        match result {
            Ok(offset) => self.position = Some(offset),
            Err(e) => {
                tracing::debug!(partition = self.partition, "canary consumer start: {e}");
                self.connection = None;
            }
        }
    }

    /// A connection to the partition's current leader (Metadata at the bootstrap address first).
    async fn connect(&mut self) -> Result<&mut ClientConnection, CanaryError> {
        if self.connection.is_none() {
            let bootstrap = self.settings.borrow().bootstrap.clone();
            let layout = ensure_layout(&Settings {
                bootstrap,
                brokers: 0,
                interval: Duration::ZERO,
                lost_after: Duration::ZERO,
            })
            .await?;
            let leader = layout
                .leader_address(self.partition)
                .ok_or_else(|| CanaryError::Refused {
                    request: "Fetch",
                    code: 5,
                    message: Some(format!("{TOPIC}-{} has no live leader in Metadata", self.partition)),
                })?;
            self.leader_epoch = layout
                .partitions
                .as_ref()
                .and_then(|p| p.get(&self.partition))
                .map_or(-1, |p| p.leader_epoch);
            self.connection = Some(client::connect(leader).await?);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    async fn poll(&mut self) -> Result<(), CanaryError> {
        let position = self.position.expect("known before polling");
        let (partition, epoch) = (self.partition, self.leader_epoch);
        let c = self.connect().await?;
        let fetched = client::fetch(c, partition, position, epoch, FETCH_WAIT).await?;
        let now = now_ms();
        let mut tally = self.shared.tally();
        for (offset, value) in &fetched.records {
            let Some((number, _)) = client::parse_value(&self.run, value) else {
                continue;
            };
            if tally.read(number, now) == Read::Duplicate {
                tracing::error!("canary record {number} read again at {TOPIC}-{partition} offset {offset}: duplicated");
            }
        }
        self.position = Some(fetched.next_offset);
        Ok(())
    }
}

impl Shared {
    pub fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(brokers: i32, interval_secs: u64) -> Settings {
        Settings {
            bootstrap: "demo-bootstrap:9092".into(),
            brokers,
            interval: Duration::from_secs(interval_secs),
            lost_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_new_broker_count_refreshes_the_layout_at_once() {
        assert!(layout_may_change(&settings(3, 1), &settings(5, 1)));
        assert!(layout_may_change(&settings(5, 1), &settings(3, 1)));
        let mut moved = settings(3, 1);
        moved.bootstrap = "other:9092".into();
        assert!(layout_may_change(&settings(3, 1), &moved));
        assert!(!layout_may_change(&settings(3, 1), &settings(3, 2)));
    }
}
