//! The server side of a SCRAM exchange (RFC 5802) as Kafka's `ScramSaslServer` runs it, in two
//! SaslAuthenticate round trips: the client's first message names the user and a nonce, and is answered
//! with the server's nonce, the user's salt and iterations (`first`); the client's final message carries
//! its proof, which is checked against the stored key, and is answered with the server's signature
//! (`ScramExchange::finish`). Pure: the credentials lookup and the server nonce come from the caller.
//!
//! Like Kafka, only `n` (no channel binding) is accepted as the GS2 flag, an authorization id must be
//! the user itself, and extensions other than `tokenauth` are ignored; delegation tokens
//! (`tokenauth=true`) are not served.

use base64::Engine;
use oxka_protocol::scram::{Credential, Mechanism, MIN_ITERATIONS};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why an exchange failed. `Invalid` is answered with Kafka's generic message (nothing about the
/// user); `Refused` sends its message to the client, as Kafka's `SaslAuthenticationException` does.
/// Both carry the reason for the broker's log.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    Invalid(String),
    Refused { client_message: String, reason: String },
}

/// An exchange after the server's first message, waiting for the client's final one.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramExchange {
    pub mechanism: Mechanism,
    pub user: String,
    credential: Credential,
    gs2_header: String,
    /// `client-first-message-bare "," server-first-message`: the start of the AuthMessage.
    auth_start: String,
    nonce: String,
}

/// Never prints the credential: connection states are logged.
impl std::fmt::Debug for ScramExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScramExchange({} for {})", self.mechanism.name(), self.user)
    }
}

/// Handles the client's first message; returns the exchange and the server's first message.
pub fn first(
    mechanism: Mechanism,
    message: &[u8],
    credential_of: impl Fn(&str) -> Option<Credential>,
    server_nonce: &str,
) -> Result<(ScramExchange, Vec<u8>), Failure> {
    let invalid = |reason: &str| Failure::Invalid(reason.to_string());
    let text = std::str::from_utf8(message).map_err(|_| invalid("client first message is not UTF-8"))?;
    let (flag, rest) = text
        .split_once(',')
        .ok_or_else(|| invalid("client first message has no GS2 header"))?;
    if flag != "n" {
        return Err(invalid(&format!(
            "GS2 flag {flag:?}: channel binding is not supported (expected \"n\")"
        )));
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| invalid("client first message has no GS2 header"))?;
    let authzid = match authzid {
        "" => "",
        a => a
            .strip_prefix("a=")
            .ok_or_else(|| invalid("malformed authorization id"))?,
    };
    let gs2_header = format!(
        "{flag},{},",
        if authzid.is_empty() {
            String::new()
        } else {
            format!("a={authzid}")
        }
    );
    let mut fields = bare.split(',');
    let sasl_name = fields
        .next()
        .and_then(|f| f.strip_prefix("n="))
        .ok_or_else(|| invalid("client first message has no n= user"))?;
    let client_nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("client first message has no r= nonce"))?;
    if fields.any(|f| f == "tokenauth=true") {
        return Err(invalid(
            "delegation token authentication (tokenauth=true) is not served",
        ));
    }
    let user = sasl_name.replace("=2C", ",").replace("=3D", "=");
    let credential =
        credential_of(&user).ok_or_else(|| invalid(&format!("user {user} has no {} credential", mechanism.name())))?;
    if !authzid.is_empty() && authzid != user {
        return Err(Failure::Refused {
            client_message:
                "Authentication failed: Client requested an authorization id that is different from username"
                    .to_string(),
            reason: format!("user {user} asked to act as {authzid}"),
        });
    }
    if credential.iterations < MIN_ITERATIONS {
        return Err(invalid(&format!(
            "user {user}'s {} credential has {} iterations, fewer than {MIN_ITERATIONS}",
            mechanism.name(),
            credential.iterations
        )));
    }
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credential.salt),
        credential.iterations
    );
    let exchange = ScramExchange {
        mechanism,
        user,
        credential,
        gs2_header,
        auth_start: format!("{bare},{server_first}"),
        nonce,
    };
    Ok((exchange, server_first.into_bytes()))
}

impl ScramExchange {
    /// Checks the client's final message; returns the server's final message (`v=` signature).
    pub fn finish(&self, message: &[u8]) -> Result<Vec<u8>, Failure> {
        let invalid = |reason: &str| Failure::Invalid(format!("user {}: {reason}", self.user));
        let text = std::str::from_utf8(message).map_err(|_| invalid("client final message is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| invalid("client final message has no p= proof"))?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or_else(|| invalid("client final message has no c= channel binding"))?;
        if BASE64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(invalid("channel binding does not repeat the GS2 header"));
        }
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or_else(|| invalid("client final message has no r= nonce"))?;
        if nonce != self.nonce {
            return Err(invalid("invalid client nonce in the final client message"));
        }
        let proof = BASE64.decode(proof).map_err(|_| invalid("proof is not base64"))?;
        let auth_message = format!("{},{without_proof}", self.auth_start);
        if !self
            .credential
            .verifies(self.mechanism, auth_message.as_bytes(), &proof)
        {
            return Err(invalid("invalid client credentials (wrong password)"));
        }
        let signature = self
            .credential
            .server_signature(self.mechanism, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil", the RFC's nonces, salt and proof.
    fn rfc_credential(user: &str) -> Option<Credential> {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = Mechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        (user == "user").then(|| Credential::from_salted(Mechanism::Sha256, &salted, &salt, 4096))
    }

    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    #[test]
    fn rfc7677s_exchange_is_served() {
        let (exchange, server_first) = first(
            Mechanism::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            rfc_credential,
            SERVER_NONCE,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(server_first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let final_message = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            String::from_utf8(exchange.finish(final_message).unwrap()).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert_eq!(format!("{exchange:?}"), "ScramExchange(SCRAM-SHA-256 for user)");
    }

    #[test]
    fn bad_messages_and_wrong_proofs_fail() {
        let start = |message: &[u8]| first(Mechanism::Sha256, message, rfc_credential, SERVER_NONCE);
        let invalid = |r: Result<(ScramExchange, Vec<u8>), Failure>| matches!(r, Err(Failure::Invalid(_)));
        assert!(invalid(start(b"n,,n=bob,r=abc")), "unknown user");
        assert!(invalid(start(b"y,,n=user,r=abc")), "channel binding flag");
        assert!(invalid(start(b"n,,n=user")), "no nonce");
        assert!(invalid(start(b"n,,n=user,r=abc,tokenauth=true")), "delegation token");
        assert!(invalid(start(&[0xff, 0xfe])), "not UTF-8");
        assert!(matches!(start(b"n,a=admin,n=user,r=abc"), Err(Failure::Refused { .. })));
        assert!(start(b"n,a=user,n=user,r=abc").is_ok());

        let (exchange, _) = start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let wrong_proof = format!("c=biws,r={nonce},p=AHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert!(
            matches!(exchange.finish(wrong_proof.as_bytes()), Err(Failure::Invalid(r)) if r.contains("wrong password"))
        );
        let wrong_nonce = "c=biws,r=rOprNGfwEbeRWgbNEkqOxxx,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert!(exchange.finish(wrong_nonce.as_bytes()).is_err());
        let wrong_binding = format!("c=eSws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert!(exchange.finish(wrong_binding.as_bytes()).is_err());
        assert!(exchange.finish(b"c=biws").is_err());
    }
}
