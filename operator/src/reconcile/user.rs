//! One reconciliation of one KafkaUser: find its KafkaCluster, make sure the user's SCRAM-SHA-512
//! credential exists in Kafka with the password in the Secret named like the KafkaUser (generated
//! once, or taken from `authentication.password.valueFrom`), and converge the ACLs of `User:<name>`
//! to exactly the spec's (`user_acls::diff`, then DeleteAcls and CreateAcls). A finalizer deletes the
//! credential and every ACL of the principal before the KafkaUser goes; when the KafkaCluster is
//! gone there is nothing to delete from, and the finalizer is dropped at once.
//!
//! The Secret (`password`, `sasl.jaas.config` as Strimzi writes it, `username`) is owned by the
//! KafkaUser, so Kubernetes deletes it with the KafkaUser.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::{Api, Resource, ResourceExt};

use super::cluster::Context;
use super::topic_admin::TopicAdminError;
use super::topic_plan::kafka_error_reason;
use super::{cluster_certs, user_acls, user_admin};
use crate::crd::user::{KafkaUser, KafkaUserStatus, USER_FINALIZER};
use crate::crd::KafkaCluster;
use crate::render::MANAGER;

const STATUS_MANAGER: &str = "oxka-operator-users";
const RETRY: Duration = Duration::from_secs(15);
/// Annotation on the user's Secret: digest of the password last set in Kafka, so a credential is
/// upserted once per password, not every reconciliation.
const APPLIED_ANNOTATION: &str = "oxka.io/credential-applied";
const PASSWORD_LENGTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {what} failed: {source}")]
    Read { what: String, source: kube::Error },
    #[error("writing {what} failed: {source}")]
    Write { what: String, source: kube::Error },
    #[error(
        "deleting the Kafka credential or ACLs of {user} failed (the KafkaUser stays until it succeeds): {source}"
    )]
    Delete { user: String, source: TopicAdminError },
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

