//! Wire-level behaviour no client library exercises on purpose: ApiVersions of a version the broker
//! does not know (KIP-511) and requests of unsupported versions.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn request(stream: &mut TcpStream, api_key: i16, version: i16, correlation_id: i32, body: &[u8]) {
    let client_id = b"oxka-test";
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    frame.extend_from_slice(client_id);
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    stream.write_all(&out).unwrap();
}

fn response(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

#[test]
fn api_versions_of_an_unknown_version_gets_a_v0_answer_with_unsupported_version() {
    let broker = Broker::start(&[]);
    let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Version 99 of ApiVersions, with a body the broker cannot know the shape of.
    request(&mut stream, 18, 99, 7, &[1, 2, 3, 4]);
    let body = response(&mut stream).expect("the broker answers instead of closing");
    // v0 response header: correlation id; v0 body: error_code, [api_key, min, max].
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), 7);
    assert_eq!(
        i16::from_be_bytes(body[4..6].try_into().unwrap()),
        35,
        "UNSUPPORTED_VERSION"
    );
    let count = i32::from_be_bytes(body[6..10].try_into().unwrap());
    assert!(count >= 10, "the answer lists the supported APIs ({count})");
    let apis: Vec<(i16, i16, i16)> = body[10..]
        .chunks(6)
        .take(count as usize)
        .map(|c| {
            let f = |i: usize| i16::from_be_bytes([c[i], c[i + 1]]);
            (f(0), f(2), f(4))
        })
        .collect();
    let api_versions = apis.iter().find(|a| a.0 == 18).expect("ApiVersions is listed");
    assert_eq!(api_versions.1, 0);
    assert!(apis.iter().any(|a| a.0 == 0), "Produce is listed");

    // The connection stays usable: a v0 ApiVersions now succeeds.
    request(&mut stream, 18, 0, 8, &[]);
    let body = response(&mut stream).expect("second answer");
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), 8);
    assert_eq!(i16::from_be_bytes(body[4..6].try_into().unwrap()), 0);
}

#[test]
fn unsupported_version_of_another_api_closes_only_that_connection() {
    let broker = Broker::start(&[]);
    let mut bad = TcpStream::connect(broker.bootstrap()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Metadata v200 does not exist.
    request(&mut bad, 3, 200, 1, &[0, 0, 0, 0]);
    assert!(response(&mut bad).is_err(), "the connection is closed");

    let mut good = TcpStream::connect(broker.bootstrap()).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    request(&mut good, 18, 0, 3, &[]);
    let body = response(&mut good).expect("others are still served");
    assert_eq!(i16::from_be_bytes(body[4..6].try_into().unwrap()), 0);
    assert!(
        broker.log_text().contains("not supported"),
        "the broker logs why it closed the connection:\n{}",
        broker.log_tail(20)
    );
}

#[test]
fn acks_all_needs_min_insync_replicas() {
    let broker = Broker::start(&[]);
    create_topic_with(&broker, "strict", 1, &[("min.insync.replicas", "2")]);
    let script = r#"
from confluent_kafka import Producer, KafkaError
def send(acks):
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": acks, "enable.idempotence": False,
                  "retries": 0, "message.timeout.ms": 10000})
    result = []
    p.produce("strict", b"v", on_delivery=lambda err, msg: result.append(err))
    p.flush(15)
    return result[0] if result else "no report"
err = send("all")
if err is None or err.code() != KafkaError.NOT_ENOUGH_REPLICAS:
    fail(f"acks=all with min.insync.replicas=2 on one broker: {err}")
err = send("1")
if err is not None:
    fail(f"acks=1 must still work: {err}")
print("ok")
"#;
    assert_eq!(python_ok(script, &broker.bootstrap()).trim(), "ok");
}
