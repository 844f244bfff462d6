//! Zero-copy fetch (issue 15): on a plaintext listener the broker sends record data from the segment
//! files with sendfile. Real clients read through that path, and `oxka_fetch_zero_copy_bytes` proves
//! they did: kcat, kafka-python with a per-partition limit far below a batch (the first batch whole,
//! trailing partial batches for the others, as Kafka sends them), Apache Kafka's console consumer,
//! across partitions, many segments, compressed and uncompressed batches, and read_committed with
//! aborted transactions. Pipelined fetches on one connection come back whole and in order. With
//! `fetch.zero.copy.enable=false` the copying path serves the same records and sendfile sends nothing.
mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::raw::{read_frame, request};
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;

const TOPIC: &str = "zc";
const PARTITIONS: u32 = 3;
const RECORDS: usize = 6000;
const ZERO_COPY_BYTES: &str = "oxka_fetch_zero_copy_bytes_total";

/// Writes `RECORDS` records of about 200 bytes (`v000123-xxx...`) to `TOPIC`: the first half
/// uncompressed, the second lz4-compressed, so both kinds of batches are read.
fn produce_records(broker: &Broker) {
    let script = r#"
import os
from confluent_kafka import Producer
def delivered(error, _message):
    if error:
        fail(f"delivery failed: {error}")
n = int(os.environ["COUNT"])
for codec, numbers in (("none", range(0, n // 2)), ("lz4", range(n // 2, n))):
    # Batches of at most 16 KiB: a batch larger than a segment is refused (RECORD_LIST_TOO_LARGE).
    p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "compression.type": codec, "acks": "all",
                  "batch.size": 16384})
    for i in numbers:
        p.produce(os.environ["TOPIC"], value=("v%06d-" % i) + "x" * 192, partition=i % 3, on_delivery=delivered)
        if i % 500 == 0:
            p.poll(0)
    if p.flush(60) != 0:
        fail("records left unacknowledged")
"#;
    python_env_ok(
        script,
        &broker.bootstrap(),
        &[("TOPIC", TOPIC), ("COUNT", &RECORDS.to_string())],
    );
}

/// The record numbers in `lines` (`v000123-...` anywhere in a line), checked to be each of
/// `0..RECORDS` exactly once.
fn expect_every_record(client: &str, lines: &str) {
    let numbers: Vec<usize> = lines
        .lines()
        .filter_map(|l| l.find('v').and_then(|i| l.get(i + 1..i + 7)))
        .filter_map(|n| n.parse().ok())
        .collect();
    let distinct: BTreeSet<usize> = numbers.iter().copied().collect();
    assert_eq!(numbers.len(), RECORDS, "{client}: {} records read", numbers.len());
    assert_eq!(distinct.len(), RECORDS, "{client}: duplicates");
    assert_eq!(distinct.last(), Some(&(RECORDS - 1)), "{client}: wrong numbers");
}

fn zero_copy_bytes(broker: &Broker) -> f64 {
    metric_value(broker.metrics_port(), ZERO_COPY_BYTES)
}

fn log_bytes(broker: &Broker) -> u64 {
    (0..PARTITIONS as i32)
        .flat_map(|p| broker.segment_files(TOPIC, p))
        .filter(|f| f.extension().is_some_and(|e| e == "log"))
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn kcat_read(broker: &Broker) -> String {
    let out = kcat_timeout(
        &[
            "-C",
            "-b",
            &broker.bootstrap(),
            "-t",
            TOPIC,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o %s\n",
            "-X",
            "check.crcs=true",
        ],
        b"",
        Duration::from_secs(120),
    );
    expect_success("kcat -C", &out)
}

fn kafka_python_read(broker: &Broker) -> String {
    // 1 KiB per partition: far below a batch (up to 16 KiB), so every response but the first
    // partition's is a trailing partial batch the client drops and asks for again.
    let script = r#"
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest",
                  max_partition_fetch_bytes=1024, fetch_max_bytes=65536, check_crcs=True,
                  consumer_timeout_ms=20000)
parts = [TopicPartition(os.environ["TOPIC"], p) for p in range(3)]
c.assign(parts)
c.seek_to_beginning()
n = 0
for m in c:
    print(m.partition, m.offset, m.value.decode())
    n += 1
    if n == int(os.environ["COUNT"]):
        break
c.close()
"#;
    python_env_ok(
        script,
        &broker.bootstrap(),
        &[("TOPIC", TOPIC), ("COUNT", &RECORDS.to_string())],
    )
}

fn console_consumer_read(broker: &Broker) -> String {
    let max = RECORDS.to_string();
    let out = kafka_tool_timeout(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            TOPIC,
            "--from-beginning",
            "--max-messages",
            &max,
            "--timeout-ms",
            "60000",
            "--consumer-property",
            "max.partition.fetch.bytes=8192",
        ],
        180,
    );
    expect_success("console-consumer", &out)
}

