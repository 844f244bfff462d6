//! SASL on `SASL_PLAINTEXT` and `SASL_SSL` listeners (issue 13): PLAIN's users from the listener's
//! JAAS line, and SCRAM-SHA-256/512 users whose credentials Kafka's `kafka-configs` (and oxka's own
//! tool) keep in the metadata log, log in with Apache Kafka's Java tools and with kcat (librdkafka)
//! using Kafka's client settings; a wrong password, an unknown user and a client that skips SASL are
//! refused with Kafka's errors, and the broker keeps serving everyone else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::certs::Certs;
use common::secured::{round_trip, text, topics};
use common::*;

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

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

/// A Java client properties file logging in over SASL_SSL with SCRAM `mechanism` as `user`.
fn scram_login(dir: &Path, mechanism: &str, user: &str, password: &str, ca: &Path) -> PathBuf {
    let text = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism={mechanism}\n\
         sasl.jaas.config={SCRAM} required username=\"{user}\" password=\"{password}\";\n\
         ssl.truststore.type=PEM\nssl.truststore.location={}\n",
        ca.display()
    );
    let file = dir.join(format!("{mechanism}-{user}-{password}.properties"));
    std::fs::write(&file, text).unwrap();
    file
}

/// confluent-kafka (librdkafka) over SASL_SSL with SCRAM-SHA-256 as `SCRAM_USER`: the topics it lists,
/// or `failed` and the errors librdkafka reported.
const LIBRDKAFKA_SCRAM_LIST: &str = r#"
from confluent_kafka.admin import AdminClient
errors = []
admin = AdminClient({
    "bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-256",
    "sasl.username": os.environ["SCRAM_USER"], "sasl.password": os.environ["SCRAM_PASSWORD"],
    "ssl.ca.location": os.environ["CA"], "error_cb": lambda e: errors.append(str(e)),
})
try:
    print("topics", sorted(t for t in admin.list_topics(timeout=15).topics if not t.startswith("__")))
except Exception as e:
    print("failed", e)
    admin.poll(2)
print("errors", errors)
"#;

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
    let mut broker = Broker::launch(&[("listeners", &listeners), ("sasl.enabled.mechanisms", "GSSAPI")]);
    let status = broker.wait_exit(Duration::from_secs(30)).expect("the broker exits");
    assert!(!status.success());
    let log = broker.log_text();
    assert!(
        log.contains(
            "SASL mechanism GSSAPI is not served yet; set sasl.enabled.mechanisms to one or more of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"
        ),
        "{log}"
    );
}

