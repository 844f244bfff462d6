//! Faults: restarts, kill -9 under load, retention deleting segments, and hostile frames. The checks
//! are a client's: every acknowledged record is served, at the offset it was acknowledged with, in
//! order, with valid CRCs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Produces `COUNT` records `seq-<n>` to partition 0 of `TOPIC` with acks=all and prints one line per
/// acknowledged record: `<seq> <offset>`. Runs until done, or until it is killed.
const PY_ACKED_PRODUCER: &str = r#"
from confluent_kafka import Producer
topic, count = os.environ["TOPIC"], int(os.environ["COUNT"])
start = int(os.environ.get("START", "0"))
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 2,
              "message.timeout.ms": int(os.environ.get("TIMEOUT_MS", "30000")),
              "retries": 0, "max.in.flight.requests.per.connection": 5})
def on_delivery(err, msg):
    if err is None:
        print(int(msg.value()[4:]), msg.offset(), flush=True)
for seq in range(start, start + count):
    while True:
        try:
            p.produce(topic, value=b"seq-%09d" % seq, partition=0, on_delivery=on_delivery)
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
p.flush(60)
"#;

/// Reads the whole partition and checks it against the acknowledgements in ACKED (file of `seq offset`
/// lines): offsets contiguous from LOG_START, every acknowledged record at its acknowledged offset,
/// no sequence number twice, sequence numbers increasing with the offset.
const PY_CHECK_ACKED: &str = r#"
topic = os.environ["TOPIC"]
acked = {}
for line in open(os.environ["ACKED"]):
    parts = line.split()
    if len(parts) == 2:
        acked[int(parts[0])] = int(parts[1])
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "checker", "enable.auto.commit": False,
              "check.crcs": True, "enable.partition.eof": True})
c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
records = []
deadline = time.time() + 120
eof = False
while not eof and time.time() < deadline:
    for m in c.consume(num_messages=10000, timeout=1.0):
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof = True
                continue
            fail(f"consumer error after {len(records)} records: {m.error()}")
        records.append((m.offset(), int(m.value()[4:])))
lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
c.close()
if not eof:
    fail(f"did not reach the end of the partition in time ({len(records)} records read)")
if len(records) != hi - lo:
    fail(f"read {len(records)} records but watermarks are {lo}..{hi}")
offsets = [o for o, _ in records]
if offsets != list(range(lo, hi)):
    fail("offsets are not contiguous")
seqs = [s for _, s in records]
if len(set(seqs)) != len(seqs):
    fail("a record is stored twice")
if seqs != sorted(seqs):
    fail("records are out of order")
at = dict(records)
lost = [(s, o) for s, o in acked.items() if at.get(o) != s]
if lost:
    fail(f"{len(lost)} acknowledged records are missing or moved, e.g. (seq, offset) {sorted(lost)[:5]}")
print(f"ok records={len(records)} acked={len(acked)} hw={hi}")
"#;

fn produce_acked(broker: &Broker, topic: &str, start: u64, count: u64, name: &str) -> std::path::PathBuf {
    let (start, count) = (start.to_string(), count.to_string());
    let env = [("TOPIC", topic), ("COUNT", count.as_str()), ("START", start.as_str())];
    let mut child = python_spawn(PY_ACKED_PRODUCER, &broker.bootstrap(), &env, broker.temp_dir(), name);
    let status = child.wait().expect("wait for producer");
    let out = broker.temp_dir().join(format!("{name}.out"));
    let err = std::fs::read_to_string(broker.temp_dir().join(format!("{name}.err"))).unwrap_or_default();
    assert!(status.success(), "producer {name} failed: {status}\n{err}");
    out
}

fn check_acked(broker: &Broker, topic: &str, acked_files: &[&std::path::Path]) -> String {
    let merged = broker.temp_dir().join("acked-all.txt");
    let mut text = String::new();
    for f in acked_files {
        text.push_str(&std::fs::read_to_string(f).expect("read acked file"));
    }
    std::fs::write(&merged, text).unwrap();
    let env = [("TOPIC", topic), ("ACKED", merged.to_str().unwrap())];
    python_env_ok(PY_CHECK_ACKED, &broker.bootstrap(), &env)
}

