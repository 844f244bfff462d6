//! The transport between coordinators: openraft's AppendEntries, Vote and InstallSnapshot over TCP on the
//! `server.N` peer port.
//!
//! Wire format, both directions: `[u32 big-endian length][JSON]`. A request is a `PeerRequest`; the answer
//! is the matching `PeerResponse`, carrying the receiver's `Result` (a `RaftError` from the remote Raft is
//! returned to openraft as a `RemoteError`). One connection per (sender, target), one request in flight on
//! it (openraft sends to a target sequentially), reconnected after any error. Every RPC is bounded by
//! openraft's `RPCOption::hard_ttl`, so a dead peer costs a timeout, never a hang.
//!
//! With `sslQuorum=true` (ZooKeeper's quorum TLS keys, `oxka_config::quorum_tls`) both sides speak
//! mutual TLS: each member presents its keystore and requires the other's certificate to chain to its
//! truststore. A failed handshake is logged once per interval with a count, naming the peer.
//!
//! `handle_peer_request` is the receiving side's one path into Raft; the TCP server and the in-process
//! test harness both use it.
//!
//! `NoPeers` is the network of a single voter (a broker's embedded coordinator): it has nobody to talk
//! to, so it opens no port and every RPC fails as `Unreachable`.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use oxka_protocol::util::{AcceptFailures, ExponentialBackoff};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use oxka_protocol::util::RateLimitedLog;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Node, NodeId, Raft, TypeConfig};

/// Upper bound of one peer frame (a snapshot chunk or a batch of entries is far smaller).
const MAX_PEER_FRAME: usize = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

/// Hands one request from a peer to the local Raft and returns its answer.
pub async fn handle_peer_request(raft: &Raft, request: PeerRequest) -> PeerResponse {
    match request {
        PeerRequest::AppendEntries(r) => PeerResponse::AppendEntries(raft.append_entries(r).await),
        PeerRequest::Vote(r) => PeerResponse::Vote(raft.vote(r).await),
        PeerRequest::InstallSnapshot(r) => PeerResponse::InstallSnapshot(raft.install_snapshot(r).await),
    }
}

/// The local side of an RPC failed; say whether the peer should be treated as unreachable (back off).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to coordinator {target} at {addr}: {source}")]
    Connect {
        target: NodeId,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to coordinator {target} failed: {source}")]
    Io {
        target: NodeId,
        #[source]
        source: std::io::Error,
    },
    #[error("coordinator {target} did not answer within {after:?}")]
    Timeout { target: NodeId, after: Duration },
    #[error("coordinator {target} sent a malformed answer: {reason}")]
    Malformed { target: NodeId, reason: String },
}

/// A peer connection: plain TCP, or TLS over it.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> PeerStream for T {}

/// Creates a `PeerClient` per target; addresses come from the membership's `BasicNode::addr`. With
/// `tls`, every connection to a peer is TLS (quorum TLS).
#[derive(Clone, Default)]
pub struct TcpNetworkFactory {
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl RaftNetworkFactory<TypeConfig> for TcpNetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            connection: None,
            tls: self.tls.clone(),
        }
    }
}

/// The network factory of a single voter. A lone voter elects itself and commits on its own, so openraft
/// never needs a peer; should it ever try (a misconfigured membership with more voters), the RPC fails
/// as `Unreachable`, openraft backs off, and writes fail with NoQuorum rather than hang.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

/// The "connection" `NoPeers` hands out: every RPC fails at once.
#[derive(Debug, Clone, Copy)]
pub struct NoPeerConnection {
    target: NodeId,
}

/// Why `NoPeers` refuses an RPC.
#[derive(Debug, thiserror::Error)]
#[error(
    "coordinator {target} is unreachable: this coordinator runs as a single voter without a peer transport \
     (its membership should list only itself)"
)]
pub struct NoPeerTransport {
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeerConnection;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> NoPeerConnection {
        NoPeerConnection { target }
    }
}

impl NoPeerConnection {
    fn refuse<E: std::error::Error>(&self) -> RPCError<NodeId, Node, E> {
        RPCError::Unreachable(Unreachable::new(&NoPeerTransport { target: self.target }))
    }
}

impl RaftNetwork<TypeConfig> for NoPeerConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(self.refuse())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        Err(self.refuse())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(self.refuse())
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_secs(1)))
    }
}

