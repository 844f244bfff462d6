//! The Kafka protocol as oxka speaks it, on both listeners (the broker's `api` and a coordinator's
//! `clientPort`, `coordinator::kafka`) and as a client (replica fetchers, the controller channel): a
//! served API and its versions (`ApiSpec`), request decoding and response encoding (`codec`), the
//! ApiVersions table of a registry (`api_versions`), and why a request cannot be answered
//! (`RequestError`); the wire around them in `network` (frames, the client connection, the request
//! memory budget, a minimal HTTP responder for `/metrics`); SCRAM's mechanisms and key derivations (`scram`); and `util`, the small helpers every layer
//! above shares (time, retry backoff, rate-limited logging, Kafka error codes as log lines name them).
//!
//! Its own crate, above only `oxka-config` and the `kafka-protocol` message codecs: the log,
//! coordinator and broker build on it and it knows none of them. The broker re-exports it as
//! `oxka_broker::protocol` (and `network`, `util`).

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

pub mod api_versions;
pub mod codec;
pub mod network;
pub mod scram;
pub mod util;

/// An API a listener serves (the broker's `api::SUPPORTED`, a coordinator's `coordinator::kafka::SUPPORTED`)
/// and the versions it accepts.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    pub versions: VersionRange,
}

/// A request a listener cannot answer; the connection is closed, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request of {0} bytes is too short to hold a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{api:?} version {version} is not supported (supported: {supported})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        supported: String,
    },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed { api: ApiKey, version: i16, reason: String },
    #[error("cannot encode the {api:?} v{version} response: {reason}")]
    Encode { api: ApiKey, version: i16, reason: String },
    #[error("the {api:?} request failed inside the broker: {reason}")]
    Internal { api: ApiKey, reason: String },
}
