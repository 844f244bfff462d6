//! A JSON Web Key Set (RFC 7517) read from a file, and the check of a JSON Web Signature (RFC 7515)
//! against it: RSA PKCS#1 v1.5 (`RS256`, `RS384`, `RS512`) and ECDSA (`ES256` on P-256, `ES384` on
//! P-384), verified with `ring`. Unsigned tokens (`none`) and HMAC are never accepted.
//!
//! The set is reread when it is older than its refresh interval, and at once (at most every 10 s)
//! when a token names a key it does not hold, so a rotated key is picked up without a restart; a
//! file that cannot be read or parsed keeps the keys already held, and says so once a minute.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use oxka_protocol::util::RateLimitedLog;
use parking_lot::Mutex;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use tracing::warn;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Rereads for an unknown key id are at most this frequent.
const UNKNOWN_KEY_REREAD: Duration = Duration::from_secs(10);

/// One verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's `alg`, when the set names one (a token's `alg` must then be it).
    pub alg: Option<String>,
    pub key: KeyMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point (0x04 || x || y) on `curve` (`P-256` or `P-384`).
    Ec {
        curve: String,
        point: Vec<u8>,
    },
}

/// Parses a key set; keys of other types (`oct`, `OKP`) and encryption keys are left out.
pub fn parse_key_set(text: &str) -> Result<Vec<Jwk>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = json.get("keys").and_then(Value::as_array).ok_or("no \"keys\" array")?;
    let field = |k: &Value, name: &str| -> Result<Vec<u8>, String> {
        let text = k
            .get(name)
            .and_then(Value::as_str)
            .ok_or(format!("a key without \"{name}\""))?;
        B64URL
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("\"{name}\" is not base64url"))
    };
    let mut out = Vec::new();
    for k in keys {
        if k.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let key = match k.get("kty").and_then(Value::as_str) {
            Some("RSA") => KeyMaterial::Rsa {
                n: field(k, "n")?,
                e: field(k, "e")?,
            },
            Some("EC") => {
                let curve = k.get("crv").and_then(Value::as_str).unwrap_or_default().to_string();
                let mut point = vec![4u8];
                point.extend(field(k, "x")?);
                point.extend(field(k, "y")?);
                KeyMaterial::Ec { curve, point }
            }
            _ => continue,
        };
        out.push(Jwk {
            kid: k.get("kid").and_then(Value::as_str).map(String::from),
            alg: k.get("alg").and_then(Value::as_str).map(String::from),
            key,
        });
    }
    Ok(out)
}

/// Checks `signature` over `signed` (the token's `header.payload`) with `key` for `alg`.
pub fn verify(alg: &str, key: &KeyMaterial, signed: &[u8], sig: &[u8]) -> Result<(), String> {
    let ok = match (alg, key) {
        ("RS256" | "RS384" | "RS512", KeyMaterial::Rsa { n, e }) => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n, e }.verify(params, signed, sig).is_ok()
        }
        ("ES256", KeyMaterial::Ec { curve, point }) if curve == "P-256" => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, sig)
                .is_ok()
        }
        ("ES384", KeyMaterial::Ec { curve, point }) if curve == "P-384" => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(signed, sig)
                .is_ok()
        }
        ("RS256" | "RS384" | "RS512" | "ES256" | "ES384", _) => {
            return Err(format!("the key does not fit algorithm {alg}"));
        }
        _ => {
            return Err(format!(
                "signing algorithm {alg} is not accepted (RS256/384/512, ES256/384 are)"
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        Err("the signature does not verify".into())
    }
}

/// The key set of one listener, read from its file.
pub struct KeySet {
    path: PathBuf,
    refresh: Duration,
    held: Mutex<Held>,
    failures: RateLimitedLog,
}

struct Held {
    keys: Vec<Jwk>,
    read_at: Instant,
}

impl KeySet {
    /// Reads the set once; an unreadable or invalid file is an error here (start-up), later it only
    /// keeps the keys held.
    pub fn load(path: PathBuf, refresh: Duration) -> Result<KeySet, String> {
        let keys = read(&path)?;
        Ok(KeySet {
            path,
            refresh,
            held: Mutex::new(Held {
                keys,
                read_at: Instant::now(),
            }),
            failures: RateLimitedLog::new(Duration::from_secs(60)),
        })
    }

    /// The keys that may have signed a token with `kid` and `alg`, rereading the file when it is due
    /// or when no held key has that id.
    pub fn candidates(&self, kid: Option<&str>, alg: &str) -> Vec<Jwk> {
        let mut held = self.held.lock();
        let matching = |keys: &[Jwk]| -> Vec<Jwk> {
            keys.iter()
                .filter(|k| kid.is_none_or(|id| k.kid.as_deref() == Some(id)))
                .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg))
                .cloned()
                .collect()
        };
        let age = held.read_at.elapsed();
        let due = age >= self.refresh || (matching(&held.keys).is_empty() && age >= UNKNOWN_KEY_REREAD);
        if due {
            held.read_at = Instant::now();
            match read(&self.path) {
                Ok(keys) => held.keys = keys,
                Err(e) => {
                    if let Some(count) = self.failures.should_log(&e) {
                        warn!(path = %self.path.display(), count, "cannot reread the OAUTHBEARER key set, keeping the keys held: {e}");
                    }
                }
            }
        }
        matching(&held.keys)
    }
}

fn read(path: &std::path::Path) -> Result<Vec<Jwk>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = parse_key_set(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if keys.is_empty() {
        return Err(format!("{}: holds no signing key (RSA or EC)", path.display()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rsa_and_ec_keys_and_skips_the_rest() {
        let keys = parse_key_set(
            r#"{"keys":[
                {"kty":"RSA","kid":"r1","alg":"RS256","use":"sig","n":"AQAB","e":"AQAB"},
                {"kty":"EC","kid":"e1","crv":"P-256","x":"AQ","y":"Ag"},
                {"kty":"oct","k":"c2VjcmV0"},
                {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid.as_deref(), Some("r1"));
        assert_eq!(
            keys[1].key,
            KeyMaterial::Ec {
                curve: "P-256".into(),
                point: vec![4, 1, 2]
            }
        );
        assert!(parse_key_set("{}").is_err());
        assert!(parse_key_set("nope").is_err());
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused() {
        let key = KeyMaterial::Rsa { n: vec![1], e: vec![1] };
        assert!(verify("none", &key, b"x", b"").unwrap_err().contains("not accepted"));
        assert!(verify("HS256", &key, b"x", b"y").unwrap_err().contains("not accepted"));
        assert!(verify("ES256", &key, b"x", b"y").unwrap_err().contains("does not fit"));
    }
}
