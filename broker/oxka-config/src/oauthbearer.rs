//! The OAUTHBEARER settings of a SASL listener (KIP-768's broker side, as Kafka's
//! `OAuthBearerValidatorCallbackHandler` reads them): the JSON Web Key Set that signs the tokens, and
//! what a token's claims must say. Each key may carry Kafka's `listener.name.<name>.oauthbearer.`
//! prefix, which wins.
//!
//! ```text
//! listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
//! sasl.oauthbearer.jwks.endpoint.url=file:///etc/oxka/jwks.json
//! sasl.oauthbearer.expected.audience=kafka
//! sasl.oauthbearer.expected.issuer=https://issuer.example.com
//! ```
//!
//! The key set is read from a `file:` URL (reread every `sasl.oauthbearer.jwks.endpoint.refresh.ms`,
//! and at once when a token names a key it does not hold); HTTP endpoints are not fetched yet.
//! Kafka's unsecured validator (unsigned tokens, its default) is never used: a listener serving
//! OAUTHBEARER must name a key set.

use std::path::PathBuf;

use crate::raw::RawConfig;
use crate::ConfigError;

/// Kafka's validator that checks signed tokens against a key set; the only server callback served.
pub const VALIDATOR_CLASS: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearerConfig {
    /// The JSON Web Key Set file (`sasl.oauthbearer.jwks.endpoint.url=file:...`).
    pub jwks_file: PathBuf,
    /// How often the key set is reread, in ms (`sasl.oauthbearer.jwks.endpoint.refresh.ms`, 1 h).
    pub jwks_refresh_ms: u64,
    /// `sasl.oauthbearer.expected.audience`: a token's `aud` must name one of them (none: any).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`: a token's `iss` must be this (unset: any).
    pub expected_issuer: Option<String>,
    /// The claim that names the principal (`sasl.oauthbearer.sub.claim.name`, `sub`).
    pub sub_claim: String,
    /// The claim that holds the scopes (`sasl.oauthbearer.scope.claim.name`, `scope`).
    pub scope_claim: String,
    /// Seconds of clock difference allowed when checking `exp`, `nbf` and `iat`
    /// (`sasl.oauthbearer.clock.skew.seconds`, 30).
    pub clock_skew_s: i64,
}

impl OAuthBearerConfig {
    pub fn from_raw(raw: &RawConfig, listener: &str) -> Result<OAuthBearerConfig, ConfigError> {
        let prefixed = |key: &str| {
            let listener_key = format!("listener.name.{listener}.oauthbearer.{key}");
            if raw.setting(&listener_key).is_some() {
                listener_key
            } else {
                key.to_string()
            }
        };
        let handler_key = prefixed("sasl.server.callback.handler.class");
        if let Some(class) = raw.string(&handler_key) {
            if class != VALIDATOR_CLASS {
                return Err(raw.invalid(
                    &handler_key,
                    format!("OAUTHBEARER tokens are checked by oxka's own validator, which stands for {VALIDATOR_CLASS}; other callback handlers cannot be loaded"),
                ));
            }
        }
        raw.accept(&prefixed("sasl.jaas.config"));
        let url_key = prefixed("sasl.oauthbearer.jwks.endpoint.url");
        let Some(url) = raw.string(&url_key) else {
            return Err(raw.invalid(
                &url_key,
                format!(
                    "listener {listener} serves OAUTHBEARER but names no key set to check tokens with: set {url_key}=file:///path/to/jwks.json (unsigned tokens, Kafka's unsecured default, are never accepted)"
                ),
            ));
        };
        let jwks_file = match url.strip_prefix("file://").or_else(|| url.strip_prefix("file:")) {
            Some(path) if path.starts_with('/') => PathBuf::from(path),
            _ => {
                return Err(raw.invalid(
                    &url_key,
                    "only file: URLs of an absolute path are read (file:///etc/oxka/jwks.json); HTTP key set endpoints are not fetched yet".into(),
                ))
            }
        };
        let list = |key: &str| -> Vec<String> {
            raw.string(&prefixed(key))
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(OAuthBearerConfig {
            jwks_file,
            jwks_refresh_ms: raw
                .ranged(&prefixed("sasl.oauthbearer.jwks.endpoint.refresh.ms"), 1, u64::MAX)?
                .unwrap_or(3_600_000),
            expected_audience: list("sasl.oauthbearer.expected.audience"),
            expected_issuer: raw.string(&prefixed("sasl.oauthbearer.expected.issuer")),
            sub_claim: raw
                .string(&prefixed("sasl.oauthbearer.sub.claim.name"))
                .unwrap_or_else(|| "sub".into()),
            scope_claim: raw
                .string(&prefixed("sasl.oauthbearer.scope.claim.name"))
                .unwrap_or_else(|| "scope".into()),
            clock_skew_s: raw
                .ranged(&prefixed("sasl.oauthbearer.clock.skew.seconds"), 0, 86_400)?
                .unwrap_or(30),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<OAuthBearerConfig, String> {
        let raw = RawConfig::from_text(text, "server.properties").unwrap();
        OAuthBearerConfig::from_raw(&raw, "sasl_ssl").map_err(|e| e.to_string())
    }

    #[test]
    fn reads_kafkas_keys_with_the_listener_prefix_first() {
        let c = config(
            "sasl.oauthbearer.jwks.endpoint.url=file:///etc/jwks.json\n\
             listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.expected.audience=kafka, other\n\
             sasl.oauthbearer.expected.audience=ignored\n\
             sasl.oauthbearer.expected.issuer=https://issuer\n\
             listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler\n",
        )
        .unwrap();
        assert_eq!(c.jwks_file, PathBuf::from("/etc/jwks.json"));
        assert_eq!(c.expected_audience, ["kafka", "other"]);
        assert_eq!(c.expected_issuer.as_deref(), Some("https://issuer"));
        assert_eq!(
            (c.sub_claim.as_str(), c.clock_skew_s, c.jwks_refresh_ms),
            ("sub", 30, 3_600_000)
        );
    }

    #[test]
    fn refusals_say_what_to_set() {
        let e = config("").unwrap_err();
        assert!(e.contains("names no key set"), "{e}");
        let e = config("sasl.oauthbearer.jwks.endpoint.url=https://idp/jwks\n").unwrap_err();
        assert!(e.contains("only file: URLs"), "{e}");
        let e = config(
            "sasl.oauthbearer.jwks.endpoint.url=file:///j\nsasl.server.callback.handler.class=com.example.Mine\n",
        )
        .unwrap_err();
        assert!(e.contains("other callback handlers cannot be loaded"), "{e}");
    }
}
