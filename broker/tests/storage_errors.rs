//! Errors that back off (issue 15): a storage error that lasts is logged once per interval with a count,
//! never once per attempt, while the broker keeps serving what is healthy.
//!
//! - `a_full_log_dir_is_logged_a_few_times_a_minute`: one broker with two log dirs, the second a small
//!   tmpfs filled to ENOSPC. For a minute a librdkafka producer keeps sending to a partition in the full
//!   dir (about twenty failing Produce requests a second), while rounds of records go to a partition in
//!   the healthy dir and are read back. The healthy rounds all succeed, the full partition answers
//!   KAFKA_STORAGE_ERROR, and the broker's log holds a handful of lines about it.
//! - `running_out_of_file_descriptors_backs_off_and_recovers`: the broker's soft open file limit is
//!   lowered to 256 (`prlimit` on the running process) and a topic of 400 partitions is created (each
//!   keeps its segment file open: the open-file budget was sized from the limit at start-up), and a few
//!   clients connect. The partitions that cannot get their files are retried with
//!   backoff, as is accepting the waiting connections; the log holds a few lines about it, not one per
//!   attempt or per partition; once the limit is raised every partition is
//!   created and takes records.
//!
//! Mounting a tmpfs and lowering another process's limit need root (CI runs as root); elsewhere the
//! tests say so and pass without running.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::disk::*;
use common::*;

/// For DURATION seconds: a producer (retries=0, so each failure reports the broker's error) sends to
/// partition SICK every 50 ms; every 2 s a round of 50 records goes to partition HEALTHY (acks=all)
/// and is read back. Prints `healthy_rounds=<n> sick_ok=<n> sick_errors=<dict>`.
const PY_SICK_AND_HEALTHY: &str = r#"
from confluent_kafka import Producer, Consumer, TopicPartition
topic = os.environ["TOPIC"]
sick, healthy = int(os.environ["SICK"]), int(os.environ["HEALTHY"])
duration = float(os.environ["DURATION"])
errors, sick_ok = {}, 0
def on_sick(err, msg):
    global sick_ok
    if err is None:
        sick_ok += 1
    else:
        errors[err.name()] = errors.get(err.name(), 0) + 1
sp = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "retries": 0, "linger.ms": 0,
               "message.timeout.ms": 5000})
hp = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "message.timeout.ms": 10000})
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused", "enable.auto.commit": False})
rounds, next_round, end = 0, 0.0, time.time() + duration
while time.time() < end:
    sp.produce(topic, value=b"sick", partition=sick, on_delivery=on_sick)
    sp.poll(0.05)
    if time.time() < next_round:
        continue
    next_round = time.time() + 2.0
    acked = []
    def on_healthy(err, msg):
        if err is not None:
            fail(f"round {rounds}: a record to the healthy partition failed: {err}")
        acked.append(msg.offset())
    values = [b"round-%d-%d" % (rounds, i) for i in range(50)]
    for v in values:
        hp.produce(topic, value=v, partition=healthy, on_delivery=on_healthy)
    if hp.flush(15) != 0 or len(acked) != 50:
        fail(f"round {rounds}: only {len(acked)} of 50 records to the healthy partition acknowledged")
    c.assign([TopicPartition(topic, healthy, min(acked))])
    got, deadline = [], time.time() + 15
    while len(got) < 50 and time.time() < deadline:
        for m in c.consume(num_messages=100, timeout=0.5):
            if m.error():
                fail(f"round {rounds}: fetch from the healthy partition failed: {m.error()}")
            got.append(m.value())
    if got[:50] != values:
        fail(f"round {rounds}: read back {len(got)} records, not the 50 produced")
    rounds += 1
sp.flush(10)
c.close()
print(f"healthy_rounds={rounds} sick_ok={sick_ok} sick_errors={errors}")
"#;

/// The broker log's lines after byte `from` that are warnings or errors.
fn warnings_after(log: &str, from: usize) -> Vec<String> {
    log[from.min(log.len())..]
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(str::to_string)
        .collect()
}

/// What a warning line is about: its module and the first words of its message, without the time
/// and without the counts a rate-limited repeat adds.
fn kind_of(line: &str) -> String {
    let mut words = line.split_whitespace().skip(2);
    let target = words.next().unwrap_or_default();
    let head: Vec<&str> = words.take(4).collect();
    format!("{target} {}", head.join(" "))
}

/// The kind of warning logged most often among `lines`, with its count.
fn most_repeated_kind(lines: &[String]) -> (String, usize) {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in lines {
        *counts.entry(kind_of(line)).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(_, n)| *n).unwrap_or_default()
}

/// The log dir holding partition `p` of `topic`.
fn holds(dir: &std::path::Path, topic: &str, p: u32) -> bool {
    dir.join(format!("{topic}-{p}")).is_dir()
}

