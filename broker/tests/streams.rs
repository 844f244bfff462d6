//! Kafka Streams with `processing.guarantee=exactly_once_v2` against the broker: the word count of
//! `tests/java/WordCount.java` (Kafka Streams 4.x: a repartition topic, a RocksDB store with its
//! compacted changelog topic, transactions that commit the input offsets with the output, KIP-447
//! fencing through the consumer group) must produce exactly the counts the test computes itself,
//! also when the application is killed -9 part-way and restarted on the same state directory.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

const INPUT: &str = "lines";
const OUTPUT: &str = "counts";
const PARTITIONS: u32 = 3;

/// Line `i` of the input: 1 to 8 words from a vocabulary of 300, skewed so that a few words are
/// frequent and most are rare, with capitals and punctuation the application must strip.
fn line(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words = 1 + next() % 8;
    let mut out = Vec::new();
    for n in 0..words {
        let (a, b) = (next() % 300, next() % 300);
        let word = format!("word{}", a * b / 300);
        out.push(match n % 5 {
            0 => word.to_uppercase(),
            1 => format!("{word},"),
            _ => word,
        });
    }
    out.join(" ")
}

/// What the application must count for `lines`: lower case, split at every non-word character.
fn reference(lines: &[String]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for l in lines {
        for w in l
            .to_lowercase()
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
        {
            *counts.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

const PRODUCE_LINES: &str = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "linger.ms": 5,
              "partitioner": "murmur2_random"})
per_second = int(os.environ["PER_SECOND"])
start = time.time()
with open(os.environ["FILE"]) as f:
    for i, line in enumerate(f.read().split("\n")):
        p.produce(os.environ["TOPIC"], value=line)
        if i % 100 == 0:
            p.poll(0)
            if per_second:
                time.sleep(max(0.0, start + i / per_second - time.time()))
if p.flush(60) != 0:
    fail("records left unacknowledged")
"#;

/// Writes `lines` to `<temp>/<name>.txt` for [`PRODUCE_LINES`]; returns its environment.
fn lines_file(broker: &Broker, name: &str, lines: &[String]) -> String {
    let file = broker.temp_dir().join(format!("{name}.txt"));
    std::fs::write(&file, lines.join("\n")).unwrap();
    file.to_str().unwrap().to_string()
}

/// Produces `lines` (keyed by their file and line number, so they spread over the partitions) with librdkafka, idempotent, acks=all, as fast as it can.
fn produce_lines(broker: &Broker, lines: &[String]) {
    let file = lines_file(broker, "first", lines);
    python_env_ok(
        PRODUCE_LINES,
        &broker.bootstrap(),
        &[
            ("TOPIC", INPUT),
            ("FILE", &file),
            ("NAME", "first"),
            ("PER_SECOND", "0"),
        ],
    );
}

/// Produces `lines` in the background at `per_second` lines a second.
fn spawn_produce_lines(broker: &Broker, lines: &[String], per_second: u64) -> Child {
    let file = lines_file(broker, "second", lines);
    python_spawn(
        PRODUCE_LINES,
        &broker.bootstrap(),
        &[
            ("TOPIC", INPUT),
            ("FILE", &file),
            ("NAME", "second"),
            ("PER_SECOND", &per_second.to_string()),
        ],
        broker.temp_dir(),
        "produce-second",
    )
}

/// The output topic as a read_committed consumer sees it (librdkafka, every partition up to its
/// last stable offset): the last count of each word. A partition is done at its first end of
/// partition: while the app runs the output keeps growing, and a reader that waited for every
/// partition to be at its end at once could chase it forever.
fn committed_counts(broker: &Broker) -> BTreeMap<String, i64> {
    let script = r#"
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
topic, parts = os.environ["TOPIC"], int(os.environ["PARTITIONS"])
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "streams-check", "enable.auto.commit": False,
              "isolation.level": "read_committed", "check.crcs": True, "enable.partition.eof": True})
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
last, eof = {}, set()
deadline = time.time() + 60
while len(eof) < parts and time.time() < deadline:
    for m in c.consume(num_messages=10000, timeout=0.5):
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            fail(f"consumer error: {m.error()}")
        if len(m.value()) != 8:
            fail(f"count of {m.key()} is not a long: {m.value()!r}")
        last[m.key().decode()] = int.from_bytes(m.value(), "big", signed=True)
