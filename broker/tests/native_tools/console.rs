//! console-producer and console-consumer (`oxka tool console-producer|console-consumer`) against
//! Kafka 4.x's tools on the same broker: records produced by each producer from the same input are
//! printed alike by each consumer (keyed records land in the same partitions and offsets, so the
//! outputs are equal), every formatter field, `--partition`/`--offset`, compression codecs and acks,
//! a group continued by the other tool where the first stopped, a rebalance when a Java consumer
//! joins a running native one (no record lost or printed twice), and Kafka's errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::common::tools_compare::{native, stdout};
use super::common::{self, serial, Broker, Target};
use super::java;

/// `oxka tool <args>` with `input` on standard input.
fn native_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut cmd = Command::new(common::oxka_bin());
    cmd.arg("tool").args(args);
    common::run(cmd, input, Duration::from_secs(90))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Produces `input` to `topic` with the native tool (`java_side` false) or Kafka's; asserts success.
fn produce(java_side: bool, bootstrap: &str, topic: &str, extra: &[&str], input: &str) {
    let mut args = vec!["--bootstrap-server", bootstrap, "--topic", topic];
    args.extend_from_slice(extra);
    let out = if java_side {
        common::kafka_tool_stdin("4", "console-producer", &args, input.as_bytes(), 120)
    } else {
        let mut full = vec!["console-producer"];
        full.extend_from_slice(&args);
        native_stdin(&full, input.as_bytes())
    };
    assert!(
        out.status.success(),
        "console-producer {extra:?} (java: {java_side}): {out:?}"
    );
}

/// Runs the console consumer (native or Kafka's) with `args` after `--bootstrap-server`.
fn consume(java_side: bool, bootstrap: &str, args: &[&str]) -> Output {
    let mut full = vec!["--bootstrap-server", bootstrap];
    full.extend_from_slice(args);
    if java_side {
        java("console-consumer", &full)
    } else {
        let mut n = vec!["console-consumer"];
        n.extend_from_slice(&full);
        native(&n)
    }
}

fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Both consumers print the same records (compared sorted: partitions interleave differently) and
/// both report the count on stderr.
fn assert_same_consumed(bootstrap: &str, args: &[&str], count: usize) -> Vec<String> {
    let (n, j) = (consume(false, bootstrap, args), consume(true, bootstrap, args));
    assert!(
        n.status.success() && j.status.success(),
        "{args:?}\nnative: {n:?}\njava: {j:?}"
    );
    let (ns, js) = (sorted(&stdout(&n)), sorted(&stdout(&j)));
    assert_eq!(ns, js, "console-consumer {args:?}");
    assert_eq!(ns.len(), count, "console-consumer {args:?}: {ns:?}");
    let line = format!("Processed a total of {count} messages");
    assert!(stderr(&n).contains(&line), "native stderr: {}", stderr(&n));
    assert!(stderr(&j).contains(&line), "java stderr: {}", stderr(&j));
    ns
}

const PRINT_ALL: &[&str] = &[
    "--property",
    "print.key=true",
    "--property",
    "print.headers=true",
    "--property",
    "print.partition=true",
    "--property",
    "print.offset=true",
];

fn keyed_input(n: usize) -> String {
    (0..n)
        .map(|i| format!("h{i}:x{i},z:NUL\tkey-{i}\tvalue {i}\n"))
        .collect()
}

