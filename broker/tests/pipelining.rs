//! A producer's pipelined requests on one connection (Kafka's `max.in.flight.requests.per.connection`):
//! the broker appends each acks=all Produce while earlier ones still wait for their replicas, and must
//! still answer every request in the order it was sent, append in that order, and run any other request
//! only after everything sent before it. Checked on the wire against a three-broker cluster, with the
//! followers frozen so that the first requests are still waiting when the later ones arrive.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::cluster::*;
use common::raw;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

const PRODUCE_VERSION: i16 = 9;
const METADATA_VERSION: i16 = 12;
const RECORDS_PER_REQUEST: usize = 10;

fn produce(topic: &str, request: usize) -> ProduceRequest {
    let records: Vec<Record> = (0..RECORDS_PER_REQUEST)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 0,
            key: Some(Bytes::from(format!("k{request}"))),
            value: Some(Bytes::from(format!("r{request}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, &records, &options).unwrap();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(60_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.freeze()))])])
}

/// The partition's size on the leader's disk (DescribeLogDirs, on a connection of its own).
fn partition_size(address: &str, topic: &str) -> i64 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let version = 1;
    let request = DescribeLogDirsRequest::default().with_topics(None);
    stream
        .write_all(&raw::request(ApiKey::DescribeLogDirs, version, 0, &request))
        .unwrap();
    let mut body = raw::read_frame(&mut stream);
    ResponseHeader::decode(&mut body, ApiKey::DescribeLogDirs.response_header_version(version)).unwrap();
    let response = DescribeLogDirsResponse::decode(&mut body, version).unwrap();
    response
        .results
        .iter()
        .flat_map(|dir| dir.topics.iter())
        .filter(|t| t.name.as_str() == topic)
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.partition_size)
        .sum()
}

#[test]
fn pipelined_produce_requests_are_answered_in_order_and_appended_in_order() {
    let mut cluster = Cluster::start_with(Options {
        // The frozen followers leave the ISR after this long; the waiting requests then complete.
        broker_config: &[("replica.lag.time.max.ms", "6000")],
        ..Options::default()
    });
    let topic = "pipelined";
    cluster.create_topic(topic, 1, 3);
    let leader = cluster.wait_all_led(topic, 1)[&0];
    let followers: Vec<i32> = (1..=3).filter(|&b| b != leader).collect();

    // Freeze the followers: the first acks=all request cannot complete until they leave the ISR, so
    // every later request arrives while earlier ones are still waiting.
    for &f in &followers {
        cluster.broker(f).pause();
    }
    let mut stream = TcpStream::connect(cluster.broker(leader).bootstrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut sent = Vec::new();
    let mut kinds = Vec::new();
    for request in 0..12 {
        if request == 8 {
            // Any other request runs only after everything the client sent before it.
            let metadata = MetadataRequest::default().with_topics(None);
            sent.extend(raw::request(ApiKey::Metadata, METADATA_VERSION, request, &metadata));
            kinds.push(ApiKey::Metadata);
        } else {
            sent.extend(raw::request(
                ApiKey::Produce,
                PRODUCE_VERSION,
                request,
                &produce(topic, request as usize),
            ));
            kinds.push(ApiKey::Produce);
        }
    }
    let started = Instant::now();
    stream.write_all(&sent).unwrap();

    // While the first request still waits for its replicas, the seven Produce requests after it are
    // already appended (Kafka would hold them unread behind the first); the four after the Metadata
    // request are not, as that request waits for every earlier response.
    let leader_address = cluster.broker(leader).bootstrap();
    let one_request = produce(topic, 0).topic_data[0].partition_data[0]
        .records
        .as_ref()
        .unwrap()
        .len() as i64;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut size = partition_size(&leader_address, topic);
    while size < 8 * one_request && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        size = partition_size(&leader_address, topic);
    }
    std::thread::sleep(Duration::from_millis(300));
    let size_then = partition_size(&leader_address, topic);
    assert!(
        size == 8 * one_request && size_then == size && started.elapsed() < Duration::from_secs(5),
        "the eight Produce requests before the Metadata request are appended while the first waits, and \
         no later one: {size} then {size_then} bytes on disk, {one_request} per request, after {:?}\n{}",
        started.elapsed(),
        cluster.logs()
    );

    let mut base_offsets = Vec::new();
    for (expected, kind) in kinds.iter().enumerate() {
        let mut frame = raw::read_frame(&mut stream);
        let version = if *kind == ApiKey::Produce {
            PRODUCE_VERSION
        } else {
            METADATA_VERSION
        };
        let header = ResponseHeader::decode(&mut frame, kind.response_header_version(version)).unwrap();
        assert_eq!(
            header.correlation_id,
            expected as i32,
            "responses come in request order\n{}",
            cluster.logs()
        );
        if *kind == ApiKey::Metadata {
            let metadata = MetadataResponse::decode(&mut frame, version).unwrap();
            assert!(metadata
                .topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic)));
            continue;
        }
        let response = ProduceResponse::decode(&mut frame, version).unwrap();
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(
            partition.error_code,
            0,
            "request {expected}: {:?}\n{}",
            partition.error_message,
            cluster.logs()
        );
        base_offsets.push(partition.base_offset);
    }
    let waited = started.elapsed();
    let expected: Vec<i64> = (0..11).map(|i| (i * RECORDS_PER_REQUEST) as i64).collect();
    assert_eq!(base_offsets, expected, "appended in the order sent");
    assert!(
        waited >= Duration::from_secs(3),
        "the first request waited for the frozen followers to leave the ISR ({waited:?})"
    );
    for &f in &followers {
        cluster.broker(f).resume();
    }

    // A consumer reads every record, in the order sent.
    let values: Vec<String> = kcat_consume(&cluster, topic).into_iter().map(|(_, _, v)| v).collect();
    let sent_values: Vec<String> = (0..12)
        .filter(|&r| r != 8)
        .flat_map(|r| (0..RECORDS_PER_REQUEST).map(move |i| format!("r{r}-{i}")))
        .collect();
    assert_eq!(values, sent_values);
    cluster.stop_all();
}

