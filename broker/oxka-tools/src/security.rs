//! The security settings of a Kafka client properties file (`--command-config`, `--producer.config`,
//! ...), read as Kafka's clients read them: `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT,
//! SASL_SSL); for TLS a PEM truststore (`ssl.truststore.type=PEM` with `ssl.truststore.location` or
//! `ssl.truststore.certificates`), an optional PEM keystore for mutual TLS (`ssl.keystore.location`,
//! or `ssl.keystore.certificate.chain` with `ssl.keystore.key`) and
//! `ssl.endpoint.identification.algorithm` (`https`, the default, checks the broker's host name; empty
//! does not); for SASL `sasl.mechanism` PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with `sasl.jaas.config`'s
//! PlainLoginModule or ScramLoginModule username and password. What oxka's tools do not speak yet
//! (JKS/PKCS12 stores, encrypted keys, other SASL mechanisms) is refused with the key named, never
//! silently ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oxka_protocol::network::secure::{tls_client_config, ClientSecurity, PemSource, SaslLogin};

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// The security keys of one client configuration, gathered before they are checked together.
#[derive(Debug, Clone, Default)]
pub struct SecurityProps(BTreeMap<String, String>);

/// Keys read here; other `ssl.` / `sasl.` keys are refused.
const KNOWN: &[&str] = &[
    "security.protocol",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.endpoint.identification.algorithm",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "sasl.mechanism",
    "sasl.jaas.config",
];

impl SecurityProps {
    /// Whether `key` is a security key (taken here rather than by the caller).
    pub fn takes(key: &str) -> bool {
        key == "security.protocol"
            || key.starts_with("ssl.")
            || key.starts_with("sasl.")
            || key.starts_with("security.")
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if !KNOWN.contains(&key) {
            return Err("this security setting is not supported by oxka's tools yet; remove the line".to_string());
        }
        self.0.insert(key.to_string(), value.trim().to_string());
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The connection security these keys ask for; the error names the key and what to change.
    pub fn security(&self) -> Result<ClientSecurity, String> {
        let protocol = self.get("security.protocol").unwrap_or("PLAINTEXT").to_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(format!(
                    "security.protocol={other}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ))
            }
        };
        let mut security = ClientSecurity::default();
        if tls {
            for (kind, location_keys) in [
                (
                    "ssl.truststore.type",
                    ["ssl.truststore.location", "ssl.truststore.certificates"],
                ),
                (
                    "ssl.keystore.type",
                    ["ssl.keystore.location", "ssl.keystore.certificate.chain"],
                ),
            ] {
                let used = location_keys.iter().any(|k| self.get(k).is_some());
                let store_type = self.get(kind).unwrap_or("JKS");
                if used && !store_type.eq_ignore_ascii_case("PEM") {
                    return Err(format!(
                        "{kind}={store_type}: oxka's tools read PEM stores only so far; set {kind}=PEM with a PEM file"
                    ));
                }
            }
            if self.get("ssl.keystore.password").is_some() || self.get("ssl.truststore.password").is_some() {
                return Err(
                    "ssl.keystore.password / ssl.truststore.password: PEM stores here are not encrypted; remove the line"
                        .to_string(),
                );
            }
            let truststore_path = self.get("ssl.truststore.location").map(PathBuf::from);
            let truststore = match (&truststore_path, self.get("ssl.truststore.certificates")) {
                (Some(path), _) => Some(PemSource::File(path)),
                (None, Some(text)) => Some(PemSource::Inline(text)),
                (None, None) => None,
            };
            let keystore_path = self.get("ssl.keystore.location").map(PathBuf::from);
            let inline_keystore = match (self.get("ssl.keystore.certificate.chain"), self.get("ssl.keystore.key")) {
                (Some(chain), Some(key)) => Some(format!("{key}\n{chain}\n")),
                (None, None) => None,
                _ => {
                    return Err("ssl.keystore.certificate.chain and ssl.keystore.key go together; set both".to_string())
                }
            };
            let keystore = match (&keystore_path, &inline_keystore) {
                (Some(path), _) => Some(PemSource::File(path)),
                (None, Some(text)) => Some(PemSource::Inline(text)),
                (None, None) => None,
            };
            let check_host_name = match self.0.get("ssl.endpoint.identification.algorithm").map(String::as_str) {
                None => true,
                Some(v) if v.eq_ignore_ascii_case("https") => true,
                Some("") => false,
                Some(other) => {
                    return Err(format!(
                        "ssl.endpoint.identification.algorithm={other}: expected https or nothing"
                    ))
                }
            };
            security.tls = Some(tls_client_config(truststore, keystore, check_host_name)?);
        }
        if sasl {
            let mechanism = self.get("sasl.mechanism").unwrap_or("GSSAPI");
            let module = match mechanism {
                "PLAIN" => PLAIN_MODULE,
                "SCRAM-SHA-256" | "SCRAM-SHA-512" => SCRAM_MODULE,
                _ => {
                    return Err(format!(
                        "sasl.mechanism={mechanism}: oxka's tools speak PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 so far; set one of them"
                    ))
                }
            };
            let jaas = self.get("sasl.jaas.config").ok_or_else(|| {
                format!("sasl.jaas.config is missing: set it to {module} required username=\"...\" password=\"...\";")
            })?;
            let (found, options) =
                oxka_config::sasl::jaas_options(jaas).map_err(|e| format!("sasl.jaas.config: {e}"))?;
            if found != module {
                return Err(format!(
                    "sasl.jaas.config: sasl.mechanism={mechanism} logs in with {module}, not {found}"
                ));
            }
            let option = |name: &str| options.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            match (option("username"), option("password")) {
                (Some(user), Some(password)) => {
                    security.sasl = Some(SaslLogin {
                        mechanism: mechanism.to_string(),
                        user,
                        password,
                    })
                }
                _ => return Err("sasl.jaas.config needs username=\"...\" and password=\"...\"".to_string()),
            }
        }
        Ok(security)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(lines: &[(&str, &str)]) -> Result<ClientSecurity, String> {
        let mut props = SecurityProps::default();
        for (k, v) in lines {
            props.set(k, v)?;
        }
        props.security()
    }

    #[test]
    fn sasl_plain_credentials_come_from_the_jaas_line() {
        let s = security(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"a-secret\";",
            ),
        ])
        .unwrap();
        let login = s.sasl.unwrap();
        assert_eq!(
            (login.mechanism.as_str(), login.user.as_str(), login.password.as_str()),
            ("PLAIN", "alice", "a-secret")
        );
        assert!(s.tls.is_none());
    }

    #[test]
    fn what_the_tools_do_not_speak_is_refused_with_the_key() {
        let e = |lines: &[(&str, &str)]| security(lines).err().unwrap_or_default();
        assert!(e(&[("security.protocol", "SASL_PLAINTEXT")]).contains("sasl.mechanism=GSSAPI"));
        assert!(e(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"b\";"
            ),
        ])
        .contains("logs in with org.apache.kafka.common.security.scram.ScramLoginModule"));
        assert!(e(&[("security.protocol", "SSL")]).contains("set ssl.truststore.location"));
        assert!(
            e(&[("security.protocol", "SSL"), ("ssl.truststore.location", "/x.jks")])
                .contains("ssl.truststore.type=JKS")
        );
        assert!(e(&[("security.protocol", "TLS")]).contains("expected PLAINTEXT, SSL"));
        assert!(SecurityProps::default().set("sasl.login.class", "x").is_err());
        assert!(security(&[("security.protocol", "PLAINTEXT")]).unwrap().tls.is_none());
    }
}
