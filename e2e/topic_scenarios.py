"""KafkaTopic scenarios, run by e2e/scenarios.py after the KafkaCluster ones (same API server, same
operator process, the helpers of harness.py).

The operator's Kafka admin requests go to a real oxka broker on loopback (the operator's
--kafka-bootstrap-template points there), and what the topic looks like in Kafka is read with
clients no one here wrote: kcat (librdkafka) for partitions and Apache Kafka's kafka-configs for
topic configs. The broker auto-creates `orders` when it starts: that topic is created outside any
KafkaTopic and must be left alone throughout.
"""

import json
import os
import re

import harness as h

NS = "topics"
CLUSTER = "tc"


def bootstrap():
    return f"127.0.0.1:{h.ARGS.kafka_port}"


def kafka_partitions():
    """Partition count of every topic, from kcat's metadata listing."""
    out = h.sh("kcat", "-b", bootstrap(), "-L", "-J", "-m", "10").stdout
    return {t["topic"]: len(t["partitions"]) for t in json.loads(out)["topics"]}


def kafka_configs(topic):
    """Configs set on the topic itself, from Apache Kafka's kafka-configs --describe."""
    tool = os.path.join(h.ARGS.root, "scripts", "kafka")
    out = h.sh(tool, "4", "configs", "--bootstrap-server", bootstrap(), "--entity-type", "topics",
               "--entity-name", topic, "--describe").stdout
    return dict(re.findall(r"^\s+([a-z0-9.]+)=(\S*) sensitive=", out, re.M))


def alter_outside(topic, config):
    tool = os.path.join(h.ARGS.root, "scripts", "kafka")
    h.sh(tool, "4", "configs", "--bootstrap-server", bootstrap(), "--entity-type", "topics",
         "--entity-name", topic, "--alter", "--add-config", config)


def kt(name):
    return h.get("kafkatopic", name, NS)


def apply_topic(name, spec):
    doc = {"apiVersion": "oxka.io/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": name, "namespace": NS},
           "spec": dict({"cluster": CLUSTER}, **spec)}
    return h.sh("kubectl", "apply", "-f", "-", input=json.dumps(doc), check=False)


def patch_topic(name, patch):
    h.sh("kubectl", "patch", "kafkatopic", name, "-n", NS, "--type", "merge", "-p", json.dumps(patch))


def ready_condition(name, status=None, reason=None, timeout=60):
    """Waits until the Ready condition describes the current generation (with the status or reason)."""
    def done():
        t = kt(name)
        c = h.condition(t, "Ready")
        if not c or t["status"].get("observedGeneration") != t["metadata"]["generation"]:
            return None
        if (status and c["status"] != status) or (reason and c["reason"] != reason):
            return None
        return t
    return h.wait_for(f"KafkaTopic {name} Ready={status or '*'} reason={reason or '*'}", done, timeout)


def topic_setup():
    """The CRD is installed by the operator, CEL refuses bad specs, and a cluster and a broker exist."""
    h.sh("kubectl", "wait", "--for=condition=Established", "crd/kafkatopics.oxka.io", "--timeout=30s")
    h.sh("kubectl", "create", "namespace", NS)
    cluster = open(f"{h.ARGS.root}/examples/minimal.yaml").read().replace("name: demo", f"name: {CLUSTER}")
    h.sh("kubectl", "apply", "-n", NS, "-f", "-", input=cluster)
    r = apply_topic("bad", {"partitions": 0})
    h.check(r.returncode != 0 and "spec.partitions must be at least 1" in r.stderr, f"partitions 0 accepted: {r.stderr}")
    while h.BROKERS:
        h.stop_operator(h.BROKERS.pop())
    h.start_oxka_broker(0)
    h.check("orders" in kafka_partitions(), "the broker did not auto-create orders")


