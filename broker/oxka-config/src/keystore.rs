//! Keystores and truststores in Kafka's three types (`ssl.keystore.type`, `ssl.truststore.type` and
//! the ZooKeeper-style keys): PEM, PKCS12 (the `p12-keystore` crate) and JKS (`crate::jks`, Kafka's
//! default). Every TLS user (listeners, the inter-broker client, the ensemble and quorum links) reads
//! its stores through `load_keystore` / `load_truststore`, which give PEM text whatever the type, so
//! the rest of the TLS code (and certificate reload, which watches the same files) has one input.
//! As in Java, a JKS-typed file that holds PKCS12 is read as PKCS12 (keytool writes PKCS12 since
//! JDK 9 unless told `-storetype JKS`, whatever the file is called).

use std::path::PathBuf;

use crate::jks::{self, JksError};

/// A store's type, from `ssl.keystore.type` and the like (JKS when unset, as in Kafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    Jks,
}

impl StoreType {
    /// The type named by a `*.type` value; an error says what is accepted.
    pub fn parse(value: &str) -> Result<StoreType, String> {
        match value.trim().to_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" | "P12" => Ok(StoreType::Pkcs12),
            "JKS" => Ok(StoreType::Jks),
            "JCEKS" => Err("JCEKS stores are not supported: convert to PKCS12 (keytool -importkeystore -srcstoretype JCEKS -deststoretype PKCS12) and set the type to PKCS12".into()),
            other => Err(format!("{other:?} is not a store type oxka reads: use JKS, PKCS12 or PEM")),
        }
    }
}

/// A keystore or truststore file with its type and passwords, and the names of the keys they came
/// from (for error messages).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreFile {
    pub kind: StoreType,
    pub path: PathBuf,
    /// (key, value) of `ssl.keystore.password` / `ssl.truststore.password`.
    pub password: Option<(String, String)>,
    /// (key, value) of `ssl.key.password` (keystores only; the store password when unset).
    pub key_password: Option<(String, String)>,
    /// The key that named the file (`ssl.keystore.location`, ...).
    pub location_key: String,
}

impl std::fmt::Debug for StoreFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreFile")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field(
                "password",
                &self.password.as_ref().map(|(k, _)| format!("{k}=[hidden]")),
            )
            .field(
                "key_password",
                &self.key_password.as_ref().map(|(k, _)| format!("{k}=[hidden]")),
            )
            .finish()
    }
}

impl StoreFile {
    fn password_key(&self) -> String {
        match &self.password {
            Some((key, _)) => key.clone(),
            None => self
                .location_key
                .replace(".location", ".password")
                .replace("Location", "Password"),
        }
    }

    fn context(&self) -> String {
        format!("{} {}", self.location_key, self.path.display())
    }

    fn read(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.path).map_err(|e| format!("cannot read {}: {e}", self.context()))
    }
}

/// The key and certificate chain of a keystore, as PEM (the key as PKCS#8, then the chain leaf
/// first). PEM files are returned as they are.
pub fn load_keystore(store: &StoreFile) -> Result<Vec<u8>, String> {
    let data = store.read()?;
    let (key, chain) = match store.kind {
        StoreType::Pem => return Ok(data),
        StoreType::Pkcs12 => pkcs12_key(store, &data)?,
        StoreType::Jks => match jks::parse(&data, store.password.as_ref().map(|(_, p)| p.as_str())) {
            Err(JksError::NotJks { is_pkcs12: true }) => pkcs12_key(store, &data)?,
            Err(e) => return Err(jks_error(store, e)),
            Ok(jks) => {
                let Some(entry) = jks.keys.first() else {
                    return Err(format!(
                        "{} holds no private key entry (only trusted certificates: is it a truststore?)",
                        store.context()
                    ));
                };
                let password = store.key_password.as_ref().or(store.password.as_ref());
                let password = password.map(|(_, p)| p.as_str()).ok_or_else(|| {
                    format!(
                        "{} needs {} to unlock its private key",
                        store.context(),
                        store.password_key()
                    )
                })?;
                let key = entry.decrypt(password).map_err(|e| jks_error(store, e))?;
                (key, entry.chain.clone())
            }
        },
    };
    if chain.is_empty() {
        return Err(format!("{}: the private key has no certificate chain", store.context()));
    }
    let mut pem = to_pem("PRIVATE KEY", &key);
    for cert in &chain {
        pem.extend(to_pem("CERTIFICATE", cert));
    }
    Ok(pem)
}

