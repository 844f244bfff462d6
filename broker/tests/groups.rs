//! Consumer groups with real clients: Kafka's console consumer commits and resumes where it left off,
//! `kafka-consumer-groups` shows committed offsets and lag, committed offsets survive a graceful
//! restart and a kill -9, and several librdkafka consumers share a topic (eager and cooperative
//! assignors, a static member restarting without a rebalance).

mod common;

use std::collections::BTreeSet;

use common::*;

const TOPIC: &str = "events";

/// Produces `count` keyed records `v<first>..` with the console producer (keys spread them over partitions).
fn produce(broker: &Broker, first: usize, count: usize) {
    let input: String = (first..first + count).map(|i| format!("k{i}:v{i}\n")).collect();
    let out = kafka_tool_stdin(
        "4",
        "console-producer",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            TOPIC,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        input.as_bytes(),
        120,
    );
    expect_success("console-producer", &out);
}

/// Consumes exactly `count` records as a member of `group`; returns their values.
fn consume(broker: &Broker, group: &str, count: usize) -> Vec<String> {
    let max = count.to_string();
    let out = kafka_tool(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            TOPIC,
            "--group",
            group,
            "--from-beginning",
            "--max-messages",
            &max,
            "--timeout-ms",
            "60000",
        ],
    );
    let stdout = expect_success("console-consumer", &out);
    let values: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with('v'))
        .map(str::to_string)
        .collect();
    assert_eq!(values.len(), count, "console-consumer output:\n{stdout}");
    values
}

/// Committed offset, log end offset and lag summed over the partitions `kafka-consumer-groups --describe` lists.
fn describe_totals(broker: &Broker, group: &str) -> (i64, i64, i64) {
    let out = kafka_tool(
        "4",
        "consumer-groups",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--describe",
            "--group",
            group,
        ],
    );
    let stdout = expect_success("kafka-consumer-groups --describe", &out);
    let mut totals = (0, 0, 0);
    let mut rows = 0;
    for cols in stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()) {
        if cols.len() >= 6 && cols[0] == group && cols[1] == TOPIC {
            let num = |i: usize| {
                cols[i]
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("column {i} of {cols:?}"))
            };
            totals = (totals.0 + num(3), totals.1 + num(4), totals.2 + num(5));
            rows += 1;
        }
    }
    assert_eq!(rows, 2, "one row per partition expected:\n{stdout}");
    totals
}

/// The `__consumer_offsets` partition of a group, as Kafka computes it (`abs(hashCode) % 50`).
fn offsets_partition(group: &str) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32));
    (if hash == i32::MIN { 0 } else { hash.abs() }) % 50
}

/// Kafka's own `kafka-dump-log --offsets-decoder` reads the group's records in `__consumer_offsets`:
/// they are in Kafka's formats.
fn assert_kafka_decodes_group_records(broker: &Broker, group: &str) {
    let dir = broker.partition_dir("__consumer_offsets", offsets_partition(group));
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(!files.is_empty(), "no segment in {}", dir.display());
    let out = kafka_tool(
        "4",
        "dump-log",
        &["--offsets-decoder", "--print-data-log", "--files", &files.join(",")],
    );
    let text = expect_success("kafka-dump-log --offsets-decoder", &out);
    let offset_key = format!("\"group\":\"{group}\",\"topic\":\"{TOPIC}\"");
    assert!(
        text.contains(&offset_key),
        "no offset commit record for {group} in:\n{text}"
    );
    assert!(
        text.contains("\"protocolType\":\"consumer\""),
        "no group metadata record in:\n{text}"
    );
}

fn all_values(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("v{i}")).collect()
}

#[test]
fn console_consumer_group_commits_resumes_and_survives_restart() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, TOPIC, 2);
    produce(&broker, 0, 100);

    let first = consume(&broker, "resumer", 60);
    assert_eq!(
        describe_totals(&broker, "resumer"),
        (60, 100, 40),
        "committed, log end, lag after 60 of 100"
    );
    assert_kafka_decodes_group_records(&broker, "resumer");

    let second = consume(&broker, "resumer", 40);
    let seen: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        seen.len(),
        100,
        "the second run resumed exactly where the first stopped"
    );
    assert_eq!(seen, all_values(0..100));
    assert_eq!(describe_totals(&broker, "resumer"), (100, 100, 0));

    broker.restart();
    assert_eq!(
        describe_totals(&broker, "resumer"),
        (100, 100, 0),
        "committed offsets after a restart"
    );
    produce(&broker, 100, 10);
    let after = consume(&broker, "resumer", 10);
    assert_eq!(after.into_iter().collect::<BTreeSet<_>>(), all_values(100..110));
}

#[test]
fn committed_offsets_survive_kill_9() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, TOPIC, 2);
    produce(&broker, 0, 20);
    python_ok(
        &format!(
            r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({{"bootstrap.servers": BOOTSTRAP, "group.id": "killed", "enable.auto.commit": False}})
for offset in (3, 5, 7):
    commit_offsets(c, [TopicPartition("{TOPIC}", 0, offset), TopicPartition("{TOPIC}", 1, offset + 1)])
c.close()
"#
        ),
        &broker.bootstrap(),
    );
    broker.kill9();
    broker.restart();
    python_ok(
        &format!(
            r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({{"bootstrap.servers": BOOTSTRAP, "group.id": "killed"}})
got = retry_coordinator(lambda: c.committed([TopicPartition("{TOPIC}", 0), TopicPartition("{TOPIC}", 1)], timeout=10), "committed")
offsets = sorted((tp.partition, tp.offset) for tp in got)
if offsets != [(0, 7), (1, 8)]:
    fail(f"committed offsets after kill -9: {{offsets}}")
c.close()
"#
        ),
        &broker.bootstrap(),
    );
}

