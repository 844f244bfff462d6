//! The producer ids this broker hands out (InitProducerId, transactional or not), from blocks the
//! controller allocates (AllocateProducerIds, KIP-730; the counter is in the metadata log, so no id is
//! handed out twice across brokers, leaders and restarts).
//!
//! As Kafka's `RPCProducerIdManager`, the next block is requested in the background once 90% of the
//! current one is used, and here also as soon as the broker has joined the cluster: so a producer's
//! InitProducerId does not wait for the controller, which may be changing Raft leader (a coordinator
//! roll) just then. Only a broker that used up both blocks, or whose background requests all failed,
//! asks the controller while the producer waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{AllocateProducerIdsRequest, ApiKey, BrokerId, RequestKind, ResponseKind};

use crate::cluster::{ControllerChannel, Lane, Session};
use crate::topic_error::TopicError;
use oxka_protocol::util::RateLimitedLog;

/// How long one AllocateProducerIds request may take.
const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The ids left to hand out: the current block and the next one, when it has arrived. Pure.
#[derive(Debug, Default, Clone, PartialEq)]
struct Blocks {
    /// The next id of the current block and its end (exclusive).
    next: i64,
    end: i64,
    /// How many ids the current block had (for the 90% threshold).
    len: i64,
    /// The block fetched ahead: (start, end exclusive).
    ahead: Option<(i64, i64)>,
}

impl Blocks {
    /// Takes the next id, moving to the block fetched ahead when the current one is used up; None when
    /// there is neither.
    fn take(&mut self) -> Option<i64> {
        if self.next >= self.end {
            let (start, end) = self.ahead.take()?;
            (self.next, self.end, self.len) = (start, end, end - start);
        }
        let id = self.next;
        self.next += 1;
        Some(id)
    }

    /// Adds a block the controller allocated: it becomes the current one if that is used up, else the
    /// one ahead (a block that arrives while one is already ahead is dropped: its ids are never used,
    /// which is harmless).
    fn add(&mut self, start: i64, end: i64) {
        if self.next >= self.end && self.ahead.is_none() {
            (self.next, self.end, self.len) = (start, end, end - start);
        } else if self.ahead.is_none() {
            self.ahead = Some((start, end));
        }
    }

    /// Whether to ask for the next block now: none is ahead and at most 10% of the current block is
    /// left (Kafka's prefetch threshold) or there is no current block at all.
    fn wants_next(&self) -> bool {
        self.ahead.is_none() && (self.end - self.next) * 10 <= self.len
    }
}

/// The producer-id blocks of one broker (a clone shares them: the background fetch holds one).
#[derive(Clone)]
pub struct ProducerIds {
    broker_id: i32,
    controller: Arc<ControllerChannel>,
    session: Arc<Session>,
    blocks: Arc<tokio::sync::Mutex<Blocks>>,
    /// A background request for the next block is in flight.
    fetching: Arc<AtomicBool>,
    problems: Arc<RateLimitedLog>,
}

impl ProducerIds {
    pub fn new(broker_id: i32, controller: Arc<ControllerChannel>, session: Arc<Session>) -> Self {
        ProducerIds {
            broker_id,
            controller,
            session,
            blocks: Arc::default(),
            fetching: Arc::default(),
            problems: Arc::new(RateLimitedLog::new(Duration::from_secs(30))),
        }
    }

    /// Hands out a fresh producer id; asks the controller for a block while the caller waits only when
    /// none is left here.
    pub async fn allocate(&self) -> Result<i64, TopicError> {
        let mut blocks = self.blocks.lock().await;
        let id = match blocks.take() {
            Some(id) => id,
            None => {
                let (start, end) = self.fetch().await?;
                blocks.add(start, end);
                blocks.take().expect("a block just added has ids")
            }
        };
        if blocks.wants_next() {
            self.prefetch();
        }
        Ok(id)
    }

    /// Requests the next block in the background, unless one is already requested. Called once the
    /// broker has joined the cluster and whenever 90% of the current block is used.
    pub fn prefetch(&self) {
        if self.fetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            match this.fetch().await {
                Ok((start, end)) => {
                    let mut blocks = this.blocks.lock().await;
                    if blocks.wants_next() {
                        blocks.add(start, end);
                    }
                }
                Err(e) => {
                    if let Some(count) = this.problems.should_log("prefetch") {
                        tracing::warn!(
                            "cannot fetch the next block of producer ids ahead of time: {}; the next \
                             InitProducerId asks again{}",
                            e.message,
                            this.problems.repeats(count)
                        );
                    }
                }
            }
            this.fetching.store(false, Ordering::Release);
        });
    }

    /// One AllocateProducerIds request: the block's (start, end exclusive).
    async fn fetch(&self) -> Result<(i64, i64), TopicError> {
        let request = AllocateProducerIdsRequest::default()
            .with_broker_id(BrokerId(self.broker_id))
            .with_broker_epoch(self.session.epoch());
        let response = self
            .controller
            .send(
                Lane::Admin,
                ApiKey::AllocateProducerIds,
                0,
                RequestKind::AllocateProducerIds(request),
                ALLOCATE_TIMEOUT,
            )
            .await
            .map_err(TopicError::unreachable)?;
        let ResponseKind::AllocateProducerIds(r) = response else {
            return Err(TopicError::unexpected(&response));
        };
        if r.error_code != 0 {
            return Err(TopicError::from_code(r.error_code, None));
        }
        let start = r.producer_id_start.0;
        Ok((start, start + i64::from(r.producer_id_len.max(0))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_current_block_then_from_the_one_fetched_ahead() {
        let mut b = Blocks::default();
        assert_eq!(b.take(), None, "no block yet");
        assert!(b.wants_next());
        b.add(0, 10);
        assert!(!b.wants_next(), "a whole block is left");
        let first: Vec<i64> = (0..9).map(|_| b.take().unwrap()).collect();
        assert_eq!(first, (0..9).collect::<Vec<_>>());
        assert!(b.wants_next(), "one id (10%) left: time to ask for the next block");
        b.add(5000, 5010);
        assert!(!b.wants_next(), "the next block is ahead");
        assert_eq!(b.take(), Some(9));
        assert_eq!(
            b.take(),
            Some(5000),
            "the block fetched ahead follows without a request"
        );
        assert_eq!(b.ahead, None);
    }

    #[test]
    fn a_block_arriving_while_another_is_ahead_is_dropped_and_no_id_is_given_twice() {
        let mut b = Blocks::default();
        b.add(0, 2);
        b.add(1000, 1002);
        b.add(2000, 2002);
        let ids: Vec<i64> = std::iter::from_fn(|| b.take()).collect();
        assert_eq!(ids, vec![0, 1, 1000, 1001]);
    }
}
