//! Client quotas (KIP-13, KIP-55, KIP-546) as the metadata log keeps them: quota values per entity (a
//! user, a client id, a user and client id together, or an ip; each name may be the default), checked
//! as Kafka's `ClientQuotaControlManager` checks an alteration (`plan_alteration`), filtered as
//! Kafka's `ClientQuotasImage` describes them (`describe`), and resolved for a connection with KIP-55's
//! precedence (`limit_for`). Pure functions over the image; the broker enforces the byte rates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image::ClusterImage;

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// The quota keys oxka enforces, and Kafka's type for each (a LONG must be a whole number).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// KIP-124: the share of request-handling time (100 = one thread) a quota entity may use.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// Keys Kafka accepts that oxka does not enforce yet: refused rather than stored and ignored.
const NOT_ENFORCED: &[&str] = &["controller_mutation_rate", "connection_creation_rate"];

/// A quota entity: each part absent, the default (`Some(None)`), or a name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<Option<String>>,
    pub client_id: Option<Option<String>>,
    pub ip: Option<Option<String>>,
}

impl QuotaEntity {
    /// The entity's (type, name) pairs in Kafka's type order.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        [(USER, &self.user), (CLIENT_ID, &self.client_id), (IP, &self.ip)]
            .into_iter()
            .filter_map(|(kind, part)| part.as_ref().map(|name| (kind, name.as_deref())))
            .collect()
    }

    fn part(&self, kind: &str) -> Option<&Option<String>> {
        match kind {
            USER => self.user.as_ref(),
            CLIENT_ID => self.client_id.as_ref(),
            IP => self.ip.as_ref(),
            _ => None,
        }
    }

    fn part_mut(&mut self, kind: &str) -> Option<&mut Option<Option<String>>> {
        match kind {
            USER => Some(&mut self.user),
            CLIENT_ID => Some(&mut self.client_id),
            IP => Some(&mut self.ip),
            _ => None,
        }
    }

    /// Kafka's `ClientQuotaEntity` string, for messages: `ClientQuotaEntity(entries={user=alice})`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .parts()
            .iter()
            .map(|(kind, name)| format!("{kind}={}", name.unwrap_or("null")))
            .collect();
        format!("ClientQuotaEntity(entries={{{}}})", parts.join(", "))
    }
}

/// One entity's quota values (`producer_byte_rate` -> 1048576.0).
pub type QuotaValues = BTreeMap<String, QuotaValue>;

/// A quota value: a double, compared bit for bit so the image stays `Eq`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

