//! One client connection: reads request frames, starts each with `api::start_request`, and writes the
//! responses in request order, as Kafka clients require.
//!
//! Kafka mutes a connection while a request is in flight, so an acks=all Produce holds the connection
//! until the in-sync replicas have its records, and a producer's pipelined requests (up to
//! `max.in.flight.requests.per.connection`) queue behind that wait. Here the next Produce is read and
//! appended while earlier ones wait for their replicas: appends still happen in arrival order (the
//! idempotent producer's sequence checks see the same order), responses are still written in order,
//! and any other request first waits until every earlier response is written, so it sees the effects
//! of everything the client sent before it, as it would in Kafka. At most `MAX_PIPELINED` responses
//! wait at a time; beyond that the connection stops reading. A response that becomes ready while the
//! next request's frame is still arriving is written then (`read_body_writing`), so a producer at its
//! in-flight limit is not kept waiting for an answer the broker already has.
//!
//! Bad input (oversize or malformed frames) closes only that connection, with a log line. On shutdown
//! each connection finishes the requests it has started (their responses are written), then closes.
//!
//! A plaintext Fetch response's record data is sent from the segment files with sendfile
//! (`sendfile`), between the frame's own bytes, all on the one socket in order: the next response
//! starts only when the last region of the one before is sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::sasl::{SaslConnection, SaslServer, Step, FAILED_AUTHENTICATION_DELAY};
use super::sendfile;
use crate::api::{self, ConnectionInfo, RequestError, Response, Started};
use crate::broker::Broker;
use crate::metrics::Stage;
use crate::network::frame::{read_frame_size, FrameError};
use crate::quota;

/// Responses a connection may owe at once before it stops reading requests (a Kafka producer sends at
/// most 5 with idempotence).
const MAX_PIPELINED: usize = 16;

/// A response owed, in request order, with when its request's frame started to arrive if it is a
/// Produce (for `metrics::produce_stages`).
enum Owed {
    /// Produced already, behind an earlier response still waiting.
    Ready(Response, Option<Instant>),
    /// An acks=all Produce waiting for its replicas.
    Replicating(JoinHandle<Result<Option<Response>, RequestError>>, Option<Instant>),
}

impl Owed {
    fn arrived(&self) -> Option<Instant> {
        match self {
            Owed::Ready(_, arrived) | Owed::Replicating(_, arrived) => *arrived,
        }
    }
}

/// The write side of a connection.
pub trait ResponseWriter: AsyncWrite + Unpin {
    /// The socket itself when what is written is what goes on the wire (plaintext): record data can
    /// then be sent from files with sendfile. `None` for TLS.
    fn plaintext_socket(&self) -> Option<&TcpStream>;
}

