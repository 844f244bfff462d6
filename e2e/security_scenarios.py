"""Security scenarios: a KafkaCluster whose internal listener is TLS + SCRAM-SHA-512 with Kafka's ACL
authorizer, and KafkaUsers. The operator issues the cluster CA, the brokers' certificates and its own
client certificate into Secrets; broker 0's rendered server.properties (from the live ConfigMap, with
the Secret's files) is accepted by oxka's parser and then run as a real oxka broker on loopback, its
OPERATOR listener (mutual TLS) where the operator's --kafka-bootstrap-template points. The operator
creates the users' SCRAM credentials and ACLs through it; clients no one here wrote use them:
confluent-kafka (librdkafka) produces and consumes with a user's password over TLS with the CA, and
Apache Kafka's kafka-acls lists the ACLs as an admin user. Deleting a KafkaUser removes its ACLs and credential.

Uses e2e/harness.py's helpers and globals, as scenarios.py does.
"""

import base64
import json
import os
import re
import subprocess
import tempfile

import drain_scenarios as drain
import harness as h

NS = "sec"
NAME = "sec"
WORK = {}  # dir, ports, ca path, ... shared by the scenarios below


def secret(name):
    s = h.get("secret", name, NS)
    if not s:
        return None
    return {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}


def kafka_user(name, acls=None):
    spec = {"cluster": NAME, "authentication": {"type": "scram-sha-512"}}
    if acls is not None:
        spec["authorization"] = {"type": "simple", "acls": acls}
    doc = {"apiVersion": "oxka.io/v1alpha1", "kind": "KafkaUser", "metadata": {"name": name, "namespace": NS}, "spec": spec}
    h.sh("kubectl", "apply", "-f", "-", input=json.dumps(doc))


def user_ready(name, timeout=60):
    def ready():
        u = h.get("kafkauser", name, NS)
        c = h.condition(u, "Ready")
        if c.get("status") == "True" and u["status"].get("observedGeneration") == u["metadata"]["generation"]:
            return u
        return None
    return h.wait_for(f"KafkaUser {name} Ready", ready, timeout)


# confluent-kafka (librdkafka from PyPI): Debian's kcat (librdkafka 2.0.2) repeats the client nonce in its
# final SCRAM message, which Apache Kafka refuses just as oxka does (broker/tests/sasl.rs).
CLIENT = r"""
import sys, time
from confluent_kafka import Consumer, Producer
bootstrap, user, password, ca, topic, count, timeout_ms = sys.argv[1:8]
conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": user, "sasl.password": password, "ssl.ca.location": ca,
        # The broker's certificate names its pod's DNS name; here it is reached as 127.0.0.1.
        "ssl.endpoint.identification.algorithm": "none"}
errors = []
p = Producer(dict(conf, acks="all", **{"message.timeout.ms": int(timeout_ms)}))
for i in range(int(count)):
    p.produce(topic, f"r{i}".encode(), on_delivery=lambda e, m: e and errors.append(str(e)))
left = p.flush(30)
if errors or left:
    print("PRODUCE-FAILED", errors[:3], left)
    sys.exit(2)
c = Consumer(dict(conf, **{"group.id": "orders-e2e", "auto.offset.reset": "earliest"}))
c.subscribe([topic])
got, deadline = [], time.time() + 30
while len(got) < int(count) and time.time() < deadline:
    m = c.poll(1)
    if m is None:
        continue
    if m.error():
        print("CONSUME-ERROR", m.error())
        sys.exit(3)
    got.append(m.value().decode())
c.close()
print(" ".join(got))
"""


def client(user, password, topic, count, timeout_ms=20000):
    """Produces `count` records to `topic` as `user` and reads them back in group orders-e2e; a record not
    acknowledged within `timeout_ms` fails it (short where a refusal is expected)."""
    python = os.path.join(os.environ.get("OXKA_CACHE", os.path.expanduser("~/.cache/oxka")), "venv", "bin", "python")
    return subprocess.run([python, "-c", CLIENT, f"127.0.0.1:{WORK['client']}", user, password, WORK["ca"], topic,
                           str(count), str(timeout_ms)], capture_output=True, text=True, timeout=120)


