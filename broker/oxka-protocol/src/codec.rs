//! Request decoding and response encoding shared by every Kafka-protocol listener (the broker's and the
//! coordinator's `clientPort`): header, version check against a registry, typed request; and back.

use std::panic::AssertUnwindSafe;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::network::frame::{finish_frame, start_frame};
use crate::{api_versions, ApiSpec, RequestError};

/// A request frame, decoded. Built once per request and destructured at once, so the size of the
/// `Request` variant costs nothing worth a heap allocation.
#[allow(clippy::large_enum_variant)]
pub enum Decoded {
    Request {
        api: ApiKey,
        version: i16,
        header: RequestHeader,
        request: RequestKind,
    },
    /// ApiVersions of a version outside `supported`: KIP-511 says answer it with this v0 response
    /// (UNSUPPORTED_VERSION and the table) so the client can pick a version both sides know.
    UnknownApiVersions(BytesMut),
}

/// Decodes a request frame, checking its API and version against `supported`. Decoder panics on
/// hostile input are caught and reported as a malformed request.
pub fn decode_request(mut frame: Bytes, supported: &[ApiSpec]) -> Result<Decoded, RequestError> {
    if frame.len() < 8 {
        return Err(RequestError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(raw_key).map_err(|_| RequestError::UnknownApi(raw_key))?;
    let range = supported.iter().find(|s| s.key == api).map(|s| s.versions);
    if !range.is_some_and(|r| version >= r.min && version <= r.max) {
        if api == ApiKey::ApiVersions {
            let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let header = ResponseHeader::default().with_correlation_id(correlation_id);
            let body = api_versions::unsupported_version_response_for(supported);
            return encode_response(api, 0, &header, &ResponseKind::ApiVersions(body)).map(Decoded::UnknownApiVersions);
        }
        return Err(RequestError::UnsupportedVersion {
            api,
            version,
            supported: range.map(|r| r.to_string()).unwrap_or_else(|| "none".into()),
        });
    }
    let malformed = |reason: String| RequestError::Malformed { api, version, reason };
    let (header, request) = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
            .map_err(|e| malformed(format!("header: {e}")))?;
        let request = RequestKind::decode(api, &mut frame, version).map_err(|e| malformed(e.to_string()))?;
        Ok::<_, RequestError>((header, request))
    }))
    .map_err(|_| malformed("the decoder rejected it".into()))??;
    Ok(Decoded::Request {
        api,
        version,
        header,
        request,
    })
}

/// Encodes a response frame (length prefix, header of the right version, body).
pub fn encode_response(
    api: ApiKey,
    version: i16,
    header: &ResponseHeader,
    body: &ResponseKind,
) -> Result<BytesMut, RequestError> {
    let failed = |e: anyhow::Error| RequestError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let header_version = api.response_header_version(version);
    let body_size = match body {
        // Fetch responses can be large: size the buffer once instead of growing it.
        ResponseKind::Fetch(r) => r.compute_size(version).unwrap_or(0),
        _ => 256,
    };
    let mut buf = start_frame(header.compute_size(header_version).map_err(failed)? + body_size);
    header.encode(&mut buf, header_version).map_err(failed)?;
    body.encode(&mut buf, version).map_err(failed)?;
    finish_frame(&mut buf);
    Ok(buf)
}
