//! The certificates of a secured KafkaCluster, kept in three Secrets it owns (garbage-collected with
//! it): `<cluster>-cluster-ca` (the CA's `ca.crt` and `ca.key`), `<cluster>-broker-certs` (mounted
//! into broker pods: `ca.crt`, `broker-<id>.pem` per broker, and `listener-internal.pem` copied from
//! the user's `tls.secretName`), and `<cluster>-operator-certs` (the operator's client certificate).
//!
//! Each reconciliation reads them and reissues what is missing, due (`clusterCa.renewalDays` before
//! `oxka.io/not-after`), issued by another CA, or issued for other names (brokers added): all broker
//! certificates at once, so that one health-gated roll moves every broker onto them. A new CA
//! (expiry) reissues everything; clients must then trust the new `ca.crt` (no overlap of old and
//! new CA yet). The digest of the certificates (never the keys) goes into the brokers' config hash.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use super::certs::{self, due, issue, new_ca, CertError, Issued, Leaf, OPERATOR_COMMON_NAME};
use super::cluster::Context;
use super::kafka_security;
use crate::crd::KafkaCluster;
use crate::render::security::{
    broker_certs_secret, cluster_ca_secret, keystore_file, operator_certs_secret, CA_FILE, USER_KEYSTORE_FILE,
};
use crate::render::MANAGER;

/// Annotation with the earliest expiry (Unix seconds) of the certificates in a Secret.
pub const NOT_AFTER_ANNOTATION: &str = "oxka.io/not-after";
/// Annotation with the digest of what a Secret's certificates were issued for (CA and names).
const ISSUED_FOR_ANNOTATION: &str = "oxka.io/issued-for";

/// Why the certificates could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("reading Secret {name} failed: {source}")]
    Read { name: String, source: kube::Error },
    #[error("writing Secret {name} failed: {source}")]
    Write { name: String, source: kube::Error },
    #[error(transparent)]
    Issue(#[from] CertError),
    /// The user's listener Secret is missing or incomplete: a spec problem, shown in status.
    #[error("{0}")]
    UserSecret(String),
    #[error("the operator's client certificate cannot be used: {0}")]
    Client(String),
}

/// What the brokers' rendering needs from the certificates.
pub struct Ready {
    /// Digest of every certificate the brokers serve or trust.
    pub hash: String,
}

