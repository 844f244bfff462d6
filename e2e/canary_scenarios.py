"""The operator's built-in canary against a real 3-broker oxka cluster on loopback (one `oxka
coordinator`, three `oxka broker`s, started by drain_scenarios.start_three_broker_cluster; broker 0
listens where the operator's --kafka-bootstrap-template points). A KafkaCluster `canary` with
`spec.canary.enabled` makes the operator produce and consume on `__oxka_canary`; what the topic looks
like is read with clients no one here wrote (kcat for partitions and replicas, Apache Kafka's
kafka-configs for min.insync.replicas), and the canary's own figures from status and /metrics.

Uses e2e/harness.py's helpers and globals (ARGS, BROKERS, OPERATOR, ...), as scenarios.py does.
"""

import json
import os
import re
import subprocess
import time

import drain_scenarios as drain
import harness as h
import topic_scenarios

NAME = "canary"
TOPIC = "__oxka_canary"
LOST_AFTER = 20
CLUSTER = None  # {broker id: Popen} of the oxka processes these scenarios run


def canary():
    return (h.kc(NAME) or {}).get("status", {}).get("canary") or {}


def layout():
    """{partition: (leader, [replicas])} of the canary topic, from kcat's metadata listing."""
    m = json.loads(h.sh("kcat", "-b", f"127.0.0.1:{h.ARGS.kafka_port}", "-L", "-J", "-t", TOPIC).stdout)
    topic = next((t for t in m["topics"] if t["topic"] == TOPIC), {})
    return {p["partition"]: (p["leader"], sorted(r["id"] for r in p["replicas"])) for p in topic.get("partitions", [])}


def canary_series(body):
    """{series name with labels: value} of this cluster's oxka_canary_* lines on /metrics."""
    found = {}
    for line in body.splitlines():
        if line.startswith("oxka_canary_") and f'cluster="{NAME}"' in line:
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def metric(series, name):
    return next((v for k, v in series.items() if k.startswith(name + "{")), None)


def wait_settled(label, timeout=90):
    """Waits until every acknowledged record was read back and none is lost; returns status.canary."""
    def settled():
        c = canary()
        if c.get("lost", 0) or c.get("duplicated", 0):
            raise h.Failed(f"the canary reports loss or duplicates: {c}")
        return c if c.get("acknowledged") and c.get("consumed") == c.get("acknowledged") else None
    return h.wait_for(label, settled, timeout, interval=1)


def canary_topic_and_counts():
    """spec.canary.enabled on a 3-broker cluster: the operator creates __oxka_canary with one partition
    per broker, RF 3 and min.insync.replicas 2, and status.canary and /metrics count records that are
    produced, acknowledged and read back, none lost or duplicated."""
    global CLUSTER
    CLUSTER = drain.start_three_broker_cluster()
    doc = {"apiVersion": "oxka.io/v1alpha1", "kind": "KafkaCluster", "metadata": {"name": NAME, "namespace": h.NS},
           "spec": {"brokers": {"replicas": 3},
                    "canary": {"enabled": True, "intervalSeconds": 1, "lostAfterSeconds": LOST_AFTER}}}
    h.sh("kubectl", "apply", "-f", "-", input=json.dumps(doc))
    h.settle(NAME)

    parts = h.wait_for(f"{TOPIC} with 3 partitions", lambda: (lambda p: p if len(p) == 3 else None)(layout()), 60)
    h.check(all(replicas == [0, 1, 2] and leader in (0, 1, 2) for leader, replicas in parts.values()),
            f"{TOPIC} partitions must each have replicas 0, 1, 2 and a live leader: {parts}")
    configs = topic_scenarios.kafka_configs(TOPIC)
    h.check(configs.get("min.insync.replicas") == "2", f"{TOPIC} min.insync.replicas (kafka-configs): {configs}")

    first = h.wait_for("status.canary to count acknowledged records",
                       lambda: (lambda c: c if c.get("acknowledged", 0) >= 3 else None)(canary()), 60, interval=1)
    h.check(first["topic"] == TOPIC, f"status.canary.topic: {first}")
    later = h.wait_for("status.canary counts to grow",
                       lambda: (lambda c: c if c.get("produced", 0) >= first["produced"] + 5 else None)(canary()),
                       60, interval=1)
    h.check(later["acknowledged"] > first["acknowledged"], f"acknowledged did not grow: {first} -> {later}")
    c = wait_settled("every acknowledged canary record to be read back")
    h.check(c.get("failed", 0) == 0 and "lastError" not in c, f"the canary reports a problem: {c}")
    h.check(c.get("latencyP50Ms") is not None and c.get("latencyP99Ms") is not None, f"no latency in status: {c}")
    loss = h.condition(h.kc(NAME), "DataLoss")
    h.check(loss.get("status") == "False" and loss.get("reason") == "NoDataLoss", f"DataLoss condition: {loss}")

    # What kcat reads from the topic: at least every acknowledged record, in the canary's format.
    r = h.sh("kcat", "-b", f"127.0.0.1:{h.ARGS.kafka_port}", "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q",
             "-f", "%s\n", "-X", "fetch.wait.max.ms=100")
    values = [v for v in r.stdout.splitlines() if v]
    h.check(len(values) >= c["acknowledged"] and all(re.fullmatch(r"[0-9a-f]+ \d+ \d+", v) for v in values),
            f"kcat read {len(values)} records of {TOPIC} (acknowledged {c['acknowledged']}): {values[:3]}")

    _, url = h.OPERATOR
    def served():
        series = canary_series(h.http_get(url + "/metrics")[1])
        wanted = ["oxka_canary_records_produced_total", "oxka_canary_records_acknowledged_total",
                  "oxka_canary_records_consumed_total", "oxka_canary_records_lost_total",
                  "oxka_canary_records_duplicated_total"]
        ok = all(metric(series, n) is not None for n in wanted) and any(
            'quantile="0.99"' in k for k in series if k.startswith("oxka_canary_e2e_latency_ms"))
        return series if ok and metric(series, "oxka_canary_records_acknowledged_total") > 0 else None
    series = h.wait_for("/metrics to serve the canary's series", served, 30)
    h.check(metric(series, "oxka_canary_records_lost_total") == 0, f"lost on /metrics: {series}")


