//! The authorizer settings (Kafka's `authorizer.class.name`, `super.users`,
//! `allow.everyone.if.no.acl.found`). Kafka's own class names select oxka's built-in authorizer, so a
//! `server.properties` written for Apache Kafka works unchanged; any other class is refused at start-up.

use super::raw::{ConfigError, RawConfig};

/// The class names that select the built-in ACL authorizer: KRaft's, ZooKeeper-mode Kafka's (2.x–3.x)
/// and the pre-2.0 one.
pub const AUTHORIZER_CLASSES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
];

/// The built-in authorizer's settings; present only when `authorizer.class.name` selects it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Principals allowed everything, as `Type:name` (`User:admin`).
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found` (default false): a resource with no ACL at all is open to all.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// `None` when no authorizer is configured (everything is allowed, and the ACL APIs answer
    /// SECURITY_DISABLED, as Kafka's do).
    pub fn from_raw(raw: &RawConfig) -> Result<Option<Self>, ConfigError> {
        let super_users = parse_super_users(&raw.string("super.users").unwrap_or_default());
        if let Some(bad) = super_users.iter().find(|p| !p.contains(':')) {
            return Err(raw.invalid(
                "super.users",
                format!("{bad:?} is not a principal; write Type:name (User:admin), separated by ;"),
            ));
        }
        let allow_everyone_if_no_acl_found = raw.boolean("allow.everyone.if.no.acl.found")?.unwrap_or(false);
        match raw.string("authorizer.class.name").filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(class) if AUTHORIZER_CLASSES.contains(&class.as_str()) => Ok(Some(AuthorizerConfig {
                super_users,
                allow_everyone_if_no_acl_found,
            })),
            Some(_) => Err(raw.invalid(
                "authorizer.class.name",
                format!(
                    "oxka has one authorizer, its built-in ACL authorizer; select it with one of {}",
                    AUTHORIZER_CLASSES.join(", ")
                ),
            )),
        }
    }
}

/// `super.users`: principals separated by `;` (Kafka's separator, since a principal may hold commas).
pub fn parse_super_users(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<Option<AuthorizerConfig>, ConfigError> {
        AuthorizerConfig::from_raw(&RawConfig::from_text(text, "server.properties").unwrap())
    }

    #[test]
    fn kafkas_class_names_select_the_built_in_authorizer() {
        assert_eq!(config("").unwrap(), None);
        assert_eq!(config("super.users=User:admin").unwrap(), None);
        let made = config(
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
             super.users=User:admin;User:CN=broker,O=oxka\nallow.everyone.if.no.acl.found=true",
        )
        .unwrap()
        .unwrap();
        assert_eq!(made.super_users, vec!["User:admin", "User:CN=broker,O=oxka"]);
        assert!(made.allow_everyone_if_no_acl_found);
        assert!(config("authorizer.class.name=kafka.security.authorizer.AclAuthorizer")
            .unwrap()
            .is_some());
    }

    #[test]
    fn other_classes_and_bad_principals_are_refused() {
        let e = config("authorizer.class.name=com.example.Mine")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("authorizer.class.name") && e.contains("StandardAuthorizer"),
            "{e}"
        );
        let e = config("authorizer.class.name=kafka.security.authorizer.AclAuthorizer\nsuper.users=admin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("super.users") && e.contains("Type:name"), "{e}");
    }
}