fn data(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

fn not_after(secret: &Secret) -> Option<i64> {
    secret.annotations().get(NOT_AFTER_ANNOTATION)?.parse().ok()
}

fn issued_for(secret: &Secret) -> Option<&str> {
    secret.annotations().get(ISSUED_FOR_ANNOTATION).map(String::as_str)
}

/// Ensures the three Secrets; registers the operator's TLS client for the cluster's admin addresses.
pub async fn ensure(
    ctx: &Context,
    cluster: &KafkaCluster,
    namespace: &str,
    brokers: i32,
    admin_addresses: Vec<String>,
) -> Result<Option<Ready>, CertsError> {
    let name = cluster.name_any();
    let key = format!("{namespace}/{name}");
    if !cluster.spec.listeners.internal.secured() {
        kafka_security::forget(&key);
        return Ok(None);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let lifetimes = cluster.spec.cluster_ca.clone().unwrap_or_default();
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let owner = owner(cluster);

    // The CA.
    let ca_name = cluster_ca_secret(&name);
    let stored = read(&api, &ca_name).await?;
    let ca = match stored.as_ref().and_then(|s| {
        Some(Issued {
            cert_pem: data(s, "ca.crt")?,
            key_pem: data(s, "ca.key")?,
            not_after: not_after(s)?,
        })
    }) {
        Some(ca) if !due(ca.not_after, now, lifetimes.renewal_days) => ca,
        _ => {
            let ca = new_ca(namespace, &name, now, lifetimes.validity_days)?;
            let contents = BTreeMap::from([("ca.crt", ca.cert_pem.clone()), ("ca.key", ca.key_pem.clone())]);
            write(&api, &ca_name, namespace, &owner, contents, ca.not_after, "").await?;
            tracing::info!(cluster = %name, "issued a new cluster CA");
            ca
        }
    };

    // The user's listener certificate, when named.
    let user = match cluster
        .spec
        .listeners
        .internal
        .tls
        .as_ref()
        .and_then(|t| t.secret_name.clone())
    {
        None => None,
        Some(secret_name) => Some(user_keystore(&api, &secret_name).await?),
    };

    // The brokers' certificates.
    let names: Vec<Vec<String>> = (0..brokers)
        .map(|i| broker_names(&name, namespace, &ctx.cluster_domain, i))
        .collect();
    let brokers_for = certs::digest(&[&ca.cert_pem, &format!("{names:?}"), user.as_deref().unwrap_or("")]);
    let broker_name = broker_certs_secret(&name);
    let stored = read(&api, &broker_name).await?;
    let current = stored.as_ref().filter(|s| {
        issued_for(s) == Some(brokers_for.as_str())
            && not_after(s).is_some_and(|t| !due(t, now, lifetimes.renewal_days))
    });
    let broker_secret = match current {
        Some(s) => s.clone(),
        None => {
            let mut contents = BTreeMap::from([(CA_FILE, ca.cert_pem.clone())]);
            let mut earliest = ca.not_after;
            let mut files = Vec::new();
            for (i, names) in names.iter().enumerate() {
                let leaf = issue(
                    namespace,
                    &name,
                    &ca.key_pem,
                    ca.not_after,
                    Leaf::Server(names),
                    now,
                    lifetimes.validity_days,
                )?;
                earliest = earliest.min(leaf.not_after);
                files.push((keystore_file(&i.to_string()), leaf.keystore(&ca.cert_pem)));
            }
            let mut owned: BTreeMap<String, String> = files.into_iter().collect();
            if let Some(user) = &user {
                owned.insert(USER_KEYSTORE_FILE.to_string(), user.clone());
            }
            contents.extend(owned.iter().map(|(k, v)| (k.as_str(), v.clone())));
            let written = write(&api, &broker_name, namespace, &owner, contents, earliest, &brokers_for).await?;
            tracing::info!(cluster = %name, brokers, "issued broker certificates");
            written
        }
    };

    // The operator's client certificate.
    let operator_name = operator_certs_secret(&name);
    let operator_for = certs::digest(&[&ca.cert_pem]);
    let stored = read(&api, &operator_name).await?;
    let current = stored.as_ref().filter(|s| {
        issued_for(s) == Some(operator_for.as_str())
            && not_after(s).is_some_and(|t| !due(t, now, lifetimes.renewal_days))
    });
    let keystore = match current.and_then(|s| data(s, "keystore.pem")) {
        Some(keystore) => keystore,
        None => {
            let leaf = issue(
                namespace,
                &name,
                &ca.key_pem,
                ca.not_after,
                Leaf::Client(OPERATOR_COMMON_NAME),
                now,
                lifetimes.validity_days,
            )?;
            let keystore = leaf.keystore(&ca.cert_pem);
            let contents = BTreeMap::from([(CA_FILE, ca.cert_pem.clone()), ("keystore.pem", keystore.clone())]);
            write(
                &api,
                &operator_name,
                namespace,
                &owner,
                contents,
                leaf.not_after,
                &operator_for,
            )
            .await?;
            keystore
        }
    };
    let security = kafka_security::mutual_tls(&ca.cert_pem, &keystore).map_err(CertsError::Client)?;
    let mut addresses = admin_addresses;
    for i in 0..brokers {
        addresses.push(format!(
            "{}:{}",
            names[i as usize][0],
            crate::crd::validate::OPERATOR_PORT
        ));
    }
    kafka_security::register(&key, addresses, &security);

    // Certificates only: a new key alone never needs a restart, a new certificate does.
    let certificates: Vec<String> = broker_secret
        .data
        .iter()
        .flatten()
        .filter_map(|(_, v)| String::from_utf8(v.0.clone()).ok())
        .map(|pem| certificates_only(&pem))
        .collect();
    let refs: Vec<&str> = certificates.iter().map(String::as_str).collect();
    Ok(Some(Ready {
        hash: certs::digest(&refs),
    }))
}

/// The DNS names of broker `id`'s certificate: its pod under the headless Service (with and without
/// the cluster domain), then the bootstrap Service.
pub fn broker_names(name: &str, namespace: &str, domain: &str, id: i32) -> Vec<String> {
    let pod = format!("{name}-broker-{id}.{name}-broker-headless.{namespace}.svc");
    let bootstrap = format!("{name}-bootstrap.{namespace}.svc");
    vec![
        format!("{pod}.{domain}"),
        pod,
        format!("{bootstrap}.{domain}"),
        bootstrap,
        format!("{name}-bootstrap.{namespace}"),
        format!("{name}-bootstrap"),
    ]
}

/// The CERTIFICATE blocks of some PEM text (keys left out).
fn certificates_only(pem: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE") {
            inside = false;
        }
    }
    out
}