fn acked_count(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().count() == 2)
        .count()
}

#[test]
fn restart_keeps_all_data() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "durable", 1);
    let first = produce_acked(&broker, "durable", 0, 20_000, "first");
    assert_eq!(acked_count(&first), 20_000);
    broker.restart(); // SIGTERM, then start on the same data dir
    let out = check_acked(&broker, "durable", &[&first]);
    assert!(out.contains("records=20000"), "{out}");
    // The log goes on where it ended.
    let second = produce_acked(&broker, "durable", 20_000, 5_000, "second");
    assert!(
        std::fs::read_to_string(&second).unwrap().lines().next() == Some("20000 20000"),
        "second run did not continue at offset 20000"
    );
    broker.kill9();
    broker.restart();
    let out = check_acked(&broker, "durable", &[&first, &second]);
    assert!(out.contains("records=25000"), "{out}");
}

#[test]
fn kill9_during_produce_keeps_every_acknowledged_record() {
    let _serial = serial();
    let mut broker = Broker::start(&[("log.segment.bytes", "1048576")]);
    create_topic(&broker, "crash", 1);
    // Three rounds of: produce flat out, kill -9 the broker mid-stream, restart. Each round's sequence
    // numbers start above the last round's, so the whole log must stay in increasing order.
    let mut acked_files = Vec::new();
    for round in 0..3u64 {
        let start = (round * 100_000_000).to_string();
        let name = format!("load-{round}");
        let env = [
            ("TOPIC", "crash"),
            ("COUNT", "100000000"),
            ("START", start.as_str()),
            ("TIMEOUT_MS", "3000"),
        ];
        let mut producer = python_spawn(PY_ACKED_PRODUCER, &broker.bootstrap(), &env, broker.temp_dir(), &name);
        let acked = broker.temp_dir().join(format!("{name}.out"));
        let at_least = 20_000 + 7_919 * round as usize; // a different point in each round
        wait_for("producer acknowledgements", Duration::from_secs(120), || {
            acked_count(&acked) >= at_least
        });
        broker.kill9();
        // The producer's in-flight requests fail; stop it before the broker is back so that nothing
        // it retries lands after the restart.
        std::thread::sleep(Duration::from_millis(500));
        let _ = producer.kill();
        let _ = producer.wait();
        broker.restart();
        acked_files.push(acked);
        let files: Vec<&std::path::Path> = acked_files.iter().map(|p| p.as_path()).collect();
        let out = check_acked(&broker, "crash", &files);
        eprintln!("round {round}, after kill -9: {out}");
    }
}

#[test]
fn torn_write_at_the_tail_is_truncated_on_recovery() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "torn", 1);
    let acked = produce_acked(&broker, "torn", 0, 5_000, "before");
    broker.kill9();
    // Half a batch at the end of the active segment, as a crash in the middle of a write leaves it:
    // a plausible batch header (base offset 5000, length 2000) followed by too few bytes.
    let segment = broker.segment_files("torn", 0).pop().expect("a segment file");
    let mut tail = Vec::new();
    tail.extend_from_slice(&5000i64.to_be_bytes());
    tail.extend_from_slice(&2000i32.to_be_bytes());
    tail.extend_from_slice(&[0x5a; 300]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(&tail)
        .unwrap();
    broker.restart();
    let out = check_acked(&broker, "torn", &[&acked]);
    assert!(out.contains("records=5000"), "{out}");
    // And the log is writable where the valid data ends.
    let after = produce_acked(&broker, "torn", 5_000, 100, "after");
    assert_eq!(
        std::fs::read_to_string(&after).unwrap().lines().next(),
        Some("5000 5000")
    );
}

