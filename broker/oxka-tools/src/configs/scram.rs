//! SCRAM credentials of users (`--entity-type users`, KIP-554): DescribeUserScramCredentials and
//! AlterUserScramCredentials, as Kafka 4.x's tool sends and prints them. The password never leaves
//! this process: as Kafka's admin client does, the tool salts it (a random salt, RFC 5802's `Hi`, that
//! is PBKDF2 with the mechanism's HMAC) and sends the salt and the salted password.
//!
//! ```text
//! SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096
//! ```

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;
pub use oxka_protocol::scram::Mechanism;
use oxka_protocol::scram::MIN_ITERATIONS;

use crate::admin::Admin;
use crate::error::{first_failure, kafka_message, ToolError};

/// RESOURCE_NOT_FOUND: a user without credentials, left out of the description as Kafka's tool does.
const RESOURCE_NOT_FOUND: i16 = 91;
/// Kafka's default and minimum iterations (`ScramMechanism`), the same for both mechanisms.
const DEFAULT_ITERATIONS: i32 = MIN_ITERATIONS;

/// The Java enum constant's name, which Kafka's tool prints in one of its messages.
fn constant(mechanism: Mechanism) -> &'static str {
    match mechanism {
        Mechanism::Sha256 => "SCRAM_SHA_256",
        Mechanism::Sha512 => "SCRAM_SHA_512",
    }
}

/// A credential to set: `[iterations=N,]password=P` (Kafka's syntax; iterations -1 or absent means
/// the default 4096).
#[derive(Debug, PartialEq, Eq)]
pub struct Upsertion {
    pub mechanism: Mechanism,
    pub iterations: i32,
    pub password: String,
}

impl Upsertion {
    pub fn parse(mechanism: Mechanism, value: &str) -> Result<Upsertion, ToolError> {
        let invalid = || ToolError::Usage(format!("Invalid credential property {}={value}", constant(mechanism)));
        let (iterations, password) = match value.strip_prefix("iterations=") {
            Some(rest) => {
                let (n, password) = rest.split_once(",password=").ok_or_else(invalid)?;
                let digits = n.strip_prefix('-').unwrap_or(n);
                if !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err(invalid());
                }
                let iterations = match n {
                    "-1" => DEFAULT_ITERATIONS,
                    n => n.parse().map_err(|_| invalid())?,
                };
                (iterations, password)
            }
            None => (DEFAULT_ITERATIONS, value.strip_prefix("password=").ok_or_else(invalid)?),
        };
        if iterations < MIN_ITERATIONS {
            return Err(ToolError::Usage(format!(
                "Iterations {iterations} is less than the minimum {MIN_ITERATIONS} required for {}",
                mechanism.name()
            )));
        }
        Ok(Upsertion {
            mechanism,
            iterations,
            password: password.to_string(),
        })
    }
}

/// `--describe` of users' credentials (every user's when `users` is empty): one line per user that
/// has any, in the cluster's order.
pub async fn describe(admin: &mut Admin, users: &[String]) -> Result<(), ToolError> {
    let request = DescribeUserScramCredentialsRequest::default().with_users((!users.is_empty()).then(|| {
        users
            .iter()
            .map(|u| UserName::default().with_name(StrBytes::from_string(u.clone())))
            .collect()
    }));
    let response = admin.send(request, 0).await?;
    if response.error_code != 0 {
        return Err(ToolError::Kafka(kafka_message(
            response.error_code,
            response.error_message.as_deref(),
        )));
    }
    for result in response.results.iter().filter(|r| r.error_code != RESOURCE_NOT_FOUND) {
        if result.error_code != 0 {
            println!(
                "Error retrieving SCRAM credential configs for user-principal '{}': {}: {}",
                result.user,
                exception_name(result.error_code),
                kafka_message(result.error_code, result.error_message.as_deref())
            );
            continue;
        }
        let infos: Vec<String> = result
            .credential_infos
            .iter()
            .map(|info| {
                let name = Mechanism::from_wire(info.mechanism).map_or("UNKNOWN", Mechanism::name);
                format!("{name}=iterations={}", info.iterations)
            })
            .collect();
        println!(
            "SCRAM credential configs for user-principal '{}' are {}",
            result.user,
            infos.join(", ")
        );
    }
    Ok(())
}

/// Kafka's exception class for an error code: `UNSUPPORTED_SASL_MECHANISM` is
/// `UnsupportedSaslMechanismException`.
fn exception_name(code: i16) -> String {
    let name = kafka_protocol::error::ResponseError::try_from_code(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| "Unknown".to_string());
    format!("{name}Exception")
}

/// `--alter` of one user's credentials: deletions and upsertions in one AlterUserScramCredentials.
pub async fn alter(
    admin: &mut Admin,
    user: &str,
    upsertions: &[Upsertion],
    deletions: &[Mechanism],
) -> Result<(), ToolError> {
    let name = || StrBytes::from_string(user.to_string());
    let mut sent = Vec::new();
    for u in upsertions {
        if u.password.is_empty() {
            return Err(ToolError::Kafka("Password must not be empty".to_string()));
        }
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|e| ToolError::Usage(format!("cannot get random bytes for a salt: {e}")))?;
        sent.push(
            ScramCredentialUpsertion::default()
                .with_name(name())
                .with_mechanism(u.mechanism.wire())
                .with_iterations(u.iterations)
                .with_salt(salt.to_vec().into())
                .with_salted_password(
                    u.mechanism
                        .salted_password(u.password.as_bytes(), &salt, u.iterations)
                        .into(),
                ),
        );
    }
    let request = AlterUserScramCredentialsRequest::default()
        .with_upsertions(sent)
        .with_deletions(
            deletions
                .iter()
                .map(|m| {
                    ScramCredentialDeletion::default()
                        .with_name(name())
                        .with_mechanism(m.wire())
                })
                .collect(),
        );
    let response = admin.send(request, 0).await?;
    first_failure(
        response
            .results
            .iter()
            .map(|r| (r.error_code, r.error_message.as_deref())),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_parse_as_kafkas_tool_parses_them() {
        let parse = |v: &str| Upsertion::parse(Mechanism::Sha256, v).map_err(|e| e.to_string());
        assert_eq!(
            parse("iterations=8192,password=a,b=c"),
            Ok(Upsertion {
                mechanism: Mechanism::Sha256,
                iterations: 8192,
                password: "a,b=c".into()
            })
        );
        assert_eq!(parse("password=p").map(|u| u.iterations), Ok(4096));
        assert_eq!(parse("iterations=-1,password=p").map(|u| u.iterations), Ok(4096));
        assert_eq!(
            parse("iterations=100,password=p"),
            Err("Iterations 100 is less than the minimum 4096 required for SCRAM-SHA-256".into())
        );
        assert_eq!(
            parse("iterations=x,password=p"),
            Err("Invalid credential property SCRAM_SHA_256=iterations=x,password=p".into())
        );
        assert_eq!(
            parse("secret"),
            Err("Invalid credential property SCRAM_SHA_256=secret".into())
        );
    }
}