/// Several librdkafka consumers in one group: all partitions assigned once, rebalanced when one
/// leaves; then a static member restarts without the other member seeing a rebalance.
fn shared_group(strategy: &str) {
    let broker = Broker::start(&[]);
    create_topic(&broker, TOPIC, 3);
    produce(&broker, 0, 30);
    python_ok(
        &format!(
            r#"
from confluent_kafka import Consumer
events = []
def mk(name, instance=None):
    conf = {{"bootstrap.servers": BOOTSTRAP, "group.id": "shared", "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "{strategy}", "session.timeout.ms": 10000, "client.id": name}}
    if instance:
        conf["group.instance.id"] = instance
    c = Consumer(conf)
    c.subscribe(["{TOPIC}"], on_assign=lambda c, p: events.append((name, "assign")),
                on_revoke=lambda c, p: events.append((name, "revoke")))
    return c
consumers = {{}}
def spin(seconds, until=None):
    end = time.time() + seconds
    while time.time() < end and not (until and until()):
        for c in list(consumers.values()):
            c.poll(0.05)
def assignment():
    return {{n: sorted(tp.partition for tp in c.assignment()) for n, c in consumers.items()}}
def balanced(sizes):
    a = assignment()
    return sorted(sum(a.values(), [])) == [0, 1, 2] and sorted(len(p) for p in a.values()) == sizes
def expect(sizes, what):
    spin(30, lambda: balanced(sizes))
    if not balanced(sizes):
        fail(f"{{what}}: assignment {{assignment()}}")

consumers["a"] = mk("a", "static-a")
expect([3], "one member")
consumers["b"] = mk("b")
consumers["c"] = mk("c")
expect([1, 1, 1], "three members")
consumers.pop("c").close()
expect([1, 2], "after c left")

spin(2)
before = len(events)
consumers.pop("a").close()  # a static member does not leave on close
consumers["a"] = mk("a2", "static-a")
expect([1, 2], "after the static member restarted")
spin(3)
if any(name == "b" for name, _ in events[before:]):
    fail(f"b saw a rebalance when the static member restarted: {{events[before:]}}")
for c in consumers.values():
    c.close()
"#
        ),
        &broker.bootstrap(),
    );
}

#[test]
fn librdkafka_consumers_share_a_group_range() {
    shared_group("range");
}

#[test]
fn librdkafka_consumers_share_a_group_cooperative_sticky() {
    shared_group("cooperative-sticky");
}

/// A member that dies without leaving (kill -9) is expired after its session timeout, and the
/// survivor gets its partitions.
#[test]
fn session_timeout_hands_a_dead_members_partitions_over() {
    let broker = Broker::start(&[]);
    create_topic(&broker, TOPIC, 2);
    python_ok(
        &format!(
            r#"
import subprocess, signal
from confluent_kafka import Consumer
conf = {{"bootstrap.servers": BOOTSTRAP, "group.id": "expiring", "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"}}
victim_code = f'''
import time
from confluent_kafka import Consumer
c = Consumer({{conf!r}})
c.subscribe(["{TOPIC}"])
told = False
while True:
    c.poll(0.1)
    if c.assignment() and not told:
        print("assigned", flush=True)
        told = True
'''
victim = subprocess.Popen([sys.executable, "-c", victim_code], stdout=subprocess.PIPE, text=True)
if victim.stdout.readline().strip() != "assigned":
    fail("the victim consumer got no assignment")
survivor = Consumer(conf)
survivor.subscribe(["{TOPIC}"])
def spin_until(check, seconds):
    end = time.time() + seconds
    while time.time() < end and not check():
        survivor.poll(0.1)
    return check()
if not spin_until(lambda: len(survivor.assignment()) == 1, 30):
    fail(f"the survivor did not get one partition: {{survivor.assignment()}}")
victim.send_signal(signal.SIGKILL)
victim.wait()
killed_at = time.time()
if not spin_until(lambda: len(survivor.assignment()) == 2, 30):
    fail(f"the dead member's partition was not handed over: {{survivor.assignment()}}")
waited = time.time() - killed_at
if waited < 3:
    fail(f"handed over after {{waited:.1f}} s, before the 6 s session timeout could expire")
survivor.close()
"#
        ),
        &broker.bootstrap(),
    );
}

/// Issue 14 item 4: before any group exists there is no `__consumer_offsets`, and ListGroups answers an
/// empty list (Apache Kafka 4.1.1 does; COORDINATOR_NOT_AVAILABLE made aiokafka's admin call fail), and
/// asking does not create the topic.
#[test]
fn list_groups_before_any_group_exists_is_an_empty_list() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let listed = python_ok(
        r#"
from kafka import KafkaAdminClient
from confluent_kafka.admin import AdminClient
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
print("kafka-python", admin.list_groups())
rdkafka = AdminClient({"bootstrap.servers": BOOTSTRAP})
result = rdkafka.list_consumer_groups(request_timeout=10).result()
print("confluent-kafka", [g.group_id for g in result.valid], [str(e) for e in result.errors])
"#,
        &broker.bootstrap(),
    );
    assert_eq!(listed.trim(), "kafka-python []\nconfluent-kafka [] []", "{listed}");
    let out = kafka_tool_timeout(
        "4",
        "consumer-groups",
        &["--bootstrap-server", &broker.bootstrap(), "--list"],
        60,
    );
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let out = kafka_tool_timeout(
        "4",
        "topics",
        &["--bootstrap-server", &broker.bootstrap(), "--list"],
        60,
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("__consumer_offsets"),
        "{out:?}"
    );
}
