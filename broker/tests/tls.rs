//! SSL listeners (issue 13, TLS): a broker with a PLAINTEXT listener (between brokers) and an SSL
//! listener, used by Apache Kafka's Java tools and by kcat with Kafka's client settings
//! (`security.protocol=SSL`, PEM truststores and keystores). Certificates are made with the openssl
//! command line for each test: a CA, a broker certificate for 127.0.0.1 and localhost, client
//! certificates from that CA and from another one.
//!
//! Between brokers (the cluster fixture of `common/cluster.rs`, each broker with a second listener on
//! a port of its own as `inter.broker.listener.name`): SSL with required client certificates, shown
//! encrypted by a tcpdump capture of those ports; SASL_SSL with SCRAM-SHA-512 under ACLs.

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

/// Runs the JDK's keytool in the certificates' directory.
fn keytool(certs: &Certs, args: &[&str]) {
    let out = std::process::Command::new("keytool")
        .args(args)
        .current_dir(certs.path(""))
        .output()
        .expect("keytool (installed with Java)");
    assert!(out.status.success(), "keytool {args:?}: {out:?}");
}

/// Keystores and truststores made as Kafka's documentation makes them (keytool -genkeypair,
/// -certreq, signed by a CA made with openssl, the CA and the signed certificate imported back):
/// the broker's in JKS with a key password of its own, the client's in PKCS12.
fn java_stores(certs: &Certs, name: &str, storetype: &str, dname: &str, extension: &str) {
    let (keystore, truststore) = (
        format!("{name}.keystore.{storetype}"),
        format!("{name}.truststore.{storetype}"),
    );
    let keypass = if storetype == "JKS" {
        "key-secret"
    } else {
        "store-secret"
    };
    let store = [
        "-storetype",
        storetype,
        "-keystore",
        &keystore,
        "-storepass",
        "store-secret",
        "-keypass",
        keypass,
    ];
    keytool(
        certs,
        &[
            &[
                "-genkeypair",
                "-alias",
                name,
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-validity",
                "2",
                "-dname",
                dname,
            ][..],
            &store,
        ]
        .concat(),
    );
    keytool(
        certs,
        &[
            &["-certreq", "-alias", name, "-file", &format!("{name}.csr")][..],
            &store,
        ]
        .concat(),
    );
    std::fs::write(certs.path(&format!("{name}.ext")), format!("{extension}\n")).unwrap();
    let signed = std::process::Command::new("openssl")
        .args([
            "x509",
            "-req",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
        ])
        .args([
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}-signed.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ])
        .current_dir(certs.path(""))
        .output()
        .unwrap();
    assert!(signed.status.success(), "{signed:?}");
    keytool(
        certs,
        &[
            &["-importcert", "-noprompt", "-alias", "CARoot", "-file", "ca.pem"][..],
            &store,
        ]
        .concat(),
    );
    keytool(
        certs,
        &[
            &[
                "-importcert",
                "-noprompt",
                "-alias",
                name,
                "-file",
                &format!("{name}-signed.pem"),
            ][..],
            &store,
        ]
        .concat(),
    );
    keytool(
        certs,
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "CARoot",
            "-file",
            "ca.pem",
            "-storetype",
            storetype,
            "-keystore",
            &truststore,
            "-storepass",
            "trust-secret",
        ],
    );
}

