//! Java's JKS keystore format (Kafka's default `ssl.keystore.type` and `ssl.truststore.type`), read
//! without a JVM: the magic 0xFEEDFEED and a version (1 or 2), then entries, each a private key entry
//! (an alias, a date, the key protected with Sun's SHA-1 XOR scheme, OID 1.3.6.1.4.1.42.2.17.1.1, and
//! its certificate chain) or a trusted certificate entry; then a SHA-1 digest over the store password
//! (UTF-16BE), the words "Mighty Aphrodite" and everything before it, which says whether the password
//! is right. JCEKS stores (0xCECECECE) use another key protection and are refused.

use ring::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY};

const MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
const PRIVATE_KEY_ENTRY: u32 = 1;
const TRUSTED_CERT_ENTRY: u32 = 2;
/// DER of 1.3.6.1.4.1.42.2.17.1.1, the key protection of Sun's JKS `KeyProtector`.
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
const DIGEST_LEN: usize = 20;

/// A JKS store as read, private keys still protected.
#[derive(Debug, Default)]
pub struct JksStore {
    pub keys: Vec<JksKey>,
    /// Trusted certificate entries (DER), in the store's order.
    pub trusted: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct JksKey {
    pub alias: String,
    /// The `EncryptedPrivateKeyInfo` as stored.
    protected: Vec<u8>,
    /// The certificate chain (DER), leaf first.
    pub chain: Vec<Vec<u8>>,
}

/// Why a store cannot be read; the caller names the file and the key to fix.
#[derive(Debug, PartialEq, Eq)]
pub enum JksError {
    /// Not a JKS store (`is_pkcs12`: it looks like a PKCS12 one, which Java also reads as JKS).
    NotJks {
        is_pkcs12: bool,
    },
    Jceks,
    /// The integrity digest does not match: a wrong store password (or a damaged file).
    WrongStorePassword,
    /// The key's check digest does not match: a wrong key password.
    WrongKeyPassword,
    Malformed(String),
}

impl std::fmt::Display for JksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JksError::NotJks { .. } => write!(f, "not a JKS store"),
            JksError::Jceks => write!(f, "a JCEKS store, which is not supported: convert it to PKCS12 (keytool -importkeystore -srcstoretype JCEKS -deststoretype PKCS12)"),
            JksError::WrongStorePassword => write!(f, "the store password is wrong (or the file is damaged)"),
            JksError::WrongKeyPassword => write!(f, "the private key's password is wrong"),
            JksError::Malformed(why) => write!(f, "not a valid JKS store: {why}"),
        }
    }
}

/// Java's password bytes for JKS: each UTF-16 code unit big-endian.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| JksError::Malformed(format!("truncated at byte {}", self.at)))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }
    fn u16(&mut self) -> Result<u16, JksError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> Result<u32, JksError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    /// Java's `writeUTF`: a length, then modified UTF-8 (plain UTF-8 for the aliases keytool makes).
    fn utf(&mut self) -> Result<String, JksError> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn blob(&mut self) -> Result<Vec<u8>, JksError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn certificate(&mut self, version: u32) -> Result<Vec<u8>, JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(JksError::Malformed(format!(
                    "a {kind} certificate (only X.509 is read)"
                )));
            }
        }
        self.blob()
    }
}