def kafka_acls(*args):
    """kafka-acls (Kafka 4) as the super user `admin`, over SASL_SSL with the cluster CA (PEM)."""
    config = os.path.join(WORK["dir"], "admin.properties")
    with open(config, "w") as f:
        f.write("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                f"sasl.jaas.config={secret('admin')['sasl.jaas.config']}\n"
                f"ssl.truststore.type=PEM\nssl.truststore.location={WORK['ca']}\n"
                "ssl.endpoint.identification.algorithm=\n")
    tool = os.path.join(h.ARGS.root, "scripts", "kafka")
    r = subprocess.run([tool, "4", "acls", "--bootstrap-server", f"127.0.0.1:{WORK['client']}",
                        "--command-config", config, *args], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise h.Failed(f"kafka-acls {' '.join(args)} failed: {r.stderr[-2000:]}")
    return r.stdout


def security_certificates_and_rendered_config():
    """A TLS + SCRAM-SHA-512 cluster with an authorizer: the operator creates the cluster CA, broker and
    operator certificate Secrets; each broker's rendered file names Kafka's ssl/sasl keys and is accepted
    by oxka's parser; a NetworkPolicy per role is applied."""
    while h.BROKERS:
        h.stop_operator(h.BROKERS.pop())
    h.sh("kubectl", "create", "namespace", NS)
    doc = open(f"{h.ARGS.root}/examples/secured.yaml").read().replace("name: secured", f"name: {NAME}")
    doc = doc.replace("    type: simple\n  clusterCa", "    type: simple\n    superUsers: [\"User:admin\"]\n  clusterCa")
    h.sh("kubectl", "apply", "-n", NS, "-f", "-", input=doc)
    h.settle(NAME, NS, timeout=120)
    for name in (f"{NAME}-cluster-ca", f"{NAME}-broker-certs", f"{NAME}-operator-certs"):
        h.check(secret(name), f"Secret {name} was not created")
    certs = secret(f"{NAME}-broker-certs")
    h.check(sorted(certs) == ["broker-0.pem", "broker-1.pem", "broker-2.pem", "ca.crt"], f"broker cert files {sorted(certs)}")
    h.check(certs["broker-0.pem"].startswith("-----BEGIN PRIVATE KEY-----"), "broker-0.pem does not start with its key")
    data = h.get("configmap", f"{NAME}-broker-config", NS)["data"]
    server = data["server-0.properties"]
    for line in ("listener.security.protocol.map=INTERNAL:SASL_SSL,OPERATOR:SSL,REPLICATION:PLAINTEXT",
                 "listener.name.internal.sasl.enabled.mechanisms=SCRAM-SHA-512",
                 "listener.name.operator.ssl.client.auth=required", "super.users=User:CN=oxka-operator;User:admin"):
        h.check(line in server, f"server-0.properties lacks {line}:\n{server}")
    sts = h.sts(f"{NAME}-broker", NS)
    vols = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    h.check(vols.get("tls", {}).get("secret", {}).get("secretName") == f"{NAME}-broker-certs", f"volumes {vols}")
    for role in ("broker", "coordinator"):
        h.check(h.get("networkpolicy", f"{NAME}-{role}", NS), f"no NetworkPolicy {NAME}-{role}")

    # The files as the pods read them: parsed by oxka's own parser.
    d = tempfile.mkdtemp(dir=h.ARGS.work)
    tls = os.path.join(d, "tls")
    os.makedirs(tls)
    for key, text in certs.items():
        with open(os.path.join(tls, key), "w") as f:
            f.write(text)
    original = os.path.join(d, "server-0.properties")
    with open(original, "w") as f:
        f.write(server)
    r = h.sh(h.ARGS.check_config, original, check=False, kubeconfig=False)
    h.check(r.returncode == 0, f"oxka refused the rendered config: {r.stderr}")
    WORK.update(dir=d, ca=os.path.join(tls, "ca.crt"), client=h.free_port(), server=server, tls=tls)


def security_broker_runs_the_rendered_config():
    """Broker 0's rendered file, with loopback ports, local paths and its embedded coordinator instead of
    the ensemble, runs as a real oxka broker: TLS and SCRAM on the client listener, mutual TLS on the
    operator's."""
    d = WORK["dir"]
    replication = h.free_port()
    text = WORK["server"].replace("/etc/oxka/tls", WORK["tls"])
    text = re.sub(r"^zookeeper\.connect=.*\n", "", text, flags=re.M)
    text = re.sub(r"^log\.dirs=.*$", f"log.dirs={d}/data", text, flags=re.M)
    text = re.sub(r"^metrics\.port=.*$", f"metrics.port={h.free_port()}", text, flags=re.M)
    ports = {"INTERNAL": WORK["client"], "OPERATOR": h.ARGS.kafka_port, "REPLICATION": replication}
    text = re.sub(r"^listeners=.*$", "listeners=" + ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()), text, flags=re.M)
    text = re.sub(r"^advertised\.listeners=.*$",
                  "advertised.listeners=" + ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()), text, flags=re.M)
    # Single broker: replicate nothing.
    text = re.sub(r"^(default\.replication\.factor|offsets\.topic\.replication\.factor|transaction\.state\.log\.replication\.factor)=.*$",
                  r"\1=1", text, flags=re.M)
    text = re.sub(r"^(min\.insync\.replicas|transaction\.state\.log\.min\.isr)=.*$", r"\1=1", text, flags=re.M)
    drain._spawn("secured-broker-0", "broker", text, d)
    for port in ports.values():
        drain._wait_port(port)


