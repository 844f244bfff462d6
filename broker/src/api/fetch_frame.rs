//! A Fetch response frame whose record data stays in the segment files: the frame holds every byte
//! but the records (length prefix, response header, topic and partition fields, each partition's
//! records length), and names the file regions to send between them, in wire order. A plaintext
//! connection sends those regions with sendfile (`runtime::sendfile`); the bytes on the wire are
//! exactly those of the copying path (`codec::encode_response` with the records read into memory).
//!
//! How the record fields are found without a second encoder of the Fetch schema: the response is
//! encoded twice by `kafka-protocol`, once with those partitions' records null and once empty. Both
//! encodings have the same length (a null and an empty records field take as many bytes: one varint
//! byte in flexible versions, an INT32 before) and differ only at those fields. Each difference is
//! replaced with the length of the partition's region, and the region is sent right after it.

use std::fs::File;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader, ResponseKind};

use crate::protocol::codec;
use crate::protocol::RequestError;

/// First version whose records field is COMPACT_RECORDS (a varint length); INT32 before.
const FIRST_FLEXIBLE_VERSION: i16 = 12;

/// Bytes of one segment file to send as a partition's records: `len` bytes from `position`. The file
/// is held open, so a segment deleted meanwhile stays readable.
#[derive(Clone, Debug)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

/// A partition's records to send from a file: its (topic, partition) indexes in the response.
#[derive(Clone, Debug)]
pub struct PartitionRegion {
    pub topic: usize,
    pub partition: usize,
    pub region: FileRegion,
}

/// The encoded frame and, for each region, the offset in the frame where its bytes go (ascending).
/// The frame's length prefix counts the regions.
pub struct ZeroCopyFrame {
    pub frame: BytesMut,
    pub regions: Vec<(usize, FileRegion)>,
}

