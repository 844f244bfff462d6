//! SASL PLAIN on `SASL_PLAINTEXT` and `SASL_SSL` listeners (issue 13): the users of the listener's
//! JAAS line log in with Apache Kafka's Java tools and with kcat (librdkafka) using Kafka's client
//! settings; a wrong password, an unknown user and a client that skips SASL are refused with Kafka's
//! errors, and the broker keeps serving everyone else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::certs::Certs;
use common::secured::{round_trip, text, topics};
use common::*;

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// A Java client properties file logging in as `user` with `password` over `protocol`.
fn login(dir: &Path, protocol: &str, user: &str, password: &str, ca: Option<&Path>) -> PathBuf {
    let mut text = format!(
        "security.protocol={protocol}\nsasl.mechanism=PLAIN\nsasl.jaas.config={PLAIN} required username=\"{user}\" password=\"{password}\";\n"
    );
    if let Some(ca) = ca {
        text.push_str(&format!(
            "ssl.truststore.type=PEM\nssl.truststore.location={}\n",
            ca.display()
        ));
    }
    let file = dir.join(format!("{protocol}-{user}-{password}.properties"));
    std::fs::write(&file, text).unwrap();
    file
}

fn kcat_plain(bootstrap: &str, protocol: &str, user: &str, password: &str, extra: &[&str]) -> Output {
    let (protocol, user, password) = (
        format!("security.protocol={protocol}"),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
    );
    let mut args = vec![
        "-b",
        bootstrap,
        "-X",
        &protocol,
        "-X",
        "sasl.mechanisms=PLAIN",
        "-X",
        &user,
        "-X",
        &password,
    ];
    args.extend_from_slice(extra);
    kcat_timeout(&args, b"", Duration::from_secs(60))
}

#[test]
fn sasl_plain_admits_the_listeners_users_and_refuses_everyone_else() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let sasl_port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let jaas = format!("{PLAIN} required user_alice=\"alice-secret\" user_bob=\"bob-secret\";");
    let broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", &jaas),
    ]);
    let sasl = format!("127.0.0.1:{sasl_port}");
    let alice = login(dir.path(), "SASL_PLAINTEXT", "alice", "alice-secret", None);
    let bob = login(dir.path(), "SASL_PLAINTEXT", "bob", "bob-secret", None);

    let created = topics(
        &sasl,
        &alice,
        &["--create", "--topic", "logged-in", "--partitions", "2"],
    );
    assert_eq!(text(&created).trim(), "Created topic logged-in.", "{created:?}");
    let read = round_trip(&sasl, &bob, "logged-in", "bobs", &["one", "two"]);
    assert_eq!(read, ["one", "two"]);
    let listed = kcat_plain(&sasl, "sasl_plaintext", "alice", "alice-secret", &["-L"]);
    assert!(text(&listed).contains("topic \"logged-in\""), "{listed:?}");

    // Refusals: Kafka's error for a wrong password and an unknown user, to Java and to kcat.
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let refused = topics(
            &sasl,
            &login(dir.path(), "SASL_PLAINTEXT", user, password, None),
            &["--list"],
        );
        assert!(
            !refused.status.success()
                && text(&refused)
                    .contains("SaslAuthenticationException: Authentication failed: Invalid username or password"),
            "{user}/{password}: {refused:?}"
        );
    }
    let refused = kcat_plain(&sasl, "sasl_plaintext", "bob", "nope", &["-L", "-m", "5"]);
    assert!(
        !refused.status.success() && text(&refused).contains("Authentication failed: Invalid username or password"),
        "{refused:?}"
    );
    // A client that skips SASL gets nothing: its Metadata request closes the connection.
    let impatient = dir.path().join("no-sasl.properties");
    std::fs::write(&impatient, "default.api.timeout.ms=8000\nrequest.timeout.ms=4000\n").unwrap();
    let skipped = topics(&sasl, &impatient, &["--list"]);
    assert!(
        !text(&skipped).lines().any(|l| l == "logged-in"),
        "a client without SASL listed topics: {skipped:?}"
    );
    wait_for(
        "the broker's log lines about the refusals",
        Duration::from_secs(10),
        || {
            let log = broker.log_text();
            log.contains("SASL authentication failed, connection closed: wrong password for user alice")
                && log.contains("unexpected Metadata request during SASL authentication")
        },
    );
    assert!(
        !broker.log_text().contains("alice-secret"),
        "a password reached the broker's log"
    );
    // Still serving the users.
    let listed = topics(&sasl, &bob, &["--list"]);
    assert!(text(&listed).lines().any(|l| l == "logged-in"), "{listed:?}");
}

#[test]
fn sasl_plain_over_tls() {
    let _serial = serial();
    let certs = Certs::new();
    let port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_SSL://127.0.0.1:{port}");
    let jaas = format!("{PLAIN} required user_alice=\"alice-secret\";");
    let keystore = certs.path("server-store.pem").display().to_string();
    let _broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        ("listener.name.sasl_ssl.sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", &jaas),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", &keystore),
    ]);
    let bootstrap = format!("127.0.0.1:{port}");
    let ca = certs.path("ca.pem");
    let alice = login(certs.path("").as_path(), "SASL_SSL", "alice", "alice-secret", Some(&ca));
    let created = topics(&bootstrap, &alice, &["--create", "--topic", "sealed"]);
    assert_eq!(text(&created).trim(), "Created topic sealed.", "{created:?}");
    let ca_location = format!("ssl.ca.location={}", ca.display());
    let listed = kcat_plain(
        &bootstrap,
        "sasl_ssl",
        "alice",
        "alice-secret",
        &["-X", &ca_location, "-L"],
    );
    assert!(text(&listed).contains("topic \"sealed\""), "{listed:?}");
    let wrong = login(certs.path("").as_path(), "SASL_SSL", "alice", "wrong", Some(&ca));
    let refused = topics(&bootstrap, &wrong, &["--list"]);
    assert!(
        !refused.status.success() && text(&refused).contains("Authentication failed: Invalid username or password"),
        "{refused:?}"
    );

    // oxka's own tools read the same client properties (issue 16: --command-config with security):
    // TLS and SASL PLAIN, the same listing as Kafka's tool, the same refusal.
    let native = |config: &Path, args: &[&str]| {
        let mut full = vec![
            "topics",
            "--bootstrap-server",
            &bootstrap,
            "--command-config",
            config.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        common::tools_compare::native(&full)
    };
    let listed = native(&alice, &["--list"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&topics(&bootstrap, &alice, &["--list"]).stdout),
        "{listed:?}"
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).lines().any(|l| l == "sealed"),
        "{listed:?}"
    );
    let refused = native(&wrong, &["--list"]);
    assert!(
        !refused.status.success() && text(&refused).contains("Authentication failed: Invalid username or password"),
        "{refused:?}"
    );
}

#[test]
fn a_sasl_mechanism_not_served_stops_the_broker_with_what_to_set() {
    let _serial = serial();
    let port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{port}");
    let mut broker = Broker::launch(&[("listeners", &listeners), ("sasl.enabled.mechanisms", "SCRAM-SHA-512")]);
    let status = broker.wait_exit(Duration::from_secs(30)).expect("the broker exits");
    assert!(!status.success());
    let log = broker.log_text();
    assert!(
        log.contains("SASL mechanism SCRAM-SHA-512 is not served yet; set sasl.enabled.mechanisms=PLAIN"),
        "{log}"
    );
}
