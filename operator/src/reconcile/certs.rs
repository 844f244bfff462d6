//! The cluster CA and the certificates it issues (rcgen, pure Rust), as pure functions of the time
//! passed in: a CA per KafkaCluster, a server certificate per broker whose names cover its pod's DNS
//! name, the headless Service and the bootstrap Service, and the operator's client certificate
//! (`CN=oxka-operator`). Keys are ECDSA P-256 in PKCS#8 PEM, which oxka's PEM keystore, Java and
//! librdkafka all read.
//!
//! The CA is rebuilt for signing from its stored key and the same distinguished name (rcgen's
//! `Issuer` needs only those), so the Secret holds nothing but PEM. Each Secret carries its
//! certificates' expiry as an annotation (`oxka.io/not-after`, Unix seconds), which is all renewal
//! needs to read back.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Seconds in a day.
const DAY: i64 = 86_400;
/// Certificates start an hour in the past: a node whose clock is a little behind accepts them.
const BACKDATE: i64 = 3_600;
/// The subject of the operator's client certificate; its principal is `User:CN=oxka-operator`.
pub const OPERATOR_COMMON_NAME: &str = "oxka-operator";

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a key failed: {0}")]
    Key(rcgen::Error),
    #[error("the stored cluster CA key cannot be read: {0}")]
    CaKey(rcgen::Error),
    #[error("signing the certificate for {subject} failed: {source}")]
    Sign { subject: String, source: rcgen::Error },
    #[error("{0} is not a valid time")]
    Time(i64),
}

/// A certificate with its key, both PEM, and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// Unix seconds.
    pub not_after: i64,
}

impl std::fmt::Debug for Issued {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Issued(not_after {})", self.not_after)
    }
}

impl Issued {
    /// The key then the certificate chain (this certificate, then `ca_pem`): oxka's PEM keystore file.
    pub fn keystore(&self, ca_pem: &str) -> String {
        format!("{}{}{}", self.key_pem, self.cert_pem, ca_pem)
    }
}

/// The CA's distinguished name for cluster `namespace/name`.
fn ca_name(namespace: &str, name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "oxka");
    dn.push(DnType::CommonName, format!("cluster-ca {namespace}/{name}"));
    dn
}

fn ca_params(namespace: &str, name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_name(namespace, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn at(seconds: i64) -> Result<OffsetDateTime, CertError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| CertError::Time(seconds))
}

fn serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    getrandom(&mut bytes);
    bytes[0] &= 0x7f; // a positive INTEGER
    SerialNumber::from_slice(&bytes)
}

/// Random bytes from the operating system (serial numbers, generated passwords).
pub fn getrandom(out: &mut [u8]) {
    getrandom::fill(out).expect("the operating system's random source works");
}

/// A new cluster CA valid for `validity_days` from `now`.
pub fn new_ca(namespace: &str, name: &str, now: i64, validity_days: i32) -> Result<Issued, CertError> {
    let key = KeyPair::generate().map_err(CertError::Key)?;
    let mut params = ca_params(namespace, name);
    params.not_before = at(now - BACKDATE)?;
    let not_after = now + i64::from(validity_days) * DAY;
    params.not_after = at(not_after)?;
    params.serial_number = Some(serial());
    let cert = params.self_signed(&key).map_err(|source| CertError::Sign {
        subject: "the cluster CA".into(),
        source,
    })?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// What a leaf certificate is for.
pub enum Leaf<'a> {
    /// A broker's server certificate for these DNS names (the first is also its common name).
    Server(&'a [String]),
    /// A client certificate with this common name.
    Client(&'a str),
}

/// A certificate issued by the cluster CA (`ca_key_pem` with the CA's name for `namespace/name`),
/// valid for `validity_days` from `now` but never beyond the CA itself.
pub fn issue(
    namespace: &str,
    name: &str,
    ca_key_pem: &str,
    ca_not_after: i64,
    leaf: Leaf,
    now: i64,
    validity_days: i32,
) -> Result<Issued, CertError> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(CertError::CaKey)?;
    let issuer = Issuer::new(ca_params(namespace, name), ca_key);
    let key = KeyPair::generate().map_err(CertError::Key)?;
    let (mut params, subject) = match leaf {
        Leaf::Server(names) => {
            let mut params = CertificateParams::new(names.to_vec()).map_err(|source| CertError::Sign {
                subject: names.join(", "),
                source,
            })?;
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let cn = names.first().cloned().unwrap_or_default();
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn.clone());
            (params, cn)
        }
        Leaf::Client(cn) => {
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            (params, cn.to_string())
        }
    };
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial());
    params.not_before = at(now - BACKDATE)?;
    let not_after = (now + i64::from(validity_days) * DAY).min(ca_not_after);
    params.not_after = at(not_after)?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| CertError::Sign { subject, source })?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// Whether a certificate expiring at `not_after` is due for renewal at `now`.