/// Encodes `response` with the records of `regions` (in wire order, each naming a partition whose
/// records are empty in `response`) left out of the frame.
pub fn encode(
    version: i16,
    correlation_id: i32,
    mut response: FetchResponse,
    regions: Vec<PartitionRegion>,
) -> Result<ZeroCopyFrame, RequestError> {
    let failed = |reason: String| RequestError::Encode {
        api: ApiKey::Fetch,
        version,
        reason,
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let set_records = |response: &mut FetchResponse, records: Option<Bytes>| -> Result<(), RequestError> {
        for r in &regions {
            let partition = response
                .responses
                .get_mut(r.topic)
                .and_then(|t| t.partitions.get_mut(r.partition))
                .ok_or_else(|| failed(format!("no partition {}/{} in the response", r.topic, r.partition)))?;
            partition.records = records.clone();
        }
        Ok(())
    };
    set_records(&mut response, None)?;
    let mut body = ResponseKind::Fetch(response);
    let null = codec::encode_response(ApiKey::Fetch, version, &header, &body)?;
    if let ResponseKind::Fetch(response) = &mut body {
        set_records(response, Some(Bytes::new()))?;
    }
    let empty = codec::encode_response(ApiKey::Fetch, version, &header, &body)?;
    let fields = record_fields(&null, &empty, version);
    if fields.len() != regions.len() || null.len() != empty.len() {
        return Err(failed(format!(
            "found {} records fields for {} file regions",
            fields.len(),
            regions.len()
        )));
    }
    let width = field_width(version);
    let mut frame = BytesMut::with_capacity(empty.len() + 5 * regions.len());
    let mut placed = Vec::with_capacity(regions.len());
    let mut at = 0;
    let mut total = empty.len() - 4;
    for (field, r) in fields.into_iter().zip(regions) {
        frame.put_slice(&empty[at..field]);
        let before = frame.len();
        if version >= FIRST_FLEXIBLE_VERSION {
            put_unsigned_varint(&mut frame, r.region.len as u64 + 1);
        } else {
            let len = i32::try_from(r.region.len).map_err(|_| failed("a records region over 2 GiB".into()))?;
            frame.put_i32(len);
        }
        total = total - width + (frame.len() - before) + r.region.len;
        placed.push((frame.len(), r.region));
        at = field + width;
    }
    frame.put_slice(&empty[at..]);
    let total = i32::try_from(total).map_err(|_| failed("a response over 2 GiB".into()))?;
    frame[..4].copy_from_slice(&total.to_be_bytes());
    Ok(ZeroCopyFrame { frame, regions: placed })
}

/// Bytes a null or empty records field takes.
fn field_width(version: i16) -> usize {
    if version >= FIRST_FLEXIBLE_VERSION {
        1
    } else {
        4
    }
}

/// Where the two encodings differ: the start of each records field left for a file region.
fn record_fields(null: &[u8], empty: &[u8], version: i16) -> Vec<usize> {
    let width = field_width(version);
    let mut fields = Vec::new();
    let mut i = 0;
    while i < null.len().min(empty.len()) {
        if null[i] != empty[i] {
            fields.push(i);
            i += width;
        } else {
            i += 1;
        }
    }
    fields
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    /// A response like the fetch handler builds for `version`: several topics (by name before v13, by
    /// id from v13), partitions with records, without (an error, nothing new) and with aborted
    /// transactions.
    fn response(records: &[Vec<u8>], version: i16) -> FetchResponse {
        let partition = |index: i32, records: Option<&Vec<u8>>| {
            PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(1_000_000 + index as i64)
                .with_last_stable_offset(999_999)
                .with_log_start_offset(17)
                .with_records(Some(records.map(|r| Bytes::from(r.clone())).unwrap_or_default()))
        };
        let topic = |name: &str, id: u128, partitions| {
            let topic = FetchableTopicResponse::default().with_partitions(partitions);
            if version >= 13 {
                topic.with_topic_id(uuid::Uuid::from_u128(id))
            } else {
                topic.with_topic(TopicName(StrBytes::from_string(name.to_string())))
            }
        };
        let aborted = vec![AbortedTransaction::default()
            .with_producer_id(ProducerId(42))
            .with_first_offset(7)];
        let session_id = if version >= 7 { 3 } else { 0 };
        FetchResponse::default()
            .with_session_id(session_id)
            .with_responses(vec![
                topic(
                    "orders",
                    1,
                    vec![
                        partition(0, Some(&records[0])),
                        partition(1, None).with_error_code(1),
                        partition(2, Some(&records[1])).with_aborted_transactions(Some(aborted)),
                    ],
                ),
                topic("empty", 2, vec![partition(0, None)]),
                topic("clicks", 3, vec![partition(5, Some(&records[2]))]),
            ])
    }

    /// The frame with each region's bytes read from its file: what the socket carries.
    fn wire_bytes(frame: &ZeroCopyFrame) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for (offset, region) in &frame.regions {
            out.extend_from_slice(&frame.frame[at..*offset]);
            let mut buf = vec![0u8; region.len];
            region.file.read_exact_at(&mut buf, region.position).unwrap();
            out.extend_from_slice(&buf);
            at = *offset;
        }
        out.extend_from_slice(&frame.frame[at..]);
        out
    }

    #[test]
    fn header_and_regions_carry_exactly_the_bytes_of_the_copying_path() {
        // Sizes either side of the varint steps (127/128 bytes, 16383/16384) and a large one.
        let records: Vec<Vec<u8>> = [126usize, 16_384, 300_000]
            .iter()
            .enumerate()
            .map(|(i, len)| (0..*len).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"segment bytes before the records").unwrap();
        let mut positions = Vec::new();
        for r in &records {
            positions.push(file.metadata().unwrap().len());
            file.write_all(r).unwrap();
        }
        let file = Arc::new(file);
        let placed = [(0, 0), (0, 2), (2, 0)];
        for version in 4..=17 {
            let copying = codec::encode_response(
                ApiKey::Fetch,
                version,
                &ResponseHeader::default().with_correlation_id(77),
                &ResponseKind::Fetch(response(&records, version)),
            )
            .unwrap();
            let mut without = response(&records, version);
            let regions = placed
                .iter()
                .zip(&records)
                .zip(&positions)
                .map(|((&(topic, partition), r), &position)| {
                    without.responses[topic].partitions[partition].records = Some(Bytes::new());
                    PartitionRegion {
                        topic,
                        partition,
                        region: FileRegion {
                            file: file.clone(),
                            position,
                            len: r.len(),
                        },
                    }
                })
                .collect();
            let frame = encode(version, 77, without, regions).unwrap();
            assert_eq!(frame.regions.len(), 3);
            assert!(frame.frame.len() < 1000, "v{version}: records left out of the frame");
            assert!(wire_bytes(&frame) == copying[..], "v{version}: the bytes differ");
        }
    }

    #[test]
    fn a_response_without_regions_is_the_plain_encoding() {
        let records = vec![vec![1u8; 10], vec![2u8; 20], vec![3u8; 30]];
        let copying = codec::encode_response(
            ApiKey::Fetch,
            16,
            &ResponseHeader::default().with_correlation_id(5),
            &ResponseKind::Fetch(response(&records, 16)),
        )
        .unwrap();
        let frame = encode(16, 5, response(&records, 16), Vec::new()).unwrap();
        assert!(frame.regions.is_empty());
        assert_eq!(frame.frame, copying);
    }

    #[test]
    fn unsigned_varints_are_little_endian_groups_of_seven_bits() {
        for (value, bytes) in [
            (0u64, vec![0u8]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (300_001, vec![0xe1, 0xa7, 0x12]),
        ] {
            let mut ours = BytesMut::new();
            put_unsigned_varint(&mut ours, value);
            assert_eq!(&ours[..], &bytes[..], "{value}");
        }
    }
}
