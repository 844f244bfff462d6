//! The SASL settings of a `SASL_PLAINTEXT` or `SASL_SSL` listener: `sasl.enabled.mechanisms` (with
//! Kafka's `listener.name.<name>.` prefix first) and, for PLAIN, the users from the listener's JAAS
//! line `listener.name.<name>.plain.sasl.jaas.config`, as a Kafka broker reads them:
//!
//! ```text
//! listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
//!     username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";
//! ```
//!
//! Every `user_NAME="PASSWORD"` option is a user who may log in. SCRAM-SHA-256 and SCRAM-SHA-512 take
//! their users from the credentials kept in the metadata log (`kafka-configs --alter --entity-type users
//! --add-config 'SCRAM-SHA-512=[password=...]'`), so they need no JAAS line on the broker.
//! OAUTHBEARER checks signed tokens against a JSON Web Key Set (`oauthbearer`). GSSAPI is refused with
//! what to do.

use std::collections::BTreeMap;

use crate::oauthbearer::OAuthBearerConfig;
use crate::raw::RawConfig;
use crate::ConfigError;

/// The mechanisms a broker serves.
const SERVED: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    pub listener: String,
    /// `sasl.enabled.mechanisms`, in order: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
    pub mechanisms: Vec<String>,
    /// PLAIN's users: name -> password (empty when PLAIN is not enabled).
    pub plain_users: BTreeMap<String, String>,
    /// KIP-368's `connections.max.reauth.ms` of each enabled mechanism (Kafka's key, which may be
    /// prefixed `listener.name.<listener>.<mechanism in lower case>.`); 0: sessions never expire.
    pub max_reauth_ms: BTreeMap<String, i64>,
    /// How OAUTHBEARER tokens are checked, when OAUTHBEARER is enabled.
    pub oauthbearer: Option<OAuthBearerConfig>,
}

impl SaslConfig {
    pub fn from_raw(raw: &RawConfig, listener: &str) -> Result<SaslConfig, ConfigError> {
        let lower = listener.to_lowercase();
        let prefixed = format!("listener.name.{lower}.sasl.enabled.mechanisms");
        let (key, mechanisms) = match raw.string(&prefixed) {
            Some(v) => (prefixed, v),
            None => (
                "sasl.enabled.mechanisms".to_string(),
                raw.string("sasl.enabled.mechanisms").unwrap_or_else(|| "GSSAPI".into()),
            ),
        };
        let mechanisms: Vec<String> = mechanisms
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        if let Some(other) = mechanisms.iter().find(|m| !SERVED.contains(&m.as_str())) {
            return Err(raw.invalid(
                &key,
                format!(
                    "listener {listener}: SASL mechanism {other} is not served yet; set {key} to one or more of {} (PLAIN's users in listener.name.{lower}.plain.sasl.jaas.config)",
                    SERVED.join(", ")
                ),
            ));
        }
        if mechanisms.is_empty() {
            return Err(raw.invalid(&key, format!("listener {listener}: names no SASL mechanism")));
        }
        let max_reauth_ms = max_reauth_ms(raw, &lower, &mechanisms)?;
        let oauthbearer = if mechanisms.iter().any(|m| m == "OAUTHBEARER") {
            Some(OAuthBearerConfig::from_raw(raw, &lower)?)
        } else {
            None
        };
        if !mechanisms.iter().any(|m| m == "PLAIN") {
            return Ok(SaslConfig {
                listener: listener.to_string(),
                mechanisms,
                plain_users: BTreeMap::new(),
                max_reauth_ms,
                oauthbearer,
            });
        }
        let jaas_key = format!("listener.name.{lower}.plain.sasl.jaas.config");
        let Some(jaas) = raw.string(&jaas_key) else {
            return Err(raw.invalid(
                &jaas_key,
                format!(
                    "listener {listener} serves SASL PLAIN but has no users: set {jaas_key}={PLAIN_MODULE} required user_alice=\"alice-secret\";"
                ),
            ));
        };
        let plain_users = plain_users(&jaas).map_err(|reason| raw.invalid(&jaas_key, reason))?;
        if plain_users.is_empty() {
            return Err(raw.invalid(&jaas_key, "lists no user: add user_NAME=\"PASSWORD\" options".into()));
        }
        Ok(SaslConfig {
            listener: listener.to_string(),
            mechanisms,
            plain_users,
            max_reauth_ms,
            oauthbearer,
        })
    }
}

/// `connections.max.reauth.ms` for each mechanism: the listener-and-mechanism key if set, else the
/// broker-wide key, else 0 (Kafka's default: no re-authentication).
fn max_reauth_ms(raw: &RawConfig, listener: &str, mechanisms: &[String]) -> Result<BTreeMap<String, i64>, ConfigError> {
    let broker_wide = raw.ranged("connections.max.reauth.ms", 0, i64::MAX)?.unwrap_or(0);
    mechanisms
        .iter()
        .map(|m| {
            let key = format!(
                "listener.name.{listener}.{}.connections.max.reauth.ms",
                m.to_lowercase()
            );
            let ms = raw.ranged(&key, 0, i64::MAX)?.unwrap_or(broker_wide);
            Ok((m.clone(), ms))
        })
        .collect()
}

