//! The Kafka admin requests behind KafkaUsers: AlterUserScramCredentials (upsert a SCRAM-SHA-512
//! credential salted here, or delete it), DescribeAcls for one principal, CreateAcls and DeleteAcls
//! with exact filters. Each runs over one connection to the cluster's admin address
//! (`kafka_admin::with_connection`, secured as `kafka_security` says). Refusals come back as
//! `TopicAdminError::Kafka` with Kafka's code and message, for status.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, RequestKind,
    ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use oxka_protocol::network::client::ClientConnection;
use oxka_protocol::scram::Mechanism;

use super::kafka_admin::{with_connection, AdminError, TIMEOUT};
use super::topic_admin::{KafkaRefusal, TopicAdminError};
use super::user_acls::{Binding, ALLOW, CLUSTER_RESOURCE, LITERAL, OPERATION_CLUSTER_ACTION, RESOURCE_CLUSTER};

const ACLS_VERSION: i16 = 3;
const ALTER_SCRAM_VERSION: i16 = 0;
/// Kafka's default and minimum for SCRAM-SHA-512 (`kafka-configs` uses 4096).
pub const SCRAM_ITERATIONS: i32 = 4096;
/// ResourceNotFound: deleting a credential that does not exist.
const RESOURCE_NOT_FOUND: i16 = 91;
const ANY: i8 = 1;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

async fn call(
    c: &mut ClientConnection,
    key: ApiKey,
    version: i16,
    request: RequestKind,
) -> Result<ResponseKind, AdminError> {
    Ok(c.call(key, version, &request, TIMEOUT).await?)
}

fn refused(request: &'static str, code: i16, message: Option<&StrBytes>) -> TopicAdminError {
    TopicAdminError::Kafka(KafkaRefusal {
        request,
        code,
        message: message.map(|m| m.to_string()),
    })
}

/// Sets `user`'s SCRAM-SHA-512 credential to `password` (salted here: the password never leaves
/// the operator, as `kafka-configs --add-config SCRAM-SHA-512=[password=...]` does).
pub async fn upsert_scram(address: &str, user: &str, password: &str) -> Result<(), TopicAdminError> {
    let mut salt = [0u8; 32];
    super::certs::getrandom(&mut salt);
    let mechanism = Mechanism::Sha512;
    let salted = mechanism.salted_password(password.as_bytes(), &salt, SCRAM_ITERATIONS);
    let request =
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
            .with_name(s(user))
            .with_mechanism(mechanism.wire())
            .with_iterations(SCRAM_ITERATIONS)
            .with_salt(Bytes::copy_from_slice(&salt))
            .with_salted_password(Bytes::from(salted))]);
    alter_scram(address, request, false).await
}

/// Deletes `user`'s SCRAM-SHA-512 credential; one that does not exist is no error.
pub async fn delete_scram(address: &str, user: &str) -> Result<(), TopicAdminError> {
    let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![ScramCredentialDeletion::default()
        .with_name(s(user))
        .with_mechanism(Mechanism::Sha512.wire())]);
    alter_scram(address, request, true).await
}

async fn alter_scram(
    address: &str,
    request: AlterUserScramCredentialsRequest,
    missing_ok: bool,
) -> Result<(), TopicAdminError> {
    let response = with_connection(address, async |c: &mut ClientConnection| {
        call(
            c,
            ApiKey::AlterUserScramCredentials,
            ALTER_SCRAM_VERSION,
            RequestKind::AlterUserScramCredentials(request),
        )
        .await
    })
    .await?;
    let ResponseKind::AlterUserScramCredentials(response) = response else {
        unreachable!("oxka-protocol decodes an AlterUserScramCredentials response as such")
    };
    for result in &response.results {
        if result.error_code != 0 && !(missing_ok && result.error_code == RESOURCE_NOT_FOUND) {
            return Err(refused(
                "AlterUserScramCredentials",
                result.error_code,
                result.error_message.as_ref(),
            ));
        }
    }
    Ok(())
}

