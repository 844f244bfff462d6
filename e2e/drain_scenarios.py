"""Scale-down scenarios where the operator drains brokers itself, against a real 3-broker oxka cluster
on loopback (one `oxka coordinator`, three `oxka broker`s; broker 0 listens on the port the operator's
--kafka-bootstrap-template points at). Records are written and read back with kcat (librdkafka).

Uses e2e/harness.py's helpers and globals (ARGS, BROKERS, ...), as scenarios.py does.
"""

import json
import os
import re
import socket
import subprocess
import tempfile
import time

import harness as s

TOPIC = "drained"
RECORDS = 300


def _wait_port(port, timeout=30):
    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return True
        except OSError:
            return None
    s.wait_for(f"127.0.0.1:{port} to accept connections", up, timeout)


def _spawn(name, role, properties, d):
    path = os.path.join(d, f"{name}.properties")
    with open(path, "w") as f:
        f.write(properties)
    log = open(os.path.join(s.ARGS.work, "logs", f"oxka-{name}.log"), "w")
    env = dict(os.environ, KAFKA_HEAP_OPTS="-Xmx128m", NO_COLOR="1")
    p = subprocess.Popen([s.ARGS.oxka, role, path], stdout=log, stderr=subprocess.STDOUT, env=env)
    s.BROKERS.append(p)  # stopped by harness.main at the end, like the other oxka processes
    return p


