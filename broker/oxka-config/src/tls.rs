//! The TLS settings of an `SSL` listener, from Kafka's `ssl.*` keys: each key is looked up first with
//! the listener's prefix (`listener.name.<name in lower case>.ssl.keystore.location`) and then bare, as
//! Kafka does. The broker's key and certificate chain come from a PEM keystore (`ssl.keystore.type=PEM`:
//! a file at `ssl.keystore.location` holding both, or the PEM text itself in
//! `ssl.keystore.certificate.chain` and `ssl.keystore.key`); client certificates are checked against a
//! PEM truststore (`ssl.truststore.location` or `ssl.truststore.certificates`) when
//! `ssl.client.auth` is `requested` or `required`. Only the values are checked here; the broker reads
//! the files when it starts the listener, and again whenever they change (`ssl.reload.interval.ms`).

use std::path::PathBuf;

use crate::raw::RawConfig;
use crate::ConfigError;

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// Where a truststore's certificates come from: a PEM file, the config value itself, or a JKS or
/// PKCS12 store (`crate::keystore::load_truststore` gives its certificates as PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
    Store(crate::keystore::StoreFile),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub listener: String,
    /// The broker's private key and certificate chain: one PEM file, or (chain, key) inline.
    pub keystore: KeyStore,
    pub truststore: Option<Pem>,
    pub client_auth: ClientAuth,
    /// From `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.
    pub tls12: bool,
    pub tls13: bool,
    /// `ssl.reload.interval.ms` (oxka's; Kafka reloads through AlterConfigs instead): how often the
    /// broker looks for changed keystore and truststore files and loads them without a restart.
    pub reload_interval_ms: u64,
    /// `ssl.principal.mapping.rules` (KIP-371): how a client certificate's subject becomes the
    /// connection's principal name (`DEFAULT`: the whole distinguished name).
    pub principal_rules: Vec<crate::principal_mapping::PrincipalRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// `ssl.keystore.location`: the key and the chain in one PEM file.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`.
    Inline { chain: String, key: String },
    /// A JKS or PKCS12 store at `ssl.keystore.location` (`crate::keystore::load_keystore`).
    Store(crate::keystore::StoreFile),
}

