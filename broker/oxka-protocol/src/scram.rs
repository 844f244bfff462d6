//! SCRAM (RFC 5802, RFC 7677) as Kafka uses it: the two mechanisms (`SCRAM-SHA-256`, `SCRAM-SHA-512`),
//! their wire ids in AlterUserScramCredentials / DescribeUserScramCredentials (1 and 2), and the key
//! derivations every side needs: the admin tool salts a password (`salted_password`), the controller
//! turns a salted password into the stored and server keys it keeps (`Credential::from_salted`), and
//! the broker's SASL server checks a client's proof and signs its answer with them.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's minimum iterations for both mechanisms (`ScramMechanism.minIterations`), also its default.
pub const MIN_ITERATIONS: i32 = 4096;
/// The most iterations Kafka's controller accepts (`ScramControlManager.MAX_ITERATIONS`).
pub const MAX_ITERATIONS: i32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha256, Mechanism::Sha512];

    /// From a SASL mechanism or config key name (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// From the `mechanism` field of the SCRAM credential APIs.
    pub fn from_wire(id: i8) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.wire() == id)
    }

    pub fn wire(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// RFC 5802's `Hi(password, salt, iterations)`: PBKDF2's first block with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        let first = [salt, &1u32.to_be_bytes()].concat();
        let mut u = self.hmac(password, &first);
        let mut result = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            result.iter_mut().zip(&u).for_each(|(r, x)| *r ^= x);
        }
        result
    }

    /// `HMAC(key, data)` with this mechanism's hash.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Mechanism::Sha256 => mac::<Hmac<Sha256>>(key, data),
            Mechanism::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// What a server keeps of a user's password for one mechanism (RFC 5802 section 3): never the password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credential {
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl Credential {
    /// The credential for a password salted with `salt` over `iterations` (what an AlterUserScramCredentials
    /// upsertion carries), as Kafka's controller derives it.
    pub fn from_salted(mechanism: Mechanism, salted_password: &[u8], salt: &[u8], iterations: i32) -> Credential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Credential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// Whether `proof` (the client final message's `p=`) proves knowledge of the password for
    /// `auth_message`: `H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey`, compared in constant time.
    pub fn verifies(&self, mechanism: Mechanism, auth_message: &[u8], proof: &[u8]) -> bool {
        let signature = mechanism.hmac(&self.stored_key, auth_message);
        if proof.len() != signature.len() {
            return false;
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        constant_time_eq(&mechanism.hash(&client_key), &self.stored_key)
    }

    /// The server final message's `v=`: `HMAC(ServerKey, AuthMessage)`.
    pub fn server_signature(&self, mechanism: Mechanism, auth_message: &[u8]) -> Vec<u8> {
        mechanism.hmac(&self.server_key, auth_message)
    }
}

/// The client side of an exchange: `first` starts it, `finish` answers the server's first message with
/// the proof and returns the signature the server's final message must carry.
pub struct ScramClient {
    mechanism: Mechanism,
    client_first_bare: String,
    client_nonce: String,
}

impl ScramClient {
    /// The client's first message for `user` (`n,,n=user,r=nonce`; `,` and `=` in the name escaped).
    pub fn first(mechanism: Mechanism, user: &str, client_nonce: &str) -> (ScramClient, String) {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={name},r={client_nonce}");
        let message = format!("n,,{client_first_bare}");
        let client = ScramClient {
            mechanism,
            client_first_bare,
            client_nonce: client_nonce.to_string(),
        };
        (client, message)
    }

    /// The client's final message for the server's first message, and the server signature expected
    /// back. Refuses a server nonce that does not extend the client's, or iterations below Kafka's minimum.
    pub fn finish(&self, server_first: &str, password: &str) -> Result<(String, Vec<u8>), String> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(name))
                .ok_or_else(|| format!("the server's first SCRAM message has no {name}"))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("the server's SCRAM nonce does not extend the client's".to_string());
        }
        let salt = b64
            .decode(field("s=")?)
            .map_err(|_| "the server's SCRAM salt is not base64".to_string())?;
        let iterations: i32 = field("i=")?
            .parse()
            .map_err(|_| "the server's SCRAM iteration count is not a number".to_string())?;
        if !(MIN_ITERATIONS..=1_000_000).contains(&iterations) {
            return Err(format!("the server asks for {iterations} SCRAM iterations"));
        }
        let salted = self.mechanism.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = self.mechanism.hmac(&salted, b"Client Key");
        let credential = Credential::from_salted(self.mechanism, &salted, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = self.mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let expected = credential.server_signature(self.mechanism, auth_message.as_bytes());
        Ok((format!("{without_proof},p={}", b64.encode(proof)), expected))
    }
}

