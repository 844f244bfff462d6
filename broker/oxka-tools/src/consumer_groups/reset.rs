//! `kafka-consumer-groups.sh --reset-offsets`: plan new committed offsets for inactive groups
//! (`--to-earliest`, `--to-latest`, `--to-current`, `--to-offset N`, `--shift-by N`, `--to-datetime`,
//! `--by-duration`, `--from-file`) over `--all-topics` (the partitions the group committed) or
//! `--topic t[:p,...]` (repeatable), print the plan in Kafka's table (or as CSV with `--export`), and
//! commit it with `--execute` (OffsetCommit as an admin: generation -1, no member). `--dry-run` is the
//! default, with Kafka's warning on stderr. Offsets outside a partition's log are moved to its start or
//! end, with Kafka's warning on stderr, as Kafka's `checkOffsetsRange`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::client::GroupClient;
use crate::error::ToolError;
use crate::offsets::{list_offsets, PartitionOffset, EARLIEST, LATEST};

/// New offsets per partition.
pub type Plan = BTreeMap<(String, i32), i64>;

/// How the new offsets are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    Earliest,
    Latest,
    Current,
    Offset(i64),
    ShiftBy(i64),
    /// A timestamp in milliseconds.
    Datetime(i64),
    /// Milliseconds before now.
    Duration(i64),
    /// A plan per group, read from `--from-file`.
    FromFile(BTreeMap<String, Plan>),
}

/// Which partitions: every committed one, these topics (with their partitions, or all of them), or
/// none named (`--from-file` alone: the file names them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    AllTopics,
    Topics(Vec<(String, Option<Vec<i32>>)>),
    FromFile,
}

/// `t` or `t:0,2`, as Kafka's `--topic` for resets.
pub fn parse_topic(arg: &str) -> Result<(String, Option<Vec<i32>>), ToolError> {
    if !arg.contains(':') {
        return Ok((arg.to_string(), None));
    }
    let parts: Vec<&str> = arg.split(':').collect();
    let [topic, partitions] = parts.as_slice() else {
        return Err(ToolError::Usage(format!(
            "Invalid topic arg '{arg}', expected topic name and partitions"
        )));
    };
    let ids = partitions
        .split(',')
        .map(|p| {
            p.parse::<i32>()
                .map_err(|_| ToolError::Usage(format!("Invalid partition '{p}' specified in topic arg '{arg}''")))
        })
        .collect::<Result<Vec<i32>, _>>()?;
    Ok((topic.to_string(), Some(ids)))
}

/// A `--from-file` CSV (what `--export` writes): `topic,partition,offset` lines for one `--group`,
/// else `group,topic,partition,offset` lines.
pub fn parse_plan_file(text: &str, groups: &[String]) -> Result<BTreeMap<String, Plan>, ToolError> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .collect();
    let bad = |line: &str| ToolError::Kafka(format!("Invalid line in the --from-file CSV: '{line}'"));
    let number = |s: &str, line: &str| s.trim().parse::<i64>().map_err(|_| bad(line));
    let fields = |line: &str| -> Vec<String> {
        line.split(',')
            .map(|f| f.trim().trim_matches('"').to_string())
            .collect()
    };
    let without_group = groups.len() == 1
        && lines.first().is_some_and(|l| {
            let f = fields(l);
            f.len() == 3 && f[1].parse::<i32>().is_ok() && f[2].parse::<i64>().is_ok()
        });
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    for line in lines {
        let f = fields(line);
        let (group, topic, partition, offset) = match (without_group, f.as_slice()) {
            (true, [t, p, o]) => (groups[0].clone(), t.clone(), number(p, line)?, number(o, line)?),
            (false, [g, t, p, o]) => (g.clone(), t.clone(), number(p, line)?, number(o, line)?),
            _ => return Err(bad(line)),
        };
        let partition = i32::try_from(partition).map_err(|_| bad(line))?;
        plans.entry(group).or_default().insert((topic, partition), offset);
    }
    Ok(plans)
}

