//! `kafka-consumer-groups.sh --delete` (DeleteGroups, one group at a time to its coordinator) and
//! `--delete-offsets` (OffsetDelete of one group's offsets for `--topic t` or `--topic t:0,1`), printed
//! as Kafka's tool prints them. A group or partition that could not be deleted prints Kafka's lines and
//! fails the command (exit 1; Kafka's tool exits 0 after printing them).

use std::collections::BTreeMap;

use super::client::{GroupClient, GroupError, GROUP_ID_NOT_FOUND};
use super::reset::parse_topic;
use crate::error::ToolError;

/// Kafka's placeholder for an empty column.
const MISSING: &str = "-";

/// `--delete`: Kafka's success line, or its error block naming each group that could not be deleted.
pub async fn delete_groups(client: &GroupClient, groups: &[String]) -> Result<(), ToolError> {
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for group in groups {
        match client.delete_group(group).await? {
            None => deleted.push(format!("'{group}'")),
            Some(e) => failed.push((group.clone(), e)),
        }
    }
    if failed.is_empty() {
        println!(
            "Deletion of requested consumer groups ({}) was successful.",
            deleted.join(", ")
        );
        return Ok(());
    }
    let mut out = String::from("\nError: Deletion of some consumer groups failed:\n");
    for (group, e) in &failed {
        out.push_str(&format!(
            "* Group '{group}' could not be deleted due to: {}\n",
            java_error(e)
        ));
    }
    if !deleted.is_empty() {
        out.push_str(&format!(
            "\nThese consumer groups were deleted successfully: {}\n",
            deleted.join(", ")
        ));
    }
    print!("{out}");
    Err(ToolError::Reported)
}

/// `--delete-offsets`: Kafka's verdict line, then a TOPIC/PARTITION/STATUS row per partition (and one
/// per topic the cluster does not know), sorted as Kafka's (by topic name and partition, as text).
pub async fn delete_offsets(client: &GroupClient, group: &str, topics: &[String]) -> Result<(), ToolError> {
    let mut partitions = Vec::new();
    let mut rows: BTreeMap<(String, i32), Option<GroupError>> = BTreeMap::new();
    for arg in topics {
        match parse_topic(arg)? {
            (topic, Some(ids)) => partitions.extend(ids.into_iter().map(|p| (topic.clone(), p))),
            (topic, None) => match client
                .metadata
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic) && t.error_code == 0)
            {
                Some(t) => partitions.extend(t.partitions.iter().map(|p| (topic.clone(), p.partition_index))),
                None => {
                    let unknown = GroupError {
                        code: 3,
                        message: crate::error::kafka_message(3, None),
                    };
                    rows.insert((topic, -1), Some(unknown));
                }
            },
        }
    }
    partitions.sort();
    partitions.dedup();
    let (group_error, results) = client.delete_offsets(group, &partitions).await?;
    let verdict = match &group_error {
        None => results
            .values()
            .flatten()
            .next()
            .map(|_| "Encountered some partition-level error, see the follow-up details.".to_string()),
        Some(e) if matches!(e.code, 24 | 30 | 68 | GROUP_ID_NOT_FOUND) => Some(e.message.clone()),
        Some(e) => Some(format!("Encountered some unknown error: {}", error_name(e.code))),
    };
    let mut out = match &verdict {
        None => format!("Request succeeded for deleting offsets from group {group}.\n"),
        Some(message) => format!("\nError: {message}\n"),
    };
    for tp in partitions {
        let error = match &group_error {
            Some(e) => Some(e.clone()),
            None => results.get(&tp).cloned().flatten(),
        };
        rows.insert(tp, error);
    }
    let width = rows.keys().map(|(t, _)| t.len()).fold(15, usize::max);
    let mut sorted: Vec<_> = rows.iter().collect();
    sorted.sort_by_key(|((topic, partition), _)| format!("{topic}{partition}"));
    let line = |t: &str, p: &str, s: &str| format!("\n{t:<width$} {p:<10} {s:<15}");
    out.push_str(&line("TOPIC", "PARTITION", "STATUS"));
    let failed = verdict.is_some() || rows.values().any(Option::is_some);
    for ((topic, partition), error) in sorted {
        let partition = if *partition >= 0 {
            partition.to_string()
        } else {
            MISSING.to_string()
        };
        let status = match error {
            None => "Successful".to_string(),
            Some(e) => format!("Error: {}", java_error(e)),
        };
        out.push_str(&line(topic, &partition, &status));
    }
    out.push('\n');
    print!("{out}");
    if failed {
        Err(ToolError::Reported)
    } else {
        Ok(())
    }
}

/// A group error as Kafka's tool prints an exception: `org.apache.kafka.common.errors.<Class>: message`.
pub fn java_error(e: &GroupError) -> String {
    let class = match e.code {
        3 => "UnknownTopicOrPartitionException",
        15 => "CoordinatorNotAvailableException",
        16 => "NotCoordinatorException",
        24 => "InvalidGroupIdException",
        29 => "TopicAuthorizationException",
        30 => "GroupAuthorizationException",
        68 => "GroupNotEmptyException",
        GROUP_ID_NOT_FOUND => "GroupIdNotFoundException",
        86 => "GroupSubscribedToTopicException",
        _ => return e.message.clone(),
    };
    format!("org.apache.kafka.common.errors.{class}: {}", e.message)
}

/// Kafka's `Errors` constant name of a code (`COORDINATOR_NOT_AVAILABLE`).
fn error_name(code: i16) -> String {
    let Some(e) = kafka_protocol::error::ResponseError::try_from_code(code) else {
        return "NONE".to_string();
    };
    let mut name = String::new();
    for (i, c) in e.to_string().chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_as_kafkas_exceptions() {
        let e = GroupError {
            code: GROUP_ID_NOT_FOUND,
            message: "Group nope not found.".into(),
        };
        assert_eq!(
            java_error(&e),
            "org.apache.kafka.common.errors.GroupIdNotFoundException: Group nope not found."
        );
        assert_eq!(error_name(15), "COORDINATOR_NOT_AVAILABLE");
    }
}