impl ResponseWriter for OwnedWriteHalf {
    fn plaintext_socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<S: AsyncRead + AsyncWrite> ResponseWriter for tokio::io::WriteHalf<S> {
    fn plaintext_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// Serves one connection, plaintext (a TCP stream's halves) or TLS (a TLS stream's).
pub async fn serve_connection<R, W>(
    broker: &Arc<Broker>,
    read_half: R,
    mut writer: W,
    info: ConnectionInfo,
    sasl: Option<Arc<SaslServer>>,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin,
    W: ResponseWriter,
{
    let max = broker.config.socket_request_max_bytes;
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    // Invariant: the front, if any, is `Replicating` (ready responses behind it are written as soon as
    // it is).
    let mut owed: VecDeque<Owed> = VecDeque::new();
    let mut sasl_conn = SaslConnection::default();
    let mut muted_until: Option<tokio::time::Instant> = None;
    loop {
        let readable = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            done = front(&mut owed), if !owed.is_empty() => {
                let arrived = owed.pop_front().and_then(|o| o.arrived());
                if !write(&mut writer, done, arrived, &info, broker).await
                    || !write_ready(&mut owed, &mut writer, &info, broker).await
                {
                    break;
                }
                continue;
            }
            // fill_buf is cancel-safe: bytes it read stay in the reader's buffer. A client over its
            // quota is not read from until its throttle time has passed (KIP-219).
            readable = async {
                if let Some(until) = muted_until {
                    tokio::time::sleep_until(until).await;
                }
                reader.fill_buf().await.map(|b| !b.is_empty())
            }, if owed.len() < MAX_PIPELINED => readable,
        };
        match readable {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                debug!(peer = %info.peer, "connection error: {e}");
                break;
            }
        }
        // A request has started to arrive: read it whole.
        let arrived = Instant::now();
        let size = match read_frame_size(&mut reader, max).await {
            Ok(Some(size)) => size,
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                debug!(peer = %info.peer, "connection error: {e}");
                break;
            }
            Err(e) => {
                warn!(peer = %info.peer, listener = %info.listener, "closing connection: {e}");
                broker.metrics.request_rejected();
                break;
            }
        };
        let admitting = Instant::now();
        let permit = broker.budget.reserve(size).await;
        let admitted = Instant::now();
        let Some(body) = read_body_writing(&mut reader, size, &mut owed, &mut writer, &info, broker).await else {
            break;
        };
        let body = body.freeze();
        let produce = is_produce(&body);
        if produce {
            let read = admitting.duration_since(arrived) + admitted.elapsed();
            broker.metrics.produce_stage(Stage::Read, read);
            broker
                .metrics
                .produce_stage(Stage::Budget, admitted.duration_since(admitting));
        }
        let arrived = produce.then_some(arrived);
        // A SASL listener serves nothing but authentication until the client has logged in, and
        // closes a connection whose session ended without a re-authentication (KIP-368).
        let authenticating = match &sasl {
            Some(_) if sasl_conn.is_authenticated() => {
                if sasl_conn.expired(std::time::Instant::now()) {
                    debug!(peer = %info.peer, listener = %info.listener, "closing connection: its SASL session expired (connections.max.reauth.ms) and the client did not re-authenticate");
                    broker.metrics.sasl_session_expired();
                    break;
                }
                is_api(&body, ApiKey::SaslHandshake) && {
                    // Earlier responses go first: the client re-authenticates between requests.
                    if !pay_all(&mut owed, &mut writer, &info, broker).await {
                        break;
                    }
                    let started = sasl_conn.begin_reauthentication();
                    if started {
                        broker.metrics.sasl_reauthentication();
                    }
                    started
                }
            }
            Some(_) => true,
            None => false,
        };
        if let Some(server) = sasl.as_ref().filter(|_| authenticating) {
            match server.step(&mut sasl_conn, body.clone(), &info) {
                Step::Serve => {}
                Step::Respond(frame) => {
                    if writer.write_all(&frame).await.is_err() {
                        break;
                    }
                    continue;
                }
                Step::RespondAndClose(frame) => {
                    let _ = writer.write_all(&frame).await;
                    tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
                    break;
                }
                Step::Close => break,
            }
        }
        if !produce && !pay_all(&mut owed, &mut writer, &info, broker).await {
            break;
        }
        // The principal: the SASL user, else the TLS client certificate's mapped subject, else
        // ANONYMOUS, as Kafka's default principal builder decides.
        let user = match sasl_conn.principal() {
            Some(principal) => principal.strip_prefix("User:").unwrap_or(principal),
            None => info.tls_principal.as_deref().unwrap_or(quota::ANONYMOUS),
        };
        let started = api::start_request(broker, &info, user, body, permit)
            .await
            .map(|(started, throttle)| {
                if !throttle.is_zero() {
                    muted_until = Some(tokio::time::Instant::now() + throttle);
                }
                started
            });
        match started {
            Ok(Started::Done(Some(response))) if owed.is_empty() => {
                if !write(&mut writer, Ok(Some(response)), arrived, &info, broker).await {
                    break;
                }
            }
            Ok(Started::Done(Some(response))) => owed.push_back(Owed::Ready(response, arrived)),
            Ok(Started::Done(None)) => {}
            Ok(Started::Replicating(task)) => owed.push_back(Owed::Replicating(task, arrived)),
            Err(e) => {
                warn!(peer = %info.peer, listener = %info.listener, "closing connection: {e}");
                broker.metrics.request_rejected();
                break;
            }
        }
    }
    pay_all(&mut owed, &mut writer, &info, broker).await;
    let _ = writer.shutdown().await;
}

/// Reads a frame's body of `size` bytes, writing the owed responses that become ready meanwhile: an
/// acks=all Produce answered while the client's next (large) request is still arriving goes out then,
/// not after it (a producer at its in-flight limit sends more only once it has an answer). `None`
/// when the connection must close.
async fn read_body_writing<R: AsyncRead + Unpin, W: ResponseWriter>(
    reader: &mut BufReader<R>,
    size: usize,
    owed: &mut VecDeque<Owed>,
    writer: &mut W,
    info: &ConnectionInfo,
    broker: &Broker,
) -> Option<BytesMut> {
    let mut body = BytesMut::zeroed(size);
    let mut filled = 0;
    while filled < size {
        tokio::select! {
            biased;
            done = front(owed), if !owed.is_empty() => {
                let arrived = owed.pop_front().and_then(|o| o.arrived());
                if !write(writer, done, arrived, info, broker).await || !write_ready(owed, writer, info, broker).await {
                    return None;
                }
            }
            // `read` is cancel-safe: when the other branch wins, nothing was read.
            read = reader.read(&mut body[filled..]) => match read {
                Ok(0) => {
                    debug!(peer = %info.peer, "closing connection: it ended inside a request frame");
                    return None;
                }
                Ok(n) => filled += n,
                Err(e) => {
                    debug!(peer = %info.peer, "closing connection: {e}");
                    return None;
                }
            },
        }
    }
    Some(body)
}