/// The plan for one group: new offset per partition (empty, with Kafka's error printed, for a group
/// that is not inactive or that `--from-file` does not name).
pub async fn plan(client: &GroupClient, group: &str, scope: &Scope, scenario: &Scenario) -> Result<Plan, ToolError> {
    let state = match client.describe_group(group).await? {
        Ok(g) => g.state,
        Err(_) => "Dead".to_string(),
    };
    if state != "Empty" && state != "Dead" {
        println!(
            "\nError: Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}."
        );
        return Ok(Plan::new());
    }
    let committed = client.committed_offsets(group).await?;
    let partitions = partitions_to_reset(client, scope, &committed)?;
    let offsets_at = |timestamp: i64| list_offsets(&client.settings, &client.metadata, &partitions, timestamp);
    match scenario {
        Scenario::Earliest => known(offsets_at(EARLIEST).await?, "starting"),
        Scenario::Latest => known(offsets_at(LATEST).await?, "ending"),
        Scenario::Current => {
            // Partitions without a committed offset go to the log end, as Kafka's.
            let ends = known(offsets_at(LATEST).await?, "ending")?;
            Ok(ends
                .into_iter()
                .map(|(tp, end)| {
                    let offset = committed.get(&tp).map_or(end, |c| c.offset);
                    (tp, offset)
                })
                .collect())
        }
        Scenario::Offset(offset) => {
            let wanted = partitions.iter().map(|tp| (tp.clone(), *offset)).collect();
            clamp(client, wanted).await
        }
        Scenario::ShiftBy(shift) => {
            let wanted = partitions
                .iter()
                .map(|tp| match committed.get(tp) {
                    Some(c) => Ok((tp.clone(), c.offset + shift)),
                    None => Err(ToolError::Usage(format!(
                        "Cannot shift offset for partition {}-{} since there is no current committed offset",
                        tp.0, tp.1
                    ))),
                })
                .collect::<Result<_, ToolError>>()?;
            clamp(client, wanted).await
        }
        Scenario::Datetime(timestamp) => at_time(client, &partitions, *timestamp).await,
        Scenario::Duration(ms) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            at_time(client, &partitions, now - ms).await
        }
        Scenario::FromFile(plans) => match plans.get(group) {
            Some(wanted) => clamp(client, wanted.clone()).await,
            None => {
                println!("\nError: No reset plan for group {group} found");
                Ok(Plan::new())
            }
        },
    }
}

/// Offsets the leaders answered, or Kafka's error naming the first partition without one.
fn known(answers: BTreeMap<(String, i32), PartitionOffset>, what: &str) -> Result<Plan, ToolError> {
    answers
        .into_iter()
        .map(|(tp, answer)| match answer {
            PartitionOffset::Offset(o) => Ok((tp, o)),
            _ => Err(ToolError::Kafka(format!(
                "Error getting {what} offset of topic partition: {}-{}",
                tp.0, tp.1
            ))),
        })
        .collect()
}

/// The first offset at or after `timestamp`; the log end, with Kafka's notice, where there is none.
async fn at_time(client: &GroupClient, partitions: &[(String, i32)], timestamp: i64) -> Result<Plan, ToolError> {
    let at = list_offsets(&client.settings, &client.metadata, partitions, timestamp).await?;
    let latest = known(
        list_offsets(&client.settings, &client.metadata, partitions, LATEST).await?,
        "ending",
    )?;
    let mut plan = Plan::new();
    for (tp, end) in latest {
        let offset = match at.get(&tp) {
            Some(PartitionOffset::Offset(o)) if *o >= 0 => *o,
            _ => {
                println!(
                    "\nWarn: Partition {} from topic {} is empty. Falling back to latest known offset.",
                    tp.1, tp.0
                );
                end
            }
        };
        plan.insert(tp, offset);
    }
    Ok(plan)
}

fn partitions_to_reset(
    client: &GroupClient,
    scope: &Scope,
    committed: &BTreeMap<(String, i32), super::client::Committed>,
) -> Result<Vec<(String, i32)>, ToolError> {
    let topics = match scope {
        Scope::AllTopics => return Ok(committed.keys().cloned().collect()),
        Scope::FromFile => return Ok(Vec::new()),
        Scope::Topics(topics) => topics,
    };
    let mut partitions = Vec::new();
    for (topic, ids) in topics {
        match ids {
            Some(ids) => partitions.extend(ids.iter().map(|p| (topic.clone(), *p))),
            None => {
                let found = client
                    .metadata
                    .topics
                    .iter()
                    .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic) && t.error_code == 0)
                    .ok_or_else(|| ToolError::Kafka("This server does not host this topic-partition.".to_string()))?;
                partitions.extend(found.partitions.iter().map(|p| (topic.clone(), p.partition_index)));
            }
        }
    }
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

