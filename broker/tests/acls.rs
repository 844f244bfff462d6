//! ACLs (issue 13): with `authorizer.class.name` set to Kafka's StandardAuthorizer, Kafka 4's
//! `kafka-acls` adds, lists and removes ACLs kept in the metadata log, and every client is held to them:
//! a user with READ on topic `a` and group `g` consumes `a` but is refused `b` with
//! TOPIC_AUTHORIZATION_FAILED, cannot create topics and does not see `b` in Metadata; a prefixed ACL
//! lets another user write every `logs-` topic, a DENY wins over it, and removing the DENY restores it.
//! Checked with Kafka's Java tools and with librdkafka (confluent-kafka) logged in over SASL PLAIN.
//! Without an authorizer `kafka-acls` gets Kafka's SecurityDisabledException.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::secured::{admin_tool, text, topics};
use common::*;

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// A Java client properties file logging in as `user` (password `<user>-secret`) over SASL_PLAINTEXT.
fn login(dir: &Path, user: &str) -> PathBuf {
    let text = format!(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
         sasl.jaas.config={PLAIN} required username=\"{user}\" password=\"{user}-secret\";\n\
         default.api.timeout.ms=20000\nrequest.timeout.ms=15000\n"
    );
    let file = dir.join(format!("{user}.properties"));
    std::fs::write(&file, text).unwrap();
    file
}

/// `kafka-acls.sh --bootstrap-server B --command-config CONFIG ARGS`.
fn acls(bootstrap: &str, config: &Path, args: &[&str]) -> Output {
    admin_tool("acls", bootstrap, config, args)
}

fn ok(what: &str, out: Output) -> String {
    assert!(out.status.success(), "{what}: {}", text(&out));
    text(&out)
}

/// Each user's view, through librdkafka: what it may read, write, list and create. Prints one JSON
/// object.
const CLIENT_CHECKS: &str = r#"
from confluent_kafka import Consumer, Producer, KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