#[test]
fn retention_by_time_deletes_old_segments() {
    let broker = Broker::start(&[
        ("log.segment.bytes", "1048576"),
        ("log.retention.ms", "3000"),
        ("log.retention.check.interval.ms", "500"),
    ]);
    create_topic(&broker, "expiring", 1);
    // ~6 MB in 1 KB records: six or more 1 MB segments.
    let out = python_ok(
        r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
for i in range(6000):
    while True:
        try:
            p.produce("expiring", value=b"x" * 1000, partition=0)
            break
        except BufferError:
            p.poll(0.1)
if p.flush(60) != 0:
    fail("not delivered")
print("produced")
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("produced"));
    let segments = broker.segment_files("expiring", 0);
    assert!(
        segments.len() >= 4,
        "expected >= 4 segments of 1 MB after 6 MB, found {segments:?}"
    );
    wait_for("retention to delete the old segments", Duration::from_secs(60), || {
        broker.segment_files("expiring", 0).len() <= 1
    });
    let (earliest, latest) = watermarks(&broker, "expiring");
    assert!(
        earliest > 0,
        "log start offset did not move after retention deleted segments"
    );
    assert_eq!(latest, 6000, "log end offset");
    // A consumer from the beginning starts at the new log start offset.
    let out = python_ok(
        r#"
got = consume_all("expiring", 0, 6000, timeout=5)
print("first", got[0][0] if got else None, "count", len(got))
"#,
        &broker.bootstrap(),
    );
    assert!(
        out.contains(&format!("first {}", earliest)) || out.contains("first None"),
        "{out}"
    );
}

#[test]
fn retention_by_size_deletes_old_segments() {
    let broker = Broker::start(&[
        ("log.segment.bytes", "1048576"),
        ("log.retention.bytes", "2097152"),
        ("log.retention.check.interval.ms", "500"),
    ]);
    create_topic(&broker, "bounded", 1);
    python_ok(
        r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
for i in range(6000):
    while True:
        try:
            p.produce("bounded", value=b"y" * 1000, partition=0)
            break
        except BufferError:
            p.poll(0.1)
if p.flush(60) != 0:
    fail("not delivered")
"#,
        &broker.bootstrap(),
    );
    wait_for("size retention to keep about 2 MB", Duration::from_secs(60), || {
        let total: u64 = broker
            .segment_files("bounded", 0)
            .iter()
            .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        total <= 3 * 1048576
    });
    let (earliest, latest) = watermarks(&broker, "bounded");
    assert!(earliest > 0, "log start offset did not move");
    assert_eq!(latest, 6000);
}

/// (log start offset, log end offset) of partition 0, from ListOffsets.
fn watermarks(broker: &Broker, topic: &str) -> (i64, i64) {
    let out = python_env_ok(
        r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "wm"})
lo, hi = c.get_watermark_offsets(TopicPartition(os.environ["TOPIC"], 0), timeout=10)
print(lo, hi)
"#,
        &broker.bootstrap(),
        &[("TOPIC", topic)],
    );
    let mut it = out.split_whitespace().map(|n| n.parse::<i64>().expect("offset"));
    (it.next().unwrap(), it.next().unwrap())
}

/// True when the broker closes the connection (EOF or reset) within `timeout`.
fn closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a response (e.g. an error) is allowed before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                continue
            }
            Err(_) => return true, // reset
        }
    }
    false
}

/// A client that keeps producing and consuming while hostile frames arrive; returns its output.
const PY_STEADY_CLIENT: &str = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 1})
n = 0
end = time.time() + float(os.environ["SECONDS"])
while time.time() < end:
    for i in range(100):
        p.produce("steady", value=f"{n + i}".encode(), partition=0)
    if p.flush(10) != 0:
        fail(f"produce stalled after {n} records")
    n += 100
    time.sleep(0.05)
got = consume_all("steady", 0, n, timeout=30)
if [int(v) for _, _, v, _ in got] != list(range(n)):
    fail(f"steady client read back {len(got)} of {n} records, or out of order")
print("ok", n)
"#;

