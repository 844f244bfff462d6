//! The security settings of a Kafka client properties file (`--command-config`, `--producer.config`,
//! ...), read as Kafka's clients read them: `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT,
//! SASL_SSL); for TLS a truststore (`ssl.truststore.location`, a JKS, PKCS12 or PEM store as
//! `ssl.truststore.type` says, JKS when unset, with `ssl.truststore.password`; or PEM text in
//! `ssl.truststore.certificates`), an optional keystore for mutual TLS (`ssl.keystore.location` with
//! `ssl.keystore.password` and `ssl.key.password`, or PEM `ssl.keystore.certificate.chain` with
//! `ssl.keystore.key`) and
//! `ssl.endpoint.identification.algorithm` (`https`, the default, checks the broker's host name; empty
//! does not); for SASL `sasl.mechanism` PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with `sasl.jaas.config`'s
//! PlainLoginModule or ScramLoginModule username and password. What oxka's tools do not speak yet
//! (JCEKS stores, encrypted PEM keys, other SASL mechanisms) is refused with the key named, never
//! silently ignored.

use std::collections::BTreeMap;

use oxka_config::keystore::{keystore_pem, store_file, truststore_pem};
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
    "ssl.key.password",
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
            // JKS (the default type, as in Kafka's clients), PKCS12 or PEM files, read as PEM by
            // the broker's own loader; inline PEM only with the type PEM.
            let get = |key: &str| self.get(key).map(|v| (key.to_string(), v.to_string()));
            let file = |location: &str, kind: &str, password: &str, key_password: Option<&str>| {
                store_file(&get, location, kind, password, key_password).map_err(|(key, why)| format!("{key}: {why}"))
            };
            for (kind, inline) in [
                ("ssl.truststore.type", "ssl.truststore.certificates"),
                ("ssl.keystore.type", "ssl.keystore.certificate.chain"),
            ] {
                let store_type = self.get(kind).unwrap_or("JKS");
                if self.get(inline).is_some() && !store_type.eq_ignore_ascii_case("PEM") {
                    return Err(format!("{inline} is PEM text: set {kind}=PEM (it is {store_type})"));
                }
            }
            let truststore_pem = match file(
                "ssl.truststore.location",
                "ssl.truststore.type",
                "ssl.truststore.password",
                None,
            )? {
                Some(store) => Some(truststore_pem(&store)?),
                None => self.get("ssl.truststore.certificates").map(str::to_string),
            };
            let truststore = truststore_pem.as_deref().map(PemSource::Inline);
            let keystore_file = file(
                "ssl.keystore.location",
                "ssl.keystore.type",
                "ssl.keystore.password",
                Some("ssl.key.password"),
            )?;
            let inline_keystore = match (self.get("ssl.keystore.certificate.chain"), self.get("ssl.keystore.key")) {
                (Some(chain), Some(key)) => Some(format!("{key}\n{chain}\n")),
                (None, None) => None,
                _ => {
                    return Err("ssl.keystore.certificate.chain and ssl.keystore.key go together; set both".to_string())
                }
            };
            let keystore_pem = match keystore_file {
                Some(store) => Some(keystore_pem(&store)?),
                None => inline_keystore,
            };
            let keystore = keystore_pem.as_deref().map(PemSource::Inline);
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
        let jks = e(&[("security.protocol", "SSL"), ("ssl.truststore.location", "/x.jks")]);
        assert!(jks.contains("cannot read ssl.truststore.location /x.jks"), "{jks}");
        let jceks = e(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", "/x"),
            ("ssl.truststore.type", "JCEKS"),
        ]);
        assert!(
            jceks.contains("ssl.truststore.type: JCEKS stores are not supported"),
            "{jceks}"
        );
        assert!(e(&[("security.protocol", "TLS")]).contains("expected PLAINTEXT, SSL"));
        assert!(SecurityProps::default().set("sasl.login.class", "x").is_err());
        assert!(security(&[("security.protocol", "PLAINTEXT")]).unwrap().tls.is_none());
    }
}
