//! Group members as processes, for the group tests (`groups_acceptance.rs`, `consumer_groups.rs`):
//! the Java `tests/java/GroupMember.java` and a librdkafka twin printing the same lines (ASSIGN,
//! REVOKE, LOST, OWNED, GEN, REC, EVENT), readers of those lines, and a numbered producer that runs
//! until told to stop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// A child process killed (SIGKILL) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn kill9(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reap");
    }
}

/// Compiles `tests/java/<class>.java` against Kafka 4.x's client jars into `work/classes`; returns the
/// classpath to run it with.
pub fn java_classpath(work: &Path, classes_to_compile: &[&str]) -> String {
    let kafka_cp_file = tool_cache().join("kafka-4/classpath.txt");
    let kafka_cp = std::fs::read_to_string(&kafka_cp_file).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run scripts/install-tools.sh",
            kafka_cp_file.display()
        )
    });
    let kafka_cp = kafka_cp.trim();
    let classes = work.join("classes");
    std::fs::create_dir_all(&classes).unwrap();
    let mut javac = Command::new("javac");
    javac.arg("-d").arg(&classes).arg("-cp").arg(kafka_cp);
    for class in classes_to_compile {
        javac.arg(repo_root().join(format!("broker/tests/java/{class}.java")));
    }
    expect_success("javac", &run(javac, b"", Duration::from_secs(120)));
    format!("{}:{kafka_cp}", classes.display())
}

pub fn java_spawn(classpath: &str, dir: &Path, name: &str, args: &[&str]) -> Proc {
    // Kafka's logging at WARN, except the group coordination of the consumer at INFO: its stderr
    // then says why a member (re)joined.
    let log4j = dir.join("log4j2.properties");
    std::fs::write(
        &log4j,
        "status = error\n\
         appender.stderr.type = Console\n\
         appender.stderr.name = STDERR\n\
         appender.stderr.target = SYSTEM_ERR\n\
         appender.stderr.layout.type = PatternLayout\n\
         appender.stderr.layout.pattern = [%d] %p %m (%c)%n\n\
         rootLogger.level = warn\n\
         rootLogger.appenderRef.stderr.ref = STDERR\n\
         logger.coordinator.name = org.apache.kafka.clients.consumer.internals\n\
         logger.coordinator.level = info\n",
    )
    .unwrap();
    let child = Command::new("java")
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(classpath)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{name}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap())
        .spawn()
        .expect("start java");
    Proc(child)
}

/// librdkafka (confluent-kafka) group member printing the same lines as `GroupMember.java`.
pub const PY_MEMBER: &str = r#"
from confluent_kafka import Consumer
owned = set()
def say(s):
    print(s, flush=True)
def parts(ps):
    return ",".join(str(p) for p in sorted(tp.partition for tp in ps))
def show():
    say("OWNED " + ",".join(str(p) for p in sorted(owned)))
def event(kind, ps):
    say(f"EVENT {int(time.time() * 1000)} {kind} {parts(ps)}")
def on_assign(c, ps):
    owned.update(tp.partition for tp in ps)
    event("ASSIGN", ps)
    say("ASSIGN " + parts(ps))
    show()
def on_revoke(c, ps):
    if ps:
        owned.difference_update(tp.partition for tp in ps)
        event("REVOKE", ps)
        say("REVOKE " + parts(ps))
        show()
def on_lost(c, ps):
    owned.difference_update(tp.partition for tp in ps)
    event("LOST", ps)
    say("LOST " + parts(ps))
    show()
conf = {"bootstrap.servers": BOOTSTRAP, "group.id": os.environ["GROUP"], "client.id": os.environ["NAME"],
        "auto.offset.reset": "earliest", "auto.commit.interval.ms": 500}
if os.environ["STRATEGY"] == "consumer":
    # KIP-848: the broker assigns; session and heartbeat timing are the broker's.
    conf["group.protocol"] = "consumer"
else:
    conf.update({"partition.assignment.strategy": os.environ["STRATEGY"],
                 "session.timeout.ms": int(os.environ["SESSION"]), "heartbeat.interval.ms": 500})
if os.environ["INSTANCE"] != "-":
    conf["group.instance.id"] = os.environ["INSTANCE"]