/// The request's API key (the frame's first two bytes) is Produce's.
fn is_produce(body: &[u8]) -> bool {
    is_api(body, ApiKey::Produce)
}

/// The request's API key (the frame's first two bytes) is `api`.
fn is_api(body: &[u8], api: ApiKey) -> bool {
    body.len() >= 2 && i16::from_be_bytes([body[0], body[1]]) == api as i16
}

/// The first owed response, once its replicas have the records (pending while there is none).
async fn front(owed: &mut VecDeque<Owed>) -> Result<Option<Response>, RequestError> {
    match owed.front_mut() {
        Some(Owed::Replicating(task, _)) => task.await.unwrap_or_else(|e| Err(failed_task(e))),
        Some(Owed::Ready(..)) | None => std::future::pending().await,
    }
}

/// A Produce whose replication task panicked or was cancelled: the connection closes, as for any
/// request the broker cannot answer.
fn failed_task(e: tokio::task::JoinError) -> RequestError {
    RequestError::Internal {
        api: ApiKey::Produce,
        reason: e.to_string(),
    }
}

/// Writes every owed response, in order, waiting for each. False when the connection must close.
async fn pay_all<W: ResponseWriter>(
    owed: &mut VecDeque<Owed>,
    writer: &mut W,
    info: &ConnectionInfo,
    broker: &Broker,
) -> bool {
    while let Some(next) = owed.pop_front() {
        let (done, arrived) = match next {
            Owed::Ready(response, arrived) => (Ok(Some(response)), arrived),
            Owed::Replicating(task, arrived) => (task.await.unwrap_or_else(|e| Err(failed_task(e))), arrived),
        };
        if !write(writer, done, arrived, info, broker).await {
            return false;
        }
    }
    true
}

/// Writes the ready responses at the front (those that waited only for an earlier one).
async fn write_ready<W: ResponseWriter>(
    owed: &mut VecDeque<Owed>,
    writer: &mut W,
    info: &ConnectionInfo,
    broker: &Broker,
) -> bool {
    while let Some(Owed::Ready(..)) = owed.front() {
        let Some(Owed::Ready(response, arrived)) = owed.pop_front() else {
            unreachable!("checked above")
        };
        if !write(writer, Ok(Some(response)), arrived, info, broker).await {
            return false;
        }
    }
    true
}

/// Writes one finished request's response. False when the connection must close. `arrived`: when a
/// Produce's frame started to arrive (its stages are timed).
async fn write<W: ResponseWriter>(
    writer: &mut W,
    done: Result<Option<Response>, RequestError>,
    arrived: Option<Instant>,
    info: &ConnectionInfo,
    broker: &Broker,
) -> bool {
    let sending = Instant::now();
    match done {
        Ok(Some(response)) => match write_response(writer, &response, broker).await {
            Ok(()) => {
                if let Some(arrived) = arrived {
                    let metrics = &broker.metrics;
                    metrics.produce_stage(Stage::ResponseQueue, sending.duration_since(response.encoded_at));
                    metrics.produce_stage(Stage::ResponseSend, sending.elapsed());
                    metrics.produce_stage(Stage::Total, arrived.elapsed());
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                warn!(peer = %info.peer, listener = %info.listener, "closing connection mid-response: {e}");
                false
            }
            Err(e) => {
                debug!(peer = %info.peer, "cannot write response: {e}");
                false
            }
        },
        Ok(None) => true,
        Err(e) => {
            warn!(peer = %info.peer, listener = %info.listener, "closing connection: {e}");
            broker.metrics.request_rejected();
            false
        }
    }
}

/// Writes a response frame, sending its file regions (if any) with sendfile where they go.
async fn write_response<W: ResponseWriter>(
    writer: &mut W,
    response: &Response,
    broker: &Broker,
) -> std::io::Result<()> {
    let mut at = 0;
    for (offset, region) in &response.regions {
        writer.write_all(&response.frame[at..*offset]).await?;
        let Some(socket) = writer.plaintext_socket() else {
            // `ConnectionInfo::zero_copy` is false on TLS connections, so Fetch never plans this.
            return Err(std::io::Error::other(
                "a response with file regions on a TLS connection",
            ));
        };
        sendfile::send_region(socket, region).await?;
        broker.metrics.record_zero_copy(region.len as u64);
        at = *offset;
    }
    writer.write_all(&response.frame[at..]).await
}
