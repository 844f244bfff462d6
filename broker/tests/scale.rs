//! Partitions at scale under a low open-file limit (issue 15): one broker started with `prlimit
//! --nofile=4096:4096` hosts 20,000 partitions (20 topics of 1,000), takes one record on each from
//! librdkafka, restarts, and gives every record back. Apache Kafka keeps a handle per segment file and
//! could not hold that many partitions under this limit; oxka keeps at most `log.open.files.max`
//! segment files open (half the limit by default) and no index file open at all, so the broker's
//! open files, sampled throughout, stay under that budget plus its few sockets and its own files.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: u64 = 4096;
/// `log.open.files.max` when unset: half the open-file limit.
const BUDGET: usize = 2048;
/// Files that are not segment files: the binary's own, log and metric sockets, client connections.
const OTHER_FILES: usize = 64;
const TOPICS: usize = 20;
const PARTITIONS: usize = 1000;

/// Samples the broker's open files every 200 ms until stopped; keeps the highest count.
struct FdSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FdSampler {
    fn start(pid: u32) -> FdSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                        peak.fetch_max(dir.count(), Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        FdSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

#[test]
fn twenty_thousand_partitions_under_an_open_file_limit_of_4096() {
    let mut broker = Broker::start_with_open_file_limit(&[("num.partitions", "1")], LIMIT);
    let bootstrap = broker.bootstrap();
    assert!(
        broker.log_text().contains(&format!("budget={BUDGET}")),
        "the broker logs its segment-file budget (half of {LIMIT})\n{}",
        broker.log_tail(20)
    );
    let sampler = FdSampler::start(broker.pid());
    let rss_empty = rss_mib(broker.pid());

    let started = Instant::now();
    let created = python_ok(
        &format!(
            r#"
from kafka.admin import KafkaAdminClient, NewTopic
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=300000)
for t in range({TOPICS}):
    admin.create_topics([NewTopic(f"scale-{{t}}", {PARTITIONS}, 1)], timeout_ms=300000)
print("created")
"#
        ),
        &bootstrap,
    );
    assert!(created.contains("created"), "{created}");
    let create_secs = started.elapsed().as_secs_f64();
    wait_for("every partition's log to exist", Duration::from_secs(120), || {
        partition_dirs(&broker) == TOPICS * PARTITIONS
    });

    let produced = python_ok(
        &format!(
            r#"
from confluent_kafka import Producer
errors = []
p = Producer({{"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 50, "enable.idempotence": True}})
def done(err, msg):
    if err: errors.append(str(err))
for t in range({TOPICS}):
    for part in range({PARTITIONS}):
        while True:
            try:
                p.produce(f"scale-{{t}}", value=f"scale-{{t}}/{{part}}".encode(), partition=part, on_delivery=done)
                break
            except BufferError:
                p.poll(0.1)
    p.poll(0)
left = p.flush(180)
print("left", left, "errors", len(errors), errors[:3])
"#
        ),
        &bootstrap,
    );
    assert!(produced.contains("left 0 errors 0"), "{produced}");
    let during_load = sampler.finish();

    let stopping = Instant::now();
    broker.stop();
    let stop_secs = stopping.elapsed().as_secs_f64();
    let starting = Instant::now();
    broker.relaunch();
    wait_for("the restarted broker to listen", Duration::from_secs(180), || {
        std::net::TcpStream::connect(broker.bootstrap()).is_ok()
    });
    let start_secs = starting.elapsed().as_secs_f64();
    let sampler = FdSampler::start(broker.pid());
    // Idle: loaded, listening, no client yet.
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle = rss_mib(broker.pid());

    let read = python_ok(
        &format!(
            r#"
import time
from confluent_kafka import Consumer, TopicPartition
c = Consumer({{"bootstrap.servers": BOOTSTRAP, "group.id": "scale-reader", "enable.auto.commit": False,
              "fetch.wait.max.ms": 100}})
c.assign([TopicPartition(f"scale-{{t}}", p, 0) for t in range({TOPICS}) for p in range({PARTITIONS})])
seen, wrong, deadline = set(), [], time.time() + 240
while len(seen) < {TOPICS} * {PARTITIONS} and time.time() < deadline:
    for m in c.consume(10000, 1.0):
        if m.error():
            continue
        want = f"{{m.topic()}}/{{m.partition()}}"
        if m.value().decode() != want or m.offset() != 0:
            wrong.append((want, m.offset(), m.value()))
        seen.add(want)
c.close()
print("read", len(seen), "wrong", len(wrong), wrong[:3])
"#
        ),
        &bootstrap,
    );
    let after_restart = sampler.finish();
    assert!(
        read.contains(&format!("read {} wrong 0", TOPICS * PARTITIONS)),
        "{read}"
    );
    eprintln!(
        "{} partitions: created in {create_secs:.1} s, stopped in {stop_secs:.1} s, restarted in {start_secs:.1} s; \
         peak open files {during_load} before and {after_restart} after the restart (limit {LIMIT}, segment budget {BUDGET}); \
         RSS {rss_empty:.0} MiB without partitions, {rss_idle:.0} MiB with them idle after the restart",
        TOPICS * PARTITIONS
    );
    for (when, peak) in [("before the restart", during_load), ("after it", after_restart)] {
        assert!(
            peak <= BUDGET + OTHER_FILES,
            "{peak} files open {when}: more than the {BUDGET} segment files budgeted and {OTHER_FILES} others"
        );
    }
    let log = broker.log_text();
    assert!(
        !log.contains("Too many open files") && !log.contains("open-file limit"),
        "the broker ran into its open-file limit\n{}",
        broker.log_tail(40)
    );
}

/// The process's resident set size in MiB (`VmRSS` of /proc/PID/status).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn partition_dirs(broker: &Broker) -> usize {
    std::fs::read_dir(broker.data_dir()).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("scale-"))
            .count()
    })
}