/// The trusted certificates of a truststore, as PEM. Without a password a JKS store is read without
/// its integrity check, as Java does (Kafka allows a truststore without `ssl.truststore.password`).
pub fn load_truststore(store: &StoreFile) -> Result<Vec<u8>, String> {
    let data = store.read()?;
    let certs = match store.kind {
        StoreType::Pem => return Ok(data),
        StoreType::Pkcs12 => pkcs12_certs(store, &data)?,
        StoreType::Jks => match jks::parse(&data, store.password.as_ref().map(|(_, p)| p.as_str())) {
            Err(JksError::NotJks { is_pkcs12: true }) => pkcs12_certs(store, &data)?,
            Err(e) => return Err(jks_error(store, e)),
            // Java trusts a key entry's certificate too.
            Ok(jks) => jks
                .trusted
                .into_iter()
                .chain(jks.keys.into_iter().filter_map(|k| k.chain.into_iter().next()))
                .collect(),
        },
    };
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", store.context()));
    }
    Ok(certs.iter().flat_map(|c| to_pem("CERTIFICATE", c)).collect())
}

/// `load_keystore` as text (PEM is ASCII), for callers that take PEM strings.
pub fn keystore_pem(store: &StoreFile) -> Result<String, String> {
    load_keystore(store).map(|pem| String::from_utf8_lossy(&pem).into_owned())
}

/// `load_truststore` as text.
pub fn truststore_pem(store: &StoreFile) -> Result<String, String> {
    load_truststore(store).map(|pem| String::from_utf8_lossy(&pem).into_owned())
}

fn jks_error(store: &StoreFile, e: JksError) -> String {
    match e {
        JksError::WrongStorePassword => format!(
            "{}: the password is wrong: check {} (or the file is damaged)",
            store.context(),
            store.password_key()
        ),
        JksError::WrongKeyPassword => {
            let key = store.key_password.as_ref().map(|(k, _)| k.clone()).unwrap_or_else(|| {
                format!(
                    "{} (or set ssl.key.password, when the key's password differs)",
                    store.password_key()
                )
            });
            format!("{}: the private key's password is wrong: check {key}", store.context())
        }
        JksError::NotJks { .. } => format!("{} is not a JKS store: set its type (PKCS12 or PEM)", store.context()),
        e => format!("{}: {e}", store.context()),
    }
}

/// Reads a PKCS12 store with its password; a Java PKCS12 store may protect its key with
/// `ssl.key.password` when that differs, which `p12-keystore` reads with one password, so that one is
/// tried second.
fn pkcs12_archive(store: &StoreFile, data: &[u8]) -> Result<p12_keystore::Pkcs12Archive, String> {
    let password = store.password.as_ref().map(|(_, p)| p.as_str()).unwrap_or("");
    match p12_keystore::Pkcs12Archive::from_pkcs12(data, password) {
        Ok(archive) => Ok(archive),
        Err(first) => {
            if let Some((_, key_password)) = store.key_password.as_ref().filter(|(_, p)| p != password) {
                if let Ok(archive) = p12_keystore::Pkcs12Archive::from_pkcs12(data, key_password) {
                    return Ok(archive);
                }
            }
            let why = match first {
                p12_keystore::error::Error::MacError(_) => "the password is wrong".to_string(),
                other => format!("cannot be read ({other}); is the password right?"),
            };
            Err(format!(
                "{} (PKCS12): {why}: check {}",
                store.context(),
                store.password_key()
            ))
        }
    }
}

fn pkcs12_key(store: &StoreFile, data: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let archive = pkcs12_archive(store, data)?;
    let Some(key) = archive.keys.first() else {
        return Err(format!(
            "{} (PKCS12) holds no private key (only certificates: is it a truststore?)",
            store.context()
        ));
    };
    // The leaf: the certificate with the key's local key id (else the first), then its issuers.
    let leaf = archive
        .certs
        .iter()
        .find(|c| {
            c.local_key_id.is_some() && c.local_key_id.as_deref() == key.local_key_id.as_ref().map(|id| id.0.as_slice())
        })
        .or_else(|| archive.certs.first());
    let mut chain = Vec::new();
    if let Some(mut cert) = leaf {
        chain.push(cert.cert.as_der().to_vec());
        while cert.cert.issuer() != cert.cert.subject() {
            let Some(issuer) = archive.certs.iter().find(|c| c.cert.subject() == cert.cert.issuer()) else {
                break;
            };
            if chain.iter().any(|c| c == issuer.cert.as_der()) {
                break;
            }
            chain.push(issuer.cert.as_der().to_vec());
            cert = issuer;
        }
    }
    Ok((key.key.as_der().to_vec(), chain))
}

