//! `oxka tool broker-api-versions` (kafka-broker-api-versions.sh): every broker of the cluster and the
//! API versions it serves, in the listing Kafka's tool prints:
//!
//! ```text
//! host:port (id: 0 rack: null isFenced: false) -> (
//!     Produce(0): 3 to 12 [usable: 12],   (each API line starts with a tab)
//!     ...
//! )
//! ```
//!
//! "usable" is the highest version both the broker and this tool speak; this tool's versions are the
//! `kafka-protocol` crate's, so the column can differ from the Java tool's where the two clients differ.
//! Brokers are listed by id (Kafka's tool prints them in hash-map order).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use crate::admin::Admin;
use crate::error::ToolError;
use crate::settings::ClientSettings;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-broker-api-versions.sh",
    about = "Print the API versions every broker of the cluster serves (Kafka's kafka-broker-api-versions.sh)"
)]
pub struct Args {
    /// REQUIRED: the server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server", value_name = "server(s) to use for bootstrapping")]
    bootstrap_server: String,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config", value_name = "command config property file")]
    command_config: Option<PathBuf>,
}

/// API keys the `kafka-protocol` crate knows that only controllers serve (KRaft and inter-broker
/// RPCs). Kafka's tool lists every client-facing API (ApiKeys.clientApis()) even when a broker does
/// not serve it (as UNSUPPORTED); these are not client-facing, so they are not listed unless served.
const CONTROLLER_ONLY: &[ApiKey] = &[
    ApiKey::Vote,
    ApiKey::BeginQuorumEpoch,
    ApiKey::EndQuorumEpoch,
    ApiKey::AlterPartition,
    ApiKey::Envelope,
    ApiKey::FetchSnapshot,
    ApiKey::BrokerRegistration,
    ApiKey::BrokerHeartbeat,
    ApiKey::AllocateProducerIds,
    ApiKey::ControllerRegistration,
    ApiKey::AssignReplicasToDirs,
    ApiKey::UpdateRaftVoter,
];

pub async fn run(args: Args) -> Result<(), ToolError> {
    let settings = ClientSettings::from_flags(&args.bootstrap_server, args.command_config.as_deref())?;
    let mut bootstrap = Admin::bootstrap(&settings).await?;
    let metadata = bootstrap.metadata(Some(Vec::new())).await?;
    let mut brokers: Vec<_> = metadata.brokers.iter().collect();
    brokers.sort_by_key(|b| b.node_id.0);
    let mut out = String::new();
    for broker in brokers {
        let address = format!("{}:{}", broker.host.as_str(), broker.port);
        let rack = broker.rack.as_ref().map_or("null", |r| r.as_str());
        let node = format!("{address} (id: {} rack: {rack} isFenced: false)", broker.node_id.0);
        match Admin::connect(&address, &settings).await {
            Ok(admin) => out.push_str(&format!("{node} -> {}\n", listing(admin.api_versions()))),
            Err(e) => out.push_str(&format!("{node} -> ERROR: {e}\n")),
        }
    }
    print!("{out}");
    Ok(())
}

/// One broker's listing, `(` to `)`, as Kafka's NodeApiVersions prints it with line breaks.
pub fn listing(response: &ApiVersionsResponse) -> String {
    let mut lines: BTreeMap<i16, String> = BTreeMap::new();
    for served in &response.api_keys {
        lines.insert(
            served.api_key,
            served_line(served.api_key, served.min_version, served.max_version),
        );
    }
    for api in ApiKey::iter().filter(|api| !CONTROLLER_ONLY.contains(api)) {
        lines
            .entry(api as i16)
            .or_insert_with(|| format!("{}({}): UNSUPPORTED", name(api), api as i16));
    }
    let body: Vec<String> = lines.into_values().collect();
    format!("(\n\t{}\n)", body.join(",\n\t"))
}

fn served_line(key: i16, min: i16, max: i16) -> String {
    let versions = if min == max {
        min.to_string()
    } else {
        format!("{min} to {max}")
    };
    let Ok(api) = ApiKey::try_from(key) else {
        return format!("UNKNOWN({key}): {versions}");
    };
    let ours = api.valid_versions();
    let usable = if ours.max < min {
        "[unusable: node too new]".to_string()
    } else if max < ours.min {
        "[unusable: node too old]".to_string()
    } else {
        format!("[usable: {}]", ours.max.min(max))
    };
    format!("{}({key}): {versions} {usable}", name(api))
}

/// The API's name as Kafka's ApiKeys prints it (the crate's variant names are Kafka's message names).
fn name(api: ApiKey) -> String {
    format!("{api:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn served(key: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    }

    #[test]
    fn listing_follows_kafkas_format() {
        let response = ApiVersionsResponse::default().with_api_keys(vec![
            served(ApiKey::Fetch, 4, 99),
            served(ApiKey::Produce, 3, 12),
            served(ApiKey::ListPartitionReassignments, 0, 0),
            ApiVersion::default()
                .with_api_key(999)
                .with_min_version(0)
                .with_max_version(1),
        ]);
        let text = listing(&response);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "(");
        assert_eq!(lines[1], "\tProduce(0): 3 to 12 [usable: 12],");
        let fetch_max = ApiKey::Fetch.valid_versions().max;
        assert_eq!(lines[2], format!("\tFetch(1): 4 to 99 [usable: {fetch_max}],"));
        assert_eq!(lines[3], "\tListOffsets(2): UNSUPPORTED,");
        assert!(
            text.contains("\tListPartitionReassignments(46): 0 [usable: 0],\n"),
            "{text}"
        );
        assert!(
            !text.contains("BrokerHeartbeat"),
            "controller-only APIs are not listed: {text}"
        );
        assert!(text.ends_with("\tUNKNOWN(999): 0 to 1\n)"), "{text}");
    }

    #[test]
    fn versions_outside_ours_are_unusable() {
        let ours = ApiKey::Metadata.valid_versions();
        let too_new = served_line(ApiKey::Metadata as i16, ours.max + 1, ours.max + 2);
        assert!(too_new.ends_with("[unusable: node too new]"), "{too_new}");
    }
}