/// The `user_NAME="PASSWORD"` options of a JAAS line for PlainLoginModule.
fn plain_users(jaas: &str) -> Result<BTreeMap<String, String>, String> {
    let (module, options) = jaas_options(jaas)?;
    if module != PLAIN_MODULE {
        return Err(format!("the login module for PLAIN is {PLAIN_MODULE}, not {module}"));
    }
    Ok(options
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("user_").map(|name| (name.to_string(), v)))
        .collect())
}

/// JAAS's `module.Class flag key="value" key2=value2;`: the module and its options.
pub fn jaas_options(text: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut chars = text.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars>| -> String {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    let flag = word(&mut chars);
    if module.is_empty() || !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err("expected `LoginModuleClass required key=\"value\" ...;`".into());
    }
    let mut options = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None => return Err("the JAAS line must end with ';'".into()),
            Some(';') => break,
            _ => {}
        }
        let key = word(&mut chars);
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!("option {key:?} has no value (key=\"value\")"));
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("the value of {key} has no closing quote")),
                    Some('"') => break,
                    Some('\\') => v.extend(chars.next()),
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            word(&mut chars)
        };
        options.push((key, value));
    }
    Ok((module, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(text: &str) -> Result<SaslConfig, String> {
        let raw = RawConfig::from_text(text, "server.properties").unwrap();
        SaslConfig::from_raw(&raw, "SASL_PLAINTEXT").map_err(|e| e.to_string())
    }

    #[test]
    fn plain_users_come_from_the_listeners_jaas_line() {
        let c = sasl(
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n\
             \x20 username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";\n",
        )
        .unwrap();
        assert_eq!(c.mechanisms, ["PLAIN"]);
        assert_eq!(
            c.plain_users.into_iter().collect::<Vec<_>>(),
            [
                ("admin".to_string(), "admin-secret".to_string()),
                ("alice".to_string(), "alice-secret".to_string())
            ]
        );
    }

    #[test]
    fn scram_alone_needs_no_jaas_line() {
        let c = sasl("sasl.enabled.mechanisms=SCRAM-SHA-512, SCRAM-SHA-256\n").unwrap();
        assert_eq!(c.mechanisms, ["SCRAM-SHA-512", "SCRAM-SHA-256"]);
        assert!(c.plain_users.is_empty());
    }

    #[test]
    fn jaas_values_may_be_quoted_with_escapes_or_bare() {
        let (module, options) = jaas_options(r#"M required a="x \"y\" z" b=bare ;"#).unwrap();
        assert_eq!(module, "M");
        assert_eq!(
            options,
            [
                ("a".to_string(), "x \"y\" z".to_string()),
                ("b".to_string(), "bare".to_string())
            ]
        );
    }

    #[test]
    fn reauthentication_lifetimes_are_per_mechanism_with_a_broker_wide_default() {
        let c = sasl(
            "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256\n\
             connections.max.reauth.ms=60000\n\
             listener.name.sasl_plaintext.scram-sha-256.connections.max.reauth.ms=5000\n",
        )
        .unwrap();
        assert_eq!(c.max_reauth_ms["SCRAM-SHA-512"], 60000);
        assert_eq!(c.max_reauth_ms["SCRAM-SHA-256"], 5000);
        let c = sasl("sasl.enabled.mechanisms=SCRAM-SHA-512\n").unwrap();
        assert_eq!(c.max_reauth_ms["SCRAM-SHA-512"], 0);
        let e = sasl("sasl.enabled.mechanisms=SCRAM-SHA-512\nconnections.max.reauth.ms=-1\n").unwrap_err();
        assert!(e.contains("connections.max.reauth.ms"), "{e}");
    }

    #[test]
    fn refusals_say_what_to_set() {
        let e = sasl("").unwrap_err();
        assert!(e.contains("SASL mechanism GSSAPI is not served yet"), "{e}");
        let e = sasl("sasl.enabled.mechanisms=PLAIN,GSSAPI\n").unwrap_err();
        assert!(e.contains("GSSAPI is not served yet"), "{e}");
        assert!(
            e.contains("one or more of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"),
            "{e}"
        );
        let e = sasl("sasl.enabled.mechanisms=OAUTHBEARER\n").unwrap_err();
        assert!(e.contains("names no key set"), "{e}");
        let e = sasl("sasl.enabled.mechanisms=PLAIN\n").unwrap_err();
        assert!(
            e.contains("has no users: set listener.name.sasl_plaintext.plain.sasl.jaas.config"),
            "{e}"
        );
        let e = sasl(
            "sasl.enabled.mechanisms=PLAIN\nlistener.name.sasl_plaintext.plain.sasl.jaas.config=Other required a=\"b\";\n",
        )
        .unwrap_err();
        assert!(e.contains("the login module for PLAIN is"), "{e}");
        let e = sasl(
            "sasl.enabled.mechanisms=PLAIN\nlistener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\"\n",
        )
        .unwrap_err();
        assert!(e.contains("must end with ';'"), "{e}");
    }
}
