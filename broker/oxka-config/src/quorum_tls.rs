//! TLS between the coordinators of an ensemble (the Raft peer port), with ZooKeeper's quorum TLS
//! keys, since a coordinator reads `zookeeper.properties`:
//!
//! ```text
//! sslQuorum=true
//! ssl.quorum.keyStore.location=/etc/oxka/coordinator-1.pem   # key and certificate chain, PEM
//! ssl.quorum.keyStore.type=PEM
//! ssl.quorum.trustStore.location=/etc/oxka/ca.pem
//! ssl.quorum.trustStore.type=PEM
//! ssl.quorum.hostnameVerification=true                      # the default
//! ```
//!
//! As in ZooKeeper, quorum TLS is mutual: each member presents its keystore to the others and requires
//! theirs to chain to its truststore. Only the values are checked here; the coordinator reads the
//! files when it starts.

use std::path::PathBuf;

use crate::raw::RawConfig;
use crate::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTls {
    /// This member's key and certificate chain (one PEM file).
    pub keystore: PathBuf,
    /// The CAs the other members' certificates must chain to.
    pub truststore: PathBuf,
    /// `ssl.quorum.hostnameVerification` (true): a member's certificate must name the host of its
    /// `server.N` line.
    pub hostname_verification: bool,
}

/// `None` unless `sslQuorum=true`.
pub fn from_raw(raw: &RawConfig) -> Result<Option<QuorumTls>, ConfigError> {
    if !raw.boolean("sslQuorum")?.unwrap_or(false) {
        return Ok(None);
    }
    let store = |what: &str| -> Result<PathBuf, ConfigError> {
        let location = format!("ssl.quorum.{what}.location");
        let kind = format!("ssl.quorum.{what}.type");
        let Some(path) = raw.string(&location).filter(|p| !p.is_empty()) else {
            return Err(raw.invalid(
                &location,
                format!("sslQuorum=true needs {location} (a PEM file) and {kind}=PEM"),
            ));
        };
        match raw.string(&kind) {
            Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(PathBuf::from(path)),
            other => Err(raw.invalid(
                &kind,
                format!(
                    "{} is not supported yet; set {kind}=PEM with the {} in PEM",
                    other.unwrap_or_else(|| "unset (JKS)".into()),
                    if what == "keyStore" {
                        "key and certificate chain"
                    } else {
                        "CA certificates"
                    }
                ),
            )),
        }
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
        assert_eq!(tls.keystore, PathBuf::from("/k.pem"));
        assert_eq!(tls.truststore, PathBuf::from("/ca.pem"));
        assert!(!tls.hostname_verification);
    }

    #[test]
    fn refusals_say_what_to_set() {
        let e = parse("sslQuorum=true\n").unwrap_err();
        assert!(e.contains("sslQuorum=true needs ssl.quorum.keyStore.location"), "{e}");
        let e = parse("sslQuorum=true\nssl.quorum.keyStore.location=/k.jks\n").unwrap_err();
        assert!(
            e.contains("ssl.quorum.keyStore.type") && e.contains("not supported yet"),
            "{e}"
        );
        let e =
            parse("sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\nssl.quorum.keyStore.type=PEM\n").unwrap_err();
        assert!(e.contains("ssl.quorum.trustStore.location"), "{e}");
    }
}
