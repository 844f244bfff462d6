//! Authorization of requests by ACL (issue 13): `Access` is one request's view of the authorizer, the
//! connection's principal (`User:<SASL user>`, else `User:ANONYMOUS`) and host against the ACLs in this
//! broker's metadata, decided by `coordinator::acl::authorize` as Kafka's `StandardAuthorizer` decides.
//! With no `authorizer.class.name` every request is allowed, as in Kafka.

use std::sync::Arc;

use crate::broker::Broker;
use crate::config::authorizer::AuthorizerConfig;
use crate::coordinator::acl::{self, Operation, ResourceType};
use crate::coordinator::ClusterImage;

pub use acl::{Operation as Op, ResourceType as Resource, CLUSTER_NAME};

/// One request's authorizer: the ACLs as of when it was made. Built per request on the hot path
/// (Produce, Fetch), so without an authorizer it holds nothing and allocates nothing.
pub struct Access<'a> {
    checks: Option<Checks<'a>>,
}

/// What a decision needs, present only when an authorizer is configured.
struct Checks<'a> {
    config: &'a AuthorizerConfig,
    image: Arc<ClusterImage>,
    principal: String,
    host: String,
}

impl<'a> Access<'a> {
    pub fn new(broker: &'a Broker, user: &str, peer: std::net::IpAddr) -> Self {
        let checks = broker.config.authorizer.as_ref().map(|config| Checks {
            config,
            image: broker.metadata.image(),
            principal: format!("User:{user}"),
            host: peer.to_string(),
        });
        Access { checks }
    }

    /// Whether an authorizer is configured at all (the ACL APIs answer SECURITY_DISABLED without one).
    pub fn enabled(&self) -> bool {
        self.checks.is_some()
    }

    pub fn allows(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.checks.as_ref().is_none_or(|c| {
            acl::authorize(
                &c.image.acls,
                c.config,
                &c.principal,
                &c.host,
                operation,
                resource_type,
                name,
            )
        })
    }

    /// Whether some resource of `resource_type` allows `operation` (KIP-679: an idempotent producer
    /// needs WRITE on any topic, or IDEMPOTENT_WRITE on the cluster).
    pub fn allows_any(&self, operation: Operation, resource_type: ResourceType) -> bool {
        self.checks.as_ref().is_none_or(|c| {
            acl::authorize_any(&c.image.acls, c.config, &c.principal, &c.host, operation, resource_type)
        })
    }

    /// Why an ACL API (CreateAcls, DescribeAcls, DeleteAcls) is refused, if it is: no authorizer
    /// (SECURITY_DISABLED, as Kafka answers), or no `operation` on the cluster.
    pub fn acl_api_refusal(
        &self,
        operation: Operation,
    ) -> Option<(kafka_protocol::error::ResponseError, &'static str)> {
        use kafka_protocol::error::ResponseError;
        if !self.enabled() {
            Some((ResponseError::SecurityDisabled, "No Authorizer is configured."))
        } else if !self.allows_cluster(operation) {
            Some((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.",
            ))
        } else {
            None
        }
    }

    /// The operations the caller may do on the resource, as the 32-bit field of Metadata's, DescribeCluster's
    /// and DescribeGroups' authorized operations (bit `1 << code` per operation, out of those the
    /// resource type supports; all of them without an authorizer), as Kafka fills it.
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|op| self.allows(**op, resource_type, name))
            .fold(0i32, |bits, op| bits | (1 << op.code()))
    }

    pub fn allows_cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    pub fn allows_topic(&self, operation: Operation, topic: &str) -> bool {
        self.allows(operation, ResourceType::Topic, topic)
    }

    pub fn allows_group(&self, operation: Operation, group: &str) -> bool {
        self.allows(operation, ResourceType::Group, group)
    }
}

impl super::RequestContext<'_> {
    /// This request's authorizer.
    pub fn access<'b>(&self, broker: &'b Broker) -> Access<'b> {
        Access::new(broker, self.user, self.connection.peer.ip())
    }
}

impl super::RequestContext<'_> {
    /// `Ok` when the caller may do `operation` on the group, else GROUP_AUTHORIZATION_FAILED.
    pub fn group_allowed(
        &self,
        broker: &Broker,
        operation: Operation,
        group: &str,
    ) -> Result<(), kafka_protocol::error::ResponseError> {
        if self.access(broker).allows_group(operation, group) {
            Ok(())
        } else {
            Err(kafka_protocol::error::ResponseError::GroupAuthorizationFailed)
        }
    }
}

impl Access<'_> {
    /// For a config resource (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs): `operation` on
    /// the topic, or on the cluster for a broker (and broker logger); the refusal Kafka answers.
    pub fn config_resource_denied(
        &self,
        operation: Operation,
        resource_type: i8,
        name: &str,
    ) -> Option<(kafka_protocol::error::ResponseError, String)> {
        use kafka_protocol::error::ResponseError;
        const TOPIC: i8 = 2;
        match resource_type {
            TOPIC if !self.allows_topic(operation, name) => Some((
                ResponseError::TopicAuthorizationFailed,
                format!("Topic authorization failed for {name}"),
            )),
            TOPIC => None,
            _ if !self.allows_cluster(operation) => Some((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".to_string(),
            )),
            _ => None,
        }
    }
}
