//! SASL re-authentication (KIP-368, `connections.max.reauth.ms`): Kafka 4.1.1's Java producer and
//! consumer keep working on connections whose sessions last two seconds, re-authenticating as they
//! go; and, on requests written by hand, a session that ends closes the connection at the next
//! request, a re-authentication extends it, and a re-authentication that changes the principal or
//! the mechanism is refused with Kafka's errors.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw::Connection;
use common::secured::text;
use common::*;
use kafka_protocol::messages::SaslAuthenticateResponse;

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
/// Kafka's error codes.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;

/// A broker with a SASL_PLAINTEXT listener serving PLAIN (users alice and bob) and SCRAM-SHA-256,
/// whose sessions last `reauth_ms`; returns it and the SASL listener's address.
fn broker(reauth_ms: &str) -> (Broker, String) {
    let sasl_port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let jaas = format!("{PLAIN} required user_alice=\"alice-secret\" user_bob=\"bob-secret\";");
    let broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", &jaas),
        ("connections.max.reauth.ms", reauth_ms),
    ]);
    (broker, format!("127.0.0.1:{sasl_port}"))
}

/// PLAIN's token for `user`, whose password is `<user>-secret`.
fn plain(user: &str) -> Bytes {
    Bytes::from(format!("\0{user}\0{user}-secret"))
}

/// Logs in with PLAIN as `user` (SaslAuthenticate at `version`); the broker's answer.
fn login(conn: &mut Connection, version: i16, user: &str) -> SaslAuthenticateResponse {
    assert_eq!(conn.handshake("PLAIN").error_code, 0);
    let answer = conn.authenticate(version, plain(user));
    assert_eq!(answer.error_code, 0, "{answer:?}");
    answer
}

fn expired_connections(broker: &Broker) -> f64 {
    metric_value(
        broker.metrics_port(),
        "kafka_server_socketservermetrics_expired_connections_killed_total",
    )
}

#[test]
fn sessions_expire_and_reauthentication_extends_them_as_the_same_principal() {
    let (broker, sasl) = broker("1500");

    // The session lifetime is told; after it, the next request closes the connection.
    let mut expiring = Connection::connect(&sasl);
    assert_eq!(login(&mut expiring, 2, "alice").session_lifetime_ms, 1500);
    assert!(expiring.metadata().is_ok());
    std::thread::sleep(Duration::from_millis(1700));
    assert!(
        expiring.metadata().is_err(),
        "a request after the session ended was served"
    );
    assert_eq!(expired_connections(&broker), 1.0);

    // A re-authentication as the same user starts a new session.
    let mut renewed = Connection::connect(&sasl);
    login(&mut renewed, 2, "alice");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(login(&mut renewed, 2, "alice").session_lifetime_ms, 1500);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        renewed.metadata().is_ok(),
        "2 s after login, 1 s after the re-authentication: the new session serves"
    );

    // Another principal: refused with Kafka's message, and closed.
    let mut switched = Connection::connect(&sasl);
    login(&mut switched, 2, "alice");
    assert_eq!(switched.handshake("PLAIN").error_code, 0);
    let refused = switched.authenticate(2, plain("bob"));
    assert_eq!(refused.error_code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Cannot change principals during re-authentication from User.alice: User.bob")
    );
    assert!(switched.closed());

    // Another mechanism: refused, and closed.
    let mut other = Connection::connect(&sasl);
    login(&mut other, 2, "alice");
    assert_eq!(other.handshake("SCRAM-SHA-256").error_code, UNSUPPORTED_SASL_MECHANISM);
    assert!(other.closed());

    // A client that logged in with SaslAuthenticate v0 cannot re-authenticate (its handshake is an
    // ordinary request, answered ILLEGAL_SASL_STATE) and its session ends all the same.
    let mut old = Connection::connect(&sasl);
    login(&mut old, 0, "alice");
    assert_eq!(old.handshake("PLAIN").error_code, ILLEGAL_SASL_STATE);
    std::thread::sleep(Duration::from_millis(1700));
    assert!(old.metadata().is_err());
    assert_eq!(expired_connections(&broker), 2.0);

    let log = broker.log_text();
    assert!(
        log.contains("Cannot change principals during re-authentication")
            && log.contains("not supported for re-authentication of mechanism 'PLAIN'"),
        "the refusals are logged"
    );
}

#[test]
fn java_clients_reauthenticate_every_two_seconds_and_lose_nothing() {
    let _serial = serial();
    let (broker, sasl) = broker("2000");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alice.properties");
    std::fs::write(
        &config,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config={PLAIN} required username=\"alice\" password=\"alice-secret\";\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    create_topic(&broker, "renewed", 1);
    // 150 records at 15 a second: ten seconds on one connection, five sessions.
    let produced = kafka_tool_timeout(
        "4",
        "producer-perf-test",
        &[
            "--topic",
            "renewed",
            "--num-records",
            "150",
            "--record-size",
            "100",
            "--throughput",
            "15",
            "--producer-props",
            &format!("bootstrap.servers={sasl}"),
            "acks=all",
            "--producer.config",
            config,
        ],
        120,
    );
    assert!(
        produced.status.success() && text(&produced).contains("150 records sent"),
        "{}",
        text(&produced)
    );
    let reauthentications = metric_value(
        broker.metrics_port(),
        "kafka_server_socketservermetrics_reauthentication_total",
    );
    assert!(
        reauthentications >= 4.0,
        "{reauthentications} re-authentications in ten seconds of two-second sessions"
    );
    assert_eq!(expired_connections(&broker), 0.0, "a Java client's session expired");
    // A consumer group reads them all back, pausing past a session between polls.
    let consumed = kafka_tool_timeout(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            &sasl,
            "--consumer.config",
            config,
            "--topic",
            "renewed",
            "--group",
            "renewed-readers",
            "--from-beginning",
            "--max-messages",
            "150",
            "--timeout-ms",
            "30000",
        ],
        90,
    );
    let read = String::from_utf8_lossy(&consumed.stdout).lines().count();
    assert_eq!(read, 150, "{}", text(&consumed));
    assert_eq!(expired_connections(&broker), 0.0, "a Java client's session expired");
}
