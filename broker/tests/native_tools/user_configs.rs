//! configs of users, clients and ips (quotas, and users' SCRAM credentials) against Kafka 4.x's tool
//! on Apache Kafka 4.x, which serves DescribeClientQuotas, AlterClientQuotas and the SCRAM credential
//! APIs (oxka does not yet: `configs_matches_kafkas_tool_on_one_oxka_broker` checks the one-line
//! refusal). Each tool alters its own entities (`n-...` for the native one, `j-...` for Kafka's) and
//! the outputs must be the same with the names swapped; the listings of every entity must be the same
//! line for line, in Kafka's order. A credential the native tool set must let Kafka's Java client
//! log in over SCRAM with that password, and not with another.

use super::common::tools_compare::{native, stdout};
use super::common::{free_port, serial, Broker, Target};
use super::{assert_same_configs_change, java, run_both};

/// Both tools print the same (stdout and exit status) for the same command on shared state.
fn assert_same_listing(bootstrap: &str, args: &[&str]) -> String {
    let (n, j) = run_both("configs", bootstrap, args);
    assert_eq!(stdout(&n), stdout(&j), "configs {args:?}");
    stdout(&n)
}

/// `kafka-topics.sh --list` over the SCRAM listener as `user` with `password`: did the login work?
fn scram_login(sasl: &str, mechanism: &str, user: &str, password: &str, dir: &std::path::Path) -> bool {
    let config = dir.join(format!("{user}-{mechanism}-{password}.properties"));
    std::fs::write(
        &config,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";\n"
        ),
    )
    .unwrap();
    let out = java(
        "topics",
        &[
            "--bootstrap-server",
            sasl,
            "--command-config",
            config.to_str().unwrap(),
            "--list",
        ],
    );
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let refused = text.contains("SaslAuthenticationException");
    assert!(
        out.status.success() || refused,
        "kafka-topics over SCRAM neither listed nor was refused a login: {out:?}"
    );
    // oxka's tool, with the same file against Apache Kafka's SCRAM server, comes to the same verdict
    // and lists the same topics.
    let native_out = native(&[
        "topics",
        "--bootstrap-server",
        sasl,
        "--command-config",
        config.to_str().unwrap(),
        "--list",
    ]);
    assert_eq!(
        native_out.status.success(),
        out.status.success() && !refused,
        "oxka's tool over SCRAM: {native_out:?}\nKafka's: {out:?}"
    );
    if native_out.status.success() {
        assert_eq!(stdout(&native_out), stdout(&out));
    }
    out.status.success() && !refused
}

