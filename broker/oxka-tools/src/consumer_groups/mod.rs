//! `oxka tool consumer-groups` (kafka-consumer-groups.sh, Kafka's ConsumerGroupCommand): `--list`
//! (`--state [s1,s2]`), `--describe` (offsets, `--members [--verbose]`, `--state [--verbose]`),
//! `--reset-offsets`, `--delete` and `--delete-offsets`, for `--group` (repeatable) or `--all-groups`,
//! with Kafka 4.x's flags and output. Flags are checked here (Kafka's messages, on stderr); requests
//! are in `client.rs`, the describe views in `describe.rs`, resets in `reset.rs` (times in `time.rs`),
//! deletes in `delete.rs`. Groups are classic groups (DescribeGroups); KIP-848 `consumer` protocol
//! groups, which Kafka describes with ConsumerGroupDescribe, are described without their epochs.
//!
//! Errors: a failed command prints Kafka's `\nError: Executing consumer group command failed due to ...`
//! on stdout, as Kafka's tool, and exits 1 (Kafka's tool exits 0 after it); flag errors print Kafka's
//! line on stderr and exit 1.

pub(crate) mod client;
mod delete;
mod describe;
mod reset;
mod time;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use self::client::GroupClient;
use self::describe::View;
use self::reset::{Scenario, Scope};
use crate::error::ToolError;
use crate::settings::ClientSettings;

/// The group states `--list --state` accepts (Kafka's `GroupState`s of consumer groups).
const STATES: &[&str] = &[
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
];

#[derive(Parser, Debug)]
#[command(
    name = "kafka-consumer-groups.sh",
    about = "List, describe, reset the offsets of, and delete consumer groups (Kafka's kafka-consumer-groups.sh)"
)]
pub struct Args {
    /// REQUIRED: the server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    /// A Kafka client properties file (client.id, request.timeout.ms; security settings are refused).
    #[arg(long = "command-config")]
    command_config: Option<PathBuf>,
    /// How long each step may take, in ms (waiting for the group's coordinator, one request).
    #[arg(long, default_value_t = 5000)]
    timeout: u64,
    /// List all consumer groups.
    #[arg(long)]
    list: bool,
    /// Describe consumer groups and their offset lag.
    #[arg(long)]
    describe: bool,
    /// Reset offsets of consumer groups (inactive groups only).
    #[arg(long = "reset-offsets")]
    reset_offsets: bool,
    /// Delete consumer groups.
    #[arg(long)]
    delete: bool,
    /// Delete the offsets of one group for --topic (inactive groups, or topics it is not subscribed to).
    #[arg(long = "delete-offsets")]
    delete_offsets: bool,
    /// The consumer group to act on (repeatable).
    #[arg(long)]
    group: Vec<String>,
    /// Apply to all consumer groups.
    #[arg(long = "all-groups")]
    all_groups: bool,
    /// Describe: the offsets view (the default).
    #[arg(long)]
    offsets: bool,
    /// Describe: the members of the group.
    #[arg(long)]
    members: bool,
    /// Describe: the state of the group; list: the state of every group, or only groups in these
    /// states (comma-separated).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    state: Option<String>,
    /// Describe --offsets / --members / --state: more columns.
    #[arg(long)]
    verbose: bool,
    /// Reset / delete-offsets: the topic (repeatable), `topic` or `topic:0,1,2`.
    #[arg(long)]
    topic: Vec<String>,
    /// Reset: every topic the group has committed offsets for.
    #[arg(long = "all-topics")]
    all_topics: bool,
    /// Reset to the earliest offset.
    #[arg(long = "to-earliest")]
    to_earliest: bool,
    /// Reset to the latest offset.
    #[arg(long = "to-latest")]
    to_latest: bool,
    /// Reset to the current committed offset.
    #[arg(long = "to-current")]
    to_current: bool,
    /// Reset to this offset.
    #[arg(long = "to-offset", allow_hyphen_values = true)]
    to_offset: Option<i64>,
    /// Reset by shifting the committed offset by n (positive or negative).
    #[arg(long = "shift-by", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Reset to the first offset at or after this time: YYYY-MM-DDThh:mm:ss.sss[Z|+hh:mm] (UTC when no
    /// zone is given).
    #[arg(long = "to-datetime")]
    to_datetime: Option<String>,
    /// Reset to the first offset at or after now minus this duration: PnDTnHnMnS.
    #[arg(long = "by-duration", allow_hyphen_values = true)]
    by_duration: Option<String>,
    /// Reset to the offsets in this CSV file (what --export prints).
    #[arg(long = "from-file")]
    from_file: Option<PathBuf>,
    /// Reset: print the plan as CSV (for --from-file).
    #[arg(long)]
    export: bool,
    /// Reset: only show the plan (the default).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Reset: commit the plan.
    #[arg(long)]
    execute: bool,
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    match consumer_groups(&args).await {
        Err(ToolError::Usage(message)) => {
            eprintln!("{message}");
            Err(ToolError::Reported)
        }
        Err(ToolError::Kafka(message)) => {
            println!("\nError: Executing consumer group command failed due to {message}");
            Err(ToolError::Reported)
        }
        other => other,
    }
}