#[test]
fn oversized_frame_is_refused_while_others_are_served() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "steady", 1);
    let rss_before = broker.rss();
    let mut client = python_spawn(
        PY_STEADY_CLIENT,
        &broker.bootstrap(),
        &[("SECONDS", "8")],
        broker.temp_dir(),
        "steady",
    );
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..3 {
        let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
        // A 200 MB frame (socket.request.max.bytes is 100 MB): the length prefix, then data for a while.
        stream.write_all(&(200 * 1024 * 1024i32).to_be_bytes()).unwrap();
        let chunk = vec![0u8; 1 << 20];
        stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        for _ in 0..20 {
            if stream.write_all(&chunk).is_err() {
                break; // the broker closed the connection: good
            }
        }
        assert!(
            closed_within(&mut stream, Duration::from_secs(10)),
            "the broker kept a connection that announced a 200 MB frame open"
        );
    }
    let status = client.wait().unwrap();
    let out = std::fs::read_to_string(broker.temp_dir().join("steady.out")).unwrap_or_default();
    let err = std::fs::read_to_string(broker.temp_dir().join("steady.err")).unwrap_or_default();
    assert!(
        status.success() && out.contains("ok"),
        "the concurrent client failed: {status}\n{out}\n{err}"
    );
    // Only 20 MB were sent, so this catches a broker that reads the frame into memory as it comes;
    // a 200 MB zeroed allocation alone stays lazily mapped.
    let growth = broker.peak_rss().saturating_sub(rss_before);
    assert!(
        growth < 150 * 1024 * 1024,
        "peak RSS grew by {} MB: the 200 MB frame was buffered?",
        growth >> 20
    );
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "steady", 1);
    let mut client = python_spawn(
        PY_STEADY_CLIENT,
        &broker.bootstrap(),
        &[("SECONDS", "6")],
        broker.temp_dir(),
        "steady",
    );
    std::thread::sleep(Duration::from_secs(1));
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("a negative length", (-5i32).to_be_bytes().to_vec()),
        (
            "an unknown API key",
            frame(&[
                &9999i16.to_be_bytes(),
                &0i16.to_be_bytes(),
                &1i32.to_be_bytes(),
                &(-1i16).to_be_bytes(),
            ]),
        ),
        (
            "an unsupported Produce version",
            frame(&[
                &0i16.to_be_bytes(),
                &999i16.to_be_bytes(),
                &2i32.to_be_bytes(),
                &(-1i16).to_be_bytes(),
            ]),
        ),
        (
            "a Produce v9 body of garbage",
            frame(&[
                &0i16.to_be_bytes(),
                &9i16.to_be_bytes(),
                &3i32.to_be_bytes(),
                &[0x00],
                &[0xff; 64],
            ]),
        ),
        (
            "a Metadata v1 body cut short",
            frame(&[
                &3i16.to_be_bytes(),
                &1i16.to_be_bytes(),
                &4i32.to_be_bytes(),
                &(-1i16).to_be_bytes(),
                &5i32.to_be_bytes(),
                &[0, 3],
            ]),
        ),
        ("a header cut short", frame(&[&18i16.to_be_bytes(), &[0x00]])),
        // An array count far beyond the frame: the decoder must refuse it, not try to allocate for
        // two billion elements (an allocation failure aborts the whole process).
        (
            "a Metadata v1 claiming i32::MAX topics",
            frame(&[
                &3i16.to_be_bytes(),
                &1i16.to_be_bytes(),
                &5i32.to_be_bytes(),
                &(-1i16).to_be_bytes(),
                &i32::MAX.to_be_bytes(),
            ]),
        ),
        (
            "a Metadata v9 claiming 2^32-2 topics (compact array)",
            frame(&[
                &3i16.to_be_bytes(),
                &9i16.to_be_bytes(),
                &6i32.to_be_bytes(),
                &(-1i16).to_be_bytes(),
                &[0x00],
                &[0xff, 0xff, 0xff, 0xff, 0x0f],
            ]),
        ),
    ];
    for (what, bytes) in &frames {
        let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
        // Keep our side open: the broker must close because of what it read, not because of an EOF.
        stream.write_all(bytes).unwrap();
        assert!(
            closed_within(&mut stream, Duration::from_secs(10)),
            "the broker kept the connection open after {what}"
        );
    }
    // The broker still answers a well-formed request on a new connection: ApiVersions v0.
    let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
    stream
        .write_all(&frame(&[
            &18i16.to_be_bytes(),
            &0i16.to_be_bytes(),
            &42i32.to_be_bytes(),
            &(-1i16).to_be_bytes(),
        ]))
        .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut header = [0u8; 10];
    stream.read_exact(&mut header).expect("an ApiVersions response");
    assert_eq!(
        i32::from_be_bytes(header[4..8].try_into().unwrap()),
        42,
        "correlation id"
    );
    assert_eq!(
        i16::from_be_bytes(header[8..10].try_into().unwrap()),
        0,
        "ApiVersions error code"
    );
    let status = client.wait().unwrap();
    let out = std::fs::read_to_string(broker.temp_dir().join("steady.out")).unwrap_or_default();
    let err = std::fs::read_to_string(broker.temp_dir().join("steady.err")).unwrap_or_default();
    assert!(
        status.success() && out.contains("ok"),
        "the concurrent client failed: {status}\n{out}\n{err}"
    );
}

