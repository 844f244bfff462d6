//! How this broker secures the connections it opens to other brokers (replica fetchers, transaction
//! markers, KIP-890 verifications), read as a Kafka broker reads it:
//!
//! - the inter-broker listener is `inter.broker.listener.name`, or the listener named after
//!   `security.inter.broker.protocol` (the two are mutually exclusive, as Kafka validates); with
//!   neither, the listener named PLAINTEXT (Kafka's default protocol), else the first listener;
//! - its security protocol comes from `listener.security.protocol.map`;
//! - TLS (SSL, SASL_SSL): the listener's own `ssl.*` settings (`listener.name.<l>.ssl.*` first, then
//!   `ssl.*`): its truststore checks the other brokers' certificates, its keystore is this broker's
//!   client certificate (presented whenever the peer asks, as Kafka's client does), and
//!   `ssl.endpoint.identification.algorithm` (`https`, the default, checks the host name; empty does not);
//! - SASL (SASL_PLAINTEXT, SASL_SSL): `sasl.mechanism.inter.broker.protocol` (PLAIN, SCRAM-SHA-256 or
//!   SCRAM-SHA-512; Kafka's default GSSAPI is refused with what to set) and the `username` and
//!   `password` options of the listener's JAAS line for that mechanism,
//!   `listener.name.<l>.<mechanism in lower case>.sasl.jaas.config`.
//!
//! Only values are checked here; the broker reads the PEM files when it connects.

use crate::raw::RawConfig;
use crate::sasl::{jaas_options, SaslConfig};
use crate::tls::{KeyStore, Pem, TlsConfig};
use crate::ConfigError;

/// The mechanisms a broker can log in to another broker with.
const CLIENT_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// The client side of the inter-broker listener. The default is PLAINTEXT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterBrokerSecurity {
    /// TLS toward other brokers (SSL, SASL_SSL).
    pub tls: Option<InterBrokerTls>,
    /// The SASL login toward other brokers (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: Option<InterBrokerLogin>,
}

impl InterBrokerSecurity {
    /// Kafka's name of the protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    pub fn protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
}

/// TLS settings of the inter-broker client, taken from the inter-broker listener's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterBrokerTls {
    /// The CAs that other brokers' certificates must chain to.
    pub truststore: Pem,
    /// This broker's certificate and key, presented when a peer asks for a client certificate.
    pub keystore: KeyStore,
    /// `ssl.endpoint.identification.algorithm=https`: the peer's certificate must name the host
    /// connected to.
    pub check_host_name: bool,
}

/// Who this broker logs in as to other brokers.
#[derive(Clone, PartialEq, Eq)]
pub struct InterBrokerLogin {
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for InterBrokerLogin {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InterBrokerLogin({} as {})", self.mechanism, self.username)
    }
}

