//! The Prometheus endpoint (`metrics.port`): `GET /metrics` counts what clients did, `GET /health`
//! answers 200.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// A minimal HTTP/1.1 GET: (status code, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to the metrics port {port}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 65536];
    // Read until the server closes, or the headers and Content-Length bytes are in.
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| buf.len() >= end + 4 + n) {
                break;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading GET {path} response: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "GET {path}: no complete response within 10 s"
        );
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Samples of the Prometheus text format: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn metrics_count_produced_and_fetched_records() {
    let broker = Broker::start(&[]);
    assert_eq!(
        broker.target(),
        Target::Oxka,
        "metrics.port is oxka's own key: run this test against oxka"
    );
    create_topic(&broker, "metered", 1);
    python_ok(
        r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
for i in range(500):
    p.produce("metered", value=b"m" * 100, partition=0)
if p.flush(30) != 0:
    fail("not delivered")
if len(consume_all("metered", 0, 500)) != 500:
    fail("could not read the records back")
"#,
        &broker.bootstrap(),
    );
    let port = broker.metrics_port();
    let (status, body) = http_get(port, "/health");
    assert_eq!(status, 200, "GET /health: {body}");

    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "GET /metrics: {body}");
    let s = samples(&body);
    let get = |series: &str| -> f64 {
        *s.get(series)
            .unwrap_or_else(|| panic!("/metrics has no {series}:\n{body}"))
    };
    assert_eq!(
        get("kafka_server_brokertopicmetrics_messagesin_total{topic=\"metered\"}"),
        500.0
    );
    assert!(get("kafka_server_brokertopicmetrics_bytesin_total{topic=\"metered\"}") >= 500.0 * 100.0);
    assert!(get("kafka_network_requestmetrics_requests_total{request=\"Produce\"}") >= 1.0);
    assert!(get("kafka_network_requestmetrics_requests_total{request=\"Fetch\"}") >= 1.0);
    let bytes_out: f64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("kafka_server_brokertopicmetrics_bytesout_total"))
        .map(|(_, v)| v)
        .sum();
    assert!(
        bytes_out >= 500.0 * 100.0,
        "bytesout_total {bytes_out} < the 50 kB fetched:\n{body}"
    );
    assert!(
        s.keys()
            .any(|k| k.starts_with("kafka_server_replicamanager_partitioncount")),
        "/metrics has no partition count:\n{body}"
    );

    let (status, _) = http_get(port, "/no-such-page");
    assert_eq!(status, 404, "GET of an unknown path");
}

#[test]
fn metrics_port_minus_one_disables_the_endpoint() {
    let broker = Broker::start(&[("metrics.port", "-1")]);
    assert_eq!(
        broker.target(),
        Target::Oxka,
        "metrics.port is oxka's own key: run this test against oxka"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", broker.metrics_port())).is_err(),
        "something listens on the metrics port although metrics.port=-1"
    );
}
