//! `oxka await-config FILE --key KEY`: waits until a properties file sets a key, then exits 0; exits
//! non-zero with the reason once the timeout has passed.
//!
//! The Kubernetes operator runs it as a broker pod's init container when `spec.rack` is set: the pod's
//! `broker.rack` is the label of the node the pod was scheduled on, which only the operator can read
//! (a pod cannot read its node's labels), and only after scheduling. The operator writes it into the
//! pod's file in a ConfigMap; the kubelet updates the mounted copy (a whole-directory mount, not a
//! `subPath` one, which would never change). With `--node`/`--node-file` it also waits until the
//! operator has recorded that the value was read from this pod's node, not from the node an earlier
//! pod of the same ordinal ran on.
//!
//! The file is read with the broker's own parser, so Java properties syntax (`key: value`, escapes,
//! continuation lines, comments) means what it means to the broker.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oxka_broker::config::{ConfigError, RawConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct AwaitArgs {
    /// The properties file to watch.
    pub file: PathBuf,
    /// A key that must be set to a non-empty value (repeat for several).
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// Give up (exit 1) after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// How often to read the file, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// This pod's node: also wait until NODE_FILE holds this name.
    #[arg(long, requires = "node_file")]
    pub node: Option<String>,
    /// A file naming the node the values were read from.
    #[arg(long, requires = "node")]
    pub node_file: Option<PathBuf>,
    /// The node label the values come from; only used to explain a timeout.
    #[arg(long)]
    pub node_label: Option<String>,
}

/// One look at the files.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Every key is set: `(key, value)` in the order asked.
    Ready(Vec<(String, String)>),
    /// Not yet, and why (a sentence).
    Waiting(String),
}