#[test]
fn scram_users_set_with_kafka_configs_log_in_over_tls_and_survive_a_restart() {
    let _serial = serial();
    let certs = Certs::new();
    let port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_SSL://127.0.0.1:{port}");
    let keystore = certs.path("server-store.pem").display().to_string();
    let mut broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        (
            "listener.name.sasl_ssl.sasl.enabled.mechanisms",
            "SCRAM-SHA-512,SCRAM-SHA-256",
        ),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", &keystore),
    ]);
    let admin = broker.bootstrap();
    let sasl = format!("127.0.0.1:{port}");
    let (ca, dir) = (certs.path("ca.pem"), certs.path(""));
    let configs = |args: &[&str]| {
        let mut full = vec!["--bootstrap-server", admin.as_str(), "--alter"];
        full.extend_from_slice(args);
        kafka_tool_timeout("4", "configs", &full, 90)
    };

    // Kafka 4's kafka-configs sets alice's SCRAM-SHA-512 password (the tool salts it; the broker's
    // controller keeps the derived keys); oxka's own tool sets bob's SCRAM-SHA-256 one.
    let set = configs(&[
        "--entity-type",
        "users",
        "--entity-name",
        "alice",
        "--add-config",
        "SCRAM-SHA-512=[password=alice-secret]",
    ]);
    assert!(
        text(&set).contains("Completed updating config for user alice."),
        "{set:?}"
    );
    let set = common::tools_compare::native(&[
        "configs",
        "--bootstrap-server",
        &admin,
        "--alter",
        "--user",
        "bob",
        "--add-config",
        "SCRAM-SHA-256=[iterations=8192,password=bob-secret]",
    ]);
    assert!(set.status.success(), "{set:?}");

    // alice: Kafka's Java tools over SASL_SSL + SCRAM-SHA-512 create a topic and round-trip records
    // through a consumer group; bob: librdkafka (confluent-kafka's) over SCRAM-SHA-256. (Not kcat:
    // Debian's librdkafka 2.0.2 repeats the client nonce in its final SCRAM message, and Apache Kafka
    // 4.1.1 refuses it just the same.)
    let alice = scram_login(&dir, "SCRAM-SHA-512", "alice", "alice-secret", &ca);
    let created = topics(&sasl, &alice, &["--create", "--topic", "salted", "--partitions", "2"]);
    assert_eq!(text(&created).trim(), "Created topic salted.", "{created:?}");
    assert_eq!(
        round_trip(&sasl, &alice, "salted", "alices", &["one", "two"]),
        ["one", "two"]
    );
    let librdkafka = |user: &str, password: &str| {
        python_env_ok(
            LIBRDKAFKA_SCRAM_LIST,
            &sasl,
            &[
                ("SCRAM_USER", user),
                ("SCRAM_PASSWORD", password),
                ("CA", ca.to_str().unwrap()),
            ],
        )
    };
    let listed = librdkafka("bob", "bob-secret");
    assert!(listed.contains("topics ['salted']"), "{listed}");

    // Refusals with Kafka's message: a wrong password, a mechanism the user has no credential for, an
    // unknown user; to Java and to librdkafka.
    for (mechanism, user, password) in [
        ("SCRAM-SHA-512", "alice", "wrong"),
        ("SCRAM-SHA-512", "bob", "bob-secret"),
        ("SCRAM-SHA-256", "mallory", "x"),
    ] {
        let refused = topics(&sasl, &scram_login(&dir, mechanism, user, password, &ca), &["--list"]);
        assert!(
            !refused.status.success()
                && text(&refused).contains(&format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
                )),
            "{mechanism} {user}/{password}: {refused:?}"
        );
    }
    let refused = librdkafka("bob", "nope");
    assert!(
        refused.contains("failed") && refused.contains("due to invalid credentials with SASL mechanism SCRAM-SHA-256"),
        "{refused}"
    );
    // The controller refuses what Kafka's refuses, per user.
    let refused = configs(&[
        "--entity-type",
        "users",
        "--entity-name",
        "carol",
        "--add-config",
        "SCRAM-SHA-256=[iterations=20000,password=x]",
    ]);
    assert!(text(&refused).contains("Too many iterations"), "{refused:?}");

    // The credentials are in the metadata log: they survive a restart.
    broker.restart();
    let listed = topics(&sasl, &alice, &["--list"]);
    assert!(text(&listed).lines().any(|l| l == "salted"), "{listed:?}");

    // A deleted credential no longer logs in; the other user still does.
    let deleted = configs(&[
        "--entity-type",
        "users",
        "--entity-name",
        "alice",
        "--delete-config",
        "SCRAM-SHA-512",
    ]);
    assert!(
        text(&deleted).contains("Completed updating config for user alice."),
        "{deleted:?}"
    );
    let refused = topics(&sasl, &alice, &["--list"]);
    assert!(
        !refused.status.success() && text(&refused).contains("invalid credentials with SASL mechanism SCRAM-SHA-512"),
        "{refused:?}"
    );
    let bob = scram_login(&dir, "SCRAM-SHA-256", "bob", "bob-secret", &ca);
    assert!(text(&topics(&sasl, &bob, &["--list"])).lines().any(|l| l == "salted"));
    // oxka's own tools log in over SCRAM with the same client file as Kafka's; a wrong password gets
    // the broker's refusal.
    let native_list = |config: &Path| {
        common::tools_compare::native(&[
            "topics",
            "--bootstrap-server",
            &sasl,
            "--command-config",
            config.to_str().unwrap(),
            "--list",
        ])
    };
    let listed = native_list(&bob);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&topics(&sasl, &bob, &["--list"]).stdout),
        "{listed:?}"
    );
    let refused = native_list(&scram_login(&dir, "SCRAM-SHA-256", "bob", "wrong", &ca));
    assert!(
        !refused.status.success() && text(&refused).contains("invalid credentials with SASL mechanism SCRAM-SHA-256"),
        "{refused:?}"
    );
    let log = broker.log_text();
    assert!(
        log.contains("SASL authentication failed, connection closed: user alice: invalid client credentials"),
        "{log}"
    );
    assert!(
        !log.contains("alice-secret") && !log.contains("bob-secret"),
        "a password reached the broker's log"
    );
}