/// Kafka's usual `server.properties` TLS settings: JKS keystore and truststore (with a key password
/// of its own) and required client certificates; Kafka 4.1.1's console producer and consumer with a
/// PKCS12 client keystore and truststore round-trip records, a wrong truststore password stops the
/// broker naming the key.
#[test]
fn jks_and_pkcs12_stores_made_by_keytool_serve_kafkas_console_clients() {
    let _serial = serial();
    let certs = Certs::new();
    java_stores(
        &certs,
        "server",
        "JKS",
        "CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
    java_stores(&certs, "client", "PKCS12", "CN=alice", "extendedKeyUsage=clientAuth");
    let ssl_port = free_port();
    let (listen, advertise) = listeners(ssl_port);
    // The broker reads a copy, replaced below by a renewed store.
    let live = certs.path("live.keystore.jks");
    std::fs::copy(certs.path("server.keystore.JKS"), &live).unwrap();
    let keystore = live.display().to_string();
    let truststore = certs.path("server.truststore.JKS").display().to_string();
    let settings = |trust_password: &'static str| {
        vec![
            ("listeners", listen.clone()),
            ("advertised.listeners", advertise.clone()),
            ("ssl.keystore.type", "JKS".into()),
            ("ssl.keystore.location", keystore.clone()),
            ("ssl.keystore.password", "store-secret".into()),
            ("ssl.key.password", "key-secret".into()),
            ("ssl.truststore.location", truststore.clone()),
            ("ssl.truststore.password", trust_password.into()),
            ("ssl.client.auth", "required".into()),
            ("ssl.reload.interval.ms", "200".into()),
        ]
    };
    let wrong = settings("not-the-password");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut refused = Broker::launch(&wrong);
    assert!(!refused
        .wait_exit(Duration::from_secs(30))
        .expect("the broker exits")
        .success());
    let log = refused.log_text();
    assert!(
        log.contains("the password is wrong: check ssl.truststore.password"),
        "{log}"
    );
    drop(refused);

    let good = settings("trust-secret");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let broker = Broker::start(&good);
    let client = certs.path("client.properties");
    std::fs::write(
        &client,
        format!(
            "security.protocol=SSL\nssl.keystore.type=PKCS12\nssl.keystore.location={}\nssl.keystore.password=store-secret\n\
             ssl.truststore.type=PKCS12\nssl.truststore.location={}\nssl.truststore.password=trust-secret\n",
            certs.path("client.keystore.PKCS12").display(),
            certs.path("client.truststore.PKCS12").display()
        ),
    )
    .unwrap();
    let ssl = format!("127.0.0.1:{ssl_port}");
    let created = topics(&ssl, &client, &["--create", "--topic", "stores"]);
    assert_eq!(text(&created).trim(), "Created topic stores.", "{created:?}");
    let got = round_trip(&ssl, &client, "stores", "stores-group", &["one", "two", "three"]);
    assert_eq!(got, ["one", "three", "two"], "(sorted)");
    // oxka's own tools read the same PKCS12 client stores.
    let native = common::tools_compare::native(&[
        "topics",
        "--bootstrap-server",
        &ssl,
        "--command-config",
        client.to_str().unwrap(),
        "--list",
    ]);
    assert!(
        String::from_utf8_lossy(&native.stdout).lines().any(|l| l == "stores"),
        "{native:?}"
    );
    // A client without a certificate is refused (ssl.client.auth=required).
    let without = topics(&ssl, &certs.client_config(None), &["--list"]);
    assert!(
        !without.status.success() && text(&without).contains("SslAuthenticationException"),
        "{without:?}"
    );

    // A renewed JKS keystore (same passwords) is loaded without a restart, like a PEM one.
    java_stores(
        &certs,
        "renewed",
        "JKS",
        "CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
    std::fs::copy(certs.path("renewed.keystore.JKS"), &live).unwrap();
    wait_for("the renewed keystore loaded", Duration::from_secs(10), || {
        broker
            .log_text()
            .contains("TLS keystore or truststore changed: loaded for new connections")
    });
    let listed = topics(&ssl, &client, &["--list"]);
    assert!(text(&listed).lines().any(|l| l == "stores"), "{listed:?}");
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

/// A packet capture (`tcpdump -i lo`) of the TCP ports in `ports`, written to `file` until dropped
/// or `finish`ed; tcpdump is installed by scripts/install-tools.sh.
struct Capture {
    child: std::process::Child,
    file: std::path::PathBuf,
}

impl Capture {
    fn start(file: std::path::PathBuf, ports: &[u16]) -> Capture {
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        // -U: each packet written at once; -Z root: keep writing to the test's (root-owned) directory.
        let child = std::process::Command::new("tcpdump")
            .args(["-i", "lo", "-U", "-s", "0", "-Z", "root", "-w"])
            .arg(&file)
            .arg(&filter)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tcpdump (scripts/install-tools.sh installs it)");
        // tcpdump writes the file's header once it listens.
        wait_for("tcpdump to start capturing", Duration::from_secs(10), || {
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 0)
        });
        std::thread::sleep(Duration::from_millis(300));
        Capture { child, file }
    }

    /// Stops the capture; the captured bytes (pcap).
    fn finish(mut self) -> Vec<u8> {
        std::thread::sleep(Duration::from_millis(500));
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::read(&self.file).unwrap()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How often `needle` occurs in `haystack`.
fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Each broker's listeners: the harness's PLAINTEXT one (`{port}`, first: the one the ensemble
/// names) and `name` on a port of its own; the inter-broker listener is `name`.
fn inter_broker_listener(name: &str, protocol: &str, port: u16) -> Vec<(String, String)> {
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},{name}://127.0.0.1:{port}");
    vec![
        ("listeners".into(), listeners.clone()),
        ("advertised.listeners".into(), listeners),
        (
            "listener.security.protocol.map".into(),
            format!("PLAINTEXT:PLAINTEXT,{name}:{protocol}"),
        ),
        ("inter.broker.listener.name".into(), name.into()),
        ("min.insync.replicas".into(), "2".into()),
    ]
}

/// Waits until `describe` (kafka-topics --describe output) shows every partition of the topic with
/// the ISR 1, 2, 3.
fn wait_full_isr(cluster: &common::cluster::Cluster, mut describe: impl FnMut() -> String) {
    cluster.wait_until("every replica in the ISR (1,2,3)", Duration::from_secs(60), || {
        let text = describe();
        let rows: Vec<_> = text
            .lines()
            .map(common::cluster::describe_fields)
            .filter(|f| f.contains_key("Partition"))
            .collect();
        let full = |f: &std::collections::BTreeMap<String, String>| {
            let mut isr: Vec<&str> = f.get("Isr").map(|s| s.split(',').collect()).unwrap_or_default();
            isr.sort_unstable();
            isr == ["1", "2", "3"]
        };
        if !rows.is_empty() && rows.iter().all(full) {
            Ok(())
        } else {
            Err(text)
        }
    });
}

/// Issue 13: brokers replicate over an SSL inter-broker listener that requires client certificates
/// (each broker presents its keystore and checks the others against its truststore, host name
/// included). Kafka's console producer (acks=all, RF 3, min.insync.replicas 2) writes records with a
/// marker through the PLAINTEXT client listener; every replica catches up; a capture of the
/// inter-broker ports holds no marker, while a capture of the client ports (the negative control)
/// does.
#[test]
fn brokers_replicate_over_an_ssl_inter_broker_listener_that_no_capture_can_read() {
    let _serial = serial();
    let certs = Certs::new();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let keystore = certs.path("server-store.pem").display().to_string();
    let truststore = certs.path("ca.pem").display().to_string();
    let per_broker = ports
        .iter()
        .map(|&port| {
            let mut settings = inter_broker_listener("INTERNAL", "SSL", port);
            for (k, v) in [
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.location", &keystore),
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", &truststore),
                ("ssl.client.auth", "required"),
            ] {
                settings.push((format!("listener.name.internal.{k}"), v.to_string()));
            }
            settings
        })
        .collect();
    let cluster = common::cluster::Cluster::start_with(common::cluster::Options {
        per_broker,
        ..Default::default()
    });
    for id in 1..=3 {
        assert!(
            cluster.broker(id).log_text().contains("protocol=\"SSL\""),
            "broker {id} does not say it uses SSL toward other brokers:\n{}",
            cluster.broker(id).log_tail(20)
        );
    }
    let client_ports: Vec<u16> = cluster.brokers.iter().map(|b| b.port()).collect();
    let inter_broker = Capture::start(cluster._dir.path().join("inter-broker.pcap"), &ports);
    let clients = Capture::start(cluster._dir.path().join("clients.pcap"), &client_ports);

    cluster.create_topic("sealed", 1, 3);
    let marker = "PLAINTEXT-MARKER-oxka-7f3a";
    let records: String = (0..50).map(|i| format!("{marker}-{i}\n")).collect();
    let bootstrap = cluster.bootstrap();
    let produced = kafka_tool_stdin(
        "4",
        "console-producer",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "sealed",
            "--producer-property",
            "acks=all",
        ],
        records.as_bytes(),
        90,
    );
    cluster.expect_ok("kafka-console-producer acks=all", &produced);
    wait_full_isr(&cluster, || {
        common::cluster::output_text(&cluster.topics(&["--describe", "--topic", "sealed"]))
    });
    // Every follower has every record: each replica's log end offset is 50.
    for id in 1..=3 {
        let dir = cluster.broker(id).data_dir().join("sealed-0");
        cluster.wait_until(
            &format!("broker {id}'s replica of sealed-0 to hold the 50 records"),
            Duration::from_secs(30),
            || {
                let bytes: usize = std::fs::read_dir(&dir)
                    .map_err(|e| e.to_string())?
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                    .map(|e| occurrences(&std::fs::read(e.path()).unwrap_or_default(), marker.as_bytes()))
                    .sum();
                if bytes == 50 {
                    Ok(())
                } else {
                    Err(format!("{bytes} markers in its log"))
                }
            },
        );
    }

    let inter_broker = inter_broker.finish();
    let clients = clients.finish();
    eprintln!(
        "captured {} bytes between brokers, {} bytes of client traffic",
        inter_broker.len(),
        clients.len()
    );
    assert!(
        inter_broker.len() > 5_000,
        "the inter-broker capture holds only {} bytes: no replication traffic was captured",
        inter_broker.len()
    );
    assert_eq!(
        occurrences(&inter_broker, marker.as_bytes()),
        0,
        "a record value crossed the inter-broker listener in plaintext"
    );
    assert!(
        occurrences(&clients, marker.as_bytes()) >= 50,
        "the control capture of the PLAINTEXT client listener should show the records"
    );
}

/// Issue 13: SASL_SSL between brokers with SCRAM-SHA-512 and ACLs on. Each broker logs in to the
/// others as `User:broker` (`sasl.mechanism.inter.broker.protocol`, the username and password of the
/// listener's `scram-sha-512.sasl.jaas.config`), whose SCRAM credential an admin (PLAIN, a super
/// user) creates with Kafka's kafka-configs; `super.users=User:broker` gives the followers'
/// Fetch its CLUSTER_ACTION, as in Kafka. Until the credential exists the followers' logins fail,
/// are logged with the peer and the reason, and are retried with backoff; then an RF 3 topic written
/// with acks=all gets every replica in its ISR.
#[test]
fn brokers_replicate_over_sasl_ssl_logging_in_with_scram_as_a_super_user() {
    let _serial = serial();
    let certs = Certs::new();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let keystore = certs.path("server-store.pem").display().to_string();
    let truststore = certs.path("ca.pem").display().to_string();
    let per_broker = ports
        .iter()
        .map(|&port| {
            let mut settings = inter_broker_listener("SASL_SSL", "SASL_SSL", port);
            for (k, v) in [
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.location", keystore.as_str()),
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", truststore.as_str()),
                ("sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
                ("listener.name.sasl_ssl.plain.sasl.jaas.config",
                 "org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\";"),
                ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"),
                ("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
                 "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"broker-secret\";"),
                ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
                ("super.users", "User:admin;User:broker"),
                ("replica.fetch.backoff.ms", "500"),
            ] {
                settings.push((k.to_string(), v.to_string()));
            }
            settings
        })
        .collect();
    let cluster = common::cluster::Cluster::start_with(common::cluster::Options {
        per_broker,
        ..Default::default()
    });
    let admin_config = certs.path("admin.properties");
    std::fs::write(
        &admin_config,
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\";\n\
             ssl.truststore.type=PEM\nssl.truststore.location={truststore}\n\
             default.api.timeout.ms=15000\nrequest.timeout.ms=10000\n"
        ),
    )
    .unwrap();
    let sasl_ssl = format!("127.0.0.1:{}", ports[0]);
    let admin = |tool: &str, args: &[&str]| {
        let out = common::secured::admin_tool(tool, &sasl_ssl, &admin_config, args);
        cluster.expect_ok(&format!("kafka-{tool} {}", args.join(" ")), &out)
    };

    // Before the brokers' credential exists: a topic whose followers cannot log in.
    admin("topics", &["--create", "--topic", "early", "--replication-factor", "3"]);
    let refused = cluster.wait_until(
        "a follower's log line about the refused SCRAM login",
        Duration::from_secs(30),
        || {
            let logs: String = cluster.brokers.iter().map(|b| b.log_text()).collect();
            logs.lines()
                .find(|l| l.contains("replica fetcher") && l.contains("SASL") && l.contains("in the last interval"))
                .map(str::to_string)
                .ok_or_else(|| "no such line yet".to_string())
        },
    );
    eprintln!("{refused}");
    // Retried with backoff, not in a tight loop: a few log lines, not thousands.
    let lines: usize = cluster
        .brokers
        .iter()
        .map(|b| b.log_text().lines().filter(|l| l.contains("replica fetcher")).count())
        .sum();
    assert!(lines < 30, "{lines} replica fetcher log lines");

    admin(
        "configs",
        &[
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            "broker",
            "--add-config",
            "SCRAM-SHA-512=[password=broker-secret]",
        ],
    );
    admin(
        "topics",
        &[
            "--create",
            "--topic",
            "scrammed",
            "--partitions",
            "3",
            "--replication-factor",
            "3",
        ],
    );
    let records: String = (0..30).map(|i| format!("record-{i}\n")).collect();
    let produced = kafka_tool_stdin(
        "4",
        "console-producer",
        &[
            "--bootstrap-server",
            &sasl_ssl,
            "--producer.config",
            admin_config.to_str().unwrap(),
            "--topic",
            "scrammed",
            "--producer-property",
            "acks=all",
        ],
        records.as_bytes(),
        90,
    );
    cluster.expect_ok("kafka-console-producer acks=all over SASL_SSL", &produced);
    for topic in ["scrammed", "early"] {
        wait_full_isr(&cluster, || {
            let out =
                common::secured::admin_tool("topics", &sasl_ssl, &admin_config, &["--describe", "--topic", topic]);
            common::cluster::output_text(&out)
        });
    }
}

/// Issue 13, bad input: broker 3's truststore holds another CA, so it cannot check the other brokers'
/// certificates. Its fetchers log the refused handshake once per interval with a count, naming the
/// leader, and retry with backoff (a handful of lines, not a tight loop); the leaders drop it from the
/// ISR, and acks=all writes (min.insync.replicas 2) go on with brokers 1 and 2.
#[test]
fn a_broker_that_does_not_trust_its_peers_logs_it_and_the_others_carry_on() {
    let _serial = serial();
    let certs = Certs::new();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let keystore = certs.path("server-store.pem").display().to_string();
    let per_broker = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            let ca = if i == 2 { "other-ca.pem" } else { "ca.pem" };
            let mut settings = inter_broker_listener("INTERNAL", "SSL", port);
            for (k, v) in [
                ("listener.name.internal.ssl.keystore.type", "PEM".to_string()),
                ("listener.name.internal.ssl.keystore.location", keystore.clone()),
                ("listener.name.internal.ssl.truststore.type", "PEM".to_string()),
                (
                    "listener.name.internal.ssl.truststore.location",
                    certs.path(ca).display().to_string(),
                ),
                ("replica.lag.time.max.ms", "3000".to_string()),
                ("replica.fetch.backoff.ms", "500".to_string()),
            ] {
                settings.push((k.to_string(), v));
            }
            settings
        })
        .collect();
    let mut cluster = common::cluster::Cluster::start_with(common::cluster::Options {
        per_broker,
        ..Default::default()
    });
    cluster.create_topic("distrust", 3, 3);
    let line = cluster.wait_until(
        "broker 3's log line about the untrusted certificate",
        Duration::from_secs(30),
        || {
            cluster
                .broker(3)
                .log_text()
                .lines()
                .find(|l| l.contains("replica fetcher") && l.contains("TLS handshake failed"))
                .map(str::to_string)
                .ok_or_else(|| "no such line yet".to_string())
        },
    );
    eprintln!("{line}");
    assert!(
        line.contains("in the last interval") && line.contains("leader=") && line.contains("127.0.0.1:"),
        "{line}"
    );
    let bootstrap = cluster.bootstrap();
    let records: String = (0..20).map(|i| format!("kept-{i}\n")).collect();
    let produced = kafka_tool_stdin(
        "4",
        "console-producer",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "distrust",
            "--producer-property",
            "acks=all",
        ],
        records.as_bytes(),
        90,
    );
    cluster.expect_ok("kafka-console-producer acks=all without broker 3", &produced);
    let refused = cluster
        .broker(3)
        .log_text()
        .lines()
        .filter(|l| l.contains("replica fetcher"))
        .count();
    assert!(
        (1..20).contains(&refused),
        "{refused} replica fetcher lines on broker 3: retried in a tight loop?"
    );
    assert!(cluster.broker_mut(3).is_running(), "broker 3 stopped");
}

