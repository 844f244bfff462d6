//! The binary started under one of the distribution's command names (`bin/kafka-topics.sh`,
//! `bin/kafka-server-start.sh`, ...): the images carry the distribution's `bin/` as links to the binary,
//! because they have no shell to run the scripts. Each name means what its script in the checkout's
//! `bin/` runs (`oxka-run.sh ARGS "$@"`); a test below reads the scripts and checks that.

use std::ffi::OsString;
use std::path::Path;

/// What the command line means once the name it was started under is taken into account.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run with these arguments (the first is the program name, as in `std::env::args_os`).
    Run(Vec<OsString>),
    /// A start script without its config file: print this line (Kafka's usage) and exit 1.
    Usage(String),
}

/// The start scripts' usage lines, printed when they get no argument (as Kafka's scripts do).
const STARTS: [(&str, &str, &str); 2] = [
    (
        "kafka-server-start.sh",
        "broker",
        "[-daemon] server.properties [--override property=value]*",
    ),
    (
        "zookeeper-server-start.sh",
        "coordinator",
        "[-daemon] zookeeper.properties",
    ),
];

/// The other names and the arguments they stand for; `kafka-NAME.sh` stands for `tool NAME`.
const NAMES: [(&str, &[&str]); 4] = [
    ("kafka-server-stop.sh", &["stop", "broker"]),
    ("zookeeper-server-stop.sh", &["stop", "coordinator"]),
    ("oxka-status.sh", &["status"]),
    ("oxka-run.sh", &[]),
];

/// `argv` with the arguments the program name stands for put in front of the user's; unchanged when
/// the binary runs under any other name (`oxka`).
pub fn resolve(mut argv: Vec<OsString>) -> Invocation {
    let Some(program) = argv.first().cloned() else {
        return Invocation::Run(argv);
    };
    let name = Path::new(&program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let prefix: Vec<&str> = if let Some((_, role, usage)) = STARTS.iter().find(|(n, ..)| *n == name) {
        if argv.len() < 2 {
            return Invocation::Usage(format!("USAGE: {} {usage}", program.to_string_lossy()));
        }
        vec![role]
    } else if let Some((_, args)) = NAMES.iter().find(|(n, _)| *n == name) {
        args.to_vec()
    } else if let Some(tool) = name.strip_prefix("kafka-").and_then(|n| n.strip_suffix(".sh")) {
        vec!["tool", tool]
    } else {
        return Invocation::Run(argv);
    };
    let rest = argv.split_off(1);
    argv.extend(prefix.into_iter().map(OsString::from));
    argv.extend(rest);
    Invocation::Run(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Invocation {
        resolve(args.iter().map(OsString::from).collect())
    }

    fn args(args: &[&str]) -> Invocation {
        Invocation::Run(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn the_binary_under_its_own_name_is_unchanged() {
        assert_eq!(run(&["oxka", "tool", "topics"]), args(&["oxka", "tool", "topics"]));
        assert_eq!(run(&["/usr/local/bin/oxka"]), args(&["/usr/local/bin/oxka"]));
        assert_eq!(run(&[]), args(&[]));
    }

    #[test]
    fn tool_names_run_the_tool() {
        assert_eq!(
            run(&["bin/kafka-topics.sh", "--bootstrap-server", "b:9092", "--list"]),
            args(&[
                "bin/kafka-topics.sh",
                "tool",
                "topics",
                "--bootstrap-server",
                "b:9092",
                "--list"
            ])
        );
    }

    #[test]
    fn a_start_script_without_its_config_prints_kafkas_usage() {
        assert_eq!(
            run(&["bin/kafka-server-start.sh"]),
            Invocation::Usage(
                "USAGE: bin/kafka-server-start.sh [-daemon] server.properties [--override property=value]*".into()
            )
        );
        assert_eq!(
            run(&[
                "/opt/oxka/bin/kafka-server-start.sh",
                "-daemon",
                "config/server.properties"
            ]),
            args(&[
                "/opt/oxka/bin/kafka-server-start.sh",
                "broker",
                "-daemon",
                "config/server.properties"
            ])
        );
    }

    /// Every script of the checkout's `bin/` ends in `exec ".../oxka-run.sh" ARGS "$@"`: its name, as a
    /// link to the binary, must mean the same ARGS, and a start script's usage line must be the same.
    #[test]
    fn every_script_name_means_what_the_script_runs() {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bin");
        let mut checked = 0;
        for entry in std::fs::read_dir(&bin).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if !name.ends_with(".sh") || name == "oxka-run.sh" {
                continue;
            }
            let script = std::fs::read_to_string(&path).unwrap();
            let exec = script
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("exec \"$(dirname \"${BASH_SOURCE[0]}\")/oxka-run.sh\"")
                })
                .unwrap_or_else(|| panic!("{name}: no exec of oxka-run.sh"));
            let words: Vec<&str> = exec.split_whitespace().filter(|w| *w != "\"$@\"").collect();
            let mut want = vec![name.as_str()];
            want.extend(&words);
            want.push("ARG");
            assert_eq!(run(&[name.as_str(), "ARG"]), args(&want), "{name}");
            if let Some(line) = script.lines().find_map(|l| l.trim().strip_prefix("echo \"USAGE: $0 ")) {
                let usage = line.trim_end_matches('"');
                assert_eq!(
                    run(&[name.as_str()]),
                    Invocation::Usage(format!("USAGE: {name} {usage}"))
                );
            }
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} scripts in {}", bin.display());
    }
}