def topic_created():
    r = apply_topic("events", {"partitions": 2, "replicationFactor": 1, "config": {"retention.ms": "3600000"}})
    h.check(r.returncode == 0, r.stderr)
    t = ready_condition("events", "True")
    st = t["status"]
    h.check((st.get("partitions"), st.get("replicationFactor")) == (2, 1), f"status {st}")
    h.check(len(st.get("topicId", "")) == 22, f"no Kafka topic id in status: {st}")
    h.check(st.get("managedConfigKeys") == ["retention.ms"], f"managed keys {st.get('managedConfigKeys')}")
    h.check("oxka.io/topic" in t["metadata"].get("finalizers", []), "no finalizer on the KafkaTopic")
    h.check(kafka_partitions().get("events") == 2, f"kcat sees {kafka_partitions()}")
    h.check(kafka_configs("events").get("retention.ms") == "3600000", f"configs {kafka_configs('events')}")
    r = h.sh("kubectl", "patch", "kafkatopic", "events", "-n", NS, "--type", "merge", "-p",
             '{"spec":{"topicName":"renamed"}}', check=False)
    h.check(r.returncode != 0 and "spec.topicName cannot change" in r.stderr, f"rename accepted: {r.stderr}")


def topic_partitions_grow_never_shrink():
    patch_topic("events", {"spec": {"partitions": 4}})
    ready_condition("events", "True")
    h.check(kafka_partitions().get("events") == 4, f"kcat sees {kafka_partitions()}")
    patch_topic("events", {"spec": {"partitions": 3}})
    t = ready_condition("events", "False", "NotSupported")
    h.check("Kafka cannot remove partitions" in h.condition(t, "Ready")["message"], h.condition(t, "Ready")["message"])
    h.check(kafka_partitions().get("events") == 4, "partitions changed after a refused decrease")
    patch_topic("events", {"spec": {"partitions": 4}})
    ready_condition("events", "True")


def topic_configs_follow_the_spec():
    """retention.ms changes; a key set by someone else stays; a key leaving the spec is deleted."""
    alter_outside("events", "segment.ms=600000")
    patch_topic("events", {"spec": {"config": {"retention.ms": "7200000", "cleanup.policy": "delete"}}})
    ready_condition("events", "True")
    configs = h.wait_for("retention.ms=7200000 in Kafka",
                         lambda: (lambda c: c if c.get("retention.ms") == "7200000" else None)(kafka_configs("events")))
    h.check(configs.get("segment.ms") == "600000", f"a config set outside the KafkaTopic was touched: {configs}")
    # A merge patch merges maps: null removes the key from the spec.
    patch_topic("events", {"spec": {"config": {"retention.ms": None}}})
    ready_condition("events", "True")
    configs = kafka_configs("events")
    h.check("retention.ms" not in configs, f"retention.ms left the spec but is still set: {configs}")
    h.check(configs.get("segment.ms") == "600000" and configs.get("cleanup.policy") == "delete", f"configs {configs}")
    h.check(kt("events")["status"]["managedConfigKeys"] == ["cleanup.policy"], "managed keys not updated")


def topic_drift_is_corrected():
    alter_outside("events", "cleanup.policy=compact")
    t = h.wait_for("the drift to be reported",
                   lambda: (lambda t: t if "cleanup.policy" in t["status"].get("lastDrift", "") else None)(kt("events")),
                   60)
    h.check("changed to compact" in t["status"]["lastDrift"], t["status"]["lastDrift"])
    h.wait_for("cleanup.policy back to delete", lambda: kafka_configs("events").get("cleanup.policy") == "delete", 60)


def topic_refusals_show_kafkas_error():
    apply_topic("wide", {"partitions": 1, "replicationFactor": 3})
    t = ready_condition("wide", "False", "InvalidReplicationFactor")
    message = h.condition(t, "Ready")["message"]
    h.check("INVALID_REPLICATION_FACTOR (38)" in message, message)
    h.check("wide" not in kafka_partitions(), "a refused topic exists in Kafka")
    apply_topic("badconfig", {"partitions": 1, "config": {"retention.ms": "not-a-number"}})
    t = ready_condition("badconfig", "False", "InvalidConfig")
    h.check("INVALID_CONFIG (40)" in h.condition(t, "Ready")["message"], h.condition(t, "Ready")["message"])
    # Fixing the spec makes the topic.
    patch_topic("wide", {"spec": {"replicationFactor": 1}})
    ready_condition("wide", "True")
    patch_topic("wide", {"spec": {"replicationFactor": 2}})
    t = ready_condition("wide", "False", "NotSupported")
    h.check("partition reassignment" in h.condition(t, "Ready")["message"], h.condition(t, "Ready")["message"])


