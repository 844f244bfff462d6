//! `MemoryBudget`: the broker's bound on in-flight request and response bytes, sized by
//! `KAFKA_HEAP_OPTS` `-Xmx`. A connection that would exceed it waits (backpressure) instead of failing.
//!
//! Permits are counted in KiB so a 1 GiB budget fits comfortably in a semaphore. A `MemoryPermit` is
//! held from the moment a request's size is known until its response has been written.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const UNIT: u64 = 1024;

#[derive(Clone, Debug)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total_units: u64,
}

/// Bytes reserved from the budget; returned on drop.
#[derive(Debug)]
pub struct MemoryPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryPermit {
    pub fn none() -> Self {
        MemoryPermit { _permit: None }
    }
}

impl MemoryBudget {
    pub fn new(total_bytes: u64) -> Self {
        let total_units = (total_bytes / UNIT).max(1);
        MemoryBudget {
            semaphore: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_units * UNIT
    }

    /// Bytes currently reserved.
    pub fn used_bytes(&self) -> u64 {
        (self.total_units - self.semaphore.available_permits() as u64) * UNIT
    }

    /// Waits until `bytes` fit in the budget. A reservation larger than the whole budget is clamped to
    /// the whole budget, so it waits for everything else to drain rather than waiting forever.
    pub async fn reserve(&self, bytes: usize) -> MemoryPermit {
        let units = (bytes as u64)
            .div_ceil(UNIT)
            .clamp(1, self.total_units)
            .min(u32::MAX as u64);
        let permit = self.semaphore.clone().acquire_many_owned(units as u32).await.ok();
        MemoryPermit { _permit: permit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_room() {
        let budget = MemoryBudget::new(4 * UNIT);
        let a = budget.reserve(3 * UNIT as usize).await;
        assert_eq!(budget.used_bytes(), 3 * UNIT);
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(2 * UNIT as usize)).await;
        assert!(waiting.is_err(), "a reservation beyond the budget must wait");
        drop(a);
        let _b = budget.reserve(2 * UNIT as usize).await;
        // Larger than the whole budget: clamped, so it can still proceed once everything drains.
        drop(_b);
        let _c = budget.reserve(100 * UNIT as usize).await;
        assert_eq!(budget.used_bytes(), 4 * UNIT);
    }
}