#[test]
fn user_client_and_ip_configs_match_kafkas_tool_on_apache_kafka() {
    let _serial = serial();
    let sasl_port = free_port();
    let listeners =
        format!("PLAINTEXT://127.0.0.1:{{port}},CONTROLLER://127.0.0.1:{{controller_port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let advertised = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let scram_login_module = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
    let kafka = Broker::start_target(
        Target::ApacheKafka,
        &[
            ("listeners", &listeners),
            ("advertised.listeners", &advertised),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            ),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512"),
            (
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config",
                scram_login_module,
            ),
            (
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
                scram_login_module,
            ),
        ],
    );
    let b = kafka.bootstrap();

    // Quotas of users, of a user and client together, and the refusals, each tool on its own names.
    for args in [
        &[
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            "T-alice",
            "--add-config",
            "producer_byte_rate=1024,consumer_byte_rate=2048,request_percentage=20",
        ][..],
        &["--describe", "--entity-type", "users", "--entity-name", "T-alice"],
        &[
            "--alter",
            "--user",
            "T-bob",
            "--client",
            "T-app",
            "--add-config",
            "request_percentage=50",
        ],
        &["--describe", "--user", "T-bob", "--client", "T-app"],
        &[
            "--describe",
            "--entity-type",
            "users",
            "--entity-name",
            "T-bob",
            "--entity-type",
            "clients",
            "--entity-name",
            "T-app",
        ],
        &["--alter", "--user", "T-alice", "--delete-config", "producer_byte_rate"],
        &["--describe", "--user", "T-alice"],
        &["--alter", "--user", "T-alice", "--delete-config", "producer_byte_rate"],
        &["--alter", "--user", "T-alice", "--delete-config", "bogus"],
        &["--alter", "--user", "T-alice", "--add-config", "bogus=1"],
        &["--alter", "--client", "T-app", "--add-config", "bogus=1"],
        &["--alter", "--client", "T-app", "--delete-config", "bogus"],
        &["--alter", "--user", "T-alice", "--add-config", "producer_byte_rate=abc"],
        &["--alter", "--entity-type", "clients"],
        &["--describe", "--user", "T-nobody"],
    ] {
        assert_same_configs_change(&b, args);
    }

    // SCRAM credentials: set, described (iterations, never the password), refused where Kafka refuses.
    for args in [
        &[
            "--alter",
            "--user",
            "T-carol",
            "--add-config",
            "SCRAM-SHA-256=[iterations=8192,password=T-secret]",
        ][..],
        &[
            "--alter",
            "--user",
            "T-carol",
            "--add-config",
            "SCRAM-SHA-512=[password=T-secret]",
        ],
        &["--describe", "--user", "T-carol"],
        &[
            "--alter",
            "--user",
            "T-carol",
            "--add-config",
            "SCRAM-SHA-256=[iterations=100,password=x]",
        ],
        &[
            "--alter",
            "--user",
            "T-carol",
            "--add-config",
            "SCRAM-SHA-256=[nopassword]",
        ],
        &[
            "--alter",
            "--user",
            "T-carol",
            "--add-config",
            "SCRAM-SHA-256=[password=x],producer_byte_rate=5",
        ],
        &[
            "--alter",
            "--user-defaults",
            "--add-config",
            "SCRAM-SHA-256=[password=x]",
        ],
    ] {
        assert_same_configs_change(&b, args);
    }
    // The native tool salted n-carol's password itself: Kafka's Java client logs in with it, over both
    // mechanisms, and not with another password.
    let dir = tempfile::tempdir().unwrap();
    let sasl = format!("127.0.0.1:{sasl_port}");
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        assert!(
            scram_login(&sasl, mechanism, "n-carol", "n-secret", dir.path()),
            "{mechanism}: n-carol cannot log in with the password the native tool set"
        );
        assert!(
            !scram_login(&sasl, mechanism, "n-carol", "wrong", dir.path()),
            "{mechanism}: n-carol logged in with a wrong password"
        );
    }
    for args in [
        &["--alter", "--user", "T-carol", "--delete-config", "SCRAM-SHA-512"][..],
        &["--describe", "--user", "T-carol"],
        &["--alter", "--user", "T-carol", "--delete-config", "SCRAM-SHA-512"],
    ] {
        assert_same_configs_change(&b, args);
    }
    assert!(
        !scram_login(&sasl, "SCRAM-SHA-512", "n-carol", "n-secret", dir.path()),
        "n-carol's SCRAM-SHA-512 credential was deleted but still logs in"
    );

    // Defaults: the native tool sets the client default, both describe it, Kafka's tool deletes it.
    let out = native(&[
        "configs",
        "--bootstrap-server",
        &b,
        "--alter",
        "--client-defaults",
        "--add-config",
        "producer_byte_rate=1.5e7",
    ]);
    assert_eq!(
        stdout(&out),
        "Completed updating default config for clients in the cluster.\n",
        "{out:?}"
    );
    let listed = assert_same_listing(&b, &["--describe", "--client-defaults"]);
    assert_eq!(
        listed,
        "Quota configs for the default client-id are producer_byte_rate=1.5E7\n"
    );
    assert_same_listing(&b, &["--describe", "--entity-type", "clients", "--entity-default"]);

    // Every entity at once, in Kafka's order.
    let users = assert_same_listing(&b, &["--describe", "--entity-type", "users"]);
    for want in [
        "Quota configs for user-principal 'n-alice' are ",
        "SCRAM credential configs for user-principal 'n-carol' are SCRAM-SHA-256=iterations=8192\n",
    ] {
        assert!(users.contains(want), "{want:?} missing from:\n{users}");
    }
    assert_same_listing(&b, &["--describe", "--entity-type", "clients"]);
    assert_same_listing(
        &b,
        &["--describe", "--entity-type", "users", "--entity-type", "clients"],
    );
    let deleted = java(
        "configs",
        &[
            "--bootstrap-server",
            &b,
            "--alter",
            "--client-defaults",
            "--delete-config",
            "producer_byte_rate",
        ],
    );
    assert_eq!(stdout(&deleted), stdout(&out), "{deleted:?}");

    // Connection quotas of ips (setting one twice is the same change: both tools set both).
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let set = ["--alter", "--ip", ip, "--add-config", "connection_creation_rate=10"];
        let (n, j) = run_both("configs", &b, &set);
        assert_eq!(stdout(&n), stdout(&j));
        assert_eq!(stdout(&n), format!("Completed updating config for ip {ip}.\n"));
    }
    let ips = assert_same_listing(&b, &["--describe", "--entity-type", "ips"]);
    assert_eq!(ips.lines().count(), 2, "{ips}");
    assert_same_listing(
        &b,
        &["--alter", "--ip", "127.0.0.1", "--add-config", "producer_byte_rate=10"],
    );
}
