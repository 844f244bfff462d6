//! ApiVersions on `clientPort`: the coordinator's own table, derived from `SUPPORTED`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::protocol::VersionRange;

use super::SUPPORTED;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(crate::protocol::api_versions::table(SUPPORTED))
}

/// The v0 answer to an ApiVersions version we don't know (KIP-511).
pub fn unsupported_version_response() -> ApiVersionsResponse {
    handle().with_error_code(ResponseError::UnsupportedVersion.code())
}
