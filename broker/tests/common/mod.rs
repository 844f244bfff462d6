//! Shared harness for oxka's integration tests: real broker processes driven by real Kafka clients.
//!
//! A [`Broker`] is the `oxka` binary run as a child process (`oxka broker <file>`) with a
//! server.properties written into a fresh temp dir, listening on its own loopback port, so tests run in
//! parallel. The clients are tools nobody here wrote: Apache Kafka's Java CLI (through `scripts/kafka`),
//! `kcat` (librdkafka) and the Python clients `kafka-python` and `confluent-kafka`, all installed by
//! `scripts/install-tools.sh`. A missing tool fails the test with that instruction; nothing is skipped.
//!
//! [`coordinator`] runs `oxka coordinator` processes (one, or an [`coordinator::Ensemble`] of three) and
//! speaks the Kafka protocol to them (DescribeQuorum, Metadata).
//!
//! `OXKA_TEST_TARGET=kafka` runs the same scenarios against Apache Kafka 4.x instead (started by
//! `scripts/apache-kafka-broker.sh`), which proves a test itself is right. `OXKA_BIN` points the
//! harness at another oxka binary (e.g. a release build) than the one cargo built for the tests.
#![allow(dead_code)]

pub mod certs;
pub mod cluster;
pub mod coordinator;
pub mod disk;
pub mod group_members;
pub mod raw;
pub mod secured;
pub mod tools_compare;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Root of the checkout (the workspace), where `scripts/` lives.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("broker/ has a parent")
        .to_path_buf()
}

/// Where `scripts/install-tools.sh` puts the tools.
pub fn tool_cache() -> PathBuf {
    match std::env::var_os("OXKA_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/oxka"),
    }
}

const INSTALL_HINT: &str = "run scripts/install-tools.sh (it installs the Kafka tools, kcat and the Python clients)";

/// Heavy tests (a million records, JVM tools in a loop) take this lock so that they run one at a time
/// on a small machine; light tests run in parallel as cargo test schedules them.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which broker implementation the tests start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Oxka,
    /// Apache Kafka 4.x, single-node KRaft: the reference the tests are proven against.
    ApacheKafka,
}

pub fn target() -> Target {
    match std::env::var("OXKA_TEST_TARGET").as_deref() {
        Ok("kafka") | Ok("apache-kafka") => Target::ApacheKafka,
        Ok("oxka") | Ok("") | Err(_) => Target::Oxka,
        Ok(other) => panic!("OXKA_TEST_TARGET={other}: expected oxka or kafka"),
    }
}

