//! The operator's Kafka admin client: one connection to a cluster's bootstrap address, Kafka requests
//! framed with the `kafka-protocol` crate. It asks how healthy partitions are (Metadata plus DescribeConfigs for each topic's
//! `min.insync.replicas`, for rolling restarts in `roll`). For draining brokers before a scale-down
//! (`drain`) it also lists running reassignments (ListPartitionReassignments) and submits the plan
//! (AlterPartitionReassignments); after a rebalance (`spread`) it asks for a preferred-leader election
//! (ElectLeaders). The answers are turned into plain values here; the decisions over them are pure
//! functions elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, BrokerId, DescribeConfigsRequest, DescribeConfigsResponse,
    ElectLeadersRequest, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, MetadataRequest,
    MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use oxka_protocol::network::client::{ClientConnection, ClientError};

use super::drain::{LiveBroker, Move, Ongoing, PartitionReplicas};
use super::roll::PartitionView;

/// Metadata v9: the first flexible version, served by Kafka 2.4+ and by oxka.
pub const METADATA_VERSION: i16 = 9;
/// DescribeConfigs v4: flexible, served by Kafka 2.8+ and by oxka.
pub const DESCRIBE_CONFIGS_VERSION: i16 = 4;
/// ListPartitionReassignments v0 (Kafka 2.4+; the only version oxka serves).
pub const LIST_REASSIGNMENTS_VERSION: i16 = 0;
/// AlterPartitionReassignments v0 (Kafka 2.4+ and oxka).
pub const ALTER_REASSIGNMENTS_VERSION: i16 = 0;
/// ElectLeaders v2 (Kafka 2.6+ and oxka).
pub const ELECT_LEADERS_VERSION: i16 = 2;
/// ElectLeaders' election type for the preferred (first) replica.
const PREFERRED_ELECTION: i8 = 0;
/// ElectLeaders' per-partition answers that are no failure: the leader is already the preferred
/// replica (ELECTION_NOT_NEEDED), or the preferred replica is not in sync yet
/// (PREFERRED_LEADER_NOT_AVAILABLE: Kafka's auto leader rebalance tries again later, so does the operator).
const ELECTION_NOT_NEEDED: i16 = 84;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
/// Every exchange with one address must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// A response larger than this is refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Kafka's resource type for topics in DescribeConfigs.
const RESOURCE_TOPIC: i8 = 2;
/// Kafka's default when a topic reports no `min.insync.replicas`.
const DEFAULT_MIN_INSYNC: i32 = 1;
const CLIENT_ID: &str = "oxka-operator";

/// Why a question to the cluster got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Connecting, the exchange itself, or a response that does not decode (oxka-protocol's client).
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{address} did not answer within {TIMEOUT:?}")]
    Timeout { address: String },
    #[error("the cluster refused {what}: error code {code} ({message})")]
    Refused { what: String, code: i16, message: String },
}

/// What the drain needs to know, from one connection: every partition's replicas, the live brokers
/// (Metadata lists registered, unfenced brokers), and the reassignments running now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentView {
    pub partitions: Vec<PartitionReplicas>,
    pub live: Vec<LiveBroker>,
    pub ongoing: Vec<Ongoing>,
}

/// Runs `f` over a fresh connection to `address` (oxka-protocol's `ClientConnection`: framing,
/// correlation ids, size limits), all within `TIMEOUT`.
pub(super) async fn with_connection<T, F>(address: &str, f: F) -> Result<T, AdminError>
where
    F: AsyncFnOnce(&mut ClientConnection) -> Result<T, AdminError>,
{
    let work = async {
        let security = super::kafka_security::for_address(address);
        let mut connection =
            ClientConnection::connect_secured(address, CLIENT_ID, TIMEOUT, MAX_RESPONSE_BYTES, &security).await?;
        f(&mut connection).await
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| AdminError::Timeout {
            address: address.to_string(),
        })?
}

async fn ask_metadata(c: &mut ClientConnection) -> Result<MetadataResponse, AdminError> {
    let request = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    match c.call(ApiKey::Metadata, METADATA_VERSION, &request, TIMEOUT).await? {
        ResponseKind::Metadata(response) => Ok(response),
        _ => unreachable!("oxka-protocol decodes a Metadata response as Metadata"),
    }
}

async fn ask_min_insync(c: &mut ClientConnection, topics: &[String]) -> Result<DescribeConfigsResponse, AdminError> {
    let request = RequestKind::DescribeConfigs(min_insync_request(topics));
    match c
        .call(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS_VERSION, &request, TIMEOUT)
        .await?
    {
        ResponseKind::DescribeConfigs(response) => Ok(response),
        _ => unreachable!("oxka-protocol decodes a DescribeConfigs response as DescribeConfigs"),
    }
}

