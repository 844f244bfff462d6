//! `-daemon`, as Kafka's `kafka-run-class.sh` does it: the role starts again in the background, in a
//! process group of its own, with no terminal, its console output appended to `$LOG_DIR/kafkaServer.out`
//! (broker) or `$LOG_DIR/zookeeper.out` (coordinator), and the broker's log going to
//! `$LOG_DIR/server.log` (rotating by size, `log_file`). `LOG_DIR` defaults to the install's `logs/`
//! (next to the `bin/` holding the binary), else `./logs`. A start that fails at once (a bad config)
//! is reported here, with the reason, instead of only in the log.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The environment variable naming the file the broker logs to instead of stderr.
pub const LOG_FILE_ENV: &str = "OXKA_LOG_FILE";

/// Where `-daemon` writes: `$LOG_DIR`, else `<install>/logs` when the binary is in a `bin/`, else `./logs`.
pub fn log_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let install = std::env::current_exe().ok().and_then(|exe| {
        let bin = exe.parent()?;
        (bin.file_name()? == "bin").then(|| bin.parent().map(|base| base.join("logs")))?
    });
    install.unwrap_or_else(|| PathBuf::from("logs"))
}

/// Starts `oxka <args>` (without `-daemon`) in the background and returns once it is running.
pub fn start(args: &[OsString]) -> anyhow::Result<()> {
    let role = args.first().and_then(|a| a.to_str()).unwrap_or_default();
    let (console, log_file) = match role {
        "broker" => ("kafkaServer.out", Some("server.log")),
        "coordinator" => ("zookeeper.out", None),
        _ => bail!("-daemon starts `oxka broker CONFIG` or `oxka coordinator CONFIG` in the background"),
    };
    let dir = log_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the log directory {}", dir.display()))?;
    let console_path = dir.join(console);
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&console_path)
        .with_context(|| format!("opening {}", console_path.display()))?;
    let console_start = out.metadata().map(|m| m.len()).unwrap_or(0);
    let mut command = Command::new(std::env::current_exe().context("finding the oxka binary")?);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0);
    if let Some(file) = log_file {
        command.env(LOG_FILE_ENV, dir.join(file));
    }
    let mut child = command.spawn().context("starting oxka in the background")?;
    // A configuration the role refuses ends it within moments: report that here.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let mut text = String::new();
            let _ = OpenOptions::new()
                .read(true)
                .open(&console_path)
                .and_then(|mut f| f.read_to_string(&mut text));
            let new = text.get(console_start as usize..).unwrap_or_default().trim();
            bail!("oxka {role} exited at once ({status}):\n{new}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = log_file.map_or(console_path.clone(), |f| dir.join(f));
    println!(
        "oxka {role} started in the background (pid {}); its log: {}",
        child.id(),
        log.display()
    );
    Ok(())
}