c.close()
if len(eof) < parts:
    fail("did not reach the end of every partition")
for k, v in sorted(last.items()):
    print(k, v)
"#;
    let parts = PARTITIONS.to_string();
    let stdout = python_env_ok(
        script,
        &broker.bootstrap(),
        &[("TOPIC", OUTPUT), ("PARTITIONS", &parts)],
    );
    stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("word count");
            (k.to_string(), v.parse().expect("a count"))
        })
        .collect()
}

/// Starts `WordCount` (run `n` of it: stdout and stderr go to `wordcount-<n>.out` / `.err`); every
/// run shares one state directory, as a restarted instance on the same machine does.
fn start_word_count(broker: &Broker, n: u32) -> Child {
    let dir = broker.temp_dir();
    let state = dir.join("streams-state");
    java_program(
        dir,
        "WordCount",
        &[&broker.bootstrap(), INPUT, OUTPUT, "wordcount", state.to_str().unwrap()],
    )
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(dir.join(format!("wordcount-{n}.out"))).unwrap())
    .stderr(std::fs::File::create(dir.join(format!("wordcount-{n}.err"))).unwrap())
    .spawn()
    .expect("start java WordCount")
}

fn app_log(broker: &Broker, n: u32) -> String {
    let dir = broker.temp_dir();
    let out = std::fs::read(dir.join(format!("wordcount-{n}.out"))).unwrap_or_default();
    let err = std::fs::read(dir.join(format!("wordcount-{n}.err"))).unwrap_or_default();
    format!("stdout:\n{}\nstderr:\n{}", tail(&out, 20), tail(&err, 60))
}

/// The words whose committed count differs from `expected` (at most 10), for failure messages.
fn differences(got: &BTreeMap<String, i64>, expected: &BTreeMap<String, i64>) -> String {
    let mut keys: Vec<&String> = got.keys().chain(expected.keys()).collect();
    keys.sort();
    keys.dedup();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != expected.get(*k))
        .map(|k| format!("{k}: got {:?}, expected {:?}", got.get(k), expected.get(k)))
        .collect();
    format!(
        "{} words differ, e.g. {}",
        diffs.len(),
        diffs.iter().take(10).cloned().collect::<Vec<_>>().join("; ")
    )
}

