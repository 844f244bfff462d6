//! `ClusterImage`: the replicated cluster metadata as plain data (brokers, topics and their partitions:
//! replicas, ISR and leaders, dynamic broker configs, users' SCRAM credentials, client quotas, ACLs), and the read-only views of it that brokers use.
//! Commands change it through `image::apply`. It sits below the rest of the coordinator (`image`,
//! `placement`, `reassignment` and `election` all read it) and uses none of them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use oxka_protocol::scram::{Credential, Mechanism};

use crate::acl::AclBinding;
use crate::client_quotas::{QuotaEntity, QuotaValues};
use crate::metadata::{MetadataImage, TopicMeta};

/// A listener a broker registered (`BrokerRegistration` endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// A broker as the ensemble knows it. `epoch` is the Raft log index of its latest registration, as
/// Kafka's broker epoch is the offset of the registration record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredBroker {
    pub broker_id: i32,
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is out of every ISR (set at registration and by the controller
    /// when heartbeats stop; cleared when it catches up).
    pub fenced: bool,
}

impl RegisteredBroker {
    /// `host:port` of the endpoint named `listener` (the inter-broker listener), else of its first one.
    pub fn address(&self, listener: &str) -> Option<String> {
        self.endpoints
            .iter()
            .find(|e| e.name == listener)
            .or(self.endpoints.first())
            .map(|e| oxka_config::join_host_port(&e.host, e.port))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 when no replica can lead.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped on every change of this partition (Kafka's partition epoch), for AlterPartition fencing.
    pub partition_epoch: i32,
    /// A reassignment in progress (KIP-455): replicas being added, and being removed once they are in
    /// sync. Empty otherwise (and in images written before reassignment existed).
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionState>,
    pub configs: BTreeMap<String, String>,
}

/// Cluster metadata: what the Raft log's committed prefix says. Owned by the state machine; readers get
/// clones (it is small: brokers, topics and partitions, no records).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterImage {
    /// Empty until the first controller proposes `InitCluster`.
    pub cluster_id: String,
    pub brokers: BTreeMap<i32, RegisteredBroker>,
    pub topics: BTreeMap<String, TopicState>,
    /// The first producer id of the next block handed to a broker.
    pub next_producer_id: i64,
    /// Dynamic broker configs (`kafka-configs --entity-type brokers`): per broker id ("1"), and for
    /// every broker ("", `--entity-default`). Empty in images written before they existed.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Users' SCRAM credentials (KIP-554), per user and mechanism: salts and derived keys, never
    /// passwords. Empty in images written before they existed.
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<Mechanism, Credential>>,
    /// Client quotas (KIP-546's AlterClientQuotas) per entity. Empty in images written before them.
    #[serde(default, with = "crate::client_quotas::serde_pairs")]
    pub client_quotas: BTreeMap<QuotaEntity, QuotaValues>,
    /// ACLs (CreateAcls / DeleteAcls). Empty in images written before them.
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
}

impl ClusterImage {
    /// A dynamic broker config as `broker` sees it: its own value, else the cluster-wide default's.
    pub fn dynamic_broker_config(&self, broker: i32, name: &str) -> Option<&str> {
        self.broker_configs
            .get(&broker.to_string())
            .and_then(|c| c.get(name))
            .or_else(|| self.broker_configs.get("").and_then(|c| c.get(name)))
            .map(String::as_str)
    }

    /// Unfenced brokers with the first endpoint they registered: the brokers clients may be sent to.
    pub fn live_brokers(&self) -> impl Iterator<Item = (&RegisteredBroker, &BrokerEndpoint)> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| b.endpoints.first().map(|e| (b, e)))
    }

    /// The broker's current embedded metadata shape, for wiring brokers to the ensemble.
    pub fn to_metadata_image(&self) -> MetadataImage {
        MetadataImage {
            cluster_id: self.cluster_id.clone(),
            topics: self
                .topics
                .iter()
                .map(|(name, t)| {
                    (
                        name.clone(),
                        TopicMeta {
                            topic_id: t.topic_id,
                            partitions: t.partitions.len() as i32,
                            replication_factor: t.partitions.first().map(|p| p.replicas.len() as i16).unwrap_or(0),
                            configs: t.configs.clone(),
                        },
                    )
                })
                .collect(),
            next_producer_id_block: self.next_producer_id,
            epoch: 0,
        }
    }
}
