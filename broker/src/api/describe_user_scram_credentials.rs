//! DescribeUserScramCredentials (KIP-554), answered from this broker's metadata as a KRaft broker
//! answers it from its `ScramImage`: every user's mechanisms and iterations (never salts or keys) when
//! no user is named; otherwise each named user, with RESOURCE_NOT_FOUND for one without credentials and
//! DUPLICATE_RESOURCE for one named twice.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::coordinator::ClusterImage;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // DESCRIBE on the cluster, as in Kafka.
    if !ctx.access(broker).allows_cluster(Op::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Cluster authorization failed.")));
    }
    let names: Option<Vec<String>> = request
        .users
        .filter(|users| !users.is_empty())
        .map(|users| users.into_iter().map(|u| u.name.to_string()).collect());
    DescribeUserScramCredentialsResponse::default().with_results(describe(&broker.metadata.image(), names))
}

fn describe(image: &ClusterImage, names: Option<Vec<String>>) -> Vec<DescribeUserScramCredentialsResult> {
    let Some(names) = names else {
        return image
            .scram_credentials
            .keys()
            .map(|user| described(image, user))
            .collect();
    };
    let mut mentions: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &names {
        *mentions.entry(name).or_default() += 1;
    }
    let mut results = Vec::new();
    for (user, count) in mentions {
        let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
        let refused = |error: ResponseError, message: &str| {
            result
                .clone()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(&format!("{message}: {user}"))))
        };
        results.push(if count > 1 {
            refused(
                ResponseError::DuplicateResource,
                "Cannot describe SCRAM credentials for the same user twice in a single request",
            )
        } else if !image.scram_credentials.contains_key(user) {
            refused(
                ResponseError::ResourceNotFound,
                "Attempt to describe a user credential that does not exist",
            )
        } else {
            described(image, user)
        });
    }
    results
}

fn described(image: &ClusterImage, user: &str) -> DescribeUserScramCredentialsResult {
    let infos = image
        .scram_credentials
        .get(user)
        .into_iter()
        .flatten()
        .map(|(mechanism, credential)| {
            CredentialInfo::default()
                .with_mechanism(mechanism.wire())
                .with_iterations(credential.iterations)
        })
        .collect();
    DescribeUserScramCredentialsResult::default()
        .with_user(str_bytes(user))
        .with_credential_infos(infos)
}

#[cfg(test)]
mod tests {
    use oxka_protocol::scram::{Credential, Mechanism};

    use super::*;

    #[test]
    fn named_users_are_described_or_refused_as_kafka_does() {
        let mut image = ClusterImage::default();
        for (mechanism, iterations) in [(Mechanism::Sha256, 8192), (Mechanism::Sha512, 4096)] {
            image
                .scram_credentials
                .entry("alice".into())
                .or_default()
                .insert(mechanism, Credential::from_salted(mechanism, b"s", b"salt", iterations));
        }
        let all = describe(&image, None);
        assert_eq!(all.len(), 1);
        let infos: Vec<(i8, i32)> = all[0]
            .credential_infos
            .iter()
            .map(|i| (i.mechanism, i.iterations))
            .collect();
        assert_eq!(infos, [(1, 8192), (2, 4096)]);

        let named = describe(
            &image,
            Some(vec!["bob".into(), "alice".into(), "carol".into(), "carol".into()]),
        );
        let codes: Vec<(String, i16)> = named.iter().map(|r| (r.user.to_string(), r.error_code)).collect();
        assert_eq!(
            codes,
            [
                ("alice".to_string(), 0),
                ("bob".to_string(), 91),
                ("carol".to_string(), 92)
            ]
        );
        assert_eq!(
            named[1].error_message.as_deref(),
            Some("Attempt to describe a user credential that does not exist: bob")
        );
    }
}
