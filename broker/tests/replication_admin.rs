//! Replication throttles (issue 9, KIP-73), with real processes (3 coordinators, 3 brokers) and Apache
//! Kafka's own tools: `kafka-reassign-partitions --throttle` sets the dynamic broker configs
//! `leader.replication.throttled.rate` / `follower.replication.throttled.rate` and the topic's throttled
//! replica lists; `kafka-configs --describe` shows them; the new replica then catches up at about the
//! throttled rate (measured against an unthrottled move of the same amount of data in the same run);
//! `--verify` clears them once the move is done. Dynamic broker configs are also set, described and
//! refused (a config that cannot change at run time) with `kafka-configs`, 4.x and 2.8.

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const TOPIC_BYTES: u64 = 2_000_000;
const THROTTLE: u64 = 50_000;

fn reassign(cluster: &Cluster, plan: &std::path::Path, extra: &[&str]) -> String {
    let bootstrap = cluster.bootstrap();
    let plan = plan.display().to_string();
    let mut args = vec!["--bootstrap-server", &bootstrap, "--reassignment-json-file", &plan];
    args.extend_from_slice(extra);
    output_text(&kafka_tool("4", "reassign-partitions", &args))
}

/// Runs `--verify` until it reports the partition's reassignment complete; returns the time it took
/// from `started` and the last output.
fn verify_until_done(cluster: &Cluster, plan: &std::path::Path, what: &str, started: Instant) -> (Duration, String) {
    let text = cluster.wait_until(what, Duration::from_secs(120), || {
        let text = reassign(cluster, plan, &["--verify"]);
        if text.contains("is completed") && !text.contains("Error") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    (started.elapsed(), text)
}

fn describe_broker(cluster: &Cluster, version: &str, broker: &str) -> String {
    let bootstrap = cluster.bootstrap();
    let entity: Vec<&str> = if broker.is_empty() {
        vec!["--entity-default"]
    } else {
        vec!["--entity-name", broker]
    };
    let mut args = vec![
        "--bootstrap-server",
        &bootstrap,
        "--describe",
        "--entity-type",
        "brokers",
    ];
    args.extend(entity);
    cluster.expect_ok("kafka-configs --describe", &kafka_tool(version, "configs", &args))
}

/// Writes `TOPIC_BYTES` to a new one-partition topic on brokers 1 and 2 (acks=all).
fn filled_topic(cluster: &Cluster, topic: &str) {
    cluster.topics_ok(&["--create", "--topic", topic, "--replica-assignment", "1:2"]);
    cluster.wait_all_led(topic, 1);
    let props = format!("bootstrap.servers={}", cluster.bootstrap());
    cluster.expect_ok(
        "kafka-producer-perf-test",
        &kafka_tool(
            "4",
            "producer-perf-test",
            &[
                "--topic",
                topic,
                "--num-records",
                &(TOPIC_BYTES / 1000).to_string(),
                "--record-size",
                "1000",
                "--throughput",
                "-1",
                "--producer-props",
                &props,
                "acks=all",
                "linger.ms=5",
            ],
        ),
    );
}

#[test]
fn kafka_reassign_partitions_throttle_limits_the_catch_up_and_verify_clears_it() {
    let _serial = serial();
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    filled_topic(&cluster, "control");
    filled_topic(&cluster, "throttled");
    let work = tempfile::tempdir().unwrap();
    let plan_for = |topic: &str| {
        let path = work.path().join(format!("plan-{topic}.json"));
        std::fs::write(
            &path,
            format!(r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":[1,2,3]}}]}}"#),
        )
        .unwrap();
        path
    };

    // The control: gains a replica on broker 3 without a throttle.
    let plan0 = plan_for("control");
    let started = Instant::now();
    let out = reassign(&cluster, &plan0, &["--execute"]);
    assert!(out.contains("Successfully started"), "{out}");
    let (unthrottled, _) = verify_until_done(&cluster, &plan0, "the unthrottled move", started);

    // The same amount of data, throttled to 50 kB/s.
    let topic = "throttled";
    let plan1 = plan_for(topic);
    let started = Instant::now();
    let out = reassign(&cluster, &plan1, &["--execute", "--throttle", &THROTTLE.to_string()]);
    assert!(
        out.contains("Successfully started") && out.contains("throttle"),
        "--execute --throttle:\n{out}"
    );
    // What the tool set, as `kafka-configs` shows it.
    for broker in ["1", "2", "3"] {
        let described = describe_broker(&cluster, "4", broker);
        assert!(
            described.contains(&format!("leader.replication.throttled.rate={THROTTLE}"))
                && described.contains(&format!("follower.replication.throttled.rate={THROTTLE}"))
                && described.contains("DYNAMIC_BROKER_CONFIG"),
            "broker {broker}'s dynamic configs:\n{described}"
        );
    }
    let topic_configs = cluster.expect_ok(
        "kafka-configs --describe --entity-type topics",
        &kafka_tool(
            "4",
            "configs",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--describe",
                "--entity-type",
                "topics",
                "--entity-name",
                topic,
            ],
        ),
    );
    assert!(
        topic_configs.contains("leader.replication.throttled.replicas=")
            && topic_configs.contains("follower.replication.throttled.replicas=0:3"),
        "topic configs:\n{topic_configs}"
    );
    // The leader (broker 1) and the new follower (broker 3) report the throttled bytes they measure.
    let rate = |id: i32, name: &str| common::metric_value(cluster.broker(id).metrics_port(), name);
    cluster.wait_until("the throttled byte rates on /metrics", Duration::from_secs(20), || {
        let (leader, follower) = (
            rate(1, "kafka_server_leaderreplication_byte_rate"),
            rate(3, "kafka_server_followerreplication_byte_rate"),
        );
        if leader > 0.0 && follower > 0.0 {
            Ok(())
        } else {
            Err(format!("leader {leader} B/s, follower {follower} B/s"))
        }
    });
    let (throttled, verified) = verify_until_done(&cluster, &plan1, "the throttled move", started);
    eprintln!("{TOPIC_BYTES} bytes: unthrottled move {unthrottled:?}, throttled at {THROTTLE} B/s {throttled:?}");
    // The first fetch takes a replica.fetch.max.bytes (1 MiB); measured over Kafka's 10-second
    // minimum that is ~100 kB/s, twice the limit, so the second megabyte waits until that window has
    // passed (~11 s). Unthrottled, the move takes about as long as the tool's own runs (JVM start-ups),
    // which the throttled move also pays: compare the difference.
    assert!(
        throttled >= unthrottled + Duration::from_secs(6),
        "the throttle did not hold the catch-up back: throttled {throttled:?}, unthrottled {unthrottled:?}"
    );
    assert!(
        verified.contains("Clearing broker-level throttles on brokers 1,2,3"),
        "--verify:\n{verified}"
    );
    // --verify cleared the throttles: no dynamic configs left on any broker, no lists on the topic.
    for broker in ["1", "2", "3"] {
        let described = describe_broker(&cluster, "4", broker);
        assert!(
            !described.contains("throttled.rate="),
            "broker {broker} after --verify:\n{described}"
        );
    }
    for topic in ["control", "throttled"] {
        let (rows, text) = cluster.describe(topic);
        assert!(
            rows.iter().all(|r| r.replicas == vec![1, 2, 3] && r.isr.len() == 3),
            "{topic} on 1,2,3 and in sync:\n{text}"
        );
    }
}

#[test]
fn kafka_configs_sets_describes_and_refuses_dynamic_broker_configs() {
    let _serial = serial();
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let alter = |version: &str, entity: &[&str], config: &str| {
        let mut args = vec!["--bootstrap-server", &bootstrap, "--alter", "--entity-type", "brokers"];
        args.extend_from_slice(entity);
        args.extend_from_slice(&["--add-config", config]);
        kafka_tool(version, "configs", &args)
    };
    // A default for every broker, then one broker's own value over it.
    cluster.expect_ok(
        "--entity-default",
        &alter(
            "4",
            &["--entity-default"],
            "follower.replication.throttled.rate=7000000",
        ),
    );
    cluster.expect_ok(
        "--entity-name 2",
        &alter(
            "4",
            &["--entity-name", "2"],
            "follower.replication.throttled.rate=5000000",
        ),
    );
    let default = describe_broker(&cluster, "4", "");
    assert!(
        default.contains("follower.replication.throttled.rate=7000000")
            && default.contains("DYNAMIC_DEFAULT_BROKER_CONFIG"),
        "{default}"
    );
    let two = describe_broker(&cluster, "4", "2");
    assert!(two.contains("follower.replication.throttled.rate=5000000"), "{two}");
    // Kafka 2.8's kafka-configs alters brokers with the legacy AlterConfigs (the whole set).
    cluster.expect_ok(
        "kafka-configs 2.8 --alter",
        &alter(
            "2.8",
            &["--entity-name", "3"],
            "leader.replication.throttled.rate=3000000",
        ),
    );
    let three = describe_broker(&cluster, "2.8", "3");
    assert!(three.contains("leader.replication.throttled.rate=3000000"), "{three}");
    // A config that cannot change at run time is refused with the reason; a bad value too.
    let refused = alter("4", &["--entity-name", "1"], "log.retention.hours=5");
    let text = output_text(&refused);
    assert!(
        !refused.status.success() && text.contains("Cannot update these configs dynamically"),
        "{text}"
    );
    let refused = alter("4", &["--entity-name", "1"], "leader.replication.throttled.rate=-3");
    let text = output_text(&refused);
    assert!(!refused.status.success() && text.contains("at least 0"), "{text}");
    // --delete-config removes it again.
    cluster.expect_ok(
        "--delete-config",
        &kafka_tool(
            "4",
            "configs",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--alter",
                "--entity-type",
                "brokers",
                "--entity-name",
                "2",
                "--delete-config",
                "follower.replication.throttled.rate",
            ],
        ),
    );
    let two = describe_broker(&cluster, "4", "2");
    assert!(!two.contains("follower.replication.throttled.rate=5000000"), "{two}");
}

/// `kafka-delete-records` on an RF 3 partition answers once every replica has deleted the records:
/// each of the three, leading in turn after the others are killed, starts the log at the new offset.
/// The topic is created and described with Kafka 2.8's `kafka-topics` (replicas and ISR shown).
#[test]
fn delete_records_reaches_every_replica_before_it_answers() {
    let _serial = serial();
    // Idle followers hear of the leader's new log start only when their long-poll returns: make that
    // take up to 8 s, so answering before the followers have deleted would be caught below.
    let mut cluster = Cluster::start_with(Options {
        broker_config: &[("replica.fetch.wait.max.ms", "8000")],
        ..Options::default()
    });
    let bootstrap = cluster.bootstrap();
    let topic = "trimmed";
    // Led by 2, then 3, then 1 (clients bootstrap from broker 1, so it goes last).
    cluster.expect_ok(
        "kafka-topics 2.8 --create",
        &kafka_tool(
            "2.8",
            "topics",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--create",
                "--topic",
                topic,
                "--replica-assignment",
                "2:3:1",
            ],
        ),
    );
    let described = cluster.wait_until(
        "all three replicas in the ISR (kafka-topics 2.8)",
        Duration::from_secs(20),
        || {
            let text = output_text(&kafka_tool(
                "2.8",
                "topics",
                &["--bootstrap-server", &bootstrap, "--describe", "--topic", topic],
            ));
            if text.contains("ReplicationFactor: 3") && text.contains("Replicas: 2,3,1") && text.contains("Isr: 2,3,1")
            {
                Ok(text)
            } else {
                Err(text)
            }
        },
    );
    assert!(described.contains("Leader: 2"), "{described}");
    let input: String = (0..100).map(|i| format!("r{i}\n")).collect();
    cluster.expect_ok(
        "kafka-console-producer",
        &kafka_tool_stdin(
            "4",
            "console-producer",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                topic,
                "--producer-property",
                "acks=all",
            ],
            input.as_bytes(),
            120,
        ),
    );
    // DescribeLogDirs (Kafka 2.8's kafka-log-dirs) on each broker: all three hold the partition, with
    // the same bytes (followers keep the leader's batches as they are).
    let log_dirs = cluster.wait_until("the same size on all three replicas", Duration::from_secs(20), || {
        let out = kafka_tool(
            "2.8",
            "log-dirs",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--describe",
                "--broker-list",
                "1,2,3",
                "--topic-list",
                topic,
            ],
        );
        let text = output_text(&out);
        let json = text
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_default()
            .to_string();
        let sizes: Vec<u64> = json
            .split(&format!(r#""partition":"{topic}-0","size":"#))
            .skip(1)
            .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .collect();
        if sizes.len() == 3 && sizes[0] > 0 && sizes.iter().all(|s| *s == sizes[0]) {
            Ok(json)
        } else {
            Err(format!("sizes {sizes:?} in:\n{text}"))
        }
    });
    for id in 1..=3 {
        assert!(log_dirs.contains(&format!(r#""broker":{id}"#)), "{log_dirs}");
    }
    // DeleteRecords straight to the leader (Kafka's admin client would retry a REQUEST_TIMED_OUT and
    // hide it): the first answer must already be the low watermark of all three replicas.
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(20_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(40)])]);
    let asked = Instant::now();
    let response: DeleteRecordsResponse =
        common::coordinator::call(&cluster.broker(2).bootstrap(), ApiKey::DeleteRecords, 2, &request).unwrap();
    let answered = asked.elapsed();
    // Right away, before anything else, kill the leader: its followers must already have deleted.
    cluster.broker_mut(2).kill9();
    let result = &response.topics[0].partitions[0];
    assert_eq!(
        (result.error_code, result.low_watermark),
        (0, 40),
        "DeleteRecords answered after {answered:?}: {response:?}"
    );
    eprintln!("DeleteRecords on 3 replicas answered in {answered:?}");
    let earliest = || {
        output_text(&kafka_tool(
            "4",
            "get-offsets",
            &["--bootstrap-server", &bootstrap, "--topic", topic, "--time", "-2"],
        ))
    };
    // The answer came after the followers had deleted too: each new leader's log starts at 40.
    for (victim, next) in [(2, 3), (3, 1)] {
        if victim != 2 {
            cluster.broker_mut(victim).kill9();
        }
        cluster.wait_until(
            &format!("broker {next} to lead {topic}-0"),
            Duration::from_secs(60),
            || {
                let (rows, text) = cluster.describe(topic);
                if rows.first().and_then(|r| r.leader) == Some(next) {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        );
        let offsets = earliest();
        assert!(
            offsets.contains(&format!("{topic}:0:40")),
            "broker {next}, leading after {victim} was killed, starts the log elsewhere:\n{offsets}"
        );
    }
}