pub struct PeerClient {
    target: NodeId,
    addr: String,
    connection: Option<BufReader<Box<dyn PeerStream>>>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl PeerClient {
    async fn call(&mut self, request: &PeerRequest, ttl: Duration) -> Result<PeerResponse, TransportError> {
        let target = self.target;
        let result = tokio::time::timeout(ttl, self.call_inner(request)).await;
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.connection = None;
                Err(e)
            }
            Err(_) => {
                self.connection = None;
                Err(TransportError::Timeout { target, after: ttl })
            }
        }
    }

    async fn call_inner(&mut self, request: &PeerRequest) -> Result<PeerResponse, TransportError> {
        let target = self.target;
        if self.connection.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|source| TransportError::Connect {
                    target,
                    addr: self.addr.clone(),
                    source,
                })?;
            let _ = stream.set_nodelay(true);
            let stream: Box<dyn PeerStream> = match &self.tls {
                None => Box::new(stream),
                Some(tls) => {
                    let host = self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(h, _)| h);
                    let stream = oxka_protocol::network::secure::tls_connect(tls, host, stream)
                        .await
                        .map_err(|e| TransportError::Connect {
                            target,
                            addr: self.addr.clone(),
                            source: std::io::Error::other(format!("TLS handshake failed: {e}")),
                        })?;
                    Box::new(stream)
                }
            };
            self.connection = Some(BufReader::new(stream));
        }
        let conn = self.connection.as_mut().expect("connected above");
        let io = |source| TransportError::Io { target, source };
        write_frame(conn.get_mut(), request).await.map_err(io)?;
        let bytes = read_frame(conn).await.map_err(io)?.ok_or_else(|| TransportError::Io {
            target,
            source: std::io::ErrorKind::UnexpectedEof.into(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| TransportError::Malformed {
            target,
            reason: e.to_string(),
        })
    }

    fn rpc_error<E: std::error::Error>(&self, e: TransportError) -> RPCError<NodeId, Node, E> {
        match e {
            TransportError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<NodeId, Node, E> {
        let e = TransportError::Malformed {
            target: self.target,
            reason: "the answer is for another kind of request".into(),
        };
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self.call(&PeerRequest::AppendEntries(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::AppendEntries(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        match self.call(&PeerRequest::InstallSnapshot(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::InstallSnapshot(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self.call(&PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::Vote(r)) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e)),
        }
    }

    /// Pauses between calls to a peer that is unreachable: 100 ms doubling to 1 s, with jitter.
    fn backoff(&self) -> openraft::network::Backoff {
        let backoff = ExponentialBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
        openraft::network::Backoff::new((0u32..).map(move |attempt| backoff.delay(attempt)))
    }
}

async fn write_frame<T: Serialize, S: AsyncWrite + Unpin + ?Sized>(stream: &mut S, message: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    stream.write_all(&buf).await
}

async fn read_frame<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> std::io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_PEER_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("peer frame of {len} bytes exceeds {MAX_PEER_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Serves Raft RPCs from the other coordinators on the peer port until shutdown; with `tls`, each
/// connection's TLS handshake (client certificate required) comes first.
pub async fn serve_peers(
    listener: TcpListener,
    raft: Raft,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let mut failures = AcceptFailures::default();
    let refused = Arc::new(RateLimitedLog::new(Duration::from_secs(10)));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                failures.accepted();
                a
            }
            Err(e) => {
                let (line, pause) = failures.failed(&e);
                if let Some(line) = line {
                    warn!("peer port: {line}");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        };
        let raft = raft.clone();
        let shutdown = shutdown.clone();
        let (acceptor, refused) = (acceptor.clone(), refused.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let stream: Box<dyn PeerStream> = match acceptor {
                None => Box::new(stream),
                Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => Box::new(stream),
                    Ok(Err(e)) => {
                        let reason = format!("TLS handshake failed: {e}");
                        if let Some(count) = refused.should_log(&format!("{}: {reason}", peer.ip())) {
                            warn!(%peer, "peer port: {reason} ({count} in the last interval)");
                        }
                        return;
                    }
                    Err(_) => return,
                },
            };
            let mut reader = BufReader::new(stream);
            loop {
                let frame = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    frame = read_frame(&mut reader) => frame,
                };
                let bytes = match frame {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return,
                    Err(e) => {
                        debug!(%peer, "peer connection closed: {e}");
                        return;
                    }
                };
                let request: PeerRequest = match serde_json::from_slice(&bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(%peer, "closing peer connection: malformed request: {e}");
                        return;
                    }
                };
                let response = handle_peer_request(&raft, request).await;
                if let Err(e) = write_frame(reader.get_mut(), &response).await {
                    debug!(%peer, "cannot answer peer: {e}");
                    return;
                }
            }
        });
    }
}
