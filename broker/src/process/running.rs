//! The oxka processes of this install (the same binary), found in `/proc`: what `oxka status` lists and
//! `oxka stop` stops, as Kafka's `kafka-server-stop.sh` finds its brokers with `ps`. Each is read back
//! from its command line and its config file: role, id, listeners, data dirs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::RawConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: i32,
    /// `broker` or `coordinator`.
    pub role: String,
    pub config: PathBuf,
    /// `broker.id` / `node.id` (broker), `myid` / `coordinator.id` or `dataDir/myid` (coordinator).
    pub id: Option<String>,
    pub listeners: String,
    pub data: String,
}

/// Every running oxka broker and coordinator started from this binary.
pub fn find() -> Vec<Running> {
    let Ok(own) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !same_binary(&entry.path(), &own) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(running) = describe(pid, &args, &entry.path()) {
            found.push(running);
        }
    }
    found.sort_by_key(|r| (r.role.clone(), r.id.clone(), r.pid));
    found
}

fn same_binary(proc_dir: &Path, own: &Path) -> bool {
    let Ok(exe) = std::fs::read_link(proc_dir.join("exe")) else {
        return false;
    };
    // A binary replaced since the process started reads "<path> (deleted)".
    let exe = exe.to_string_lossy().trim_end_matches(" (deleted)").to_string();
    Path::new(&exe) == own
}

fn describe(pid: i32, args: &[String], proc_dir: &Path) -> Option<Running> {
    let role = args.get(1)?.clone();
    if role != "broker" && role != "coordinator" {
        return None;
    }
    let config_arg = args.get(2)?;
    // Relative paths are relative to where the process was started.
    let config = match std::fs::read_link(proc_dir.join("cwd")) {
        Ok(cwd) => cwd.join(config_arg),
        Err(_) => PathBuf::from(config_arg),
    };
    let mut raw = RawConfig::from_file(&config).ok();
    if let Some(raw) = raw.as_mut() {
        for pair in args.windows(2).filter(|w| w[0] == "--override").map(|w| &w[1]) {
            let _ = raw.apply_override(pair);
        }
    }
    let get = |key: &str| raw.as_ref().and_then(|r| r.string(key));
    let (id, listeners, data) = if role == "broker" {
        (
            get("broker.id").or_else(|| get("node.id")),
            get("listeners").unwrap_or_else(|| "PLAINTEXT://:9092".into()),
            get("log.dirs").or_else(|| get("log.dir")).unwrap_or_default(),
        )
    } else {
        let data = get("dataDir").unwrap_or_default();
        // The coordinator's own rules (myid, coordinator.id, dataDir/myid, standalone).
        let id = raw
            .as_ref()
            .and_then(|r| crate::config::CoordinatorConfig::from_raw(r, None).ok())
            .map(|c| c.id.0.to_string());
        let port = get("clientPort").unwrap_or_else(|| "2181".into());
        (id, format!("clientPort={port}"), data)
    };
    Some(Running {
        pid,
        role,
        config,
        id,
        listeners,
        data,
    })
}

/// Sends SIGTERM to each process and waits (up to `timeout`) until all have exited; returns those
/// still running then.
pub fn stop(processes: &[Running], timeout: Duration) -> Vec<Running> {
    for p in processes {
        // Gone already is fine: it is what stopping wants.
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<Running> = processes
            .iter()
            .filter(|p| Path::new(&format!("/proc/{}", p.pid)).exists() && !is_zombie(p.pid))
            .cloned()
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|rest| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}
