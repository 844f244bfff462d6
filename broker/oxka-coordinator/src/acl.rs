//! ACLs (KIP-11, KIP-290's prefixed patterns) as the metadata log keeps them, and the decisions made
//! from them, as Kafka's `StandardAuthorizer` makes them: pure data and functions, no I/O.
//!
//! - `AclBinding`: one rule (a resource pattern, a principal, a host, an operation, ALLOW or DENY);
//! - `AclFilter`: what DescribeAcls and DeleteAcls select, with Kafka's ANY and MATCH;
//! - `validate`: the checks Kafka's controller makes of a new binding (`AclControlManager`);
//! - `authorize_any`: whether some resource of a type allows an operation (KIP-679's idempotent
//!   producer check);
//! - `authorize`: super users first; a matching DENY wins over any ALLOW; an ALLOW of READ, WRITE,
//!   DELETE or ALTER implies DESCRIBE and one of ALTER_CONFIGS implies DESCRIBE_CONFIGS; a resource with
//!   no ACL at all follows `allow.everyone.if.no.acl.found`.

use oxka_config::authorizer::AuthorizerConfig;
use serde::{Deserialize, Serialize};

/// The one name the CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard of a literal resource name, a principal (`User:*`) and a host.
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Kafka's `ResourceType` codes: 0 UNKNOWN, 1 ANY (filters only), then these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    pub const ANY: i8 = 1;

    pub fn code(self) -> i8 {
        match self {
            Self::Topic => 2,
            Self::Group => 3,
            Self::Cluster => 4,
            Self::TransactionalId => 5,
            Self::DelegationToken => 6,
            Self::User => 7,
        }
    }

    /// The operations an ACL on this type of resource can name (Kafka's
    /// `AclEntry.supportedOperations`): what an authorized-operations field reports on.
    pub fn supported_operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Self::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            Self::Group => &[Read, Describe, Delete],
            Self::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            Self::TransactionalId => &[Describe, Write],
            Self::DelegationToken => &[Describe],
            Self::User => &[CreateTokens, DescribeTokens],
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        [
            Self::Topic,
            Self::Group,
            Self::Cluster,
            Self::TransactionalId,
            Self::DelegationToken,
            Self::User,
        ]
        .into_iter()
        .find(|t| t.code() == code)
    }

    /// Kafka's name (`kafka-acls` prints it).
    pub fn name(self) -> &'static str {
        match self {
            Self::Topic => "TOPIC",
            Self::Group => "GROUP",
            Self::Cluster => "CLUSTER",
            Self::TransactionalId => "TRANSACTIONAL_ID",
            Self::DelegationToken => "DELEGATION_TOKEN",
            Self::User => "USER",
        }
    }
}

/// Kafka's `PatternType` codes: 0 UNKNOWN, 1 ANY and 2 MATCH (filters only), 3 LITERAL, 4 PREFIXED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Literal,
    Prefixed,
}

impl PatternType {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;

    pub fn code(self) -> i8 {
        match self {
            Self::Literal => 3,
            Self::Prefixed => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(Self::Literal),
            4 => Some(Self::Prefixed),
            _ => None,
        }
    }
}

/// Kafka's `AclOperation` codes: 0 UNKNOWN, 1 ANY (filters only), then these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
    TwoPhaseCommit,
}

impl Operation {
    pub const ANY: i8 = 1;

    const ALL_OPERATIONS: [Operation; 14] = [
        Self::All,
        Self::Read,
        Self::Write,
        Self::Create,
        Self::Delete,
        Self::Alter,
        Self::Describe,
        Self::ClusterAction,
        Self::DescribeConfigs,
        Self::AlterConfigs,
        Self::IdempotentWrite,
        Self::CreateTokens,
        Self::DescribeTokens,
        Self::TwoPhaseCommit,
    ];

    pub fn code(self) -> i8 {
        Self::ALL_OPERATIONS.iter().position(|o| *o == self).unwrap_or(0) as i8 + 2
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL_OPERATIONS.into_iter().find(|o| o.code() == code)
    }

    /// Whether an ALLOW of `self` also allows `wanted` (Kafka's implied operations).
    fn allows(self, wanted: Operation) -> bool {
        use Operation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }
}

/// Kafka's `AclPermissionType` codes: 0 UNKNOWN, 1 ANY (filters only), 2 DENY, 3 ALLOW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny,
    Allow,
}

impl Permission {
    pub const ANY: i8 = 1;

    pub fn code(self) -> i8 {
        match self {
            Self::Deny => 2,
            Self::Allow => 3,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Self::Deny),
            3 => Some(Self::Allow),
            _ => None,
        }
    }
}

/// One ACL: `permission` for `principal` from `host` to do `operation` on the resources the pattern
/// (`resource_type`, `resource_name`, `pattern_type`) names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Whether the pattern covers the resource `name` of its type.
    fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }
}

