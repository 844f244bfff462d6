//! The coordinator's Kafka-protocol listener on `clientPort`: where brokers register and heartbeat and
//! where Kafka's tools (`kafka-metadata-quorum --bootstrap-controller`) inspect the ensemble.
//!
//! Same path as the broker's: frame → `RequestHeader` → version check against `SUPPORTED` → typed request
//! → handler (one file per API, taking the request and `ClientContext`, returning the response) → frame.
//! Writes go to Raft through `CoordinatorNode::write`; on a follower they answer NOT_CONTROLLER (as a
//! KRaft controller does), and without a quorum they fail after `request.timeout.ms` with a message.
//!
//! `dispatch` is the typed core of that path (request in, response out), so a broker's embedded
//! coordinator calls the same handlers in-process, without frames.
//!
//! What the handlers share (`ClientContext`, `propose`) is in `context`; the controller's periodic
//! duties (fencing, leadership reconciliation, preferred-leader rebalancing) in `controller_duties`.
//!
//! One oxka-internal API shares the port: `metadata_fetch` (API key 30000, JSON body, wire format in
//! `metadata_fetch_codec`), the long-poll brokers follow the metadata log with. `handle_request`
//! recognizes it by its key before Kafka decoding.
//!
//! Connections are bounded by `maxClientCnxns` and in-flight bytes by the heap budget; every connection
//! task stops at shutdown after finishing the request it is processing (a waiting MetadataFetch answers
//! at once).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use oxka_protocol::codec::{decode_request, encode_response, Decoded};
use oxka_protocol::network::frame::{read_frame_body, read_frame_size, FrameError};
use oxka_protocol::network::MemoryBudget;
use oxka_protocol::util::AcceptFailures;
use oxka_protocol::RequestError;

pub mod allocate_producer_ids;
pub mod alter_client_quotas;
pub mod alter_partition;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod broker_heartbeat;
pub mod broker_registration;
mod context;
mod controller_duties;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_quorum;
pub mod elect_leaders;
pub mod image_responses;
pub mod incremental_alter_configs;
pub mod metadata;
pub mod metadata_fetch;
pub mod metadata_fetch_codec;

/// Largest request a coordinator accepts (its requests are small metadata requests).
const MAX_REQUEST_BYTES: usize = 16 << 20;

pub use oxka_protocol::ApiSpec;

/// Every API served on `clientPort`; ApiVersions answers from this table.
pub const SUPPORTED: &[ApiSpec] = &[
    ApiSpec {
        key: ApiKey::ApiVersions,
        versions: api_versions::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::DescribeQuorum,
        versions: describe_quorum::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::DescribeCluster,
        versions: describe_cluster::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::BrokerRegistration,
        versions: broker_registration::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::BrokerHeartbeat,
        versions: broker_heartbeat::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::CreateTopics,
        versions: create_topics::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::DeleteTopics,
        versions: delete_topics::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::CreatePartitions,
        versions: create_partitions::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::IncrementalAlterConfigs,
        versions: incremental_alter_configs::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::AllocateProducerIds,
        versions: allocate_producer_ids::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::Metadata,
        versions: metadata::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::AlterPartition,
        versions: alter_partition::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::AlterPartitionReassignments,
        versions: alter_partition_reassignments::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::ElectLeaders,
        versions: elect_leaders::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::AlterUserScramCredentials,
        versions: alter_user_scram_credentials::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::AlterClientQuotas,
        versions: alter_client_quotas::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::CreateAcls,
        versions: create_acls::VERSIONS,
    },
    ApiSpec {
        key: ApiKey::DeleteAcls,
        versions: delete_acls::VERSIONS,
    },
];

pub use context::{propose, propose_all, ClientContext};
pub use controller_duties::{expired_brokers, fence_expired_brokers, rebalance_leaders, reconcile_leadership};
pub use oxka_protocol::util::now_ms;

pub use oxka_protocol::util::str_bytes;