pub fn due(not_after: i64, now: i64, renewal_days: i32) -> bool {
    now >= not_after - i64::from(renewal_days) * DAY
}

/// Short digest of some certificate PEM (never keys): what the brokers' config hash includes.
pub fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    const NOW: i64 = 1_800_000_000;

    fn verify_server(ca: &Issued, leaf: &Issued, host: &str, at: i64) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .unwrap();
        let cert = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
        use rustls::client::danger::ServerCertVerifier;
        verifier
            .verify_server_cert(
                &cert,
                &[],
                &ServerName::try_from(host.to_string()).unwrap(),
                &[],
                UnixTime::since_unix_epoch(std::time::Duration::from_secs(at as u64)),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_broker_certificate_chains_to_the_cluster_ca_for_its_names_only() {
        let ca = new_ca("kafka", "demo", NOW, 365).unwrap();
        let names = vec![
            "demo-broker-0.demo-broker-headless.kafka.svc.cluster.local".to_string(),
            "demo-bootstrap.kafka.svc".to_string(),
        ];
        let leaf = issue(
            "kafka",
            "demo",
            &ca.key_pem,
            ca.not_after,
            Leaf::Server(&names),
            NOW,
            30,
        )
        .unwrap();
        assert_eq!(leaf.not_after, NOW + 30 * DAY);
        verify_server(&ca, &leaf, &names[0], NOW).unwrap();
        verify_server(&ca, &leaf, &names[1], NOW).unwrap();
        let wrong = verify_server(
            &ca,
            &leaf,
            "demo-broker-1.demo-broker-headless.kafka.svc.cluster.local",
            NOW,
        );
        assert!(wrong.as_ref().is_err_and(|e| e.contains("name")), "{wrong:?}");
        let expired = verify_server(&ca, &leaf, &names[0], NOW + 31 * DAY);
        assert!(expired.as_ref().is_err_and(|e| e.contains("xpired")), "{expired:?}");
        // Another cluster's CA does not vouch for it.
        let other = new_ca("kafka", "other", NOW, 365).unwrap();
        assert!(verify_server(&other, &leaf, &names[0], NOW).is_err());
    }

    #[test]
    fn a_leaf_never_outlives_its_ca_and_renewal_is_due_within_the_window() {
        let ca = new_ca("ns", "c", NOW, 10).unwrap();
        let leaf = issue(
            "ns",
            "c",
            &ca.key_pem,
            ca.not_after,
            Leaf::Client(OPERATOR_COMMON_NAME),
            NOW,
            365,
        )
        .unwrap();
        assert_eq!(leaf.not_after, ca.not_after);
        assert!(!due(ca.not_after, NOW, 3));
        assert!(!due(ca.not_after, NOW + 6 * DAY, 3));
        assert!(due(ca.not_after, NOW + 7 * DAY, 3));
        assert!(leaf.keystore(&ca.cert_pem).starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            format!("{leaf:?}").find("PRIVATE").is_none(),
            "Debug must not print the key"
        );
    }
}