/// Waits until the committed output is exactly `expected`, failing (with the app's and the
/// broker's logs) when the app dies or `timeout` passes.
fn wait_for_counts(broker: &Broker, app: &mut Child, n: u32, expected: &BTreeMap<String, i64>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = committed_counts(broker);
        if &got == expected {
            return;
        }
        if let Some(status) = app.try_wait().expect("try_wait") {
            panic!(
                "WordCount run {n} exited ({status}) before the counts were right ({})\n{}\nbroker:\n{}",
                differences(&got, expected),
                app_log(broker, n),
                broker.log_tail(60)
            );
        }
        if Instant::now() > deadline {
            let _ = app.kill();
            panic!(
                "after {timeout:?} the committed counts are not the reference ({})\n{}\nbroker:\n{}",
                differences(&got, expected),
                app_log(broker, n),
                broker.log_tail(60)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `kafka-transactions list`: every transactional id with its state.
fn transactions(broker: &Broker) -> Vec<(String, String)> {
    let list = expect_success(
        "kafka-transactions list",
        &kafka_tool(
            "4",
            "transactions",
            &["--bootstrap-server", &broker.bootstrap(), "list"],
        ),
    );
    list.lines()
        .skip(1)
        .filter_map(|l| {
            let columns: Vec<&str> = l.split_whitespace().collect();
            Some((columns.first()?.to_string(), columns.get(3)?.to_string()))
        })
        .collect()
}

#[test]
fn kafka_streams_exactly_once_v2_word_count_is_exact_through_a_kill_of_the_app() {
    let _serial = serial();
    const LINES: u64 = 20_000;
    let broker = Broker::start(&[]);
    create_topic(&broker, INPUT, PARTITIONS);
    create_topic(&broker, OUTPUT, PARTITIONS);
    let lines: Vec<String> = (0..LINES).map(line).collect();
    let (first, second) = lines.split_at(LINES as usize / 2);

    // Run 1 counts the first half exactly.
    produce_lines(&broker, first);
    let started = Instant::now();
    let mut app = start_word_count(&broker, 1);
    wait_for_counts(&broker, &mut app, 1, &reference(first), Duration::from_secs(180));
    eprintln!("run 1 counted the first half in {:?}", started.elapsed());

    // The second half arrives over ~30 s; run 1 dies by kill -9 while it is arriving, as soon as some
    // of it is committed (a transaction in flight, its state store and changelog part-way).
    let mut producer = spawn_produce_lines(&broker, second, second.len() as u64 / 30);
    let half = reference(first);
    let started = Instant::now();
    wait_for(
        "run 1 to commit some of the second half",
        Duration::from_secs(120),
        || committed_counts(&broker) != half,
    );
    let _ = app.kill();
    let _ = app.wait();
    let killed_after = started.elapsed();
    if let Some(status) = producer.try_wait().expect("try_wait") {
        panic!(
            "the kill came after the whole second half was produced ({status}): {}",
            tail(
                &std::fs::read(broker.temp_dir().join("produce-second.err")).unwrap_or_default(),
                20
            )
        );
    }
    let at_kill = transactions(&broker);
    assert_eq!(at_kill.len(), 1, "one stream thread, one transactional id: {at_kill:?}");

    // Run 2 starts at once on the same state directory, so with the same process id and
    // transactional.id: its InitProducerId fences run 1's producer and aborts the transaction run 1
    // left open (unless the coordinator already did at its timeout), and its consumer waits for the
    // offsets that transaction left pending (KIP-447) before it fetches its positions.
    let started = Instant::now();
    let mut app = start_word_count(&broker, 2);
    eprintln!(
        "killed run 1 -9 {killed_after:?} into the second half, its transaction {:?}; committed then: {}",
        at_kill[0],
        differences(&committed_counts(&broker), &reference(&lines))
    );
    let produced = wait_child(&mut producer, Duration::from_secs(120));
    assert!(
        produced.success(),
        "producing the second half: {}",
        tail(
            &std::fs::read(broker.temp_dir().join("produce-second.err")).unwrap_or_default(),
            20
        )
    );

    // Run 2 must finish with exactly the reference: nothing the killed run had in flight is
    // counted twice or lost.
    let expected = reference(&lines);
    wait_for_counts(&broker, &mut app, 2, &expected, Duration::from_secs(240));
    eprintln!("run 2 finished the count in {:?}", started.elapsed());

    // A clean shutdown (SIGTERM closes the client) leaves the output as it is.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &app.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = wait_child(&mut app, Duration::from_secs(60));
    assert!(
        exit.code().is_some(),
        "WordCount closed ({exit})\n{}",
        app_log(&broker, 2)
    );
    let finally = committed_counts(&broker);
    assert!(
        finally == expected,
        "the counts after shutdown: {}",
        differences(&finally, &expected)
    );
    let after = transactions(&broker);
    assert_eq!(
        after,
        vec![(at_kill[0].0.clone(), "CompleteCommit".to_string())],
        "run 2 used run 1's transactional id and committed its last transaction"
    );
}
