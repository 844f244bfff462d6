//! ApiVersions: the table of APIs and versions this broker serves, derived from `api::SUPPORTED`
//! (which `dispatch` hands to `handle`).

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{ApiSpec, RequestContext};
pub use crate::protocol::api_versions::{table, unsupported_version_response_for};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The table of `supported`, the registry the request came through (`api::SUPPORTED`, passed in by
/// `dispatch` so this file does not import the registry that lists it).
pub fn handle(_ctx: &RequestContext<'_>, _request: ApiVersionsRequest, supported: &[ApiSpec]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table(supported))
}