impl TlsConfig {
    pub fn from_raw(raw: &RawConfig, listener: &str) -> Result<TlsConfig, ConfigError> {
        let prefix = format!("listener.name.{}.", listener.to_lowercase());
        // (the key that was found, its value)
        let get = |key: &str| -> Option<(String, String)> {
            let prefixed = format!("{prefix}{key}");
            raw.string(&prefixed)
                .map(|v| (prefixed, v))
                .or_else(|| raw.string(key).map(|v| (key.to_string(), v)))
                .filter(|(_, v)| !v.trim().is_empty())
        };
        let invalid = |key: &str, reason: String| raw.invalid(key, reason);
        let store = |location: &str, kind: &str, password: &str, key_password: Option<&str>| {
            crate::keystore::store_file(&get, location, kind, password, key_password)
                .map_err(|(key, why)| invalid(&key, format!("listener {listener}: {why}")))
        };
        let keystore_type = get("ssl.keystore.type")
            .map(|(_, t)| t.trim().to_uppercase())
            .unwrap_or_else(|| "JKS".into());
        let keystore = if keystore_type != "PEM" {
            // JKS (Kafka's default) or PKCS12: a file with the store password, and the key's.
            match store("ssl.keystore.location", "ssl.keystore.type", "ssl.keystore.password", Some("ssl.key.password"))? {
                Some(file) => KeyStore::Store(file),
                None => {
                    return Err(invalid(
                        &format!("{prefix}ssl.keystore.location"),
                        format!("listener {listener} is SSL but has no keystore: set ssl.keystore.location (a {keystore_type} store; ssl.keystore.type is JKS when unset) and ssl.keystore.password"),
                    ))
                }
            }
        } else {
            let keystore = match (
                get("ssl.keystore.location"),
                get("ssl.keystore.certificate.chain"),
                get("ssl.keystore.key"),
            ) {
                (Some((_, location)), None, None) => KeyStore::File(PathBuf::from(location.trim())),
                (None, Some((_, chain)), Some((_, key))) => KeyStore::Inline { chain, key },
                (None, None, None) => {
                    return Err(invalid(
                        &format!("{prefix}ssl.keystore.location"),
                        format!(
                            "listener {listener} is SSL but has no keystore: set ssl.keystore.location (a PEM file with the key and the certificate chain), or ssl.keystore.certificate.chain and ssl.keystore.key"
                        ),
                    ))
                }
                (Some((key, _)), _, _) => {
                    return Err(invalid(
                        &key,
                        format!("listener {listener}: set either ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both"),
                    ))
                }
                (None, chain, _) => {
                    let missing = if chain.is_none() { "ssl.keystore.certificate.chain" } else { "ssl.keystore.key" };
                    return Err(invalid(
                        missing,
                        format!("listener {listener}: ssl.keystore.certificate.chain and ssl.keystore.key go together; {missing} is missing"),
                    ));
                }
            };
            for key in ["ssl.key.password", "ssl.keystore.password"] {
                if let Some((key, _)) = get(key) {
                    return Err(invalid(
                        &key,
                        format!("listener {listener}: encrypted PEM private keys are not supported; decrypt the key (openssl pkcs8 -topk8 -nocrypt) and drop {key}, or use a PKCS12 or JKS keystore"),
                    ));
                }
            }
            keystore
        };
        let truststore_type = get("ssl.truststore.type")
            .map(|(_, t)| t.trim().to_uppercase())
            .unwrap_or_else(|| "JKS".into());
        let truststore = match (get("ssl.truststore.location"), get("ssl.truststore.certificates")) {
            (Some(_), None) if truststore_type != "PEM" => {
                store("ssl.truststore.location", "ssl.truststore.type", "ssl.truststore.password", None)?.map(Pem::Store)
            }
            (Some((_, location)), None) => Some(Pem::File(PathBuf::from(location.trim()))),
            (None, Some((key, _))) if truststore_type != "PEM" => {
                return Err(invalid(
                    &key,
                    format!("listener {listener}: ssl.truststore.certificates is PEM text: set ssl.truststore.type=PEM (it is {truststore_type})"),
                ))
            }
            (None, Some((_, text))) => Some(Pem::Inline(text)),
            (None, None) => None,
            (Some((key, _)), Some(_)) => {
                return Err(invalid(
                    &key,
                    format!(
                        "listener {listener}: set ssl.truststore.location or ssl.truststore.certificates, not both"
                    ),
                ))
            }
        };
        let client_auth = match get("ssl.client.auth").map(|(k, v)| (k, v.trim().to_lowercase())) {
            None => ClientAuth::None,
            Some((_, v)) if v == "none" => ClientAuth::None,
            Some((_, v)) if v == "requested" => ClientAuth::Requested,
            Some((_, v)) if v == "required" => ClientAuth::Required,
            Some((key, v)) => {
                return Err(invalid(&key, format!("{v:?} is not one of none, requested, required")));
            }
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(invalid(
                &format!("{prefix}ssl.truststore.location"),
                format!("listener {listener}: ssl.client.auth={} needs a truststore to check client certificates against (ssl.truststore.location or ssl.truststore.certificates)", if client_auth == ClientAuth::Required { "required" } else { "requested" }),
            ));
        }
        let (mut tls12, mut tls13) = (true, true);
        if let Some((key, protocols)) = get("ssl.enabled.protocols") {
            (tls12, tls13) = (false, false);
            for p in protocols.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match p {
                    "TLSv1.2" => tls12 = true,
                    "TLSv1.3" => tls13 = true,
                    other => {
                        return Err(invalid(
                            &key,
                            format!("{other} is not served: oxka speaks TLSv1.2 and TLSv1.3"),
                        ))
                    }
                }
            }
            if !tls12 && !tls13 {
                return Err(invalid(&key, "names no protocol".into()));
            }
        }
        let reload_interval_ms = match get("ssl.reload.interval.ms") {
            None => 30_000,
            Some((key, v)) => match v.trim().parse::<u64>() {
                Ok(ms) if ms >= 100 => ms,
                _ => {
                    return Err(invalid(
                        &key,
                        format!("{v:?} is not a number of milliseconds of at least 100"),
                    ))
                }
            },
        };
        let principal_rules = match get("ssl.principal.mapping.rules") {
            None => vec![crate::principal_mapping::PrincipalRule::Default],
            Some((key, rules)) => {
                crate::principal_mapping::parse_rules(&rules).map_err(|reason| invalid(&key, reason))?
            }
        };
        Ok(TlsConfig {
            listener: listener.to_string(),
            keystore,
            truststore,
            client_auth,
            tls12,
            tls13,
            reload_interval_ms,
            principal_rules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(text: &str) -> Result<TlsConfig, String> {
        let raw = RawConfig::from_text(text, "server.properties").unwrap();
        TlsConfig::from_raw(&raw, "EXTERNAL").map_err(|e| e.to_string())
    }

    #[test]
    fn listener_prefixed_keys_win_over_bare_ones() {
        let c = tls("ssl.keystore.type=PEM\nssl.keystore.location=/bare.pem\n\
             listener.name.external.ssl.keystore.location=/external.pem\n\
             listener.name.external.ssl.truststore.type=PEM\n\
             listener.name.external.ssl.truststore.location=/ca.pem\n\
             listener.name.external.ssl.client.auth=required\n")
        .unwrap();
        assert_eq!(c.keystore, KeyStore::File("/external.pem".into()));
        assert_eq!(c.truststore, Some(Pem::File("/ca.pem".into())));
        assert_eq!(c.client_auth, ClientAuth::Required);
        assert!(c.tls12 && c.tls13);
    }

    #[test]
    fn refusals_name_the_key_and_what_to_do() {
        let e = tls("ssl.keystore.type=JCEKS\nssl.keystore.location=/k.jceks\n").unwrap_err();
        assert!(
            e.contains("ssl.keystore.type") && e.contains("JCEKS stores are not supported"),
            "{e}"
        );
        let e = tls("ssl.keystore.password=x\n").unwrap_err();
        assert!(e.contains("a JKS store; ssl.keystore.type is JKS when unset"), "{e}");
        let e = tls("ssl.keystore.location=/k.jks\nssl.truststore.certificates=C\n").unwrap_err();
        assert!(e.contains("ssl.truststore.certificates is PEM text"), "{e}");
        let e = tls("ssl.keystore.type=PEM\n").unwrap_err();
        assert!(e.contains("has no keystore"), "{e}");
        let e = tls("ssl.keystore.type=PEM\nssl.keystore.key=K\n").unwrap_err();
        assert!(e.contains("ssl.keystore.certificate.chain is missing"), "{e}");
        let e = tls("ssl.keystore.type=PEM\nssl.keystore.location=/k\nssl.client.auth=required\n").unwrap_err();
        assert!(e.contains("needs a truststore"), "{e}");
        let e = tls("ssl.keystore.type=PEM\nssl.keystore.location=/k\nssl.client.auth=maybe\n").unwrap_err();
        assert!(e.contains("not one of none, requested, required"), "{e}");
        let e = tls("ssl.keystore.type=PEM\nssl.keystore.location=/k\nssl.enabled.protocols=TLSv1.1\n").unwrap_err();
        assert!(e.contains("TLSv1.1 is not served"), "{e}");
        let e = tls("ssl.keystore.type=PEM\nssl.keystore.location=/k\nssl.key.password=x\n").unwrap_err();
        assert!(e.contains("encrypted PEM private keys are not supported"), "{e}");
    }

    #[test]
    fn jks_is_the_default_and_pkcs12_is_read() {
        let c = tls(
            "ssl.keystore.location=/k.jks\nssl.keystore.password=s\nssl.key.password=k\n\
             ssl.truststore.type=PKCS12\nssl.truststore.location=/t.p12\nssl.client.auth=required\n",
        )
        .unwrap();
        let KeyStore::Store(ks) = &c.keystore else {
            panic!("{:?}", c.keystore)
        };
        assert_eq!(ks.kind, crate::keystore::StoreType::Jks);
        assert_eq!(ks.password, Some(("ssl.keystore.password".into(), "s".into())));
        assert_eq!(ks.key_password, Some(("ssl.key.password".into(), "k".into())));
        let Some(Pem::Store(ts)) = &c.truststore else {
            panic!("{:?}", c.truststore)
        };
        assert_eq!(
            (ts.kind, ts.password.clone()),
            (crate::keystore::StoreType::Pkcs12, None)
        );
        assert!(!format!("{c:?}").contains("=s"), "passwords are not printed: {c:?}");
    }

    #[test]
    fn inline_pem_and_protocols() {
        let c = tls(
            "ssl.keystore.type=PEM\nssl.keystore.certificate.chain=CHAIN\nssl.keystore.key=KEY\n\
             ssl.enabled.protocols=TLSv1.3\n",
        )
        .unwrap();
        assert_eq!(
            c.keystore,
            KeyStore::Inline {
                chain: "CHAIN".into(),
                key: "KEY".into()
            }
        );
        assert!(!c.tls12 && c.tls13);
    }
}