c = Consumer(conf)
c.subscribe([os.environ["TOPIC"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
while True:
    for m in c.consume(500, 0.1):
        if m.error():
            say(f"ERR {m.error()}")
        else:
            say(f"REC {m.partition()} {m.offset()} {m.value().decode()}")
"#;

pub fn py_member(
    broker: &Broker,
    dir: &Path,
    name: &str,
    topic: &str,
    group: &str,
    strategy: &str,
    session_ms: &str,
) -> Proc {
    Proc(python_spawn(
        PY_MEMBER,
        &broker.bootstrap(),
        &[
            ("GROUP", group),
            ("NAME", name),
            ("STRATEGY", strategy),
            ("SESSION", session_ms),
            ("INSTANCE", "-"),
            ("TOPIC", topic),
        ],
        dir,
        name,
    ))
}

/// One `EVENT <ms> <ASSIGN|REVOKE|LOST> <p,p>` line: when a member's rebalance callback ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipEvent {
    pub at_ms: i64,
    pub kind: String,
    pub partitions: BTreeSet<i32>,
}

/// The rebalance callbacks a member logged, with their wall-clock times.
pub fn ownership_events(dir: &Path, name: &str) -> Vec<OwnershipEvent> {
    lines(dir, name)
        .iter()
        .filter_map(|l| {
            let mut cols = l.strip_prefix("EVENT ")?.splitn(3, ' ');
            Some(OwnershipEvent {
                at_ms: cols.next()?.parse().ok()?,
                kind: cols.next()?.to_string(),
                partitions: parse_set(cols.next().unwrap_or("")),
            })
        })
        .collect()
}

/// The lines a member printed so far (`<dir>/<name>.out`).
pub fn lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{name}.out")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn parse_set(list: &str) -> BTreeSet<i32> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// The partitions a member owns according to its last OWNED line.
pub fn owned(dir: &Path, name: &str) -> BTreeSet<i32> {
    lines(dir, name)
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("OWNED "))
        .map(parse_set)
        .unwrap_or_default()
}

/// Rebalance callback lines (ASSIGN/REVOKE/LOST) a member printed after its first `skip` lines.
pub fn rebalance_events_after(dir: &Path, name: &str, skip: usize) -> Vec<String> {
    lines(dir, name)
        .into_iter()
        .skip(skip)
        .filter(|l| l.starts_with("ASSIGN") || l.starts_with("REVOKE") || l.starts_with("LOST"))
        .collect()
}

/// GEN values a member printed after its first `skip` lines.
pub fn generations_after(dir: &Path, name: &str, skip: usize) -> Vec<i32> {
    lines(dir, name)
        .into_iter()
        .skip(skip)
        .filter_map(|l| l.strip_prefix("GEN ").map(|g| g.parse().unwrap()))
        .collect()
}

/// Every `REC partition offset value` line of the members.
pub fn records(dir: &Path, names: &[&str]) -> Vec<(i32, i64, String)> {
    names
        .iter()
        .flat_map(|n| lines(dir, n))
        .filter_map(|l| {
            let rest = l.strip_prefix("REC ")?;
            let cols: Vec<&str> = rest.split(' ').collect();
            Some((cols[0].parse().unwrap(), cols[1].parse().unwrap(), cols[2].to_string()))
        })
        .collect()
}

/// Each of `partitions` owned by exactly one of `members`, and every member owns some.
pub fn one_owner_each(dir: &Path, members: &[&str], partitions: i32) -> Result<(), String> {
    let sets: Vec<(&str, BTreeSet<i32>)> = members.iter().map(|m| (*m, owned(dir, m))).collect();
    for p in 0..partitions {
        let owners: Vec<&str> = sets.iter().filter(|(_, s)| s.contains(&p)).map(|(m, _)| *m).collect();
        if owners.len() != 1 {
            return Err(format!("partition {p} owned by {owners:?}; ownership {sets:?}"));
        }
    }
    if let Some((m, _)) = sets.iter().find(|(_, s)| s.is_empty()) {
        return Err(format!("{m} owns nothing; ownership {sets:?}"));
    }
    Ok(())
}

pub fn wait_one_owner_each(dir: &Path, members: &[&str], partitions: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match one_owner_each(dir, members, partitions) {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                let outputs: String = members
                    .iter()
                    .map(|m| {
                        let events: Vec<String> = lines(dir, m).into_iter().filter(|l| !l.starts_with("REC")).collect();
                        format!(
                            "--- {m}: {events:?}\n{}\n",
                            std::fs::read_to_string(dir.join(format!("{m}.err")))
                                .map(|s| tail(s.as_bytes(), 10))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                panic!("no single owner per partition after {timeout:?}: {e}\n{outputs}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Produces numbered records (value = key = the number, default partitioner) until `<dir>/producer.stop`
/// exists; then prints `PRODUCED <n>` and `END <partition> <next offset>` per partition it wrote to.
pub const PY_PRODUCER: &str = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
ends = {}
def report(err, msg):
    if err:
        fail(f"delivery failed: {err}")
    ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)
n = 0
while not os.path.exists(os.environ["STOP"]):
    p.produce(os.environ["TOPIC"], key=str(n), value=str(n), on_delivery=report)
    n += 1
    p.poll(0)
    time.sleep(0.005)
if p.flush(60) != 0:
    fail("records left unflushed")
print(f"PRODUCED {n}")
for part, end in sorted(ends.items()):
    print(f"END {part} {end}")
"#;

/// Stops the producer started with `PY_PRODUCER` (through its `stop` file) and checks that `members`
/// together consumed every record it produced, with no offset of any partition skipped (waiting up to
/// `drain` for them to catch up). Returns how many records were produced.
pub fn stop_producer_and_check_consumed(
    dir: &Path,
    producer: &mut Proc,
    stop: &Path,
    members: &[&str],
    drain: Duration,
) -> usize {
    std::fs::write(stop, "").unwrap();
    let status = producer.0.wait().unwrap();
    let report = std::fs::read_to_string(dir.join("producer.out")).unwrap();
    assert!(
        status.success(),
        "producer failed: {report}\n{}",
        std::fs::read_to_string(dir.join("producer.err")).unwrap_or_default()
    );
    let produced: usize = report
        .lines()
        .find_map(|l| l.strip_prefix("PRODUCED "))
        .expect("PRODUCED line")
        .parse()
        .unwrap();
    let ends: std::collections::BTreeMap<i32, i64> = report
        .lines()
        .filter_map(|l| l.strip_prefix("END "))
        .map(|l| {
            let (p, e) = l.split_once(' ').unwrap();
            (p.parse().unwrap(), e.parse().unwrap())
        })
        .collect();
    assert!(produced > 1000, "the producer ran through the scenario: {report}");
    let consumed_all = || {
        let values: BTreeSet<usize> = records(dir, members)
            .into_iter()
            .map(|(_, _, v)| v.parse().unwrap())
            .collect();
        values.len() == produced && values.iter().all(|v| *v < produced)
    };
    wait_for("every produced record to be consumed", drain, consumed_all);
    let mut offsets: std::collections::BTreeMap<i32, BTreeSet<i64>> = Default::default();
    for (p, off, _) in records(dir, members) {
        offsets.entry(p).or_default().insert(off);
    }
    for (p, end) in &ends {
        let got = offsets.get(p).cloned().unwrap_or_default();
        let missing: Vec<i64> = (0..*end).filter(|o| !got.contains(o)).collect();
        assert!(
            missing.is_empty(),
            "partition {p}: offsets {missing:?} never consumed (end {end})"
        );
    }
    produced
}

/// One member's ownership of one partition: from its ASSIGN callback to its REVOKE/LOST callback (or
/// its death, or the end of the test).
#[derive(Debug)]
pub struct Ownership {
    pub member: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Every ownership interval of `members`, by partition; `died` gives the kill time of killed members.
pub fn ownership(dir: &Path, members: &[&str], died: &BTreeMap<&str, i64>) -> BTreeMap<i32, Vec<Ownership>> {
    let mut out: BTreeMap<i32, Vec<Ownership>> = BTreeMap::new();
    for member in members {
        let mut open: BTreeMap<i32, i64> = BTreeMap::new();
        for e in ownership_events(dir, member) {
            for p in &e.partitions {
                if e.kind == "ASSIGN" {
                    open.entry(*p).or_insert(e.at_ms);
                } else if let Some(from_ms) = open.remove(p) {
                    out.entry(*p).or_default().push(Ownership {
                        member: member.to_string(),
                        from_ms,
                        to_ms: e.at_ms,
                    });
                }
            }
        }
        let end = died.get(member).copied().unwrap_or(i64::MAX);
        for (p, from_ms) in open {
            out.entry(p).or_default().push(Ownership {
                member: member.to_string(),
                from_ms,
                to_ms: end,
            });
        }
    }
    out
}

/// No two members owned a partition at the same moment.
pub fn assert_one_owner_at_a_time(dir: &Path, members: &[&str], died: &BTreeMap<&str, i64>) {
    for (p, mut spans) in ownership(dir, members, died) {
        spans.sort_by_key(|s| s.from_ms);
        for pair in spans.windows(2) {
            assert!(
                pair[1].from_ms >= pair[0].to_ms,
                "partition {p} owned by {} and {} at once: {:?} and {:?}",
                pair[0].member,
                pair[1].member,
                pair[0],
                pair[1]
            );
        }
    }
}

/// Asks a Java member to leave the group (close()) and waits until it has.
pub fn java_leave(dir: &Path, name: &str, mut member: Proc) {
    std::fs::write(dir.join(format!("{name}.leave")), "").unwrap();
    wait_for(&format!("{name} to leave"), Duration::from_secs(30), || {
        lines(dir, name).iter().any(|l| l == "CLOSED")
    });
    let _ = member.0.wait();
}

/// Kafka 4.x's `kafka-consumer-groups` against `broker`; its stdout (the run must succeed).
pub fn consumer_groups_tool(broker: &Broker, args: &[&str]) -> String {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
    all.extend_from_slice(args);
    let out = kafka_tool("4", "consumer-groups", &all);
    expect_success(&format!("kafka-consumer-groups {args:?}"), &out)
}