/// Reads a JKS store. With a password, the integrity digest is checked (Java skips the check when
/// no password is given, as Kafka allows for a truststore).
pub fn parse(data: &[u8], password: Option<&str>) -> Result<JksStore, JksError> {
    let mut r = Reader { data, at: 0 };
    let magic = r.u32().map_err(|_| JksError::NotJks { is_pkcs12: false })?;
    match magic {
        MAGIC => {}
        JCEKS_MAGIC => return Err(JksError::Jceks),
        _ => {
            return Err(JksError::NotJks {
                is_pkcs12: data.first() == Some(&0x30),
            })
        }
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::Malformed(format!("version {version}")));
    }
    let count = r.u32()?;
    let mut store = JksStore::default();
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        r.take(8)?; // the entry's creation date
        match tag {
            PRIVATE_KEY_ENTRY => {
                let protected = r.blob()?;
                let n = r.u32()?;
                let chain = (0..n).map(|_| r.certificate(version)).collect::<Result<Vec<_>, _>>()?;
                store.keys.push(JksKey {
                    alias,
                    protected,
                    chain,
                });
            }
            TRUSTED_CERT_ENTRY => store.trusted.push(r.certificate(version)?),
            3 => {
                return Err(JksError::Malformed(format!(
                    "entry {alias:?} is a secret key entry, which JKS cannot hold"
                )))
            }
            other => return Err(JksError::Malformed(format!("entry {alias:?} has unknown tag {other}"))),
        }
    }
    let body_end = r.at;
    let stored = r.take(DIGEST_LEN)?;
    if let Some(password) = password {
        let mut digest = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        digest.update(&password_bytes(password));
        digest.update(b"Mighty Aphrodite");
        digest.update(&data[..body_end]);
        if digest.finish().as_ref() != stored {
            return Err(JksError::WrongStorePassword);
        }
    }
    Ok(store)
}

impl JksKey {
    /// The private key (PKCS#8 DER), unprotected with `password`.
    pub fn decrypt(&self, password: &str) -> Result<Vec<u8>, JksError> {
        let bad = |why: &str| JksError::Malformed(format!("entry {:?}: {why}", self.alias));
        // EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }
        let (info, _) = der(&self.protected, 0x30).ok_or_else(|| bad("the protected key is not DER"))?;
        let (algorithm, rest) = der(info, 0x30).ok_or_else(|| bad("no key algorithm"))?;
        let (oid, _) = der(algorithm, 0x06).ok_or_else(|| bad("no key algorithm"))?;
        if oid != KEY_PROTECTOR_OID {
            return Err(bad(
                "the key is protected with another scheme than JKS's (a JCEKS key?)",
            ));
        }
        let (encrypted, _) = der(rest, 0x04).ok_or_else(|| bad("no protected key"))?;
        if encrypted.len() < 2 * DIGEST_LEN {
            return Err(bad("the protected key is too short"));
        }
        let (salt, rest) = encrypted.split_at(DIGEST_LEN);
        let (ciphertext, check) = rest.split_at(rest.len() - DIGEST_LEN);
        let password = password_bytes(password);
        // Keystream: SHA-1(password || previous block), starting from the salt.
        let mut block = salt.to_vec();
        let mut key = Vec::with_capacity(ciphertext.len());
        for chunk in ciphertext.chunks(DIGEST_LEN) {
            let mut d = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
            d.update(&password);
            d.update(&block);
            block = d.finish().as_ref().to_vec();
            key.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
        }
        let mut d = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        d.update(&password);
        d.update(&key);
        if d.finish().as_ref() != check {
            return Err(JksError::WrongKeyPassword);
        }
        Ok(key)
    }
}

/// One DER element with `tag` at the start of `data`: (its contents, what follows).
fn der(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *data.first()? != tag {
        return None;
    }
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let len = data.get(2..2 + n)?.iter().fold(0usize, |l, b| (l << 8) | *b as usize);
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((data.get(header..end)?, data.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_jks() {
        assert_eq!(
            parse(&[0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2], None).unwrap_err(),
            JksError::Jceks
        );
        assert_eq!(
            parse(&[0x30, 0x82, 1, 2], None).unwrap_err(),
            JksError::NotJks { is_pkcs12: true }
        );
        assert!(matches!(
            parse(&[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 1], None),
            Err(JksError::Malformed(_))
        ));
    }

    #[test]
    fn an_empty_store_checks_its_password() {
        let mut data = vec![0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0];
        let mut d = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        d.update(&password_bytes("secret"));
        d.update(b"Mighty Aphrodite");
        d.update(&data);
        data.extend_from_slice(d.finish().as_ref());
        assert!(parse(&data, Some("secret")).is_ok());
        assert!(parse(&data, None).is_ok());
        assert_eq!(parse(&data, Some("wrong")).unwrap_err(), JksError::WrongStorePassword);
    }
}