pub async fn reconcile(user: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), &user.namespace().unwrap_or_default());
    finalizer(&api, USER_FINALIZER, user, |event| async {
        match event {
            Finalizer::Apply(user) => apply(&user, &ctx).await,
            Finalizer::Cleanup(user) => cleanup(&user, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(user: Arc<KafkaUser>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(user = %user.name_any(), namespace = ?user.namespace(), "reconcile failed: {error}");
    Action::requeue(RETRY)
}

/// How one reconciliation ended, for the Ready condition.
enum Outcome {
    Ready(String),
    NotReady { reason: String, message: String },
}

fn not_ready(reason: &str, message: String) -> Outcome {
    Outcome::NotReady {
        reason: reason.to_string(),
        message,
    }
}

/// A refused or failed admin request as the condition shows it.
fn failed(e: TopicAdminError) -> Outcome {
    match e {
        TopicAdminError::Kafka(refusal) => not_ready(&kafka_error_reason(refusal.code), refusal.to_string()),
        TopicAdminError::Admin(e) => not_ready("KafkaUnreachable", format!("cannot reach the Kafka admin API: {e}")),
    }
}

async fn cluster_of(ctx: &Context, user: &KafkaUser, namespace: &str) -> Result<Option<KafkaCluster>, Error> {
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), namespace);
    clusters
        .get_opt(&user.spec.cluster)
        .await
        .map_err(|source| Error::Read {
            what: format!("KafkaCluster {}", user.spec.cluster),
            source,
        })
}

async fn apply(user: &KafkaUser, ctx: &Context) -> Result<Action, Error> {
    let namespace = user.namespace().unwrap_or_default();
    let name = user.name_any();
    let mut acl_count = None;
    let Some(cluster) = cluster_of(ctx, user, &namespace).await? else {
        let message = format!(
            "KafkaCluster {} does not exist in namespace {namespace}: the user is created once it does",
            user.spec.cluster
        );
        return finish(ctx, user, not_ready("ClusterNotFound", message), None).await;
    };
    let address = ctx.kafka_address(&cluster, &namespace);
    if let Err(e) = cluster_certs::register_existing(ctx, &cluster, &namespace, &address).await {
        return finish(ctx, user, not_ready("KafkaUnreachable", e.to_string()), None).await;
    }
    let mut done = Vec::new();
    if user.spec.authentication.is_some() {
        match credential(ctx, user, &namespace, &address).await? {
            Ok(what) => done.push(what),
            Err(outcome) => return finish(ctx, user, outcome, None).await,
        }
    }
    if let Some(authorization) = &user.spec.authorization {
        let principal = user_acls::principal(&name);
        let want = user_acls::desired(&principal, &authorization.acls);
        let have = match user_admin::describe_acls(&address, &principal).await {
            Ok(have) => have,
            Err(e) => return finish(ctx, user, failed(e), None).await,
        };
        let diff = user_acls::diff(&want, &have);
        if let Err(e) = user_admin::delete_acls(&address, &diff.delete).await {
            return finish(ctx, user, failed(e), None).await;
        }
        if let Err(e) = user_admin::create_acls(&address, &diff.create).await {
            return finish(ctx, user, failed(e), None).await;
        }
        if !diff.is_empty() {
            let note = format!(
                "ACLs of {principal}: {} created, {} deleted",
                diff.create.len(),
                diff.delete.len()
            );
            event(ctx, user, EventType::Normal, "AclsChanged", note).await;
        }
        done.push(format!("{} ACL bindings", want.len()));
        acl_count = Some(want.len() as i32);
    }
    let message = if done.is_empty() {
        format!("user {name} needs nothing in Kafka")
    } else {
        format!("user {name}: {}", done.join(", "))
    };
    finish(ctx, user, Outcome::Ready(message), acl_count).await
}

/// The user's password (referenced Secret, else the one the operator generated before, else a new
/// one), written to the user's Secret and set in Kafka when it changed.
async fn credential(
    ctx: &Context,
    user: &KafkaUser,
    namespace: &str,
    address: &str,
) -> Result<Result<String, Outcome>, Error> {
    let name = user.name_any();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let own = secrets.get_opt(&name).await.map_err(|source| Error::Read {
        what: format!("Secret {name}"),
        source,
    })?;
    if let Some(own) = &own {
        let ours = own
            .owner_references()
            .iter()
            .any(|o| o.kind == "KafkaUser" && Some(&o.uid) == user.uid().as_ref());
        if !ours {
            let message = format!("Secret {name} exists and was not made for this KafkaUser: remove or rename it");
            return Ok(Err(not_ready("SecretConflict", message)));
        }
    }
    let referenced = user.spec.authentication.as_ref().and_then(|a| a.password.as_ref());
    let password = match referenced {
        Some(source) => {
            let reference = &source.value_from.secret_key_ref;
            let secret = secrets.get_opt(&reference.name).await.map_err(|source| Error::Read {
                what: format!("Secret {}", reference.name),
                source,
            })?;
            match secret.as_ref().and_then(|s| secret_value(s, &reference.key)) {
                Some(p) if !p.is_empty() => p,
                _ => {
                    let message = format!(
                        "authentication.password.valueFrom: Secret {} has no key {} in namespace {namespace}",
                        reference.name, reference.key
                    );
                    return Ok(Err(not_ready("PasswordNotFound", message)));
                }
            }
        }
        None => own
            .as_ref()
            .and_then(|s| secret_value(s, "password"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(generate_password),
    };
    let applied = super::certs::digest(&[&name, &password]);
    let up_to_date = own
        .as_ref()
        .and_then(|s| s.annotations().get(APPLIED_ANNOTATION))
        .is_some_and(|a| *a == applied)
        && user.status.as_ref().is_some_and(|s| {
            s.observed_generation == user.metadata.generation
                && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
        });
    if up_to_date {
        return Ok(Ok("SCRAM-SHA-512 credential".to_string()));
    }
    if let Err(e) = user_admin::upsert_scram(address, &name, &password).await {
        return Ok(Err(failed(e)));
    }
    write_secret(&secrets, user, &password, &applied).await?;
    event(
        ctx,
        user,
        EventType::Normal,
        "CredentialSet",
        format!("SCRAM-SHA-512 credential of {name} set in Kafka; password in Secret {name}"),
    )
    .await;
    Ok(Ok("SCRAM-SHA-512 credential set".to_string()))
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// 32 characters from [A-Za-z0-9]: 190 bits, and nothing a JAAS line or a shell needs escaped.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; PASSWORD_LENGTH];
    super::certs::getrandom(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// Kafka's client JAAS line for SCRAM, as Strimzi puts it in the user's Secret.
pub fn jaas_config(user: &str, password: &str) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        quote(user),
        quote(password)
    )
}

async fn write_secret(secrets: &Api<Secret>, user: &KafkaUser, password: &str, applied: &str) -> Result<(), Error> {
    let name = user.name_any();
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.clone());
    secret.metadata.namespace = user.namespace();
    secret.metadata.labels = Some(BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string()),
        ("oxka.io/cluster".to_string(), user.spec.cluster.clone()),
    ]));
    secret.metadata.annotations = Some(BTreeMap::from([(APPLIED_ANNOTATION.to_string(), applied.to_string())]));
    secret.metadata.owner_references = user.uid().map(|uid| {
        vec![OwnerReference {
            api_version: KafkaUser::api_version(&()).to_string(),
            kind: KafkaUser::kind(&()).to_string(),
            name: name.clone(),
            uid,
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]
    });
    secret.type_ = Some("Opaque".to_string());
    let entries = [
        ("username", name.clone()),
        ("password", password.to_string()),
        ("sasl.jaas.config", jaas_config(&name, password)),
    ];
    secret.data = Some(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
            .collect(),
    );
    secrets
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&secret))
        .await
        .map_err(|source| Error::Write {
            what: format!("Secret {name}"),
            source,
        })?;
    Ok(())
}