/// Compares without stopping at the first difference (the time taken does not tell how much matched).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Expected values from Python's hashlib.pbkdf2_hmac (an independent PBKDF2), first block.
    #[test]
    fn salted_passwords_are_pbkdf2s_first_block() {
        assert_eq!(
            hex(&Mechanism::Sha256.salted_password(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            hex(&Mechanism::Sha256.salted_password(b"pencil", b"salt-of-the-earth", 4096)),
            "eeb5fdad1eef364b075caf09e073ad27fd132de47001abdee6d486cc208b3551"
        );
        assert_eq!(
            hex(&Mechanism::Sha512.salted_password(b"passwd", b"salt", 1)),
            "c74319d99499fc3e9013acff597c23c5baf0a0bec5634c46b8352b793e324723\
             d55caa76b2b25c43402dcfdc06cdcf66f95b7d0429420b39520006749c51a04e"
        );
        assert_eq!(
            hex(&Mechanism::Sha512.salted_password(b"pencil", b"salt-of-the-earth", 4096)),
            "00560889040d8e7f0e12975e05c66ca9478de129e73ed399b8edffbb812ffcb6\
             cffd76dae178c55c09531c3d5f53acd660e6345315f5babd00af4ffd168311ba"
        );
    }

    /// RFC 7677 section 3's SCRAM-SHA-256 exchange: user "user", password "pencil".
    #[test]
    fn rfc7677s_example_exchange_verifies() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let m = Mechanism::Sha256;
        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let credential = Credential::from_salted(m, &salted, &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = b64.decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").unwrap();
        assert!(credential.verifies(m, auth_message.as_bytes(), &proof));
        assert_eq!(
            b64.encode(credential.server_signature(m, auth_message.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(!credential.verifies(m, auth_message.as_bytes(), &wrong));
        assert!(!credential.verifies(m, auth_message.as_bytes(), &proof[1..]));
        assert!(!Credential::from_salted(m, &salted, &salt, 4096).verifies(
            Mechanism::Sha512,
            auth_message.as_bytes(),
            &proof
        ));
    }

    /// RFC 7677 section 3 from the client's side: the same messages the RFC shows.
    #[test]
    fn the_client_side_sends_rfc7677s_messages() {
        let (client, first) = ScramClient::first(Mechanism::Sha256, "user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (final_message, expected) = client.finish(server_first, "pencil").unwrap();
        assert_eq!(
            final_message,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        use base64::Engine;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(expected),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert!(client
            .finish("r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "pencil")
            .is_err());
        assert!(client.finish("r=rOprNGfwEbeRWgbNEkqOx,s=AA==,i=10", "pencil").is_err());
        assert_eq!(
            ScramClient::first(Mechanism::Sha512, "a,b=c", "n").1,
            "n,,n=a=2Cb=3Dc,r=n"
        );
    }

    #[test]
    fn mechanisms_have_kafkas_names_and_wire_ids() {
        assert_eq!(Mechanism::from_name("SCRAM-SHA-512"), Some(Mechanism::Sha512));
        assert_eq!(Mechanism::from_wire(1), Some(Mechanism::Sha256));
        assert_eq!(Mechanism::from_wire(0), None);
        assert_eq!(Mechanism::from_name("PLAIN"), None);
    }
}
