//! A secured cluster end to end without Kubernetes: broker 0's server.properties rendered from
//! `examples/secured.yaml` (TLS + SCRAM-SHA-512, the authorizer, the OPERATOR and REPLICATION
//! listeners), with certificates the operator's own `certs` issues, runs as an oxka broker in this
//! process (loopback ports, its embedded coordinator). The operator's admin code then does what the
//! KafkaUser controller does, as `CN=oxka-operator` over mutual TLS: a SCRAM-SHA-512 credential it
//! salts itself and ACLs converged with the pure diff. A client logs in over SASL_SSL with that
//! password; after the deletions it cannot, and no ACL is left.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind};
use oxka_broker::config::BrokerConfig;
use oxka_operator::crd::KafkaCluster;
use oxka_operator::reconcile::certs::{issue, new_ca, Leaf, OPERATOR_COMMON_NAME};
use oxka_operator::reconcile::cluster_certs::broker_names;
use oxka_operator::reconcile::{kafka_security, user_acls, user_admin};
use oxka_operator::render::{render, RenderOptions};
use oxka_protocol::network::client::ClientConnection;
use oxka_protocol::network::secure::{tls_client_config, ClientSecurity, PemSource, SaslLogin};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Rewrites one line `key=...` of a properties text.
fn set(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with(&format!("{key}=")) {
                format!("{key}={value}")
            } else {
                line.to_string()
            }
        })
        .filter(|line| !line.starts_with("zookeeper.connect="))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn login(address: &str, ca: &str, user: &str, password: &str) -> Result<(), String> {
    let security = ClientSecurity {
        tls: Some(tls_client_config(Some(PemSource::Inline(ca)), None, false)?),
        sasl: Some(SaslLogin {
            mechanism: "SCRAM-SHA-512".into(),
            user: user.into(),
            password: password.into(),
        }),
    };
    let mut c = ClientConnection::connect_secured(address, "secured-test", Duration::from_secs(5), 1 << 20, &security)
        .await
        .map_err(|e| e.to_string())?;
    let request = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
    c.call(ApiKey::Metadata, 9, &request, Duration::from_secs(5))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sets_users_and_acls_over_its_mutual_tls_listener() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cluster: KafkaCluster =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("examples/secured.yaml")).unwrap()).unwrap();
    let objects = render(&cluster, &RenderOptions::default()).unwrap();
    let rendered = objects.brokers.config_map.data.unwrap()["server-0.properties"].clone();

    // The certificates, as cluster_certs writes them into the broker certificate Secret.
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ca = new_ca("default", "secured", now, 30).unwrap();
    let names = broker_names("secured", "default", "cluster.local", 0);
    let broker = issue(
        "default",
        "secured",
        &ca.key_pem,
        ca.not_after,
        Leaf::Server(&names),
        now,
        30,
    )
    .unwrap();
    let operator = issue(
        "default",
        "secured",
        &ca.key_pem,
        ca.not_after,
        Leaf::Client(OPERATOR_COMMON_NAME),
        now,
        30,
    )
    .unwrap();
    std::fs::write(dir.path().join("ca.crt"), &ca.cert_pem).unwrap();
    std::fs::write(dir.path().join("broker-0.pem"), broker.keystore(&ca.cert_pem)).unwrap();

    // The pod's file with loopback ports, local paths and the embedded coordinator.
    let (client, op, replication) = (free_port(), free_port(), free_port());
    let listeners =
        format!("INTERNAL://127.0.0.1:{client},OPERATOR://127.0.0.1:{op},REPLICATION://127.0.0.1:{replication}");
    let mut text = rendered.replace("/etc/oxka/tls", dir.path().to_str().unwrap());
    text = set(&text, "listeners", &listeners);
    text = set(&text, "advertised.listeners", &listeners);
    text = set(&text, "log.dirs", dir.path().join("data").to_str().unwrap());
    text = set(&text, "metrics.port", "-1");
    for key in [
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "min.insync.replicas",
        "transaction.state.log.min.isr",
    ] {
        text = set(&text, key, "1");
    }
    let config = BrokerConfig::from_properties_text(&text, "server-0.properties").unwrap();
    let running = oxka_broker::runtime::start(config).await.unwrap();
    let tasks = tokio_util::task::TaskTracker::new();
    let shutdown = tokio_util::sync::CancellationToken::new();
    oxka_broker::runtime::serve(&running, &tasks, &shutdown).await.unwrap();

    let internal = format!("127.0.0.1:{client}");
    let admin = format!("127.0.0.1:{op}");
    // Without the operator's certificate the OPERATOR listener refuses the connection.
    let no_cert = ClientSecurity {
        tls: Some(tls_client_config(Some(PemSource::Inline(&ca.cert_pem)), None, false).unwrap()),
        sasl: None,
    };
    let refused = ClientConnection::connect_secured(&admin, "t", Duration::from_secs(5), 1 << 20, &no_cert).await;
    let refused = match refused {
        Err(e) => Err(e.to_string()),
        Ok(mut c) => {
            let request = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
            c.call(ApiKey::Metadata, 9, &request, Duration::from_secs(5))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    assert!(refused.is_err(), "a client without a certificate was served");

    let security = kafka_security::mutual_tls(&ca.cert_pem, &operator.keystore(&ca.cert_pem)).unwrap();
    kafka_security::register("default/secured", [admin.clone()], &security);
    user_admin::upsert_scram(&admin, "alice", "alice-secret").await.unwrap();
    let rules: Vec<oxka_operator::crd::user::AclRule> = serde_yaml::from_str(
        "- resource: {type: topic, name: orders}\n  operations: [Read, Write]\n- resource: {type: group, name: orders-, patternType: prefix}\n  operations: [Read]\n",
    )
    .unwrap();
    let want = user_acls::desired("User:alice", &rules);
    let diff = user_acls::diff(&want, &user_admin::describe_acls(&admin, "User:alice").await.unwrap());
    assert_eq!((diff.create.len(), diff.delete.len()), (3, 0));
    user_admin::create_acls(&admin, &diff.create).await.unwrap();
    assert_eq!(user_admin::describe_acls(&admin, "User:alice").await.unwrap(), want);

    // The SCRAM credential the operator salted logs alice in over SASL_SSL (the credential reaches the
    // broker through its metadata log: retry briefly); a wrong password does not.
    let mut last = Err(String::new());
    for _ in 0..50 {
        last = login(&internal, &ca.cert_pem, "alice", "alice-secret").await;
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last.unwrap();
    assert!(login(&internal, &ca.cert_pem, "alice", "wrong").await.is_err());

    // What the KafkaUser's finalizer does.
    user_admin::delete_scram(&admin, "alice").await.unwrap();
    let all: Vec<_> = want.into_iter().collect();
    user_admin::delete_acls(&admin, &all).await.unwrap();
    assert!(user_admin::describe_acls(&admin, "User:alice")
        .await
        .unwrap()
        .is_empty());
    let mut gone = false;
    for _ in 0..50 {
        if login(&internal, &ca.cert_pem, "alice", "alice-secret").await.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "alice still logs in after her credential was deleted");
    // Deleting a credential that is already gone is no error (a finalizer retried).
    user_admin::delete_scram(&admin, "alice").await.unwrap();
    shutdown.cancel();
}
