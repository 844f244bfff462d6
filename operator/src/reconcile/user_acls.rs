//! A KafkaUser's ACL rules as Kafka's ACL bindings, and the difference between the bindings the
//! spec asks for and those Kafka has for the user's principal: what to create and what to delete so
//! that exactly the spec's bindings exist. Pure: `user_admin` sends the requests.
//!
//! One rule with several operations is one binding per operation, as `kafka-acls --operation A
//! --operation B` makes. Codes are Kafka's (`AclOperation`, `ResourceType`, `PatternType`,
//! `AclPermissionType`).

use std::collections::BTreeSet;

use crate::crd::user::{AclOperation, AclPatternType, AclResourceType, AclRule, AclRuleType};

/// Kafka's name of the one cluster resource.
pub const CLUSTER_RESOURCE: &str = "kafka-cluster";

/// One ACL binding as Kafka stores it, with Kafka's codes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Binding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl std::fmt::Display for Binding {
    /// As `kafka-acls --list` prints a binding, roughly: who, what, on which resource.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} from {} on {} {} ({})",
            self.principal,
            if self.permission == DENY { "DENY" } else { "ALLOW" },
            operation_name(self.operation),
            self.host,
            resource_type_name(self.resource_type),
            self.resource_name,
            if self.pattern_type == PREFIXED {
                "PREFIXED"
            } else {
                "LITERAL"
            },
        )
    }
}

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_GROUP: i8 = 3;
pub const RESOURCE_CLUSTER: i8 = 4;
pub const RESOURCE_TRANSACTIONAL_ID: i8 = 5;
pub const LITERAL: i8 = 3;
pub const PREFIXED: i8 = 4;
pub const DENY: i8 = 2;
pub const ALLOW: i8 = 3;
pub const OPERATION_CLUSTER_ACTION: i8 = 9;

pub fn resource_type_code(t: AclResourceType) -> i8 {
    match t {
        AclResourceType::Topic => RESOURCE_TOPIC,
        AclResourceType::Group => RESOURCE_GROUP,
        AclResourceType::Cluster => RESOURCE_CLUSTER,
        AclResourceType::TransactionalId => RESOURCE_TRANSACTIONAL_ID,
    }
}

fn resource_type_name(code: i8) -> &'static str {
    match code {
        RESOURCE_TOPIC => "Topic",
        RESOURCE_GROUP => "Group",
        RESOURCE_CLUSTER => "Cluster",
        RESOURCE_TRANSACTIONAL_ID => "TransactionalId",
        _ => "resource",
    }
}

pub fn operation_code(op: AclOperation) -> i8 {
    match op {
        AclOperation::All => 2,
        AclOperation::Read => 3,
        AclOperation::Write => 4,
        AclOperation::Create => 5,
        AclOperation::Delete => 6,
        AclOperation::Alter => 7,
        AclOperation::Describe => 8,
        AclOperation::ClusterAction => OPERATION_CLUSTER_ACTION,
        AclOperation::DescribeConfigs => 10,
        AclOperation::AlterConfigs => 11,
        AclOperation::IdempotentWrite => 12,
    }
}

fn operation_name(code: i8) -> &'static str {
    match code {
        2 => "All",
        3 => "Read",
        4 => "Write",
        5 => "Create",
        6 => "Delete",
        7 => "Alter",
        8 => "Describe",
        9 => "ClusterAction",
        10 => "DescribeConfigs",
        11 => "AlterConfigs",
        12 => "IdempotentWrite",
        _ => "an operation",
    }
}

/// The principal of KafkaUser `name`.
pub fn principal(name: &str) -> String {
    format!("User:{name}")
}

/// The bindings `rules` ask for, for `principal`.
pub fn desired(principal: &str, rules: &[AclRule]) -> BTreeSet<Binding> {
    let mut out = BTreeSet::new();
    for rule in rules {
        let resource_type = resource_type_code(rule.resource.type_);
        let resource_name = if rule.resource.type_ == AclResourceType::Cluster {
            CLUSTER_RESOURCE.to_string()
        } else {
            rule.resource.name.clone().unwrap_or_else(|| "*".to_string())
        };
        let pattern_type = match rule.resource.pattern_type {
            Some(AclPatternType::Prefix) if rule.resource.type_ != AclResourceType::Cluster => PREFIXED,
            _ => LITERAL,
        };
        let permission = match rule.type_ {
            Some(AclRuleType::Deny) => DENY,
            _ => ALLOW,
        };
        for op in &rule.operations {
            out.insert(Binding {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type,
                principal: principal.to_string(),
                host: rule.host.clone().unwrap_or_else(|| "*".to_string()),
                operation: operation_code(*op),
                permission,
            });
        }
    }
    out
}

/// What to create and what to delete so that `actual` becomes `desired`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclDiff {
    pub create: Vec<Binding>,
    pub delete: Vec<Binding>,
}

impl AclDiff {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

pub fn diff(desired: &BTreeSet<Binding>, actual: &BTreeSet<Binding>) -> AclDiff {
    AclDiff {
        create: desired.difference(actual).cloned().collect(),
        delete: actual.difference(desired).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<AclRule> {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn each_operation_is_a_binding_with_kafkas_codes() {
        let want = desired(
            "User:alice",
            &rules(
                "- resource: {type: topic, name: orders}\n  operations: [Read, Describe]\n\
                 - resource: {type: group, name: app-, patternType: prefix}\n  operations: [Read]\n  host: 10.0.0.1\n\
                 - resource: {type: cluster}\n  operations: [Create]\n  type: deny\n",
            ),
        );
        let got: Vec<String> = want.iter().map(|b| b.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "User:alice ALLOW Read from * on Topic orders (LITERAL)",
                "User:alice ALLOW Describe from * on Topic orders (LITERAL)",
                "User:alice ALLOW Read from 10.0.0.1 on Group app- (PREFIXED)",
                "User:alice DENY Create from * on Cluster kafka-cluster (LITERAL)",
            ]
        );
    }

    #[test]
    fn the_diff_creates_what_is_missing_and_deletes_what_the_spec_dropped() {
        let before = desired(
            "User:a",
            &rules("- resource: {type: topic, name: t}\n  operations: [Read, Write]\n"),
        );
        let after = desired(
            "User:a",
            &rules("- resource: {type: topic, name: t}\n  operations: [Read, Describe]\n"),
        );
        let d = diff(&after, &before);
        assert_eq!(d.create.len(), 1);
        assert_eq!(d.create[0].operation, 8, "Describe");
        assert_eq!(d.delete.len(), 1);
        assert_eq!(d.delete[0].operation, 4, "Write");
        assert!(diff(&after, &after).is_empty());
        // Dropping every rule deletes every binding.
        let d = diff(&BTreeSet::new(), &after);
        assert_eq!((d.create.len(), d.delete.len()), (0, 2));
    }
}