/// Every certificate of a PKCS12 truststore (Java's marks them trusted; openssl's do not, and are
/// taken all the same).
fn pkcs12_certs(store: &StoreFile, data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let archive = pkcs12_archive(store, data)?;
    Ok(archive.certs.iter().map(|c| c.cert.as_der().to_vec()).collect())
}

/// DER as PEM with `label`.
pub fn to_pem(label: &str, der: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut pem = format!("-----BEGIN {label}-----\n").into_bytes();
    for line in b64.chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    pem
}

/// Where the store named by `location` is read from and how, or `None` without the location key:
/// `get` looks a key up (with any listener prefix) and gives (the key found, its value).
pub fn store_file(
    get: &dyn Fn(&str) -> Option<(String, String)>,
    location: &str,
    kind: &str,
    password: &str,
    key_password: Option<&str>,
) -> Result<Option<StoreFile>, (String, String)> {
    let Some((location_key, path)) = get(location) else {
        return Ok(None);
    };
    let kind = match get(kind) {
        None => StoreType::Jks,
        Some((key, value)) => StoreType::parse(&value).map_err(|why| (key, why))?,
    };
    let password = get(password);
    let key_password = key_password.and_then(get);
    if kind == StoreType::Pem {
        if let Some((key, _)) = password.as_ref().or(key_password.as_ref()) {
            return Err((key.clone(), "a PEM store has no password here: decrypt the key (openssl pkcs8 -topk8 -nocrypt) and drop this key, or use a PKCS12 or JKS store".into()));
        }
    }
    Ok(Some(StoreFile {
        kind,
        path: PathBuf::from(path.trim()),
        password,
        key_password,
        location_key,
    }))
}

