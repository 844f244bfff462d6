//! MetadataFetch: how a broker follows the metadata log. It is oxka's own API (key 30000, outside
//! Kafka's range, and not listed in ApiVersions), the counterpart of KRaft brokers fetching
//! `__cluster_metadata`. The answer is the whole image the first time, then a delta from the broker's offset
//! (`image_delta`): the topics changed since, and the rest of the image only when it changed.
//!
//! A broker asks with the last offset it has (`after`); the member answers as soon as its applied index
//! passes it, or after `max_wait_ms` (at most 30 s) with no image. Any member may answer, leader or
//! follower, from what it has applied: the broker only ever accepts an update whose offset is larger than
//! the one it holds, so an answer from a member that lags can never move it backwards. The wire format
//! (request and response types, frames) is in `metadata_fetch_codec`, which both sides share.

use std::future::Future;
use std::time::Duration;

use super::metadata_fetch_codec::{ImageUpdate, MetadataFetchRequest};
use crate::image_delta::ImageDelta;
use crate::state_machine::SharedState;

/// The longest a fetch waits, whatever it asks: long enough to make polling cheap, short enough that a
/// broker notices a dead connection and that a member's shutdown is never held up for long.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Waits up to max_wait_ms (capped at 30 s) until the applied index is > after; `image` is Some iff
/// offset > after.
pub async fn fetch(state: &SharedState, request: &MetadataFetchRequest) -> ImageUpdate {
    fetch_until(state, request, std::future::pending()).await
}

/// `fetch` that also stops waiting when `stop` completes (the member is shutting down), answering with
/// what it has then.
pub async fn fetch_until(
    state: &SharedState,
    request: &MetadataFetchRequest,
    stop: impl Future<Output = ()>,
) -> ImageUpdate {
    let wait = longest_wait(request);
    let mut applied = state.subscribe_applied();
    let newer = applied.wait_for(|&index| index > request.after);
    tokio::select! {
        _ = tokio::time::timeout(wait, newer) => {}
        _ = stop => {}
    }
    current(state, request)
}

/// How long `request` may wait: what it asks, at most `MAX_WAIT`.
fn longest_wait(request: &MetadataFetchRequest) -> Duration {
    Duration::from_millis(request.max_wait_ms).min(MAX_WAIT)
}

/// The offset and what the broker lacks of it (a delta from its offset when it takes deltas and the
/// change log reaches back to it, else the whole image), read under one lock so they always match.
fn current(state: &SharedState, request: &MetadataFetchRequest) -> ImageUpdate {
    let data = state.data.read();
    let offset = data.last_applied.map(|l| l.index).unwrap_or(0);
    let mut update = ImageUpdate {
        offset,
        image: None,
        delta: None,
    };
    if offset <= request.after {
        return update;
    }
    let delta = (request.deltas && request.after > 0)
        .then(|| ImageDelta::since(&data.image, &data.changes, request.after))
        .flatten();
    match delta {
        Some(delta) => update.delta = Some(delta),
        None => update.image = Some(data.image.clone()),
    }
    update
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    use super::*;
    use crate::metrics::CoordinatorMetrics;
    use crate::state_machine::MetadataStateMachine;
    use crate::{Entry, MetadataCommand};

    fn entry(index: u64, name: &str) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(MetadataCommand::DeleteTopic { name: name.into() }),
        }
    }

    fn open(dir: &std::path::Path) -> MetadataStateMachine {
        MetadataStateMachine::open(dir.to_path_buf(), Arc::new(CoordinatorMetrics::new()), false).unwrap()
    }

    #[tokio::test]
    async fn a_fetch_answers_at_once_when_the_broker_is_behind_and_waits_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let state = sm.shared();
        // Nothing applied and nothing new: waits the whole time, then answers without an image.
        let started = Instant::now();
        let update = fetch(
            &state,
            &MetadataFetchRequest {
                after: 0,
                max_wait_ms: 100,
                deltas: false,
            },
        )
        .await;
        assert_eq!(
            update,
            ImageUpdate {
                offset: 0,
                image: None,
                delta: None
            }
        );
        assert!(started.elapsed() >= Duration::from_millis(100));

        sm.apply([entry(1, "a"), entry(2, "b")]).await.unwrap();
        let started = Instant::now();
        let update = fetch(
            &state,
            &MetadataFetchRequest {
                after: 0,
                max_wait_ms: 10_000,
                deltas: false,
            },
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(1), "behind: answered at once");
        assert_eq!(update.offset, 2);
        assert!(update.image.is_some());

        // Caught up: the fetch waits until the next entry is applied, then returns it.
        let waiting = {
            let state = state.clone();
            tokio::spawn(async move {
                fetch(
                    &state,
                    &MetadataFetchRequest {
                        after: 2,
                        max_wait_ms: 10_000,
                        deltas: false,
                    },
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a caught-up broker waits");
        sm.apply([entry(3, "c")]).await.unwrap();
        let update = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the apply")
            .unwrap();
        assert_eq!(update.offset, 3);
        assert_eq!(update.image, Some(state.image()));

        // A broker ahead of this member (it heard from a more up-to-date one) gets no image.
        let update = fetch(
            &state,
            &MetadataFetchRequest {
                after: 9,
                max_wait_ms: 10,
                deltas: false,
            },
        )
        .await;
        assert_eq!(
            update,
            ImageUpdate {
                offset: 3,
                image: None,
                delta: None
            }
        );
    }

    #[tokio::test]
    async fn a_broker_that_takes_deltas_gets_what_changed_after_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let state = sm.shared();
        sm.apply([entry(1, "a"), entry(2, "b")]).await.unwrap();
        let ask = |after| MetadataFetchRequest {
            after,
            max_wait_ms: 0,
            deltas: true,
        };
        // Nothing yet: the whole image, even when deltas are welcome.
        let first = fetch(&state, &ask(0)).await;
        assert!(first.image.is_some() && first.delta.is_none());
        // From offset 1: a delta naming the one topic command after it, and no image.
        let update = fetch(&state, &ask(1)).await;
        assert_eq!(update.offset, 2);
        assert_eq!(update.image, None);
        let delta = update.delta.expect("a delta");
        assert_eq!(delta.deleted_topics, ["b"], "topic 'b' is not in the image");
        assert!(delta.topics.is_empty() && delta.cluster.is_none());
        // A broker that does not take deltas still gets the image.
        let update = fetch(
            &state,
            &MetadataFetchRequest {
                deltas: false,
                ..ask(1)
            },
        )
        .await;
        assert!(update.image.is_some() && update.delta.is_none());
        // A reopened member's log starts at its snapshot: older offsets get the image.
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let reopened = open(dir.path()).shared();
        let update = fetch(&reopened, &ask(1)).await;
        assert!(update.image.is_some() && update.delta.is_none());
    }

    #[tokio::test]
    async fn the_wait_is_capped_and_stops_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let state = open(dir.path()).shared();
        let request = MetadataFetchRequest {
            after: 0,
            max_wait_ms: u64::MAX,
            deltas: false,
        };
        let started = Instant::now();
        let stop = tokio::time::sleep(Duration::from_millis(50));
        let update = fetch_until(&state, &request, stop).await;
        assert_eq!(
            update,
            ImageUpdate {
                offset: 0,
                image: None,
                delta: None
            }
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(longest_wait(&request), MAX_WAIT);
        assert_eq!(
            longest_wait(&MetadataFetchRequest {
                after: 0,
                max_wait_ms: 250,
                deltas: false,
            }),
            Duration::from_millis(250)
        );
    }
}