def topic_conflict_changes_nothing():
    apply_topic("events-twin", {"topicName": "events", "partitions": 9})
    t = ready_condition("events-twin", "False", "TopicConflict")
    h.check("KafkaTopic events already manages" in h.condition(t, "Ready")["message"], h.condition(t, "Ready")["message"])
    h.check(kafka_partitions().get("events") == 4, "the conflicting KafkaTopic changed the topic")
    h.sh("kubectl", "delete", "kafkatopic", "events-twin", "-n", NS, "--timeout=30s")
    h.check("events" in kafka_partitions(), "deleting the conflicting KafkaTopic deleted the topic")


def topic_deleted():
    before = kafka_partitions()
    h.sh("kubectl", "delete", "kafkatopic", "events", "wide", "badconfig", "-n", NS, "--timeout=30s")
    after = h.wait_for("events and wide to leave Kafka",
                       lambda: (lambda p: p if not {"events", "wide"} & set(p) else None)(kafka_partitions()))
    h.check(after.get("orders") == before.get("orders"), f"orders (made outside) changed: {before} -> {after}")


def topic_outside_untouched():
    """`orders` was made by the broker, not by a KafkaTopic: after everything above it is as it was."""
    h.check(kafka_partitions().get("orders") == 1, f"orders: {kafka_partitions()}")
    h.check(kafka_configs("orders") == {}, f"configs appeared on orders: {kafka_configs('orders')}")


def topic_finalizer_dropped_when_the_cluster_is_gone():
    cluster = open(f"{h.ARGS.root}/examples/minimal.yaml").read().replace("name: demo", "name: short-lived")
    h.sh("kubectl", "apply", "-n", NS, "-f", "-", input=cluster)
    doc = {"apiVersion": "oxka.io/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": "orphan", "namespace": NS},
           "spec": {"cluster": "short-lived", "partitions": 1}}
    h.sh("kubectl", "apply", "-f", "-", input=json.dumps(doc))
    ready_condition("orphan", "True")
    h.sh("kubectl", "delete", "kafkacluster", "short-lived", "-n", NS)
    # Kafka still answers here (the operator's bootstrap points at the local broker), but the cluster
    # object is gone: the KafkaTopic must not wait for anything.
    h.sh("kubectl", "delete", "kafkatopic", "orphan", "-n", NS, "--timeout=20s")
    h.check("orphan" in kafka_partitions(), "the topic of a KafkaCluster that is gone was deleted in Kafka")
    doc["metadata"]["name"], doc["spec"]["cluster"] = "nowhere", "no-such-cluster"
    h.sh("kubectl", "apply", "-f", "-", input=json.dumps(doc))
    ready_condition("nowhere", "False", "ClusterNotFound")
    h.sh("kubectl", "delete", "kafkatopic", "nowhere", "-n", NS, "--timeout=20s")


def topic_metrics():
    code, body = h.http_get(h.OPERATOR[1] + "/metrics")
    h.check(code == 200, f"/metrics answered {code}")
    for metric in ("oxka_operator_topic_reconciliations_total [1-9]", "oxka_operator_topic_reconcile_errors_total [1-9]",
                   "oxka_operator_topic_drift_corrections_total [1-9]"):
        h.check(re.search(metric, body), f"/metrics lacks {metric}")
    reasons = {e["reason"] for e in h.kubectl_json("get", "events", "-n", NS)["items"]}
    for wanted in ("Created", "Altered", "DriftDetected", "Deleted", "InvalidReplicationFactor", "NotSupported"):
        h.check(wanted in reasons, f"no {wanted} event (have {sorted(reasons)})")


SCENARIOS = [
    topic_setup, topic_created, topic_partitions_grow_never_shrink, topic_configs_follow_the_spec,
    topic_drift_is_corrected, topic_refusals_show_kafkas_error, topic_conflict_changes_nothing, topic_deleted,
    topic_outside_untouched, topic_finalizer_dropped_when_the_cluster_is_gone, topic_metrics,
]