/// Accepts connections until shutdown; each is served by its own tracked task. With `tls` (the
/// `secureClientPort`), each connection's TLS handshake comes first; a refused one is logged once per
/// interval with a count, naming the client.
#[allow(clippy::too_many_arguments)]
pub async fn serve_clients(
    ctx: Arc<ClientContext>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    max_connections: usize,
    budget: Arc<MemoryBudget>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let mut failures = AcceptFailures::default();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let refused = Arc::new(oxka_protocol::util::RateLimitedLog::new(
        std::time::Duration::from_secs(10),
    ));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = connections.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                failures.accepted();
                let _ = stream.set_nodelay(true);
                let (ctx, budget, shutdown) = (ctx.clone(), budget.clone(), shutdown.clone());
                let (acceptor, refused) = (acceptor.clone(), refused.clone());
                tasks.spawn(async move {
                    match acceptor {
                        None => serve_connection(&ctx, stream, peer, &budget, shutdown).await,
                        Some(acceptor) => {
                            let handshake =
                                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await;
                            match handshake {
                                Ok(Ok(stream)) => serve_connection(&ctx, stream, peer, &budget, shutdown).await,
                                Ok(Err(e)) => {
                                    let reason = format!("TLS handshake failed: {e}");
                                    if let Some(count) = refused.should_log(&format!("{}: {reason}", peer.ip())) {
                                        warn!(%peer, "secureClientPort: {reason} ({count} in the last interval)");
                                    }
                                }
                                Err(_) => debug!(%peer, "secureClientPort: no TLS handshake within 10 s"),
                            }
                        }
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                let (line, pause) = failures.failed(&e);
                if let Some(line) = line {
                    warn!("clientPort: {line}");
                }
                drop(permit);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

async fn serve_connection<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send>(
    ctx: &ClientContext,
    stream: S,
    peer: SocketAddr,
    budget: &MemoryBudget,
    shutdown: CancellationToken,
) {
    let (read_half, mut write_half) = tokio::io::split(stream);
    let mut reader = BufReader::new(read_half);
    loop {
        let size = tokio::select! {
            _ = shutdown.cancelled() => break,
            size = read_frame_size(&mut reader, MAX_REQUEST_BYTES) => size,
        };
        let size = match size {
            Ok(Some(size)) => size,
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                debug!(%peer, "connection error: {e}");
                break;
            }
            Err(e) => {
                warn!(%peer, "closing connection: {e}");
                break;
            }
        };
        let permit = budget.reserve(size).await;
        let Ok(body) = read_frame_body(&mut reader, size).await else {
            break;
        };
        let response = handle_request(ctx, body.freeze()).await;
        drop(permit);
        match response {
            Ok(frame) => {
                if write_half.write_all(&frame).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                warn!(%peer, "closing connection: {e}");
                break;
            }
        }
    }
    let _ = write_half.shutdown().await;
}

/// Why a request frame on `clientPort` got no answer (the connection is closed).
#[derive(Debug, thiserror::Error)]
pub enum ClientRequestError {
    #[error(transparent)]
    Kafka(#[from] RequestError),
    /// A malformed MetadataFetch frame; the message says what is wrong with it.
    #[error("{0}")]
    MetadataFetch(String),
}

/// Decodes, dispatches and encodes one request frame (without its length prefix); the answer is a
/// complete frame. MetadataFetch frames are recognized by their API key and served from the applied image.
pub async fn handle_request(ctx: &ClientContext, frame: Bytes) -> Result<BytesMut, ClientRequestError> {
    if frame.len() >= 2 && i16::from_be_bytes([frame[0], frame[1]]) == metadata_fetch_codec::API_KEY {
        let (correlation_id, request) =
            metadata_fetch_codec::decode_request(&frame).map_err(ClientRequestError::MetadataFetch)?;
        let update = metadata_fetch::fetch_until(&ctx.node.state, &request, ctx.shutdown.cancelled()).await;
        let frame = metadata_fetch_codec::encode_response(correlation_id, &update);
        ctx.node
            .metrics
            .metadata_sent(update.image.is_some(), update.delta.is_some(), frame.len());
        return Ok(frame);
    }
    let (api, version, header, request) = match decode_request(frame, SUPPORTED)? {
        Decoded::Request {
            api,
            version,
            header,
            request,
        } => (api, version, header, request),
        Decoded::UnknownApiVersions(frame) => return Ok(frame),
    };
    let body = dispatch(ctx, version, request)
        .await
        .map_err(|reason| RequestError::Malformed { api, version, reason })?;
    let response_header = ResponseHeader::default().with_correlation_id(header.correlation_id);
    Ok(encode_response(api, version, &response_header, &body)?)
}

/// Serves one typed request at `version` (which the caller has checked against `SUPPORTED`; handlers
/// shape their answer by it). This is the whole coordinator behind `clientPort`, and what a broker's
/// embedded coordinator calls in-process. `Err` names an API a coordinator does not serve.
pub async fn dispatch(ctx: &ClientContext, version: i16, request: RequestKind) -> Result<ResponseKind, String> {
    Ok(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle(SUPPORTED)),
        RequestKind::DescribeQuorum(r) => ResponseKind::DescribeQuorum(describe_quorum::handle(ctx, version, r)),
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(describe_cluster::handle(ctx, r).await),
        RequestKind::BrokerRegistration(r) => {
            ResponseKind::BrokerRegistration(broker_registration::handle(ctx, r).await)
        }
        RequestKind::BrokerHeartbeat(r) => ResponseKind::BrokerHeartbeat(broker_heartbeat::handle(ctx, r).await),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(ctx, r).await),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, r)),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::handle(ctx, r).await),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(create_partitions::handle(ctx, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(ctx, r).await)
        }
        RequestKind::AllocateProducerIds(r) => {
            ResponseKind::AllocateProducerIds(allocate_producer_ids::handle(ctx, r).await)
        }
        RequestKind::AlterPartition(r) => ResponseKind::AlterPartition(alter_partition::handle(ctx, version, r).await),
        RequestKind::AlterPartitionReassignments(r) => {
            ResponseKind::AlterPartitionReassignments(alter_partition_reassignments::handle(ctx, version, r).await)
        }
        RequestKind::ElectLeaders(r) => ResponseKind::ElectLeaders(elect_leaders::handle(ctx, version, r).await),
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(alter_user_scram_credentials::handle(ctx, r).await)
        }
        RequestKind::AlterClientQuotas(r) => ResponseKind::AlterClientQuotas(alter_client_quotas::handle(ctx, r).await),
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(create_acls::handle(ctx, r).await),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(delete_acls::handle(ctx, r).await),
        _ => {
            let served: Vec<String> = SUPPORTED.iter().map(|s| format!("{:?}", s.key)).collect();
            return Err(format!("not served by a coordinator (it serves {})", served.join(", ")));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    use super::*;
    use crate::image::{apply, MetadataCommand};
    use crate::testing::single_voter;

    /// Reads one response frame and returns its body (without the length prefix).
    async fn read_response(stream: &mut TcpStream) -> Vec<u8> {
        let size = stream.read_i32().await.unwrap();
        let mut body = vec![0; size as usize];
        stream.read_exact(&mut body).await.unwrap();
        body
    }

    /// MetadataFetch over a real `clientPort`: an out-of-date broker is answered at once, a caught-up
    /// one waits for the next write, and shutdown ends a waiting fetch promptly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metadata_fetch_long_polls_on_the_client_port() {
        use metadata_fetch_codec::{decode_response, encode_request, MetadataFetchRequest};
        let dir = tempfile::tempdir().unwrap();
        let node = single_voter(0, dir.path()).await;
        let shutdown = CancellationToken::new();
        let ctx = Arc::new(ClientContext::new(node.clone(), BTreeMap::new(), 9000).with_shutdown(shutdown.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks = TaskTracker::new();
        let budget = Arc::new(MemoryBudget::new(1 << 20));
        tasks.spawn(serve_clients(
            ctx,
            listener,
            None,
            4,
            budget,
            tasks.clone(),
            shutdown.clone(),
        ));
        let mut stream = TcpStream::connect(addr).await.unwrap();

        let ask = |after, max_wait_ms| {
            encode_request(
                after as i32,
                "broker-0",
                &MetadataFetchRequest {
                    after,
                    max_wait_ms,
                    deltas: false,
                },
            )
        };
        stream.write_all(&ask(0, 10_000)).await.unwrap();
        let (correlation_id, update) = decode_response(&read_response(&mut stream).await).unwrap();
        assert_eq!(correlation_id, 0);
        assert!(update.offset > 0 && update.image.is_some(), "{update:?}");

        let after = update.offset;
        stream.write_all(&ask(after, 10_000)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        node.write(MetadataCommand::SetProducerIdFloor { at_least: 77 })
            .await
            .unwrap();
        let (_, update) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
            .await
            .map(|body| decode_response(&body).unwrap())
            .expect("the write wakes the fetch");
        assert!(update.offset > after);
        assert_eq!(update.image.unwrap().next_producer_id, 77);

        stream.write_all(&ask(update.offset, 30_000)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown.cancel();
        let (_, last) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut stream))
            .await
            .map(|body| decode_response(&body).unwrap())
            .expect("shutdown ends the wait");
        assert_eq!((last.offset, last.image), (update.offset, None));
        tasks.close();
        tokio::time::timeout(Duration::from_secs(2), tasks.wait())
            .await
            .expect("connections drain");
        node.raft.shutdown().await.unwrap();
    }

    #[test]
    fn brokers_whose_heartbeats_stop_expire_after_the_session_timeout() {
        let mut image = crate::ClusterImage::default();
        for (id, index) in [(1, 10), (2, 11)] {
            let register = MetadataCommand::RegisterBroker {
                broker_id: id,
                incarnation_id: uuid::Uuid::nil(),
                endpoints: vec![],
                rack: None,
            };
            apply(&mut image, index, &register);
            let unfence = MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch: index as i64,
                fenced: false,
            };
            apply(&mut image, index + 10, &unfence);
        }
        let mut heartbeats = BTreeMap::from([(1, 1000)]);
        // Broker 2 was never seen by this controller: its clock starts now.
        assert_eq!(expired_brokers(&image, &mut heartbeats, 5000, 9000), vec![]);
        assert_eq!(expired_brokers(&image, &mut heartbeats, 10_001, 9000), vec![(1, 10)]);
        assert_eq!(
            expired_brokers(&image, &mut heartbeats, 14_001, 9000),
            vec![(1, 10), (2, 11)]
        );
    }
}