async fn consumer_groups(args: &Args) -> Result<(), ToolError> {
    check(args)?;
    let reset = if args.reset_offsets {
        Some(reset_scenario(args)?)
    } else {
        None
    };
    let mut settings = ClientSettings::from_flags(&args.bootstrap_server, args.command_config.as_deref())?;
    let timeout = Duration::from_millis(args.timeout);
    settings.request_timeout = settings.request_timeout.min(timeout);
    let client = GroupClient::connect(settings, timeout).await?;
    if args.list {
        return list(&client, args).await;
    }
    if args.delete_offsets {
        return delete::delete_offsets(&client, &args.group[0], &args.topic).await;
    }
    let groups = if args.all_groups {
        client.list_groups().await?.into_iter().map(|g| g.group_id).collect()
    } else {
        args.group.clone()
    };
    if let Some((scope, scenario)) = reset {
        let mut plans = BTreeMap::new();
        for group in &groups {
            let plan = reset::plan(&client, group, &scope, &scenario).await?;
            if args.execute && !plan.is_empty() {
                client.commit_offsets(group, &plan).await?;
            }
            plans.insert(group.clone(), plan);
        }
        if args.export {
            print!("{}", reset::format_csv(&plans, args.group.len() != 1));
        } else {
            print!("{}", reset::format_plan(&plans));
        }
        return Ok(());
    }
    if args.delete {
        return delete::delete_groups(&client, &groups).await;
    }
    let verbose = args.verbose;
    let view = if args.members {
        View::Members { verbose }
    } else if args.state.is_some() {
        View::State { verbose }
    } else {
        View::Offsets { verbose }
    };
    describe::describe(&client, &groups, view).await
}

/// Kafka's checks of the flags (`ConsumerGroupCommandOptions.checkArgs`), in its words.
fn check(args: &Args) -> Result<(), ToolError> {
    let usage = |m: &str| Err(ToolError::Usage(m.to_string()));
    let actions = [
        args.list,
        args.describe,
        args.reset_offsets,
        args.delete,
        args.delete_offsets,
    ];
    if actions.iter().filter(|a| **a).count() != 1 {
        return usage(
            "Command must include exactly one action: --list, --describe, --delete, --reset-offsets, --delete-offsets, --validate-regex",
        );
    }
    let scoped = !args.group.is_empty() || args.all_groups;
    if !args.group.is_empty() && args.all_groups {
        return usage("Option \"[group]\" can't be used with option \"[all-groups]\"");
    }
    if args.describe {
        if !scoped {
            return usage("Option [describe] takes one of these options: [all-groups], [group]");
        }
        if [args.members, args.offsets, args.state.is_some()]
            .iter()
            .filter(|x| **x)
            .count()
            > 1
        {
            return usage("Option [describe] takes at most one of these options: [members], [offsets], [state]");
        }
        if args.state.as_deref().is_some_and(|s| !s.is_empty()) {
            return usage("Option [describe] does not take a value for [state]");
        }
    } else if args.members || args.offsets || args.verbose {
        return usage("Option \"[members]\", \"[offsets]\" and \"[verbose]\" can only be used with \"[describe]\"");
    }
    if args.state.is_some() && !args.describe && !args.list {
        return usage("Option \"[state]\" can only be used with \"[describe]\" or \"[list]\"");
    }
    if args.delete {
        if !scoped {
            return usage("Option [delete] takes one of these options: [all-groups], [group]");
        }
        if !args.topic.is_empty() {
            return usage("The consumer does not support topic-specific offset deletion from a consumer group.");
        }
    }
    if args.delete_offsets && (args.group.is_empty() || args.topic.is_empty()) {
        return usage("Option [delete-offsets] takes the following options: [group], [topic]");
    }
    if args.reset_offsets {
        if args.dry_run && args.execute {
            return usage("Option [reset-offsets] only accepts one of [execute] and [dry-run]");
        }
        if !scoped {
            return usage("Option [reset-offsets] takes one of these options: [all-groups], [group]");
        }
    } else if args.dry_run || args.execute || args.export || args.all_topics {
        return usage("Options --dry-run, --execute, --export and --all-topics can only be used with --reset-offsets");
    }
    if !(args.topic.is_empty() || args.reset_offsets || args.delete_offsets) {
        return usage("Option \"[topic]\" can only be used with \"[delete-offsets]\" or \"[reset-offsets]\"");
    }
    Ok(())
}

