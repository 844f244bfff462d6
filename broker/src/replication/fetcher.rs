//! The replica fetchers (Kafka's `ReplicaFetcherThread` / `AbstractFetcherManager`): for every source
//! broker, `num.replica.fetchers` tasks, each owning one connection to that broker's inter-broker
//! listener and a share of the partitions this broker follows there (by Kafka's hash of topic and
//! partition). Each task loops: one Fetch for all its partitions (from each log's end offset, naming the
//! epoch of its last record, so the leader can say where the logs diverge), then for each partition:
//! truncate a divergent tail, append the leader's batches as they are, take the leader's high watermark
//! and log start offset.
//!
//! A partition is handled only while its replica still follows the same leader epoch it was added at;
//! `apply_image` removes and re-adds partitions as leadership moves. Errors back off
//! exponentially with jitter from 50 ms up to `replica.fetch.backoff.ms` (the whole connection for I/O
//! errors, one partition for partition errors), logged once per interval with a count. The short first
//! retry matters at a leader change: the new leader may hear of its leadership a few milliseconds after
//! its followers do and answer UNKNOWN_LEADER_EPOCH meanwhile; a full second's pause there would hold
//! up every acks=all produce to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, RequestKind, ResponseKind};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hosted::{HostedPartition, Role};
use super::partition_state::truncation_offset;
use super::quota::ReplicationQuotas;
use crate::config::ReplicationConfig;
use crate::log::TopicPartition;
use crate::log_dir_health::LogDirHealth;
use crate::metrics::ReplicationCounters;
use crate::network::client::{ClientConnection, ClientError};
use crate::util::{ExponentialBackoff, RateLimitedLog};

/// Fetch v15: the follower names itself in `replica_state` (KIP-903) and topics by id.
pub const FETCH_VERSION: i16 = 15;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A partition a fetcher copies, at the leader epoch it was added for.
#[derive(Clone)]
pub struct FetchTarget {
    pub hosted: Arc<HostedPartition>,
    pub leader_epoch: i32,
}

/// What a fetch asked for, per (topic id, partition): the target and the fetch offset.
type Sent = HashMap<(uuid::Uuid, i32), (FetchTarget, i64)>;

struct Entry {
    target: FetchTarget,
    /// A partition error backs this partition off until then.
    delayed_until: Option<Instant>,
    /// Partition errors in a row (the exponent of its backoff); 0 after a fetch that worked.
    failures: u32,
    /// The last fetch left this replica at the leader's high watermark (Kafka's `isReplicaInSync`):
    /// the follower-side throttle never holds it back.
    caught_up: bool,
}

/// What one fetcher task shares with the manager.
struct Shared {
    leader: i32,
    address: Mutex<String>,
    partitions: Mutex<BTreeMap<TopicPartition, Entry>>,
    wake: Notify,
}

pub struct FetcherManager {
    local_id: i32,
    config: ReplicationConfig,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    fetchers: Mutex<HashMap<(i32, usize), Arc<Shared>>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    problems: Arc<RateLimitedLog>,
    counters: ReplicationCounters,
    quotas: Arc<ReplicationQuotas>,
    log_dirs: Arc<LogDirHealth>,
}

impl FetcherManager {
    pub fn new(
        local_id: i32,
        config: ReplicationConfig,
        broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
        counters: ReplicationCounters,
        quotas: Arc<ReplicationQuotas>,
        log_dirs: Arc<LogDirHealth>,
    ) -> Self {
        FetcherManager {
            local_id,
            config,
            broker_epoch,
            counters,
            quotas,
            log_dirs,
            fetchers: Mutex::default(),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            problems: Arc::new(RateLimitedLog::new(Duration::from_secs(10))),
        }
    }

    /// Kafka's `getFetcherId`: which of the source broker's fetchers gets the partition.
    fn fetcher_index(&self, tp: &TopicPartition) -> usize {
        let hash = java_string_hash(&tp.topic).wrapping_mul(31).wrapping_add(tp.partition);
        (hash.unsigned_abs() as usize) % self.config.num_replica_fetchers
    }

    /// Starts copying `target` from `leader` at `address` (replacing any earlier entry for it).
    pub fn add_partition(&self, leader: i32, address: String, target: FetchTarget) {
        self.remove_partitions(std::slice::from_ref(&target.hosted.tp));
        let key = (leader, self.fetcher_index(&target.hosted.tp));
        let shared = {
            let mut fetchers = self.fetchers.lock();
            fetchers
                .entry(key)
                .or_insert_with(|| {
                    let shared = Arc::new(Shared {
                        leader,
                        address: Mutex::new(address.clone()),
                        partitions: Mutex::default(),
                        wake: Notify::new(),
                    });
                    let task = FetcherTask {
                        shared: shared.clone(),
                        local_id: self.local_id,
                        config: self.config.clone(),
                        broker_epoch: self.broker_epoch.clone(),
                        problems: self.problems.clone(),
                        counters: self.counters.clone(),
                        quotas: self.quotas.clone(),
                        log_dirs: self.log_dirs.clone(),
                        shutdown: self.shutdown.clone(),
                        client_id: format!("oxka-replica-fetcher-{}-{}-{}", self.local_id, key.0, key.1),
                    };
                    self.tasks.spawn(task.run());
                    shared
                })
                .clone()
        };
        *shared.address.lock() = address;
        shared.partitions.lock().insert(
            target.hosted.tp.clone(),
            Entry {
                target,
                delayed_until: None,
                failures: 0,
                caught_up: false,
            },
        );
        shared.wake.notify_one();
    }