/// A binding as a request sends it (wire codes), before `validate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// Checks a new binding as Kafka's broker and controller do; the refusal is INVALID_REQUEST's message.
pub fn validate(wire: &WireBinding) -> Result<AclBinding, String> {
    let resource_type = ResourceType::from_code(wire.resource_type)
        .ok_or_else(|| format!("Invalid resourceType {}", resource_type_name(wire.resource_type)))?;
    let pattern_type = PatternType::from_code(wire.pattern_type)
        .ok_or_else(|| format!("Invalid patternType {}", pattern_type_name(wire.pattern_type)))?;
    let operation = Operation::from_code(wire.operation)
        .ok_or_else(|| format!("Invalid operation {}", operation_name(wire.operation)))?;
    let permission = Permission::from_code(wire.permission)
        .ok_or_else(|| format!("Invalid permissionType {}", permission_name(wire.permission)))?;
    if wire.resource_name.is_empty() {
        return Err("Invalid empty resource name".to_string());
    }
    if resource_type == ResourceType::Cluster && wire.resource_name != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if !wire.principal.contains(':') {
        return Err(format!(
            "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
            wire.principal
        ));
    }
    Ok(AclBinding {
        resource_type,
        resource_name: wire.resource_name.clone(),
        pattern_type,
        principal: wire.principal.clone(),
        host: wire.host.clone(),
        operation,
        permission,
    })
}

/// What DescribeAcls and DeleteAcls select. `None` fields match anything, as Kafka's null does; the
/// codes keep ANY (1) and MATCH (2), which no stored binding carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    /// Kafka refuses a filter with an UNKNOWN (0 or unrecognised) code in it.
    pub fn check(&self) -> Result<(), String> {
        let known = |code: i8, any: i8, specific: bool| code == any || specific;
        if !known(
            self.resource_type,
            ResourceType::ANY,
            ResourceType::from_code(self.resource_type).is_some(),
        ) || !(self.pattern_type == PatternType::ANY
            || self.pattern_type == PatternType::MATCH
            || PatternType::from_code(self.pattern_type).is_some())
        {
            return Err("Unknown patternFilter.".to_string());
        }
        if !known(
            self.operation,
            Operation::ANY,
            Operation::from_code(self.operation).is_some(),
        ) || !known(
            self.permission,
            Permission::ANY,
            Permission::from_code(self.permission).is_some(),
        ) {
            return Err("Unknown entryFilter.".to_string());
        }
        Ok(())
    }

    pub fn matches(&self, acl: &AclBinding) -> bool {
        let type_ok = self.resource_type == ResourceType::ANY || self.resource_type == acl.resource_type.code();
        let pattern_ok = match self.pattern_type {
            PatternType::ANY => self.resource_name.as_ref().is_none_or(|n| *n == acl.resource_name),
            PatternType::MATCH => match &self.resource_name {
                None => true,
                Some(name) => match acl.pattern_type {
                    PatternType::Literal => acl.resource_name == *name || acl.resource_name == WILDCARD,
                    PatternType::Prefixed => name.starts_with(&acl.resource_name),
                },
            },
            code => {
                code == acl.pattern_type.code() && self.resource_name.as_ref().is_none_or(|n| *n == acl.resource_name)
            }
        };
        type_ok
            && pattern_ok
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == Operation::ANY || self.operation == acl.operation.code())
            && (self.permission == Permission::ANY || self.permission == acl.permission.code())
    }
}

/// Whether `principal` (`User:alice`) connecting from `host` may do `operation` on the resource.
pub fn authorize<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding>,
    settings: &AuthorizerConfig,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if settings.super_users.iter().any(|s| s == principal) {
        return true;
    }
    let (mut any_for_resource, mut allowed) = (false, false);
    for acl in acls.into_iter().filter(|a| a.covers(resource_type, name)) {
        any_for_resource = true;
        let principal_ok = acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL;
        let host_ok = acl.host == host || acl.host == WILDCARD;
        if !principal_ok || !host_ok {
            continue;
        }
        match acl.permission {
            Permission::Deny if acl.operation == Operation::All || acl.operation == operation => return false,
            Permission::Deny => {}
            Permission::Allow => allowed |= acl.operation.allows(operation),
        }
    }
    allowed || (!any_for_resource && settings.allow_everyone_if_no_acl_found)
}