/// Reads the files once.
pub fn check(args: &AwaitArgs) -> State {
    if let (Some(node), Some(node_file)) = (&args.node, &args.node_file) {
        match std::fs::read_to_string(node_file) {
            Ok(text) if text.trim() == node => {}
            Ok(text) if text.trim().is_empty() => {
                return State::Waiting(format!("{} is empty", node_file.display()));
            }
            Ok(text) => {
                return State::Waiting(format!(
                    "{} names node {}, not this pod's node {node}: the values were read for an earlier pod",
                    node_file.display(),
                    text.trim()
                ));
            }
            Err(e) => {
                return State::Waiting(format!(
                    "{} (the node the values were read from) cannot be read: {e}",
                    node_file.display()
                ));
            }
        }
    }
    let raw = match RawConfig::from_file(&args.file) {
        Ok(raw) => raw,
        Err(e @ (ConfigError::Read { .. } | ConfigError::Syntax { .. })) => return State::Waiting(e.to_string()),
        Err(e) => return State::Waiting(format!("{} is not usable: {e}", args.file.display())),
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for key in &args.keys {
        match raw.string(key).filter(|v| !v.is_empty()) {
            Some(value) => found.push((key.clone(), value)),
            None => missing.push(key.as_str()),
        }
    }
    if missing.is_empty() {
        State::Ready(found)
    } else {
        State::Waiting(format!("{} does not set {}", args.file.display(), missing.join(", ")))
    }
}

/// Polls until every key is set or the timeout passes.
pub fn run(args: &AwaitArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let timeout = Duration::from_secs(args.timeout_secs);
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let mut last = String::new();
    loop {
        match check(args) {
            State::Ready(values) => {
                let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                tracing::info!("{}: {}", args.file.display(), shown.join(", "));
                return Ok(());
            }
            State::Waiting(why) => {
                if started.elapsed() >= timeout {
                    anyhow::bail!("{}", timeout_message(args, &why));
                }
                if why != last {
                    tracing::info!("waiting: {why}");
                    last = why;
                }
            }
        }
        std::thread::sleep(
            interval
                .min(timeout.saturating_sub(started.elapsed()))
                .max(Duration::from_millis(1)),
        );
    }
}

/// Why giving up, with what may be wrong: for the pod's status (the init container's last words).
fn timeout_message(args: &AwaitArgs, why: &str) -> String {
    let keys = args.keys.join(", ");
    let mut out = format!(
        "gave up after {} s: {why}. The operator (oxka-operator) has not yet written {keys} for this pod",
        args.timeout_secs
    );
    match (&args.node_label, &args.node) {
        (Some(label), Some(node)) => out.push_str(&format!(
            ". It writes it from the label {label} of the node the pod was scheduled on ({node}). Either node {node} \
             lacks the label {label} (kubectl get node {node} -L {label}: label it, or remove spec.rack), or the \
             operator lacks RBAC to get nodes (Helm chart value rbac.nodes=true) or to list pods, or it is not \
             running; the KafkaCluster's status (Degraded, reason RackUnknown) and its events say which"
        )),
        (Some(label), None) => out.push_str(&format!(
            ". It writes it from the label {label} of the pod's node: the node may lack that label, or the operator \
             may lack RBAC to get nodes (Helm chart value rbac.nodes=true)"
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn args(dir: &Path) -> AwaitArgs {
        AwaitArgs {
            file: dir.join("server-0.properties"),
            keys: vec!["broker.rack".into()],
            timeout_secs: 0,
            interval_ms: 5,
            node: None,
            node_file: None,
            node_label: None,
        }
    }

    fn ready(value: &str) -> State {
        State::Ready(vec![("broker.rack".into(), value.into())])
    }

    #[test]
    fn java_properties_syntax_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path());
        for (text, want) in [
            ("broker.id=0\nbroker.rack=zone-a\n", ready("zone-a")),
            ("broker.rack : zone-b\n", ready("zone-b")),
            ("broker.rack zone-c\n", ready("zone-c")),
            ("broker.rack=zone-\\\n    d\n", ready("zone-d")),
            ("broker\\u002erack=zone-e\n", ready("zone-e")),
        ] {
            std::fs::write(&a.file, text).unwrap();
            assert_eq!(check(&a), want, "{text:?}");
        }
        for text in [
            "# broker.rack=zone-a\n",
            "! broker.rack=zone-a\n",
            "broker.rack=\n",
            "broker.id=0\n",
        ] {
            std::fs::write(&a.file, text).unwrap();
            assert!(
                matches!(check(&a), State::Waiting(w) if w.contains("does not set broker.rack")),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path());
        assert!(matches!(check(&a), State::Waiting(w) if w.contains("cannot read config file")));
    }

    #[test]
    fn values_must_come_from_this_pods_node() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.node = Some("node-b".into());
        a.node_file = Some(dir.path().join("rack-node-0"));
        std::fs::write(&a.file, "broker.rack=zone-a\n").unwrap();
        assert!(matches!(check(&a), State::Waiting(w) if w.contains("cannot be read")));
        std::fs::write(a.node_file.as_ref().unwrap(), "node-a\n").unwrap();
        assert!(matches!(check(&a), State::Waiting(w) if w.contains("names node node-a, not this pod's node node-b")));
        std::fs::write(a.node_file.as_ref().unwrap(), "node-b\n").unwrap();
        assert_eq!(check(&a), ready("zone-a"));
    }

    #[test]
    fn a_timeout_says_what_may_be_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.node = Some("node-b".into());
        a.node_file = Some(dir.path().join("rack-node-0"));
        a.node_label = Some("topology.kubernetes.io/zone".into());
        std::fs::write(&a.file, "broker.id=0\n").unwrap();
        std::fs::write(a.node_file.as_ref().unwrap(), "node-b\n").unwrap();
        let e = run(&a).unwrap_err().to_string();
        for part in [
            "does not set broker.rack",
            "has not yet written broker.rack",
            "node node-b lacks the label topology.kubernetes.io/zone",
            "lacks RBAC to get nodes",
            "rbac.nodes=true",
        ] {
            assert!(e.contains(part), "{part:?} not in {e}");
        }
    }

    #[test]
    fn returns_as_soon_as_the_key_appears() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.timeout_secs = 30;
        std::fs::write(&a.file, "broker.id=0\n").unwrap();
        let file = a.file.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            // As the kubelet does: a new file renamed into place.
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, "broker.id=0\nbroker.rack=zone-a\n").unwrap();
            std::fs::rename(&tmp, &file).unwrap();
        });
        let started = Instant::now();
        run(&a).unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        writer.join().unwrap();
    }
}
