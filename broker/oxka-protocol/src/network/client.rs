//! The client side of the Kafka protocol, for the broker's own outgoing requests: encoding a request
//! frame, decoding a response, and one connection that sends a request and reads its answer
//! (`ClientConnection`). Used by the replica fetchers (Fetch to partition leaders) and by the controller
//! channel (`cluster::remote`, whose lanes keep a `ReusableConnection` each and call `exchange`);
//! `request_once` is one request on a fresh connection (a coordinator asking its leader how far it has
//! caught up).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::frame::{read_frame_body, read_frame_size};
use super::secure::{split_plain, split_tls, tls_connect, ClientSecurity, ReadStream, SaslLogin, WriteStream};
use crate::scram;

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("connection to {address} failed: {reason}")]
    Io { address: String, reason: String },
    #[error("{address} did not answer within {timeout:?}")]
    TimedOut { address: String, timeout: Duration },
    #[error("{0}")]
    Protocol(String),
}

/// A request frame: size, header (with `correlation_id` and `client_id`), body.
pub fn encode_request(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    request: &RequestKind,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut body = BytesMut::new();
    body.extend_from_slice(&[0; 4]);
    header
        .encode(&mut body, api.request_header_version(version))
        .and_then(|_| request.encode(&mut body, version))
        .map_err(|e| format!("cannot encode {api:?} v{version}: {e}"))?;
    let size = (body.len() - 4) as u32;
    body[..4].copy_from_slice(&size.to_be_bytes());
    Ok(body)
}

/// Decodes a response frame body (header included) of `api` at `version`; returns its correlation id.
pub fn decode_response(api: ApiKey, version: i16, mut body: Bytes) -> Result<(i32, ResponseKind), String> {
    let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
        .map_err(|e| format!("bad {api:?} response header: {e}"))?;
    let response = ResponseKind::decode(api, &mut body, version).map_err(|e| format!("bad {api:?} response: {e}"))?;
    if body.has_remaining() {
        return Err(format!(
            "{} unexpected bytes after a {api:?} response",
            body.remaining()
        ));
    }
    Ok((header.correlation_id, response))
}

/// One connection to a Kafka listener, one request at a time. A call that fails, times out or is
/// abandoned (its future dropped) leaves the connection unusable: a response, or part of one, may
/// still be in flight. Later calls on it fail at once instead of reading that response as theirs;
/// the owner checks `is_usable` and reconnects.
pub struct ClientConnection {
    address: String,
    client_id: String,
    reader: BufReader<ReadStream>,
    writer: WriteStream,
    next_correlation: i32,
    max_response_bytes: usize,
    /// True from the first byte of a request written until its whole answer is read (for
    /// `send_only`, until the whole request is written).
    in_flight: bool,
}