/// A free loopback port for a server. Ports come from below the kernel's ephemeral range (32768 and up
/// on Linux), so the outgoing connections of the many clients and brokers a test runs can never take a
/// port between our check and the server's bind; each port is handed out once per test process, and
/// the process id spreads parallel test binaries over the range.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000; // up to 31_999
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        // Step by 2: Apache Kafka's controller listens on port + 1, keep both free.
        let port = (LOW + NEXT.fetch_add(2, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// One broker process with its own data dir and port. Killed on drop; when the test is failing, the
/// tail of its log is printed.
pub struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    metrics_port: u16,
    overrides: Vec<(String, String)>,
    target: Target,
    child: Option<Child>,
    starts: u32,
    /// Started under `prlimit --nofile=N:N` (soft and hard open-file limit) when set.
    open_file_limit: Option<u64>,
}

impl Broker {
    /// Starts a broker with the harness defaults plus `overrides` (Kafka's own config keys).
    pub fn start(overrides: &[(&str, &str)]) -> Broker {
        let mut broker = Broker::new(overrides);
        broker.spawn();
        broker
    }

    /// Starts a broker of the given implementation whatever `OXKA_TEST_TARGET` says (for tests that
    /// compare the two, such as the native tools' against Apache Kafka's).
    pub fn start_target(target: Target, overrides: &[(&str, &str)]) -> Broker {
        let mut broker = Broker::new(overrides);
        broker.target = target;
        broker.spawn();
        broker
    }

    /// Starts a broker process like [`Broker::start`] but returns at once, without waiting for its
    /// listener: for a broker that is expected to fail (see [`Broker::wait_exit`]).
    pub fn launch(overrides: &[(&str, &str)]) -> Broker {
        let mut broker = Broker::new(overrides);
        broker.launch_process();
        broker
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("broker is running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new(overrides: &[(&str, &str)]) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("oxka-test-")
            .tempdir()
            .expect("create temp dir");
        Broker {
            dir,
            port: free_port(),
            metrics_port: free_port(),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            target: target(),
            child: None,
            starts: 0,
            open_file_limit: None,
        }
    }

    /// Starts an oxka broker whose soft and hard open-file limits are `limit` (`prlimit`).
    pub fn start_with_open_file_limit(overrides: &[(&str, &str)], limit: u64) -> Broker {
        let mut broker = Broker::new(overrides);
        broker.target = Target::Oxka;
        broker.open_file_limit = Some(limit);
        broker.spawn();
        broker
    }

    /// How many files the broker process has open now (`/proc/<pid>/fd`).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// The broker's `log.dirs` (one directory).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// The properties this harness writes; later lines win, so overrides follow the defaults.
    fn properties(&self) -> Vec<(String, String)> {
        let mut props: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| props.push((k.to_string(), v));
        set("broker.id", "0".into());
        set("listeners", format!("PLAINTEXT://127.0.0.1:{}", self.port));
        set("advertised.listeners", format!("PLAINTEXT://127.0.0.1:{}", self.port));
        set("log.dirs", self.data_dir().display().to_string());
        set("num.partitions", "1".into());
        set("offsets.topic.replication.factor", "1".into());
        set("transaction.state.log.replication.factor", "1".into());
        set("transaction.state.log.min.isr", "1".into());
        set("share.coordinator.state.topic.replication.factor", "1".into());
        set("share.coordinator.state.topic.min.isr", "1".into());
        set("group.initial.rebalance.delay.ms", "0".into());
        if self.target == Target::Oxka {
            set("metrics.port", self.metrics_port.to_string());
        }
        // `{port}` in an override is this broker's port, `{controller_port}` the port Apache Kafka's
        // controller listens on (for listeners added beside the harness's).
        let (port, controller_port) = (self.port.to_string(), (self.port + 1).to_string());
        props.extend(self.overrides.iter().map(|(k, v)| {
            let v = v
                .replace("{port}", &port)
                .replace("{controller_port}", &controller_port);
            (k.clone(), v)
        }));
        props
    }

    fn spawn(&mut self) {
        self.launch_process();
        self.wait_until_accepting();
    }

    fn launch_process(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open broker log");
        self.starts += 1;
        let mut cmd = match self.target {
            Target::Oxka => {
                let mut text = String::new();
                for (k, v) in self.properties() {
                    writeln!(text, "{k}={v}").unwrap();
                }
                let file = self.dir.path().join("server.properties");
                std::fs::write(&file, text).expect("write server.properties");
                let mut cmd = match self.open_file_limit {
                    Some(limit) => {
                        let mut cmd = Command::new("prlimit");
                        cmd.arg(format!("--nofile={limit}:{limit}")).arg("--").arg(oxka_bin());
                        cmd
                    }
                    None => Command::new(oxka_bin()),
                };
                cmd.arg("broker").arg(&file);
                cmd.env("NO_COLOR", "1"); // plain text in broker.log
                if std::env::var_os("RUST_LOG").is_none() {
                    cmd.env("RUST_LOG", "info");
                }
                cmd
            }
            Target::ApacheKafka => {
                let mut cmd = Command::new(repo_root().join("scripts/apache-kafka-broker.sh"));
                require_java_tools("4");
                cmd.arg(self.dir.path().join("kafka")).arg(self.port.to_string());
                let overridden = |k: &str| self.overrides.iter().any(|(o, _)| o == k);
                for (k, v) in self.properties() {
                    let listener_key = k == "listeners" || k == "advertised.listeners" || k == "broker.id";
                    if listener_key && !overridden(&k) {
                        continue; // the script sets these for KRaft (two listeners)
                    }
                    cmd.arg(format!("{k}={v}"));
                }
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .current_dir(self.dir.path());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start broker {cmd:?}: {e}"));
        self.child = Some(child);
    }

    fn wait_until_accepting(&mut self) {
        let timeout = match self.target {
            Target::Oxka => Duration::from_secs(30),
            Target::ApacheKafka => Duration::from_secs(90),
        };
        let deadline = Instant::now() + timeout;
        let addr: SocketAddr = self.bootstrap().parse().unwrap();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.child = None;
                panic!("broker exited during startup with {status}\n{}", self.log_tail(60));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "broker did not accept connections on {addr} within {timeout:?}\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.target == Target::ApacheKafka {
            // Kafka's socket opens before the broker is unfenced; wait until metadata lists it.
            wait_for("Apache Kafka to register its broker", Duration::from_secs(60), || {
                let out = kafka_tool_timeout(
                    "4",
                    "broker-api-versions",
                    &["--bootstrap-server", &self.bootstrap()],
                    30,
                );
                out.status.success()
            });
        }
    }

    /// Graceful stop: SIGTERM, then wait (up to 60 s, then SIGKILL and fail).
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker is running");
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("broker did not exit within 60 s of SIGTERM\n{}", self.log_tail(60));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM without waiting: the broker starts its shutdown; [`Broker::stop`] then waits for the exit.
    pub fn sigterm(&self) {
        signal(self.pid(), "TERM");
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        child.kill().expect("SIGKILL broker");
        child.wait().expect("reap broker");
    }

    /// SIGSTOP / SIGCONT: the process freezes with its sockets open.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// Starts again on the same port with the same data dir (stops it first if it is running).
    /// Starts the process again without waiting for it to accept connections (for brokers expected to
    /// refuse to start).
    pub fn relaunch(&mut self) {
        self.launch_process();
    }

    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Peak resident set size of the running broker (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        proc_status_kb(self.pid(), "VmHWM") * 1024
    }

    /// Current resident set size (VmRSS), in bytes.
    pub fn rss(&self) -> u64 {
        proc_status_kb(self.pid(), "VmRSS") * 1024
    }

    /// The last `lines` lines of the broker's stdout+stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        format!(
            "---- last {} lines of {} ({} start(s)) ----\n{}\n----",
            all.len() - start,
            self.log_path().display(),
            self.starts,
            all[start..].join("\n")
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `*.log` segment files of one partition (`<topic>-<partition>/` under log.dirs), sorted by name
    /// (= base offset). Files being deleted (`.log.deleted`) are not counted.
    pub fn segment_files(&self, topic: &str, partition: i32) -> Vec<PathBuf> {
        let dir = self.partition_dir(topic, partition);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        files
    }

    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir().join(format!("{topic}-{partition}"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(80));
            if std::env::var_os("OXKA_KEEP_TEMP").is_some() {
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
                eprintln!("keeping {}", dir.keep().display());
            }
        }
    }
}

/// The oxka binary under test.
pub fn oxka_bin() -> PathBuf {
    match std::env::var_os("OXKA_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_oxka")),
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Polls `check` every 200 ms until it holds, or panics after `timeout` naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ------------------------------------------------------------------------------------------------
// Running the client tools
// ------------------------------------------------------------------------------------------------

/// Runs a command with `stdin` fed to it, killing it after `timeout`. Never panics on a failing exit
/// status: callers assert on the `Output`.
pub fn run(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data); // a tool may exit before reading everything
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap();
            let stderr = err_reader.join().unwrap();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
                tail(&stdout, 40),
                tail(&stderr, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// The last `lines` lines of some output, as text.
pub fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Panics with the command's output unless it exited 0; returns stdout as text.
pub fn expect_success(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
        out.status,
        tail(&out.stdout, 60),
        tail(&out.stderr, 60)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_java_tools(version: &str) {
    let line = if version.starts_with("2.8") { "2.8" } else { "4" };
    let classpath = tool_cache().join(format!("kafka-{line}/classpath.txt"));
    assert!(
        classpath.exists(),
        "Apache Kafka {line} tools are missing ({} does not exist): {INSTALL_HINT}",
        classpath.display()
    );
    assert!(
        which("java").is_some(),
        "java is not installed (Java 17 is needed for Kafka's tools)"
    );
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs Apache Kafka's `kafka-<tool>.sh` of `version` ("2.8" or "4") with a 120 s timeout.
pub fn kafka_tool(version: &str, tool: &str, args: &[&str]) -> Output {
    kafka_tool_timeout(version, tool, args, 120)
}

pub fn kafka_tool_timeout(version: &str, tool: &str, args: &[&str], timeout_secs: u64) -> Output {
    kafka_tool_stdin(version, tool, args, b"", timeout_secs)
}

pub fn kafka_tool_stdin(version: &str, tool: &str, args: &[&str], stdin: &[u8], timeout_secs: u64) -> Output {
    kafka_tool_env(version, tool, args, stdin, timeout_secs, &[])
}

/// [`kafka_tool_stdin`] with more environment variables (say, `KAFKA_OPTS` system properties).
pub fn kafka_tool_env(
    version: &str,
    tool: &str,
    args: &[&str],
    stdin: &[u8],
    timeout_secs: u64,
    env: &[(&str, &str)],
) -> Output {
    require_java_tools(version);
    let mut cmd = Command::new(repo_root().join("scripts/kafka"));
    cmd.arg(version).arg(tool).args(args);
    cmd.envs(env.iter().copied());
    run(cmd, stdin, Duration::from_secs(timeout_secs))
}

/// Runs `kcat` with `stdin`, 120 s timeout.
pub fn kcat(args: &[&str], stdin: &[u8]) -> Output {
    kcat_timeout(args, stdin, Duration::from_secs(120))
}

/// [`kcat`] with another timeout (the test fails if kcat is still running then).
pub fn kcat_timeout(args: &[&str], stdin: &[u8], timeout: Duration) -> Output {
    let program = which("kcat").unwrap_or_else(|| panic!("kcat is not installed: {INSTALL_HINT}"));
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd, stdin, timeout)
}

/// The Python interpreter of the tools venv (kafka-python, confluent-kafka and the codecs).
pub fn python_bin() -> PathBuf {
    let bin = tool_cache().join("venv/bin/python");
    assert!(
        bin.exists(),
        "the Python venv is missing ({} does not exist): {INSTALL_HINT}",
        bin.display()
    );
    bin
}

/// Runs a Python script in the tools venv after [`PY_PRELUDE`], with `BOOTSTRAP` in its environment;
/// 300 s timeout.
pub fn python(script: &str, bootstrap: &str) -> Output {
    python_env(script, bootstrap, &[])
}

/// [`python`] with more environment variables: the way tests pass parameters to a script.
pub fn python_env(script: &str, bootstrap: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = python_command(script, bootstrap);
    cmd.envs(env.iter().copied());
    run(cmd, b"", Duration::from_secs(300))
}

fn python_command(script: &str, bootstrap: &str) -> Command {
    let mut cmd = Command::new(python_bin());
    cmd.arg("-c")
        .arg(format!("{PY_PRELUDE}\n{script}"))
        .env("BOOTSTRAP", bootstrap)
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Runs a Python script that must succeed; returns its stdout.
pub fn python_ok(script: &str, bootstrap: &str) -> String {
    expect_success("python script", &python(script, bootstrap))
}

/// [`python_env`] that must succeed; returns its stdout.
pub fn python_env_ok(script: &str, bootstrap: &str, env: &[(&str, &str)]) -> String {
    expect_success("python script", &python_env(script, bootstrap, env))
}

/// Starts a Python script (after the prelude) in the background, stdout and stderr to
/// `<dir>/<name>.out` and `.err`; the caller waits for it or kills it.
pub fn python_spawn(script: &str, bootstrap: &str, env: &[(&str, &str)], dir: &Path, name: &str) -> Child {
    let out = std::fs::File::create(dir.join(format!("{name}.out"))).expect("create script stdout");
    let err = std::fs::File::create(dir.join(format!("{name}.err"))).expect("create script stderr");
    let mut cmd = python_command(script, bootstrap);
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    cmd.spawn().expect("start python")
}

/// Python helpers every test script gets (see [`python`]).
pub const PY_PRELUDE: &str = r#"
import os, sys, time, json
BOOTSTRAP = os.environ["BOOTSTRAP"]

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def retry_coordinator(fn, what, timeout=30.0):
    """Runs fn(), retrying while the group coordinator is still loading or moving (NOT_COORDINATOR,
    COORDINATOR_LOAD_IN_PROGRESS, ..., and librdkafka's local _WAIT_COORD while it looks for a moved
    coordinator), as a real application does; Kafka answers so right after it creates
    __consumer_offsets or restarts, or when the coordinator's broker fails."""
    from confluent_kafka import KafkaException
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except KafkaException as e:
            err = e.args[0]
            if time.time() > deadline or not (err.retriable() or err.name() in (
                    "NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE",
                    "_WAIT_COORD")):
                fail(f"{what}: {err}")
            time.sleep(0.5)

def commit_offsets(consumer, offsets):
    retry_coordinator(lambda: consumer.commit(offsets=offsets, asynchronous=False), "commit")

def consume_all(topic, partition, expected, timeout=60.0, extra=None):
    """Reads `expected` records of one partition from its log start offset with confluent-kafka
    (librdkafka, CRC checks on); returns [(offset, key, value, headers)]."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    conf = {"bootstrap.servers": BOOTSTRAP, "group.id": "oxka-check", "enable.auto.commit": False,
            "check.crcs": True, "enable.partition.eof": False, "fetch.max.bytes": 52428800}
    conf.update(extra or {})
    c = Consumer(conf)
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    out = []
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        for m in c.consume(num_messages=10000, timeout=0.5):
            if m.error():
                fail(f"consumer error on {topic}-{partition}: {m.error()}")
            out.append((m.offset(), m.key(), m.value(), m.headers()))
    c.close()
    return out
"#;

/// Creates a topic (CreateTopics through confluent-kafka's admin client, which starts faster than a
/// JVM) and waits until it is created.
pub fn create_topic(broker: &Broker, topic: &str, partitions: u32) {
    create_topic_with(broker, topic, partitions, &[]);
}

/// Creates a topic with topic-level configs (e.g. `("segment.bytes", "1048576")`).
pub fn create_topic_with(broker: &Broker, topic: &str, partitions: u32, configs: &[(&str, &str)]) {
    let configs: Vec<String> = configs.iter().map(|(k, v)| format!("{k:?}: {v:?}")).collect();
    let script = format!(
        r#"
import os
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({{"bootstrap.servers": os.environ["BOOTSTRAP"]}})
futures = admin.create_topics([NewTopic({topic:?}, {partitions}, 1, config={{{configs}}})], request_timeout=30)
for f in futures.values():
    f.result(timeout=60)
"#,
        configs = configs.join(", ")
    );
    expect_success(&format!("create topic {topic}"), &python(&script, &broker.bootstrap()));
}

/// The value of an unlabelled metric on the `/metrics` endpoint at `port`; panics, showing the page,
/// when it is not there.
pub fn metric_value(port: u16, name: &str) -> f64 {
    let text = http_get(port, "/metrics");
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics on port {port}:\n{text}"))
}

/// `GET path` on 127.0.0.1:`port`; the whole HTTP response (status line, headers, body).
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP port");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// Compiles `tests/java/NumberedProducer.java` against Kafka 4.x's client jars; returns the classpath
/// to run it with.
pub fn numbered_producer_classpath(work: &std::path::Path) -> String {
    java_program_classpath(work, "NumberedProducer")
}

/// Compiles `tests/java/<program>.java` against Kafka 4.x's client jars into `work/classes`; returns
/// the classpath to run it with.
pub fn java_program_classpath(work: &std::path::Path, program: &str) -> String {
    let kafka_cp_file = tool_cache().join("kafka-4/classpath.txt");
    let kafka_cp = std::fs::read_to_string(&kafka_cp_file).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run scripts/install-tools.sh",
            kafka_cp_file.display()
        )
    });
    let kafka_cp = kafka_cp.trim();
    let source = repo_root().join(format!("broker/tests/java/{program}.java"));
    let classes = work.join("classes");
    std::fs::create_dir_all(&classes).unwrap();
    let mut javac = Command::new("javac");
    javac.arg("-d").arg(&classes).arg("-cp").arg(kafka_cp).arg(&source);
    expect_success(&format!("javac {program}"), &run(javac, b"", Duration::from_secs(120)));
    format!("{}:{kafka_cp}", classes.display())
}

/// A command running `tests/java/<program>.java` (compiled into `work`) with Kafka 4.x's clients
/// and their quiet log configuration.
pub fn java_program(work: &std::path::Path, program: &str, args: &[&str]) -> Command {
    let classpath = java_program_classpath(work, program);
    let log4j = tool_cache().join("kafka-4/log4j2.properties");
    let mut cmd = Command::new("java");
    cmd.arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(classpath)
        .arg(program)
        .args(args);
    cmd
}

/// Waits for a child process, killing it (and failing) after `timeout`.
pub fn wait_child(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads every partition of `topic` (written by `tests/java/NumberedProducer.java`: key = value = a
/// number) and checks that each number in `0..count` is there exactly once and in order within its
/// partition; returns the script's output, `ok <count>`.
pub fn check_numbered(bootstrap: &str, topic: &str, count: u64, partitions: u32) -> String {
    let script = r#"
import os
from confluent_kafka import Consumer, TopicPartition
count = int(os.environ["COUNT"])
seen = bytearray(count)
for p in range(int(os.environ["PARTITIONS"])):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "check", "check.crcs": True})
    lo, hi = c.get_watermark_offsets(TopicPartition(os.environ["TOPIC"], p), timeout=10)
    rows = consume_all(os.environ["TOPIC"], p, hi - lo, timeout=120)
    last = -1
    for off, key, value, _ in rows:
        n = int(value)
        if key != value:
            fail(f"partition {p} offset {off}: key {key!r} != value {value!r}")
        if seen[n]:
            fail(f"number {n} appears twice (again at partition {p} offset {off})")
        seen[n] = 1
        if n <= last:
            fail(f"partition {p}: {n} after {last} at offset {off}: out of order")
        last = n
missing = [i for i in range(count) if not seen[i]]
if missing:
    fail(f"{len(missing)} numbers missing, first {missing[:5]}")
print("ok", count)
"#;
    let (count, partitions) = (count.to_string(), partitions.to_string());
    python_env_ok(
        script,
        bootstrap,
        &[("COUNT", &count), ("PARTITIONS", &partitions), ("TOPIC", topic)],
    )
}

/// `tests/java/NumberedProducer.java` (Kafka's Java producer, idempotent, acks=all) running in the
/// background: sends the numbers `[0, count)` to `topic`, optionally paced to `per_second`.
pub struct NumberedProducer {
    child: Child,
    count: u64,
    out: PathBuf,
    err: PathBuf,
}

impl NumberedProducer {
    pub fn start(bootstrap: &str, topic: &str, count: u64, per_second: Option<u64>, work: &Path) -> NumberedProducer {
        let classpath = numbered_producer_classpath(work);
        let log4j = tool_cache().join("kafka-4/log4j2.properties");
        let (out, err) = (work.join("producer.out"), work.join("producer.err"));
        let mut cmd = Command::new("java");
        cmd.arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .arg("-cp")
            .arg(&classpath)
            .arg("NumberedProducer")
            .arg(bootstrap)
            .arg(topic)
            .arg(count.to_string());
        if let Some(rate) = per_second {
            cmd.arg(rate.to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start java");
        NumberedProducer { child, count, out, err }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits (up to `timeout`) and asserts that every record was acknowledged; `context` (e.g. the
    /// cluster's logs) is printed on failure.
    #[track_caller]
    pub fn expect_all_acknowledged(mut self, timeout: Duration, context: &str) {
        let status = wait_child(&mut self.child, timeout);
        let stdout = std::fs::read_to_string(&self.out).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.err).unwrap_or_default();
        assert!(
            status.success() && stdout.trim() == format!("acked={} failed=0", self.count),
            "the producer did not get every record acknowledged: {stdout}\n{}\n{context}",
            tail(stderr.as_bytes(), 30),
        );
    }
}

/// The sum of the high watermarks of `topic`'s partitions `0..partitions` (0 for one that cannot be
/// asked now): how far a producer has come.
pub fn high_watermark_total(bootstrap: &str, topic: &str, partitions: u32) -> i64 {
    let script = r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "progress"})
total = 0
for p in range(int(os.environ["PARTITIONS"])):
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(os.environ["TOPIC"], p), timeout=5)
        total += hi
    except Exception:
        pass
print(total)
"#;
    let partitions = partitions.to_string();
    let out = python_env(script, bootstrap, &[("TOPIC", topic), ("PARTITIONS", &partitions)]);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// Starts Kafka's `kafka-producer-perf-test` (4.x, acks=all, 100-byte records) in the background,
/// output to `<work>/perf.out` and `perf.err`.
pub fn spawn_producer_perf_test(bootstrap: &str, topic: &str, records: u64, throughput: u64, work: &Path) -> Child {
    let props = format!("bootstrap.servers={bootstrap}");
    Command::new(repo_root().join("scripts/kafka"))
        .args([
            "4",
            "producer-perf-test",
            "--topic",
            topic,
            "--num-records",
            &records.to_string(),
        ])
        .args(["--record-size", "100", "--throughput", &throughput.to_string()])
        .args(["--producer-props", &props, "acks=all"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(work.join("perf.out")).unwrap())
        .stderr(std::fs::File::create(work.join("perf.err")).unwrap())
        .spawn()
        .expect("start producer-perf-test")
}

/// Reads every partition of `topic` with librdkafka at `isolation`; returns the values in partition
/// order (data records only: librdkafka skips control records and, at read_committed, aborted data).
pub fn librdkafka_values(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    isolation: &str,
    expected: usize,
) -> Vec<String> {
    librdkafka_partition_values(bootstrap, topic, partitions, isolation, expected)
        .into_values()
        .flatten()
        .collect()
}

/// [`librdkafka_values`] by partition: partition -> its values in offset order. Reads until every
/// partition reached its end (at read_committed, its last stable offset) and at least `expected`
/// values arrived, or 60 s passed.
pub fn librdkafka_partition_values(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    isolation: &str,
    expected: usize,
) -> std::collections::BTreeMap<i32, Vec<String>> {
    let script = r#"
import os
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
topic, expected = os.environ["TOPIC"], int(os.environ["EXPECTED"])
parts = int(os.environ["PARTITIONS"])
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "txn-check", "enable.auto.commit": False,
              "isolation.level": os.environ["ISOLATION"], "check.crcs": True, "enable.partition.eof": True})
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
out, eof = {p: [] for p in range(parts)}, set()
deadline = time.time() + 60
while (len(eof) < parts or sum(len(v) for v in out.values()) < expected) and time.time() < deadline:
    for m in c.consume(num_messages=1000, timeout=0.5):
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            fail(f"consumer error: {m.error()}")
        out[m.partition()].append(m.value().decode())
c.close()
for p in range(parts):
    print(f"{p} " + ",".join(out[p]))
"#;
    let (partitions_s, expected_s) = (partitions.to_string(), expected.to_string());
    let stdout = python_env_ok(
        script,
        bootstrap,
        &[
            ("TOPIC", topic),
            ("PARTITIONS", &partitions_s),
            ("ISOLATION", isolation),
            ("EXPECTED", &expected_s),
        ],
    );
    let mut values = std::collections::BTreeMap::new();
    for line in stdout.lines() {
        let (partition, list) = line.split_once(' ').unwrap_or((line, ""));
        let partition: i32 = partition.parse().unwrap_or_else(|_| panic!("script line {line:?}"));
        let list = list.split(',').filter(|v| !v.is_empty()).map(str::to_string);
        values.insert(partition, list.collect());
    }
    values
}

/// Produces the numbers `[0, count)` (key = value) with librdkafka, idempotent, acks=all.
pub fn produce_numbers(bootstrap: &str, topic: &str, count: u64) {
    let script = r#"
import os
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "linger.ms": 5})
for i in range(int(os.environ["COUNT"])):
    p.produce(os.environ["TOPIC"], key=str(i), value=str(i))
    if i % 1000 == 0:
        p.poll(0)
if p.flush(60) != 0:
    fail("records left unacknowledged")
"#;
    python_env_ok(script, bootstrap, &[("TOPIC", topic), ("COUNT", &count.to_string())]);
}