/// Every partition's replicas, ISR and leader, with its topic's `min.insync.replicas`.
pub async fn partition_health(address: &str) -> Result<Vec<PartitionView>, AdminError> {
    with_connection(address, async |c: &mut ClientConnection| {
        let metadata = ask_metadata(c).await?;
        let topics: Vec<String> = metadata
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        let configs = if topics.is_empty() {
            DescribeConfigsResponse::default()
        } else {
            ask_min_insync(c, &topics).await?
        };
        Ok(partition_views(&metadata, &min_insync_by_topic(&configs)))
    })
    .await
}

/// ListPartitionReassignments, then Metadata, over one connection.
pub async fn reassignment_view(address: &str) -> Result<ReassignmentView, AdminError> {
    with_connection(address, async |c: &mut ClientConnection| {
        // Reassignments first, Metadata second: a reassignment that completes between the two is
        // then seen as running (the drain waits a pass) rather than as a partition whose Metadata
        // still lists adding and removing replicas together with nothing running (which would read
        // as a larger replication factor and be planned from).
        let request = RequestKind::ListPartitionReassignments(
            ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(TIMEOUT.as_millis() as i32)
                .with_topics(None),
        );
        let listed = match c
            .call(
                ApiKey::ListPartitionReassignments,
                LIST_REASSIGNMENTS_VERSION,
                &request,
                TIMEOUT,
            )
            .await?
        {
            ResponseKind::ListPartitionReassignments(response) => response,
            _ => unreachable!("oxka-protocol decodes a ListPartitionReassignments response as such"),
        };
        if listed.error_code != 0 {
            return Err(AdminError::Refused {
                what: "ListPartitionReassignments".to_string(),
                code: listed.error_code,
                message: message(&listed.error_message),
            });
        }
        let metadata = ask_metadata(c).await?;
        Ok(ReassignmentView {
            partitions: partition_replicas(&metadata),
            live: live_brokers(&metadata),
            ongoing: ongoing(&listed),
        })
    })
    .await
}

/// Submits `moves` with one AlterPartitionReassignments; any partition the controller refuses is an
/// error naming it (the others may have started: the next pass sees them as running).
pub async fn alter_reassignments(address: &str, moves: &[Move]) -> Result<(), AdminError> {
    let request = RequestKind::AlterPartitionReassignments(alter_request(moves));
    with_connection(address, async |c: &mut ClientConnection| {
        let response = match c
            .call(
                ApiKey::AlterPartitionReassignments,
                ALTER_REASSIGNMENTS_VERSION,
                &request,
                TIMEOUT,
            )
            .await?
        {
            ResponseKind::AlterPartitionReassignments(response) => response,
            _ => unreachable!("oxka-protocol decodes an AlterPartitionReassignments response as such"),
        };
        if response.error_code != 0 {
            return Err(AdminError::Refused {
                what: "the reassignment".to_string(),
                code: response.error_code,
                message: message(&response.error_message),
            });
        }
        for topic in &response.responses {
            if let Some(p) = topic.partitions.iter().find(|p| p.error_code != 0) {
                return Err(AdminError::Refused {
                    what: format!("the reassignment of {}-{}", topic.name.0, p.partition_index),
                    code: p.error_code,
                    message: message(&p.error_message),
                });
            }
        }
        Ok(())
    })
    .await
}

/// What a preferred-leader election of every partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Election {
    /// Partitions whose leader moved to the preferred replica.
    pub elected: usize,
    /// Partitions whose preferred replica could not lead yet (not in sync).
    pub not_available: usize,
}

/// ElectLeaders (preferred) for every partition, as `kafka-leader-election --election-type preferred
/// --all-topic-partitions` does; any other per-partition error is returned naming the partition.
pub async fn elect_preferred_leaders(address: &str) -> Result<Election, AdminError> {
    let request = RequestKind::ElectLeaders(
        ElectLeadersRequest::default()
            .with_election_type(PREFERRED_ELECTION)
            .with_topic_partitions(None)
            .with_timeout_ms(TIMEOUT.as_millis() as i32),
    );
    with_connection(address, async |c: &mut ClientConnection| {
        let response = match c
            .call(ApiKey::ElectLeaders, ELECT_LEADERS_VERSION, &request, TIMEOUT)
            .await?
        {
            ResponseKind::ElectLeaders(response) => response,
            _ => unreachable!("oxka-protocol decodes an ElectLeaders response as such"),
        };
        if response.error_code != 0 {
            return Err(AdminError::Refused {
                what: "the preferred leader election".to_string(),
                code: response.error_code,
                message: "no message".to_string(),
            });
        }
        let mut election = Election::default();
        for topic in &response.replica_election_results {
            for p in &topic.partition_result {
                match p.error_code {
                    0 => election.elected += 1,
                    ELECTION_NOT_NEEDED => {}
                    PREFERRED_LEADER_NOT_AVAILABLE => election.not_available += 1,
                    code => {
                        return Err(AdminError::Refused {
                            what: format!("the leader election of {}-{}", topic.topic.0, p.partition_id),
                            code,
                            message: message(&p.error_message),
                        })
                    }
                }
            }
        }
        Ok(election)
    })
    .await
}