impl ClientConnection {
    pub async fn connect(
        address: &str,
        client_id: &str,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<ClientConnection, ClientError> {
        Self::connect_secured(
            address,
            client_id,
            timeout,
            max_response_bytes,
            &ClientSecurity::default(),
        )
        .await
    }

    /// Connects as `security` says: TLS first if it has a TLS configuration, then a SASL login if it
    /// has credentials (SaslHandshake v1 and SaslAuthenticate, before any other request).
    pub async fn connect_secured(
        address: &str,
        client_id: &str,
        timeout: Duration,
        max_response_bytes: usize,
        security: &ClientSecurity,
    ) -> Result<ClientConnection, ClientError> {
        let connect_error = |reason: String| ClientError::Connect {
            address: address.to_string(),
            reason,
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| connect_error(format!("no answer within {timeout:?}")))?
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = match &security.tls {
            None => split_plain(stream),
            Some(tls) => {
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
                let stream = tokio::time::timeout(timeout, tls_connect(tls, host, stream))
                    .await
                    .map_err(|_| connect_error(format!("no TLS handshake within {timeout:?}")))?
                    .map_err(|e| connect_error(format!("TLS handshake failed: {e}")))?;
                split_tls(stream)
            }
        };
        let mut connection = ClientConnection {
            address: address.to_string(),
            client_id: client_id.to_string(),
            reader: BufReader::new(read),
            writer: write,
            next_correlation: 1,
            max_response_bytes,
            in_flight: false,
        };
        if let Some(login) = &security.sasl {
            connection
                .sasl(login, timeout)
                .await
                .map_err(|e| connect_error(e.to_string()))?;
        }
        Ok(connection)
    }

    /// SASL: SaslHandshake v1 naming the mechanism, then SaslAuthenticate with PLAIN's `\0user\0password`,
    /// or SCRAM's two round trips (the server's final signature is checked: a broker that does not
    /// know the password cannot pass for one that does).
    async fn sasl(&mut self, login: &SaslLogin, timeout: Duration) -> Result<(), ClientError> {
        use kafka_protocol::messages::SaslHandshakeRequest;
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(login.mechanism.clone()));
        match self
            .call(
                ApiKey::SaslHandshake,
                1,
                &RequestKind::SaslHandshake(handshake),
                timeout,
            )
            .await?
        {
            ResponseKind::SaslHandshake(r) if r.error_code == 0 => {}
            ResponseKind::SaslHandshake(r) => {
                let enabled: Vec<String> = r.mechanisms.iter().map(|m| m.to_string()).collect();
                let message = format!("the broker's mechanisms are {}", enabled.join(", "));
                return Err(sasl_refused(&login.mechanism, r.error_code, Some(&message)));
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected answer to SaslHandshake: {other:?}"
                )))
            }
        }
        let Some(mechanism) = scram::Mechanism::from_name(&login.mechanism) else {
            let token = format!("\0{}\0{}", login.user, login.password);
            self.sasl_token(token.into_bytes(), timeout).await?;
            return Ok(());
        };
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| ClientError::Protocol(format!("no random bytes for a nonce: {e}")))?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let (client, first) = scram::ScramClient::first(mechanism, &login.user, &nonce);
        let server_first = self.sasl_token(first.into_bytes(), timeout).await?;
        let server_first = String::from_utf8_lossy(&server_first).into_owned();
        let (last, expected) = client
            .finish(&server_first, &login.password)
            .map_err(|e| ClientError::Protocol(format!("SASL {} failed: {e}", login.mechanism)))?;
        let server_final = self.sasl_token(last.into_bytes(), timeout).await?;
        use base64::Engine;
        let signature = std::str::from_utf8(&server_final)
            .ok()
            .and_then(|t| t.strip_prefix("v="))
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok());
        if signature.as_deref() != Some(expected.as_slice()) {
            return Err(ClientError::Protocol(format!(
                "SASL {} failed: the broker's final message does not prove it knows the password",
                login.mechanism
            )));
        }
        Ok(())
    }

    /// One SaslAuthenticate round trip: the broker's answer token, or its refusal.
    async fn sasl_token(&mut self, token: Vec<u8>, timeout: Duration) -> Result<Bytes, ClientError> {
        use kafka_protocol::messages::SaslAuthenticateRequest;
        let authenticate = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        match self
            .call(
                ApiKey::SaslAuthenticate,
                1,
                &RequestKind::SaslAuthenticate(authenticate),
                timeout,
            )
            .await?
        {
            ResponseKind::SaslAuthenticate(r) if r.error_code == 0 => Ok(r.auth_bytes),
            ResponseKind::SaslAuthenticate(r) => {
                Err(sasl_refused("authentication", r.error_code, r.error_message.as_deref()))
            }
            other => Err(ClientError::Protocol(format!(
                "unexpected answer to SaslAuthenticate: {other:?}"
            ))),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// False once a call failed, timed out or was abandoned between writing its request and reading
    /// its whole answer: the stream may hold (part of) that answer, so the connection cannot be used.
    pub fn is_usable(&self) -> bool {
        !self.in_flight
    }

    /// The error for a call on a connection that is not usable.
    fn refuse_unusable(&self) -> Result<(), ClientError> {
        if self.in_flight {
            return Err(ClientError::Io {
                address: self.address.clone(),
                reason: "an earlier request on this connection got no whole answer (it failed, timed out or was \
                         abandoned), so the next bytes may be that answer; open a new connection"
                    .to_string(),
            });
        }
        Ok(())
    }

    /// Sends `request` without reading an answer: for requests the broker does not answer (Produce
    /// with acks=0). Waits up to `timeout` for the bytes to be written.
    pub async fn send_only(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.refuse_unusable()?;
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let frame =
            encode_request(api, version, correlation_id, &self.client_id, request).map_err(ClientError::Protocol)?;
        self.in_flight = true;
        tokio::time::timeout(timeout, self.writer.write_all(&frame))
            .await
            .map_err(|_| ClientError::TimedOut {
                address: self.address.clone(),
                timeout,
            })?
            .map_err(|e| ClientError::Io {
                address: self.address.clone(),
                reason: e.to_string(),
            })?;
        self.in_flight = false;
        Ok(())
    }

    /// Sends `request` and waits up to `timeout` for its response.
    pub async fn call(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, ClientError> {
        self.refuse_unusable()?;
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let frame =
            encode_request(api, version, correlation_id, &self.client_id, request).map_err(ClientError::Protocol)?;
        self.in_flight = true;
        let exchange = async {
            let io = |e: String| ClientError::Io {
                address: self.address.clone(),
                reason: e,
            };
            self.writer.write_all(&frame).await.map_err(|e| io(e.to_string()))?;
            let size = read_frame_size(&mut self.reader, self.max_response_bytes)
                .await
                .map_err(|e| io(e.to_string()))?
                .ok_or_else(|| io("connection closed".to_string()))?;
            let body = read_frame_body(&mut self.reader, size)
                .await
                .map_err(|e| io(e.to_string()))?;
            Ok::<_, ClientError>(body.freeze())
        };
        let body = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::TimedOut {
                address: self.address.clone(),
                timeout,
            })??;
        self.in_flight = false;
        let (correlation, response) = decode_response(api, version, body).map_err(ClientError::Protocol)?;
        if correlation != correlation_id {
            return Err(ClientError::Protocol(format!(
                "{} answered correlation id {correlation} to request {correlation_id}",
                self.address
            )));
        }
        Ok(response)
    }
}

/// Largest response `exchange` accepts (a coordinator's metadata images of very large clusters fit).
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// How long connecting to one address may take (in `exchange`, and the controller channel's discovery).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection a caller keeps in a slot (`Option<ReusableConnection>`) between `exchange` calls,
/// reused while it is idle and to the same address (the controller channel's lanes).
pub struct ReusableConnection {
    address: String,
    reader: BufReader<ReadStream>,
    writer: WriteStream,
    /// False between sending a request and reading its whole response: a call abandoned there (timed
    /// out) leaves a response in flight, so the connection is not reused.
    idle: bool,
}

impl ReusableConnection {
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// One request on a fresh connection to `address`, for callers outside a broker's session (a coordinator
/// asking its leader how far it has caught up, the controller channel asking members who leads).
pub async fn request_once(
    address: &str,
    client_id: &str,
    api: ApiKey,
    version: i16,
    request: &RequestKind,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<ResponseKind, String> {
    // The first correlation id of a fresh connection.
    let frame = encode_request(api, version, 1, client_id, request)?;
    let mut slot = None;
    let body = tokio::time::timeout(timeout, exchange(&mut slot, address, &frame, tls))
        .await
        .map_err(|_| format!("{address} did not answer within {timeout:?}"))?
        .map_err(|e| format!("{address}: {e}"))?;
    decode_response(api, version, body).map(|(_, response)| response)
}

/// Sends `frame` over the connection in `slot` (connecting to `address` first if needed, or if the
/// connection is to another member; over TLS when `tls` is given: a coordinator's `secureClientPort`)
/// and reads one response frame body.
pub async fn exchange(
    slot: &mut Option<ReusableConnection>,
    address: &str,
    frame: &[u8],
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> std::io::Result<Bytes> {
    if slot.as_ref().is_some_and(|c| c.address != address || !c.idle) {
        *slot = None;
    }
    if slot.is_none() {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = stream.set_nodelay(true);
        let (read, write) = match tls {
            None => split_plain(stream),
            Some(tls) => {
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls_connect(tls, host, stream))
                    .await
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
                    .map_err(|e| std::io::Error::other(format!("TLS handshake failed: {e}")))?;
                split_tls(stream)
            }
        };
        *slot = Some(ReusableConnection {
            address: address.to_string(),
            reader: BufReader::new(read),
            writer: write,
            idle: true,
        });
    }
    let connection = slot.as_mut().expect("connected above");
    connection.idle = false;
    connection.writer.write_all(frame).await?;
    let size = read_frame_size(&mut connection.reader, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"))?;
    let body = read_frame_body(&mut connection.reader, size)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    connection.idle = true;
    Ok(body.freeze())
}

/// A SASL step the broker refused, with Kafka's error name and the broker's message.
fn sasl_refused(what: &str, code: i16, message: Option<&str>) -> ClientError {
    let name = kafka_protocol::error::ResponseError::try_from_code(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("error {code}"));
    ClientError::Protocol(format!("SASL {what} refused ({name}): {}", message.unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A listener that answers every ApiVersions request `delay` after reading it, in order.
    async fn slow_server(delay: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    loop {
                        let Ok(size) = stream.read_u32().await else { return };
                        let mut body = vec![0; size as usize];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let mut body = Bytes::from(body);
                        let header = RequestHeader::decode(&mut body, 2).unwrap();
                        tokio::time::sleep(delay).await;
                        let mut answer = BytesMut::from(&[0u8; 4][..]);
                        ResponseHeader::default()
                            .with_correlation_id(header.correlation_id)
                            .encode(&mut answer, 0)
                            .unwrap();
                        ApiVersionsResponse::default().encode(&mut answer, 3).unwrap();
                        let len = (answer.len() - 4) as u32;
                        answer[..4].copy_from_slice(&len.to_be_bytes());
                        if stream.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    /// A connection to a fresh `slow_server(300 ms)`.
    async fn connect_slow() -> ClientConnection {
        let address = slow_server(Duration::from_millis(300)).await;
        ClientConnection::connect(&address, "t", Duration::from_secs(2), 1 << 20)
            .await
            .unwrap()
    }

    /// An ApiVersions v3 call on `connection` that waits at most `timeout`.
    async fn api_versions(connection: &mut ClientConnection, timeout: Duration) -> Result<ResponseKind, ClientError> {
        let request = RequestKind::ApiVersions(ApiVersionsRequest::default());
        connection.call(ApiKey::ApiVersions, 3, &request, timeout).await
    }

    #[tokio::test]
    async fn a_call_abandoned_before_its_answer_leaves_the_connection_refusing_calls() {
        let mut connection = connect_slow().await;
        let answered = api_versions(&mut connection, Duration::from_secs(5)).await;
        assert!(answered.is_ok(), "{answered:?}");
        assert!(connection.is_usable());

        // Dropped while waiting for its answer, as a signal handler's select! drops a request.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            api_versions(&mut connection, Duration::from_secs(5)),
        )
        .await;
        assert!(abandoned.is_err(), "the call was expected to be abandoned");
        assert!(!connection.is_usable());
        // The abandoned call's answer arrives meanwhile; the next call must not take it for its own.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let next = api_versions(&mut connection, Duration::from_secs(5)).await;
        match next {
            Err(ClientError::Io { reason, .. }) => assert!(reason.contains("open a new connection"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_timed_out_call_leaves_the_connection_unusable() {
        let mut connection = connect_slow().await;
        let timed_out = api_versions(&mut connection, Duration::from_millis(50)).await;
        assert!(matches!(timed_out, Err(ClientError::TimedOut { .. })), "{timed_out:?}");
        assert!(!connection.is_usable());
    }
}
