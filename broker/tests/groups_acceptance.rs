//! Acceptance tests of consumer groups with real clients, beyond `groups.rs`:
//! - Kafka's console consumer and `kafka-consumer-groups` of both tool lines (2.8 and 4): resume with
//!   no gap and no skip, `--list`, `--describe` lag, `--reset-offsets` (earliest, to-offset, shift-by)
//!   steering the next run, `--delete` refused while the group is active and done once it is empty.
//! - A mixed group (a Java consumer, `tests/java/GroupMember.java`, and two librdkafka consumers) on a
//!   6-partition topic under a continuous producer, with range and with cooperative-sticky: one owner
//!   per partition, a kill -9'd member's partitions move within its session timeout, cooperative-sticky
//!   revokes nothing the survivors keep,
//!   a static Java member restarting gets its partitions back without the others seeing a rebalance,
//!   and every produced record is consumed at least once with no offset skipped.
//! - A graceful broker restart under a stable group and an idempotent Java producer: the generation
//!   continues from where it was (same member ids, no rebalance), committed offsets are intact, and the
//!   producer sees no sequence error or duplicate.
//!
//! All of them also pass against Apache Kafka 4.x (`OXKA_TEST_TARGET=kafka`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::group_members::*;
use common::*;

const TOPIC: &str = "events";

// ------------------------------------------------------------------------------------------------
// 1. Console consumer and kafka-consumer-groups, both tool lines
// ------------------------------------------------------------------------------------------------

/// Produces values `v<first>..v<first+count>` with record i on partition i % partitions (confluent-kafka);
/// returns value -> (partition, offset) from the delivery reports.
fn produce_numbered(broker: &Broker, first: usize, count: usize, partitions: usize) -> BTreeMap<String, (i32, i64)> {
    let script = r#"
from confluent_kafka import Producer
first, count, parts = int(os.environ["FIRST"]), int(os.environ["COUNT"]), int(os.environ["PARTS"])
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
def report(err, msg):
    if err:
        fail(f"delivery failed: {err}")
    print(msg.value().decode(), msg.partition(), msg.offset())
for i in range(first, first + count):
    p.produce("events", value=f"v{i}", key=f"k{i}", partition=i % parts, on_delivery=report)
if p.flush(30) != 0:
    fail("records left unflushed")
"#;
    let out = python_env_ok(
        script,
        &broker.bootstrap(),
        &[
            ("FIRST", &first.to_string()),
            ("COUNT", &count.to_string()),
            ("PARTS", &partitions.to_string()),
        ],
    );
    let map: BTreeMap<String, (i32, i64)> = out
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                cols[0].to_string(),
                (cols[1].parse().unwrap(), cols[2].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(map.len(), count, "delivery reports:\n{out}");
    map
}

/// Runs `kafka-console-consumer --group` of `version` until it has printed exactly `count` records;
/// returns their values.
fn console_consume(broker: &Broker, version: &str, group: &str, count: usize) -> Vec<String> {
    let max = count.to_string();
    let out = kafka_tool(
        version,
        "console-consumer",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            TOPIC,
            "--group",
            group,
            "--consumer-property",
            "auto.offset.reset=earliest",
            "--max-messages",
            &max,
            "--timeout-ms",
            "30000",
        ],
    );
    let stdout = expect_success(&format!("console-consumer {version}"), &out);
    let values: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with('v'))
        .map(str::to_string)
        .collect();
    assert_eq!(values.len(), count, "console-consumer {version} output:\n{stdout}");
    values
}

fn consumer_groups(broker: &Broker, version: &str, args: &[&str]) -> String {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
    all.extend_from_slice(args);
    let out = kafka_tool(version, "consumer-groups", &all);
    expect_success(&format!("kafka-consumer-groups {version} {args:?}"), &out)
}

/// Per-partition (committed offset, log end offset, lag) rows of `kafka-consumer-groups --describe`.
fn describe(broker: &Broker, version: &str, group: &str) -> BTreeMap<i32, (i64, i64, i64)> {
    let text = consumer_groups(broker, version, &["--describe", "--group", group]);
    let mut rows = BTreeMap::new();
    for cols in text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()) {
        if cols.len() >= 6 && cols[0] == group && cols[1] == TOPIC {
            let num = |i: usize| {
                cols[i]
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("column {i} of {cols:?} in:\n{text}"))
            };
            rows.insert(num(2) as i32, (num(3), num(4), num(5)));
        }
    }
    rows
}

