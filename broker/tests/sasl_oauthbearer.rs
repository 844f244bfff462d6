//! SASL OAUTHBEARER with signed tokens (issue 13; KIP-255, KIP-768): the broker checks each token's
//! signature against a JSON Web Key Set file and its claims (expiry, audience, issuer, subject).
//! Keys and tokens are made here with the openssl command line (RS256). Kafka 4.1.1's Java tools log
//! in with a token read from a file (`sasl.oauthbearer.token.endpoint.url=file:...`, Kafka's
//! `OAuthBearerLoginCallbackHandler`) and produce and consume as the token's subject; tokens signed by
//! an unknown key or for another audience are refused with Kafka's `invalid_token` exchange. On
//! requests written by hand: a session ends when its token expires, and an authorization id that is
//! not the token's subject is refused with Kafka's message.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::raw::Connection;
use common::secured::text;
use common::*;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const LOGIN_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
const VALIDATOR: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
const ISSUER: &str = "https://issuer.oxka.test";
const SASL_AUTHENTICATION_FAILED: i16 = 58;

fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command (scripts/install-tools.sh installs it)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

/// An RSA key pair in `dir`: the private key's path and the public key as a JWK.
fn rsa_key(dir: &Path, kid: &str) -> (PathBuf, serde_json::Value) {
    let key = dir.join(format!("{kid}.pem"));
    openssl(&["genrsa", "-out", key.to_str().unwrap(), "2048"], b"");
    let modulus = String::from_utf8(openssl(
        &["rsa", "-in", key.to_str().unwrap(), "-noout", "-modulus"],
        b"",
    ))
    .unwrap();
    let hex = modulus.trim().strip_prefix("Modulus=").unwrap();
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let jwk =
        serde_json::json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": B64URL.encode(n), "e": "AQAB"});
    (key, jwk)
}

/// A P-256 key pair in `dir`: the private key's path and the public key as a JWK.
fn ec_key(dir: &Path, kid: &str) -> (PathBuf, serde_json::Value) {
    let key = dir.join(format!("{kid}.pem"));
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            key.to_str().unwrap(),
        ],
        b"",
    );
    // The DER public key ends with the uncompressed point 04 || x || y.
    let der = openssl(&["ec", "-in", key.to_str().unwrap(), "-pubout", "-outform", "DER"], b"");
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 4);
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
        "x": B64URL.encode(&point[1..33]), "y": B64URL.encode(&point[33..])});
    (key, jwk)
}

/// openssl's DER ECDSA signature (SEQUENCE of INTEGER r, INTEGER s) as JWS's 64 bytes r || s.
fn ecdsa_raw(der: &[u8]) -> Vec<u8> {
    let mut at = 2; // SEQUENCE tag and (short) length
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[at], 2, "INTEGER");
        let len = der[at + 1] as usize;
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        at += 2 + len;
    }
    out
}

/// A JWT signed with `key` under `kid`: RS256 for an RSA key, ES256 for an EC key (`kid` "e...").
fn jwt(key: &Path, kid: &str, claims: serde_json::Value) -> String {
    let alg = if kid.starts_with('e') { "ES256" } else { "RS256" };
    let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": kid});
    let signed = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let mut signature = openssl(&["dgst", "-sha256", "-sign", key.to_str().unwrap()], signed.as_bytes());
    if alg == "ES256" {
        signature = ecdsa_raw(&signature);
    }
    format!("{signed}.{}", B64URL.encode(signature))
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(sub: &str, aud: &str, exp: u64) -> serde_json::Value {
    serde_json::json!({"sub": sub, "aud": aud, "iss": ISSUER, "iat": now_s(), "exp": exp, "scope": "kafka"})
}

struct Setup {
    dir: tempfile::TempDir,
    trusted: PathBuf,
    untrusted: PathBuf,
    ec: PathBuf,
    broker: Broker,
    sasl: String,
}

/// A broker whose SASL_PLAINTEXT listener serves OAUTHBEARER with a key set holding an RSA key ("k1")
/// and a P-256 key ("e1"); a second RSA key ("k2") is made but not trusted.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (trusted, jwk) = rsa_key(dir.path(), "k1");
    let (ec, ec_jwk) = ec_key(dir.path(), "e1");
    let (untrusted, _) = rsa_key(dir.path(), "k2");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::json!({"keys": [jwk, ec_jwk]}).to_string()).unwrap();
    let sasl_port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let jwks_url = format!("file://{}", jwks.display());
    let jaas = format!("{LOGIN_MODULE} required ;");
    let broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        ("sasl.enabled.mechanisms", "OAUTHBEARER"),
        (
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
            VALIDATOR,
        ),
        ("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config", &jaas),
        ("sasl.oauthbearer.jwks.endpoint.url", &jwks_url),
        ("sasl.oauthbearer.expected.audience", "kafka"),
        ("sasl.oauthbearer.expected.issuer", ISSUER),
    ]);
    Setup {
        sasl: format!("127.0.0.1:{sasl_port}"),
        dir,
        trusted,
        untrusted,
        ec,
        broker,
    }
}