/// Whether `principal` may do `operation` on some resource of `resource_type` (Kafka's
/// `authorizeByResourceType`, which KIP-679 uses for idempotent producers: WRITE on any topic): an ALLOW
/// whose pattern no matching DENY covers, or no ACL of that type at all under the no-ACL rule.
pub fn authorize_any<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
    settings: &AuthorizerConfig,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
) -> bool {
    if settings.super_users.iter().any(|s| s == principal) {
        return true;
    }
    let applies = |acl: &&AclBinding| {
        acl.resource_type == resource_type
            && (acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL)
            && (acl.host == host || acl.host == WILDCARD)
    };
    let denies: Vec<&AclBinding> = acls
        .clone()
        .into_iter()
        .filter(applies)
        .filter(|a| a.permission == Permission::Deny && (a.operation == Operation::All || a.operation == operation))
        .collect();
    let denied = |allow: &AclBinding| {
        denies.iter().any(|d| match (d.pattern_type, allow.pattern_type) {
            (PatternType::Literal, _) if d.resource_name == WILDCARD => true,
            (PatternType::Literal, PatternType::Literal) => d.resource_name == allow.resource_name,
            (PatternType::Prefixed, _) => allow.resource_name.starts_with(&d.resource_name),
            (PatternType::Literal, PatternType::Prefixed) => false,
        })
    };
    let mut any_of_type = false;
    for acl in acls {
        any_of_type |= acl.resource_type == resource_type;
        if applies(&acl) && acl.permission == Permission::Allow && acl.operation.allows(operation) && !denied(acl) {
            return true;
        }
    }
    !any_of_type && settings.allow_everyone_if_no_acl_found
}

fn resource_type_name(code: i8) -> &'static str {
    match code {
        ResourceType::ANY => "ANY",
        c => ResourceType::from_code(c).map(ResourceType::name).unwrap_or("UNKNOWN"),
    }
}

fn pattern_type_name(code: i8) -> &'static str {
    match code {
        PatternType::ANY => "ANY",
        PatternType::MATCH => "MATCH",
        3 => "LITERAL",
        4 => "PREFIXED",
        _ => "UNKNOWN",
    }
}

fn operation_name(code: i8) -> &'static str {
    match code {
        Operation::ANY => "ANY",
        _ => "UNKNOWN",
    }
}

