//! `kafka-consumer-groups.sh --describe`: the offsets view (default, `--offsets`; `--verbose`: the
//! committed leader epoch), `--members` (`--verbose`: assignments) and `--state` (`--verbose`: epochs),
//! in Kafka 4.x's column formats. Every
//! group is described first (a group that does not exist fails the whole command, as in Kafka's tool),
//! then printed sorted by group id. Within a group, rows are printed member by member (most partitions
//! first, as Kafka's), each member's partitions sorted by topic and partition, then committed partitions
//! no member owns; Kafka's tool prints a member's partitions in hash-map order.

use std::collections::BTreeMap;

use super::client::{Committed, GroupClient, GroupView};
use crate::error::ToolError;
use crate::offsets::{list_offsets, PartitionOffset, LATEST};

/// Kafka's placeholder for an empty column.
const MISSING: &str = "-";

/// Which view `--describe` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Offsets { verbose: bool },
    Members { verbose: bool },
    State { verbose: bool },
}

/// One row of the offsets view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub leader_epoch: Option<i32>,
    pub offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub consumer_id: String,
    pub host: String,
    pub client_id: String,
}

impl OffsetRow {
    fn lag(&self) -> Option<i64> {
        match (self.offset, self.log_end_offset) {
            (Some(offset), Some(end)) if offset != -1 => Some(end - offset),
            _ => None,
        }
    }
}

