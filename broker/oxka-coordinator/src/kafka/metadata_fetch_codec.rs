//! MetadataFetch's wire format (oxka's own API, key 30000; the long-poll itself is `metadata_fetch`):
//! `MetadataFetchRequest` and `ImageUpdate`, and their frames. Shared by the coordinator that answers
//! and the broker that asks (`cluster::remote`); depends on nothing but `ClusterImage`.
//!
//! Wire format (big-endian), framed like Kafka so it shares `clientPort`:
//! - request: `i32 size`, `i16 api_key = 30000`, `i16 api_version = 0`, `i32 correlation_id`,
//!   `client_id` (Kafka nullable STRING: `i16` length, -1 for null), then `MetadataFetchRequest` as JSON;
//! - response: `i32 size`, `i32 correlation_id`, then `ImageUpdate` as JSON.

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::cluster_image::ClusterImage;
use crate::image_delta::ImageDelta;

pub const API_KEY: i16 = 30000;
pub const API_VERSION: i16 = 0;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataFetchRequest {
    /// The offset of the image the broker has (0 = none).
    pub after: u64,
    pub max_wait_ms: u64,
    /// Whether the broker takes an `ImageDelta` from `after` instead of the whole image. Brokers
    /// from before deltas leave it out (false) and keep getting whole images.
    #[serde(default)]
    pub deltas: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUpdate {
    /// The answering member's applied log index (0 = nothing applied).
    pub offset: u64,
    /// The image at `offset`, when `offset > after` and no delta is sent.
    pub image: Option<Arc<ClusterImage>>,
    /// What turns the image at `after` into the one at `offset`, when `offset > after`, the broker
    /// takes deltas and this member's change log reaches back to `after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<ImageDelta>,
}

/// A full request frame, with its 4-byte length prefix.
pub fn encode_request(correlation_id: i32, client_id: &str, request: &MetadataFetchRequest) -> BytesMut {
    let body = serde_json::to_vec(request).expect("a MetadataFetchRequest serializes");
    let client = client_id.as_bytes();
    let client_len = client.len().min(i16::MAX as usize);
    let size = 2 + 2 + 4 + 2 + client_len + body.len();
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    buf.put_i16(API_KEY);
    buf.put_i16(API_VERSION);
    buf.put_i32(correlation_id);
    buf.put_i16(client_len as i16);
    buf.put_slice(&client[..client_len]);
    buf.put_slice(&body);
    buf
}

/// Decodes a request frame body (without the length prefix) into its correlation id and request.
pub fn decode_request(frame_body: &[u8]) -> Result<(i32, MetadataFetchRequest), String> {
    let mut rest = frame_body;
    let api_key = take_i16(&mut rest, "api key")?;
    if api_key != API_KEY {
        return Err(format!("API key {api_key} is not MetadataFetch ({API_KEY})"));
    }
    let version = take_i16(&mut rest, "api version")?;
    if version != API_VERSION {
        return Err(format!(
            "MetadataFetch version {version} is not supported (supported: {API_VERSION})"
        ));
    }
    let correlation_id = take_i32(&mut rest, "correlation id")?;
    let client_len = take_i16(&mut rest, "client id length")?;
    if client_len > 0 {
        let len = client_len as usize;
        if rest.len() < len {
            return Err(format!(
                "MetadataFetch request is truncated: client id of {len} bytes, {} left",
                rest.len()
            ));
        }
        rest = &rest[len..];
    } else if client_len < -1 {
        return Err(format!("MetadataFetch request has a client id length of {client_len}"));
    }
    let request =
        serde_json::from_slice(rest).map_err(|e| format!("MetadataFetch request body is not valid JSON: {e}"))?;
    Ok((correlation_id, request))
}

/// A full response frame, with its 4-byte length prefix.
pub fn encode_response(correlation_id: i32, update: &ImageUpdate) -> BytesMut {
    let body = serde_json::to_vec(update).expect("an ImageUpdate serializes");
    let mut buf = BytesMut::with_capacity(8 + body.len());
    buf.put_i32((4 + body.len()) as i32);
    buf.put_i32(correlation_id);
    buf.put_slice(&body);
    buf
}

/// Decodes a response frame body (without the length prefix) into its correlation id and update.
pub fn decode_response(frame_body: &[u8]) -> Result<(i32, ImageUpdate), String> {
    let mut rest = frame_body;
    let correlation_id = take_i32(&mut rest, "correlation id")?;
    let update =
        serde_json::from_slice(rest).map_err(|e| format!("MetadataFetch response body is not valid JSON: {e}"))?;
    Ok((correlation_id, update))
}

fn take_i16(rest: &mut &[u8], what: &str) -> Result<i16, String> {
    let (head, tail) = split(rest, 2, what)?;
    *rest = tail;
    Ok(i16::from_be_bytes([head[0], head[1]]))
}

fn take_i32(rest: &mut &[u8], what: &str) -> Result<i32, String> {
    let (head, tail) = split(rest, 4, what)?;
    *rest = tail;
    Ok(i32::from_be_bytes([head[0], head[1], head[2], head[3]]))
}

fn split<'a>(rest: &'a [u8], n: usize, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    if rest.len() < n {
        return Err(format!(
            "MetadataFetch frame is truncated: {what} needs {n} bytes, {} left",
            rest.len()
        ));
    }
    Ok(rest.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let request = MetadataFetchRequest {
            after: 42,
            max_wait_ms: 500,
            deltas: true,
        };
        let frame = encode_request(7, "broker-3", &request);
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(size as usize, frame.len() - 4);
        assert_eq!(i16::from_be_bytes([frame[4], frame[5]]), API_KEY);
        assert_eq!(decode_request(&frame[4..]).unwrap(), (7, request.clone()));
        // A null client id (length -1) is accepted too.
        let mut null_client = frame[4..12].to_vec();
        null_client.extend_from_slice(&(-1i16).to_be_bytes());
        null_client.extend_from_slice(&serde_json::to_vec(&request).unwrap());
        assert_eq!(decode_request(&null_client).unwrap(), (7, request));

        let mut image = ClusterImage {
            cluster_id: "c".into(),
            ..Default::default()
        };
        image.next_producer_id = 3000;
        for update in [
            ImageUpdate {
                offset: 9,
                image: Some(Arc::new(image)),
                delta: None,
            },
            ImageUpdate {
                offset: 4,
                image: None,
                delta: None,
            },
            ImageUpdate {
                offset: 12,
                image: None,
                delta: Some(ImageDelta {
                    deleted_topics: vec!["gone".into()],
                    ..Default::default()
                }),
            },
        ] {
            let frame = encode_response(-5, &update);
            assert_eq!(
                i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
                frame.len() - 4
            );
            assert_eq!(decode_response(&frame[4..]).unwrap(), (-5, update));
        }
    }

    #[test]
    fn malformed_frames_are_refused_with_a_reason() {
        let frame = encode_request(
            1,
            "b",
            &MetadataFetchRequest {
                after: 0,
                max_wait_ms: 0,
                deltas: false,
            },
        );
        assert!(decode_request(&frame[4..7]).unwrap_err().contains("truncated"));
        // A request from a broker that predates deltas has no `deltas` field: it gets whole images.
        let mut old = frame[4..12].to_vec();
        old.extend_from_slice(&(-1i16).to_be_bytes());
        old.extend_from_slice(br#"{"after":3,"max_wait_ms":10}"#);
        assert!(!decode_request(&old).unwrap().1.deltas);
        let mut other_version = frame[4..].to_vec();
        other_version[3] = 1;
        assert!(decode_request(&other_version).unwrap_err().contains("version 1"));
        let mut bad_body = frame[4..].to_vec();
        bad_body.truncate(bad_body.len() - 1);
        assert!(decode_request(&bad_body).unwrap_err().contains("JSON"));
        assert!(decode_response(&[0, 0]).unwrap_err().contains("truncated"));
    }
}