/// A ZooKeeper-style store (`ssl.keyStore.*`, `ssl.quorum.trustStore.*`, `zookeeper.ssl.keystore.*`):
/// with its type unset, ZooKeeper goes by the file name (`.pem`, `.p12`/`.pfx`, else JKS).
pub fn zookeeper_store(
    raw: &crate::RawConfig,
    location: &str,
    kind: &str,
    password: &str,
) -> Result<Option<StoreFile>, crate::ConfigError> {
    let get = |key: &str| -> Option<(String, String)> {
        let value = raw.string(key).filter(|v| !v.trim().is_empty());
        match value {
            Some(v) => Some((key.to_string(), v)),
            None if key == kind => {
                let path = raw.string(location)?.to_lowercase();
                let by_name = if path.ends_with(".pem") {
                    "PEM"
                } else if path.ends_with(".p12") || path.ends_with(".pfx") {
                    "PKCS12"
                } else {
                    "JKS"
                };
                Some((key.to_string(), by_name.to_string()))
            }
            None => None,
        }
    };
    store_file(&get, location, kind, password, None).map_err(|(key, why)| raw.invalid(&key, why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn pem_encoding_matches_base64() {
        let pem = String::from_utf8(to_pem("X", b"Man is distinguished")).unwrap();
        assert_eq!(
            pem,
            "-----BEGIN X-----\nTWFuIGlzIGRpc3Rpbmd1aXNoZWQ=\n-----END X-----\n"
        );
        let pem = String::from_utf8(to_pem("X", b"ab")).unwrap();
        assert!(pem.contains("\nYWI=\n"), "{pem}");
    }

    fn keytool(dir: &Path, args: &[&str]) {
        let out = Command::new("keytool")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("keytool (installed with Java)");
        assert!(
            out.status.success(),
            "keytool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn store(kind: StoreType, path: PathBuf, password: Option<&str>, key_password: Option<&str>) -> StoreFile {
        StoreFile {
            kind,
            path,
            password: password.map(|p| ("ssl.keystore.password".into(), p.into())),
            key_password: key_password.map(|p| ("ssl.key.password".into(), p.into())),
            location_key: "ssl.keystore.location".into(),
        }
    }

    /// A keystore with a key (password `keypass` for JKS) and a truststore with its certificate,
    /// both of `storetype`, made by the JDK's keytool; returns the certificate's PEM.
    fn make_stores(dir: &Path, storetype: &str) -> String {
        let keypass = if storetype == "JKS" { "keypass" } else { "storepass" };
        keytool(
            dir,
            &[
                "-genkeypair",
                "-alias",
                "broker",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-dname",
                "CN=broker",
                "-validity",
                "2",
                "-storetype",
                storetype,
                "-keystore",
                "key.store",
                "-storepass",
                "storepass",
                "-keypass",
                keypass,
            ],
        );
        keytool(
            dir,
            &[
                "-exportcert",
                "-rfc",
                "-alias",
                "broker",
                "-keystore",
                "key.store",
                "-storepass",
                "storepass",
                "-file",
                "cert.pem",
            ],
        );
        keytool(
            dir,
            &[
                "-importcert",
                "-noprompt",
                "-alias",
                "ca",
                "-file",
                "cert.pem",
                "-storetype",
                storetype,
                "-keystore",
                "trust.store",
                "-storepass",
                "trustpass",
            ],
        );
        std::fs::read_to_string(dir.join("cert.pem")).unwrap()
    }

    fn certificate_body(pem: &str) -> String {
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    fn check_type(storetype: &str, kind: StoreType) {
        let dir = tempfile::tempdir().unwrap();
        let cert = certificate_body(&make_stores(dir.path(), storetype));
        let key_password = (storetype == "JKS").then_some("keypass");
        let ks = store(kind, dir.path().join("key.store"), Some("storepass"), key_password);
        let pem = String::from_utf8(load_keystore(&ks).unwrap()).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert!(
            certificate_body(&pem).contains(&cert),
            "the chain holds the key's certificate"
        );
        let mut ts = store(kind, dir.path().join("trust.store"), Some("trustpass"), None);
        ts.password = Some(("ssl.truststore.password".into(), "trustpass".into()));
        ts.location_key = "ssl.truststore.location".into();
        let pem = String::from_utf8(load_truststore(&ts).unwrap()).unwrap();
        assert_eq!(certificate_body(&pem), cert);

        // A wrong password is refused naming the key to fix.
        ts.password = Some(("ssl.truststore.password".into(), "wrong".into()));
        let e = load_truststore(&ts).unwrap_err();
        assert!(e.contains("ssl.truststore.password") && e.contains("wrong"), "{e}");
        let e = load_keystore(&store(kind, dir.path().join("key.store"), Some("nope"), key_password)).unwrap_err();
        assert!(
            e.contains("ssl.keystore.password") && e.contains("password is wrong"),
            "{e}"
        );
        if storetype == "JKS" {
            let e = load_keystore(&store(
                kind,
                dir.path().join("key.store"),
                Some("storepass"),
                Some("nope"),
            ))
            .unwrap_err();
            assert!(
                e.contains("ssl.key.password") && e.contains("private key's password is wrong"),
                "{e}"
            );
            // The store password is the key's when ssl.key.password is unset.
            let e = load_keystore(&store(kind, dir.path().join("key.store"), Some("storepass"), None)).unwrap_err();
            assert!(e.contains("ssl.keystore.password"), "{e}");
        }
    }

    #[test]
    fn jks_stores_made_by_keytool() {
        check_type("JKS", StoreType::Jks);
    }

    #[test]
    fn pkcs12_stores_made_by_keytool() {
        check_type("PKCS12", StoreType::Pkcs12);
    }

    #[test]
    fn a_jks_typed_pkcs12_file_is_read_as_java_does() {
        let dir = tempfile::tempdir().unwrap();
        make_stores(dir.path(), "PKCS12");
        let pem = load_keystore(&store(
            StoreType::Jks,
            dir.path().join("key.store"),
            Some("storepass"),
            None,
        ))
        .unwrap();
        assert!(String::from_utf8(pem).unwrap().contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn types_are_checked() {
        assert_eq!(StoreType::parse("pkcs12"), Ok(StoreType::Pkcs12));
        assert!(StoreType::parse("JCEKS").unwrap_err().contains("not supported"));
        assert!(StoreType::parse("BKS").unwrap_err().contains("JKS, PKCS12 or PEM"));
    }
}
