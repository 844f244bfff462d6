//! `oxka tool dump-log` (kafka-dump-log.sh, Kafka's DumpLogSegments) over `.log` segment files,
//! offline: "Dumping <file>", "Log starting offset: N", one line per batch (`baseOffset: ...
//! position: ... crc: ... isvalid: ...`, the CRC-32C checked here), and with `--deep-iteration` (or
//! `--print-data-log`) one `| offset: ...` line per record, with `key:`/`payload:` as UTF-8 text
//! when `--print-data-log`. Trailing bytes that are no whole batch are reported as Kafka's tool does,
//! and non-consecutive offsets listed on stderr. Index and snapshot files are not dumped.

use std::fs;
use std::path::PathBuf;

use bytes::Bytes;
use clap::Parser;
use kafka_protocol::records::RecordBatchDecoder;

use crate::error::ToolError;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-dump-log.sh",
    about = "Print the batches and records of log segment files (Kafka's kafka-dump-log.sh)"
)]
pub struct Args {
    /// REQUIRED: comma-separated .log segment files.
    #[arg(long)]
    files: String,
    /// Print each record's key and value (implies --deep-iteration).
    #[arg(long = "print-data-log")]
    print_data_log: bool,
    /// Print every record, not only the batches.
    #[arg(long = "deep-iteration")]
    deep_iteration: bool,
    /// Leave out each record's metadata (offset, timestamp, sizes), keeping key and payload.
    #[arg(long = "skip-record-metadata")]
    skip_record_metadata: bool,
    /// Read at most this many bytes of each file.
    #[arg(long = "max-bytes")]
    max_bytes: Option<usize>,
}

/// Bytes of a v2 batch header up to its records count.
const HEADER: usize = 61;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// A v2 batch's header, as Kafka's `DefaultRecordBatch` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchHeader {
    base_offset: i64,
    size: usize,
    leader_epoch: i32,
    magic: i8,
    crc: u32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
}

impl BatchHeader {
    fn parse(b: &[u8]) -> BatchHeader {
        let i64_at = |o: usize| i64::from_be_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let i32_at = |o: usize| i32::from_be_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let i16_at = |o: usize| i16::from_be_bytes(b[o..o + 2].try_into().expect("2 bytes"));
        BatchHeader {
            base_offset: i64_at(0),
            size: 12 + i32_at(8).max(0) as usize,
            leader_epoch: i32_at(12),
            magic: b[16] as i8,
            crc: u32::from_be_bytes(b[17..21].try_into().expect("4 bytes")),
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            count: i32_at(57),
        }
    }

    fn timestamp_type(&self) -> &'static str {
        if self.attributes & 0x08 != 0 {
            "LogAppendTime"
        } else {
            "CreateTime"
        }
    }

    fn sequence_at(&self, delta: i32) -> i32 {
        if self.base_sequence < 0 {
            -1
        } else {
            // Kafka's incrementSequence: wraps past Integer.MAX_VALUE to 0.
            let next = self.base_sequence as i64 + delta as i64;
            (next % (i32::MAX as i64 + 1)) as i32
        }
    }

    fn line(&self, position: u64, valid: bool) -> String {
        let control = self.attributes & 0x20 != 0;
        let horizon = if self.attributes & 0x40 != 0 {
            format!("OptionalLong[{}]", self.base_timestamp)
        } else {
            "OptionalLong.empty".to_string()
        };
        format!(
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {control} deleteHorizonMs: {horizon} position: {position} {}: {} size: {} magic: {} compresscodec: {} crc: {} isvalid: {valid}",
            self.base_offset,
            self.base_offset + self.last_offset_delta as i64,
            self.count,
            self.base_sequence,
            self.sequence_at(self.last_offset_delta),
            self.producer_id,
            self.producer_epoch,
            self.leader_epoch,
            self.attributes & 0x10 != 0,
            self.timestamp_type(),
            self.max_timestamp,
            self.size,
            self.magic,
            CODECS.get((self.attributes & 0x07) as usize).unwrap_or(&"unknown"),
            self.crc,
        )
    }
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    let mut failed = false;
    for name in args.files.split(',').filter(|f| !f.is_empty()) {
        println!("Dumping {name}");
        let path = PathBuf::from(name);
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !file_name.ends_with(".log") {
            eprintln!("Ignoring {name}: only .log segment files are dumped natively; use Kafka's tool for index, time index, snapshot and transaction index files");
            continue;
        }
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("cannot read {name}: {e}");
                failed = true;
                continue;
            }
        };
        let start: i64 = file_name.split('.').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        println!("Log starting offset: {start}");
        let limit = args.max_bytes.unwrap_or(usize::MAX).min(data.len());
        let deep = args.deep_iteration || args.print_data_log;
        let (text, gaps) = dump(
            &data,
            limit,
            deep,
            args.print_data_log,
            args.skip_record_metadata,
            &file_name,
        );
        print!("{text}");
        if !gaps.is_empty() {
            eprintln!("Non-consecutive offsets in {}", absolute(&path));
            for (a, b) in gaps.iter().rev() {
                eprintln!("  {a} is followed by {b}");
            }
        }
    }
    if failed {
        Err(ToolError::Reported)
    } else {
        Ok(())
    }
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The dump of one segment's bytes (the first `limit`), and the non-consecutive offset pairs.
fn dump(
    data: &[u8],
    limit: usize,
    deep: bool,
    print_data: bool,
    skip_metadata: bool,
    file_name: &str,
) -> (String, Vec<(i64, i64)>) {
    let mut out = String::new();
    let mut gaps = Vec::new();
    let mut position = 0usize;
    let mut last_offset = -1i64;
    while position + HEADER <= limit {
        let header = BatchHeader::parse(&data[position..]);
        if header.size < HEADER || position + header.size > limit {
            break;
        }
        let batch = &data[position..position + header.size];
        if header.magic != 2 {
            // Kafka 4 writes v2 only; older message sets have another layout this tool does not read.
            out.push_str(&format!(
                "position: {position} size: {} magic: {}: message sets before v2 are not decoded natively\n",
                header.size, header.magic
            ));
            position += header.size;
            continue;
        }
        let valid = header.magic == 2 && crc32c::crc32c(&batch[21..]) == header.crc;
        out.push_str(&header.line(position as u64, valid));
        out.push('\n');
        if deep {
            let mut bytes = Bytes::copy_from_slice(batch);
            match RecordBatchDecoder::decode(&mut bytes) {
                Ok(set) => {
                    for record in set.records {
                        if last_offset != -1 && record.offset != last_offset + 1 {
                            gaps.push((last_offset, record.offset));
                        }
                        last_offset = record.offset;
                        out.push_str(&record_line(&header, &record, print_data, skip_metadata));
                        out.push('\n');
                    }
                }
                Err(e) => out.push_str(&format!("| (records of this batch do not decode: {e})\n")),
            }
        }
        position += header.size;
    }
    if limit == data.len() && position < data.len() {
        out.push_str(&format!(
            "Found {} invalid bytes at the end of {file_name}\n",
            data.len() - position
        ));
    }
    (out, gaps)
}