def security_user_secret_and_acls():
    """KafkaUsers `admin` (super user, no ACLs) and `alice` (topic orders, groups orders-*): the operator
    sets their SCRAM credentials over its mutual-TLS listener and writes each password and
    sasl.jaas.config into a Secret; kafka-acls, run as admin, lists exactly alice's spec."""
    kafka_user("admin")
    kafka_user("alice", [
        {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read", "Write", "Describe"]},
        {"resource": {"type": "group", "name": "orders-", "patternType": "prefix"}, "operations": ["Read"]},
    ])
    for name in ("admin", "alice"):
        u = user_ready(name, timeout=90)
        s = secret(name)
        h.check(s and len(s["password"]) == 32, f"Secret {name}: {s and sorted(s)}")
        h.check(f'username="{name}" password="{s["password"]}";' in s["sasl.jaas.config"], s["sasl.jaas.config"])
    h.check(u["status"].get("acls") == 4, f"alice's status {u['status']}")
    listed = kafka_acls("--list", "--principal", "User:alice")
    for expected in ("ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)",
                     "ResourcePattern(resourceType=GROUP, name=orders-, patternType=PREFIXED)",
                     "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)",
                     "(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)",
                     "(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)"):
        h.check(expected in listed, f"kafka-acls --list lacks {expected}:\n{listed}")
    h.check(listed.count("principal=User:alice") == 4, f"alice has other ACLs than the spec's:\n{listed}")


def security_client_produces_and_consumes():
    """confluent-kafka with alice's password over TLS (trusting the cluster CA) writes to and reads from `orders`
    (created by a KafkaTopic through the operator's listener); alice is refused a topic her ACLs do not
    name, and a wrong password is refused."""
    doc = {"apiVersion": "oxka.io/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": "orders", "namespace": NS},
           "spec": {"cluster": NAME, "partitions": 1, "replicationFactor": 1}}
    h.sh("kubectl", "apply", "-f", "-", input=json.dumps(doc))
    h.wait_for("KafkaTopic orders Ready",
               lambda: h.condition(h.get("kafkatopic", "orders", NS), "Ready").get("status") == "True", 60)
    password = secret("alice")["password"]
    r = client("alice", password, "orders", 20)
    h.check(r.returncode == 0 and r.stdout.split() == [f"r{i}" for i in range(20)],
            f"alice's round trip over SASL_SSL: {r.stdout} {r.stderr[-1500:]}")
    r = client("alice", password, "payments", 1)
    h.check(r.returncode != 0 and "AUTHORIZATION" in r.stdout.upper(), f"alice wrote to payments: {r.stdout}")
    r = client("alice", password + "x", "orders", 1, timeout_ms=5000)
    h.check(r.returncode != 0 and "Authentication failed" in r.stdout + r.stderr, f"a wrong password was accepted: {r.stdout}")


def security_user_deletion_removes_acls_and_credential():
    """Deleting KafkaUser alice: the finalizer deletes her ACLs (kafka-acls lists none) and her SCRAM
    credential (her old password no longer logs in); her Secret goes with her."""
    password = secret("alice")["password"]
    h.sh("kubectl", "delete", "kafkauser", "alice", "-n", NS, "--wait=true", "--timeout=60s")
    listed = kafka_acls("--list", "--principal", "User:alice")
    h.check("principal=User:alice" not in listed, f"alice's ACLs remain:\n{listed}")
    r = client("alice", password, "orders", 1, timeout_ms=5000)
    h.check(r.returncode != 0 and "Authentication failed" in r.stdout + r.stderr, f"alice still logs in: {r.stdout}")
    h.wait_for("Secret alice to be garbage-collected", lambda: secret("alice") is None, 60)
    h.sh("kubectl", "delete", "kafkatopic", "orders", "-n", NS, "--wait=true", "--timeout=60s")
    h.sh("kubectl", "delete", "kafkauser", "admin", "-n", NS, "--wait=true", "--timeout=60s")
    h.sh("kubectl", "delete", "kafkacluster", NAME, "-n", NS, "--wait=true", "--timeout=60s")


SCENARIOS = [
    security_certificates_and_rendered_config, security_broker_runs_the_rendered_config,
    security_user_secret_and_acls, security_client_produces_and_consumes,
    security_user_deletion_removes_acls_and_credential,
]