async fn finish(ctx: &Context, user: &KafkaUser, outcome: Outcome, acls: Option<i32>) -> Result<Action, Error> {
    let (status, reason, message) = match &outcome {
        Outcome::Ready(m) => ("True", "Ready".to_string(), m.clone()),
        Outcome::NotReady { reason, message } => ("False", reason.clone(), message.clone()),
    };
    let previous = user
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    if status == "False" && previous.map(|c| (&c.reason, &c.message)) != Some((&reason, &message)) {
        event(ctx, user, EventType::Warning, &reason, message.clone()).await;
    }
    let last_transition_time = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(Timestamp::now()),
    };
    let name = user.name_any();
    let new = KafkaUserStatus {
        observed_generation: user.metadata.generation,
        conditions: vec![Condition {
            type_: "Ready".to_string(),
            status: status.to_string(),
            reason,
            message,
            last_transition_time,
            observed_generation: user.metadata.generation,
        }],
        principal: Some(user_acls::principal(&name)),
        secret: user.spec.authentication.as_ref().map(|_| name.clone()),
        acls: acls.or_else(|| user.status.as_ref().and_then(|s| s.acls)),
    };
    if user.status.as_ref() != Some(&new) {
        let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), &user.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "apiVersion": KafkaUser::api_version(&()),
            "kind": KafkaUser::kind(&()),
            "status": new,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(STATUS_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::Write {
            what: format!("the status of KafkaUser {name}"),
            source,
        })?;
    }
    Ok(match outcome {
        Outcome::Ready(_) => Action::requeue(ctx.topic_resync),
        Outcome::NotReady { .. } => Action::requeue(RETRY),
    })
}

async fn cleanup(user: &KafkaUser, ctx: &Context) -> Result<Action, Error> {
    let namespace = user.namespace().unwrap_or_default();
    let name = user.name_any();
    let cluster = cluster_of(ctx, user, &namespace).await?;
    let Some(cluster) = cluster.filter(|c| c.metadata.deletion_timestamp.is_none()) else {
        tracing::info!(user = %name, cluster = %user.spec.cluster, "KafkaCluster gone: dropping the finalizer");
        return Ok(Action::await_change());
    };
    let address = ctx.kafka_address(&cluster, &namespace);
    let delete_error = |source| Error::Delete {
        user: name.clone(),
        source,
    };
    if let Err(e) = cluster_certs::register_existing(ctx, &cluster, &namespace, &address).await {
        tracing::info!(user = %name, "the operator's certificate for {} is unreadable: {e}", user.spec.cluster);
    }
    if user.spec.authentication.is_some() {
        user_admin::delete_scram(&address, &name).await.map_err(delete_error)?;
    }
    // ACLs only when the KafkaUser managed them: without spec.authorization they were never ours.
    let principal = user_acls::principal(&name);
    let mut all = Vec::new();
    if user.spec.authorization.is_some() {
        let have = user_admin::describe_acls(&address, &principal)
            .await
            .map_err(delete_error)?;
        all = have.into_iter().collect();
        user_admin::delete_acls(&address, &all).await.map_err(delete_error)?;
    }
    event(
        ctx,
        user,
        EventType::Normal,
        "Deleted",
        format!("deleted the credential and {} ACL bindings of {principal}", all.len()),
    )
    .await;
    Ok(Action::await_change())
}

async fn event(ctx: &Context, user: &KafkaUser, type_: EventType, reason: &str, note: String) {
    tracing::info!(user = %user.name_any(), reason, "{note}");
    let event = Event {
        type_,
        reason: reason.to_string(),
        action: format!("{reason}-{}", crate::render::config_hash(&[&note])),
        note: Some(note),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &user.object_ref(&())).await {
        tracing::warn!("recording event {reason} failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jaas_line_is_kafkas_scram_login_with_quotes_escaped() {
        assert_eq!(
            jaas_config("alice", "p\"w"),
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"p\\\"w\";"
        );
        let p = generate_password();
        assert_eq!(p.len(), PASSWORD_LENGTH);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(p, generate_password());
    }
}