/// The reset's scope and scenario, with Kafka's checks; the dry-run warning.
fn reset_scenario(args: &Args) -> Result<(Scope, Scenario), ToolError> {
    if !args.dry_run && !args.execute {
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting."
        );
    }
    let mut scenarios = Vec::new();
    if args.to_earliest {
        scenarios.push(Scenario::Earliest);
    }
    if args.to_latest {
        scenarios.push(Scenario::Latest);
    }
    if args.to_current {
        scenarios.push(Scenario::Current);
    }
    if let Some(o) = args.to_offset {
        scenarios.push(Scenario::Offset(o));
    }
    if let Some(s) = args.shift_by {
        scenarios.push(Scenario::ShiftBy(s));
    }
    if let Some(d) = &args.to_datetime {
        scenarios.push(Scenario::Datetime(time::parse_datetime(d)?));
    }
    if let Some(d) = &args.by_duration {
        scenarios.push(Scenario::Duration(time::parse_duration(d)?));
    }
    if let Some(path) = &args.from_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ToolError::Kafka(format!("java.io.IOException: {}: {e}", path.display())))?;
        scenarios.push(Scenario::FromFile(reset::parse_plan_file(&text, &args.group)?));
    }
    if scenarios.len() > 1 {
        return Err(ToolError::Usage(
            "Option [reset-offsets] takes only one of these scenarios: --to-datetime, --by-duration, --to-earliest, --to-latest, --shift-by, --from-file, --to-current, --to-offset".to_string(),
        ));
    }
    let from_file = matches!(scenarios.first(), Some(Scenario::FromFile(_)));
    let scope = match (args.all_topics, args.topic.is_empty()) {
        (true, true) => Scope::AllTopics,
        (false, false) => Scope::Topics(
            args.topic
                .iter()
                .map(|t| reset::parse_topic(t))
                .collect::<Result<_, _>>()?,
        ),
        (false, true) if from_file => Scope::FromFile,
        _ => {
            return Err(ToolError::Usage(
                "One of the reset scopes should be defined: --all-topics, --topic.".to_string(),
            ))
        }
    };
    let Some(scenario) = scenarios.pop() else {
        return Err(ToolError::Usage(
            "Option '[reset-offsets]' requires one of the following scenarios: [[to-offset], [to-current], [to-datetime], [from-file], [by-duration], [to-earliest], [to-latest], [shift-by]]".to_string(),
        ));
    };
    Ok((scope, scenario))
}

/// `--list`: group ids, or with `--state` a GROUP/STATE table, optionally only some states.
async fn list(client: &GroupClient, args: &Args) -> Result<(), ToolError> {
    let wanted = match &args.state {
        Some(states) => Some(parse_states(states)?),
        None => None,
    };
    let groups = client.list_groups().await?;
    let Some(wanted) = wanted else {
        let mut out = String::new();
        for g in &groups {
            out.push_str(&g.group_id);
            out.push('\n');
        }
        print!("{out}");
        return Ok(());
    };
    let shown: Vec<_> = groups
        .iter()
        .filter(|g| wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(&g.state)))
        .collect();
    let width = shown.iter().map(|g| g.group_id.len()).fold(15, usize::max) + 10;
    let mut out = format!("{:<width$} {:<20}\n", "GROUP", "STATE");
    for g in shown {
        out.push_str(&format!("{:<width$} {:<20}\n", g.group_id, g.state));
    }
    print!("{out}");
    Ok(())
}