#[test]
fn clients_read_many_segments_and_partitions_through_sendfile() {
    let broker = Broker::start(&[("log.segment.bytes", "65536")]);
    create_topic(&broker, TOPIC, PARTITIONS);
    produce_records(&broker);
    let segments = (0..PARTITIONS as i32)
        .map(|p| {
            broker
                .segment_files(TOPIC, p)
                .iter()
                .filter(|f| f.to_string_lossy().ends_with(".log"))
                .count()
        })
        .min()
        .unwrap();
    assert!(
        segments >= 4,
        "each partition should span several segments, the smallest has {segments}"
    );
    let on_disk = log_bytes(&broker) as f64;

    let before = zero_copy_bytes(&broker);
    expect_every_record("kcat", &kcat_read(&broker));
    let after_kcat = zero_copy_bytes(&broker);
    assert!(
        after_kcat - before >= on_disk * 0.99,
        "kcat read {on_disk} bytes of logs but sendfile sent {}",
        after_kcat - before
    );

    expect_every_record("kafka-python", &kafka_python_read(&broker));
    let after_python = zero_copy_bytes(&broker);
    assert!(
        after_python - after_kcat >= on_disk * 0.99,
        "kafka-python's fetches did not go through sendfile"
    );

    expect_every_record("kafka-console-consumer", &console_consumer_read(&broker));
    assert!(
        zero_copy_bytes(&broker) - after_python >= on_disk * 0.99,
        "the Java consumer's fetches did not go through sendfile"
    );
    let log = broker.log_text();
    assert!(!log.contains("mid-response"), "a response was cut short:\n{log}");
}

#[test]
fn read_committed_skips_aborted_transactions_through_sendfile() {
    let broker = Broker::start(&[("log.segment.bytes", "16384")]);
    create_topic(&broker, "zc-txn", 2);
    let script = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": "zc-txn", "linger.ms": 5, "batch.size": 8192})
p.init_transactions(30)
for t in range(6):
    p.begin_transaction()
    for i in range(200):
        p.produce("zc-txn", value=f"t{t}-{i}-" + "y" * 100, partition=i % 2)
    # Flushed first, so that the aborted records are in the log (an abort purges unsent ones).
    p.flush(30)
    if t % 2 == 0:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
"#;
    python_ok(script, &broker.bootstrap());
    let before = zero_copy_bytes(&broker);
    let committed = librdkafka_values(&broker.bootstrap(), "zc-txn", 2, "read_committed", 600);
    assert_eq!(committed.len(), 600, "read_committed: 3 committed transactions of 200");
    assert!(
        committed
            .iter()
            .all(|v| ["t0-", "t2-", "t4-"].iter().any(|t| v.starts_with(t))),
        "an aborted record reached a read_committed consumer"
    );
    let script = r#"
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest",
                  isolation_level="read_committed", consumer_timeout_ms=10000)
c.assign([TopicPartition("zc-txn", p) for p in range(2)])
values = [m.value.decode() for m in c]
aborted = [v for v in values if v.split("-")[0] in ("t1", "t3", "t5")]
if len(values) != 600 or aborted:
    fail(f"kafka-python read_committed: {len(values)} records, {len(aborted)} aborted")
print("ok")
"#;
    python_ok(script, &broker.bootstrap());
    let all = librdkafka_values(&broker.bootstrap(), "zc-txn", 2, "read_uncommitted", 1200);
    assert_eq!(all.len(), 1200, "read_uncommitted sees aborted records too");
    assert!(
        zero_copy_bytes(&broker) - before > 2.0 * 1200.0 * 100.0,
        "not read through sendfile"
    );
}

/// The whole batches of a partition's records (a trailing partial batch, which Kafka may send when
/// the partition's limit ends inside a batch, is left out, as clients do).
fn whole_batches(mut records: Bytes) -> impl Iterator<Item = Bytes> {
    std::iter::from_fn(move || {
        if records.len() < 12 {
            return None;
        }
        let len = 12 + i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
        (records.len() >= len).then(|| records.split_to(len))
    })
}

fn fetch(partition: i32, offset: i64) -> FetchRequest {
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(32 * 1024)]);
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1024 * 1024)
        .with_topics(vec![topic])
}

