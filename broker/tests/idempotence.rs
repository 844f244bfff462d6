//! Idempotent producers against restarts: Apache Kafka's Java producer with its default settings
//! (idempotence on, acks=all) sends 1,000,000 numbered records while the broker is restarted twice,
//! once cleanly (SIGTERM) and once with SIGKILL. Every number must be in the log exactly once, and in
//! order within each partition: retries after a restart must be recognised as duplicates.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn java_idempotent_producer_survives_two_restarts_without_duplicates() {
    let _serial = serial();
    const COUNT: u64 = 1_000_000;
    const PARTITIONS: u32 = 3;
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "numbers", PARTITIONS);
    let classpath = numbered_producer_classpath(broker.temp_dir());
    let log4j = tool_cache().join("kafka-4/log4j2.properties");

    let out_path = broker.temp_dir().join("producer.out");
    let err_path = broker.temp_dir().join("producer.err");
    let mut producer = Command::new("java")
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(&classpath)
        .arg("NumberedProducer")
        .arg(broker.bootstrap())
        .arg("numbers")
        .arg(COUNT.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start java");

    let progress = |broker: &Broker| -> i64 {
        let script = r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "progress"})
total = 0
for p in range(3):
    lo, hi = c.get_watermark_offsets(TopicPartition("numbers", p), timeout=10)
    total += hi
print(total)
"#;
        python_ok(script, &broker.bootstrap()).trim().parse().unwrap_or(0)
    };
    // First restart (clean) once a third is in, second (SIGKILL) at two thirds.
    wait_for("a third of the records", Duration::from_secs(120), || {
        progress(&broker) >= (COUNT / 3) as i64
    });
    broker.restart();
    wait_for("two thirds of the records", Duration::from_secs(180), || {
        progress(&broker) >= (2 * COUNT / 3) as i64
    });
    broker.kill9();
    std::thread::sleep(Duration::from_millis(500));
    broker.restart();

    let status = wait_child(&mut producer, Duration::from_secs(300));
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "the producer did not get every record acknowledged: {stdout}\n{}",
        tail(stderr.as_bytes(), 30)
    );
    assert_eq!(stdout.trim(), format!("acked={COUNT} failed=0"));

    // Read every partition back and check each number appears exactly once, in order per partition.
    let out = check_numbered(&broker.bootstrap(), "numbers", COUNT, PARTITIONS);
    assert_eq!(out.trim(), format!("ok {COUNT}"));
}