/// `tls.key` then `tls.crt` (and `ca.crt` if present) of the user's Secret: oxka's PEM keystore.
async fn user_keystore(api: &Api<Secret>, secret_name: &str) -> Result<String, CertsError> {
    let secret = read(api, secret_name).await?.ok_or_else(|| {
        CertsError::UserSecret(format!(
            "spec.listeners.internal.tls.secretName {secret_name}: no such Secret in the cluster's namespace (it needs tls.crt and tls.key)"
        ))
    })?;
    let get = |key: &str| data(&secret, key).filter(|v| !v.trim().is_empty());
    match (get("tls.key"), get("tls.crt")) {
        (Some(key), Some(crt)) if key.contains("PRIVATE KEY") && crt.contains("CERTIFICATE") => {
            if key.contains("ENCRYPTED") {
                return Err(CertsError::UserSecret(format!(
                    "Secret {secret_name}: tls.key is encrypted; oxka reads unencrypted PEM keys (openssl pkcs8 -topk8 -nocrypt)"
                )));
            }
            let mut keystore = format!("{}\n{}\n", key.trim_end(), crt.trim_end());
            if let Some(ca) = get("ca.crt") {
                keystore.push_str(ca.trim_end());
                keystore.push('\n');
            }
            Ok(keystore)
        }
        _ => Err(CertsError::UserSecret(format!(
            "Secret {secret_name} must hold tls.crt (PEM certificate chain) and tls.key (PEM private key), as a kubernetes.io/tls Secret does"
        ))),
    }
}

fn owner(cluster: &KafkaCluster) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: KafkaCluster::api_version(&()).to_string(),
        kind: KafkaCluster::kind(&()).to_string(),
        name: cluster.name_any(),
        uid: cluster.uid()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

async fn read(api: &Api<Secret>, name: &str) -> Result<Option<Secret>, CertsError> {
    api.get_opt(name).await.map_err(|source| CertsError::Read {
        name: name.to_string(),
        source,
    })
}

async fn write(
    api: &Api<Secret>,
    name: &str,
    namespace: &str,
    owner: &Option<OwnerReference>,
    contents: BTreeMap<&str, String>,
    not_after: i64,
    issued_for: &str,
) -> Result<Secret, CertsError> {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.to_string());
    secret.metadata.namespace = Some(namespace.to_string());
    secret.metadata.labels = Some(BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_string(),
        MANAGER.to_string(),
    )]));
    secret.metadata.annotations = Some(BTreeMap::from([
        (NOT_AFTER_ANNOTATION.to_string(), not_after.to_string()),
        (ISSUED_FOR_ANNOTATION.to_string(), issued_for.to_string()),
    ]));
    secret.metadata.owner_references = owner.clone().map(|o| vec![o]);
    secret.type_ = Some("Opaque".to_string());
    secret.data = Some(
        contents
            .into_iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
            .collect(),
    );
    api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&secret))
        .await
        .map_err(|source| CertsError::Write {
            name: name.to_string(),
            source,
        })
}

/// Registers the operator's TLS client for `address` from the stored `<cluster>-operator-certs`
/// Secret, when the cluster is secured and nothing registered it yet (the KafkaUser and KafkaTopic
/// controllers may run before the cluster's first reconciliation in this process).
pub async fn register_existing(
    ctx: &Context,
    cluster: &KafkaCluster,
    namespace: &str,
    address: &str,
) -> Result<(), CertsError> {
    if !cluster.spec.listeners.internal.secured() || kafka_security::for_address(address).tls.is_some() {
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let name = operator_certs_secret(&cluster.name_any());
    let secret = read(&api, &name).await?;
    let (Some(ca), Some(keystore)) = (
        secret.as_ref().and_then(|s| data(s, CA_FILE)),
        secret.as_ref().and_then(|s| data(s, "keystore.pem")),
    ) else {
        return Err(CertsError::Client(format!(
            "Secret {name} does not exist yet (the KafkaCluster's reconciliation creates it)"
        )));
    };
    let security = kafka_security::mutual_tls(&ca, &keystore).map_err(CertsError::Client)?;
    let key = format!("{namespace}/{}", cluster.name_any());
    kafka_security::register(&key, [address.to_string()], &security);
    Ok(())
}
