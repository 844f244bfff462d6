//! The time a request keeps a thread busy (Kafka's request-handler time, which request quotas of
//! KIP-124 measure): the time spent inside the handler's `poll` calls, so a request parked in a wait
//! (a long-polling Fetch, a JoinGroup waiting for its rebalance, an acks=all Produce waiting for its
//! replicas) counts only what it computed, not how long it waited.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// `inner`, and the time spent polling it.
pub struct Busy<F> {
    inner: Pin<Box<F>>,
    busy: Duration,
}

impl<F: Future> Busy<F> {
    pub fn new(inner: F) -> Busy<F> {
        Busy {
            inner: Box::pin(inner),
            busy: Duration::ZERO,
        }
    }
}

impl<F: Future> Future for Busy<F> {
    type Output = (F::Output, Duration);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let started = Instant::now();
        let polled = this.inner.as_mut().poll(cx);
        this.busy += started.elapsed();
        polled.map(|output| (output, this.busy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_is_not_busy_and_computing_is() {
        let ((), waited) = Busy::new(tokio::time::sleep(Duration::from_millis(200))).await;
        assert!(waited < Duration::from_millis(50), "{waited:?}");
        let ((), computed) = Busy::new(async { std::thread::sleep(Duration::from_millis(30)) }).await;
        assert!(computed >= Duration::from_millis(30), "{computed:?}");
    }
}