/// Issue 13, coordinators: `sslQuorum=true` with ZooKeeper's `ssl.quorum.*` keys (PEM) puts Raft
/// between the three coordinators on mutual TLS, and each coordinator's `secureClientPort` (with
/// ZooKeeper's `ssl.*` keys, client certificates needed) serves the brokers, which connect with
/// KIP-515's `zookeeper.ssl.*` keys. The ensemble elects a leader and commits (the brokers register
/// over TLS, a topic is created through the controller); captures of the peer ports and of the secure
/// client ports hold none of the topic's name, while a capture of the brokers' PLAINTEXT listener,
/// where kafka-topics sends it (the negative control), does.
#[test]
fn coordinators_replicate_and_serve_brokers_over_tls() {
    let _serial = serial();
    let certs = Certs::new();
    let (keystore, truststore) = (certs.path("server-store.pem"), certs.path("ca.pem"));
    let quorum = format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        keystore.display(),
        truststore.display()
    );
    let secure_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let per_coordinator = secure_ports
        .iter()
        .map(|port| {
            format!(
                "secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.type=PEM\n\
                 ssl.trustStore.location={}\nssl.trustStore.type=PEM\n",
                keystore.display(),
                truststore.display()
            )
        })
        .collect();
    let connect = secure_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let broker_tls: Vec<(String, String)> = [
        ("zookeeper.connect", connect.as_str()),
        ("zookeeper.ssl.client.enable", "true"),
        ("zookeeper.ssl.truststore.location", &truststore.display().to_string()),
        ("zookeeper.ssl.truststore.type", "PEM"),
        ("zookeeper.ssl.keystore.location", &keystore.display().to_string()),
        ("zookeeper.ssl.keystore.type", "PEM"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cluster = common::cluster::Cluster::start_with(common::cluster::Options {
        coordinator_config: Box::leak(quorum.into_boxed_str()),
        per_coordinator,
        per_broker: vec![broker_tls; 3],
        ..Default::default()
    });
    for b in &cluster.brokers {
        assert!(
            b.log_text().contains("connections to the coordinator ensemble use TLS"),
            "{}",
            b.log_tail(20)
        );
    }
    let mut peer_ports = Vec::new();
    for c in &cluster.coordinators {
        let log = std::fs::read_to_string(c.log_path()).unwrap();
        assert!(
            log.contains("Raft between coordinators over TLS"),
            "{}",
            c.log_tail_lines(20)
        );
        let port = log
            .split("peers ")
            .nth(1)
            .and_then(|rest| rest.split([',', ' ', '\n']).next())
            .and_then(|addr| addr.rsplit_once(':'))
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no peer port in the coordinator's log:\n{log}"));
        peer_ports.push(port);
    }
    let broker_ports: Vec<u16> = cluster.brokers.iter().map(|b| b.port()).collect();
    let peers = Capture::start(cluster._dir.path().join("peers.pcap"), &peer_ports);
    let secure = Capture::start(cluster._dir.path().join("secure-clients.pcap"), &secure_ports);
    let control = Capture::start(cluster._dir.path().join("broker-clients.pcap"), &broker_ports);
    let marker = "PLAINTEXT-MARKER-quorum-5c1e";
    cluster.create_topic(marker, 3, 3);
    let described = cluster.topics_ok(&["--describe", "--topic", marker]);
    assert!(described.contains("ReplicationFactor: 3"), "{described}");
    std::thread::sleep(Duration::from_secs(1));
    let (peers, secure, control) = (peers.finish(), secure.finish(), control.finish());
    eprintln!(
        "captured {} bytes between coordinators, {} on their secure client ports, {} on the brokers' listeners",
        peers.len(),
        secure.len(),
        control.len()
    );
    assert!(
        peers.len() > 2_000 && secure.len() > 2_000,
        "no coordinator traffic captured"
    );
    assert_eq!(
        occurrences(&peers, marker.as_bytes()),
        0,
        "the topic name crossed the peer port in plaintext"
    );
    assert_eq!(
        occurrences(&secure, marker.as_bytes()),
        0,
        "the topic name crossed a secure client port in plaintext"
    );
    assert!(
        occurrences(&control, marker.as_bytes()) > 0,
        "the control capture of the brokers' PLAINTEXT listeners should show the topic name"
    );
}