fn message(m: &Option<StrBytes>) -> String {
    m.as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| "no message".to_string())
}

pub fn alter_request(moves: &[Move]) -> AlterPartitionReassignmentsRequest {
    let mut topics: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
    for m in moves {
        topics.entry(&m.topic).or_default().push(
            ReassignablePartition::default()
                .with_partition_index(m.partition)
                .with_replicas(Some(m.to.iter().map(|r| BrokerId(*r)).collect())),
        );
    }
    AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(TIMEOUT.as_millis() as i32)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ReassignableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

pub fn partition_replicas(metadata: &MetadataResponse) -> Vec<PartitionReplicas> {
    let mut out = Vec::new();
    for topic in &metadata.topics {
        let name = topic.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        for p in &topic.partitions {
            out.push(PartitionReplicas {
                topic: name.clone(),
                partition: p.partition_index,
                replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
            });
        }
    }
    out
}

pub fn live_brokers(metadata: &MetadataResponse) -> Vec<LiveBroker> {
    metadata
        .brokers
        .iter()
        .map(|b| LiveBroker {
            id: b.node_id.0,
            rack: b.rack.as_ref().map(|r| r.to_string()),
        })
        .collect()
}

pub fn ongoing(response: &ListPartitionReassignmentsResponse) -> Vec<Ongoing> {
    let mut out = Vec::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            out.push(Ongoing {
                topic: topic.name.0.to_string(),
                partition: p.partition_index,
                replicas: p.replicas.iter().map(|r| r.0).collect(),
                removing: p.removing_replicas.iter().map(|r| r.0).collect(),
            });
        }
    }
    out
}

fn min_insync_request(topics: &[String]) -> DescribeConfigsRequest {
    let key = vec![StrBytes::from_static_str("min.insync.replicas")];
    DescribeConfigsRequest::default().with_resources(
        topics
            .iter()
            .map(|t| {
                DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(StrBytes::from_string(t.clone()))
                    .with_configuration_keys(Some(key.clone()))
            })
            .collect(),
    )
}

/// `min.insync.replicas` per topic; topics that failed or did not say are absent.
pub fn min_insync_by_topic(response: &DescribeConfigsResponse) -> BTreeMap<String, i32> {
    response
        .results
        .iter()
        .filter(|r| r.error_code == 0)
        .filter_map(|r| {
            let value = r
                .configs
                .iter()
                .find(|c| c.name.as_str() == "min.insync.replicas")?
                .value
                .as_ref()?
                .parse()
                .ok()?;
            Some((r.resource_name.to_string(), value))
        })
        .collect()
}