/// The inter-broker listener's name: `inter.broker.listener.name`, or the listener named after
/// `security.inter.broker.protocol`, or PLAINTEXT when there is one, or the first listener.
pub fn listener_name(raw: &RawConfig, listeners: &[&str]) -> Result<String, ConfigError> {
    match (
        raw.string("inter.broker.listener.name"),
        raw.string("security.inter.broker.protocol"),
    ) {
        (Some(_), Some(_)) => Err(raw.invalid(
            "security.inter.broker.protocol",
            "only one of inter.broker.listener.name and security.inter.broker.protocol should be set".into(),
        )),
        (Some(name), None) => Ok(name),
        (None, Some(protocol)) => {
            if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&protocol.as_str()) {
                return Err(raw.invalid(
                    "security.inter.broker.protocol",
                    format!("{protocol} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                ));
            }
            if !listeners.contains(&protocol.as_str()) {
                return Err(raw.invalid(
                    "security.inter.broker.protocol",
                    format!(
                        "names the listener {protocol}, which is not among listeners; name the listener with inter.broker.listener.name instead"
                    ),
                ));
            }
            Ok(protocol)
        }
        (None, None) => Ok(if listeners.contains(&"PLAINTEXT") {
            "PLAINTEXT".to_string()
        } else {
            listeners.first().copied().unwrap_or("PLAINTEXT").to_string()
        }),
    }
}

impl InterBrokerSecurity {
    /// The client side of `listener`, given its server-side TLS and SASL settings (`None` where the
    /// listener's protocol has no TLS or no SASL).
    pub fn from_raw(
        raw: &RawConfig,
        listener: &str,
        tls: Option<&TlsConfig>,
        sasl: Option<&SaslConfig>,
    ) -> Result<InterBrokerSecurity, ConfigError> {
        let lower = listener.to_lowercase();
        let tls = match tls {
            None => None,
            Some(tls) => Some(client_tls(raw, listener, &lower, tls)?),
        };
        let sasl = match sasl {
            None => None,
            Some(sasl) => Some(client_login(raw, listener, &lower, sasl)?),
        };
        Ok(InterBrokerSecurity { tls, sasl })
    }
}

fn client_tls(raw: &RawConfig, listener: &str, lower: &str, tls: &TlsConfig) -> Result<InterBrokerTls, ConfigError> {
    let Some(truststore) = tls.truststore.clone() else {
        return Err(raw.invalid(
            &format!("listener.name.{lower}.ssl.truststore.location"),
            format!(
                "{listener} is the inter-broker listener and uses TLS, but has no truststore to check the other brokers' certificates: set ssl.truststore.location (a JKS, PKCS12 or PEM store, as ssl.truststore.type says; the CA that signed the brokers' certificates)"
            ),
        ));
    };
    // Present but empty means "no host name check", so this key is not read with the filter that
    // the other `ssl.*` keys use.
    let prefixed = format!("listener.name.{lower}.ssl.endpoint.identification.algorithm");
    let (key, algorithm) = match raw.string(&prefixed) {
        Some(v) => (prefixed, v),
        None => (
            "ssl.endpoint.identification.algorithm".to_string(),
            raw.string("ssl.endpoint.identification.algorithm")
                .unwrap_or_else(|| "https".into()),
        ),
    };
    let check_host_name = match algorithm.to_lowercase().as_str() {
        "https" => true,
        "" => false,
        _ => {
            return Err(raw.invalid(
                &key,
                format!("{algorithm:?} is not an endpoint identification algorithm: use https (check the host name) or leave it empty (do not)"),
            ))
        }
    };
    Ok(InterBrokerTls {
        truststore,
        keystore: tls.keystore.clone(),
        check_host_name,
    })
}

fn client_login(
    raw: &RawConfig,
    listener: &str,
    lower: &str,
    sasl: &SaslConfig,
) -> Result<InterBrokerLogin, ConfigError> {
    let mechanism_key = "sasl.mechanism.inter.broker.protocol";
    let mechanism = raw.string(mechanism_key).unwrap_or_else(|| "GSSAPI".into());
    if !CLIENT_MECHANISMS.contains(&mechanism.as_str()) {
        return Err(raw.invalid(
            mechanism_key,
            format!(
                "{listener} is the inter-broker listener and uses SASL, and brokers log in to each other with {} only: set {mechanism_key} to one of them (Kafka's default is GSSAPI)",
                CLIENT_MECHANISMS.join(", ")
            ),
        ));
    }
    if !sasl.mechanisms.contains(&mechanism) {
        return Err(raw.invalid(
            mechanism_key,
            format!(
                "{mechanism} must be among the inter-broker listener {listener}'s sasl.enabled.mechanisms ({})",
                sasl.mechanisms.join(", ")
            ),
        ));
    }
    let jaas_key = format!("listener.name.{lower}.{}.sasl.jaas.config", mechanism.to_lowercase());
    let module = if mechanism == "PLAIN" {
        PLAIN_MODULE
    } else {
        SCRAM_MODULE
    };
    let example = format!("{jaas_key}={module} required username=\"broker\" password=\"broker-secret\";");
    let Some(jaas) = raw.string(&jaas_key) else {
        return Err(raw.invalid(
            &jaas_key,
            format!("the inter-broker listener {listener} logs in with {mechanism}, but no username and password are set for it: set {example}"),
        ));
    };
    let (found, options) = jaas_options(&jaas).map_err(|reason| raw.invalid(&jaas_key, reason))?;
    if found != module {
        return Err(raw.invalid(
            &jaas_key,
            format!("the login module for {mechanism} is {module}, not {found}"),
        ));
    }
    let option = |name: &str| options.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match (option("username"), option("password")) {
        (Some(username), Some(password)) if !username.is_empty() => Ok(InterBrokerLogin {
            mechanism,
            username,
            password,
        }),
        _ => Err(raw.invalid(
            &jaas_key,
            format!("has no username and password options, which the broker logs in to other brokers with: {example}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::BrokerConfig;

    fn parse(text: &str) -> Result<BrokerConfig, String> {
        BrokerConfig::from_properties_text(text, "server.properties").map_err(|e| e.to_string())
    }

    const SSL_INTERNAL: &str = "listeners=PLAINTEXT://:9092,INTERNAL://:9093\n\
        listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SSL\n\
        inter.broker.listener.name=INTERNAL\n\
        ssl.keystore.type=PEM\nssl.keystore.location=/broker.pem\n";

    #[test]
    fn an_ssl_inter_broker_listener_lends_its_truststore_and_keystore() {
        let c = parse(&format!(
            "{SSL_INTERNAL}listener.name.internal.ssl.truststore.type=PEM\n\
             listener.name.internal.ssl.truststore.location=/ca.pem\n"
        ))
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.replication.inter_broker_listener, "INTERNAL");
        let s = &c.replication.inter_broker_security;
        assert_eq!(s.protocol(), "SSL");
        let tls = s.tls.as_ref().unwrap();
        assert_eq!(tls.truststore, crate::tls::Pem::File("/ca.pem".into()));
        assert_eq!(tls.keystore, crate::tls::KeyStore::File("/broker.pem".into()));
        assert!(tls.check_host_name, "https is Kafka's default");
        let c = parse(&format!(
            "{SSL_INTERNAL}ssl.truststore.type=PEM\nssl.truststore.location=/ca.pem\n\
             listener.name.internal.ssl.endpoint.identification.algorithm=\n"
        ))
        .unwrap();
        assert!(!c.replication.inter_broker_security.tls.unwrap().check_host_name);
    }

    #[test]
    fn tls_between_brokers_needs_a_truststore_and_a_known_algorithm() {
        let e = parse(SSL_INTERNAL).unwrap_err();
        assert!(
            e.contains("listener.name.internal.ssl.truststore.location") && e.contains("has no truststore"),
            "{e}"
        );
        let e = parse(&format!(
            "{SSL_INTERNAL}ssl.truststore.type=PEM\nssl.truststore.location=/ca.pem\n\
             ssl.endpoint.identification.algorithm=ldap\n"
        ))
        .unwrap_err();
        assert!(e.contains("not an endpoint identification algorithm"), "{e}");
    }

    #[test]
    fn the_listener_comes_from_one_of_two_exclusive_keys() {
        let e = parse("inter.broker.listener.name=PLAINTEXT\nsecurity.inter.broker.protocol=PLAINTEXT\n").unwrap_err();
        assert!(
            e.contains("only one of inter.broker.listener.name and security.inter.broker.protocol"),
            "{e}"
        );
        let c = parse(
            "listeners=PLAINTEXT://:9092,SSL://:9093\nsecurity.inter.broker.protocol=SSL\n\
             ssl.keystore.type=PEM\nssl.keystore.location=/k.pem\nssl.truststore.type=PEM\nssl.truststore.location=/ca.pem\n",
        )
        .unwrap();
        assert_eq!(c.replication.inter_broker_listener, "SSL");
        assert_eq!(c.replication.inter_broker_security.protocol(), "SSL");
        let e = parse("security.inter.broker.protocol=SSL\n").unwrap_err();
        assert!(e.contains("not among listeners"), "{e}");
        let e = parse("security.inter.broker.protocol=TLS\n").unwrap_err();
        assert!(e.contains("not one of PLAINTEXT, SSL"), "{e}");
        // Neither key: Kafka's default protocol PLAINTEXT, wherever that listener is in the list.
        let c = parse("listeners=SSL://:9093,PLAINTEXT://:9092\nssl.keystore.type=PEM\nssl.keystore.location=/k.pem\n")
            .unwrap();
        assert_eq!(c.replication.inter_broker_listener, "PLAINTEXT");
        assert_eq!(c.replication.inter_broker_security.protocol(), "PLAINTEXT");
    }

    const SASL_SSL: &str = "listeners=PLAINTEXT://:9092,SASL_SSL://:9093\n\
        inter.broker.listener.name=SASL_SSL\n\
        ssl.keystore.type=PEM\nssl.keystore.location=/broker.pem\n\
        ssl.truststore.type=PEM\nssl.truststore.location=/ca.pem\n\
        sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN\n\
        listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
        username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\";\n";

    #[test]
    fn the_sasl_login_comes_from_the_listeners_jaas_line_for_the_mechanism() {
        let c = parse(&format!(
            "{SASL_SSL}sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"broker\" password=\"broker-secret\";\n"
        ))
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        let s = &c.replication.inter_broker_security;
        assert_eq!(s.protocol(), "SASL_SSL");
        let login = s.sasl.as_ref().unwrap();
        assert_eq!(
            (
                login.mechanism.as_str(),
                login.username.as_str(),
                login.password.as_str()
            ),
            ("SCRAM-SHA-512", "broker", "broker-secret")
        );
        assert!(
            !format!("{s:?}").contains("broker-secret"),
            "the password is never printed"
        );
        let c = parse(&format!("{SASL_SSL}sasl.mechanism.inter.broker.protocol=PLAIN\n")).unwrap();
        let login = c.replication.inter_broker_security.sasl.unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("admin", "admin-secret")
        );
    }

    #[test]
    fn sasl_between_brokers_refusals_say_what_to_set() {
        let e = parse(SASL_SSL).unwrap_err();
        assert!(
            e.contains("sasl.mechanism.inter.broker.protocol") && e.contains("PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
            "{e}"
        );
        let e = parse(&format!(
            "{SASL_SSL}sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256\n"
        ))
        .unwrap_err();
        assert!(e.contains("must be among the inter-broker listener"), "{e}");
        let e = parse(&format!(
            "{SASL_SSL}sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config")
                && e.contains("ScramLoginModule required username="),
            "{e}"
        );
        let e = parse(&format!(
            "{SASL_SSL}sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required user_x=\"y\";\n"
        ))
        .unwrap_err();
        assert!(e.contains("has no username and password options"), "{e}");
        let e = parse(&format!(
            "{SASL_SSL}sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"b\";\n"
        ))
        .unwrap_err();
        assert!(e.contains("the login module for SCRAM-SHA-512 is"), "{e}");
    }
}
