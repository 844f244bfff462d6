//! ApiVersions: the table of APIs and versions this broker serves, derived from `api::SUPPORTED`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{ApiSpec, RequestContext, SUPPORTED};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The ApiVersions entries for a registry of served APIs (the broker's, or the coordinator's).
pub fn table(specs: &[ApiSpec]) -> Vec<ApiVersion> {
    specs
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.versions.min)
                .with_max_version(s.versions.max)
        })
        .collect()
}

pub fn handle(_ctx: &RequestContext<'_>, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table(SUPPORTED))
}

/// The v0 answer to an ApiVersions request of a version we don't know (KIP-511), for a registry.
pub fn unsupported_version_response_for(specs: &[ApiSpec]) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(table(specs))
}

/// The broker's v0 answer to an ApiVersions request of a version we don't know (KIP-511).
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(table(SUPPORTED))
}
