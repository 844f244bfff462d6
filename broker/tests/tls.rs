//! SSL listeners (issue 13, TLS): a broker with a PLAINTEXT listener (between brokers) and an SSL
//! listener, used by Apache Kafka's Java tools and by kcat with Kafka's client settings
//! (`security.protocol=SSL`, PEM truststores and keystores). Certificates are made with the openssl
//! command line for each test: a CA, a broker certificate for 127.0.0.1 and localhost, client
//! certificates from that CA and from another one.

mod common;

use std::time::Duration;

use common::certs::Certs;
use common::secured::{round_trip, text, topics};
use common::*;

/// PLAINTEXT on the harness's port (the brokers' own listener) and SSL on `ssl_port`.
fn listeners(ssl_port: u16) -> (String, String) {
    (
        format!("PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port}"),
        format!("PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port}"),
    )
}

#[test]
fn an_ssl_listener_serves_kafkas_java_clients_and_kcat() {
    let _serial = serial();
    let certs = Certs::new();
    let ssl_port = free_port();
    let (listen, advertise) = listeners(ssl_port);
    let keystore = certs.path("server-store.pem").display().to_string();
    let broker = Broker::start(&[
        ("listeners", &listen),
        ("advertised.listeners", &advertise),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", &keystore),
    ]);
    let ssl = format!("127.0.0.1:{ssl_port}");
    let config = certs.client_config(None);

    let created = topics(&ssl, &config, &["--create", "--topic", "secure", "--partitions", "2"]);
    assert_eq!(text(&created).trim(), "Created topic secure.", "{created:?}");
    // A consumer group over TLS: FindCoordinator must name the coordinator's SSL endpoint.
    let read = round_trip(&ssl, &config, "secure", "over-tls", &["one", "two", "three"]);
    assert_eq!(read, ["one", "three", "two"]);
    // kcat (librdkafka) with the same CA.
    let read = kcat(
        &[
            "-b",
            &ssl,
            "-X",
            "security.protocol=ssl",
            "-X",
            &format!("ssl.ca.location={}", certs.path("ca.pem").display()),
            "-C",
            "-t",
            "secure",
            "-e",
            "-q",
        ],
        b"",
    );
    let mut values: Vec<String> = String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(String::from)
        .collect();
    values.sort();
    assert_eq!(values, ["one", "three", "two"], "{read:?}");
    if broker.target() == Target::Oxka {
        // TLS must see the bytes: fetches over it never go through sendfile.
        let sent = metric_value(broker.metrics_port(), "oxka_fetch_zero_copy_bytes_total");
        assert_eq!(sent, 0.0, "records went through sendfile on a TLS connection");
    }

    // A plaintext client on the TLS port fails; the broker says why and goes on serving TLS clients.
    let plain = kafka_tool_timeout("4", "topics", &["--bootstrap-server", &ssl, "--list"], 90);
    assert!(
        !text(&plain).lines().any(|l| l == "secure"),
        "a plaintext client listed topics through the TLS port: {plain:?}"
    );
    wait_for(
        "the broker's log line about the failed handshake",
        Duration::from_secs(10),
        || broker.log_text().contains("TLS handshake failed"),
    );
    let listed = topics(&ssl, &config, &["--list"]);
    assert!(text(&listed).lines().any(|l| l == "secure"), "{listed:?}");
    // A client that does not trust the broker's CA refuses it.
    let untrusting = certs.path("untrusting.properties");
    std::fs::write(
        &untrusting,
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            certs.path("other-ca.pem").display()
        ),
    )
    .unwrap();
    let refused = topics(&ssl, &untrusting, &["--list"]);
    assert!(
        !refused.status.success() && text(&refused).contains("SslAuthenticationException"),
        "{refused:?}"
    );
}

