//! Non-Java clients against oxka: kcat and confluent-kafka (both librdkafka) and kafka-python (a pure
//! Python implementation of the protocol). Every compression codec, both directions between clients,
//! keys, headers, null and empty values, and consumer groups.

mod common;

use common::*;

/// Generates, per codec, a module of tests that run each client scenario with that codec.
macro_rules! with_every_codec {
    ($($codec:ident),* $(,)?) => {$(
        mod $codec {
            #[test]
            fn kcat() {
                super::kcat_round_trip(stringify!($codec))
            }
            #[test]
            fn kafka_python_to_confluent() {
                super::python_round_trip(stringify!($codec), "kafka-python", "confluent")
            }
            #[test]
            fn confluent_to_kafka_python() {
                super::python_round_trip(stringify!($codec), "confluent", "kafka-python")
            }
        }
    )*};
}

with_every_codec!(none, gzip, snappy, lz4, zstd);

fn kcat_round_trip(codec: &str) {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = format!("kcat-{codec}");
    create_topic(&broker, &topic, 1);
    let lines: Vec<String> = (0..2000)
        .map(|i| format!("key{i}:value {i} {}", "abc".repeat(i % 50)))
        .collect();
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let out = kcat(
        &[
            "-b",
            &b,
            "-P",
            "-t",
            &topic,
            "-p",
            "0",
            "-K",
            ":",
            "-z",
            codec,
            "-X",
            "linger.ms=20",
            "-X",
            "acks=all",
        ],
        input.as_bytes(),
    );
    expect_success("kcat -P", &out);

    let out = kcat(
        &[
            "-b",
            &b,
            "-C",
            "-t",
            &topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-X",
            "check.crcs=true",
            "-f",
            "%o %k:%s\n",
        ],
        b"",
    );
    let stdout = expect_success("kcat -C", &out);
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        got.len(),
        lines.len(),
        "kcat consumed {} of {} records",
        got.len(),
        lines.len()
    );
    for (i, (got, want)) in got.iter().zip(&lines).enumerate() {
        assert_eq!(*got, format!("{i} {want}"), "record {i} (codec {codec})");
    }
}

/// Builds the same 3000 records in every script: keys (some null), values of many sizes, both
/// compressible and random, some null and some empty, and headers.
const PY_RECORDS: &str = r#"
import random
def make_records(n=3000):
    rnd = random.Random(7)
    out = []
    for i in range(n):
        size = rnd.choice([0, 1, 10, 100, 1000, 10000, 100000 if i % 500 == 0 else 100])
        if i % 97 == 0:
            value = None
        elif i % 2:
            value = (f"{i:06d}-" * (size // 7 + 1))[:size].encode()
        else:
            value = rnd.randbytes(size)
        # kafka-python refuses a record with neither key nor value
        key = None if i % 5 == 0 and value is not None else f"key-{i}".encode()
        headers = [("h1", f"{i}".encode()), ("h2", b"")] if i % 4 == 0 else []
        out.append((key, value, headers))
    return out

def produce_kafka_python(topic, records, codec):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=10,
                      compression_type=None if codec == "none" else codec,
                      max_request_size=10485760)
    futures = [p.send(topic, key=k, value=v, headers=h, partition=0) for k, v, h in records]
    offsets = [f.get(timeout=60).offset for f in futures]
    p.close()
    return offsets

def produce_confluent(topic, records, codec):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 10,
                  "compression.type": codec})
    offsets = [None] * len(records)
    def report(i):
        def cb(err, msg):
            if err is not None:
                fail(f"delivery of record {i} failed: {err}")
            offsets[i] = msg.offset()
        return cb
    for i, (k, v, h) in enumerate(records):
        while True:
            try:
                p.produce(topic, key=k, value=v, headers=h or None, partition=0, on_delivery=report(i))
                break
            except BufferError:
                p.poll(0.1)
    if p.flush(60) != 0:
        fail("confluent producer could not deliver everything within 60 s")
    return offsets

def consume_kafka_python(topic, n):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, check_crcs=True,
                      auto_offset_reset="earliest", consumer_timeout_ms=30000,
                      max_partition_fetch_bytes=10485760)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = []
    for m in c:
        out.append((m.offset, m.key, m.value, list(m.headers or [])))
        if len(out) == n:
            break
    c.close()
    return out

def consume_confluent(topic, n):
    return [(o, k, v, list(h or [])) for o, k, v, h in consume_all(topic, 0, n)]

