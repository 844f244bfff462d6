//! Quotas of users, clients and ips (`--entity-type users|clients|ips`, KIP-546): DescribeClientQuotas
//! and AlterClientQuotas, printed as Kafka 4.x's tool prints them:
//!
//! ```text
//! Quota configs for user-principal 'alice', client-id 'app' are producer_byte_rate=1024.0, consumer_byte_rate=2048.0
//! Quota configs for the default user-principal are request_percentage=50.0
//! ```
//!
//! Entities and their values come in the order Kafka's tool iterates the Java `HashMap`s its admin
//! client fills (`crate::java`), values as Java prints a `double`.

use kafka_protocol::messages::{alter_client_quotas_request, describe_client_quotas_request};
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{first_failure, kafka_message, ToolError};
use crate::java;

/// The quota configs of users and clients, and of ips (Kafka's `QuotaConfig`).
pub const USER_CLIENT_KEYS: [&str; 4] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];
pub const IP_KEYS: [&str; 1] = ["connection_creation_rate"];

/// DescribeClientQuotas' match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Client,
    Ip,
}

impl Kind {
    /// From the command line's plural.
    pub fn from_plural(plural: &str) -> Option<Kind> {
        match plural {
            "users" => Some(Kind::User),
            "clients" => Some(Kind::Client),
            "ips" => Some(Kind::Ip),
            _ => None,
        }
    }

    /// The entity type on the wire (`ClientQuotaEntity`).
    fn wire(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Client => "client-id",
            Kind::Ip => "ip",
        }
    }

    /// How Kafka's tool names it in `Quota configs for ...`.
    fn printed(self) -> &'static str {
        match self {
            Kind::User => "user-principal",
            Kind::Client => "client-id",
            Kind::Ip => "ip",
        }
    }
}

/// One component of a quota entity: `None` matches every named entity of the kind (describe only),
/// `Some("")` is the default entity, `Some(name)` that one.
pub type Component = (Kind, Option<String>);

/// One entity the cluster described: (wire entity type, name; `None` = the default), and its
/// (key, value) quotas, both in the order the cluster sent them.
struct Described {
    entity: Vec<(String, Option<String>)>,
    values: Vec<(String, f64)>,
}

async fn describe_entities(admin: &mut Admin, components: &[Component]) -> Result<Vec<Described>, ToolError> {
    let request = DescribeClientQuotasRequest::default()
        .with_components(
            components
                .iter()
                .map(|(kind, name)| {
                    let (match_type, matched) = match name.as_deref() {
                        None => (MATCH_ANY, None),
                        Some("") => (MATCH_DEFAULT, None),
                        Some(name) => (MATCH_EXACT, Some(StrBytes::from_string(name.to_string()))),
                    };
                    describe_client_quotas_request::ComponentData::default()
                        .with_entity_type(StrBytes::from_static_str(kind.wire()))
                        .with_match_type(match_type)
                        .with_match(matched)
                })
                .collect(),
        )
        .with_strict(true);
    let response = admin.send(request, 0).await?;
    if response.error_code != 0 {
        return Err(ToolError::Kafka(kafka_message(
            response.error_code,
            response.error_message.as_deref(),
        )));
    }
    Ok(response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|entry| Described {
            entity: entry
                .entity
                .into_iter()
                .map(|e| (e.entity_type.to_string(), e.entity_name.map(|n| n.to_string())))
                .collect(),
            values: entry.values.into_iter().map(|v| (v.key.to_string(), v.value)).collect(),
        })
        .collect())
}

/// `--describe` of users, clients or ips: one line per matching entity that has quotas.
pub async fn describe(admin: &mut Admin, components: &[Component]) -> Result<(), ToolError> {
    for line in lines(&describe_entities(admin, components).await?) {
        println!("{line}");
    }
    Ok(())
}

/// The lines Kafka's tool prints for these entities, in its order.
fn lines(described: &[Described]) -> Vec<String> {
    // The admin client's Map<ClientQuotaEntity, Map<String, Double>>: new HashMap<>(entries), keyed
    // by an entity whose hash is Objects.hash(its Map<String, String>), that is 31 + the map's hash
    // (the sum of key hash ^ value hash).
    let entity_hashes: Vec<i32> = described
        .iter()
        .map(|d| {
            let map_hash = d.entity.iter().fold(0i32, |sum, (kind, name)| {
                sum.wrapping_add(java::string_hash(kind) ^ name.as_deref().map_or(0, java::string_hash))
            });
            map_hash.wrapping_add(31)
        })
        .collect();
    java::hash_map_order(&entity_hashes, described.len())
        .into_iter()
        .map(|i| line(&described[i]))
        .collect()
}

