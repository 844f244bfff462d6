//! What can stop a tool, as one sentence for the person who ran it. Every variant exits with status 1,
//! as Kafka's tools do; `Reported` is an error the tool has already printed in Kafka's own words.

use oxka_protocol::network::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Bad or missing flags (the message names the flag and what to do).
    #[error("{0}")]
    Usage(String),
    #[error("cannot use --command-config {path}: {reason}")]
    CommandConfig { path: String, reason: String },
    #[error("cannot reach any bootstrap server: {0}")]
    Bootstrap(String),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("the broker at {address} does not serve {api} in a version this tool speaks ({detail})")]
    UnsupportedApi {
        address: String,
        api: String,
        detail: String,
    },
    /// A Kafka error the cluster answered with: its message (or Kafka's description of its code).
    #[error("{0}")]
    Kafka(String),
    /// Already printed, as Kafka's tool prints it; only the exit status is left.
    #[error("")]
    Reported,
}

/// The message Kafka's clients show for an error code: the broker's message if it sent one, else the
/// code's standard description.
pub fn kafka_message(code: i16, message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => match kafka_protocol::error::ResponseError::try_from_code(code) {
            Some(e) => e.to_string(),
            None => "no error".to_string(),
        },
    }
}