    pub fn remove_partitions(&self, partitions: &[TopicPartition]) {
        if partitions.is_empty() {
            return;
        }
        for shared in self.fetchers.lock().values() {
            let mut owned = shared.partitions.lock();
            for tp in partitions {
                owned.remove(tp);
            }
        }
    }

    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

struct FetcherTask {
    shared: Arc<Shared>,
    local_id: i32,
    config: ReplicationConfig,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    problems: Arc<RateLimitedLog>,
    counters: ReplicationCounters,
    quotas: Arc<ReplicationQuotas>,
    log_dirs: Arc<LogDirHealth>,
    shutdown: CancellationToken,
    client_id: String,
}

impl FetcherTask {
    async fn run(self) {
        let mut connection: Option<ClientConnection> = None;
        let idle = Duration::from_millis(self.config.fetch_backoff_ms.max(1));
        let backoff = self.backoff();
        let mut failures = 0u32;
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            let Some((request, sent)) = self.build_request() else {
                // Nothing to fetch (or everything backed off): wait for work or the earliest retry.
                let until = self.earliest_retry().unwrap_or_else(|| Instant::now() + idle);
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = self.shared.wake.notified() => {}
                    _ = tokio::time::sleep_until(until.min(Instant::now() + idle)) => {}
                }
                continue;
            };
            let address = self.shared.address.lock().clone();
            if connection.as_ref().is_some_and(|c| c.address() != address) {
                connection = None;
            }
            if connection.is_none() {
                // Secured as the inter-broker listener is (TLS, SASL login); the files are read anew
                // on each connect so rotated certificates are picked up.
                let security = match crate::inter_broker::client_security(&self.config.inter_broker_security) {
                    Ok(security) => security,
                    Err(e) => {
                        self.report(&e);
                        failures = self.back_off(&backoff, failures).await;
                        continue;
                    }
                };
                let connected = tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    c = ClientConnection::connect_secured(&address, &self.client_id, CONNECT_TIMEOUT, self.max_response_bytes(), &security) => c,
                };
                match connected {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        self.report(&e.to_string());
                        failures = self.back_off(&backoff, failures).await;
                        continue;
                    }
                }
            }
            let timeout = Duration::from_millis(self.config.socket_timeout_ms);
            let conn = connection.as_mut().expect("connected above");
            let request = RequestKind::Fetch(request);
            let answer = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                answer = conn.call(ApiKey::Fetch, FETCH_VERSION, &request, timeout) => answer,
            };
            match answer {
                Ok(ResponseKind::Fetch(response)) if response.error_code == 0 => {
                    failures = 0;
                    let mut bytes = 0;
                    for topic in response.responses {
                        for p in topic.partitions {
                            bytes += self.process(&sent, topic.topic_id, p);
                        }
                    }
                    self.counters.fetched_from(self.shared.leader, bytes);
                }
                Ok(ResponseKind::Fetch(response)) => {
                    self.report(&format!(
                        "broker {} refused the fetch: {}",
                        self.shared.leader,
                        crate::util::describe_error(response.error_code)
                    ));
                    failures = self.back_off(&backoff, failures).await;
                }
                Ok(_) => {
                    connection = None;
                    self.report("the leader answered a Fetch with another response");
                    failures = self.back_off(&backoff, failures).await;
                }
                Err(e) => {
                    connection = None;
                    if !matches!(e, ClientError::TimedOut { .. }) || !self.shutdown.is_cancelled() {
                        self.report(&e.to_string());
                    }
                    failures = self.back_off(&backoff, failures).await;
                }
            }
        }
    }

    fn max_response_bytes(&self) -> usize {
        (self.config.fetch_response_max_bytes.max(self.config.fetch_max_bytes) as usize).saturating_add(1 << 20)
    }

    /// Retries back off from 50 ms (at most the configured backoff) to `replica.fetch.backoff.ms`.
    fn backoff(&self) -> ExponentialBackoff {
        ExponentialBackoff::new(
            Duration::from_millis(50),
            Duration::from_millis(self.config.fetch_backoff_ms.max(1)),
        )
    }

    /// Sleeps the backoff of attempt `failures`; returns the next attempt's number.
    async fn back_off(&self, backoff: &ExponentialBackoff, failures: u32) -> u32 {
        self.sleep(backoff.delay(failures)).await;
        failures.saturating_add(1)
    }

    /// When the first backed-off partition may be fetched again.
    fn earliest_retry(&self) -> Option<Instant> {
        self.shared
            .partitions
            .lock()
            .values()
            .filter_map(|e| e.delayed_until)
            .min()
    }

    async fn sleep(&self, d: Duration) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    fn report(&self, problem: &str) {
        let kind = format!("{}: {problem}", self.shared.leader);
        if let Some(count) = self.problems.should_log(&kind) {
            tracing::warn!(
                leader = self.shared.leader,
                "replica fetcher: {problem} ({count} in the last interval); retrying with backoff up to {} ms",
                self.config.fetch_backoff_ms
            );
        }
    }

    /// The Fetch for every partition that is not backed off, and what each was sent with.
    fn build_request(&self) -> Option<(FetchRequest, Sent)> {
        let now = Instant::now();
        let mut by_topic: BTreeMap<uuid::Uuid, Vec<FetchPartition>> = BTreeMap::new();
        let mut sent = HashMap::new();
        let quota = &self.quotas.follower;
        let over_quota = quota.is_quota_exceeded(crate::util::now_ms());
        {
            let mut partitions = self.shared.partitions.lock();
            for entry in partitions.values_mut() {
                if entry.delayed_until.is_some_and(|t| t > now) {
                    continue;
                }
                entry.delayed_until = None;
                let hosted = &entry.target.hosted;
                // Kafka's `shouldFollowerThrottle`: a throttled replica that has not caught up waits
                // while this broker's throttled fetching is above the limit.
                if over_quota && !entry.caught_up && quota.is_throttled(&hosted.tp) {
                    continue;
                }
                let log = hosted.log.log.lock();
                let fetch_offset = log.log_end_offset();
                let partition = FetchPartition::default()
                    .with_partition(hosted.tp.partition)
                    .with_current_leader_epoch(entry.target.leader_epoch)
                    .with_fetch_offset(fetch_offset)
                    .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                    .with_log_start_offset(log.log_start_offset())
                    .with_partition_max_bytes(self.config.fetch_max_bytes);
                drop(log);
                by_topic.entry(hosted.topic_id).or_default().push(partition);
                sent.insert(
                    (hosted.topic_id, hosted.tp.partition),
                    (entry.target.clone(), fetch_offset),
                );
            }
        }
        if sent.is_empty() {
            return None;
        }
        let request = FetchRequest::default()
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(self.local_id))
                    .with_replica_epoch((self.broker_epoch)()),
            )
            .with_max_wait_ms(self.config.fetch_wait_max_ms)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_response_max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic_id, partitions)| {
                        FetchTopic::default()
                            .with_topic_id(topic_id)
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        Some((request, sent))
    }

    /// One partition of a Fetch response; returns the record bytes appended.
    fn process(&self, sent: &Sent, topic_id: uuid::Uuid, p: PartitionData) -> u64 {
        let Some((target, fetch_offset)) = sent.get(&(topic_id, p.partition_index)) else {
            return 0;
        };
        let hosted = &target.hosted;
        // Only while the replica still follows the epoch this request was for.
        let role = hosted.role.lock();
        let still_following =
            matches!(*role, Role::Follower { leader_epoch, .. } if leader_epoch == target.leader_epoch);
        if !still_following {
            return 0;
        }
        let error = ResponseError::try_from_code(p.error_code);
        if error == Some(ResponseError::OffsetOutOfRange) && p.log_start_offset > *fetch_offset {
            // The leader no longer has what this replica needs next (retention or DeleteRecords moved
            // its log start past our end): start over at the leader's log start offset, as Kafka's
            // follower does.
            let mut log = hosted.log.log.lock();
            tracing::warn!(
                partition = %hosted.tp,
                log_end_offset = log.log_end_offset(),
                leader_log_start_offset = p.log_start_offset,
                "the leader's log now starts after this replica's end: starting over at the leader's log start"
            );
            if let Err(e) = log.truncate_fully_and_start_at(p.log_start_offset, crate::util::now_ms()) {
                drop(log);
                drop(role);
                self.partition_failure(
                    hosted,
                    &format!("cannot restart the log at {}: {e}", p.log_start_offset),
                );
            }
            return 0;
        }
        if p.error_code != 0 {
            drop(role);
            self.partition_error(hosted, error, p.error_code);
            return 0;
        }
        let mut log = hosted.log.log.lock();
        if log.log_end_offset() != *fetch_offset {
            // The log changed since the request was built (cannot happen with one fetcher per
            // partition, but never append at the wrong place).
            return 0;
        }
        if p.diverging_epoch.epoch >= 0 && p.diverging_epoch.end_offset >= 0 {
            let local = log.end_offset_for_epoch(p.diverging_epoch.epoch);
            let to = truncation_offset(
                p.diverging_epoch.epoch,
                p.diverging_epoch.end_offset,
                local,
                log.log_end_offset(),
            );
            tracing::info!(
                partition = %hosted.tp,
                leader_epoch = p.diverging_epoch.epoch,
                leader_end_offset = p.diverging_epoch.end_offset,
                from = log.log_end_offset(),
                to,
                "this replica's log diverges from the leader's: truncating"
            );
            if let Err(e) = log.truncate_to(to, crate::util::now_ms()) {
                drop(log);
                drop(role);
                self.partition_failure(hosted, &format!("cannot truncate to {to}: {e}"));
            }
            return 0;
        }
        let records: Bytes = p.records.unwrap_or_default();
        let mut appended = 0;
        if !records.is_empty() {
            if let Err(e) = log.append_as_follower(&records) {
                if e.is_io_failure() {
                    self.log_dirs.write_failed(log.dir(), &e);
                }
                drop(log);
                drop(role);
                self.partition_failure(hosted, &format!("cannot append what the leader sent: {e}"));
                return 0;
            }
            appended = records.len() as u64;
        }
        let high_watermark = p.high_watermark.min(log.log_end_offset());
        if high_watermark > log.high_watermark() {
            log.set_high_watermark(high_watermark);
        }
        let caught_up = log.log_end_offset() >= p.high_watermark;
        if p.log_start_offset > log.log_start_offset() {
            // Bounded by this replica's high watermark, as Kafka's follower does.
            let start = p.log_start_offset.min(log.high_watermark());
            if let Err(e) = log.maybe_increment_log_start_offset(start) {
                tracing::warn!(partition = %hosted.tp, "cannot move the log start offset to the leader's: {e}");
            }
        }
        drop(log);
        drop(role);
        if let Some(entry) = self.shared.partitions.lock().get_mut(&hosted.tp) {
            entry.caught_up = caught_up;
            entry.failures = 0;
        }
        if appended > 0 && self.quotas.follower.is_throttled(&hosted.tp) {
            self.quotas.follower.record(appended, crate::util::now_ms());
        }
        appended
    }

    fn partition_error(&self, hosted: &HostedPartition, error: Option<ResponseError>, code: i16) {
        match error {
            // Leadership moved or this broker's metadata is behind: the next image re-targets it.
            Some(
                ResponseError::NotLeaderOrFollower
                | ResponseError::FencedLeaderEpoch
                | ResponseError::UnknownLeaderEpoch
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::UnknownTopicId,
            ) => self.delay(hosted),
            _ => self.partition_failure(
                hosted,
                &format!("the leader answered {}", crate::util::describe_error(code)),
            ),
        }
    }

    fn partition_failure(&self, hosted: &HostedPartition, problem: &str) {
        let kind = format!("{}: {problem}", hosted.tp);
        if let Some(count) = self.problems.should_log(&kind) {
            tracing::error!(partition = %hosted.tp, leader = self.shared.leader, "replica fetcher: {problem} ({count} in the last interval)");
        }
        self.delay(hosted);
    }

    fn delay(&self, hosted: &HostedPartition) {
        if let Some(entry) = self.shared.partitions.lock().get_mut(&hosted.tp) {
            entry.delayed_until = Some(Instant::now() + self.backoff().delay(entry.failures));
            entry.failures = entry.failures.saturating_add(1);
        }
    }
}

/// Java's `String.hashCode` (over UTF-16 code units), as Kafka's fetcher assignment uses it.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_spread_over_fetchers_as_kafka_does() {
        assert_eq!(java_string_hash("topic"), 110546223);
        assert_eq!(java_string_hash(""), 0);
        let config = ReplicationConfig {
            num_replica_fetchers: 4,
            ..crate::config::ReplicationConfig::from_raw(&crate::config::RawConfig::from_text("", "t").unwrap(), &["P"])
                .unwrap()
        };
        let m = FetcherManager::new(
            1,
            config,
            Arc::new(|| 1),
            ReplicationCounters::default(),
            Arc::new(ReplicationQuotas::new(11, 1000)),
            Arc::new(LogDirHealth::new(Vec::new())),
        );
        let spread: std::collections::HashSet<usize> = (0..32)
            .map(|p| m.fetcher_index(&TopicPartition::new("topic", p)))
            .collect();
        assert_eq!(spread.len(), 4);
        // Kafka: abs(31 * "topic".hashCode() + 0) % 4.
        let expected = (110546223i32.wrapping_mul(31)).unsigned_abs() as usize % 4;
        assert_eq!(m.fetcher_index(&TopicPartition::new("topic", 0)), expected);
    }
}