/// A Java client config logging in with the token in `name.jwt`, and the KAFKA_OPTS that allow its URL.
fn client_config(dir: &Path, name: &str, token: &str) -> (PathBuf, String) {
    let token_file = dir.join(format!("{name}.jwt"));
    std::fs::write(&token_file, token).unwrap();
    let url = format!("file://{}", token_file.display());
    let config = dir.join(format!("{name}.properties"));
    std::fs::write(
        &config,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n\
             sasl.jaas.config={LOGIN_MODULE} required ;\n\
             sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n\
             sasl.oauthbearer.token.endpoint.url={url}\n\
             default.api.timeout.ms=20000\nrequest.timeout.ms=10000\n"
        ),
    )
    .unwrap();
    (
        config,
        format!("-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={url}"),
    )
}

fn tool(s: &Setup, tool: &str, config: &(PathBuf, String), args: &[&str], stdin: &[u8]) -> Output {
    let config_flag = match tool {
        "console-producer" => "--producer.config",
        "console-consumer" => "--consumer.config",
        _ => "--command-config",
    };
    let mut full = vec!["--bootstrap-server", &s.sasl, config_flag, config.0.to_str().unwrap()];
    full.extend_from_slice(args);
    kafka_tool_env("4", tool, &full, stdin, 90, &[("KAFKA_OPTS", &config.1)])
}