pub async fn describe(client: &GroupClient, groups: &[String], view: View) -> Result<(), ToolError> {
    let mut described = BTreeMap::new();
    for group in groups {
        match client.describe_group(group).await? {
            Ok(g) => {
                described.insert(group.clone(), g);
            }
            Err(e) => return Err(ToolError::Kafka(super::delete::java_error(&e))),
        }
    }
    let mut out = String::new();
    for group in described.values() {
        match view {
            View::Offsets { verbose } => {
                let committed = client.committed_offsets(&group.group_id).await?;
                let rows = offset_rows(client, group, &committed).await?;
                if announce_state(group, rows.len(), &mut out) {
                    out.push_str(&format_offsets(&rows, verbose));
                }
            }
            View::Members { verbose } => {
                announce_state(group, group.members.len(), &mut out);
                out.push_str(&format_members(group, verbose));
            }
            View::State { verbose } => {
                if announce_state(group, 1, &mut out) {
                    out.push_str(&format_state(group, verbose));
                }
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// Kafka's notice for a group's state (on stderr; written in order with stdout, so flush first),
/// and whether its rows are printed.
fn announce_state(group: &GroupView, rows: usize, out: &mut String) -> bool {
    let notice = match group.state.as_str() {
        "Empty" => Some(format!("\nConsumer group '{}' has no active members.", group.group_id)),
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => Some(format!(
            "\nWarning: Consumer group '{}' is rebalancing.",
            group.group_id
        )),
        _ => None,
    };
    if let Some(notice) = notice {
        print!("{out}");
        out.clear();
        eprintln!("{notice}");
    }
    rows > 0
}

/// The offsets view's rows of one group: assigned partitions (members with most partitions first), then
/// partitions with a committed offset that no member owns.
async fn offset_rows(
    client: &GroupClient,
    group: &GroupView,
    committed: &BTreeMap<(String, i32), Committed>,
) -> Result<Vec<OffsetRow>, ToolError> {
    let mut members: Vec<_> = group.members.iter().filter(|m| !m.assignment.is_empty()).collect();
    members.sort_by_key(|m| std::cmp::Reverse(m.assignment.len()));
    let mut owned: Vec<((String, i32), [String; 3])> = Vec::new();
    for m in members {
        let mut partitions = m.assignment.clone();
        partitions.sort();
        for tp in partitions {
            owned.push((tp, [m.member_id.clone(), m.host.clone(), m.client_id.clone()]));
        }
    }
    let unowned: Vec<(String, i32)> = committed
        .keys()
        .filter(|tp| !owned.iter().any(|(o, _)| o == *tp))
        .cloned()
        .collect();
    let missing = || [MISSING.to_string(), MISSING.to_string(), MISSING.to_string()];
    let all: Vec<((String, i32), [String; 3])> = owned
        .into_iter()
        .chain(unowned.into_iter().map(|tp| (tp, missing())))
        .collect();
    let partitions: Vec<(String, i32)> = all.iter().map(|(tp, _)| tp.clone()).collect();
    let ends = list_offsets(&client.settings, &client.metadata, &partitions, LATEST).await?;
    Ok(all
        .into_iter()
        .map(|((topic, partition), [consumer_id, host, client_id])| {
            let log_end_offset = match ends.get(&(topic.clone(), partition)) {
                Some(PartitionOffset::Offset(o)) => Some(*o),
                _ => None,
            };
            let committed = committed.get(&(topic.clone(), partition));
            OffsetRow {
                group: group.group_id.clone(),
                leader_epoch: committed.and_then(|c| c.leader_epoch),
                offset: committed.map(|c| c.offset),
                topic,
                partition,
                log_end_offset,
                consumer_id,
                host,
                client_id,
            }
        })
        .collect())
}

fn or_missing<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| MISSING.to_string(), |v| v.to_string())
}

/// Kafka's offsets table: a blank line, the header, the rows (`verbose`: LEADER-EPOCH after PARTITION).
pub fn format_offsets(rows: &[OffsetRow], verbose: bool) -> String {
    let width = |f: fn(&OffsetRow) -> usize| rows.iter().map(f).fold(15, usize::max);
    let (g, t) = (width(|r| r.group.len()), width(|r| r.topic.len()));
    let (c, h) = (width(|r| r.consumer_id.len()), width(|r| r.host.len()));
    let line = |cols: [&str; 10]| {
        let epoch = if verbose {
            format!("{:<15} ", cols[3])
        } else {
            String::new()
        };
        format!(
            "\n{:<g$} {:<t$} {:<10} {epoch}{:<15} {:<15} {:<15} {:<c$} {:<h$} {}",
            cols[0], cols[1], cols[2], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9]
        )
    };
    let mut out = line([
        "GROUP",
        "TOPIC",
        "PARTITION",
        "LEADER-EPOCH",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    for r in rows {
        out.push_str(&line([
            &r.group,
            &r.topic,
            &r.partition.to_string(),
            &or_missing(r.leader_epoch),
            &or_missing(r.offset),
            &or_missing(r.log_end_offset),
            &or_missing(r.lag()),
            &r.consumer_id,
            &r.host,
            &r.client_id,
        ]));
    }
    out.push('\n');
    out
}

/// `t1:0,1;t2:0` (topics sorted, partitions sorted), or `-`.
pub fn assignment_text(assignment: &[(String, i32)]) -> String {
    if assignment.is_empty() {
        return MISSING.to_string();
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in assignment {
        by_topic.entry(topic).or_default().push(*partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort();
            let joined: Vec<String> = partitions.iter().map(|p| p.to_string()).collect();
            format!("{topic}:{}", joined.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Kafka's members table (GROUP-INSTANCE-ID only when a member has one; with `verbose` the epochs and
/// assignments, `-` for what classic groups do not have).
pub fn format_members(group: &GroupView, verbose: bool) -> String {
    let m = &group.members;
    let width = |min: usize, f: &dyn Fn(&super::client::MemberView) -> usize| m.iter().map(f).fold(min, usize::max);
    let g = m.iter().map(|_| group.group_id.len()).fold(15, usize::max);
    let c = width(15, &|x| x.member_id.len());
    let i = width(17, &|x| x.group_instance_id.len());
    let h = width(15, &|x| x.host.len());
    let l = width(15, &|x| x.client_id.len());
    let assignments: Vec<String> = m.iter().map(|x| assignment_text(&x.assignment)).collect();
    let ca = assignments.iter().map(String::len).fold(20, usize::max);
    let ta = 20;
    let with_instance = m.iter().any(|x| !x.group_instance_id.is_empty());
    let base = |cols: [&str; 6]| {
        if with_instance {
            format!(
                "{:<g$} {:<c$} {:<i$} {:<h$} {:<l$} {:<15} ",
                cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
            )
        } else {
            format!(
                "{:<g$} {:<c$} {:<h$} {:<l$} {:<15} ",
                cols[0], cols[1], cols[3], cols[4], cols[5]
            )
        }
    };
    let extra = |cols: [&str; 4]| format!("{:<15} {:<ca$} {:<15} {:<ta$}", cols[0], cols[1], cols[2], cols[3]);
    let mut out = String::from("\n");
    out.push_str(&base([
        "GROUP",
        "CONSUMER-ID",
        "GROUP-INSTANCE-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
    ]));
    if verbose {
        out.push_str(&extra([
            "CURRENT-EPOCH",
            "CURRENT-ASSIGNMENT",
            "TARGET-EPOCH",
            "TARGET-ASSIGNMENT",
        ]));
    }
    out.push('\n');
    for (member, assignment) in m.iter().zip(&assignments) {
        out.push_str(&base([
            &group.group_id,
            &member.member_id,
            &member.group_instance_id,
            &member.host,
            &member.client_id,
            &member.assignment.len().to_string(),
        ]));
        if verbose {
            out.push_str(&extra([MISSING, assignment, MISSING, MISSING]));
        }
        out.push('\n');
    }
    out
}

/// Kafka's state table (with `verbose`, the epochs KIP-848 groups have, `-` for classic groups).
pub fn format_state(group: &GroupView, verbose: bool) -> String {
    let g = group.group_id.len().max(15);
    let c = group.coordinator.len().max(25);
    let strategy = if group.protocol.is_empty() {
        MISSING
    } else {
        group.protocol.as_str()
    };
    let members = group.members.len().to_string();
    if verbose {
        let line = |cols: [&str; 7]| {
            format!(
                "\n{:<g$} {:<c$} {:<20} {:<20} {:<15} {:<25} {}",
                cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6]
            )
        };
        let mut out = line([
            "GROUP",
            "COORDINATOR (ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "GROUP-EPOCH",
            "TARGET-ASSIGNMENT-EPOCH",
            "#MEMBERS",
        ]);
        out.push_str(&line([
            &group.group_id,
            &group.coordinator,
            strategy,
            &group.state,
            MISSING,
            MISSING,
            &members,
        ]));
        out.push('\n');
        return out;
    }
    let line = |cols: [&str; 5]| {
        format!(
            "\n{:<g$} {:<c$} {:<20} {:<20} {}",
            cols[0], cols[1], cols[2], cols[3], cols[4]
        )
    };
    let mut out = line(["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]);
    out.push_str(&line([
        &group.group_id,
        &group.coordinator,
        strategy,
        &group.state,
        &members,
    ]));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::client::MemberView;
    use super::*;

    fn group() -> GroupView {
        GroupView {
            group_id: "grpB".into(),
            state: "Stable".into(),
            protocol: "range".into(),
            members: vec![MemberView {
                member_id: "rdkafka-4b35b2df-4c5b-47b2-837b-e68baf0f6bb1".into(),
                group_instance_id: String::new(),
                client_id: "rdkafka".into(),
                host: "/127.0.0.1".into(),
                assignment: vec![("g2".into(), 0), ("g1".into(), 2), ("g1".into(), 0), ("g1".into(), 1)],
            }],
            coordinator: "localhost:19392  (0)".into(),
        }
    }

    #[test]
    fn views_print_kafkas_columns() {
        assert_eq!(
            format_members(&group(), true),
            "\nGROUP           CONSUMER-ID                                  HOST            CLIENT-ID       #PARTITIONS     CURRENT-EPOCH   CURRENT-ASSIGNMENT   TARGET-EPOCH    TARGET-ASSIGNMENT   \n\
             grpB            rdkafka-4b35b2df-4c5b-47b2-837b-e68baf0f6bb1 /127.0.0.1      rdkafka         4               -               g1:0,1,2;g2:0        -               -                   \n"
        );
        assert_eq!(
            format_state(&group(), false),
            "\nGROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS\n\
             grpB            localhost:19392  (0)      range                Stable               1\n"
        );
        let row = OffsetRow {
            group: "grpA".into(),
            topic: "g1".into(),
            partition: 2,
            leader_epoch: Some(0),
            offset: Some(0),
            log_end_offset: Some(5),
            consumer_id: "-".into(),
            host: "-".into(),
            client_id: "-".into(),
        };
        assert_eq!(
            format_offsets(std::slice::from_ref(&row), false),
            "\nGROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n\
             grpA            g1              2          0               5               5               -               -               -\n"
        );
        assert_eq!(
            format_offsets(&[row], true),
            "\nGROUP           TOPIC           PARTITION  LEADER-EPOCH    CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n\
             grpA            g1              2          0               0               5               5               -               -               -\n"
        );
    }
}
