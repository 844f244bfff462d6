//! Where data lives: before removing brokers, the operator asks the cluster (a Kafka Metadata request
//! to the bootstrap address) whether any partition still has a replica or its leader on them. A
//! scale-down proceeds only on a definite "no"; "yes" and "could not ask" both keep the brokers.
//!
//! The answer is split in two: `ask_metadata` does the I/O, `partitions_on` is a pure function over
//! the response, unit-tested without a broker.

use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Metadata v9: the first flexible version, served by Kafka 2.4+ and by oxka.
const METADATA_VERSION: i16 = 9;
const TIMEOUT: Duration = Duration::from_secs(5);
/// A Metadata response larger than this is refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why the placement could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("could not reach {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("{address} did not answer within {TIMEOUT:?}")]
    Timeout { address: String },
    #[error("the Metadata exchange with {address} failed: {reason}")]
    Protocol { address: String, reason: String },
}

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
    tokio::time::timeout(TIMEOUT, exchange(address))
        .await
        .map_err(|_| PlacementError::Timeout {
            address: address.to_string(),
        })?
}

async fn exchange(address: &str) -> Result<MetadataResponse, PlacementError> {
    let protocol = |reason: String| PlacementError::Protocol {
        address: address.to_string(),
        reason,
    };
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|source| PlacementError::Connect {
            address: address.to_string(),
            source,
        })?;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("oxka-operator")));
    let request = MetadataRequest::default().with_topics(None);
    let mut body = BytesMut::new();
    header
        .encode(&mut body, MetadataRequest::header_version(METADATA_VERSION))
        .and_then(|_| request.encode(&mut body, METADATA_VERSION))
        .map_err(|e| protocol(format!("encoding the request: {e}")))?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    let io = |e: std::io::Error| protocol(e.to_string());
    stream.write_all(&frame).await.map_err(io)?;
    let size = stream.read_i32().await.map_err(io)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| protocol(format!("response size {size} is out of range")))?;
    let mut buf = vec![0u8; size];
    stream.read_exact(&mut buf).await.map_err(io)?;
    let mut buf = bytes::Bytes::from(buf);
    ResponseHeader::decode(&mut buf, MetadataResponse::header_version(METADATA_VERSION))
        .map_err(|e| protocol(format!("decoding the response header: {e}")))?;
    let response = MetadataResponse::decode(&mut buf, METADATA_VERSION)
        .map_err(|e| protocol(format!("decoding the response: {e}")))?;
    if buf.has_remaining() {
        return Err(protocol(format!("{} bytes left after the response", buf.remaining())));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
    use kafka_protocol::messages::{BrokerId, TopicName};

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