#[test]
fn required_client_certificates_admit_only_clients_of_the_trusted_ca() {
    let _serial = serial();
    let certs = Certs::new();
    let ssl_port = free_port();
    let (listen, advertise) = listeners(ssl_port);
    // The keystore given inline (ssl.keystore.certificate.chain / ssl.keystore.key), listener-prefixed.
    let chain = std::fs::read_to_string(certs.path("server.pem"))
        .unwrap()
        .replace('\n', "\\n");
    let key = std::fs::read_to_string(certs.path("server.key"))
        .unwrap()
        .replace('\n', "\\n");
    let truststore = certs.path("ca.pem").display().to_string();
    let _broker = Broker::start(&[
        ("listeners", &listen),
        ("advertised.listeners", &advertise),
        ("listener.name.ssl.ssl.keystore.type", "PEM"),
        ("listener.name.ssl.ssl.keystore.certificate.chain", &chain),
        ("listener.name.ssl.ssl.keystore.key", &key),
        ("listener.name.ssl.ssl.truststore.type", "PEM"),
        ("listener.name.ssl.ssl.truststore.location", &truststore),
        ("listener.name.ssl.ssl.client.auth", "required"),
    ]);
    let ssl = format!("127.0.0.1:{ssl_port}");
    let with_cert = topics(
        &ssl,
        &certs.client_config(Some("alice")),
        &["--create", "--topic", "mtls"],
    );
    assert_eq!(text(&with_cert).trim(), "Created topic mtls.", "{with_cert:?}");
    let without = topics(&ssl, &certs.client_config(None), &["--list"]);
    assert!(
        !without.status.success() && text(&without).contains("SslAuthenticationException"),
        "a client without a certificate was served: {without:?}"
    );
    let other_ca = topics(&ssl, &certs.client_config(Some("mallory")), &["--list"]);
    assert!(
        !other_ca.status.success() && text(&other_ca).contains("SslAuthenticationException"),
        "a client certificate from an untrusted CA was accepted: {other_ca:?}"
    );
    // oxka's own tools with the same client properties: admitted with alice's certificate, refused
    // without one.
    let native = |config: &std::path::Path| {
        common::tools_compare::native(&[
            "topics",
            "--bootstrap-server",
            &ssl,
            "--command-config",
            config.to_str().unwrap(),
            "--list",
        ])
    };
    let listed = native(&certs.client_config(Some("alice")));
    assert!(
        String::from_utf8_lossy(&listed.stdout).lines().any(|l| l == "mtls"),
        "{listed:?}"
    );
    let refused = native(&certs.client_config(None));
    assert!(
        // (TLS 1.3: the server's refusal arrives as an alert after the client's handshake is done)
        !refused.status.success() && text(&refused).contains("CertificateRequired"),
        "{refused:?}"
    );
    let kcat_with_cert = kcat(
        &[
            "-b",
            &ssl,
            "-X",
            "security.protocol=ssl",
            "-X",
            &format!("ssl.ca.location={}", certs.path("ca.pem").display()),
            "-X",
            &format!("ssl.certificate.location={}", certs.path("alice.pem").display()),
            "-X",
            &format!("ssl.key.location={}", certs.path("alice.key").display()),
            "-L",
        ],
        b"",
    );
    assert!(
        kcat_with_cert.status.success() && text(&kcat_with_cert).contains("topic \"mtls\""),
        "{kcat_with_cert:?}"
    );
}

#[test]
fn a_keystore_that_cannot_be_read_stops_the_broker_with_the_reason() {
    let _serial = serial();
    let ssl_port = free_port();
    let (listen, _) = listeners(ssl_port);
    let mut broker = Broker::launch(&[
        ("listeners", &listen),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", "/nonexistent/server.pem"),
    ]);
    let status = broker.wait_exit(Duration::from_secs(30)).expect("the broker exits");
    assert!(!status.success());
    let log = broker.log_text();
    assert!(
        log.contains("listener SSL: cannot read ssl.keystore.location /nonexistent/server.pem"),
        "{log}"
    );
}

/// A client properties file trusting only `ca`.
fn trusting(certs: &Certs, ca: &str) -> std::path::PathBuf {
    let file = certs.path(&format!("trusting-{ca}.properties"));
    std::fs::write(
        &file,
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            certs.path(&format!("{ca}.pem")).display()
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_changed_keystore_file_is_loaded_without_a_restart() {
    let _serial = serial();
    let certs = Certs::new();
    certs.issue(
        "other-ca",
        "server2",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
    let ssl_port = free_port();
    let (listen, advertise) = listeners(ssl_port);
    let keystore = certs.path("live-store.pem");
    std::fs::copy(certs.path("server-store.pem"), &keystore).unwrap();
    let broker = Broker::start(&[
        ("listeners", &listen),
        ("advertised.listeners", &advertise),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", keystore.to_str().unwrap()),
        ("ssl.reload.interval.ms", "200"),
    ]);
    let ssl = format!("127.0.0.1:{ssl_port}");
    let (old_ca, new_ca) = (trusting(&certs, "ca"), trusting(&certs, "other-ca"));
    assert!(topics(&ssl, &old_ca, &["--list"]).status.success());

    // A file that does not load is logged and the previous certificate kept.
    std::fs::write(&keystore, "not PEM at all").unwrap();
    wait_for(
        "the log line about the unloadable keystore",
        Duration::from_secs(10),
        || {
            broker
                .log_text()
                .contains("TLS files changed but cannot be loaded, keeping the previous ones")
        },
    );
    assert!(topics(&ssl, &old_ca, &["--list"]).status.success());

    // The other CA's certificate: new connections get it, without a restart.
    std::fs::copy(certs.path("server2-store.pem"), &keystore).unwrap();
    wait_for("the new keystore loaded", Duration::from_secs(10), || {
        broker
            .log_text()
            .contains("TLS keystore or truststore changed: loaded for new connections")
    });
    let listed = topics(&ssl, &new_ca, &["--list"]);
    assert!(listed.status.success(), "{listed:?}");
    let refused = topics(&ssl, &old_ca, &["--list"]);
    assert!(
        !refused.status.success() && text(&refused).contains("SslAuthenticationException"),
        "a client trusting only the old CA still connected: {refused:?}"
    );
}
