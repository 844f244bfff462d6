//! TLS between the coordinators of an ensemble (the Raft peer port), with ZooKeeper's quorum TLS
//! keys, since a coordinator reads `zookeeper.properties`:
//!
//! ```text
//! sslQuorum=true
//! ssl.quorum.keyStore.location=/etc/oxka/coordinator-1.pem   # key and certificate chain
//! ssl.quorum.keyStore.type=PEM          # or JKS, PKCS12 (with ssl.quorum.keyStore.password); unset: by file name
//! ssl.quorum.trustStore.location=/etc/oxka/ca.pem
//! ssl.quorum.trustStore.type=PEM
//! ssl.quorum.hostnameVerification=true                      # the default
//! ```
//!
//! As in ZooKeeper, quorum TLS is mutual: each member presents its keystore to the others and requires
//! theirs to chain to its truststore. Only the values are checked here; the coordinator reads the
//! files when it starts.

use crate::keystore::{zookeeper_store, StoreFile};
use crate::raw::RawConfig;
use crate::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTls {
    /// This member's key and certificate chain (`crate::keystore::load_keystore`).
    pub keystore: StoreFile,
    /// The CAs the other members' certificates must chain to (`crate::keystore::load_truststore`).
    pub truststore: StoreFile,
    /// `ssl.quorum.hostnameVerification` (true): a member's certificate must name the host of its
    /// `server.N` line.
    pub hostname_verification: bool,
}

/// `None` unless `sslQuorum=true`.
pub fn from_raw(raw: &RawConfig) -> Result<Option<QuorumTls>, ConfigError> {
    if !raw.boolean("sslQuorum")?.unwrap_or(false) {
        return Ok(None);
    }
    let store = |what: &str| -> Result<StoreFile, ConfigError> {
        let location = format!("ssl.quorum.{what}.location");
        let kind = format!("ssl.quorum.{what}.type");
        zookeeper_store(raw, &location, &kind, &format!("ssl.quorum.{what}.password"))?.ok_or_else(|| {
            raw.invalid(
                &location,
                format!("sslQuorum=true needs {location} (a JKS, PKCS12 or PEM store; {kind} says which, else the file name)"),
            )
        })
    };
    Ok(Some(QuorumTls {
        keystore: store("keyStore")?,
        truststore: store("trustStore")?,
        hostname_verification: raw.boolean("ssl.quorum.hostnameVerification")?.unwrap_or(true),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<QuorumTls>, String> {
        let raw = RawConfig::from_text(text, "zookeeper.properties").unwrap();
        from_raw(&raw).map_err(|e| e.to_string())
    }

    #[test]
    fn quorum_tls_takes_zookeepers_keys() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("sslQuorum=false\n").unwrap(), None);
        let tls = parse(
            "sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\nssl.quorum.keyStore.type=PEM\n\
             ssl.quorum.trustStore.location=/ca.pem\nssl.quorum.trustStore.type=PEM\n\
             ssl.quorum.hostnameVerification=false\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(tls.keystore.path, std::path::PathBuf::from("/k.pem"));
        assert_eq!(tls.truststore.path, std::path::PathBuf::from("/ca.pem"));
        assert!(!tls.hostname_verification);
        let tls = parse(
            "sslQuorum=true\nssl.quorum.keyStore.location=/k.jks\nssl.quorum.keyStore.password=s\n\
             ssl.quorum.trustStore.location=/ca.p12\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            tls.keystore.kind,
            crate::keystore::StoreType::Jks,
            "by the file name, as ZooKeeper"
        );
        assert_eq!(
            tls.keystore.password,
            Some(("ssl.quorum.keyStore.password".into(), "s".into()))
        );
        assert_eq!(tls.truststore.kind, crate::keystore::StoreType::Pkcs12);
        assert!(tls.hostname_verification, "true by default");
    }

    #[test]
    fn refusals_say_what_to_set() {
        let e = parse("sslQuorum=true\n").unwrap_err();
        assert!(e.contains("sslQuorum=true needs ssl.quorum.keyStore.location"), "{e}");
        let e = parse("sslQuorum=true\nssl.quorum.keyStore.location=/k\nssl.quorum.keyStore.type=JCEKS\n").unwrap_err();
        assert!(
            e.contains("ssl.quorum.keyStore.type") && e.contains("JCEKS stores are not supported"),
            "{e}"
        );
        let e =
            parse("sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\nssl.quorum.keyStore.type=PEM\n").unwrap_err();
        assert!(e.contains("ssl.quorum.trustStore.location"), "{e}");
    }
}