/// A size-prefixed frame of the concatenated parts.
fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Checks topics, a topic config and a group's committed offsets, as set up by
/// `restart_keeps_topics_configs_and_group_offsets`.
const PY_CHECK_METADATA: &str = r#"
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
md = admin.list_topics(timeout=10)
if sorted(len(md.topics[t].partitions) for t in ("kept", "alsokept") if t in md.topics) != [1, 3]:
    fail(f"topics after restart: { {t: len(m.partitions) for t, m in md.topics.items()} }")
res = ConfigResource(ConfigResource.Type.TOPIC, "kept")
configs = admin.describe_configs([res])[res].result(timeout=10)
if configs["retention.ms"].value != "123456789":
    fail(f"retention.ms of kept is {configs['retention.ms'].value} after restart")
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "keeper", "enable.auto.commit": False})
committed = retry_coordinator(lambda: c.committed([TopicPartition("kept", p) for p in range(3)], timeout=10), "committed")
if [tp.offset for tp in committed] != [3, 5, 10]:
    fail(f"committed offsets after restart: {[tp.offset for tp in committed]}")
for p in range(3):
    lo, hi = c.get_watermark_offsets(TopicPartition("kept", p), timeout=10)
    if (lo, hi) != (0, 10):
        fail(f"kept-{p} watermarks {lo}..{hi} after restart")
c.close()
print("ok")
"#;

#[test]
fn restart_keeps_topics_configs_and_group_offsets() {
    let mut broker = Broker::start(&[]);
    create_topic_with(&broker, "kept", 3, &[("retention.ms", "123456789")]);
    create_topic(&broker, "alsokept", 1);
    python_ok(
        r#"
from confluent_kafka import Producer, Consumer, TopicPartition
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
for part in range(3):
    for i in range(10):
        p.produce("kept", value=f"{part}-{i}".encode(), partition=part)
if p.flush(30) != 0:
    fail("not delivered")
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "keeper", "enable.auto.commit": False})
commit_offsets(c, [TopicPartition("kept", 0, 3), TopicPartition("kept", 1, 5), TopicPartition("kept", 2, 10)])
c.close()
"#,
        &broker.bootstrap(),
    );
    python_ok(PY_CHECK_METADATA, &broker.bootstrap());
    broker.restart();
    let out = python(PY_CHECK_METADATA, &broker.bootstrap());
    expect_success("state after a graceful restart", &out);
    broker.kill9();
    broker.restart();
    let out = python(PY_CHECK_METADATA, &broker.bootstrap());
    expect_success("state after kill -9 and restart", &out);
}

#[test]
fn sigstop_and_continue_under_load_loses_nothing() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "frozen", 1);
    let env = [("TOPIC", "frozen"), ("COUNT", "60000"), ("TIMEOUT_MS", "60000")];
    let mut producer = python_spawn(PY_ACKED_PRODUCER, &broker.bootstrap(), &env, broker.temp_dir(), "load");
    let acked = broker.temp_dir().join("load.out");
    wait_for("the first 10,000 acknowledgements", Duration::from_secs(60), || {
        acked_count(&acked) >= 10_000
    });
    broker.pause();
    std::thread::sleep(Duration::from_secs(3));
    broker.resume();
    let status = producer.wait().unwrap();
    let err = std::fs::read_to_string(broker.temp_dir().join("load.err")).unwrap_or_default();
    assert!(status.success(), "producer failed: {err}");
    assert_eq!(
        acked_count(&acked),
        60_000,
        "every record acknowledged after SIGCONT:\n{err}"
    );
    let out = check_acked(&broker, "frozen", &[&acked]);
    assert!(out.contains("records=60000"), "{out}");
}