fn permission_name(code: i8) -> &'static str {
    match code {
        Permission::ANY => "ANY",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation,
            permission,
        }
    }

    fn allowed(acls: &[AclBinding], principal: &str, operation: Operation, rt: ResourceType, name: &str) -> bool {
        authorize(
            acls,
            &AuthorizerConfig::default(),
            principal,
            "10.0.0.1",
            operation,
            rt,
            name,
        )
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    #[test]
    fn read_on_a_topic_allows_read_and_describe_of_that_topic_only() {
        let acls = [acl(Topic, "a", Literal, "User:alice", Read, Allow)];
        assert!(allowed(&acls, "User:alice", Read, Topic, "a"));
        assert!(allowed(&acls, "User:alice", Describe, Topic, "a"));
        assert!(!allowed(&acls, "User:alice", Write, Topic, "a"));
        assert!(!allowed(&acls, "User:alice", Read, Topic, "b"));
        assert!(!allowed(&acls, "User:bob", Read, Topic, "a"));
        assert!(!allowed(&acls, "User:alice", Read, Group, "a"));
    }

    #[test]
    fn deny_wins_over_allow_and_all_covers_every_operation() {
        let acls = [
            acl(Topic, "*", Literal, "User:*", All, Allow),
            acl(Topic, "secret", Literal, "User:alice", Read, Deny),
        ];
        assert!(allowed(&acls, "User:alice", Write, Topic, "secret"));
        assert!(!allowed(&acls, "User:alice", Read, Topic, "secret"));
        assert!(allowed(&acls, "User:bob", Read, Topic, "secret"));
        // A DENY of READ does not deny DESCRIBE (implication is for ALLOW only).
        assert!(allowed(&acls, "User:alice", Describe, Topic, "secret"));
    }

    #[test]
    fn prefixed_patterns_cover_names_that_start_with_them() {
        let acls = [acl(Topic, "logs-", Prefixed, "User:alice", Write, Allow)];
        assert!(allowed(&acls, "User:alice", Write, Topic, "logs-web"));
        assert!(allowed(&acls, "User:alice", Write, Topic, "logs-"));
        assert!(!allowed(&acls, "User:alice", Write, Topic, "log"));
    }

    #[test]
    fn alter_configs_implies_describe_configs_and_hosts_must_match() {
        let mut a = acl(Topic, "t", Literal, "User:alice", AlterConfigs, Allow);
        a.host = "10.0.0.1".into();
        let acls = [a];
        assert!(allowed(&acls, "User:alice", DescribeConfigs, Topic, "t"));
        assert!(!authorize(
            &acls,
            &AuthorizerConfig::default(),
            "User:alice",
            "10.0.0.2",
            DescribeConfigs,
            Topic,
            "t"
        ));
    }

    #[test]
    fn super_users_and_the_no_acl_rule() {
        let acls = [acl(Topic, "a", Literal, "User:alice", Read, Allow)];
        let settings = AuthorizerConfig {
            super_users: vec!["User:admin".into(), "User:broker".into()],
            allow_everyone_if_no_acl_found: true,
        };
        let decide = |p: &str, name: &str| authorize(&acls, &settings, p, "h", Write, Topic, name);
        assert!(decide("User:admin", "a"));
        assert!(decide("User:broker", "a"));
        // `a` has an ACL, so the no-ACL rule does not apply to it; `b` has none.
        assert!(!decide("User:bob", "a"));
        assert!(decide("User:bob", "b"));
        assert!(!allowed(&acls, "User:bob", Write, Topic, "b"));
    }

    #[test]
    fn validate_refuses_as_kafka_does() {
        let good = WireBinding {
            resource_type: 2,
            resource_name: "a".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        };
        let made = validate(&good).unwrap();
        assert_eq!(
            (made.resource_type, made.operation, made.permission),
            (Topic, Read, Allow)
        );
        let refused = |change: &dyn Fn(&mut WireBinding)| {
            let mut w = good.clone();
            change(&mut w);
            validate(&w).unwrap_err()
        };
        assert_eq!(refused(&|w| w.resource_type = 1), "Invalid resourceType ANY");
        assert_eq!(refused(&|w| w.pattern_type = 2), "Invalid patternType MATCH");
        assert_eq!(refused(&|w| w.operation = 1), "Invalid operation ANY");
        assert_eq!(refused(&|w| w.permission = 0), "Invalid permissionType UNKNOWN");
        assert_eq!(refused(&|w| w.resource_name.clear()), "Invalid empty resource name");
        assert!(refused(&|w| w.principal = "alice".into()).starts_with("Could not parse principal from `alice`"));
        assert_eq!(
            refused(&|w| w.resource_type = 4),
            "The only valid name for the CLUSTER resource is kafka-cluster"
        );
    }

    #[test]
    fn filters_select_as_kafka_describe_and_delete_do() {
        let literal = acl(Topic, "logs-web", Literal, "User:alice", Read, Allow);
        let prefixed = acl(Topic, "logs-", Prefixed, "User:bob", Write, Allow);
        let wildcard = acl(Topic, "*", Literal, "User:carol", Read, Deny);
        let filter = |pattern_type: i8, name: Option<&str>| AclFilter {
            resource_type: ResourceType::ANY,
            resource_name: name.map(String::from),
            pattern_type,
            principal: None,
            host: None,
            operation: Operation::ANY,
            permission: Permission::ANY,
        };
        let all = [&literal, &prefixed, &wildcard];
        let picked = |f: &AclFilter| all.iter().filter(|a| f.matches(a)).count();
        assert_eq!(picked(&filter(PatternType::ANY, None)), 3);
        assert_eq!(picked(&filter(PatternType::ANY, Some("logs-web"))), 1);
        assert_eq!(picked(&filter(PatternType::MATCH, Some("logs-web"))), 3);
        assert_eq!(picked(&filter(4, Some("logs-"))), 1);
        assert_eq!(picked(&filter(3, None)), 2);
        let mut unknown = filter(PatternType::ANY, None);
        unknown.operation = 0;
        assert_eq!(unknown.check(), Err("Unknown entryFilter.".to_string()));
        assert!(filter(PatternType::MATCH, None).check().is_ok());
    }

    #[test]
    fn write_on_any_topic_is_what_an_idempotent_producer_needs() {
        let settings = AuthorizerConfig::default();
        let any = |acls: &[AclBinding], p: &str| authorize_any(acls, &settings, p, "h", Write, Topic);
        let allow = acl(Topic, "logs-", Prefixed, "User:alice", Write, Allow);
        assert!(any(std::slice::from_ref(&allow), "User:alice"));
        assert!(!any(std::slice::from_ref(&allow), "User:bob"));
        assert!(!any(
            &[acl(Topic, "a", Literal, "User:alice", Read, Allow)],
            "User:alice"
        ));
        let denied_all = [allow.clone(), acl(Topic, "*", Literal, "User:alice", Write, Deny)];
        assert!(!any(&denied_all, "User:alice"));
        let denied_prefix = [allow, acl(Topic, "logs", Prefixed, "User:*", All, Deny)];
        assert!(!any(&denied_prefix, "User:alice"));
    }

    #[test]
    fn codes_round_trip() {
        for code in 2..=15 {
            assert_eq!(Operation::from_code(code).map(Operation::code), Some(code));
        }
        assert_eq!(Operation::from_code(16), None);
        assert_eq!(Operation::from_code(Operation::ANY), None);
        for code in 2..=7 {
            assert_eq!(ResourceType::from_code(code).map(ResourceType::code), Some(code));
        }
    }
}
