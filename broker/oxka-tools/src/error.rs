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
/// code's standard description (Kafka's words for the codes the tools print, the code's name for the
/// others).
pub fn kafka_message(code: i16, message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => match (
            description(code),
            kafka_protocol::error::ResponseError::try_from_code(code),
        ) {
            (Some(text), _) => text.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => "no error".to_string(),
        },
    }
}

/// The first failure among a response's per-entity results, as the error Kafka's admin client would
/// raise for it; `Ok` when every code is 0.
pub fn first_failure<'a>(results: impl IntoIterator<Item = (i16, Option<&'a str>)>) -> Result<(), ToolError> {
    match results.into_iter().find(|(code, _)| *code != 0) {
        Some((code, message)) => Err(ToolError::Kafka(kafka_message(code, message))),
        None => Ok(()),
    }
}

/// Kafka's description of an error code (`Errors.java`), for the codes the tools print.
fn description(code: i16) -> Option<&'static str> {
    Some(match code {
        1 => "The requested offset is not within the range of offsets maintained by the server.",
        3 => "This server does not host this topic-partition.",
        5 => "There is no leader for this topic-partition as we are in the middle of a leadership election.",
        6 => "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.",
        7 => "The request timed out.",
        14 => "The coordinator is loading and hence can't process requests.",
        15 => "The coordinator is not available.",
        16 => "This is not the correct coordinator.",
        24 => "The configured groupId is invalid.",
        25 => "The coordinator is not aware of this member.",
        27 => "The group is rebalancing, so a rejoin is needed.",
        30 => "Group authorization failed.",
        56 => "Disk error when trying to access log file on the disk.",
        68 => "The group is not empty.",
        69 => "The group id does not exist.",
        86 => "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.",
        _ => return None,
    })
}