#[test]
fn pipelined_fetches_are_answered_whole_and_in_order() {
    let broker = Broker::start(&[("log.segment.bytes", "65536")]);
    create_topic(&broker, TOPIC, PARTITIONS);
    produce_records(&broker);
    let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // Fetch v11 (INT32 records length) and v12 (flexible: varint records length) in turn, several
    // offsets and partitions, then an ApiVersions: all written at once, before any answer is read.
    let version_of = |i: usize| 11 + (i % 2) as i16;
    let wanted: Vec<(i32, i64)> = (0..24).map(|i| (i % 3, (i as i64 / 3) * 150)).collect();
    let mut bytes = Vec::new();
    for (i, (partition, offset)) in wanted.iter().enumerate() {
        bytes.extend(request(
            ApiKey::Fetch,
            version_of(i),
            i as i32,
            &fetch(*partition, *offset),
        ));
    }
    bytes.extend(request(ApiKey::ApiVersions, 3, 1000, &ApiVersionsRequest::default()));
    stream.write_all(&bytes).unwrap();
    for (i, (partition, offset)) in wanted.iter().enumerate() {
        let version = version_of(i);
        let mut body = read_frame(&mut stream);
        let header = ResponseHeader::decode(&mut body, ApiKey::Fetch.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, i as i32, "responses out of order");
        let response = FetchResponse::decode(&mut body, version).unwrap();
        assert!(body.is_empty(), "bytes after the response");
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.partition_index, *partition);
        assert_eq!(data.error_code, 0);
        let records = data.records.clone().expect("records");
        assert!(!records.is_empty(), "no records for {partition}@{offset}");
        let batches: Vec<_> = whole_batches(records)
            .map(|mut b| RecordBatchDecoder::decode(&mut b).unwrap())
            .collect();
        let first = &batches[0].records;
        assert!(first.first().unwrap().offset <= *offset && first.last().unwrap().offset >= *offset);
        for record in batches.iter().flat_map(|b| &b.records) {
            let value = record.value.as_ref().unwrap();
            let n: usize = std::str::from_utf8(&value[1..7]).unwrap().parse().unwrap();
            assert_eq!(n % 3, *partition as usize, "a record of another partition");
        }
    }
    let mut body = read_frame(&mut stream);
    let header = ResponseHeader::decode(&mut body, ApiKey::ApiVersions.response_header_version(3)).unwrap();
    assert_eq!(header.correlation_id, 1000);
    ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert!(zero_copy_bytes(&broker) > 0.0);
}

#[test]
fn with_zero_copy_off_the_copying_path_serves_the_same_records() {
    let broker = Broker::start(&[("log.segment.bytes", "65536"), ("fetch.zero.copy.enable", "false")]);
    create_topic(&broker, TOPIC, PARTITIONS);
    produce_records(&broker);
    expect_every_record("kcat", &kcat_read(&broker));
    assert_eq!(zero_copy_bytes(&broker), 0.0);
}

/// A segment truncated while its region is being sent (here by hand; in a broker, by a replica
/// truncating its log): the frame's length is already on the wire, so the broker closes the
/// connection with a warning instead of sending a frame shorter than it announced, and goes on
/// serving other connections. The client sees a disconnect, never a malformed response.
#[test]
fn a_segment_truncated_under_a_pending_send_closes_the_connection() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "zc-cut", 1);
    let script = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "batch.size": 1048576, "acks": "all"})
for i in range(400):
    p.produce("zc-cut", value=b"z" * 20000, partition=0)
if p.flush(60) != 0:
    fail("records left unacknowledged")
"#;
    python_ok(script, &broker.bootstrap());
    // A client that asks for 8 MB and does not read yet: the broker's send waits on a full socket.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    let address: std::net::SocketAddr = broker.bootstrap().parse().unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request_body = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(16 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("zc-cut")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(16 << 20)])]);
    stream.write_all(&request(ApiKey::Fetch, 11, 1, &request_body)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let segment = &broker.segment_files("zc-cut", 0)[0];
    let cut = 1 << 20;
    std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let announced = i32::from_be_bytes(len) as usize;
    assert!(announced > 7 << 20, "the response announced {announced} bytes");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("the connection closes");
    assert!(
        got.len() < announced,
        "the whole response came although the segment was cut"
    );
    assert!(
        got.len() < cut as usize + 4096,
        "bytes beyond the cut arrived: {}",
        got.len()
    );
    wait_for("the broker's warning", Duration::from_secs(10), || {
        broker
            .log_text()
            .contains("segment file truncated under a fetch response")
    });
    // Other connections are still served.
    let out = kcat(&["-L", "-b", &broker.bootstrap(), "-t", "zc-cut"], b"");
    expect_success("kcat -L after the cut", &out);
}
