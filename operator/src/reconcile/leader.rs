//! Leader election on a `coordination.k8s.io/v1` Lease, so that two operator replicas never reconcile
//! at once. kube-rs has no elector of its own; this follows client-go's rules: take the Lease when it is
//! free or its holder has not renewed within `leaseDurationSeconds`, renew every `RENEW_EVERY`, and
//! use the Lease's resourceVersion so that two candidates cannot both win a race.
//!
//! A leader that fails to renew before its lease expires stops the process (`lost` resolves) rather
//! than risk running beside a new leader; Kubernetes restarts it as a candidate.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};

pub const LEASE_SECONDS: i32 = 15;
const RENEW_EVERY: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_secs(2);

pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

/// What the elector decided from one look at the Lease (pure, for tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it (or may take it): write it with us as holder.
    Take { transition: bool },
    /// Someone else holds a live lease.
    Wait { holder: String },
}

pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Take { transition: true };
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return Decision::Take { transition: false };
    }
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS).into());
    let expired = match &spec.renew_time {
        Some(MicroTime(renewed)) => *renewed + duration < now,
        None => true,
    };
    if holder.is_empty() || expired {
        Decision::Take { transition: true }
    } else {
        Decision::Wait { holder }
    }
}

impl LeaderElector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
        }
    }

    /// Returns once this process holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_take().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(lease = %self.name, "leader election: {e}"),
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Renews the lease until renewal fails for a whole lease duration; then returns (leadership lost).
    pub async fn hold(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self.try_take().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.name, "another replica took the lease");
                    return;
                }
                Err(e) => tracing::warn!(lease = %self.name, "renewing the lease failed: {e}"),
            }
            if last_renewed.elapsed() > Duration::from_secs(LEASE_SECONDS as u64) {
                tracing::error!(lease = %self.name, "could not renew the lease in time");
                return;
            }
        }
    }

    /// Gives the lease up (after a graceful shutdown) so a standby takes over at once instead of
    /// waiting for it to expire.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.name, "released the lease"),
            Err(e) => tracing::warn!(lease = %self.name, "releasing the lease failed: {e}"),
        }
    }

    async fn try_take(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let decision = decide(current.as_ref().and_then(|l| l.spec.as_ref()), &self.identity, now);
        let Decision::Take { transition } = decision else {
            return Ok(false);
        };
        let old_spec = current.as_ref().and_then(|l| l.spec.clone()).unwrap_or_default();
        let spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            renew_time: Some(MicroTime(now)),
            acquire_time: if transition {
                Some(MicroTime(now))
            } else {
                old_spec.acquire_time
            },
            lease_transitions: Some(
                old_spec.lease_transitions.unwrap_or(0) + i32::from(transition && current.is_some()),
            ),
            ..Default::default()
        };
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                // Replace carries the resourceVersion we read: a concurrent writer makes this fail.
                lease.spec = Some(spec);
                self.api.replace(&self.name, &PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn a_live_lease_of_another_replica_is_respected() {
        let now = Timestamp::from_second(100).unwrap();
        assert_eq!(
            decide(Some(&spec("b", 95)), "a", now),
            Decision::Wait { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&spec("b", 80)), "a", now),
            Decision::Take { transition: true }
        );
        assert_eq!(
            decide(Some(&spec("a", 95)), "a", now),
            Decision::Take { transition: false }
        );
        assert_eq!(decide(None, "a", now), Decision::Take { transition: true });
    }
}