/// The partitions of `metadata` as the roll decision sees them. A topic whose `min.insync.replicas`
/// is unknown counts as its replication factor minus one, the strictest value under which the roll's
/// rule still applies (at the full replication factor it never blocks), so that an unanswered
/// DescribeConfigs never lets a restart through that the real value would refuse.
pub fn partition_views(metadata: &MetadataResponse, min_insync: &BTreeMap<String, i32>) -> Vec<PartitionView> {
    let mut out = Vec::new();
    for topic in &metadata.topics {
        let name = topic.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        for p in &topic.partitions {
            let replicas: Vec<i32> = p.replica_nodes.iter().map(|r| r.0).collect();
            let strictest = (replicas.len() as i32 - 1).max(DEFAULT_MIN_INSYNC);
            out.push(PartitionView {
                topic: name.clone(),
                partition: p.partition_index,
                leader: p.leader_id.0,
                isr: p.isr_nodes.iter().map(|r| r.0).collect(),
                min_insync: min_insync.get(&name).copied().unwrap_or(strictest),
                replicas,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
    use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn topic(name: &str, partitions: Vec<MetadataResponsePartition>) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
            .with_partitions(partitions)
    }

    fn partition(index: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> MetadataResponsePartition {
        MetadataResponsePartition::default()
            .with_partition_index(index)
            .with_leader_id(BrokerId(leader))
            .with_replica_nodes(replicas.iter().map(|r| BrokerId(*r)).collect())
            .with_isr_nodes(isr.iter().map(|r| BrokerId(*r)).collect())
    }

    fn configs(topic: &str, min_insync: Option<&str>, error_code: i16) -> DescribeConfigsResult {
        DescribeConfigsResult::default()
            .with_error_code(error_code)
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(
                min_insync
                    .map(|v| {
                        DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_static_str("min.insync.replicas"))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .into_iter()
                    .collect(),
            )
    }

    #[test]
    fn partitions_carry_their_topics_min_insync_and_the_strictest_value_when_unknown() {
        let metadata = MetadataResponse::default().with_topics(vec![
            topic("orders", vec![partition(0, 1, &[1, 2, 0], &[1, 2])]),
            topic("audit", vec![partition(0, 2, &[2, 0, 1], &[2, 0, 1])]),
            topic("failed", vec![partition(0, 0, &[0, 1], &[0, 1])]),
        ]);
        let response = DescribeConfigsResponse::default().with_results(vec![
            configs("orders", Some("2"), 0),
            configs("audit", None, 0),
            configs("failed", Some("1"), 3),
        ]);
        let min_insync = min_insync_by_topic(&response);
        assert_eq!(min_insync, BTreeMap::from([("orders".to_string(), 2)]));
        let views = partition_views(&metadata, &min_insync);
        assert_eq!(
            views[0],
            PartitionView {
                topic: "orders".into(),
                partition: 0,
                leader: 1,
                replicas: vec![1, 2, 0],
                isr: vec![1, 2],
                min_insync: 2,
            }
        );
        assert_eq!(
            views[1].min_insync, 2,
            "RF 3, unknown: the strictest value that still allows a restart"
        );
        assert_eq!(views[2].min_insync, 1);
    }

    /// A Kafka server on loopback that answers Metadata and DescribeConfigs on one connection, decoding
    /// what the operator sends, so framing and versions are exercised byte for byte.
    #[tokio::test]
    async fn asks_metadata_and_min_insync_over_one_connection() {
        use kafka_protocol::messages::ApiKey;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            for _ in 0..2 {
                let size = socket.read_i32().await.unwrap() as usize;
                let mut buf = vec![0u8; size];
                socket.read_exact(&mut buf).await.unwrap();
                let mut buf = bytes::Bytes::from(buf);
                let key = i16::from_be_bytes([buf[0], buf[1]]);
                let mut body = BytesMut::new();
                if key == ApiKey::Metadata as i16 {
                    let header =
                        RequestHeader::decode(&mut buf, MetadataRequest::header_version(METADATA_VERSION)).unwrap();
                    MetadataRequest::decode(&mut buf, header.request_api_version).unwrap();
                    ResponseHeader::default()
                        .with_correlation_id(header.correlation_id)
                        .encode(&mut body, MetadataResponse::header_version(METADATA_VERSION))
                        .unwrap();
                    MetadataResponse::default()
                        .with_topics(vec![topic("orders", vec![partition(0, 0, &[0, 1, 2], &[0, 1])])])
                        .encode(&mut body, METADATA_VERSION)
                        .unwrap();
                } else {
                    assert_eq!(key, ApiKey::DescribeConfigs as i16);
                    let v = DESCRIBE_CONFIGS_VERSION;
                    let header = RequestHeader::decode(&mut buf, DescribeConfigsRequest::header_version(v)).unwrap();
                    let request = DescribeConfigsRequest::decode(&mut buf, v).unwrap();
                    assert_eq!(request.resources[0].resource_name.as_str(), "orders");
                    ResponseHeader::default()
                        .with_correlation_id(header.correlation_id)
                        .encode(&mut body, DescribeConfigsResponse::header_version(v))
                        .unwrap();
                    DescribeConfigsResponse::default()
                        .with_results(vec![configs("orders", Some("2"), 0)])
                        .encode(&mut body, v)
                        .unwrap();
                }
                socket.write_i32(body.len() as i32).await.unwrap();
                socket.write_all(&body).await.unwrap();
            }
        });
        let views = partition_health(&address).await.unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!((views[0].isr.clone(), views[0].min_insync), (vec![0, 1], 2));
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_an_error_not_a_yes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert!(reassignment_view(&address).await.is_err());
        assert!(partition_health(&address).await.is_err());
    }
}
