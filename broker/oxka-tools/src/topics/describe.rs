//! `kafka-topics.sh --describe`: Metadata for the matching topics, DescribeConfigs for their
//! non-default configs, printed in Kafka 4.x's format:
//!
//! ```text
//! Topic: t\tTopicId: ...\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=1000
//! \tTopic: t\tPartition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\tElr: N/A\tLastKnownElr: N/A
//! ```
//!
//! Partitions come from DescribeTopicPartitions where the broker serves it, else from Metadata, which
//! carries no ELR, so `Elr`/`LastKnownElr` are `N/A` as Kafka's tool prints them then. Topics are printed sorted by name (Kafka's tool
//! prints them in hash-map order). With --under-replicated-partitions or --unavailable-partitions only
//! the matching partition lines are printed, without topic lines, as Kafka does.

use std::collections::BTreeSet;

use base64::Engine as _;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, MetadataResponse};
use kafka_protocol::protocol::StrBytes;

use super::partitions::{topic_views, PartitionView, TopicView};
use super::{ensure_found, matching_topics, Args};
use crate::admin::Admin;
use crate::error::{kafka_message, ToolError};

/// ConfigResource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
/// ConfigSource DEFAULT_CONFIG: a value nobody set, which Kafka's describe leaves out.
const DEFAULT_CONFIG: i8 = 5;

/// What to print, from the flags.
#[derive(Debug, Clone, Copy)]
pub struct Filters {
    under_replicated: bool,
    unavailable: bool,
    with_overrides: bool,
}

impl Filters {
    fn from_args(args: &Args) -> Filters {
        Filters {
            under_replicated: args.under_replicated_partitions,
            unavailable: args.unavailable_partitions,
            with_overrides: args.topics_with_overrides,
        }
    }

    /// Topic lines are printed unless only problem partitions are asked for.
    fn topic_lines(&self) -> bool {
        !self.under_replicated && !self.unavailable
    }

    /// Partition lines are printed unless only topics with overrides are asked for.
    fn partition_lines(&self) -> bool {
        !self.with_overrides
    }
}

pub async fn describe(admin: &mut Admin, args: &Args) -> Result<(), ToolError> {
    let all = admin.metadata(None).await?;
    let names = matching_topics(&all, args)?;
    ensure_found(&names, args)?;
    if names.is_empty() {
        return Ok(());
    }
    let topics = topic_views(admin, &names).await?;
    let filters = Filters::from_args(args);
    let configs = if filters.topic_lines() {
        Some(describe_configs(admin, &names).await?)
    } else {
        None
    };
    let live = live_brokers(&all);
    let mut out = String::new();
    for topic in &topics {
        let overrides = configs
            .as_ref()
            .map(|c| non_default_configs(c, &topic.name))
            .transpose()?
            .unwrap_or_default();
        out.push_str(&format_topic(topic, &overrides, &live, filters));
    }
    print!("{out}");
    Ok(())
}

async fn describe_configs(admin: &mut Admin, names: &[String]) -> Result<DescribeConfigsResponse, ToolError> {
    let resources = names
        .iter()
        .map(|n| {
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(n.clone()))
                .with_configuration_keys(None)
        })
        .collect();
    // v1 and later say where each value comes from (config_source).
    admin
        .send(DescribeConfigsRequest::default().with_resources(resources), 1)
        .await
}

/// `name=value` of the configs of `topic` that were set (any source but the default), in the
/// broker's order, joined by `,` as Kafka prints them.
fn non_default_configs(response: &DescribeConfigsResponse, topic: &str) -> Result<String, ToolError> {
    let Some(result) = response
        .results
        .iter()
        .find(|r| r.resource_type == TOPIC_RESOURCE && r.resource_name.as_str() == topic)
    else {
        return Ok(String::new());
    };
    if result.error_code != 0 {
        return Err(ToolError::Kafka(kafka_message(
            result.error_code,
            result.error_message.as_deref(),
        )));
    }
    let entries: Vec<String> = result
        .configs
        .iter()
        .filter(|c| c.config_source != DEFAULT_CONFIG)
        .map(|c| format!("{}={}", c.name.as_str(), c.value.as_deref().unwrap_or("null")))
        .collect();
    Ok(entries.join(","))
}

