//! ApiVersions: the table of APIs and versions this broker serves, derived from `api::SUPPORTED`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{RequestContext, SUPPORTED};
pub use crate::protocol::api_versions::{table, unsupported_version_response_for};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub fn handle(_ctx: &RequestContext<'_>, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table(SUPPORTED))
}

/// The broker's v0 answer to an ApiVersions request of a version we don't know (KIP-511).
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(table(SUPPORTED))
}
