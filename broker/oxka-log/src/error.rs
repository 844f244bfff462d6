//! Errors of the log module: `LogError` (storage and lifecycle), `AppendError` (produce),
//! `ReadError` (fetch). Each variant says what failed and what to do; `kafka_error_code` maps the
//! ones a client should see to Kafka's protocol error codes (the API layer owns the responses).

use std::io;
use std::path::PathBuf;

/// Failures of the storage itself: files, directories, checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error while {action} ({path}): {source}; check the disk and the permissions of the log dir")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot move the log start offset of {dir} to {requested}: it is past the high watermark {high_watermark}"
    )]
    OffsetOutOfRange {
        dir: PathBuf,
        requested: i64,
        high_watermark: i64,
    },
    #[error("the log in {0} is closed or deleted; the partition must be reopened before use")]
    Closed(PathBuf),
    #[error("checkpoint file {path} is unreadable ({reason}); delete it to fall back to the segments' own offsets")]
    CorruptCheckpoint { path: PathBuf, reason: String },
    #[error("no log directory is configured; set log.dirs in server.properties")]
    NoLogDirs,
    #[error("partition {tp} exists in two log dirs ({first} and {second}); remove the stale copy")]
    DuplicateLog {
        tp: String,
        first: PathBuf,
        second: PathBuf,
    },
}

impl LogError {
    /// Helper for `map_err`: wraps an `io::Error` with the step and the file it concerned.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { action, path, source }
    }
}

/// Why a produce (append) was refused. Nothing was written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("corrupt record batch at byte {position} of the produce data: {reason}; the client should retry")]
    CorruptRecord { position: usize, reason: String },
    #[error("record batch at byte {position} has magic {magic}; only magic 2 (Kafka 0.11+ clients) is supported")]
    UnsupportedMessageFormat { position: usize, magic: i8 },
    #[error("invalid record batch at byte {position}: {reason}")]
    InvalidRecord { position: usize, reason: String },
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}; raise the topic's max.message.bytes or send smaller batches")]
    RecordTooLarge { size: usize, max: usize },
    #[error("produce data of {size} bytes exceeds segment.bytes {max}; raise segment.bytes or send less per request")]
    RecordListTooLarge { size: usize, max: u64 },
    #[error("batch timestamp {timestamp} is outside the range the topic accepts around now ({now}); fix the producer's clock or the message.timestamp.*.max.ms configs")]
    InvalidTimestamp { timestamp: i64, now: i64 },
    #[error("producer {producer_id} used epoch {epoch} but epoch {current_epoch} is current; the producer was fenced and must re-initialize")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    #[error("producer {producer_id} (epoch {epoch}) sent sequence {sequence} but {expected} was expected; the producer must reset its sequence")]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        expected: String,
    },
    /// An out-of-sequence batch while the partition's last write failed: most likely one of the
    /// requests in flight behind the one whose write failed. Kafka answers these KAFKA_STORAGE_ERROR
    /// (after an I/O error the log dir is offline and `LocalLog.maybeHandleIOException` refuses every
    /// append before sequences are checked); OUT_OF_ORDER_SEQUENCE_NUMBER would make librdkafka bump
    /// its producer epoch and re-send unacknowledged batches of all partitions under the new epoch,
    /// where no broker can recognise those already written.
    #[error("producer {producer_id} (epoch {epoch}) sent sequence {sequence} but {expected} was expected, and the last write to this partition failed; retry the failed batch first")]
    AfterFailedWrite {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        expected: String,
    },
    #[error("producer {producer_id} sent a non-transactional batch (offset {offset}) while its transaction is ongoing; it must end the transaction first")]
    InvalidTxnState { producer_id: i64, offset: i64 },
    #[error("end transaction marker for producer {producer_id} has coordinator epoch {coordinator_epoch} but {current} is current; a newer transaction coordinator took over")]
    TransactionCoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current: i32,
    },
    #[error("produce data held no complete record batch")]
    Empty,
    #[error("replicated batch at byte {position} starts at offset {base_offset} but offsets must increase: {expected_at_least} or later was expected; the leader's data is inconsistent")]
    OffsetsOutOfOrder {
        position: usize,
        base_offset: i64,
        expected_at_least: i64,
    },
    #[error("replicated data starts at offset {first_offset} but the log end offset is {log_end_offset}; the follower must truncate to (or fully restart at) the leader's offsets before appending")]
    UnexpectedAppendOffset {
        first_offset: i64,
        last_offset: i64,
        log_end_offset: i64,
    },
    #[error(transparent)]
    Storage(#[from] LogError),
}

impl AppendError {
    /// Whether the append failed in the storage itself (an I/O error: a full disk, a read-only or dying
    /// filesystem), as opposed to a refusal of what was sent.
    pub fn is_io_failure(&self) -> bool {
        matches!(self, AppendError::Storage(LogError::Io { .. }))
    }

    /// Kafka protocol error code for the produce response.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            AppendError::CorruptRecord { .. } | AppendError::Empty => 2, // CORRUPT_MESSAGE
            AppendError::RecordTooLarge { .. } => 10,                    // MESSAGE_TOO_LARGE
            AppendError::RecordListTooLarge { .. } => 18,                // RECORD_LIST_TOO_LARGE
            AppendError::InvalidTimestamp { .. } => 32,                  // INVALID_TIMESTAMP
            AppendError::UnsupportedMessageFormat { .. } => 43,          // UNSUPPORTED_FOR_MESSAGE_FORMAT
            AppendError::OutOfOrderSequence { .. } => 45,                // OUT_OF_ORDER_SEQUENCE_NUMBER
            AppendError::InvalidProducerEpoch { .. } => 47,              // INVALID_PRODUCER_EPOCH
            AppendError::InvalidRecord { .. } => 87,                     // INVALID_RECORD
            AppendError::InvalidTxnState { .. } => 48,                   // INVALID_TXN_STATE
            AppendError::TransactionCoordinatorFenced { .. } => 52,      // TRANSACTION_COORDINATOR_FENCED
            AppendError::Storage(_) | AppendError::AfterFailedWrite { .. } => 56, // KAFKA_STORAGE_ERROR
            // Follower appends only: no client sees these.
            AppendError::OffsetsOutOfOrder { .. } | AppendError::UnexpectedAppendOffset { .. } => -1, // UNKNOWN_SERVER_ERROR
        }
    }
}

/// Why a fetch could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside the log's range [{log_start_offset}, {log_end_offset}]; the consumer should reset its position")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error(transparent)]
    Storage(#[from] LogError),
}

impl ReadError {
    /// Kafka protocol error code for the fetch response.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ReadError::OffsetOutOfRange { .. } => 1, // OFFSET_OUT_OF_RANGE
            ReadError::Storage(_) => 56,             // KAFKA_STORAGE_ERROR
        }
    }
}