def check(records, offsets, consumed, what):
    if offsets != list(range(len(records))):
        fail(f"{what}: acknowledged offsets are not 0..{len(records) - 1}: {offsets[:10]}...")
    if len(consumed) != len(records):
        fail(f"{what}: consumed {len(consumed)} of {len(records)} records")
    for i, ((k, v, h), (o, ck, cv, ch)) in enumerate(zip(records, consumed)):
        if o != i:
            fail(f"{what}: record {i} came back at offset {o}")
        if ck != k:
            fail(f"{what}: record {i} key {ck!r} != {k!r}")
        if cv != v:
            fail(f"{what}: record {i} value differs (got {None if cv is None else len(cv)} bytes, "
                 f"want {None if v is None else len(v)})")
        if [(hk, bytes(hv or b"")) for hk, hv in ch] != [(hk, hv) for hk, hv in h]:
            fail(f"{what}: record {i} headers {ch!r} != {h!r}")
"#;

fn python_round_trip(codec: &str, producer: &str, consumer: &str) {
    let broker = Broker::start(&[("message.max.bytes", "10485760")]);
    let topic = format!("py-{codec}");
    create_topic(&broker, &topic, 1);
    let script = format!(
        r#"{PY_RECORDS}
codec, topic, producer, consumer = os.environ["CODEC"], os.environ["TOPIC"], os.environ["PRODUCER"], os.environ["CONSUMER"]
records = make_records()
produce = produce_kafka_python if producer == "kafka-python" else produce_confluent
consume = consume_kafka_python if consumer == "kafka-python" else consume_confluent
offsets = produce(topic, records, codec)
consumed = consume(topic, len(records))
check(records, offsets, consumed, f"{{producer}} -> {{consumer}} with {{codec}}")
print("ok", len(consumed))
"#
    );
    let env = [
        ("CODEC", codec),
        ("TOPIC", &topic),
        ("PRODUCER", producer),
        ("CONSUMER", consumer),
    ];
    let out = python_env_ok(&script, &broker.bootstrap(), &env);
    assert!(out.contains("ok 3000"), "{out}");
}

#[test]
fn kcat_lists_metadata() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "listed", 3);
    let out = kcat(&["-b", &broker.bootstrap(), "-L"], b"");
    let stdout = expect_success("kcat -L", &out);
    assert!(stdout.contains(" 1 brokers:"), "kcat -L:\n{stdout}");
    assert!(
        stdout.contains(&format!("broker 0 at {}", broker.bootstrap())),
        "kcat -L:\n{stdout}"
    );
    assert!(
        stdout.contains("topic \"listed\" with 3 partitions:"),
        "kcat -L:\n{stdout}"
    );
    for p in 0..3 {
        let line = format!("partition {p}, leader 0, replicas: 0, isrs: 0");
        assert!(stdout.contains(&line), "kcat -L lacks {line:?}:\n{stdout}");
    }
}

#[test]
fn auto_create_topic_on_produce() {
    let broker = Broker::start(&[("auto.create.topics.enable", "true"), ("num.partitions", "2")]);
    let out = python_ok(
        r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
for i in range(10):
    p.produce("auto-created", value=str(i).encode(), partition=i % 2)
if p.flush(60) != 0:
    fail("not delivered")
md = p.list_topics("auto-created", timeout=10).topics["auto-created"]
print("partitions", len(md.partitions))
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("partitions 2"), "{out}");
}

#[test]
fn consumer_group_resumes_from_committed_offset() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "grp", 2);
    let out = python_ok(
        r#"
from confluent_kafka import Producer, Consumer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
for i in range(200):
    p.produce("grp", value=f"{i}".encode(), partition=i % 2)
if p.flush(60) != 0:
    fail("not delivered")

def member():
    return Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "resume", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 10000})

def read(c, n, timeout=60):
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail(f"consumer error: {m.error()}")
        got.append(m)
    return got

c = member()
c.subscribe(["grp"])
first = read(c, 120)
if len(first) != 120:
    fail(f"first member read {len(first)} of 120")
retry_coordinator(lambda: c.commit(asynchronous=False), "commit")
c.close()

c = member()
c.subscribe(["grp"])
rest = read(c, 80)
extra = read(c, 1, timeout=3)
c.close()
seen = sorted(int(m.value()) for m in first + rest)
if seen != list(range(200)) or extra:
    fail(f"group did not resume exactly after its commit: {len(first)} + {len(rest)} + {len(extra)} records")
print("ok")
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn idempotent_producer() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "idem", 1);
    let out = python_ok(
        r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "linger.ms": 5})
for i in range(5000):
    while True:
        try:
            p.produce("idem", value=f"{i}".encode(), partition=0)
            break
        except BufferError:
            p.poll(0.1)
if p.flush(60) != 0:
    fail("not delivered")
got = consume_all("idem", 0, 5000)
if [(o, int(v)) for o, _, v, _ in got] != [(i, i) for i in range(5000)]:
    fail("idempotent produce did not land exactly once, in order")
