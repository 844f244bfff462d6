//! The server side of SASL OAUTHBEARER (RFC 7628, KIP-255) with signed tokens (KIP-768): the client's
//! first message `n,[a=<authzid>],\x01auth=Bearer <jwt>\x01[key=value\x01]*\x01`, and the token checked
//! as Kafka's `BrokerJwtValidator` checks it: a JSON Web Signature from the listener's key set
//! (`jwks`), an `exp` not past, `nbf` and `iat` not ahead (both with the allowed clock skew), the
//! principal claim (`sub`) present, and the expected audience and issuer when configured.
//!
//! A token that fails is answered as Kafka answers it: the server's challenge
//! `{"status":"invalid_token"}`, the client's `\x01`, then SASL_AUTHENTICATION_FAILED with that
//! message; why it failed goes to the broker's log only.

use std::time::Duration;

use base64::Engine;
use oxka_config::oauthbearer::OAuthBearerConfig;
use serde_json::Value;

use super::jwks::{self, KeySet};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The challenge sent for a token that fails (Kafka's `jsonErrorResponse` for `invalid_token`).
pub const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

/// A token that passed: its principal name and when it expires (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal: String,
    pub expires_ms: i64,
}

/// The client's first message: the authorization id it asks for (may be empty) and the token.
pub fn client_first(message: &[u8]) -> Result<(String, String), String> {
    let text = std::str::from_utf8(message).map_err(|_| "Invalid OAUTHBEARER client first message".to_string())?;
    let invalid = || "Invalid OAUTHBEARER client first message".to_string();
    let rest = text.strip_prefix("n,").ok_or_else(invalid)?;
    let (authzid, rest) = rest.split_once(",\u{1}").ok_or_else(invalid)?;
    let authzid = match authzid {
        "" => String::new(),
        a => a
            .strip_prefix("a=")
            .ok_or_else(invalid)?
            .replace("=2C", ",")
            .replace("=3D", "="),
    };
    let pairs = rest.strip_suffix("\u{1}\u{1}").ok_or_else(invalid)?;
    let auth = pairs
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .ok_or_else(invalid)?;
    let (scheme, token) = auth.split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!("Invalid scheme in OAUTHBEARER client first message: {scheme}"));
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(invalid());
    }
    Ok((authzid, token.to_string()))
}

/// Checks a token for a listener; `now_ms` is the wall clock. The error is the reason, for the log.
pub fn validate(token: &str, config: &OAuthBearerConfig, keys: &KeySet, now_ms: i64) -> Result<ValidToken, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, sig] = parts.as_slice() else {
        return Err(format!("the token has {} parts, a signed JWT has 3", parts.len()));
    };
    let json = |part: &str, what: &str| -> Result<Value, String> {
        let bytes = B64URL
            .decode(part)
            .map_err(|_| format!("the {what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| format!("the {what} is not JSON"))
    };
    let header_json = json(header, "header")?;
    let alg = header_json
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("the header names no alg")?;
    let kid = header_json.get("kid").and_then(Value::as_str);
    let sig = B64URL
        .decode(sig)
        .map_err(|_| "the signature is not base64url".to_string())?;
    let signed = format!("{header}.{payload}");
    let candidates = keys.candidates(kid, alg);
    if candidates.is_empty() {
        return Err(match kid {
            Some(kid) => format!("no key {kid:?} for {alg} in the key set"),
            None => format!("no key for {alg} in the key set"),
        });
    }
    let mut last = String::new();
    let verified = candidates
        .iter()
        .any(|k| match jwks::verify(alg, &k.key, signed.as_bytes(), &sig) {
            Ok(()) => true,
            Err(e) => {
                last = e;
                false
            }
        });
    if !verified {
        return Err(last);
    }
    let claims = json(payload, "payload")?;
    check_claims(&claims, config, now_ms)
}

/// The claims of a token whose signature verified.
fn check_claims(claims: &Value, config: &OAuthBearerConfig, now_ms: i64) -> Result<ValidToken, String> {
    let skew_ms = config.clock_skew_s * 1000;
    let seconds = |name: &str| claims.get(name).and_then(Value::as_f64).map(|s| (s * 1000.0) as i64);
    let expires_ms = seconds("exp").ok_or("the token has no exp claim")?;
    if now_ms > expires_ms + skew_ms {
        return Err(format!("the token expired {} s ago", (now_ms - expires_ms) / 1000));
    }
    if let Some(nbf) = seconds("nbf").filter(|nbf| *nbf > now_ms + skew_ms) {
        return Err(format!(
            "the token is not valid before {} s from now",
            (nbf - now_ms) / 1000
        ));
    }
    if seconds("iat").is_some_and(|iat| iat > now_ms + skew_ms) {
        return Err("the token was issued in the future (iat)".into());
    }
    let principal = claims
        .get(&config.sub_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("the token has no {} claim", config.sub_claim))?;
    if !config.expected_audience.is_empty() {
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|a| config.expected_audience.iter().any(|e| e == a))
        {
            return Err(format!(
                "the token's audience {audiences:?} is none of {:?} (sasl.oauthbearer.expected.audience)",
                config.expected_audience
            ));
        }
    }
    if let Some(issuer) = &config.expected_issuer {
        let iss = claims.get("iss").and_then(Value::as_str);
        if iss != Some(issuer.as_str()) {
            return Err(format!(
                "the token's issuer {iss:?} is not {issuer:?} (sasl.oauthbearer.expected.issuer)"
            ));
        }
    }
    Ok(ValidToken {
        principal: principal.to_string(),
        expires_ms,
    })
}