#[test]
fn java_tools_log_in_with_signed_tokens_and_others_are_refused() {
    let _serial = serial();
    let s = setup();
    let exp = now_s() + 3600;
    let alice = client_config(
        s.dir.path(),
        "alice",
        &jwt(&s.trusted, "k1", claims("alice", "kafka", exp)),
    );
    let created = tool(
        &s,
        "topics",
        &alice,
        &["--create", "--topic", "tokens", "--partitions", "1"],
        b"",
    );
    assert_eq!(text(&created).trim(), "Created topic tokens.", "{}", text(&created));
    let produced = tool(
        &s,
        "console-producer",
        &alice,
        &["--topic", "tokens"],
        b"one\ntwo\nthree\n",
    );
    assert!(produced.status.success(), "{}", text(&produced));
    let consumed = tool(
        &s,
        "console-consumer",
        &alice,
        &[
            "--topic",
            "tokens",
            "--from-beginning",
            "--max-messages",
            "3",
            "--timeout-ms",
            "30000",
        ],
        b"",
    );
    assert_eq!(
        String::from_utf8_lossy(&consumed.stdout),
        "one\ntwo\nthree\n",
        "{}",
        text(&consumed)
    );

    // Signed by a key the broker does not trust, or for another audience: Kafka's invalid_token.
    for (name, token, why) in [
        (
            "mallory",
            jwt(&s.untrusted, "k2", claims("mallory", "kafka", exp)),
            "no key \"k2\"",
        ),
        (
            "bob",
            jwt(&s.trusted, "k1", claims("bob", "elsewhere", exp)),
            "audience",
        ),
    ] {
        let config = client_config(s.dir.path(), name, &token);
        let refused = tool(&s, "topics", &config, &["--list"], b"");
        assert!(
            !refused.status.success() && text(&refused).contains(r#"{"status":"invalid_token"}"#),
            "{name}: {}",
            text(&refused)
        );
        wait_for(
            &format!("the broker to log why {name} was refused"),
            Duration::from_secs(10),
            || {
                s.broker
                    .log_text()
                    .lines()
                    .any(|l| l.contains("OAUTHBEARER token refused") && l.contains(why))
            },
        );
    }
}

/// The client first message of RFC 7628 for `token`, asking for `authzid`.
fn first_message(authzid: &str, token: &str) -> Vec<u8> {
    let a = if authzid.is_empty() {
        String::new()
    } else {
        format!("a={authzid}")
    };
    format!("n,{a},\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
}

#[test]
fn a_session_ends_with_its_token_and_the_exchange_follows_kafka() {
    let s = setup();
    // A token that expires in 4 s: the session lasts until then (no connections.max.reauth.ms).
    let short = jwt(&s.trusted, "k1", claims("alice", "kafka", now_s() + 4));
    let mut conn = Connection::connect(&s.sasl);
    assert_eq!(conn.handshake("OAUTHBEARER").error_code, 0);
    let answer = conn.authenticate(2, first_message("", &short));
    assert_eq!(answer.error_code, 0, "{answer:?}");
    assert!(
        (2000..=4000).contains(&answer.session_lifetime_ms),
        "session lifetime {} ms for a token with 3-4 s left",
        answer.session_lifetime_ms
    );
    assert!(conn.metadata().is_ok());
    std::thread::sleep(Duration::from_millis(answer.session_lifetime_ms as u64 + 300));
    assert!(conn.metadata().is_err(), "served after the token expired");

    // A bad token: the challenge, the client's %x01, then the failure with the challenge's message.
    let forged = jwt(&s.untrusted, "k1", claims("alice", "kafka", now_s() + 3600));
    let mut conn = Connection::connect(&s.sasl);
    conn.handshake("OAUTHBEARER");
    let challenge = conn.authenticate(2, first_message("", &forged));
    assert_eq!(challenge.error_code, 0);
    assert_eq!(&challenge.auth_bytes[..], br#"{"status":"invalid_token"}"#);
    let failed = conn.authenticate(2, vec![1u8]);
    assert_eq!(failed.error_code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(failed.error_message.as_deref(), Some(r#"{"status":"invalid_token"}"#));
    assert!(conn.closed());

    // An ES256 token from the key set's P-256 key.
    let es256 = jwt(&s.ec, "e1", claims("carol", "kafka", now_s() + 3600));
    let mut conn = Connection::connect(&s.sasl);
    conn.handshake("OAUTHBEARER");
    let answer = conn.authenticate(2, first_message("", &es256));
    assert_eq!(answer.error_code, 0, "{answer:?} (ES256)");
    assert!(conn.metadata().is_ok());

    // An authorization id other than the token's subject.
    let good = jwt(&s.trusted, "k1", claims("alice", "kafka", now_s() + 3600));
    let mut conn = Connection::connect(&s.sasl);
    conn.handshake("OAUTHBEARER");
    let refused = conn.authenticate(2, first_message("bob", &good));
    assert_eq!(refused.error_code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)")
    );
    assert!(s.broker.log_text().contains("the signature does not verify"));
}

#[test]
fn a_listener_without_a_key_set_stops_the_broker_with_what_to_set() {
    let port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{port}");
    let mut broker = Broker::launch(&[("listeners", &listeners), ("sasl.enabled.mechanisms", "OAUTHBEARER")]);
    let status = broker.wait_exit(Duration::from_secs(30)).expect("the broker exits");
    assert!(!status.success());
    let log = broker.log_text();
    assert!(
        log.contains("serves OAUTHBEARER but names no key set to check tokens with: set sasl.oauthbearer.jwks.endpoint.url=file:///path/to/jwks.json"),
        "{log}"
    );
}
