//! TLS on the link from brokers to the coordinator ensemble, with the keys a Kafka user already knows
//! for ZooKeeper (KIP-515 on the broker, ZooKeeper's own on the server), since a coordinator reads
//! `zookeeper.properties` and a broker `zookeeper.connect`:
//!
//! ```text
//! # zookeeper.properties (each coordinator): a second, TLS-only client port
//! secureClientPort=2182
//! ssl.keyStore.location=/etc/oxka/coordinator-1.pem     # key and certificate chain, PEM
//! ssl.keyStore.type=PEM
//! ssl.trustStore.location=/etc/oxka/ca.pem              # needed unless ssl.clientAuth=none
//! ssl.trustStore.type=PEM
//! ssl.clientAuth=need                                   # ZooKeeper's default; want, none
//!
//! # server.properties (each broker)
//! zookeeper.connect=coordinator-1:2182,coordinator-2:2182,coordinator-3:2182
//! zookeeper.ssl.client.enable=true
//! zookeeper.ssl.truststore.location=/etc/oxka/ca.pem
//! zookeeper.ssl.truststore.type=PEM
//! zookeeper.ssl.keystore.location=/etc/oxka/broker-1.pem   # the client certificate (clientAuth=need)
//! zookeeper.ssl.keystore.type=PEM
//! zookeeper.ssl.endpoint.identification.algorithm=HTTPS   # the default; empty: no host name check
//! ```
//!
//! The stores may also be JKS or PKCS12 (`*.type`, with `*.password`); with the type unset the file
//! name decides, as in ZooKeeper. Only the values are checked here; the files are read when the
//! process starts.

use crate::keystore::{zookeeper_store, StoreFile};
use crate::raw::RawConfig;
use crate::ConfigError;

/// `ssl.clientAuth` of a coordinator's `secureClientPort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Want,
    Need,
}

/// A coordinator's TLS client port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureClientPort {
    pub port: u16,
    pub keystore: StoreFile,
    pub truststore: Option<StoreFile>,
    pub client_auth: ClientAuth,
}

/// A broker's TLS settings toward the ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleClientTls {
    pub truststore: StoreFile,
    pub keystore: Option<StoreFile>,
    pub check_host_name: bool,
}

/// The store named by `location` (JKS, PKCS12 or PEM, as `kind` says or else the file name).
fn pem_store(raw: &RawConfig, location: &str, kind: &str, _what: &str) -> Result<Option<StoreFile>, ConfigError> {
    let password = kind.replace(".type", ".password");
    zookeeper_store(raw, location, kind, &password)
}