/// The key set of a listener's OAUTHBEARER config.
pub fn key_set(config: &OAuthBearerConfig) -> Result<KeySet, String> {
    KeySet::load(config.jwks_file.clone(), Duration::from_millis(config.jwks_refresh_ms))
        .map_err(|e| format!("cannot read the OAUTHBEARER key set (sasl.oauthbearer.jwks.endpoint.url): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OAuthBearerConfig {
        OAuthBearerConfig {
            jwks_file: "/nonexistent".into(),
            jwks_refresh_ms: 1000,
            expected_audience: vec!["kafka".into()],
            expected_issuer: Some("https://issuer".into()),
            sub_claim: "sub".into(),
            scope_claim: "scope".into(),
            clock_skew_s: 30,
        }
    }

    #[test]
    fn client_first_messages_are_read_as_rfc_7628_writes_them() {
        assert_eq!(
            client_first(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01"),
            Ok((String::new(), "abc.def.ghi".into()))
        );
        assert_eq!(
            client_first(b"n,a=al=2Cice,\x01auth=Bearer a.b.c\x01ext=1\x01\x01"),
            Ok(("al,ice".into(), "a.b.c".into()))
        );
        assert!(client_first(b"n,,\x01auth=Basic a.b.c\x01\x01")
            .unwrap_err()
            .contains("Invalid scheme"));
        for bad in [
            &b"y,,\x01auth=Bearer a\x01\x01"[..],
            b"n,,\x01auth=Bearer a",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,\x01\x01",
        ] {
            assert!(client_first(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn claims_are_checked_as_kafkas_validator_checks_them() {
        let now = 1_000_000_000;
        let good = serde_json::json!({"sub": "alice", "exp": 1_000_100, "iat": 999_990, "aud": ["kafka"], "iss": "https://issuer"});
        assert_eq!(
            check_claims(&good, &config(), now),
            Ok(ValidToken {
                principal: "alice".into(),
                expires_ms: 1_000_100_000
            })
        );
        let with = |key: &str, value: Value| {
            let mut c = good.clone();
            c[key] = value;
            check_claims(&c, &config(), now).unwrap_err()
        };
        assert!(with("exp", 999_900.into()).contains("expired"));
        assert!(with("nbf", 1_000_060.into()).contains("not valid before"));
        assert!(with("aud", "other".into()).contains("audience"));
        assert!(with("iss", "https://evil".into()).contains("issuer"));
        assert!(with("sub", "".into()).contains("no sub claim"));
        // Within the clock skew an expired token still passes.
        let mut late = good.clone();
        late["exp"] = 999_980.into();
        assert!(check_claims(&late, &config(), now).is_ok());
    }
}