fn values_from(produced: &BTreeMap<String, (i32, i64)>, min_offset: i64) -> BTreeSet<String> {
    produced
        .iter()
        .filter(|(_, (_, off))| *off >= min_offset)
        .map(|(v, _)| v.clone())
        .collect()
}

fn console_tools_scenario(version: &str) {
    let _serial = serial();
    let broker = Broker::start(&[]);
    create_topic(&broker, TOPIC, 3);
    let produced = produce_numbered(&broker, 0, 30, 3); // 10 records per partition
    let group = format!("console-{}", version.replace('.', ""));
    let group = group.as_str();

    // Part, then the rest after a restart of the consumer: no gap, no skip, no record twice.
    let first = console_consume(&broker, version, group, 12);
    let list = consumer_groups(&broker, version, &["--list"]);
    assert!(
        list.lines().any(|l| l.trim() == group),
        "--list does not show {group}:\n{list}"
    );
    let rows = describe(&broker, version, group);
    let totals = rows.values().fold((0, 0, 0), |t, r| (t.0 + r.0, t.1 + r.1, t.2 + r.2));
    assert_eq!(rows.len(), 3, "one row per partition: {rows:?}");
    assert_eq!(totals, (12, 30, 18), "committed, log end, lag after 12 of 30: {rows:?}");
    for (p, (committed, end, lag)) in &rows {
        assert_eq!(end - committed, *lag, "lag of partition {p}: {rows:?}");
    }
    let second = console_consume(&broker, version, group, 18);
    let mut seen: Vec<String> = first.iter().chain(&second).cloned().collect();
    seen.sort();
    let expected: Vec<String> = values_from(&produced, 0).into_iter().collect();
    assert_eq!(
        seen, expected,
        "the restarted consumer resumed where the first run committed"
    );

    // --reset-offsets --to-earliest: the next run reads everything again.
    let reset = |spec: &[&str]| {
        let mut args = vec!["--reset-offsets", "--group", group, "--topic", TOPIC, "--execute"];
        args.extend_from_slice(spec);
        consumer_groups(&broker, version, &args)
    };
    reset(&["--to-earliest"]);
    let again: BTreeSet<String> = console_consume(&broker, version, group, 30).into_iter().collect();
    assert_eq!(again, values_from(&produced, 0), "after --to-earliest");

    // --to-offset 4: committed 4 on every partition, lag 6 each; the next run reads offsets 4..10.
    reset(&["--to-offset", "4"]);
    let rows = describe(&broker, version, group);
    assert_eq!(
        rows.values().copied().collect::<Vec<_>>(),
        vec![(4, 10, 6); 3],
        "after --to-offset 4: {rows:?}"
    );
    let from4: BTreeSet<String> = console_consume(&broker, version, group, 18).into_iter().collect();
    assert_eq!(from4, values_from(&produced, 4), "after --to-offset 4");

    // --shift-by -2 from the end: offsets 8 and 9 of every partition.
    reset(&["--shift-by", "-2"]);
    let shifted: BTreeSet<String> = console_consume(&broker, version, group, 6).into_iter().collect();
    assert_eq!(shifted, values_from(&produced, 8), "after --shift-by -2");

    // --delete is refused while a member is in the group, and works once it has left.
    let dir = broker.temp_dir().to_path_buf();
    let stop = dir.join("member.stop");
    let mut member = python_spawn(
        r#"
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": os.environ["GROUP"], "enable.auto.commit": False})
c.subscribe(["events"])
told = False
while not os.path.exists(os.environ["STOP"]):
    c.poll(0.1)
    if c.assignment() and not told:
        print("assigned", flush=True)
        told = True
c.close()
"#,
        &broker.bootstrap(),
        &[("GROUP", group), ("STOP", stop.to_str().unwrap())],
        &dir,
        "member",
    );
    wait_for("the member to get partitions", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("member.out")).is_ok_and(|s| s.contains("assigned"))
    });
    let out = kafka_tool(
        version,
        "consumer-groups",
        &["--bootstrap-server", &broker.bootstrap(), "--delete", "--group", group],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("GroupNotEmptyException") || text.contains("not empty"),
        "--delete of an active group was not refused:\n{text}"
    );
    assert!(
        consumer_groups(&broker, version, &["--list"])
            .lines()
            .any(|l| l.trim() == group),
        "the active group vanished after a refused --delete"
    );
    std::fs::write(&stop, "").unwrap();
    let status = member.wait().unwrap();
    assert!(status.success(), "member script failed");
    let deleted = consumer_groups(&broker, version, &["--delete", "--group", group]);
    assert!(
        deleted.contains("successful"),
        "--delete of the empty group:\n{deleted}"
    );
    let list = consumer_groups(&broker, version, &["--list"]);
    assert!(
        !list.lines().any(|l| l.trim() == group),
        "--list still shows the deleted group:\n{list}"
    );
    // Deleted means its offsets are gone too: a new member starts from auto.offset.reset.
    let fresh: BTreeSet<String> = console_consume(&broker, version, group, 30).into_iter().collect();
    assert_eq!(fresh, values_from(&produced, 0), "a deleted group's offsets are gone");
}