/// `secureClientPort` and its `ssl.*` keys (a coordinator); `None` without `secureClientPort`.
pub fn secure_client_port(raw: &RawConfig) -> Result<Option<SecureClientPort>, ConfigError> {
    let Some(port) = raw.ranged::<u16>("secureClientPort", 0, u16::MAX)? else {
        return Ok(None);
    };
    let keystore = pem_store(raw, "ssl.keyStore.location", "ssl.keyStore.type", "key and certificate chain")?
        .ok_or_else(|| {
            raw.invalid(
                "ssl.keyStore.location",
                "secureClientPort needs ssl.keyStore.location (a JKS, PKCS12 or PEM store with the key and certificate chain; ssl.keyStore.type says which, else the file name)".into(),
            )
        })?;
    let truststore = pem_store(raw, "ssl.trustStore.location", "ssl.trustStore.type", "CA certificates")?;
    let client_auth = match raw.string("ssl.clientAuth").map(|v| v.to_lowercase()).as_deref() {
        None | Some("need") => ClientAuth::Need,
        Some("want") => ClientAuth::Want,
        Some("none") => ClientAuth::None,
        Some(other) => {
            return Err(raw.invalid("ssl.clientAuth", format!("{other:?} is not one of need, want, none")));
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(raw.invalid(
            "ssl.trustStore.location",
            "ssl.clientAuth (need, ZooKeeper's default, or want) checks client certificates against a truststore: set ssl.trustStore.location, or ssl.clientAuth=none".into(),
        ));
    }
    Ok(Some(SecureClientPort {
        port,
        keystore,
        truststore,
        client_auth,
    }))
}

/// `zookeeper.ssl.*` (a broker); `None` unless `zookeeper.ssl.client.enable=true`.
pub fn client(raw: &RawConfig) -> Result<Option<EnsembleClientTls>, ConfigError> {
    // Kafka reads these for its ZooKeeper client; accepted here whether or not TLS is on.
    raw.accept("zookeeper.clientCnxnSocket");
    if !raw.boolean("zookeeper.ssl.client.enable")?.unwrap_or(false) {
        return Ok(None);
    }
    let truststore = pem_store(
        raw,
        "zookeeper.ssl.truststore.location",
        "zookeeper.ssl.truststore.type",
        "CA certificates",
    )?
    .ok_or_else(|| {
        raw.invalid(
            "zookeeper.ssl.truststore.location",
            "zookeeper.ssl.client.enable=true needs zookeeper.ssl.truststore.location (the CA of the coordinators' certificates; zookeeper.ssl.truststore.type JKS, PKCS12 or PEM, else by the file name)".into(),
        )
    })?;
    let keystore = pem_store(
        raw,
        "zookeeper.ssl.keystore.location",
        "zookeeper.ssl.keystore.type",
        "key and certificate chain",
    )?;
    let check_host_name = match raw
        .string("zookeeper.ssl.endpoint.identification.algorithm")
        .map(|v| v.to_lowercase())
        .as_deref()
    {
        None | Some("https") => true,
        Some("") => false,
        Some(other) => {
            return Err(raw.invalid(
                "zookeeper.ssl.endpoint.identification.algorithm",
                format!("{other:?} is not HTTPS (check the host name) or empty (do not)"),
            ))
        }
    };
    Ok(Some(EnsembleClientTls {
        truststore,
        keystore,
        check_host_name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawConfig {
        RawConfig::from_text(text, "test.properties").unwrap()
    }

    #[test]
    fn a_secure_client_port_takes_zookeepers_keys() {
        assert_eq!(secure_client_port(&raw("")).unwrap(), None);
        let p = secure_client_port(&raw(
            "secureClientPort=2182\nssl.keyStore.location=/k.pem\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location=/ca.pem\nssl.trustStore.type=PEM\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!((p.port, p.client_auth), (2182, ClientAuth::Need));
        let e = secure_client_port(&raw(
            "secureClientPort=2182\nssl.keyStore.location=/k.pem\nssl.keyStore.type=PEM\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ssl.trustStore.location") && e.contains("ssl.clientAuth=none"),
            "{e}"
        );
        let p = secure_client_port(&raw(
            "secureClientPort=2182\nssl.keyStore.location=/k.pem\nssl.keyStore.type=PEM\nssl.clientAuth=none\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(p.client_auth, ClientAuth::None);
        let e = secure_client_port(&raw("secureClientPort=2182\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs ssl.keyStore.location"), "{e}");
    }

    #[test]
    fn the_keys_are_known_to_both_roles() {
        let c = crate::BrokerConfig::from_properties_text(
            "zookeeper.connect=127.0.0.1:2182\nzookeeper.ssl.client.enable=true\n\
             zookeeper.ssl.truststore.location=/ca.pem\nzookeeper.ssl.truststore.type=PEM\n\
             zookeeper.ssl.keystore.location=/b.pem\nzookeeper.ssl.keystore.type=PEM\n\
             zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\n",
            "server.properties",
        )
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(
            c.coordinator_tls.unwrap().keystore.map(|k| k.path),
            Some(std::path::PathBuf::from("/b.pem"))
        );
        let c = crate::CoordinatorConfig::from_properties_text(
            "dataDir=/tmp/zk\nsecureClientPort=2182\nssl.keyStore.location=/k.pem\nssl.keyStore.type=PEM\n\
             ssl.clientAuth=none\nsslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n\
             ssl.quorum.keyStore.type=PEM\nssl.quorum.trustStore.location=/ca.pem\nssl.quorum.trustStore.type=PEM\n",
            "zookeeper.properties",
        )
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.secure_client_port.unwrap().port, 2182);
        assert!(c.quorum_tls.is_some());
    }

    #[test]
    fn a_broker_takes_kip_515s_keys() {
        assert_eq!(client(&raw("")).unwrap(), None);
        let c = client(&raw(
            "zookeeper.ssl.client.enable=true\nzookeeper.ssl.truststore.location=/ca.pem\n\
             zookeeper.ssl.truststore.type=PEM\nzookeeper.ssl.endpoint.identification.algorithm=\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(c.truststore.path, std::path::PathBuf::from("/ca.pem"));
        assert!(!c.check_host_name && c.keystore.is_none());
        let e = client(&raw("zookeeper.ssl.client.enable=true\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs zookeeper.ssl.truststore.location"), "{e}");
        let e = client(&raw(
            "zookeeper.ssl.client.enable=true\nzookeeper.ssl.truststore.location=/ca\nzookeeper.ssl.truststore.type=JCEKS\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("zookeeper.ssl.truststore.type") && e.contains("JCEKS stores are not supported"),
            "{e}"
        );
        let c = client(&raw(
            "zookeeper.ssl.client.enable=true\nzookeeper.ssl.truststore.location=/ca.jks\nzookeeper.ssl.truststore.password=p\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.truststore.kind,
            crate::keystore::StoreType::Jks,
            "a .jks file, ZooKeeper's default"
        );
    }
}
