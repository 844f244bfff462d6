//! Kafka requests written by hand on a plain TCP stream, for tests that need what no client library
//! lets them do (pipelining, a re-authentication at a chosen moment): the frame of one request, and
//! reading one response frame.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// One connection speaking requests written by hand, one at a time.
pub struct Connection {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl Connection {
    pub fn connect(address: &str) -> Connection {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Connection {
            stream,
            correlation_id: 0,
        }
    }

    pub fn send(&mut self, api: ApiKey, version: i16, body: &impl Encodable) {
        self.correlation_id += 1;
        self.stream
            .write_all(&request(api, version, self.correlation_id, body))
            .unwrap();
    }

    /// SaslHandshake v1 for `mechanism`.
    pub fn handshake(&mut self, mechanism: &str) -> SaslHandshakeResponse {
        let body = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.to_string()));
        self.send(ApiKey::SaslHandshake, 1, &body);
        decode(ApiKey::SaslHandshake, 1, read_frame(&mut self.stream)).1
    }

    /// SaslAuthenticate (at `version`) with `token`.
    pub fn authenticate(&mut self, version: i16, token: impl Into<Bytes>) -> SaslAuthenticateResponse {
        let body = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
        self.send(ApiKey::SaslAuthenticate, version, &body);
        decode(ApiKey::SaslAuthenticate, version, read_frame(&mut self.stream)).1
    }

    /// Metadata for no topic; the broker's answer, or the error that ended the connection.
    pub fn metadata(&mut self) -> std::io::Result<MetadataResponse> {
        self.send(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![])),
        );
        try_read_frame(&mut self.stream).map(|frame| decode(ApiKey::Metadata, 12, frame).1)
    }

    /// Whether the broker closed the connection (the next read is EOF or a reset).
    pub fn closed(&mut self) -> bool {
        try_read_frame(&mut self.stream).is_err()
    }
}

/// The size-prefixed frame of one request.
pub fn request(api: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("oxka-raw-test")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, api.request_header_version(version)).unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut out = (buf.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&buf);
    out
}

/// One response frame (without its size); panics when the connection ends first.
pub fn read_frame(stream: &mut TcpStream) -> Bytes {
    try_read_frame(stream).expect("a whole response frame")
}

/// One response frame, or the error that ended the connection first (EOF when the broker closed it).
pub fn try_read_frame(stream: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

/// Decodes a response frame of `api` at `version`: its correlation id and body.
pub fn decode<T: Decodable>(api: ApiKey, version: i16, mut frame: Bytes) -> (i32, T) {
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
    (header.correlation_id, T::decode(&mut frame, version).unwrap())
}
