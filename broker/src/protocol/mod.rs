//! The Kafka protocol as both listeners speak it (the broker's `api` and a coordinator's `clientPort`,
//! `coordinator::kafka`): a served API and its versions (`ApiSpec`), request decoding and response
//! encoding (`codec`), the ApiVersions table of a registry (`api_versions`), and why a request cannot
//! be answered (`RequestError`). Below both listeners; it uses only `network::frame`.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

pub mod api_versions;
pub mod codec;

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
}