def conf(user):
    return {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": user + "-secret"}

def consume(user, topic, group):
    c = Consumer(dict(conf(user), **{"group.id": group, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    values, error, deadline = [], None, time.time() + 20
    while time.time() < deadline and len(values) < 3 and error is None:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            error = m.error().name()
        else:
            values.append(m.value().decode())
    c.close()
    return {"values": sorted(values), "error": error}

def produce(user, topic):
    p = Producer(dict(conf(user), **{"message.timeout.ms": 15000}))
    result = {}
    p.produce(topic, b"from-" + user.encode(), on_delivery=lambda e, m: result.update(error=e.name() if e else None))
    p.flush(20)
    return result.get("error", "undelivered")

def listed(user):
    return sorted(t for t in AdminClient(conf(user)).list_topics(timeout=15).topics if not t.startswith("__"))

def create(user, topic):
    admin = AdminClient(conf(user))  # kept alive until the answer (else librdkafka reports _DESTROY)
    f = admin.create_topics([NewTopic(topic, 1, 1)])[topic]
    try:
        f.result(15)
        return None
    except KafkaException as e:
        return e.args[0].name()

def operations(user):
    """The authorized operations librdkafka reads (Metadata and DescribeCluster with
    include_*_authorized_operations): of topic a and of the cluster."""
    admin = AdminClient(conf(user))
    topic = admin.describe_topics(TopicCollection(["a"]), include_authorized_operations=True)["a"].result(15)
    cluster = admin.describe_cluster(include_authorized_operations=True).result(15)
    names = lambda ops: sorted(o.name for o in (ops or []))
    return {"topic_a": names(topic.authorized_operations), "cluster": names(cluster.authorized_operations)}

print(json.dumps({
    "alice_operations": operations("alice"),
    "admin_operations": operations("admin"),
    "alice_reads_a": consume("alice", "a", "g"),
    "alice_reads_b": consume("alice", "b", "g"),
    "alice_lists": listed("alice"),
    "alice_creates": create("alice", "c"),
    "bob_writes_logs": produce("bob", "logs-web"),
    "bob_writes_a": produce("bob", "a"),
}))
"#;

#[test]
fn kafka_acls_decide_what_each_user_may_do() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let sasl_port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let jaas =
        format!("{PLAIN} required user_admin=\"admin-secret\" user_alice=\"alice-secret\" user_bob=\"bob-secret\";");
    let mut broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        ("inter.broker.listener.name", "PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", &jaas),
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin"),
    ]);
    let sasl = format!("127.0.0.1:{sasl_port}");
    let (admin, alice) = (login(dir.path(), "admin"), login(dir.path(), "alice"));

    for topic in ["a", "b", "logs-web"] {
        ok(
            "admin creates a topic",
            topics(&sasl, &admin, &["--create", "--topic", topic, "--partitions", "1"]),
        );
    }
    for topic in ["a", "b"] {
        let input = format!("{topic}-1\n{topic}-2\n{topic}-3\n");
        let produced = kafka_tool_stdin(
            "4",
            "console-producer",
            &[
                "--bootstrap-server",
                &sasl,
                "--producer.config",
                admin.to_str().unwrap(),
                "--topic",
                topic,
            ],
            input.as_bytes(),
            90,
        );
        ok("admin produces", produced);
    }

    // kafka-acls --add, then --list shows what was added, as Kafka's tool prints it.
    ok(
        "add alice's READ on a and g",
        acls(
            &sasl,
            &admin,
            &[
                "--add",
                "--allow-principal",
                "User:alice",
                "--operation",
                "Read",
                "--topic",
                "a",
                "--group",
                "g",
            ],
        ),
    );
    ok(
        "add bob's prefixed WRITE on logs-",
        acls(
            &sasl,
            &admin,
            &[
                "--add",
                "--allow-principal",
                "User:bob",
                "--operation",
                "Write",
                "--topic",
                "logs-",
                "--resource-pattern-type",
                "prefixed",
            ],
        ),
    );
    let listed = ok("list", acls(&sasl, &admin, &["--list"]));
    for expected in [
        "ResourcePattern(resourceType=TOPIC, name=a, patternType=LITERAL)",
        "ResourcePattern(resourceType=GROUP, name=g, patternType=LITERAL)",
        "ResourcePattern(resourceType=TOPIC, name=logs-, patternType=PREFIXED)",
        "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)",
        "(principal=User:bob, host=*, operation=WRITE, permissionType=ALLOW)",
    ] {
        assert!(
            listed.contains(expected),
            "kafka-acls --list lacks {expected}:\n{listed}"
        );
    }
    // A user without ALTER on the cluster may not add ACLs.
    let refused = acls(
        &sasl,
        &alice,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "All",
            "--topic",
            "b",
        ],
    );
    assert!(
        text(&refused).contains("ClusterAuthorizationException"),
        "alice added an ACL: {}",
        text(&refused)
    );

    // What the users may do, through librdkafka.
    let seen: serde_json::Value =
        serde_json::from_str(python_ok(CLIENT_CHECKS, &sasl).trim()).expect("the client checks print JSON");
    assert_eq!(
        seen["alice_reads_a"],
        serde_json::json!({"values": ["a-1", "a-2", "a-3"], "error": null}),
        "{seen}"
    );
    assert_eq!(seen["alice_reads_b"]["error"], "TOPIC_AUTHORIZATION_FAILED", "{seen}");
    assert_eq!(seen["alice_lists"], serde_json::json!(["a"]), "{seen}");
    assert_eq!(seen["alice_creates"], "TOPIC_AUTHORIZATION_FAILED", "{seen}");
    assert_eq!(seen["bob_writes_logs"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["bob_writes_a"], "TOPIC_AUTHORIZATION_FAILED", "{seen}");
    // Authorized operations (KIP-430): alice may READ a (and so DESCRIBE it) and nothing on the
    // cluster; the super user everything each resource type supports.
    assert_eq!(
        seen["alice_operations"],
        serde_json::json!({"topic_a": ["DESCRIBE", "READ"], "cluster": []}),
        "{seen}"
    );
    assert_eq!(
        seen["admin_operations"]["topic_a"],
        serde_json::json!([
            "ALTER",
            "ALTER_CONFIGS",
            "CREATE",
            "DELETE",
            "DESCRIBE",
            "DESCRIBE_CONFIGS",
            "READ",
            "WRITE"
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["admin_operations"]["cluster"],
        serde_json::json!([
            "ALTER",
            "ALTER_CONFIGS",
            "CLUSTER_ACTION",
            "CREATE",
            "DESCRIBE",
            "DESCRIBE_CONFIGS",
            "IDEMPOTENT_WRITE"
        ]),
        "{seen}"
    );

    // Kafka's Java consumer is told the same about b.
    let consumed = kafka_tool_timeout(
        "4",
        "console-consumer",
        &[
            "--bootstrap-server",
            &sasl,
            "--consumer.config",
            alice.to_str().unwrap(),
            "--topic",
            "b",
            "--group",
            "g",
            "--from-beginning",
            "--timeout-ms",
            "15000",
        ],
        90,
    );
    assert!(
        text(&consumed).contains("Not authorized to access topics: [b]"),
        "{}",
        text(&consumed)
    );

    // DENY wins over the prefixed ALLOW; removing it restores the ALLOW.
    let deny = [
        "--deny-principal",
        "User:bob",
        "--operation",
        "Write",
        "--topic",
        "logs-web",
    ];
    ok("add the DENY", acls(&sasl, &admin, &[&["--add"][..], &deny].concat()));
    let writes = |label: &str| -> String {
        let script = format!("{}\nprint('{label}', produce('bob', 'logs-web'))", helpers_only());
        python_ok(&script, &sasl).trim().to_string()
    };
    assert_eq!(writes("denied"), "denied TOPIC_AUTHORIZATION_FAILED");
    ok(
        "remove the DENY",
        acls(&sasl, &admin, &[&["--remove", "--force"][..], &deny].concat()),
    );
    assert_eq!(writes("allowed"), "allowed None");
    let listed = ok(
        "list after remove",
        acls(&sasl, &admin, &["--list", "--topic", "logs-web"]),
    );
    assert!(!listed.contains("DENY"), "{listed}");

    // The ACLs are in the metadata log: they survive a restart.
    broker.restart();
    let after = ok("list after a restart", acls(&sasl, &admin, &["--list", "--topic", "a"]));
    assert!(
        after.contains("(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)"),
        "{after}"
    );
}

/// The helper functions of [`CLIENT_CHECKS`] without its final checks.
fn helpers_only() -> &'static str {
    CLIENT_CHECKS
        .split("print(json.dumps({")
        .next()
        .expect("the script has helpers")
}

#[test]
fn without_an_authorizer_kafka_acls_is_told_security_is_disabled() {
    let _serial = serial();
    let broker = Broker::start(&[]);
    let listed = kafka_tool_timeout("4", "acls", &["--bootstrap-server", &broker.bootstrap(), "--list"], 90);
    assert!(
        text(&listed).contains("SecurityDisabledException: No Authorizer is configured"),
        "{}",
        text(&listed)
    );
}

/// mTLS principals (`ssl.principal.mapping.rules`): a client certificate for `CN=alice` is `User:alice`
/// under a rule that keeps the CN, so ACLs written for the user decide what the certificate may do;
/// `CN=admin` is a super user.
#[test]
fn client_certificates_are_principals_for_acls() {
    let _serial = serial();
    let certs = common::certs::Certs::new();
    certs.issue("ca", "admin", "/O=oxka/CN=Admin", "extendedKeyUsage=clientAuth");
    let ssl_port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port}");
    let keystore = certs.path("server-store.pem").display().to_string();
    let truststore = certs.path("ca.pem").display().to_string();
    let _broker = Broker::start(&[
        ("listeners", &listeners),
        ("advertised.listeners", &listeners),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", &keystore),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", &truststore),
        ("ssl.client.auth", "required"),
        // The CN, lower-cased (`CN=Admin,O=oxka` is admin; `CN=alice` is alice).
        ("ssl.principal.mapping.rules", "RULE:^CN=([^,]+)(,.*)?$/$1/L,DEFAULT"),
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin"),
    ]);
    let ssl = format!("127.0.0.1:{ssl_port}");
    let (admin, alice) = (certs.client_config(Some("admin")), certs.client_config(Some("alice")));
    for topic in ["a", "b"] {
        ok("admin creates", topics(&ssl, &admin, &["--create", "--topic", topic]));
    }
    ok(
        "admin lets alice describe a",
        acls(
            &ssl,
            &admin,
            &[
                "--add",
                "--allow-principal",
                "User:alice",
                "--operation",
                "Describe",
                "--topic",
                "a",
            ],
        ),
    );
    let listed = ok("alice lists", topics(&ssl, &alice, &["--list"]));
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["a"], "{listed}");
    let refused = topics(&ssl, &alice, &["--create", "--topic", "c"]);
    assert!(
        text(&refused).contains("TopicAuthorizationException"),
        "{}",
        text(&refused)
    );
}