fn create(bootstrap: &str, topic: &str, partitions: &str) {
    let out = native(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        partitions,
    ]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn console_tools_match_kafkas_on_one_oxka_broker() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    for topic in ["n-k", "j-k"] {
        create(&b, topic, "3");
    }
    // The same keyed input with headers, through each producer: the same partitions and offsets.
    let input = keyed_input(12);
    let parse = [
        "--property",
        "parse.key=true",
        "--property",
        "parse.headers=true",
        "--property",
        "null.marker=NUL",
    ];
    produce(false, &b, "n-k", &parse, &input);
    produce(true, &b, "j-k", &parse, &input);
    let mut args = vec!["--topic", "n-k", "--from-beginning", "--max-messages", "12"];
    args.extend_from_slice(PRINT_ALL);
    let from_native = assert_same_consumed(&b, &args, 12);
    args[1] = "j-k";
    let from_java = assert_same_consumed(&b, &args, 12);
    assert_eq!(
        from_native, from_java,
        "both producers put each key in the same partition"
    );
    assert!(
        from_native
            .iter()
            .any(|l| l.ends_with("\th3:x3,z:null\tkey-3\tvalue 3")),
        "{from_native:?}"
    );

    // One partition from an offset, and the other formatter settings.
    for args in [
        &[
            "--topic",
            "n-k",
            "--partition",
            "1",
            "--offset",
            "1",
            "--max-messages",
            "2",
        ][..],
        &[
            "--topic",
            "n-k",
            "--partition",
            "2",
            "--offset",
            "earliest",
            "--max-messages",
            "1",
        ],
        &[
            "--include",
            "n-.*",
            "--from-beginning",
            "--max-messages",
            "12",
            "--property",
            "print.value=false",
            "--property",
            "print.key=true",
            "--property",
            "key.separator=|",
        ],
        &[
            "--topic",
            "n-k",
            "--partition",
            "0",
            "--from-beginning",
            "--max-messages",
            "1",
            "--property",
            "print.epoch=true",
            "--property",
            "line.separator=;",
            "--property",
            "print.headers=true",
            "--property",
            "headers.separator=+",
        ],
    ] {
        let count = args[args.iter().position(|a| *a == "--max-messages").unwrap() + 1];
        let n = consume(false, &b, args);
        let j = consume(true, &b, args);
        assert!(
            n.status.success() && j.status.success(),
            "{args:?}\nnative: {n:?}\njava: {j:?}"
        );
        assert_eq!(sorted(&stdout(&n)), sorted(&stdout(&j)), "{args:?}");
        assert!(
            stderr(&n).contains(&format!("Processed a total of {count} messages")),
            "{n:?}"
        );
    }
    // Timestamps: the same field, CreateTime and the producer's clock.
    let n = consume(
        false,
        &b,
        &[
            "--topic",
            "n-k",
            "--partition",
            "0",
            "--offset",
            "0",
            "--max-messages",
            "1",
            "--property",
            "print.timestamp=true",
        ],
    );
    assert!(stdout(&n).starts_with("CreateTime:17"), "{n:?}");

    // Codecs and acks of the native producer, read by Kafka's consumer.
    create(&b, "n-codecs", "1");
    for (i, extra) in [
        &["--compression-codec", "gzip"][..],
        &["--compression-codec", "snappy"],
        &["--compression-codec", "lz4"],
        &["--compression-codec", "zstd"],
        &["--compression-codec"],
        &["--request-required-acks", "0", "--sync"],
        &["--request-required-acks", "1"],
        &["--producer-property", "acks=all", "--producer-property", "linger.ms=0"],
    ]
    .iter()
    .enumerate()
    {
        produce(false, &b, "n-codecs", extra, &format!("a{i}\nb{i}\n"));
    }
    let lines = assert_same_consumed(
        &b,
        &["--topic", "n-codecs", "--from-beginning", "--max-messages", "16"],
        16,
    );
    assert!(lines.contains(&"b7".to_string()), "{lines:?}");

    // A group continues where the other tool stopped, both ways.
    create(&b, "n-g", "1");
    let five: String = (0..10).map(|i| format!("r{i}\n")).collect();
    produce(false, &b, "n-g", &[], &five);
    for (first_java, group) in [(false, "g-native-first"), (true, "g-java-first")] {
        let first = consume(
            first_java,
            &b,
            &[
                "--topic",
                "n-g",
                "--group",
                group,
                "--from-beginning",
                "--max-messages",
                "3",
            ],
        );
        assert_eq!(stdout(&first), "r0\nr1\nr2\n", "{first:?}");
        let second = consume(
            !first_java,
            &b,
            &["--topic", "n-g", "--group", group, "--max-messages", "4"],
        );
        assert_eq!(stdout(&second), "r3\nr4\nr5\nr6\n", "{second:?}");
        let third = consume(false, &b, &["--topic", "n-g", "--group", group, "--timeout-ms", "3000"]);
        assert_eq!(stdout(&third), "r7\nr8\nr9\n", "{third:?}");
        assert!(third.status.success() && stderr(&third).contains("Processed a total of 3 messages"));
    }

    // Errors, as Kafka's tools refuse them (exit 1).
    for (args, message) in [
        (&["--from-beginning"][..], "Exactly one of --include/--topic is required."),
        (&["--topic", "n-g", "--offset", "1"], "The partition is required when offset is specified."),
        (
            &["--topic", "n-g", "--partition", "0", "--offset", "-5"],
            "The provided offset value '-5' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long.",
        ),
        (
            &["--topic", "n-g", "--partition", "0", "--group", "x"],
            "Options group and partition cannot be specified together.",
        ),
        (
            &["--topic", "n-g", "--group", "a", "--consumer-property", "group.id=b"],
            "Detected group ids: 'a', 'b'",
        ),
    ] {
        let (n, j) = (consume(false, &b, args), consume(true, &b, args));
        assert_eq!(n.status.code(), Some(1), "{args:?}: {n:?}");
        assert_eq!(j.status.code(), Some(1), "{args:?}: {j:?}");
        assert_eq!(stderr(&n).lines().count(), 1, "{args:?}: {n:?}");
        assert!(stderr(&n).contains(message) && stderr(&j).contains(message), "{args:?}\n{n:?}\n{j:?}");
    }
    let bad = "k\tv\nno separator\n";
    let mut args = vec![
        "console-producer",
        "--bootstrap-server",
        &b,
        "--topic",
        "n-g",
        "--property",
        "parse.key=true",
    ];
    let n = native_stdin(&args, bad.as_bytes());
    args.remove(0);
    let j = common::kafka_tool_stdin("4", "console-producer", &args, bad.as_bytes(), 120);
    let message = "No key separator found on line number 2: 'no separator'";
    assert_eq!(n.status.code(), Some(1), "{n:?}");
    assert_eq!(j.status.code(), Some(1), "{j:?}");
    assert!(
        stderr(&n).contains(message) && stderr(&j).contains(message),
        "{n:?}\n{j:?}"
    );
    let help = stdout(&native(&["console-consumer", "--help"]));
    assert!(
        help.contains("--from-beginning") && help.contains("--isolation-level"),
        "{help}"
    );
    assert!(stdout(&native(&["console-producer", "--help"])).contains("--request-required-acks"));
}

