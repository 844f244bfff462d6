//! Kafka requests written by hand on a plain TCP stream, for tests that need what no client library
//! lets them do (pipelining, a re-authentication at a chosen moment): the frame of one request, and
//! reading one response frame.

use std::io::Read;
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

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