fn line(described: &Described) -> String {
    let entity: Vec<String> = [Kind::User, Kind::Client, Kind::Ip]
        .iter()
        .filter_map(|kind| {
            let (_, name) = described.entity.iter().find(|(t, _)| t == kind.wire())?;
            Some(match name {
                Some(name) => format!("{} '{name}'", kind.printed()),
                None => format!("the default {}", kind.printed()),
            })
        })
        .collect();
    let hashes: Vec<i32> = described.values.iter().map(|(k, _)| java::string_hash(k)).collect();
    let values: Vec<String> = java::hash_map_order(&hashes, described.values.len())
        .into_iter()
        .map(|i| {
            let (key, value) = &described.values[i];
            format!("{key}={}", java::double_to_string(*value))
        })
        .collect();
    format!("Quota configs for {} are {}", entity.join(", "), values.join(", "))
}

/// `--alter` of one entity's quotas: the keys to delete must be set on it (else Kafka's
/// `Invalid config(s): k`), values must be numbers; then one AlterClientQuotas.
pub async fn alter(
    admin: &mut Admin,
    components: &[Component],
    add: &[(String, String)],
    delete: &[String],
) -> Result<(), ToolError> {
    if components.iter().any(|(_, name)| name.is_none()) {
        return Err(ToolError::Usage(
            "Exactly one entity name must be specified for every entity type".to_string(),
        ));
    }
    let current = describe_entities(admin, components).await?;
    let set: Vec<&str> = current
        .first()
        .map(|d| d.values.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    let invalid: Vec<&str> = delete.iter().map(String::as_str).filter(|k| !set.contains(k)).collect();
    if !invalid.is_empty() {
        return Err(ToolError::Usage(format!("Invalid config(s): {}", invalid.join(","))));
    }
    let mut ops = Vec::new();
    for (key, value) in add {
        let number: f64 = value
            .trim()
            .parse()
            .map_err(|_| ToolError::Usage(format!("Cannot parse quota configuration value for {key}: {value}")))?;
        ops.push(
            alter_client_quotas_request::OpData::default()
                .with_key(StrBytes::from_string(key.clone()))
                .with_value(number),
        );
    }
    ops.extend(delete.iter().map(|key| {
        alter_client_quotas_request::OpData::default()
            .with_key(StrBytes::from_string(key.clone()))
            .with_remove(true)
    }));
    let entity = components
        .iter()
        .map(|(kind, name)| {
            alter_client_quotas_request::EntityData::default()
                .with_entity_type(StrBytes::from_static_str(kind.wire()))
                .with_entity_name(
                    name.as_deref()
                        .filter(|n| !n.is_empty())
                        .map(|n| StrBytes::from_string(n.to_string())),
                )
        })
        .collect();
    let request =
        AlterClientQuotasRequest::default().with_entries(vec![alter_client_quotas_request::EntryData::default()
            .with_entity(entity)
            .with_ops(ops)]);
    let response = admin.send(request, 0).await?;
    first_failure(
        response
            .entries
            .iter()
            .map(|e| (e.error_code, e.error_message.as_deref())),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(entity: &[(&str, Option<&str>)], values: &[(&str, f64)]) -> Described {
        Described {
            entity: entity
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(String::from)))
                .collect(),
            values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn a_line_names_the_entity_as_kafkas_tool_does() {
        let d = described(
            &[("client-id", Some("app")), ("user", Some("alice"))],
            &[("producer_byte_rate", 1024.0)],
        );
        assert_eq!(
            line(&d),
            "Quota configs for user-principal 'alice', client-id 'app' are producer_byte_rate=1024.0"
        );
        let d = described(&[("user", None)], &[("request_percentage", 1e7)]);
        assert_eq!(
            line(&d),
            "Quota configs for the default user-principal are request_percentage=1.0E7"
        );
    }
}
