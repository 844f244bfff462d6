//! Certificates for the TLS and SASL_SSL tests, made with the openssl command line (installed by
//! scripts/install-tools.sh): a CA and another CA, a broker certificate for 127.0.0.1 and localhost,
//! client certificates from each CA, all as PEM files in a temporary directory.

use std::path::PathBuf;
use std::process::Command;

/// A CA, a server certificate and key, client certificates: the PEM files of one test.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let certs = Certs {
            dir: tempfile::tempdir().unwrap(),
        };
        certs.authority("ca");
        certs.authority("other-ca");
        certs.issue(
            "ca",
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        );
        certs.issue("ca", "alice", "/CN=alice", "extendedKeyUsage=clientAuth");
        certs.issue("other-ca", "mallory", "/CN=mallory", "extendedKeyUsage=clientAuth");
        certs
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("the openssl command (scripts/install-tools.sh installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    fn authority(&self, name: &str) {
        let (key, pem, subject) = (format!("{name}.key"), format!("{name}.pem"), format!("/CN={name}"));
        self.openssl(&[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem, "-days", "2", "-subj",
            &subject,
        ]);
    }

    /// NAME.key, NAME.pem and NAME-store.pem (key then certificate: a PEM keystore), signed by CA.
    pub fn issue(&self, ca: &str, name: &str, subject: &str, extension: &str) {
        let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        std::fs::write(self.path(&format!("{name}.ext")), format!("{extension}\n")).unwrap();
        self.openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
        let store = [
            std::fs::read_to_string(self.path(&key)).unwrap(),
            std::fs::read_to_string(self.path(&pem)).unwrap(),
        ]
        .concat();
        std::fs::write(self.path(&format!("{name}-store.pem")), store).unwrap();
    }

    /// A Java client properties file: SSL trusting the CA, with NAME's keystore if given.
    pub fn client_config(&self, keystore: Option<&str>) -> PathBuf {
        let mut text = format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            self.path("ca.pem").display()
        );
        if let Some(name) = keystore {
            text.push_str(&format!(
                "ssl.keystore.type=PEM\nssl.keystore.location={}\n",
                self.path(&format!("{name}-store.pem")).display()
            ));
        }
        let file = self.path(&format!("client-{}.properties", keystore.unwrap_or("none")));
        std::fs::write(&file, text).unwrap();
        file
    }
}
