//! AlterUserScramCredentials (KIP-554) on the controller: each user's upsertion or deletion is checked
//! as Kafka's `ScramControlManager` checks it (one alteration per user per request, a known mechanism,
//! a non-empty name, 4096..=16384 iterations, a deletion only of a credential that exists); the salted
//! passwords of those that pass become stored and server keys (`scram::Credential::from_salted`) in one
//! `AlterScramCredentials` command. Every user gets a result: its own refusal, or the command's outcome.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use kafka_protocol::protocol::VersionRange;
use oxka_protocol::scram::{Credential, Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

use super::{propose, str_bytes, ClientContext};
use crate::image::{ClusterImage, MetadataCommand};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

type Refusal = (i16, String);

/// What a request asks, checked against the image: the command's changes and each user's refusal.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub upsert: Vec<(String, Mechanism, Credential)>,
    pub delete: Vec<(String, Mechanism)>,
    /// Users in the order they first appear, each with its refusal (`None`: its change is planned).
    pub users: Vec<(String, Option<Refusal>)>,
}

pub async fn handle(
    ctx: &ClientContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let plan = plan(&ctx.node.state.image(), &request);
    let outcome = if plan.upsert.is_empty() && plan.delete.is_empty() {
        Ok(())
    } else {
        let command = MetadataCommand::AlterScramCredentials {
            upsert: plan.upsert,
            delete: plan.delete,
        };
        propose(ctx, command).await.map(|_| ())
    };
    let results = plan
        .users
        .into_iter()
        .map(|(user, refusal)| {
            let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(&user));
            match refusal.or_else(|| outcome.clone().err()) {
                None => result,
                Some((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(&message))),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// Checks every deletion and upsertion of `request` against `image`, as Kafka's controller does.
pub fn plan(image: &ClusterImage, request: &AlterUserScramCredentialsRequest) -> Plan {
    let mut refusals: BTreeMap<String, Refusal> = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut note = |user: &str| -> usize {
        if !seen.contains_key(user) {
            order.push(user.to_string());
        }
        let count = seen.entry(user.to_string()).or_default();
        *count += 1;
        *count
    };
    let duplicate = || {
        (
            ResponseError::DuplicateResource.code(),
            "A user credential cannot be altered twice in the same request".to_string(),
        )
    };
    let mut delete = Vec::new();
    for deletion in &request.deletions {
        let user = deletion.name.to_string();
        if note(&user) > 1 {
            refusals.entry(user).or_insert_with(duplicate);
            continue;
        }
        match user_and_mechanism(&user, deletion.mechanism) {
            Err(refusal) => {
                refusals.insert(user, refusal);
            }
            Ok(mechanism)
                if !image
                    .scram_credentials
                    .get(&user)
                    .is_some_and(|c| c.contains_key(&mechanism)) =>
            {
                refusals.insert(
                    user,
                    (
                        ResponseError::ResourceNotFound.code(),
                        "Attempt to delete a user credential that does not exist".to_string(),
                    ),
                );
            }
            Ok(mechanism) => delete.push((user, mechanism)),
        }
    }
    let mut upsert = Vec::new();
    for upsertion in &request.upsertions {
        let user = upsertion.name.to_string();
        if note(&user) > 1 {
            refusals.entry(user).or_insert_with(duplicate);
            continue;
        }
        let checked = user_and_mechanism(&user, upsertion.mechanism).and_then(|mechanism| {
            if upsertion.iterations < MIN_ITERATIONS {
                Err((
                    ResponseError::UnacceptableCredential.code(),
                    "Too few iterations".to_string(),
                ))
            } else if upsertion.iterations > MAX_ITERATIONS {
                Err((
                    ResponseError::UnacceptableCredential.code(),
                    "Too many iterations".to_string(),
                ))
            } else {
                Ok(mechanism)
            }
        });
        match checked {
            Err(refusal) => {
                refusals.insert(user, refusal);
            }
            Ok(mechanism) => {
                let credential = Credential::from_salted(
                    mechanism,
                    &upsertion.salted_password,
                    &upsertion.salt,
                    upsertion.iterations,
                );
                upsert.push((user, mechanism, credential));
            }
        }
    }
    // A user refused for a later duplicate loses the change planned for its first mention too.
    delete.retain(|(user, _)| !refusals.contains_key(user));
    upsert.retain(|(user, _, _)| !refusals.contains_key(user));
    let users = order
        .into_iter()
        .map(|user| {
            let refusal = refusals.remove(&user);
            (user, refusal)
        })
        .collect();
    Plan { upsert, delete, users }
}

fn user_and_mechanism(user: &str, mechanism: i8) -> Result<Mechanism, Refusal> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential.code(),
            "Username must not be empty".to_string(),
        ));
    }
    Mechanism::from_wire(mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism.code(),
        "Unknown SCRAM mechanism".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };

    use super::*;

    fn upsertion(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion::default()
            .with_name(str_bytes(user))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(b"salt".to_vec().into())
            .with_salted_password(b"salted".to_vec().into())
    }

    fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default()
            .with_name(str_bytes(user))
            .with_mechanism(mechanism)
    }

    fn codes(plan: &Plan) -> Vec<(String, i16)> {
        plan.users
            .iter()
            .map(|(u, r)| (u.clone(), r.as_ref().map_or(0, |r| r.0)))
            .collect()
    }

    #[test]
    fn each_user_is_checked_as_kafkas_controller_checks_it() {
        let mut image = ClusterImage::default();
        // carol's deletion would pass, but she is altered twice: neither change is made.
        let credential = Credential::from_salted(Mechanism::Sha512, b"salted", b"salt", 4096);
        image
            .scram_credentials
            .entry("carol".into())
            .or_default()
            .insert(Mechanism::Sha512, credential);
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![
                deletion("carol", 2),
                deletion("dave", 1),
                deletion("erin", 1),
                deletion("hal", 1),
            ])
            .with_upsertions(vec![
                upsertion("alice", 2, 4096),
                upsertion("bob", 1, 100),
                upsertion("erin", 1, 4096),
                upsertion("frank", 3, 4096),
                upsertion("", 1, 4096),
                upsertion("gina", 1, 20000),
                upsertion("carol", 1, 4096),
            ]);
        let plan = plan(&image, &request);
        assert_eq!(
            codes(&plan),
            [
                ("carol".to_string(), 92),
                ("dave".to_string(), 91),
                ("erin".to_string(), 91),
                ("hal".to_string(), 91),
                ("alice".to_string(), 0),
                ("bob".to_string(), 93),
                ("frank".to_string(), 33),
                ("".to_string(), 93),
                ("gina".to_string(), 93),
            ]
        );
        assert_eq!(plan.delete, []);
        assert_eq!(
            plan.upsert,
            [(
                "alice".to_string(),
                Mechanism::Sha512,
                Credential::from_salted(Mechanism::Sha512, b"salted", b"salt", 4096)
            )]
        );
        let refusal = |user: &str| plan.users.iter().find(|(u, _)| u == user).unwrap().1.clone().unwrap().1;
        assert_eq!(refusal("bob"), "Too few iterations");
        assert_eq!(refusal("gina"), "Too many iterations");
        assert_eq!(
            refusal("dave"),
            "Attempt to delete a user credential that does not exist"
        );
    }
}
