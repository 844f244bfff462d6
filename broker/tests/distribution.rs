//! The seed's quick start as its readers type it (issue 16), in a distribution laid out by
//! `scripts/stage-dist.sh` (what `scripts/dist.sh` packs): `bin/zookeeper-server-start.sh -daemon
//! config/zookeeper.properties`, `bin/kafka-server-start.sh -daemon config/server.properties`, the start
//! line in `logs/server.log`, Kafka 2.8's `kafka-broker-api-versions.sh` against it and the native
//! `bin/kafka-broker-api-versions.sh` (compared with Kafka 4.x's) and `bin/kafka-topics.sh`, `bin/oxka-status.sh`,
//! the stop scripts (and what they say when nothing runs), a custom `LOG_DIR`, and a bad config reported
//! by `-daemon` itself. Ports and data dirs are rewritten to free ones; nothing else is changed. The
//! same walkthrough runs again in the images' layout (`stage-dist.sh --links`: bin/ names are links to
//! the binary), without the Java tools' comparisons.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

fn run(dir: &Path, script: &str, args: &[&str], log_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(dir.join("bin").join(script));
    cmd.args(args).current_dir(dir).env_remove("OXKA_BIN");
    if let Some(log_dir) = log_dir {
        cmd.env("LOG_DIR", log_dir);
    }
    cmd.output().expect("run a bin/ script")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Rewrites `key=value` lines of a properties file (every other line, comments included, is kept).
fn set(path: &Path, values: &[(&str, String)]) {
    let old = std::fs::read_to_string(path).unwrap();
    let mut new = String::new();
    for line in old.lines() {
        let key = line.split('=').next().unwrap_or_default();
        match values.iter().find(|(k, _)| *k == key) {
            Some((k, v)) => new.push_str(&format!("{k}={v}\n")),
            None => new.push_str(&format!("{line}\n")),
        }
    }
    std::fs::write(path, new).unwrap();
}

fn wait_for_file_text(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never showed {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_seed_quick_start_runs_from_the_distribution() {
    quick_start(Layout::Scripts);
}

/// The images' /opt/oxka (e2e/image/rootfs.sh --distribution): bin/ names are links to the binary,
/// which runs what each script runs, with no shell.
#[test]
fn the_seed_quick_start_runs_from_the_images_layout() {
    quick_start(Layout::Links);
}

#[derive(PartialEq)]
enum Layout {
    /// The release archive: bin/*.sh scripts beside the binary.
    Scripts,
    /// The images: every bin/ name a link to the binary (`stage-dist.sh --links`).
    Links,
}

fn quick_start(layout: Layout) {
    let _serial = serial();
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("oxka");
    let mut stage = Command::new("bash");
    stage.arg(repo_root().join("scripts/stage-dist.sh"));
    if layout == Layout::Links {
        stage.arg("--links");
    }
    let staged = stage.arg(oxka_bin()).arg(&dist).output().unwrap();
    assert!(staged.status.success(), "stage-dist.sh: {}", text(&staged));
    let link = std::fs::read_link(dist.join("bin/kafka-topics.sh")).ok();
    assert_eq!(
        link.as_deref(),
        (layout == Layout::Links).then_some(Path::new("oxka")),
        "bin/kafka-topics.sh"
    );
    // A start script without its config file prints Kafka's usage line and fails.
    let usage = run(&dist, "kafka-server-start.sh", &[], None);
    assert!(
        !usage.status.success()
            && text(&usage)
                .ends_with("kafka-server-start.sh [-daemon] server.properties [--override property=value]*\n"),
        "{}",
        text(&usage)
    );
    // The license the workspace declares (Cargo.toml: Apache-2.0) ships with the binary.
    let license = std::fs::read_to_string(dist.join("LICENSE")).expect("the distribution has a LICENSE");
    assert!(
        license.contains("Apache License") && license.contains("Version 2.0"),
        "{license}"
    );
    let (zk_port, kafka_port) = (free_port(), free_port());
    set(
        &dist.join("config/zookeeper.properties"),
        &[
            ("dataDir", work.path().join("zookeeper").display().to_string()),
            ("clientPort", zk_port.to_string()),
        ],
    );
    let server = dist.join("config/server.properties");
    set(
        &server,
        &[
            ("listeners", format!("PLAINTEXT://127.0.0.1:{kafka_port}")),
            ("advertised.listeners", format!("PLAINTEXT://127.0.0.1:{kafka_port}")),
            ("log.dirs", work.path().join("kafka-logs").display().to_string()),
            ("zookeeper.connect", format!("localhost:{zk_port}")),
            ("metrics.port", free_port().to_string()),
        ],
    );
    // A coordinator's metrics port is not in zookeeper.properties: give it a free one too.
    std::fs::write(
        dist.join("config/zookeeper.properties"),
        format!(
            "{}metrics.port={}\n",
            std::fs::read_to_string(dist.join("config/zookeeper.properties")).unwrap(),
            free_port()
        ),
    )
    .unwrap();

    // Nothing runs yet: the stop scripts say so, with Kafka's words and status.
    let none = run(&dist, "kafka-server-stop.sh", &[], None);
    assert!(
        !none.status.success() && text(&none).contains("No kafka server to stop"),
        "{}",
        text(&none)
    );

    let zk = run(
        &dist,
        "zookeeper-server-start.sh",
        &["-daemon", "config/zookeeper.properties"],
        None,
    );
    assert!(zk.status.success(), "zookeeper-server-start.sh -daemon: {}", text(&zk));
    // Kafka's `--override key=value` after the file wins over it (the shipped file says
    // num.partitions=1): the topic created below without --partitions gets 3.
    let kafka = run(
        &dist,
        "kafka-server-start.sh",
        &["-daemon", "config/server.properties", "--override", "num.partitions=3"],
        None,
    );
    assert!(
        kafka.status.success(),
        "kafka-server-start.sh -daemon: {}",
        text(&kafka)
    );
    // `tail logs/server.log` shows the start line.
    let log = dist.join("logs/server.log");
    wait_for_file_text(&log, "oxka broker 0 started, listening on", Duration::from_secs(60));
    assert!(dist.join("logs/zookeeper.out").exists());
    assert!(
        !std::fs::read_to_string(dist.join("logs/zookeeper.out"))
            .unwrap()
            .contains('\u{1b}'),
        "no terminal colour codes in a log file"
    );

    let bootstrap = format!("127.0.0.1:{kafka_port}");
    if layout == Layout::Scripts {
        let versions = kafka_tool("2.8", "broker-api-versions", &["--bootstrap-server", &bootstrap]);
        let listing = text(&versions);
        assert!(
            versions.status.success() && listing.contains("ApiVersions(18)") && listing.contains("(id: 0 rack: null)"),
            "{listing}"
        );
    }

    // The walkthrough's bin/kafka-broker-api-versions.sh is the native tool (no JVM); it agrees with
    // Kafka 4.x's, and bin/kafka-topics.sh creates and lists a topic.
    let native = run(
        &dist,
        "kafka-broker-api-versions.sh",
        &["--bootstrap-server", &bootstrap],
        None,
    );
    let native = tools_compare::stdout(&native);
    assert!(native.contains("(id: 0 rack: null isFenced: false) -> ("), "{native}");
    if layout == Layout::Scripts {
        let java = tools_compare::stdout(&kafka_tool(
            "4",
            "broker-api-versions",
            &["--bootstrap-server", &bootstrap],
        ));
        assert_eq!(
            tools_compare::api_versions_blocks(&native, &java),
            tools_compare::api_versions_blocks(&java, &native),
            "native:\n{native}\njava:\n{java}"
        );
    }
    let created = run(
        &dist,
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--create",
            "--topic",
            "quickstart-events",
        ],
        None,
    );
    assert_eq!(text(&created), "Created topic quickstart-events.\n");
    let described = run(
        &dist,
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--describe",
            "--topic",
            "quickstart-events",
        ],
        None,
    );
    assert!(
        text(&described).contains("PartitionCount: 3"),
        "--override num.partitions=3 applies: {}",
        text(&described)
    );
    let listed = run(
        &dist,
        "kafka-topics.sh",
        &["--bootstrap-server", &bootstrap, "--list"],
        None,
    );
    assert!(
        text(&listed).lines().any(|l| l == "quickstart-events"),
        "{}",
        text(&listed)
    );

    let status = text(&run(&dist, "oxka-status.sh", &[], None));
    let line = |role: &str| {
        status
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(role))
            .map(String::from)
    };
    let broker_line = line("broker").unwrap_or_else(|| panic!("no broker in:\n{status}"));
    assert!(broker_line.contains(&format!(":{kafka_port}")), "{status}");
    assert!(line("coordinator").is_some(), "{status}");

    // The stop scripts stop each process and wait for it to exit; the log says it shut down.
    let stopped = run(&dist, "kafka-server-stop.sh", &[], None);
    assert!(stopped.status.success(), "kafka-server-stop.sh: {}", text(&stopped));
    let pid: i32 = broker_line.split_whitespace().next().unwrap().parse().unwrap();
    // Gone, or a zombie waiting for whoever adopted it to reap it: not running either way.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = state
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .trim_start()
        .starts_with('Z');
    let running = !state.is_empty() && !zombie;
    assert!(!running, "broker {pid} still running after the stop script: {state}");
    wait_for_file_text(&log, "shut down cleanly", Duration::from_secs(5));
    let stopped = run(&dist, "zookeeper-server-stop.sh", &[], None);
    assert!(stopped.status.success(), "zookeeper-server-stop.sh: {}", text(&stopped));
    let none = run(&dist, "zookeeper-server-stop.sh", &[], None);
    assert!(text(&none).contains("No zookeeper server to stop"), "{}", text(&none));

    // LOG_DIR is honoured.
    let custom = work.path().join("custom-logs");
    let zk = run(
        &dist,
        "zookeeper-server-start.sh",
        &["-daemon", "config/zookeeper.properties"],
        Some(&custom),
    );
    assert!(zk.status.success(), "{}", text(&zk));
    wait_for_file_text(&custom.join("zookeeper.out"), "started", Duration::from_secs(30));
    let stopped = run(&dist, "zookeeper-server-stop.sh", &[], None);
    assert!(stopped.status.success(), "{}", text(&stopped));

    // A config the broker refuses is reported by -daemon itself, with the reason.
    set(&server, &[("log.retention.hours", "abc".to_string())]);
    let bad = run(
        &dist,
        "kafka-server-start.sh",
        &["-daemon", "config/server.properties"],
        None,
    );
    assert!(
        !bad.status.success() && text(&bad).contains("\"abc\" for log.retention.hours"),
        "{}",
        text(&bad)
    );
}