print("ok")
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn record_larger_than_fetch_max_bytes_is_still_returned() {
    let broker = Broker::start(&[("message.max.bytes", "5242880")]);
    create_topic(&broker, "big", 1);
    let out = python_ok(
        r#"
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
big = bytes(range(256)) * (3 * 1024 * 1024 // 256)
p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", max_request_size=10485760)
p.send("big", value=b"small-1", partition=0).get(timeout=30)
p.send("big", value=big, partition=0).get(timeout=30)
p.send("big", value=b"small-2", partition=0).get(timeout=30)
p.close()
# Fetch limits far below the record size: the broker still returns the first batch whole (KIP-74).
c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=20000,
                  fetch_max_bytes=1024, max_partition_fetch_bytes=1024)
tp = TopicPartition("big", 0)
c.assign([tp])
c.seek_to_beginning(tp)
values = []
for m in c:
    values.append(m.value)
    if len(values) == 3:
        break
if values != [b"small-1", big, b"small-2"]:
    fail(f"got {[len(v) for v in values]} bytes")
print("ok")
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn long_poll_fetch_wakes_up_on_produce() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "wake", 1);
    let out = python_ok(
        r#"
import threading
from confluent_kafka import Producer, Consumer, TopicPartition, OFFSET_END
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 0})
p.produce("wake", value=b"warm-up", partition=0)
p.flush(10)
# The consumer's fetches wait up to 5 s for data: a new record must end the wait, not the timeout.
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "wake", "fetch.wait.max.ms": 5000,
              "fetch.min.bytes": 1, "enable.auto.commit": False})
c.assign([TopicPartition("wake", 0, OFFSET_END)])
c.poll(1.0)
worst = 0.0
for i in range(5):
    time.sleep(1.0)  # let the consumer's fetch park on the broker
    sent = time.time()
    p.produce("wake", value=f"{i}".encode(), partition=0)
    p.flush(10)
    m = None
    while m is None and time.time() - sent < 10:
        m = c.poll(0.05)
    if m is None or m.error() or m.value() != f"{i}".encode():
        fail(f"record {i} not received: {m and (m.error() or m.value())}")
    worst = max(worst, time.time() - sent)
c.close()
print(f"worst {worst:.3f}")
if worst > 2.0:
    fail(f"a parked fetch returned {worst:.1f} s after the produce: not woken by new data")
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("worst"), "{out}");
}

#[test]
fn offsets_for_times() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "timed", 1);
    let out = python_ok(
        r#"
from confluent_kafka import Producer, Consumer, TopicPartition
base = int(time.time() * 1000) - 100000
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 0})
for i in range(100):
    p.produce("timed", value=f"{i}".encode(), partition=0, timestamp=base + i * 1000)
    p.flush(10)
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "timed"})
for query, want in ((base - 1, 0), (base, 0), (base + 42500, 43), (base + 99000, 99), (base + 200000, -1)):
    got = c.offsets_for_times([TopicPartition("timed", 0, query)], timeout=10)[0]
    if got.error or got.offset != want:
        fail(f"offsets_for_times({query - base} ms after base) = {got.offset} {got.error}, want {want}")
c.close()
print("ok")
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn produce_errors_reach_the_client() {
    let broker = Broker::start(&[("message.max.bytes", "100000"), ("auto.create.topics.enable", "false")]);
    create_topic(&broker, "strict", 1);
    let out = python_ok(
        r#"
from confluent_kafka import Producer, KafkaException
errors = {}
def report(name):
    def cb(err, msg):
        errors[name] = err.name() if err else None
    return cb
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "message.timeout.ms": 10000, "linger.ms": 0})
# One at a time, so that no two records share a batch.
for name, topic, value, partition in (("too-large", "strict", b"x" * 200000, 0), ("fine", "strict", b"fine", 0),
                                      ("no-such-partition", "strict", b"x", 7), ("no-such-topic", "no-such-topic", b"x", 0)):
    try:
        p.produce(topic, value=value, partition=partition, on_delivery=report(name))
    except KafkaException as e:  # refused locally once metadata says the partition does not exist
        errors[name] = e.args[0].name()
    p.flush(30)
print(errors)
want = {"too-large": {"MSG_SIZE_TOO_LARGE"}, "fine": {None}, "no-such-partition": {"_UNKNOWN_PARTITION"},
        # librdkafka waits for the topic to appear, then gives up
        "no-such-topic": {"_UNKNOWN_TOPIC", "UNKNOWN_TOPIC_OR_PART", "_MSG_TIMED_OUT"}}
for k, v in want.items():
    if errors.get(k, "no delivery report") not in v:
        fail(f"{k}: got {errors.get(k, 'no delivery report')}, want one of {v}")
print("ok")
"#,
        &broker.bootstrap(),
    );
    assert!(out.contains("ok"), "{out}");
}