#[test]
fn a_full_log_dir_is_logged_a_few_times_a_minute() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs this test as root)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (healthy_dir, sick_dir) = (root.path().join("healthy"), root.path().join("sick"));
    std::fs::create_dir_all(&sick_dir).unwrap();
    let disk = Tmpfs::mount_over(&sick_dir, 16);
    // The first dir also holds the embedded coordinator's metadata log: the healthy one.
    let dirs = format!("{},{}", healthy_dir.display(), sick_dir.display());
    let broker = Broker::start(&[("log.dirs", &dirs)]);
    let topic = "spread";
    create_topic(&broker, topic, 4);
    wait_for("the partitions' logs", Duration::from_secs(20), || {
        (0..4).all(|p| holds(&healthy_dir, topic, p) || holds(&sick_dir, topic, p))
    });
    let sick = (0..4)
        .find(|&p| holds(&sick_dir, topic, p))
        .expect("a partition in the tmpfs");
    let healthy = (0..4)
        .find(|&p| holds(&healthy_dir, topic, p))
        .expect("a partition in the healthy dir");

    disk.fill();
    let mark = broker.log_text().len();
    let started = Instant::now();
    let (sick_s, healthy_s) = (sick.to_string(), healthy.to_string());
    let env = [
        ("TOPIC", topic),
        ("SICK", sick_s.as_str()),
        ("HEALTHY", healthy_s.as_str()),
        ("DURATION", "60"),
    ];
    let out = python_env_ok(PY_SICK_AND_HEALTHY, &broker.bootstrap(), &env);
    let elapsed = started.elapsed();
    eprintln!("{out}");
    let rounds: u32 = out
        .split("healthy_rounds=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the script's summary");
    assert!(
        rounds >= 15,
        "the healthy partition served only {rounds} rounds in {elapsed:?}: {out}"
    );
    assert!(
        out.contains("KAFKA_STORAGE_ERROR"),
        "the full dir's partition must refuse writes: {out}"
    );

    let log = broker.log_text();
    let lines = warnings_after(&log, mark);
    eprintln!(
        "{} warning/error lines in {elapsed:?}:\n{}",
        lines.len(),
        lines.join("\n")
    );
    // Per kind (appends, checkpoints) once per 30 s, the dir's reminder once a minute, the first failure
    // once: about eight lines a minute where per-attempt logging would write thousands.
    assert!(
        lines.len() <= 10,
        "{} warning/error lines about the full dir in {elapsed:?}",
        lines.len()
    );
    assert!(
        lines.iter().any(|l| l.contains("No space left")),
        "the error is logged at least once"
    );
    assert!(
        log[mark..].lines().count() <= 30,
        "the broker wrote {} lines in {elapsed:?}",
        log[mark..].lines().count()
    );
    drop(broker);
    drop(disk);
}

/// The hard open file limit of process `pid` (`/proc/PID/limits`).
fn hard_open_file_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read /proc/PID/limits");
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files row");
    row.split_whitespace()
        .nth(4)
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

/// `prlimit --pid PID --nofile=SOFT:HARD` with the hard limit unchanged (raising a hard limit needs
/// CAP_SYS_RESOURCE, which a container's root may lack; the soft one may move up to the hard one).
fn set_soft_open_file_limit(pid: u32, soft: u64) {
    let hard = hard_open_file_limit(pid);
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={}:{hard}", soft.min(hard)))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit --nofile={soft}:{hard} on {pid}");
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Partitions of the topic created while the broker's soft limit is 256 open files.
const MANY: u32 = 400;

#[test]
fn running_out_of_file_descriptors_backs_off_and_recovers() {
    if !is_root() {
        eprintln!("SKIPPED: lowering the broker's open file limit needs root (CI runs this test as root)");
        return;
    }
    let broker = Broker::start(&[]);
    create_topic(&broker, "before", 1);
    produce_numbers(&broker.bootstrap(), "before", 100);
    let pid = broker.pid();
    set_soft_open_file_limit(pid, 256);
    let mark = broker.log_text().len();
    let started = Instant::now();
    // The controller creates the topic (metadata only); the broker then creates each partition's
    // files and keeps its segment file open (log.open.files.max was sized from the limit at
    // start-up, far above 256), so it runs out of descriptors part way.
    create_topic(&broker, "many", MANY);
    wait_for(
        "the broker to run out of file descriptors",
        Duration::from_secs(20),
        || broker.log_text()[mark..].contains("Too many open files"),
    );
    // Connections arriving now wait in the listen backlog: the accept loop fails with EMFILE, backs
    // off and says so once.
    let waiting: Vec<std::net::TcpStream> = (0..6)
        .map(|_| std::net::TcpStream::connect(broker.bootstrap()).expect("connect (the backlog takes it)"))
        .collect();
    // Retried with backoff for a while: the log must not grow with every attempt.
    std::thread::sleep(Duration::from_secs(40).saturating_sub(started.elapsed()));
    let log = broker.log_text();
    let lines = warnings_after(&log, mark);
    eprintln!(
        "{} warning/error lines in {:?} (open fds {}):\n{}",
        lines.len(),
        started.elapsed(),
        open_files(pid),
        lines.join("\n")
    );
    // Each kind of failure (accepting, creating partitions, checkpoints, ...) is logged when it
    // starts and then at most once per 30 s with a count: twice in 40 s, where logging every attempt
    // would repeat it dozens of times.
    let (kind, repeats) = most_repeated_kind(&lines);
    assert!(
        repeats <= 2,
        "'{kind}' logged {repeats} times in {:?} while out of file descriptors",
        started.elapsed()
    );
    assert!(
        lines.len() <= 14,
        "{} warning/error lines in {:?} while out of file descriptors",
        lines.len(),
        started.elapsed()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("accept failed") && l.contains("raise the open file limit")),
        "the accept loop says why connections wait"
    );
    drop(waiting);

    // Once the limit is raised, the retry creates the rest within its backoff and every partition
    // takes records.
    set_soft_open_file_limit(pid, 4096);
    let raised = Instant::now();
    wait_for("the logs of all the partitions", Duration::from_secs(30), || {
        broker.log_text()[mark..].contains("the logs follow metadata again")
    });
    eprintln!(
        "all partitions created {:?} after the limit was raised",
        raised.elapsed()
    );
    produce_numbers(&broker.bootstrap(), "many", 1500);
    assert_eq!(high_watermark_total(&broker.bootstrap(), "many", MANY), 1500);
    assert_eq!(high_watermark_total(&broker.bootstrap(), "before", 1), 100);
}