/// The image's quotas serialized as a list of (entity, values) pairs: JSON map keys must be strings.
pub mod serde_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{QuotaEntity, QuotaValues};

    pub fn serialize<S: Serializer>(map: &BTreeMap<QuotaEntity, QuotaValues>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<QuotaEntity, QuotaValues>, D::Error> {
        let pairs: Vec<(QuotaEntity, QuotaValues)> = Vec::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

/// A refusal: Kafka's error code and message.
pub type Refusal = (i16, String);

const INVALID_REQUEST: i16 = 42;
const UNSUPPORTED_VERSION: i16 = 35;

/// What an AlterClientQuotas entry asks, as sent: the entity's (type, name) pairs and the operations
/// (key, `Some(value)` to set, `None` to remove).
pub struct Alteration {
    pub entity: Vec<(String, Option<String>)>,
    pub ops: Vec<(String, Option<f64>)>,
}

/// The outcome of checking one entry: the entity (when it parsed) and its changes, or the refusal.
pub type Checked = Result<(QuotaEntity, BTreeMap<String, Option<QuotaValue>>), Refusal>;

/// Checks every entry as Kafka's controller does: a duplicate key or a duplicate entity refuses the
/// entry; the entity's types must be user, client-id, user and client-id, or ip, with no empty name;
/// each key must belong to the entity's kind, LONG keys must be whole numbers, and only the byte rates
/// oxka enforces are accepted.
pub fn plan_alteration(alterations: &[Alteration]) -> Vec<Checked> {
    let mut seen: Vec<QuotaEntity> = Vec::new();
    alterations
        .iter()
        .map(|alteration| {
            let entity = parse_entity(&alteration.entity)?;
            if seen.contains(&entity) {
                return Err((
                    INVALID_REQUEST,
                    format!("Ignoring duplicate entity {}", entity.describe()),
                ));
            }
            seen.push(entity.clone());
            let mut changes = BTreeMap::new();
            for (key, value) in &alteration.ops {
                if changes.contains_key(key) {
                    return Err((
                        INVALID_REQUEST,
                        format!(
                            "Duplicate quota key {key} not updating quota for this entity {}",
                            entity.describe()
                        ),
                    ));
                }
                if let Some(value) = value {
                    check_key_value(&entity, key, *value)?;
                }
                changes.insert(key.clone(), value.map(QuotaValue));
            }
            Ok((entity, changes))
        })
        .collect()
}

fn parse_entity(parts: &[(String, Option<String>)]) -> Result<QuotaEntity, Refusal> {
    if parts.is_empty() {
        return Err((INVALID_REQUEST, "Invalid empty client quota entity".to_string()));
    }
    let mut entity = QuotaEntity::default();
    for (kind, name) in parts {
        let Some(slot) = entity.part_mut(kind) else {
            return Err((INVALID_REQUEST, format!("Unhandled client quota entity type: {kind}")));
        };
        if slot.is_some() {
            return Err((
                INVALID_REQUEST,
                format!("Invalid empty client quota entity, duplicate entity entry {kind}"),
            ));
        }
        if name.as_deref() == Some("") {
            return Err((INVALID_REQUEST, format!("Empty {kind} not supported")));
        }
        *slot = Some(name.clone());
    }
    if entity.ip.is_some() && (entity.user.is_some() || entity.client_id.is_some()) {
        return Err((INVALID_REQUEST, "Invalid empty client quota entity".to_string()));
    }
    Ok(entity)
}

fn check_key_value(entity: &QuotaEntity, key: &str, value: f64) -> Result<(), Refusal> {
    let keys: &[&str] = if entity.ip.is_some() {
        &["connection_creation_rate"]
    } else {
        &[
            PRODUCER_BYTE_RATE,
            CONSUMER_BYTE_RATE,
            "request_percentage",
            "controller_mutation_rate",
        ]
    };
    if !keys.contains(&key) {
        return Err((INVALID_REQUEST, format!("Invalid configuration key {key}")));
    }
    if NOT_ENFORCED.contains(&key) {
        return Err((
            INVALID_REQUEST,
            format!(
                "{key} quotas are not enforced by oxka yet (it enforces {PRODUCER_BYTE_RATE}, {CONSUMER_BYTE_RATE} and {REQUEST_PERCENTAGE}); remove it"
            ),
        ));
    }
    // Both byte rates are LONGs in Kafka; request_percentage is a DOUBLE.
    let epsilon = 1e-6;
    if key != REQUEST_PERCENTAGE && ((value + epsilon).trunc() - value).abs() > epsilon {
        return Err((INVALID_REQUEST, format!("Configuration {key} must be a Long value")));
    }
    Ok(())
}

/// Applies checked changes to the image's quotas (`None` removes a key; an entity left with no keys
/// is dropped).
pub fn apply(image: &mut ClusterImage, entity: &QuotaEntity, changes: &BTreeMap<String, Option<QuotaValue>>) {
    let values = image.client_quotas.entry(entity.clone()).or_default();
    for (key, value) in changes {
        match value {
            Some(v) => {
                values.insert(key.clone(), *v);
            }
            None => {
                values.remove(key);
            }
        }
    }
    if values.is_empty() {
        image.client_quotas.remove(entity);
    }
}

/// A DescribeClientQuotas filter component: type, match type (0 exact, 1 default, 2 specified), name.
pub struct Component {
    pub kind: String,
    pub match_type: i8,
    pub name: Option<String>,
}

/// The entities and values a DescribeClientQuotas filter selects, as Kafka's `ClientQuotasImage`:
/// every exact (or default) component's name must be the entity's, every "specified" component's type
/// must be among the entity's, and with `strict` the entity has no other types; no component selects
/// everything unless strict.
pub fn describe(
    image: &ClusterImage,
    components: &[Component],
    strict: bool,
) -> Result<Vec<(QuotaEntity, QuotaValues)>, Refusal> {
    let mut exact: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut specified: Vec<&str> = Vec::new();
    for c in components {
        let kind = c.kind.as_str();
        if kind.is_empty() {
            return Err((INVALID_REQUEST, "Invalid empty entity type.".to_string()));
        }
        if exact.contains_key(kind) || specified.contains(&kind) {
            return Err((
                INVALID_REQUEST,
                format!("Entity type {kind} cannot appear more than once in the filter."),
            ));
        }
        if ![USER, CLIENT_ID, IP].contains(&kind) {
            return Err((UNSUPPORTED_VERSION, format!("Unsupported entity type {kind}")));
        }
        match (c.match_type, &c.name) {
            (0, Some(name)) => {
                exact.insert(kind, Some(name));
            }
            (0, None) => {
                return Err((
                    INVALID_REQUEST,
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".to_string(),
                ))
            }
            (1, None) => {
                exact.insert(kind, None);
            }
            (1, Some(_)) => {
                return Err((
                    INVALID_REQUEST,
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.".to_string(),
                ))
            }
            (2, None) => specified.push(kind),
            (2, Some(_)) => {
                return Err((
                    INVALID_REQUEST,
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.".to_string(),
                ))
            }
            (other, _) => return Err((INVALID_REQUEST, format!("Unknown match type {other}"))),
        }
    }
    let mentions = |kind: &str| exact.contains_key(kind) || specified.contains(&kind);
    if mentions(IP) && (mentions(USER) || mentions(CLIENT_ID)) {
        return Err((
            INVALID_REQUEST,
            "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."
                .to_string(),
        ));
    }
    if exact.is_empty() && specified.is_empty() && strict {
        return Ok(Vec::new());
    }
    let selected = image.client_quotas.iter().filter(|(entity, _)| {
        exact
            .iter()
            .all(|(kind, name)| entity.part(kind).is_some_and(|n| n.as_deref() == *name))
            && specified.iter().all(|kind| entity.part(kind).is_some())
            && (!strict || entity.parts().len() == exact.len() + specified.len())
    });
    Ok(selected.map(|(e, v)| (e.clone(), v.clone())).collect())
}

/// The quota on `key` that applies to a connection of `user` with `client_id`, by KIP-55's precedence
/// (user and client id, user and default client, user, default user and client id, default user and
/// default client, default user, client id, default client), with the entity it is shared by (all
/// connections that resolve to the same entity share one rate). `None`: no quota.
pub fn limit_for(image: &ClusterImage, key: &str, user: &str, client_id: &str) -> Option<(f64, QuotaEntity)> {
    if image.client_quotas.is_empty() {
        return None;
    }
    let named = |s: &str| Some(Some(s.to_string()));
    let default = || Some(None);
    let candidates = [
        (named(user), named(client_id)),
        (named(user), default()),
        (named(user), None),
        (default(), named(client_id)),
        (default(), default()),
        (default(), None),
        (None, named(client_id)),
        (None, default()),
    ];
    candidates.into_iter().find_map(|(user_part, client_part)| {
        let entity = QuotaEntity {
            user: user_part,
            client_id: client_part,
            ip: None,
        };
        let value = image.client_quotas.get(&entity)?.get(key)?;
        // The rate is shared by the connections the entity names: a default part stands for each
        // user (or client id) on its own.
        let shared = QuotaEntity {
            user: entity.user.as_ref().map(|_| Some(user.to_string())),
            client_id: entity.client_id.as_ref().map(|_| Some(client_id.to_string())),
            ip: None,
        };
        Some((value.0, shared))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alteration(entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) -> Alteration {
        Alteration {
            entity: entity
                .iter()
                .map(|(k, n)| (k.to_string(), n.map(String::from)))
                .collect(),
            ops: ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn image_with(quotas: &[(QuotaEntity, &str, f64)]) -> ClusterImage {
        let mut image = ClusterImage::default();
        for (entity, key, value) in quotas {
            let changes = [(key.to_string(), Some(QuotaValue(*value)))].into();
            apply(&mut image, entity, &changes);
        }
        image
    }

    fn user(name: Option<&str>) -> QuotaEntity {
        QuotaEntity {
            user: Some(name.map(String::from)),
            ..QuotaEntity::default()
        }
    }

    fn client(name: Option<&str>) -> QuotaEntity {
        QuotaEntity {
            client_id: Some(name.map(String::from)),
            ..QuotaEntity::default()
        }
    }

    #[test]
    fn alterations_are_checked_as_kafkas_controller_checks_them() {
        let planned = plan_alteration(&[
            alteration(&[("user", Some("alice"))], &[("producer_byte_rate", Some(1024.0))]),
            alteration(&[("user", Some("alice"))], &[("consumer_byte_rate", Some(1.0))]),
            alteration(&[("client-id", Some("app"))], &[("producer_byte_rate", Some(1.5))]),
            alteration(&[("user", Some(""))], &[]),
            alteration(&[("group", Some("g"))], &[]),
            alteration(&[("ip", Some("1.2.3.4")), ("user", None)], &[]),
            alteration(&[("user", None)], &[("bogus", Some(1.0))]),
            alteration(&[("client-id", Some("x"))], &[("controller_mutation_rate", Some(50.0))]),
            alteration(
                &[("client-id", None)],
                &[("producer_byte_rate", Some(5.0)), ("producer_byte_rate", None)],
            ),
            alteration(
                &[("user", Some("bob")), ("client-id", None)],
                &[("consumer_byte_rate", None)],
            ),
        ]);
        let messages: Vec<String> = planned
            .iter()
            .map(|p| match p {
                Ok(_) => "ok".to_string(),
                Err((_, m)) => m.clone(),
            })
            .collect();
        assert_eq!(messages[0], "ok");
        assert_eq!(
            messages[1],
            "Ignoring duplicate entity ClientQuotaEntity(entries={user=alice})"
        );
        assert_eq!(messages[2], "Configuration producer_byte_rate must be a Long value");
        assert_eq!(messages[3], "Empty user not supported");
        assert_eq!(messages[4], "Unhandled client quota entity type: group");
        assert_eq!(messages[5], "Invalid empty client quota entity");
        assert_eq!(messages[6], "Invalid configuration key bogus");
        assert!(messages[7].starts_with("controller_mutation_rate quotas are not enforced by oxka yet"));
        assert!(messages[8].starts_with("Duplicate quota key producer_byte_rate"));
        assert_eq!(messages[9], "ok");
    }

    #[test]
    fn filters_select_as_kafkas_image_does() {
        let both = QuotaEntity {
            user: Some(Some("alice".into())),
            client_id: Some(Some("app".into())),
            ip: None,
        };
        let image = image_with(&[
            (user(Some("alice")), PRODUCER_BYTE_RATE, 1.0),
            (user(None), PRODUCER_BYTE_RATE, 2.0),
            (client(Some("app")), PRODUCER_BYTE_RATE, 3.0),
            (both.clone(), PRODUCER_BYTE_RATE, 4.0),
        ]);
        let component = |kind: &str, match_type: i8, name: Option<&str>| Component {
            kind: kind.into(),
            match_type,
            name: name.map(String::from),
        };
        let entities = |components: &[Component], strict: bool| -> Vec<QuotaEntity> {
            describe(&image, components, strict)
                .unwrap()
                .into_iter()
                .map(|(e, _)| e)
                .collect()
        };
        assert_eq!(entities(&[], false).len(), 4);
        assert!(entities(&[], true).is_empty());
        assert_eq!(
            entities(&[component("user", 0, Some("alice"))], false),
            [user(Some("alice")), both.clone()]
        );
        assert_eq!(
            entities(&[component("user", 0, Some("alice"))], true),
            [user(Some("alice"))]
        );
        assert_eq!(entities(&[component("user", 1, None)], true), [user(None)]);
        assert_eq!(
            entities(&[component("user", 2, None)], true),
            [user(None), user(Some("alice"))]
        );
        assert_eq!(
            entities(
                &[component("user", 2, None), component("client-id", 0, Some("app"))],
                true
            ),
            [both]
        );
        let refused = |components: &[Component]| describe(&image, components, false).unwrap_err().1;
        assert!(refused(&[component("ip", 2, None), component("user", 2, None)]).contains("IP filter component"));
        assert_eq!(
            refused(&[component("user", 0, None)]),
            "Request specified MATCH_TYPE_EXACT, but set match string to null."
        );
        assert_eq!(refused(&[component("group", 2, None)]), "Unsupported entity type group");
    }

    #[test]
    fn limits_follow_kip55s_precedence_and_defaults_are_per_entity() {
        let both = QuotaEntity {
            user: Some(Some("alice".into())),
            client_id: Some(Some("app".into())),
            ip: None,
        };
        let image = image_with(&[
            (client(None), PRODUCER_BYTE_RATE, 8.0),
            (client(Some("app")), PRODUCER_BYTE_RATE, 7.0),
            (user(None), PRODUCER_BYTE_RATE, 6.0),
            (user(Some("alice")), PRODUCER_BYTE_RATE, 3.0),
            (both.clone(), PRODUCER_BYTE_RATE, 1.0),
        ]);
        let limit = |u: &str, c: &str| limit_for(&image, PRODUCER_BYTE_RATE, u, c);
        assert_eq!(limit("alice", "app"), Some((1.0, both)));
        assert_eq!(limit("alice", "other"), Some((3.0, user(Some("alice")))));
        // The default user's quota is each user's own: bob's rate is not carol's.
        assert_eq!(limit("bob", "app"), Some((6.0, user(Some("bob")))));
        assert_eq!(limit_for(&image, CONSUMER_BYTE_RATE, "bob", "app"), None);
        let clients_only = image_with(&[
            (client(None), PRODUCER_BYTE_RATE, 8.0),
            (client(Some("app")), PRODUCER_BYTE_RATE, 7.0),
        ]);
        assert_eq!(
            limit_for(&clients_only, PRODUCER_BYTE_RATE, "ANONYMOUS", "app"),
            Some((7.0, client(Some("app"))))
        );
        assert_eq!(
            limit_for(&clients_only, PRODUCER_BYTE_RATE, "ANONYMOUS", "x"),
            Some((8.0, client(Some("x"))))
        );
    }
}