#[test]
fn console_consumer_and_consumer_groups_tool_2_8() {
    console_tools_scenario("2.8");
}

#[test]
fn console_consumer_and_consumer_groups_tool_4() {
    console_tools_scenario("4");
}

// ------------------------------------------------------------------------------------------------
// 2. Mixed group: Java + librdkafka, range and cooperative-sticky, kill -9, static restart, no record skipped
// ------------------------------------------------------------------------------------------------

/// One Java member (static) and two librdkafka members with `strategy` (range: eager; cooperative-sticky:
/// incremental, where the survivors of a kill must keep all they had).
fn mixed_group(strategy: &str) {
    let _serial = serial();
    const PARTS: i32 = 6;
    const GROUP: &str = "mixed";
    let cooperative = strategy == "cooperative-sticky";
    let broker = Broker::start(&[]);
    create_topic(&broker, TOPIC, PARTS as u32);
    let dir = broker.temp_dir().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember"]);
    let stop = dir.join("producer.stop");
    let mut producer = Proc(python_spawn(
        PY_PRODUCER,
        &broker.bootstrap(),
        &[("STOP", stop.to_str().unwrap()), ("TOPIC", TOPIC)],
        &dir,
        "producer",
    ));
    // The static Java member has a 20 s session (time for a JVM to restart, also on a busy 2-core
    // machine: with 10 s a restart under a load average of 20 took longer); the librdkafka ones 6 s.
    let java_args = |instance: &str| {
        vec![
            "GroupMember".to_string(),
            broker.bootstrap(),
            TOPIC.into(),
            GROUP.into(),
            strategy.into(),
            "20000".into(),
            instance.into(),
        ]
    };
    let args: Vec<String> = java_args("java-static");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut java = java_spawn(&classpath, &dir, "java", &args);
    let mut rdk_a = py_member(&broker, &dir, "rdk-a", TOPIC, GROUP, strategy, "6000");
    let rdk_b = py_member(&broker, &dir, "rdk-b", TOPIC, GROUP, strategy, "6000");
    wait_one_owner_each(&dir, &["java", "rdk-a", "rdk-b"], PARTS, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    one_owner_each(&dir, &["java", "rdk-a", "rdk-b"], PARTS).expect("a stable group");

    // The static member restarts (kill -9, then the same group.instance.id) inside its session
    // timeout: it gets the same partitions back and nobody else sees a rebalance.
    let java_owned = owned(&dir, "java");
    let java_gen = *generations_after(&dir, "java", 0)
        .last()
        .expect("java printed its generation");
    let marks = (lines(&dir, "rdk-a").len(), lines(&dir, "rdk-b").len());
    java.kill9();
    let args: Vec<String> = java_args("java-static");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let java2 = java_spawn(&classpath, &dir, "java2", &args);
    wait_for(
        "the restarted static member to own partitions",
        Duration::from_secs(30),
        || !owned(&dir, "java2").is_empty(),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        owned(&dir, "java2"),
        java_owned,
        "the static member got other partitions back"
    );
    let seen = (
        rebalance_events_after(&dir, "rdk-a", marks.0),
        rebalance_events_after(&dir, "rdk-b", marks.1),
    );
    assert_eq!(
        seen,
        (vec![], vec![]),
        "the other members saw a rebalance when the static member restarted"
    );
    let java2_gens: Vec<i32> = generations_after(&dir, "java2", 0)
        .into_iter()
        .filter(|g| *g >= 0)
        .collect();
    assert_eq!(
        java2_gens,
        vec![java_gen],
        "the static member rejoined the same generation"
    );

    // kill -9 a librdkafka member: its partitions move to the survivors within its 6 s session
    // timeout (+ margin), and cooperative-sticky revokes nothing they keep.
    let before = (owned(&dir, "java2"), owned(&dir, "rdk-b"), owned(&dir, "rdk-a"));
    let marks = (lines(&dir, "java2").len(), lines(&dir, "rdk-b").len());
    rdk_a.kill9();
    let killed_at = Instant::now();
    wait_one_owner_each(&dir, &["java2", "rdk-b"], PARTS, Duration::from_secs(6 + 12));
    let moved_after = killed_at.elapsed();
    let after = (owned(&dir, "java2"), owned(&dir, "rdk-b"));
    if cooperative {
        assert!(
            after.0.is_superset(&before.0) && after.1.is_superset(&before.1),
            "a survivor lost partitions: before {before:?}, after {after:?}"
        );
        let added: BTreeSet<i32> = after
            .0
            .union(&after.1)
            .copied()
            .collect::<BTreeSet<_>>()
            .difference(&before.0.union(&before.1).copied().collect())
            .copied()
            .collect();
        assert_eq!(added, before.2, "exactly the dead member's partitions moved");
        for (name, mark) in [("java2", marks.0), ("rdk-b", marks.1)] {
            let events = rebalance_events_after(&dir, name, mark);
            assert!(
                events.iter().all(|e| e.starts_with("ASSIGN")),
                "{name} had partitions revoked under cooperative-sticky after the kill: {events:?}"
            );
        }
    }
    eprintln!("partitions moved {moved_after:?} after the kill");

    // Stop producing; the survivors drain the topic. Every record was consumed at least once and
    // no offset was skipped in any partition.
    let all = ["java", "java2", "rdk-a", "rdk-b"];
    stop_producer_and_check_consumed(&dir, &mut producer, &stop, &all, Duration::from_secs(30));
    drop((java2, rdk_b));
}

#[test]
fn mixed_java_and_librdkafka_group_range() {
    mixed_group("range");
}

#[test]
fn mixed_java_and_librdkafka_group_cooperative_sticky() {
    mixed_group("cooperative-sticky");
}

// ------------------------------------------------------------------------------------------------
// 3. Graceful broker restart under a stable group and an idempotent producer
// ------------------------------------------------------------------------------------------------

#[test]
fn broker_restart_recovers_generation_offsets_and_producer_state() {
    let _serial = serial();
    const GROUP: &str = "restarted";
    const COUNT: u64 = 150_000;
    let mut broker = Broker::start(&[]);
    create_topic(&broker, TOPIC, 4);
    create_topic(&broker, "numbers", 3);
    produce_numbered(&broker, 0, 60, 4); // 15 per partition
    let dir = broker.temp_dir().to_path_buf();
    let classpath = java_classpath(&dir, &["GroupMember", "NumberedProducer"]);

    // Three members joining one after the other: a few generations before the restart.
    let java = java_spawn(
        &classpath,
        &dir,
        "java",
        &["GroupMember", &broker.bootstrap(), TOPIC, GROUP, "range", "10000", "-"],
    );
    wait_for("the Java member to own partitions", Duration::from_secs(30), || {
        owned(&dir, "java").len() == 4
    });
    let rdk_a = py_member(&broker, &dir, "rdk-a", TOPIC, GROUP, "range", "10000");
    wait_one_owner_each(&dir, &["java", "rdk-a"], 4, Duration::from_secs(30));
    let rdk_b = py_member(&broker, &dir, "rdk-b", TOPIC, GROUP, "range", "10000");
    wait_one_owner_each(&dir, &["java", "rdk-a", "rdk-b"], 4, Duration::from_secs(30));
    let committed = |broker: &Broker| -> BTreeMap<i32, i64> {
        describe(broker, "4", GROUP)
            .into_iter()
            .map(|(p, r)| (p, r.0))
            .collect()
    };
    let all_committed: BTreeMap<i32, i64> = (0..4).map(|p| (p, 15)).collect();
    wait_for("every record consumed and committed", Duration::from_secs(60), || {
        committed(&broker) == all_committed
    });
    let gen_before = *generations_after(&dir, "java", 0).last().unwrap();
    assert!(gen_before >= 3, "three joins, generation {gen_before}");

    // An idempotent producer runs across the restart.
    let mut producer = java_spawn(
        &classpath,
        &dir,
        "numbered",
        &["NumberedProducer", &broker.bootstrap(), "numbers", &COUNT.to_string()],
    );
    let progress = |broker: &Broker| -> i64 {
        let script = r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "progress"})
print(sum(c.get_watermark_offsets(TopicPartition("numbers", p), timeout=10)[1] for p in range(3)))
"#;
        python_ok(script, &broker.bootstrap()).trim().parse().unwrap_or(0)
    };
    wait_for("a third of the numbers", Duration::from_secs(120), || {
        progress(&broker) >= (COUNT / 3) as i64
    });
    // DescribeGroups (confluent-kafka's AdminClient): state and member ids, before and after.
    let members = |broker: &Broker| -> String {
        let script = r#"
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": BOOTSTRAP})
def describe():
    return a.describe_consumer_groups(["restarted"])["restarted"].result(timeout=10)
for _ in range(40):
    try:
        g = describe()
        break
    except Exception as e:
        time.sleep(0.5)
else:
    g = describe()
print(g.state.name, " ".join(sorted(m.member_id for m in g.members)))
"#;
        python_ok(script, &broker.bootstrap()).trim().to_string()
    };
    let members_before = members(&broker);
    assert!(
        members_before.starts_with("STABLE ") && members_before.split(' ').count() == 4,
        "a stable group of three before the restart: {members_before}"
    );
    let marks: Vec<usize> = ["java", "rdk-a", "rdk-b"]
        .iter()
        .map(|m| lines(&dir, m).len())
        .collect();
    broker.restart();

    // The members carry on in the recovered generation (a reset would make them rejoin at 1) and the
    // committed offsets are intact.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(committed(&broker), all_committed, "committed offsets after the restart");
    assert_eq!(
        members(&broker),
        members_before,
        "group state and member ids after the restart"
    );
    let after: Vec<i32> = generations_after(&dir, "java", marks[0]);
    assert!(
        after.iter().all(|g| *g >= gen_before),
        "generation went back from {gen_before} to {after:?} after the restart"
    );
    // The membership was recovered too: the members' heartbeats were accepted, nobody rejoined.
    for (m, mark) in ["java", "rdk-a", "rdk-b"].iter().zip(&marks) {
        let events = rebalance_events_after(&dir, m, *mark);
        assert!(
            events.is_empty(),
            "{m} went through a rebalance after the restart: {events:?}"
        );
    }
    // A new member forces a rebalance: the next generation follows the recovered one.
    let rdk_c = py_member(&broker, &dir, "rdk-c", TOPIC, GROUP, "range", "10000");
    wait_for("a rebalance after the restart", Duration::from_secs(30), || {
        generations_after(&dir, "java", marks[0])
            .iter()
            .any(|g| *g > gen_before)
    });
    wait_one_owner_each(&dir, &["java", "rdk-a", "rdk-b", "rdk-c"], 4, Duration::from_secs(30));
    let after: Vec<i32> = generations_after(&dir, "java", marks[0]);
    assert!(
        after.iter().all(|g| *g == -1 || *g >= gen_before),
        "generations after the restart {after:?}, before {gen_before}"
    );
    // Partitions that moved resume from the committed offsets: nothing is read again.
    std::thread::sleep(Duration::from_secs(2));
    let mut reread = Vec::new();
    for (m, mark) in ["java", "rdk-a", "rdk-b", "rdk-c"].iter().zip(marks.iter().chain([&0])) {
        reread.extend(lines(&dir, m).into_iter().skip(*mark).filter(|l| l.starts_with("REC")));
    }
    assert!(
        reread.is_empty(),
        "records consumed again after the restart: {reread:?}"
    );

    // The idempotent producer got everything acknowledged, with no sequence error, and the log has
    // every number exactly once, in order per partition.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = producer.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the producer did not finish");
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = std::fs::read_to_string(dir.join("numbered.out")).unwrap_or_default();
    let stderr = std::fs::read_to_string(dir.join("numbered.err")).unwrap_or_default();
    assert!(
        status.success() && !stderr.contains("OutOfOrderSequence") && !stderr.contains("DuplicateSequence"),
        "idempotent producer across the restart: {stdout}\n{}",
        tail(stderr.as_bytes(), 30)
    );
    assert_eq!(stdout.trim(), format!("acked={COUNT} failed=0"));
    let script = r#"
from confluent_kafka import Consumer, TopicPartition
count = int(os.environ["COUNT"])
seen = bytearray(count)
for p in range(3):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "check"})
    lo, hi = c.get_watermark_offsets(TopicPartition("numbers", p), timeout=10)
    last = -1
    for off, key, value, _ in consume_all("numbers", p, hi - lo, timeout=120):
        n = int(value)
        if seen[n]:
            fail(f"number {n} appears twice (again at partition {p} offset {off})")
        seen[n] = 1
        if n <= last:
            fail(f"partition {p}: {n} after {last} at offset {off}")
        last = n
missing = [i for i in range(count) if not seen[i]]
if missing:
    fail(f"{len(missing)} numbers missing, first {missing[:5]}")
print("ok")
"#;
    let out = python_env_ok(script, &broker.bootstrap(), &[("COUNT", &COUNT.to_string())]);
    assert_eq!(out.trim(), "ok");
    drop((java, rdk_a, rdk_b, rdk_c));
}