/// Moves offsets outside a partition's log to its start or end, with Kafka's warning.
async fn clamp(client: &GroupClient, wanted: Plan) -> Result<Plan, ToolError> {
    let partitions: Vec<(String, i32)> = wanted.keys().cloned().collect();
    let start = list_offsets(&client.settings, &client.metadata, &partitions, EARLIEST).await?;
    let end = list_offsets(&client.settings, &client.metadata, &partitions, LATEST).await?;
    let mut plan = Plan::new();
    for (tp, offset) in wanted {
        let name = format!("{}-{}", tp.0, tp.1);
        let Some(PartitionOffset::Offset(high)) = end.get(&tp) else {
            return Err(ToolError::Kafka(format!(
                "Unexpected non-existing offset value for topic partition {name}"
            )));
        };
        let value = match start.get(&tp) {
            _ if offset > *high => {
                eprintln!("WARN New offset ({offset}) is higher than latest offset for topic partition {name}. Value will be set to {high}");
                *high
            }
            Some(PartitionOffset::Offset(low)) if offset < *low => {
                eprintln!("WARN New offset ({offset}) is lower than earliest offset for topic partition {name}. Value will be set to {low}");
                *low
            }
            _ => offset,
        };
        plan.insert(tp, value);
    }
    Ok(plan)
}

/// Kafka's reset table: a blank line, the header, a row per partition (when any group was planned).
pub fn format_plan(plans: &BTreeMap<String, Plan>) -> String {
    if plans.is_empty() {
        return String::new();
    }
    let line = |g: &str, t: &str, p: &str, o: &str| format!("\n{g:<30} {t:<30} {p:<10} {o:<15}");
    let mut out = line("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
    for (group, plan) in plans {
        for ((topic, partition), offset) in plan {
            out.push_str(&line(group, topic, &partition.to_string(), &offset.to_string()));
        }
    }
    out.push('\n');
    out
}

/// `--export`: the plan as Kafka's CSV (`topic,partition,offset`, with the group first unless one
/// `--group` was given), then the blank line Kafka's `println` adds.
pub fn format_csv(plans: &BTreeMap<String, Plan>, with_group: bool) -> String {
    let mut out = String::new();
    for (group, plan) in plans {
        for ((topic, partition), offset) in plan {
            if with_group {
                out.push_str(&format!("{group},{topic},{partition},{offset}\n"));
            } else {
                out.push_str(&format!("{topic},{partition},{offset}\n"));
            }
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_take_partitions_and_the_plan_prints_as_kafkas() {
        assert_eq!(parse_topic("t").unwrap(), ("t".to_string(), None));
        assert_eq!(parse_topic("t:0,2").unwrap(), ("t".to_string(), Some(vec![0, 2])));
        assert!(parse_topic("t:x")
            .unwrap_err()
            .to_string()
            .contains("Invalid partition 'x'"));
        assert!(parse_topic("t:0:1")
            .unwrap_err()
            .to_string()
            .contains("Invalid topic arg"));
        let plans = BTreeMap::from([("grpA".to_string(), BTreeMap::from([(("g1".to_string(), 2), 0)]))]);
        assert_eq!(
            format_plan(&plans),
            "\nGROUP                          TOPIC                          PARTITION  NEW-OFFSET     \n\
             grpA                           g1                             2          0              \n"
        );
        assert_eq!(format_csv(&plans, false), "g1,2,0\n\n");
        assert_eq!(format_csv(&plans, true), "grpA,g1,2,0\n\n");
    }

    #[test]
    fn plan_files_read_what_export_writes() {
        let one = vec!["g".to_string()];
        let plans = parse_plan_file("t,0,5\nt,1,7\n", &one).unwrap();
        assert_eq!(
            plans["g"],
            BTreeMap::from([(("t".to_string(), 0), 5), (("t".to_string(), 1), 7)])
        );
        let two = vec!["a".to_string(), "b".to_string()];
        let plans = parse_plan_file("a,t,0,1\r\nb,t,0,2\n", &two).unwrap();
        assert_eq!(plans["b"], BTreeMap::from([(("t".to_string(), 0), 2)]));
        assert!(parse_plan_file("t,0,5\n", &two).is_err());
        assert!(parse_plan_file("a,t,x,1\n", &two).is_err());
    }
}