fn record_line(
    header: &BatchHeader,
    r: &kafka_protocol::records::Record,
    print_data: bool,
    skip_metadata: bool,
) -> String {
    let mut line = String::new();
    let mut prefix = "| ";
    if !skip_metadata {
        let timestamp = if header.attributes & 0x08 != 0 {
            header.max_timestamp
        } else {
            r.timestamp
        };
        let size = |b: &Option<Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        let keys: Vec<&str> = r.headers.keys().map(|k| k.as_str()).collect();
        line.push_str(&format!(
            "{prefix}offset: {} {}: {timestamp} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
            r.offset,
            header.timestamp_type(),
            size(&r.key),
            size(&r.value),
            header.sequence_at((r.offset - header.base_offset) as i32),
            keys.join(",")
        ));
        prefix = " ";
        if r.control {
            let kind = r
                .key
                .as_ref()
                .filter(|k| k.len() >= 4)
                .map(|k| i16::from_be_bytes([k[2], k[3]]));
            let epoch = r
                .value
                .as_ref()
                .filter(|v| v.len() >= 6)
                .map(|v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
            match (kind, epoch) {
                (Some(0), Some(e)) => line.push_str(&format!(" endTxnMarker: ABORT coordinatorEpoch: {e}")),
                (Some(1), Some(e)) => line.push_str(&format!(" endTxnMarker: COMMIT coordinatorEpoch: {e}")),
                (Some(k), _) => line.push_str(&format!(" controlType: UNKNOWN({k})")),
                _ => {}
            }
        }
    }
    if print_data && !r.control {
        if let Some(key) = &r.key {
            line.push_str(&format!("{prefix}key: {}", String::from_utf8_lossy(key)));
        }
        if let Some(value) = &r.value {
            line.push_str(&format!(" payload: {}", String::from_utf8_lossy(value)));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{compression, encode_batch, OutRecord};

    #[test]
    fn batches_and_records_print_as_kafkas_tool() {
        let records = [
            OutRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"hello")),
                headers: vec![("h".into(), None)],
            },
            OutRecord::default(),
        ];
        let mut data = encode_batch(&records, compression("none").unwrap(), 1700)
            .unwrap()
            .to_vec();
        let size = data.len();
        data.extend_from_slice(&[0, 0, 0]);
        let (text, gaps) = dump(&data, data.len(), true, true, false, "00000000000000000000.log");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: -1 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700 size: "),
            "{text}"
        );
        assert!(
            lines[0].ends_with(&format!(
                "size: {size} magic: 2 compresscodec: none crc: {} isvalid: true",
                u32::from_be_bytes(data[17..21].try_into().unwrap())
            )),
            "{text}"
        );
        assert_eq!(
            lines[1],
            "| offset: 0 CreateTime: 1700 keySize: 1 valueSize: 5 sequence: -1 headerKeys: [h] key: k payload: hello"
        );
        assert_eq!(
            lines[2],
            "| offset: 1 CreateTime: 1700 keySize: -1 valueSize: -1 sequence: -1 headerKeys: []"
        );
        assert_eq!(lines[3], "Found 3 invalid bytes at the end of 00000000000000000000.log");
        assert!(gaps.is_empty());
        data[40] ^= 1;
        let (text, _) = dump(&data, size, false, false, false, "x.log");
        assert!(text.trim_end().ends_with("isvalid: false"), "{text}");
    }
}
