//! `KAFKA_HEAP_OPTS -Xmx` bounds in-flight request and response bytes: with a budget far below what
//! concurrent clients push, requests wait instead of failing, and the broker stays small.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn a_tiny_memory_budget_slows_clients_down_but_loses_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        format!(
            "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={}\nmetrics.port=-1\n\
             offsets.topic.replication.factor=1\ngroup.initial.rebalance.delay.ms=0\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
    let mut child = Command::new(oxka_bin())
        .arg("broker")
        .arg(&props)
        .env("KAFKA_HEAP_OPTS", "-Xmx1m")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    wait_for("the broker to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&bootstrap).is_ok()
    });
    let status_kb = |field: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };
    // What the (debug) binary, its threads and the embedded coordinator take before any data flows.
    let idle_kb = status_kb("VmRSS:");

    // Three producers at once, each with 256 KiB batches: far more in flight than the 1 MiB budget.
    let script = r#"
import threading
from confluent_kafka import Producer
errors = []
def run(n):
    p = Producer({"bootstrap.servers": BOOTSTRAP, "batch.size": 262144, "linger.ms": 20,
                  "acks": "all", "message.timeout.ms": 120000})
    def cb(err, msg):
        if err is not None:
            errors.append(str(err))
    for i in range(100000):
        while True:
            try:
                p.produce("squeeze", value=("%d-%06d-" % (n, i)).encode() + b"x" * 90, partition=0, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(120)
threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    fail(f"{len(errors)} produce errors, first: {errors[0]}")
rows = consume_all("squeeze", 0, 300000, timeout=120, extra={"fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
if len(rows) != 300000:
    fail(f"read {len(rows)} of 300000 records")
per_producer = {}
for off, key, value, _ in rows:
    n, i = value.split(b"-")[:2]
    last = per_producer.get(n, -1)
    if int(i) != last + 1:
        fail(f"producer {n}: record {int(i)} after {last}")
    per_producer[n] = int(i)
print("ok")
"#;
    let out = python(script, &bootstrap);
    let peak_kb = status_kb("VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let broker_log = std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "clients failed under a tiny budget:\n{}\n{}\nbroker log:\n{}",
        tail(&out.stdout, 20),
        tail(&out.stderr, 20),
        tail(broker_log.as_bytes(), 30)
    );
    assert!(peak_kb > 0 && idle_kb > 0, "could not read the broker's RSS");
    // About 36 MB of records flow in and out through a 1 MiB budget, and nothing is cached in user space.
    // What the (debug) broker's RSS still grows by, 24-44 MiB in repeated runs, is the allocator's
    // per-thread arenas keeping freed request buffers plus one fetch response of up to
    // max.partition.fetch.bytes (10 MiB here); the release benchmark moves 200 MB at an 18 MB peak.
    let growth_kb = peak_kb.saturating_sub(idle_kb);
    eprintln!("broker RSS: {idle_kb} KiB idle, {peak_kb} KiB peak under load (+{growth_kb} KiB)");
    assert!(
        growth_kb < 56 * 1024,
        "RSS grew by {growth_kb} KiB (idle {idle_kb}, peak {peak_kb}) moving 36 MB through a 1 MiB budget"
    );
}
