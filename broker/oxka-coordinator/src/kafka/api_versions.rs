//! ApiVersions on `clientPort`: the coordinator's own table, derived from `SUPPORTED` (which `dispatch`
//! hands to `handle`).

use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::protocol::VersionRange;

use oxka_protocol::ApiSpec;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The table of `supported` (`kafka::SUPPORTED`, passed in by `dispatch` so this file does not import the
/// registry that lists it).
pub fn handle(supported: &[ApiSpec]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(oxka_protocol::api_versions::table(supported))
}