/// A response that becomes ready while the client's next request is still arriving is written then:
/// a producer at its in-flight limit may be waiting for exactly that answer before it sends the rest.
#[test]
fn a_response_is_written_while_the_next_request_frame_is_still_arriving() {
    let mut cluster = Cluster::start_with(Options {
        broker_config: &[("replica.lag.time.max.ms", "3000")],
        ..Options::default()
    });
    let topic = "half-sent";
    cluster.create_topic(topic, 1, 3);
    let leader = cluster.wait_all_led(topic, 1)[&0];
    let followers: Vec<i32> = (1..=3).filter(|&b| b != leader).collect();
    for &f in &followers {
        cluster.broker(f).pause();
    }
    let mut stream = TcpStream::connect(cluster.broker(leader).bootstrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The first Produce waits for the frozen followers to leave the ISR; the second is sent only in
    // part, and stays so until the first's answer has come.
    let first = raw::request(ApiKey::Produce, PRODUCE_VERSION, 0, &produce(topic, 0));
    let second = raw::request(ApiKey::Produce, PRODUCE_VERSION, 1, &produce(topic, 1));
    let half = second.len() / 2;
    stream.write_all(&first).unwrap();
    stream.write_all(&second[..half]).unwrap();

    let started = Instant::now();
    let mut response = raw::read_frame(&mut stream);
    let header =
        ResponseHeader::decode(&mut response, ApiKey::Produce.response_header_version(PRODUCE_VERSION)).unwrap();
    assert_eq!(header.correlation_id, 0);
    let answer = ProduceResponse::decode(&mut response, PRODUCE_VERSION).unwrap();
    let partition = &answer.responses[0].partition_responses[0];
    assert_eq!(
        (partition.error_code, partition.base_offset),
        (0, 0),
        "the first request is answered while the second is half sent ({:?})\n{}",
        started.elapsed(),
        cluster.logs()
    );

    stream.write_all(&second[half..]).unwrap();
    let mut response = raw::read_frame(&mut stream);
    let header =
        ResponseHeader::decode(&mut response, ApiKey::Produce.response_header_version(PRODUCE_VERSION)).unwrap();
    assert_eq!(header.correlation_id, 1);
    let answer = ProduceResponse::decode(&mut response, PRODUCE_VERSION).unwrap();
    let partition = &answer.responses[0].partition_responses[0];
    assert_eq!(
        (partition.error_code, partition.base_offset),
        (0, RECORDS_PER_REQUEST as i64)
    );
    for &f in &followers {
        cluster.broker(f).resume();
    }
    cluster.stop_all();
}
