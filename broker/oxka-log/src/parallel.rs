//! `for_each`: runs a function over a slice with a few scoped threads. For work that mostly waits on
//! the disk (creating, closing or checkpointing thousands of partitions, each a few fsyncs), which a
//! disk serves in parallel while one thread would wait for one fsync at a time.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Calls `f` on every item, on up to `max_threads` threads (one per `per_thread` items, at least
/// one), each taking the next item not yet taken. Returns when every call has returned.
pub fn for_each<T: Sync>(items: &[T], max_threads: usize, per_thread: usize, f: impl Fn(&T) + Sync) {
    let threads = max_threads.min(items.len().div_ceil(per_thread.max(1))).max(1);
    if threads == 1 {
        items.iter().for_each(f);
        return;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(item);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn every_item_is_visited_once_whatever_the_thread_count() {
        for (n, threads, per) in [(0, 8, 16), (1, 8, 16), (100, 8, 16), (1000, 3, 1), (5, 1, 1)] {
            let items: Vec<usize> = (0..n).collect();
            let seen = Mutex::new(Vec::new());
            for_each(&items, threads, per, |i| seen.lock().unwrap().push(*i));
            let seen = seen.into_inner().unwrap();
            assert_eq!(seen.len(), n);
            assert_eq!(seen.iter().copied().collect::<HashSet<_>>().len(), n);
        }
    }

    #[test]
    fn waiting_work_overlaps() {
        let items: Vec<u64> = vec![50; 8];
        let started = std::time::Instant::now();
        for_each(&items, 8, 1, |ms| {
            std::thread::sleep(std::time::Duration::from_millis(*ms))
        });
        assert!(
            started.elapsed() < std::time::Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }
}