/// Every ACL binding whose principal is `principal`.
pub async fn describe_acls(address: &str, principal: &str) -> Result<BTreeSet<Binding>, TopicAdminError> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(ANY)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(ANY)
        .with_principal_filter(Some(s(principal)))
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let response = with_connection(address, async |c: &mut ClientConnection| {
        call(
            c,
            ApiKey::DescribeAcls,
            ACLS_VERSION,
            RequestKind::DescribeAcls(request),
        )
        .await
    })
    .await?;
    let ResponseKind::DescribeAcls(response) = response else {
        unreachable!("oxka-protocol decodes a DescribeAcls response as such")
    };
    if response.error_code != 0 {
        return Err(refused(
            "DescribeAcls",
            response.error_code,
            response.error_message.as_ref(),
        ));
    }
    let mut out = BTreeSet::new();
    for resource in &response.resources {
        for acl in &resource.acls {
            out.insert(Binding {
                resource_type: resource.resource_type,
                resource_name: resource.resource_name.to_string(),
                pattern_type: resource.pattern_type,
                principal: acl.principal.to_string(),
                host: acl.host.to_string(),
                operation: acl.operation,
                permission: acl.permission_type,
            });
        }
    }
    Ok(out)
}

/// CreateAcls for `bindings` (Kafka treats an existing binding as created).
pub async fn create_acls(address: &str, bindings: &[Binding]) -> Result<(), TopicAdminError> {
    if bindings.is_empty() {
        return Ok(());
    }
    let request = CreateAclsRequest::default().with_creations(
        bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type)
                    .with_resource_name(s(&b.resource_name))
                    .with_resource_pattern_type(b.pattern_type)
                    .with_principal(s(&b.principal))
                    .with_host(s(&b.host))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission)
            })
            .collect(),
    );
    let response = with_connection(address, async |c: &mut ClientConnection| {
        call(c, ApiKey::CreateAcls, ACLS_VERSION, RequestKind::CreateAcls(request)).await
    })
    .await?;
    let ResponseKind::CreateAcls(response) = response else {
        unreachable!("oxka-protocol decodes a CreateAcls response as such")
    };
    if let Some(r) = response.results.iter().find(|r| r.error_code != 0) {
        return Err(refused("CreateAcls", r.error_code, r.error_message.as_ref()));
    }
    Ok(())
}

/// DeleteAcls with one exact filter per binding.
pub async fn delete_acls(address: &str, bindings: &[Binding]) -> Result<(), TopicAdminError> {
    if bindings.is_empty() {
        return Ok(());
    }
    let request = DeleteAclsRequest::default().with_filters(
        bindings
            .iter()
            .map(|b| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(b.resource_type)
                    .with_resource_name_filter(Some(s(&b.resource_name)))
                    .with_pattern_type_filter(b.pattern_type)
                    .with_principal_filter(Some(s(&b.principal)))
                    .with_host_filter(Some(s(&b.host)))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission)
            })
            .collect(),
    );
    let response = with_connection(address, async |c: &mut ClientConnection| {
        call(c, ApiKey::DeleteAcls, ACLS_VERSION, RequestKind::DeleteAcls(request)).await
    })
    .await?;
    let ResponseKind::DeleteAcls(response) = response else {
        unreachable!("oxka-protocol decodes a DeleteAcls response as such")
    };
    if let Some(r) = response.filter_results.iter().find(|r| r.error_code != 0) {
        return Err(refused("DeleteAcls", r.error_code, r.error_message.as_ref()));
    }
    Ok(())
}

/// ALLOW `User:ANONYMOUS` CLUSTER_ACTION on the cluster: what followers' Fetch over a secured
/// cluster's PLAINTEXT replication listener needs while brokers cannot authenticate to each other.
pub async fn grant_replication(address: &str) -> Result<(), TopicAdminError> {
    create_acls(
        address,
        &[Binding {
            resource_type: RESOURCE_CLUSTER,
            resource_name: CLUSTER_RESOURCE.to_string(),
            pattern_type: LITERAL,
            principal: "User:ANONYMOUS".to_string(),
            host: "*".to_string(),
            operation: OPERATION_CLUSTER_ACTION,
            permission: ALLOW,
        }],
    )
    .await
}
