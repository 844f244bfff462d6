//! `SharePartition`: one share group's view of one topic partition (KIP-932), as Kafka's
//! `SharePartition.java` keeps it. Pure: the runtime (`share_coordinator.rs`) owns one per
//! (group, topic id, partition) behind its lock and passes the clock in.
//!
//! The share-partition start offset (SPSO) is the first offset not yet settled; the end offset
//! (SPEO) is the next offset never acquired. Every offset in between is in flight: `Available`
//! (may be acquired), `Acquired` (by one member, until its acquisition lock expires), or settled:
//! `Acknowledged` (accepted) or `Archived` (rejected, a gap, or past the delivery count limit).
//! Settled offsets at the start are dropped as the SPSO moves past them.

use std::collections::BTreeMap;

/// A record's delivery state (Kafka's `RecordState`; the numbers are the persisted `DeliveryState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired,
    Acknowledged,
    Archived,
}

impl RecordState {
    /// Kafka's persisted code: 0 available, 1 acquired, 2 acknowledged, 4 archived.
    pub fn code(self) -> i8 {
        match self {
            RecordState::Available => 0,
            RecordState::Acquired => 1,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<RecordState> {
        match code {
            0 => Some(RecordState::Available),
            1 => Some(RecordState::Acquired),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }

    fn settled(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// An acknowledgement type as ShareFetch/ShareAcknowledge carry it (KIP-932).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckType {
    /// 0: the offset holds no record (a control record, a compacted gap).
    Gap,
    /// 1: processed.
    Accept,
    /// 2: give it back for another delivery.
    Release,
    /// 3: unprocessable, never deliver again.
    Reject,
}

impl AckType {
    pub fn from_code(code: i8) -> Option<AckType> {
        match code {
            0 => Some(AckType::Gap),
            1 => Some(AckType::Accept),
            2 => Some(AckType::Release),
            3 => Some(AckType::Reject),
            _ => None,
        }
    }
}

/// One in-flight offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub state: RecordState,
    pub delivery_count: i16,
    /// The member holding the acquisition lock (`Acquired` only).
    pub member: Option<String>,
    /// When the acquisition lock expires (`Acquired` only), ms since the epoch.
    pub lock_expires_ms: i64,
}

/// A range of offsets acquired by one fetch with the same delivery count (ShareFetch's
/// `AcquiredRecords`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

/// Why an acknowledgement was refused (Kafka answers INVALID_RECORD_STATE or INVALID_REQUEST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckError {
    /// An offset is not acquired by this member (never fetched, already acknowledged, its lock
    /// expired and it went to someone else).
    InvalidRecordState(String),
    /// A malformed batch (an unknown type, types not matching the range).
    InvalidRequest(String),
}

/// The limits a share partition follows (`group.share.*`).
#[derive(Debug, Clone, Copy)]
pub struct ShareLimits {
    /// `group.share.record.lock.duration.ms`.
    pub lock_duration_ms: i64,
    /// `group.share.delivery.count.limit`.
    pub delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`: in-flight offsets beyond which no new ones are
    /// acquired.
    pub max_in_flight: usize,
}

/// A batch of the log as a fetch read it: its offsets and whether it is a control batch (whose
/// offsets are never delivered; they settle as archived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub control: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharePartition {
    start_offset: i64,
    end_offset: i64,
    records: BTreeMap<i64, InFlight>,
}

impl SharePartition {
    /// A share partition starting at `start_offset` with nothing in flight (its first fetch, with
    /// `share.auto.offset.reset`'s offset).
    pub fn new(start_offset: i64) -> SharePartition {
        SharePartition {
            start_offset,
            end_offset: start_offset,
            records: BTreeMap::new(),
        }
    }

    /// Rebuilds a share partition from its persisted state: the SPSO and the in-flight offsets
    /// (acquired ones come back available: their locks did not survive).
    pub fn restore(start_offset: i64, batches: &[(i64, i64, RecordState, i16)]) -> SharePartition {
        let mut sp = SharePartition::new(start_offset);
        for &(first, last, state, delivery_count) in batches {
            let state = if state == RecordState::Acquired {
                RecordState::Available
            } else {
                state
            };
            for offset in first.max(start_offset)..=last {
                sp.records.insert(
                    offset,
                    InFlight {
                        state,
                        delivery_count,
                        member: None,
                        lock_expires_ms: 0,
                    },
                );
                sp.end_offset = sp.end_offset.max(offset + 1);
            }
        }
        sp.advance_start();
        sp
    }

    /// SPSO: the first offset not yet settled.
    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// SPEO: the next offset never acquired.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    pub fn record(&self, offset: i64) -> Option<&InFlight> {
        self.records.get(&offset)
    }

    /// The in-flight offsets as ranges of equal state and delivery count, for persisting:
    /// `(first, last, state, delivery count)`.
    pub fn state_batches(&self) -> Vec<(i64, i64, RecordState, i16)> {
        let mut out: Vec<(i64, i64, RecordState, i16)> = Vec::new();
        for (&offset, r) in &self.records {
            let state = if r.state == RecordState::Acquired {
                RecordState::Available
            } else {
                r.state
            };
            match out.last_mut() {
                Some(last) if last.1 + 1 == offset && last.2 == state && last.3 == r.delivery_count => last.1 = offset,
                _ => out.push((offset, offset, state, r.delivery_count)),
            }
        }
        out
    }

    /// Where a fetch should start reading the log: the first available offset (a redelivery), else
    /// the SPEO.
    pub fn next_fetch_offset(&self) -> i64 {
        self.records
            .iter()
            .find(|(_, r)| r.state == RecordState::Available)
            .map_or(self.end_offset, |(o, _)| *o)
    }

    /// The log's start offset moved past the SPSO (retention, DeleteRecords): what is gone is gone.
    pub fn follow_log_start(&mut self, log_start_offset: i64) {
        if log_start_offset > self.start_offset {
            self.records = self.records.split_off(&log_start_offset);
            self.start_offset = log_start_offset;
            self.end_offset = self.end_offset.max(log_start_offset);
            self.advance_start();
        }
    }

    /// Acquires for `member` the available offsets among `batches` (which a fetch read from the
    /// log), at most about `max_records` of them: first the available in-flight ones (redeliveries),
    /// then new ones from the SPEO on. Each acquisition counts a delivery and takes a lock until
    /// `now_ms + lock_duration_ms`.
    pub fn acquire(
        &mut self,
        member: &str,
        batches: &[LogBatch],
        max_records: usize,
        now_ms: i64,
        limits: ShareLimits,
    ) -> Vec<Acquired> {
        let mut acquired: Vec<Acquired> = Vec::new();
        let lock_expires_ms = now_ms.saturating_add(limits.lock_duration_ms);
        let take = |offset: i64, delivery_count: i16, acquired: &mut Vec<Acquired>| match acquired.last_mut() {
            Some(last) if last.last_offset + 1 == offset && last.delivery_count == delivery_count => {
                last.last_offset = offset
            }
            _ => acquired.push(Acquired {
                first_offset: offset,
                last_offset: offset,
                delivery_count,
            }),
        };
        let mut count = 0usize;
        for batch in batches {
            for offset in batch.base_offset..=batch.last_offset {
                if count >= max_records {
                    return acquired;
                }
                if offset < self.start_offset {
                    continue;
                }
                if offset < self.end_offset {
                    let Some(r) = self.records.get_mut(&offset) else {
                        continue;
                    };
                    if r.state != RecordState::Available {
                        continue;
                    }
                    r.state = RecordState::Acquired;
                    r.delivery_count = r.delivery_count.saturating_add(1);
                    r.member = Some(member.to_string());
                    r.lock_expires_ms = lock_expires_ms;
                    take(offset, r.delivery_count, &mut acquired);
                    count += 1;
                    continue;
                }
                if offset > self.end_offset {
                    // A gap in the log (compaction removed whole batches): nothing to deliver there.
                    self.end_offset = offset;
                }
                if batch.control {
                    // A transaction marker is no record for the consumer: settled at once.
                    self.records.insert(
                        offset,
                        InFlight {
                            state: RecordState::Archived,
                            delivery_count: 0,
                            member: None,
                            lock_expires_ms: 0,
                        },
                    );
                    self.end_offset = offset + 1;
                    continue;
                }
                if self.in_flight() >= limits.max_in_flight {
                    return acquired;
                }
                self.records.insert(
                    offset,
                    InFlight {
                        state: RecordState::Acquired,
                        delivery_count: 1,
                        member: Some(member.to_string()),
                        lock_expires_ms,
                    },
                );
                self.end_offset = offset + 1;
                take(offset, 1, &mut acquired);
                count += 1;
            }
        }
        self.advance_start();
        acquired
    }

    /// Offsets in flight (not yet settled).
    pub fn in_flight(&self) -> usize {
        self.records.values().filter(|r| !r.state.settled()).count()
    }

    /// Applies one acknowledgement batch of `member`: `types` has one type for the whole range or
    /// one per offset. All or nothing: every offset must be acquired by `member`.
    pub fn acknowledge(
        &mut self,
        member: &str,
        first_offset: i64,
        last_offset: i64,
        types: &[i8],
        limits: ShareLimits,
    ) -> Result<(), AckError> {
        if last_offset < first_offset {
            return Err(AckError::InvalidRequest(format!(
                "Acknowledgement batch {first_offset}..{last_offset} ends before it starts."
            )));
        }
        let len = (last_offset - first_offset + 1) as usize;
        if types.len() != 1 && types.len() != len {
            return Err(AckError::InvalidRequest(format!(
                "Acknowledgement batch {first_offset}..{last_offset} has {} types for {len} offsets.",
                types.len()
            )));
        }
        let mut parsed = Vec::with_capacity(types.len());
        for &t in types {
            parsed.push(
                AckType::from_code(t)
                    .ok_or_else(|| AckError::InvalidRequest(format!("Unknown acknowledge type {t}.")))?,
            );
        }
        for offset in first_offset..=last_offset {
            let held = self
                .records
                .get(&offset)
                .is_some_and(|r| r.state == RecordState::Acquired && r.member.as_deref() == Some(member));
            if !held {
                return Err(AckError::InvalidRecordState(format!(
                    "Offset {offset} is not acquired by member {member}."
                )));
            }
        }
        for (i, offset) in (first_offset..=last_offset).enumerate() {
            let ack = if parsed.len() == 1 { parsed[0] } else { parsed[i] };
            let r = self.records.get_mut(&offset).expect("checked above");
            r.member = None;
            r.state = match ack {
                AckType::Accept => RecordState::Acknowledged,
                AckType::Reject | AckType::Gap => RecordState::Archived,
                AckType::Release => available_or_archived(r.delivery_count, limits),
            };
        }
        self.advance_start();
        Ok(())
    }

    /// Expired acquisition locks: their offsets become available again (or archived once they
    /// reached the delivery count limit). Returns how many were released.
    pub fn expire_locks(&mut self, now_ms: i64, limits: ShareLimits) -> usize {
        self.release_where(limits, |r| r.lock_expires_ms <= now_ms)
    }

    /// A member left (or its share session closed): what it holds becomes available again.
    pub fn release_member(&mut self, member: &str, limits: ShareLimits) -> usize {
        self.release_where(limits, |r| r.member.as_deref() == Some(member))
    }

    fn release_where(&mut self, limits: ShareLimits, mut which: impl FnMut(&InFlight) -> bool) -> usize {
        let mut released = 0;
        for r in self.records.values_mut() {
            if r.state == RecordState::Acquired && which(r) {
                r.state = available_or_archived(r.delivery_count, limits);
                r.member = None;
                released += 1;
            }
        }
        if released > 0 {
            self.advance_start();
        }
        released
    }

    /// The earliest lock expiry in flight, if any (when the runtime must look again).
    pub fn next_lock_expiry(&self) -> Option<i64> {
        self.records
            .values()
            .filter(|r| r.state == RecordState::Acquired)
            .map(|r| r.lock_expires_ms)
            .min()
    }

    /// Moves the SPSO past the settled offsets at the start.
    fn advance_start(&mut self) {
        while let Some((&offset, r)) = self.records.first_key_value() {
            if !r.state.settled() {
                self.start_offset = offset;
                return;
            }
            self.records.remove(&offset);
        }
        self.start_offset = self.end_offset;
    }
}

fn available_or_archived(delivery_count: i16, limits: ShareLimits) -> RecordState {
    if delivery_count >= limits.delivery_count_limit {
        RecordState::Archived
    } else {
        RecordState::Available
    }
}