fn live_brokers(metadata: &MetadataResponse) -> BTreeSet<i32> {
    metadata.brokers.iter().map(|b| b.node_id.0).collect()
}

/// Kafka's text form of a topic id: URL-safe base64 without padding.
fn topic_id_text(id: &[u8; 16]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// One topic's lines, as the flags ask.
pub fn format_topic(topic: &TopicView, configs: &str, live: &BTreeSet<i32>, filters: Filters) -> String {
    let name = &topic.name;
    let mut partitions: Vec<&PartitionView> = topic.partitions.iter().collect();
    partitions.sort_by_key(|p| p.index);
    let mut out = String::new();
    if filters.topic_lines() && (!filters.with_overrides || !configs.is_empty()) {
        let replication_factor = partitions.first().map_or(0, |p| p.replicas.len());
        out.push_str(&format!("Topic: {name}"));
        if topic.id != [0; 16] {
            out.push_str(&format!("\tTopicId: {}", topic_id_text(&topic.id)));
        }
        out.push_str(&format!(
            "\tPartitionCount: {}\tReplicationFactor: {replication_factor}\tConfigs: {configs}\n",
            partitions.len()
        ));
    }
    if !filters.partition_lines() {
        return out;
    }
    let joined = |v: &[i32]| v.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    for p in partitions {
        let under_replicated = p.isr.len() < p.replicas.len();
        let unavailable = p.leader < 0 || !live.contains(&p.leader);
        let wanted = filters.topic_lines()
            || (filters.under_replicated && under_replicated)
            || (filters.unavailable && unavailable);
        if !wanted {
            continue;
        }
        let leader = if p.leader < 0 {
            "none".to_string()
        } else {
            p.leader.to_string()
        };
        let elr = match &p.elr {
            Some((elr, last_known)) => format!("Elr: {}\tLastKnownElr: {}", joined(elr), joined(last_known)),
            None => "Elr: N/A\tLastKnownElr: N/A".to_string(),
        };
        out.push_str(&format!(
            "\tTopic: {name}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}\t{elr}\n",
            p.index,
            joined(&p.replicas),
            joined(&p.isr)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(index: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionView {
        PartitionView {
            index,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            elr: None,
        }
    }

    fn topic() -> TopicView {
        TopicView {
            name: "t".to_string(),
            id: [0; 16],
            partitions: vec![partition(1, -1, &[2, 0], &[]), partition(0, 0, &[0, 1], &[0])],
        }
    }

    const ALL: Filters = Filters {
        under_replicated: false,
        unavailable: false,
        with_overrides: false,
    };

    #[test]
    fn describe_prints_kafkas_lines() {
        let text = format_topic(&topic(), "retention.ms=1000", &[0, 1, 2].into(), ALL);
        assert_eq!(
            text,
            "Topic: t\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: retention.ms=1000\n\
             \tTopic: t\tPartition: 0\tLeader: 0\tReplicas: 0,1\tIsr: 0\tElr: N/A\tLastKnownElr: N/A\n\
             \tTopic: t\tPartition: 1\tLeader: none\tReplicas: 2,0\tIsr: \tElr: N/A\tLastKnownElr: N/A\n"
        );
        let mut with_elr = topic();
        with_elr.partitions.truncate(1);
        with_elr.partitions[0].elr = Some((vec![2], vec![]));
        with_elr.id[15] = 1;
        let text = format_topic(&with_elr, "", &[0, 1, 2].into(), ALL);
        assert!(
            text.starts_with("Topic: t\tTopicId: AAAAAAAAAAAAAAAAAAAAAQ\tPartitionCount: 1"),
            "{text}"
        );
        assert!(text.ends_with("\tIsr: \tElr: 2\tLastKnownElr: \n"), "{text}");
    }

    #[test]
    fn problem_filters_print_only_matching_partitions() {
        let under = Filters {
            under_replicated: true,
            ..ALL
        };
        let text = format_topic(&topic(), "", &[0, 1, 2].into(), under);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains("PartitionCount"));
        let unavailable = Filters {
            unavailable: true,
            ..ALL
        };
        let text = format_topic(&topic(), "", &[1, 2].into(), unavailable);
        assert_eq!(
            text.lines().count(),
            2,
            "leader 0 is not live, partition 1 has none: {text}"
        );
    }
}
