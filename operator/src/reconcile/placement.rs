//! Where data lives: before removing brokers, the operator asks the cluster (a Kafka Metadata request
//! to the bootstrap address) whether any partition still has a replica or its leader on them. A
//! scale-down proceeds only on a definite "no"; "yes" and "could not ask" both keep the brokers.
//!
//! The answer is split in two: `ask_metadata` does the I/O (through `kafka_admin`), `partitions_on` is
//! a pure function over the response, unit-tested without a broker.

use kafka_protocol::messages::MetadataResponse;

pub use super::kafka_admin::AdminError as PlacementError;

/// Partitions (`topic-N`) that still lead or have a replica on one of `brokers`.
pub fn partitions_on(response: &MetadataResponse, brokers: &[i32]) -> Vec<String> {
    let mut out = Vec::new();
    for topic in &response.topics {
        let name = topic.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        for partition in &topic.partitions {
            let on_removed = brokers.contains(&partition.leader_id.0)
                || partition.replica_nodes.iter().any(|r| brokers.contains(&r.0));
            if on_removed {
                out.push(format!("{name}-{}", partition.partition_index));
            }
        }
    }
    out
}

/// Fetches metadata for all topics from one broker address (`host:port`).
pub async fn ask_metadata(address: &str) -> Result<MetadataResponse, PlacementError> {
    super::kafka_admin::metadata(address).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::kafka_admin::METADATA_VERSION;
    use bytes::BytesMut;
    use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
    use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestHeader, ResponseHeader};
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn partition(index: i32, leader: i32, replicas: &[i32]) -> MetadataResponsePartition {
        MetadataResponsePartition::default()
            .with_partition_index(index)
            .with_leader_id(BrokerId(leader))
            .with_replica_nodes(replicas.iter().map(|r| BrokerId(*r)).collect())
    }

    #[test]
    fn finds_partitions_led_or_replicated_on_removed_brokers() {
        let response = MetadataResponse::default().with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
            .with_partitions(vec![
                partition(0, 0, &[0, 1, 2]),
                partition(1, 1, &[1, 2, 3]),
                partition(2, 4, &[4, 0, 1]),
            ])]);
        assert_eq!(partitions_on(&response, &[3, 4]), vec!["orders-1", "orders-2"]);
        assert!(partitions_on(&response, &[5]).is_empty());
    }

    /// A one-shot Kafka server on loopback: decodes the Metadata request the operator sends and
    /// answers with `response`, so the operator's framing and versions are exercised byte for byte.
    async fn fake_broker(response: MetadataResponse) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let size = socket.read_i32().await.unwrap() as usize;
            let mut buf = vec![0u8; size];
            socket.read_exact(&mut buf).await.unwrap();
            let mut buf = bytes::Bytes::from(buf);
            let header = RequestHeader::decode(&mut buf, MetadataRequest::header_version(METADATA_VERSION)).unwrap();
            assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
            let version = header.request_api_version;
            let request = MetadataRequest::decode(&mut buf, version).unwrap();
            assert!(request.topics.is_none(), "the operator asks for every topic");
            let mut body = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut body, MetadataResponse::header_version(version))
                .unwrap();
            response.encode(&mut body, version).unwrap();
            socket.write_i32(body.len() as i32).await.unwrap();
            socket.write_all(&body).await.unwrap();
        });
        address
    }

    #[tokio::test]
    async fn reads_placement_over_the_kafka_protocol() {
        let response = MetadataResponse::default().with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
            .with_partitions(vec![partition(0, 0, &[0, 3]), partition(1, 1, &[1, 2])])]);
        let address = fake_broker(response).await;
        let answer = ask_metadata(&address).await.unwrap();
        assert_eq!(partitions_on(&answer, &[3]), vec!["orders-0"]);
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_an_error_not_a_yes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert!(ask_metadata(&address).await.is_err());
    }
}
