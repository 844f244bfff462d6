//! `kafka-configs.sh --alter`: parse `--add-config` (Kafka's syntax: `k=v,k2=[a,b]`) and
//! `--add-config-file`, check that every `--delete-config` key is set on the entity itself (else
//! Kafka's `Invalid config(s): k`), then one IncrementalAlterConfigs with the deletions first and the
//! additions after, as Kafka's tool sends them.

use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;

use super::describe::{dynamic_source, resource_configs};
use super::{Args, Entity};
use crate::admin::Admin;
use crate::error::{first_failure, ToolError};

/// AlterConfigOp types on the wire.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// What `--alter` asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// (key, value), sorted by key.
    pub add: Vec<(String, String)>,
    pub delete: Vec<String>,
}

impl Changes {
    pub fn from_args(args: &Args) -> Result<Changes, ToolError> {
        if args.add_config.is_some() && args.add_config_file.is_some() {
            return Err(ToolError::Usage(
                "Only one of --add-config or --add-config-file must be specified".to_string(),
            ));
        }
        let mut add = Vec::new();
        if let Some(path) = &args.add_config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ToolError::Usage(format!("cannot read --add-config-file {}: {e}", path.display())))?;
            let entries = oxka_config::properties::parse(&text)
                .map_err(|e| ToolError::Usage(format!("--add-config-file {}: {e}", path.display())))?;
            add.extend(entries.into_iter().map(|e| (e.key, e.value.trim().to_string())));
        }
        if let Some(text) = &args.add_config {
            add.extend(parse_add_config(text)?);
        }
        // Later values win, as in the Properties object Kafka's tool fills.
        let mut by_key = std::collections::BTreeMap::new();
        for (key, value) in add {
            by_key.insert(key, value);
        }
        if let Some(bad) = by_key
            .keys()
            .find(|k| !k.chars().all(|c| c.is_ascii_alphanumeric() || "$._-".contains(c)))
        {
            return Err(ToolError::Usage(format!(
                "Invalid character found for config key: {bad}"
            )));
        }
        let delete: Vec<String> = args.delete_config.iter().map(|k| k.trim().to_string()).collect();
        if by_key.is_empty() && delete.is_empty() {
            return Err(ToolError::Usage(
                "At least one of --add-config, --add-config-file, or --delete-config must be specified with --alter"
                    .to_string(),
            ));
        }
        Ok(Changes {
            add: by_key.into_iter().collect(),
            delete,
        })
    }
}

/// Kafka's `--add-config` syntax: entries separated by commas outside square brackets, each
/// `key=value` (one `=` outside brackets), brackets dropped from values, both sides trimmed.
pub fn parse_add_config(text: &str) -> Result<Vec<(String, String)>, ToolError> {
    let invalid = || {
        ToolError::Usage(
            "requirement failed: Invalid entity config: all configs to be added must be in the format \"key=val\" or  \"key=[val1,val2]\" to group values which contain commas."
                .to_string(),
        )
    };
    let mut pairs = Vec::new();
    for entry in split_outside_brackets(text, ',') {
        let parts = split_outside_brackets(&entry, '=');
        let [key, value] = parts.as_slice() else {
            return Err(invalid());
        };
        let value: String = value.chars().filter(|c| *c != '[' && *c != ']').collect();
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(pairs)
}

/// Splits on `sep` where it is not inside `[...]`; keeps empty pieces (Java's split with limit -1,
/// except that an empty text is one empty piece).
fn split_outside_brackets(text: &str, sep: char) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == sep && depth == 0 {
            pieces.push(String::new());
        } else {
            pieces.last_mut().expect("never empty").push(c);
        }
    }
    pieces
}

pub async fn alter(admin: &mut Admin, entity: &Entity, changes: &Changes) -> Result<(), ToolError> {
    let name = match entity {
        Entity::Topic(Some(n)) | Entity::Broker(Some(n)) => n.clone(),
        _ => unreachable!("entity() requires a name or the default with --alter"),
    };
    let current = resource_configs(admin, entity.resource_type(), &name, false).await?;
    let source = dynamic_source(entity, &name);
    let invalid: Vec<&str> = changes
        .delete
        .iter()
        .filter(|k| {
            !current
                .configs
                .iter()
                .any(|c| c.config_source == source && c.name.as_str() == k.as_str())
        })
        .map(String::as_str)
        .collect();
    if !invalid.is_empty() {
        return Err(ToolError::Usage(format!("Invalid config(s): {}", invalid.join(","))));
    }
    let op = |key: &str, op: i8, value: Option<&str>| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(key.to_string()))
            .with_config_operation(op)
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
    };
    let mut configs: Vec<AlterableConfig> = changes.delete.iter().map(|k| op(k, OP_DELETE, Some(""))).collect();
    configs.extend(changes.add.iter().map(|(k, v)| op(k, OP_SET, Some(v))));
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(entity.resource_type())
        .with_resource_name(StrBytes::from_string(name.clone()))
        .with_configs(configs)]);
    let response = admin.send(request, 0).await?;
    first_failure(
        response
            .responses
            .iter()
            .map(|r| (r.error_code, r.error_message.as_deref())),
    )?;
    if name.is_empty() {
        println!(
            "Completed updating default config for {} in the cluster.",
            entity.type_name()
        );
    } else {
        println!(
            "Completed updating config for {} {name}.",
            entity.type_name().trim_end_matches('s')
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_follows_kafkas_syntax() {
        let pairs = parse_add_config("retention.ms=1000, cleanup.policy=[compact,delete],empty=").unwrap();
        assert_eq!(
            pairs,
            [
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "compact,delete".to_string()),
                ("empty".to_string(), String::new()),
            ]
        );
        let e = parse_add_config("retention.ms").unwrap_err().to_string();
        assert!(e.starts_with("requirement failed: Invalid entity config"), "{e}");
        assert!(parse_add_config("a=b=c").is_err());
        assert_eq!(parse_add_config("a=[x=y]").unwrap(), [("a".into(), "x=y".into())]);
    }
}