#[test]
fn a_native_group_consumer_rebalances_when_a_java_consumer_joins() {
    let _serial = serial();
    let broker = Broker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let b = broker.bootstrap();
    create(&b, "rb", "2");
    let batch = |from: usize| -> String { (from..from + 10).map(|i| format!("k{i}\tv{i}\n")).collect() };
    produce(false, &b, "rb", &["--property", "parse.key=true"], &batch(0));

    let out_path = broker.temp_dir().join("native.out");
    let mut native_consumer = Command::new(common::oxka_bin())
        .args(["tool", "console-consumer", "--bootstrap-server", &b, "--topic", "rb"])
        .args([
            "--group",
            "rb-g",
            "--from-beginning",
            "--consumer-property",
            "auto.commit.interval.ms=500",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the native consumer");
    let printed = || std::fs::read_to_string(&out_path).unwrap_or_default();
    common::wait_for(
        "the native consumer to print 10 records",
        Duration::from_secs(60),
        || printed().lines().count() == 10,
    );
    // A Java consumer joins the group: the native member must rejoin for the group to become stable.
    let java_consumer = {
        let mut cmd = Command::new(common::repo_root().join("scripts/kafka"));
        cmd.args([
            "4",
            "console-consumer",
            "--bootstrap-server",
            &b,
            "--topic",
            "rb",
            "--group",
            "rb-g",
        ])
        .args(["--timeout-ms", "20000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd.spawn().expect("spawn Kafka's consumer")
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let members = stdout(&native(&[
            "consumer-groups",
            "--bootstrap-server",
            &b,
            "--describe",
            "--group",
            "rb-g",
            "--members",
        ]));
        let rows = members.lines().filter(|l| l.starts_with("rb-g ")).count();
        if rows == 2 && members.lines().filter(|l| l.trim_end().ends_with(" 1")).count() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group never had two members with a partition each:\n{members}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    produce(false, &b, "rb", &["--property", "parse.key=true"], &batch(10));
    std::thread::sleep(Duration::from_secs(5));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(native_consumer.id().to_string())
        .status();
    let status = common::wait_child(&mut native_consumer, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(native_consumer.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        status.success(),
        "the native consumer exits 0 on SIGTERM: {status:?}\n{err}"
    );
    assert!(err.contains("Processed a total of"), "{err}");
    let java_out = java_consumer
        .wait_with_output()
        .expect("Kafka's consumer ends after its timeout");
    let mut all: Vec<String> = printed().lines().map(str::to_string).collect();
    all.extend(stdout(&java_out).lines().map(str::to_string));
    all.sort_by_key(|v| v[1..].parse::<u32>().unwrap());
    let expected: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    assert_eq!(
        all, expected,
        "every record printed once by one of the two consumers\njava: {java_out:?}"
    );
    let _ = std::io::stdout().flush();
}

#[test]
fn console_tools_work_against_apache_kafka() {
    let _serial = serial();
    let kafka = Broker::start_target(Target::ApacheKafka, &[]);
    let b = kafka.bootstrap();
    create(&b, "k-c", "3");
    produce(
        false,
        &b,
        "k-c",
        &[
            "--property",
            "parse.key=true",
            "--property",
            "parse.headers=true",
            "--property",
            "null.marker=NUL",
        ],
        &keyed_input(9),
    );
    let mut args = vec!["--topic", "k-c", "--from-beginning", "--max-messages", "9"];
    args.extend_from_slice(PRINT_ALL);
    assert_same_consumed(&b, &args, 9);
    let first = consume(
        false,
        &b,
        &[
            "--topic",
            "k-c",
            "--group",
            "kg",
            "--from-beginning",
            "--max-messages",
            "4",
        ],
    );
    let second = consume(true, &b, &["--topic", "k-c", "--group", "kg", "--max-messages", "5"]);
    assert!(
        first.status.success() && second.status.success(),
        "{first:?}\n{second:?}"
    );
    let mut both = sorted(&stdout(&first));
    both.extend(sorted(&stdout(&second)));
    both.sort();
    let all = sorted(&stdout(&consume(
        false,
        &b,
        &["--topic", "k-c", "--from-beginning", "--max-messages", "9"],
    )));
    assert_eq!(
        both, all,
        "the Java consumer continued where the native one's group stopped"
    );
}
