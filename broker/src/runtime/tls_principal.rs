//! The principal of a TLS client (issue 13): the subject of its certificate as Java's
//! `X500Principal.getName()` writes it (RFC 2253: the RDNs last first, `CN=alice,OU=eng,O=oxka`, known
//! attribute names, others as a dotted OID with `#` and the value's DER in hex, special characters
//! escaped with `\`), mapped by `ssl.principal.mapping.rules`. Kafka's default principal builder does
//! the same, so ACLs and quotas written for Kafka's mTLS users name the same principals here.
//!
//! The certificate's DER is walked by hand down to the subject: Certificate → TBSCertificate →
//! (version) serial, signature, issuer, validity, subject. Pure; unit-tested with certificates made
//! by openssl.

use oxka_config::principal_mapping::{map_name, PrincipalRule};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION_TAG: u8 = 0xA0;

/// The connection's principal name from its client certificate (leaf first), or why there is none.
pub fn principal_name(chain_leaf_der: &[u8], rules: &[PrincipalRule]) -> Result<String, String> {
    let dn = subject_dn(chain_leaf_der)?;
    map_name(rules, &dn)
}

/// One DER element: its tag, its content, and what follows it.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "malformed DER in the client certificate".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let length = if first < 0x80 {
        first as usize
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return Err(bad());
        }
        let length = rest[..count].iter().fold(0usize, |n, b| (n << 8) | *b as usize);
        rest = &rest[count..];
        length
    };
    if rest.len() < length {
        return Err(bad());
    }
    Ok((tag, &rest[..length], &rest[length..]))
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let (found, content, rest) = element(input)?;
    if found != tag {
        return Err(format!("the client certificate's {what} is not where X.509 puts it"));
    }
    Ok((content, rest))
}

/// The certificate's subject as RFC 2253 text, as Java writes it.
pub fn subject_dn(der: &[u8]) -> Result<String, String> {
    let (certificate, _) = expect(der, SEQUENCE, "outer SEQUENCE")?;
    let (tbs, _) = expect(certificate, SEQUENCE, "TBSCertificate")?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION_TAG) {
        rest = element(rest)?.2;
    }
    for what in ["serial number", "signature algorithm", "issuer", "validity"] {
        let (_, _, after) = element(rest).map_err(|_| format!("the client certificate has no {what}"))?;
        rest = after;
    }
    let (subject, _) = expect(rest, SEQUENCE, "subject")?;
    let mut rdns = Vec::new();
    let mut names = subject;
    while !names.is_empty() {
        let (set, after) = expect(names, SET, "relative distinguished name")?;
        names = after;
        let mut attributes = Vec::new();
        let mut items = set;
        while !items.is_empty() {
            let (pair, after) = expect(items, SEQUENCE, "attribute")?;
            items = after;
            let (oid, value) = expect(pair, OID, "attribute type")?;
            let (value_tag, value_content, _) = element(value)?;
            attributes.push(attribute(oid, value_tag, value_content, value));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// `NAME=value` for one attribute: the RFC 2253 keyword and the escaped string, or the dotted OID
/// and `#` with the value's whole DER in hex for types Java does not name.
fn attribute(oid: &[u8], tag: u8, content: &[u8], whole: &[u8]) -> String {
    let keyword = match oid {
        [0x55, 0x04, 0x03] => Some("CN"),
        [0x55, 0x04, 0x06] => Some("C"),
        [0x55, 0x04, 0x07] => Some("L"),
        [0x55, 0x04, 0x08] => Some("ST"),
        [0x55, 0x04, 0x0a] => Some("O"),
        [0x55, 0x04, 0x0b] => Some("OU"),
        [0x55, 0x04, 0x09] => Some("STREET"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => Some("DC"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => Some("UID"),
        _ => None,
    };
    let text = string_value(tag, content);
    match (keyword, text) {
        (Some(keyword), Some(text)) => format!("{keyword}={}", escape(&text)),
        _ => {
            let length = whole.len() - element(whole).map(|(_, _, rest)| rest.len()).unwrap_or(0);
            let hex: String = whole[..length].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", dotted(oid))
        }
    }
}

/// The text of a directory string (UTF8String, PrintableString, IA5String, TeletexString, BMPString).
fn string_value(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 | 0x14 => Some(String::from_utf8_lossy(content).into_owned()),
        0x1e => {
            let units: Vec<u16> = content
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// RFC 2253's escaping, as Java applies it: `,+"\<>;` anywhere, `#` or a space first, a space last.
fn escape(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn dotted(oid: &[u8]) -> String {
    let Some((&first, rest)) = oid.split_first() else {
        return String::new();
    };
    let mut parts = vec![
        (first / 40).min(2) as u64,
        (first as u64) - 40 * (first / 40).min(2) as u64,
    ];
    let mut value = 0u64;
    for &b in rest {
        value = (value << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            parts.push(value);
            value = 0;
        }
    }
    parts.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A self-signed certificate for `subject` (openssl's `-subj` syntax), as DER.
    fn certificate(subject: &str, extra: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "k.pem",
            "-outform",
            "DER",
            "-out",
            "c.der",
            "-days",
            "1",
            "-subj",
            subject,
        ];
        args.extend_from_slice(extra);
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("openssl (scripts/install-tools.sh installs it)");
        assert!(out.status.success(), "{out:?}");
        std::fs::read(dir.path().join("c.der")).unwrap()
    }

    #[test]
    fn subjects_read_as_java_writes_them() {
        let der = certificate("/C=US/O=oxka, Inc./OU=eng/CN=alice", &[]);
        assert_eq!(subject_dn(&der).unwrap(), "CN=alice,OU=eng,O=oxka\\, Inc.,C=US");
        let der = certificate("/DC=org/DC=oxka/CN=#bob/emailAddress=bob@oxka.org", &[]);
        assert_eq!(
            subject_dn(&der).unwrap(),
            "1.2.840.113549.1.9.1=#160c626f62406f786b612e6f7267,CN=\\#bob,DC=oxka,DC=org"
        );
        let der = certificate("/CN=a+OU=b", &["-multivalue-rdn"]);
        let dn = subject_dn(&der).unwrap();
        assert!(dn == "CN=a+OU=b" || dn == "OU=b+CN=a", "{dn}");
    }

    #[test]
    fn rules_map_the_subject() {
        let der = certificate("/O=oxka/CN=Alice", &[]);
        let rules = oxka_config::principal_mapping::parse_rules("RULE:^CN=([^,]+),.*$/$1/L").unwrap();
        assert_eq!(principal_name(&der, &rules).unwrap(), "alice");
        let none = oxka_config::principal_mapping::parse_rules("RULE:^OU=(.*)$/$1/").unwrap();
        assert!(principal_name(&der, &none).unwrap_err().contains("CN=Alice,O=oxka"));
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x85\xff\xff\xff\xff\xff",
            b"\x30\x03\x02\x01\x01",
            b"\x30\x02\x30\x00",
        ] {
            assert!(subject_dn(bad).is_err(), "{bad:?}");
        }
        let mut der = certificate("/CN=x", &[]);
        der.truncate(der.len() / 2);
        assert!(subject_dn(&der).is_err());
    }
}