def kcat(*args, input=None, check=True):
    r = subprocess.run(["kcat", "-b", f"127.0.0.1:{s.ARGS.kafka_port}", *args], input=input,
                       capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise s.Failed(f"kcat {' '.join(args)} failed: {r.stderr}")
    return r


def kafka_configs(entity_type, name):
    """Configs set on one topic or broker, from Apache Kafka's kafka-configs --describe."""
    tool = os.path.join(s.ARGS.root, "scripts", "kafka")
    out = subprocess.run([tool, "4", "configs", "--bootstrap-server", f"127.0.0.1:{s.ARGS.kafka_port}",
                          "--entity-type", entity_type, "--entity-name", name, "--describe"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise s.Failed(f"kafka-configs --describe {entity_type} {name} failed: {out.stderr}")
    return dict(re.findall(r"^\s+([a-z0-9.]+)=(\S*) sensitive=", out.stdout, re.M))


def placement(name=TOPIC):
    """{partition: [replicas]} of a topic, and the broker ids, as Metadata (kcat -L -J) reports them."""
    m = json.loads(kcat("-L", "-J", "-t", name).stdout)
    topic = next((t for t in m["topics"] if t["topic"] == name), None)
    parts = {p["partition"]: [r["id"] for r in p["replicas"]] for p in (topic or {}).get("partitions", [])}
    return parts, sorted(b["id"] for b in m["brokers"])


def start_three_broker_cluster():
    """One coordinator and brokers 0, 1, 2; new topics get 6 partitions with replication factor 2."""
    while s.BROKERS:
        s.stop_operator(s.BROKERS.pop())
    d = tempfile.mkdtemp(dir=s.ARGS.work)
    zk = os.path.join(d, "zk")
    os.makedirs(zk)
    with open(os.path.join(zk, "myid"), "w") as f:
        f.write("1\n")
    client, peer = s.free_port(), s.free_port()
    _spawn("coordinator-1", "coordinator",
           f"dataDir={zk}\nclientPort={client}\nmetrics.port={s.free_port()}\n"
           f"server.1=127.0.0.1:{peer}:{peer + 1};127.0.0.1:{client}\n"
           "raft.election.timeout.ms=500\nraft.heartbeat.interval.ms=100\nbroker.session.timeout.ms=6000\n", d)
    _wait_port(client)
    ports = {0: s.ARGS.kafka_port, 1: s.free_port(), 2: s.free_port()}
    processes = {}
    for broker_id, port in ports.items():
        processes[broker_id] = _spawn(
            f"cluster-broker-{broker_id}", "broker",
            f"broker.id={broker_id}\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={d}/broker-{broker_id}\n"
            f"metrics.port={s.free_port()}\nzookeeper.connect=127.0.0.1:{client}\nbroker.heartbeat.interval.ms=500\n"
            "num.partitions=6\ndefault.replication.factor=2\noffsets.topic.replication.factor=2\n", d)
    for port in ports.values():
        _wait_port(port)
    s.wait_for("Metadata to name brokers 0, 1, 2",
               lambda: (lambda r: r.returncode == 0 and placement()[1] == [0, 1, 2])(kcat("-L", check=False)), 30)
    return processes


def produce():
    lines = "".join(f"k{i}:v{i}\n" for i in range(RECORDS))
    kcat("-P", "-t", TOPIC, "-K:", "-X", "acks=all", input=lines)

    def spread():
        parts, _ = placement()
        return parts if len(parts) == 6 and all(len(r) == 2 for r in parts.values()) else None
    return s.wait_for(f"{TOPIC}: 6 partitions with 2 replicas each", spread, 30)


def consume(topic=TOPIC):
    r = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\n", "-X", "fetch.wait.max.ms=100")
    return sorted(line for line in r.stdout.splitlines() if line)


def scale_down_drains_brokers_first():
    """3 -> 2 brokers while broker 2 holds replicas of an RF-2 topic: the operator reassigns them
    (AlterPartitionReassignments), reports Draining, and shrinks the StatefulSet only after Metadata
    shows nothing on broker 2; every record is still readable afterwards."""
    s.settle()
    s.check(s.sts("demo-broker")["spec"]["replicas"] == 3, "demo does not start with 3 brokers")
    processes = start_three_broker_cluster()
    before = produce()
    on_two = sorted(p for p, r in before.items() if 2 in r)
    s.check(on_two, f"no partition of {TOPIC} has a replica on broker 2: the drain would prove nothing ({before})")
    written = sorted(f"k{i}:v{i}" for i in range(RECORDS))
    s.check(consume() == written, "records are not all readable before the scale-down")

    # A drain of 300 records takes well under a second: a watch records every status the operator
    # wrote, where polling could miss the Draining one.
    watch = subprocess.Popen(["kubectl", "get", "kafkacluster", "demo", "-n", s.NS, "-w", "-o", "json"],
                             stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # the watch's initial list arrives before the change
        s.patch_kc({"spec": {"brokers": {"replicas": 2}}})
        s.wait_for("the StatefulSet to shrink to 2 brokers", lambda: s.sts("demo-broker")["spec"]["replicas"] == 2, 120)
        s.wait_for("status to show 2 brokers", lambda: s.kc()["status"]["brokers"]["replicas"] == 2, 30)
        time.sleep(1)
    finally:
        watch.terminate()
        out, _ = watch.communicate(timeout=10)
    versions, decoder, i = [], json.JSONDecoder(), 0
    while i < len(out):
        if out[i].isspace():
            i += 1
            continue
        obj, i = decoder.raw_decode(out, i)
        versions.append(obj.get("status", {}))
    draining = [v for v in versions if v.get("drain")]
    s.check(draining, f"no status with status.drain among {len(versions)} versions")
    d = draining[0]
    c = next(c for c in d["conditions"] if c["type"] == "Progressing")
    s.check(c["status"] == "True" and c["reason"] == "Draining" and "draining brokers 2" in c["message"],
            f"Progressing while draining: {c}")
    # The default drain throttle was set (through the brokers' IncrementalAlterConfigs) before the
    # reassignment was submitted.
    s.check("replication throttled at 100 MiB/s per broker" in c["message"], f"no throttle while draining: {c}")
    s.check(d["drain"]["brokers"] == [2] and d["drain"]["partitionsLeft"] == len(on_two) and d["drain"].get("startedAt"),
            f"status.drain when the drain started (partitions on broker 2: {on_two}): {d['drain']}")
    s.check(all(v["brokers"]["replicas"] == 3 for v in draining),
            f"the StatefulSet shrank while draining: {[v['brokers'] for v in draining]}")
    after, brokers = placement()
    s.check(all(2 not in r and len(r) == 2 for r in after.values()),
            f"the StatefulSet shrank but Metadata still places replicas on broker 2 (or lost one): {after}")
    s.check(set(after) == set(before), f"partitions changed: {before} -> {after}")
    s.check("server-2.properties" not in s.get("configmap", "demo-broker-config")["data"], "broker 2's config is still rendered")
    s.wait_for("status.drain gone", lambda: "drain" not in s.kc()["status"], 30)
    events = s.kubectl_json("get", "events", "-n", s.NS)["items"]
    notes = {e["reason"]: e.get("note", e.get("message", "")) for e in events
             if e.get("involvedObject", {}).get("name") == "demo"}
    s.check("DrainStarted" in notes and "off brokers 2" in notes["DrainStarted"], f"DrainStarted event: {notes.get('DrainStarted')}")
    s.check("DrainFinished" in notes, f"no DrainFinished event (have {sorted(notes)})")
    # ... and removed once the brokers were empty, as Apache Kafka's kafka-configs shows.
    for entity, name in (("topics", TOPIC), ("brokers", "0"), ("brokers", "1")):
        left = {k: v for k, v in kafka_configs(entity, name).items() if "throttled" in k}
        s.check(not left, f"the drain's throttle configs are still set on {entity} {name}: {left}")

    # Broker 2's pod is gone in a real cluster: stop its process; every record is still there.
    s.stop_operator(processes[2])
    s.wait_for("every record readable from brokers 0 and 1", lambda: consume() == written or None, 60, interval=1)
    s.wait_for("Degraded=False", lambda: s.condition(s.kc(), "Degraded").get("status") == "False", 30)
    s.settle()


def scale_down_below_the_replication_factor_is_blocked():
    """2 -> 1 broker with an RF-2 topic: nothing can hold the second replica, so nothing is submitted
    and the scale-down is blocked, naming the partition, its RF and the remaining broker count."""
    before, _ = placement()
    s.patch_kc({"spec": {"brokers": {"replicas": 1}}})
    c = s.wait_for("ScaleDownBlocked", lambda: (lambda c: c if c.get("reason") == "ScaleDownBlocked" else None)(
        s.condition(s.kc(), "Degraded")), 40)
    s.check("not removing brokers 1: partition drained-" in c["message"]
            and "has replication factor 2 but only 1 live brokers would remain (0)" in c["message"], c["message"])
    time.sleep(2)
    s.check(s.sts("demo-broker")["spec"]["replicas"] == 2, "broker 1 was removed although its replicas cannot move")
    s.check(placement()[0] == before, "a reassignment was submitted although it cannot complete")
    s.check("drain" not in s.kc()["status"], f"status.drain while blocked: {s.kc()['status'].get('drain')}")
    s.patch_kc({"spec": {"brokers": {"replicas": 2}}})
    s.wait_for("Degraded=False", lambda: s.condition(s.kc(), "Degraded").get("status") == "False", 30)
    s.settle()


def leaders(name):
    """{partition: leader} of a topic from Metadata."""
    m = json.loads(kcat("-L", "-J", "-t", name).stdout)
    topic = next(t for t in m["topics"] if t["topic"] == name)
    return {p["partition"]: p["leader"] for p in topic["partitions"]}


def rebalance_annotation_spreads_replicas_and_leaders():
    """A topic whose 6 partitions (RF 2) all live on brokers 0 and 1, all led by broker 0, and a third
    broker that holds nothing else (as after a scale-up): `oxka.io/rebalance=spread` makes the operator
    move replicas (AlterPartitionReassignments) and then leaders (ElectLeaders) until every broker holds
    and leads as many partitions as the others, within one; it removes the annotation and records the
    Events; every record is still readable."""
    spread = "spread"  # not TOPIC: the Metadata requests above auto-create that one
    s.patch_kc({"spec": {"brokers": {"replicas": 3}}})
    s.wait_for("the StatefulSet at 3 brokers", lambda: s.sts("demo-broker")["spec"]["replicas"] == 3, 60)
    start_three_broker_cluster()
    kcat("-L")  # the cluster answers
    tool = os.path.join(s.ARGS.root, "scripts", "kafka")
    assignment = ",".join(["0:1"] * 6)
    created = subprocess.run([tool, "4", "topics", "--bootstrap-server", f"127.0.0.1:{s.ARGS.kafka_port}", "--create",
                              "--topic", spread, "--replica-assignment", assignment],
                             capture_output=True, text=True, timeout=120)
    s.check(created.returncode == 0, f"kafka-topics --create --replica-assignment failed: {created.stderr}")
    lines = "".join(f"k{i}:v{i}\n" for i in range(RECORDS))
    kcat("-P", "-t", spread, "-K:", "-X", "acks=all", input=lines)
    written = sorted(f"k{i}:v{i}" for i in range(RECORDS))
    before, _ = placement(spread)
    s.check(all(r == [0, 1] for r in before.values()) and set(leaders(spread).values()) == {0},
            f"the topic does not start on brokers 0 and 1 led by 0: {before} {leaders(spread)}")

    s.sh("kubectl", "annotate", "kafkacluster", "demo", "-n", s.NS, "oxka.io/rebalance=spread")
    s.wait_for("the operator to remove the annotation when done",
               lambda: "oxka.io/rebalance" not in s.kc()["metadata"].get("annotations", {}), 120)
    # The balance is over every partition of the cluster (the Metadata requests above auto-created
    # TOPIC too): replicas and leaders per broker within one of each other.
    m = json.loads(kcat("-L", "-J").stdout)
    after = {(t["topic"], p["partition"]): [r["id"] for r in p["replicas"]] for t in m["topics"] for p in t["partitions"]}
    led = {(t["topic"], p["partition"]): p["leader"] for t in m["topics"] for p in t["partitions"]}
    per_broker = {b: sum(b in r for r in after.values()) for b in (0, 1, 2)}
    s.check(max(per_broker.values()) - min(per_broker.values()) <= 1
            and all(len(set(r)) == len(r) for r in after.values())
            and all(len(after[(spread, p)]) == 2 for p in range(6)),
            f"replicas not spread (replicas per broker {per_broker}): {after}")
    per_leader = {b: sum(v == b for v in led.values()) for b in (0, 1, 2)}
    s.check(max(per_leader.values()) - min(per_leader.values()) <= 1,
            f"leaders not spread ({per_leader}): {led}, replicas {after}")
    s.check(all(led[k] == r[0] for k, r in after.items()), f"leaders are not the preferred replicas: {led} {after}")
    s.check(any(2 in after[(spread, p)] for p in range(6)), f"nothing of {spread} moved to broker 2: {after}")
    events = s.kubectl_json("get", "events", "-n", s.NS)["items"]
    notes = {e["reason"]: e.get("note", e.get("message", "")) for e in events
             if e.get("involvedObject", {}).get("name") == "demo"}
    s.check("RebalanceStarted" in notes and "reassigning" in notes["RebalanceStarted"],
            f"RebalanceStarted event: {notes.get('RebalanceStarted')}")
    s.check("RebalanceFinished" in notes and "leaders moved" in notes["RebalanceFinished"],
            f"RebalanceFinished event: {notes.get('RebalanceFinished')}")
    for entity, name in (("topics", spread), ("brokers", "2")):
        left = {k: v for k, v in kafka_configs(entity, name).items() if "throttled" in k}
        s.check(not left, f"the rebalance's throttle configs are still set on {entity} {name}: {left}")
    s.wait_for("every record readable", lambda: consume(spread) == written or None, 60, interval=1)
    s.wait_for("Progressing no longer Rebalancing",
               lambda: s.condition(s.kc(), "Progressing").get("reason") != "Rebalancing", 30)
    s.settle()


SCENARIOS = [scale_down_drains_brokers_first, scale_down_below_the_replication_factor_is_blocked,
             rebalance_annotation_spreads_replicas_and_leaders]
