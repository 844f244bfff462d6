//! `TopicError`: why a topic (or broker config) operation failed, as the Kafka error code the client gets
//! plus a message for it. Made by the broker's topic administration (`admin.rs`) and by the broker when
//! its logs cannot follow a change (`broker.rs`); the API handlers put it into their responses.

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

/// Why a topic operation failed, as a Kafka error code plus a message for the client.
#[derive(Debug, Clone)]
pub struct TopicError {
    pub error: ResponseError,
    pub message: String,
}

impl TopicError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        TopicError {
            error,
            message: message.into(),
        }
    }

    pub(crate) fn from_code(code: i16, message: Option<&StrBytes>) -> Self {
        let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
        let message = message.map(|m| m.to_string()).unwrap_or_else(|| error.to_string());
        TopicError { error, message }
    }

    /// A controller answer of the wrong kind.
    pub(crate) fn unexpected(response: &kafka_protocol::messages::ResponseKind) -> Self {
        TopicError::new(
            ResponseError::UnknownServerError,
            format!("unexpected answer from the controller: {response:?}"),
        )
    }

    pub(crate) fn unreachable(problem: String) -> Self {
        TopicError::new(
            ResponseError::RequestTimedOut,
            format!("the controller did not answer: {problem}"),
        )
    }
}

/// A log-dir failure while making the logs follow a topic change, answered as KAFKA_STORAGE_ERROR
/// (logged by the caller, once per interval: `logs_behind`).
pub(crate) fn storage_error(e: impl std::fmt::Display) -> TopicError {
    TopicError::new(ResponseError::KafkaStorageError, e.to_string())
}