def canary_loses_nothing_when_a_broker_restarts():
    """kill -9 of broker 2 (RF 3, min.insync.replicas 2), then its restart: the canary keeps producing
    through the new leaders, every acknowledged record is read back, none lost or duplicated."""
    h.check(CLUSTER, "needs canary_topic_and_counts' cluster")
    before = wait_settled("the canary to be settled before the kill")
    victim = CLUSTER[2]
    victim.kill()
    victim.wait(10)
    time.sleep(8)  # past the coordinator's broker session timeout (6 s): leaders move off broker 2
    log = open(os.path.join(h.ARGS.work, "logs", "oxka-cluster-broker-2-restarted.log"), "w")
    env = dict(os.environ, KAFKA_HEAP_OPTS="-Xmx128m", NO_COLOR="1")
    CLUSTER[2] = subprocess.Popen(victim.args, stdout=log, stderr=subprocess.STDOUT, env=env)
    h.BROKERS.append(CLUSTER[2])
    h.wait_for("broker 2 back in Metadata", lambda: drain.placement()[1] == [0, 1, 2] or None, 60, interval=1)
    after_restart = canary()["acknowledged"]
    h.wait_for("the canary to acknowledge 10 more records",
               lambda: canary().get("acknowledged", 0) >= after_restart + 10 or None, 90, interval=1)
    # Every record acknowledged around the kill has had its grace period (lostAfterSeconds).
    time.sleep(LOST_AFTER + 5)
    c = wait_settled("every acknowledged canary record to be read back after the restart")
    h.check(c["acknowledged"] > before["acknowledged"] + 10, f"the canary stalled: {before} -> {c}")
    h.check(h.condition(h.kc(NAME), "DataLoss").get("status") == "False", "DataLoss is set")
    print(f"  canary across the kill: produced {c['produced'] - before['produced']}, acknowledged "
          f"{c['acknowledged'] - before['acknowledged']}, failed {c.get('failed', 0) - before.get('failed', 0)}, "
          f"lost {c['lost']}, p99 {c.get('latencyP99Ms')} ms", flush=True)


def a_roll_records_the_canary_figures():
    """The `oxka.io/restart` annotation rolls the 6 pods of `canary` (health-gated by the real brokers'
    ISRs): when it ends, status.lastRoll has its start, end, 6 pods restarted and the canary's figures
    during it (complete, nothing lost), and a RollFinished Event says the same."""
    h.check(CLUSTER, "needs canary_topic_and_counts' cluster")
    h.sh("kubectl", "annotate", "--overwrite", "kafkacluster", NAME, "-n", h.NS, "oxka.io/restart=canary-1")
    h.wait_for("the roll to start", lambda: (h.kc(NAME) or {}).get("status", {}).get("roll"), 30)
    h.settle(NAME, timeout=180)
    last = h.wait_for("status.lastRoll", lambda: h.kc(NAME)["status"].get("lastRoll"), 30)
    c = last.get("canary") or {}
    h.check(last["podsRestarted"] == 6 and last.get("startedAt") and last.get("finishedAt"), f"status.lastRoll: {last}")
    h.check(c.get("complete") and c.get("produced", 0) > 0 and c.get("lost") == 0 and c.get("duplicated") == 0,
            f"status.lastRoll.canary: {c}")
    events = h.kubectl_json("get", "events", "-n", h.NS)["items"]
    notes = [e.get("note", e.get("message", "")) for e in events
             if e.get("involvedObject", {}).get("name") == NAME and e["reason"] == "RollFinished"]
    h.check(any("6 pods restarted; canary during the roll: produced" in n for n in notes), f"RollFinished events: {notes}")
    print(f"  roll: {last['startedAt']} -> {last['finishedAt']}, canary {c}", flush=True)


def canary_stops_with_its_cluster():
    """Deleting the KafkaCluster stops its canary: its series leave /metrics."""
    h.sh("kubectl", "delete", "kafkacluster", NAME, "-n", h.NS, "--wait=false")
    _, url = h.OPERATOR
    h.wait_for("the canary's series to leave /metrics",
               lambda: not canary_series(h.http_get(url + "/metrics")[1]) or None, 60, interval=1)


SCENARIOS = [canary_topic_and_counts, canary_loses_nothing_when_a_broker_restarts, a_roll_records_the_canary_figures,
             canary_stops_with_its_cluster]