/// `--state s1,s2` of `--list`: Kafka's state names, any case; empty for every state.
fn parse_states(text: &str) -> Result<Vec<&'static str>, ToolError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|s| {
            STATES
                .iter()
                .copied()
                .find(|k| k.eq_ignore_ascii_case(s.trim()))
                .ok_or_else(|| {
                    ToolError::Usage(format!(
                        "Invalid state list '{text}'. Valid states are: {}",
                        STATES.join(", ")
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let mut full = vec!["kafka-consumer-groups.sh", "--bootstrap-server", "x:1"];
        full.extend_from_slice(args);
        Args::try_parse_from(full).unwrap()
    }

    #[test]
    fn resets_need_one_scenario_and_one_scope() {
        let s = |a: &[&str]| reset_scenario(&parse(a)).map_err(|e| e.to_string());
        assert_eq!(
            s(&[
                "--reset-offsets",
                "--group",
                "g",
                "--topic",
                "t:1",
                "--shift-by",
                "-2",
                "--dry-run"
            ]),
            Ok((Scope::Topics(vec![("t".into(), Some(vec![1]))]), Scenario::ShiftBy(-2)))
        );
        assert_eq!(
            s(&[
                "--reset-offsets",
                "--group",
                "g",
                "--all-topics",
                "--to-latest",
                "--execute"
            ]),
            Ok((Scope::AllTopics, Scenario::Latest))
        );
        assert_eq!(
            s(&[
                "--reset-offsets",
                "--group",
                "g",
                "--all-topics",
                "--by-duration",
                "PT1M"
            ]),
            Ok((Scope::AllTopics, Scenario::Duration(60_000)))
        );
        assert!(s(&["--reset-offsets", "--group", "g", "--to-earliest"])
            .unwrap_err()
            .starts_with("One of the reset scopes"));
        assert!(s(&["--reset-offsets", "--group", "g", "--all-topics"])
            .unwrap_err()
            .starts_with("Option '[reset-offsets]' requires one of the following scenarios"));
        assert!(s(&[
            "--reset-offsets",
            "--group",
            "g",
            "--all-topics",
            "--to-latest",
            "--to-earliest"
        ])
        .unwrap_err()
        .contains("only one of these scenarios"));
    }

    #[test]
    fn flags_are_checked_as_kafkas() {
        let c = |a: &[&str]| check(&parse(a)).map_err(|e| e.to_string());
        assert_eq!(c(&["--list", "--state"]), Ok(()));
        assert_eq!(parse(&["--list", "--state"]).state.as_deref(), Some(""));
        assert!(c(&["--list", "--describe"])
            .unwrap_err()
            .starts_with("Command must include exactly one action"));
        assert!(c(&["--describe"]).unwrap_err().contains("takes one of these options"));
        assert!(c(&["--describe", "--group", "g", "--members", "--state"])
            .unwrap_err()
            .contains("at most one"));
        assert!(c(&["--describe", "--group", "g", "--state", "stable"])
            .unwrap_err()
            .contains("does not take a value"));
        assert!(c(&["--delete", "--group", "g", "--topic", "t"])
            .unwrap_err()
            .contains("topic-specific offset deletion"));
        assert!(c(&["--delete-offsets", "--group", "g"])
            .unwrap_err()
            .contains("[group], [topic]"));
        assert!(c(&["--reset-offsets", "--group", "g", "--dry-run", "--execute"])
            .unwrap_err()
            .contains("only accepts one of"));
        assert_eq!(parse_states("stable,EMPTY").unwrap(), ["Stable", "Empty"]);
        assert!(parse_states("bogus")
            .unwrap_err()
            .to_string()
            .starts_with("Invalid state list 'bogus'"));
    }
}
