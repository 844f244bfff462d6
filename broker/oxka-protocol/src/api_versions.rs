//! The ApiVersions table of a registry of served APIs (the broker's or a coordinator's), and the v0
//! answer KIP-511 prescribes for an ApiVersions request of a version the listener does not know.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::ApiSpec;

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

/// The v0 answer to an ApiVersions request of a version we don't know (KIP-511), for a registry.
pub fn unsupported_version_response_for(specs: &[ApiSpec]) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(table(specs))
}
