#!/usr/bin/env python3
"""oxka on a Kubernetes cluster whose pods really run: the operator as a pod from its image, brokers and
coordinators as pods, and Apache Kafka's own tools as clients.

The suite knows only a kubeconfig and where the node's NodePorts are reachable from here; how the cluster
was made is not its business (e2e/node/run.sh: a node assembled on this machine; e2e/kind/run.sh: kind).
The images must already be on the node: oxka:VERSION, oxka-operator:VERSION, oxka-kafka-tools:4.1.1.

    e2e/pods.py --kubeconfig FILE --node-address ADDR [--only NAME ...] [--keep]

Kafka's tools run in a pod (image oxka-kafka-tools) against NAME-bootstrap, as an application in the
cluster would; the external listener is checked from this machine through the NodePorts. Every scenario
prints one line with its time and its numbers (records produced / acknowledged / consumed / lost).
Only the standard library is used.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback

ARGS = None
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "oxka-e2e"
OP_NS = "oxka-system"
RELEASE = "oxka-operator"
CLUSTER = "demo"
TOOLS_POD = "kafka-tools"
KAFKA_TOOLS_VERSION = "4.1.1"
BOOTSTRAP = f"{CLUSTER}-bootstrap:9092"
NODE_PORT_BASE = 30092
RESULTS = []

# Apache Kafka 4.x main classes behind bin/kafka-<tool>.sh.
TOOLS = {
    "broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
}


class Failed(Exception):
    pass


def version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        return re.search(r'^version = "(.*)"', f.read(), re.M).group(1)


def sh(*cmd, input=None, check=True, timeout=600):
    cmd = list(cmd)
    if cmd[0] in ("kubectl", "helm"):
        cmd[1:1] = ["--kubeconfig", ARGS.kubeconfig]
    try:
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"{' '.join(cmd)} did not finish in {timeout}s")
    if check and r.returncode != 0:
        raise Failed(f"{' '.join(cmd)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-2000:]}")
    return r


def get(kind, name, ns=NS):
    r = sh("kubectl", "get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def items(kind, ns=NS, selector=None):
    args = ["kubectl", "get", kind, "-n", ns, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return json.loads(sh(*args).stdout)["items"]


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def wait_for(what, fn, timeout=120, interval=1.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Failed as e:
            last = e
        time.sleep(interval)
    raise Failed(f"timed out after {timeout}s waiting for {what} (last: {str(last)[-500:]})")


def check(cond, message):
    if not cond:
        raise Failed(message)


def condition(obj, type_):
    return next((c for c in (obj or {}).get("status", {}).get("conditions", []) if c["type"] == type_), {})


def cluster_ready():
    k = get("kafkacluster", CLUSTER)
    ok = (k and condition(k, "Ready").get("status") == "True"
          and condition(k, "Progressing").get("status") == "False"
          and k.get("status", {}).get("observedGeneration") == k["metadata"]["generation"])
    return k if ok else None


def pods_of(component):
    return items("pods", selector=f"app.kubernetes.io/instance={CLUSTER},app.kubernetes.io/component={component}")


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


# --- Kafka's tools ----------------------------------------------------------------------------

def kafka(tool, *args, timeout=300, check=True):
    """Runs one of Kafka's tools in the tools pod (as bin/kafka-<tool>.sh would)."""
    cmd = ["kubectl", "exec", "-n", NS, TOOLS_POD, "--", "java", "-Xmx256m", "-XX:TieredStopAtLevel=1",
           "-Dlog4j2.configurationFile=/opt/kafka/log4j2.properties", "-cp", "/opt/kafka/libs/*", TOOLS[tool], *args]
    return sh(*cmd, timeout=timeout, check=check)


def host_kafka(tool, *args, timeout=300):
    """The same tool from this machine (scripts/kafka), for the external listener."""
    return sh(os.path.join(ROOT, "scripts", "kafka"), "4", tool, *args, timeout=timeout)


def perf(topic, records, bootstrap=BOOTSTRAP, runner=kafka):
    """producer-perf-test then consumer-perf-test of RECORDS records: returns the numbers."""
    out = runner("producer-perf-test", "--topic", topic, "--num-records", str(records), "--record-size", "100",
                 "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
                 "linger.ms=5", "batch.size=65536").stdout
    m = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", out)
    check(m, f"producer-perf-test printed no summary: {out[-500:]}")
    acked = int(m[-1][0])
    out = runner("consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic, "--messages",
                 str(records), "--timeout", "60000").stdout
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    row = [line for line in out.splitlines() if re.match(r"^\d{4}-", line)]
    check(row, f"consumer-perf-test printed no result: {out[-500:]}")
    consumed = int(row[-1].split(",")[4].strip())
    return {"produced": records, "acknowledged": acked, "consumed": consumed, "lost": max(0, acked - consumed),
            "produce_rate": float(m[-1][1])}


class Load:
    """A producer (Kafka's VerifiableProducer: every acknowledged value is printed) and a consumer group
    member (console consumer) running while something happens to the cluster. stop() waits for both and
    then reads the topic from the start: every acknowledged value must be there."""

    def __init__(self, topic, records=30000, throughput=1000, retries=False):
        """With `retries`, the producer runs with the Java client's own defaults (retries=MAX_INT within
        delivery.timeout.ms=120000, idempotence) as an application would; otherwise with VerifiableProducer's
        hard-coded retries=0, where every retriable error of one request (a connection closed by a broker
        that shuts down, NOT_LEADER_OR_FOLLOWER after leadership moved) is reported as a failed send."""
        self.topic, self.records = topic, records
        config = "/dev/null"
        if retries:
            config = f"/tmp/{topic}-producer.properties"
            sh("kubectl", "exec", "-i", "-n", NS, TOOLS_POD, "--", "sh", "-c", f"cat > {config}",
               input="retries=2147483647\ndelivery.timeout.ms=120000\nenable.idempotence=true\n")
        kafka("topics", "--bootstrap-server", BOOTSTRAP, "--create", "--topic", topic, "--partitions", "6",
              "--replication-factor", "3")
        java = ["kubectl", "--kubeconfig", ARGS.kubeconfig, "exec", "-n", NS, TOOLS_POD, "--", "java", "-Xmx256m",
                "-Dlog4j2.configurationFile=/opt/kafka/log4j2.properties", "-cp", "/opt/kafka/libs/*"]
        self.producer = subprocess.Popen(
            java + [TOOLS["verifiable-producer"], "--bootstrap-server", BOOTSTRAP, "--topic", topic,
                    "--max-messages", str(records), "--throughput", str(throughput), "--acks", "-1",
                    "--producer.config", config],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.acked, self.errors, self.consumed, self.error_kinds = set(), 0, 0, {}
        self.threads = [threading.Thread(target=self._read_producer, daemon=True)]
        self.threads[0].start()
        # The consumer joins once records flow, so that it never waits on a topic its brokers do not know
        # yet (one run where it joined at once read 0 records during the roll; the cause is not proven).
        wait_for("the first acknowledged record", lambda: self.acked or self.producer.poll() is not None, 60, 0.5)
        self.consumer = subprocess.Popen(
            java + [TOOLS["console-consumer"], "--bootstrap-server", BOOTSTRAP, "--topic", topic, "--group",
                    f"{topic}-group", "--from-beginning", "--max-messages", str(records), "--timeout-ms", "90000"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.threads.append(threading.Thread(target=self._read_consumer, daemon=True))
        self.threads[1].start()

    def _read_producer(self):
        for line in self.producer.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("name") == "producer_send_success":
                self.acked.add(e["value"])
            elif e.get("name") == "producer_send_error":
                self.errors += 1
                kind = f"{e.get('exception', '')}: {e.get('message', '')}"[:160]
                self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def _read_consumer(self):
        for _ in self.consumer.stdout:
            self.consumed += 1

    def running(self):
        return self.producer.poll() is None

    def abort(self):
        """Stops following the clients (a failed scenario); the tools in the pod finish on their own."""
        for p in (self.producer, self.consumer):
            if p.poll() is None:
                p.kill()

    def stop(self, timeout=600):
        try:
            self.producer.wait(timeout)
        except subprocess.TimeoutExpired:
            self.producer.kill()
            raise Failed(f"the producer did not finish {self.records} records in {timeout}s")
        try:
            self.consumer.wait(150)  # exits after all records, or 90 s after the last one it saw
        except subprocess.TimeoutExpired:
            self.consumer.kill()
        for t in self.threads:
            t.join(10)
        out = kafka("console-consumer", "--bootstrap-server", BOOTSTRAP, "--topic", self.topic, "--from-beginning",
                    "--timeout-ms", "20000", timeout=600, check=False).stdout
        stored = set(out.split())
        lost = len(self.acked - stored)
        if self.error_kinds:
            print(f"     send errors by kind: {self.error_kinds}", flush=True)
        numbers = {"produced": self.records, "acknowledged": len(self.acked), "send_errors": self.errors,
                   "consumed": self.consumed, "stored": len(stored), "lost": lost}
        check(lost == 0, f"{lost} acknowledged records are missing: {numbers}")
        check(len(self.acked) > 0, f"nothing was acknowledged: {numbers}")
        return numbers


def wait_tools_pod():
    wait_for("the kafka-tools pod", lambda: (lambda p: p and ready(p))(get("pod", TOOLS_POD)), 180)


# --- scenarios --------------------------------------------------------------------------------

def operator_pod():
    """helm install: the operator runs as a pod of the oxka-operator image and takes its Lease."""
    sh("helm", "install", RELEASE, f"{ROOT}/charts/oxka-operator", "-n", OP_NS, "--create-namespace",
       "--wait", "--timeout", "180s", timeout=240)
    pods = items("pods", OP_NS, "app.kubernetes.io/name=oxka-operator")
    check(len(pods) == 1 and ready(pods[0]), "the operator pod is not Ready")
    image = pods[0]["spec"]["containers"][0]["image"]
    check(image == f"oxka-operator:{version()}", f"operator image {image}")
    lease = wait_for("the leader Lease", lambda: get("lease", f"{RELEASE}-leader", OP_NS), 60)
    check(lease["spec"]["holderIdentity"] == pods[0]["metadata"]["name"], f"lease holder {lease['spec']}")
    return {"image": image}


def minimal_ready():
    """kubectl apply -f examples/minimal.yaml: a quorum forms, brokers register, the cluster goes Ready."""
    sh("kubectl", "create", "namespace", NS)
    sh("kubectl", "apply", "-n", NS, "-f", f"{ROOT}/examples/minimal.yaml")
    tools = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": TOOLS_POD, "namespace": NS},
             "spec": {"containers": [{"name": "tools", "image": f"oxka-kafka-tools:{KAFKA_TOOLS_VERSION}",
                                      "imagePullPolicy": "IfNotPresent", "command": ["sleep", "1000000"]}],
                      "terminationGracePeriodSeconds": 0}}
    sh("kubectl", "apply", "-f", "-", input=json.dumps(tools))
    t0 = time.time()
    k = wait_for("KafkaCluster demo Ready", cluster_ready, 420, 2)
    took = time.time() - t0
    pods = pods_of("broker") + pods_of("coordinator")
    check(len(pods) == 6 and all(ready(p) for p in pods), f"{len(pods)} pods, not all Ready")
    check(k["status"]["bootstrapAddress"] == f"{CLUSTER}-bootstrap.{NS}.svc:9092", k["status"]["bootstrapAddress"])
    wait_tools_pod()
    return {"ready_after_s": round(took)}


def clients_through_bootstrap():
    """Kafka's tools in a pod, through NAME-bootstrap: api-versions, topics, 100,000 records each way."""
    out = kafka("broker-api-versions", "--bootstrap-server", BOOTSTRAP).stdout
    brokers = re.findall(r"^(\S+:9092) \(id: (\d+)", out, re.M)
    want = {f"{CLUSTER}-broker-{i}.{CLUSTER}-broker-headless.{NS}.svc.cluster.local:9092" for i in range(3)}
    check({b for b, _ in brokers} == want, f"broker-api-versions listed {brokers}")
    kafka("topics", "--bootstrap-server", BOOTSTRAP, "--create", "--topic", "perf", "--partitions", "6",
          "--replication-factor", "3")
    out = kafka("topics", "--bootstrap-server", BOOTSTRAP, "--describe", "--topic", "perf").stdout
    leaders = set(re.findall(r"Leader: (\d+)", out))
    check(leaders == {"0", "1", "2"}, f"partition leaders {leaders}: {out}")
    n = perf("perf", 100_000)
    check(n["acknowledged"] == 100_000 and n["consumed"] == 100_000, f"perf test numbers {n}")
    return n


def distribution_in_broker_pod():
    """The oxka image holds the release archive's layout in /opt/oxka, its working directory: in a broker pod
    `bin/kafka-*.sh` run the native tools (links to the binary; the image has no shell) as in a Kafka image."""
    pod = f"{CLUSTER}-broker-0"

    def in_pod(*cmd, check=True):
        return sh("kubectl", "exec", "-n", NS, pod, "--", *cmd, check=check)
    out = in_pod("bin/kafka-broker-api-versions.sh", "--bootstrap-server", "localhost:9092").stdout
    brokers = set(re.findall(r"^(\S+:9092) \(id: (\d+) rack: \S+ isFenced: false\) -> \(", out, re.M))
    want = {(f"{CLUSTER}-broker-{i}.{CLUSTER}-broker-headless.{NS}.svc.cluster.local:9092", str(i)) for i in range(3)}
    check(brokers == want and "Produce(0):" in out, f"bin/kafka-broker-api-versions.sh listed {sorted(brokers)}: {out[:400]}")
    out = in_pod("bin/kafka-topics.sh", "--bootstrap-server", "localhost:9092", "--describe", "--topic", "perf").stdout
    check("PartitionCount: 6" in out and "ReplicationFactor: 3" in out, f"bin/kafka-topics.sh --describe: {out}")
    status = in_pod("bin/oxka-status.sh").stdout
    check(re.search(r"^1\s+broker\s+0\s", status, re.M), f"bin/oxka-status.sh: {status}")
    usage = in_pod("bin/kafka-server-start.sh", check=False)
    check(usage.returncode != 0 and "USAGE: bin/kafka-server-start.sh [-daemon] server.properties" in usage.stdout,
          f"bin/kafka-server-start.sh without a file: status {usage.returncode}, {usage.stdout!r}")
    return {"brokers_listed": len(brokers)}


def external_nodeport():
    """spec.listeners.external NodePort: each broker advertises NODE:nodePortBase+N, reachable from here."""
    patch = {"spec": {"listeners": {"external": {"type": "NodePort", "nodePortBase": NODE_PORT_BASE,
                                                 "advertisedHostTemplate": ARGS.node_address}}}}
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p", json.dumps(patch))
    wait_for("the cluster rolled with the external listener", lambda: (lambda k: k and k["status"].get("observedGeneration") == k["metadata"]["generation"] and cluster_ready())(get("kafkacluster", CLUSTER)), 600, 3)
    wait_for("every broker pod on the new config", lambda: all(ready(p) and p["metadata"]["labels"].get("controller-revision-hash") == get("statefulset", f"{CLUSTER}-broker")["status"].get("updateRevision") for p in pods_of("broker")), 600, 3)
    bootstrap = f"{ARGS.node_address}:{NODE_PORT_BASE}"
    # kube-proxy writes the NodePort rules for the new Services on its next sync, which may come after
    # the pods are Ready: wait until every port takes a connection from here.
    wait_for("every broker's NodePort to accept connections",
             lambda: all(port_open(ARGS.node_address, NODE_PORT_BASE + i) for i in range(3)), 120, 1)
    out = host_kafka("broker-api-versions", "--bootstrap-server", bootstrap).stdout
    got = set(re.findall(r"^(\S+) \(id: (\d+)", out, re.M))
    want = {(f"{ARGS.node_address}:{NODE_PORT_BASE + i}", str(i)) for i in range(3)}
    check(got == want, f"external broker-api-versions listed {sorted(got)}, want {sorted(want)}")
    host_kafka("topics", "--bootstrap-server", bootstrap, "--create", "--topic", "external", "--partitions", "3",
               "--replication-factor", "3")
    n = perf("external", 20_000, bootstrap=bootstrap, runner=host_kafka)
    check(n["acknowledged"] == n["consumed"] == 20_000, f"external perf numbers {n}")
    return n


def rolling_restart_under_load():
    """A config change rolls every broker pod one at a time, health-gated (each only when every partition keeps
    min.insync.replicas without it, the next only once it is back in every ISR), while a producer (acks=all)
    and a consumer run: no acknowledged record is lost and not one send fails. The producer retries as the Java
    client does by default (VerifiableProducer alone sets retries=0, which turns the retriable errors of any
    broker restart, a closed connection or NOT_LEADER_OR_FOLLOWER, into failed sends)."""
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of("broker")}
    load = Load("rolling", records=40000, throughput=800, retries=True)
    time.sleep(10)
    patch = {"spec": {"brokers": {"config": {"log.retention.hours": "100"}}}}
    patched_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    try:
        sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p", json.dumps(patch))
        # One at a time: never two broker pods missing or unready together.
        most_down, deadline, waits = 0, time.time() + 600, set()
        while time.time() < deadline:
            roll = (get("kafkacluster", CLUSTER) or {}).get("status", {}).get("roll") or {}
            if roll.get("state") == "Waiting":
                waits.add(re.sub(r"demo-broker-\d", "POD", roll.get("message", ""))[:80])
            pods = pods_of("broker")
            down = sum(1 for p in pods if not ready(p) or p["metadata"].get("deletionTimestamp")) + (3 - len(pods))
            most_down = max(most_down, down)
            replaced = all(before.get(p["metadata"]["name"]) != p["metadata"]["uid"] for p in pods)
            if replaced and len(pods) == 3 and down == 0 and cluster_ready():
                break
            time.sleep(1)
        else:
            raise Failed("the brokers did not all roll within 600 s")
        check(most_down <= 1, f"{most_down} broker pods were down at once")
        rolled_while_producing = load.running()
    except Exception:
        load.abort()
        raise
    numbers = load.stop()
    numbers["roll_during_load"] = rolled_while_producing
    numbers["max_pods_down"] = most_down
    numbers["restarts"] = restarts_since(patched_at)
    print(f"     roll waited for: {sorted(waits)}", flush=True)
    check(numbers["send_errors"] == 0, f"{numbers['send_errors']} sends failed during the roll: {numbers}")
    check(numbers["acknowledged"] == numbers["produced"], f"not every record was acknowledged: {numbers}")
    return numbers


def restarts_since(t):
    """The operator's RestartingPod Events since `t` (UTC, ISO): 'pod (why)' in the order they happened."""
    out = []
    for e in items("events"):
        when = e.get("eventTime") or e["metadata"]["creationTimestamp"]
        m = re.match(r"restarting pod (\S+) on the new revision: .*?(leads \d+ partitions|Raft leader[^;]*)?\)?$",
                     e.get("message", ""))
        if e["reason"] == "RestartingPod" and when[:19] >= t and m:
            out.append((when, f"{m.group(1)} ({m.group(2) or 'not Ready'})"))
    return [x for _, x in sorted(out)]


def stuck_broker_stops_the_roll():
    """A broker change whose pod cannot start (here: an affinity no node satisfies, so the pod stays
    Unschedulable) stops the roll at that pod with Degraded/RollStuck naming it; no other pod restarts.
    Taking the change back restarts that pod first and the roll completes."""
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of("broker") + pods_of("coordinator")}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "oxka.io/e2e-no-such-node", "operator": "In", "values": ["yes"]}]}]}}}
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
       json.dumps({"spec": {"brokers": {"pod": {"affinity": affinity}}}}))
    t0 = time.time()

    def stuck():
        k = get("kafkacluster", CLUSTER)
        c = condition(k, "Degraded")
        return (k, c) if c.get("reason") == "RollStuck" else None
    k, c = wait_for("Degraded/RollStuck", stuck, 240, 2)
    stuck_after = time.time() - t0
    roll = k["status"]["roll"]
    pod = roll["pod"]
    check(roll["state"] == "Stuck" and roll["tier"] == "brokers" and pod.startswith(f"{CLUSTER}-broker-"), f"roll {roll}")
    check(f"pod {pod} cannot start (Unschedulable" in c["message"], c["message"])
    events = [e for e in items("events") if e["reason"] == "RollStuck"]
    check(any(pod in e.get("message", "") for e in events), f"no RollStuck event naming {pod}")
    time.sleep(20)  # several roll requeues: still nothing else restarts
    now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of("broker") + pods_of("coordinator")}
    restarted = sorted(n for n, u in now.items() if before.get(n) != u)
    check(restarted == [pod], f"restarted {restarted}, want only {pod}")
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "json", "-p",
       json.dumps([{"op": "remove", "path": "/spec/brokers/pod/affinity"}]))
    t1 = time.time()
    wait_for("the roll to complete", lambda: (lambda k: k if k and "roll" not in k["status"] else None)(cluster_ready()), 300, 2)
    wait_for("every broker Ready on the StatefulSet's revision", lambda: all(
        ready(p) and p["metadata"]["labels"].get("controller-revision-hash") == get("statefulset", f"{CLUSTER}-broker")["status"].get("updateRevision")
        for p in pods_of("broker")) and len(pods_of("broker")) == 3, 120, 2)
    now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of("broker") + pods_of("coordinator")}
    restarted = sorted(n for n, u in now.items() if before.get(n) != u)
    check(restarted == [pod], f"after the fix restarted {restarted}, want only {pod}")
    return {"stuck_pod": pod, "stuck_after_s": round(stuck_after), "recovered_after_s": round(time.time() - t1)}


def missing_image_stops_the_roll():
    """An image that does not exist: coordinators roll first, and the first one restarted cannot pull it.
    The roll stops there (RollStuck naming the pod and ImagePullBackOff/ErrImagePull); no other pod restarts;
    the old image back, that pod restarts and the cluster is Ready again."""
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of("broker") + pods_of("coordinator")}
    good = get("kafkacluster", CLUSTER)["spec"]["image"]
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
       json.dumps({"spec": {"image": "oxka:does-not-exist"}}))
    t0 = time.time()
    k = wait_for("Degraded/RollStuck", lambda: (lambda k: k if condition(k, "Degraded").get("reason") == "RollStuck" else None)(get("kafkacluster", CLUSTER)), 240, 2)
    roll = k["status"]["roll"]
    pod = roll["pod"]
    check(roll["tier"] == "coordinators" and pod.startswith(f"{CLUSTER}-coordinator-"), f"roll {roll}")
    check(re.search(r"cannot start \((ErrImagePull|ImagePullBackOff)", roll["message"]), roll["message"])
    stuck_after = time.time() - t0
    time.sleep(15)
    now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of("broker") + pods_of("coordinator")}
    restarted = sorted(n for n, u in now.items() if before.get(n) != u)
    check(restarted == [pod], f"restarted {restarted}, want only {pod}")
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p", json.dumps({"spec": {"image": good}}))
    t1 = time.time()
    wait_for("the roll to complete", lambda: (lambda k: k if k and "roll" not in k["status"] else None)(cluster_ready()), 300, 2)
    return {"stuck_pod": pod, "stuck_after_s": round(stuck_after), "recovered_after_s": round(time.time() - t1)}


def broker_pod_deleted():
    """A broker pod deleted comes back with its PVC and its data."""
    kafka("topics", "--bootstrap-server", BOOTSTRAP, "--create", "--topic", "durable", "--partitions", "3",
          "--replication-factor", "3")
    n = perf("durable", 30_000)
    pvc_uid = get("pvc", f"data-{CLUSTER}-broker-1")["metadata"]["uid"]
    old_uid = get("pod", f"{CLUSTER}-broker-1")["metadata"]["uid"]
    sh("kubectl", "delete", "pod", "-n", NS, f"{CLUSTER}-broker-1", "--wait=true", timeout=180)
    wait_for("broker 1 back and Ready", lambda: (lambda p: p and p["metadata"]["uid"] != old_uid and ready(p))(get("pod", f"{CLUSTER}-broker-1")), 300, 2)
    check(get("pvc", f"data-{CLUSTER}-broker-1")["metadata"]["uid"] == pvc_uid, "broker 1 got a new PVC")
    wait_for("the cluster Ready", cluster_ready, 300, 2)
    out = kafka("console-consumer", "--bootstrap-server", BOOTSTRAP, "--topic", "durable", "--from-beginning",
                "--timeout-ms", "20000", "--property", "print.value=false", "--property", "print.partition=true",
                check=False).stdout
    count = len([line for line in out.splitlines() if line.startswith("Partition:")])
    check(count == n["acknowledged"], f"after the restart {count} of {n['acknowledged']} records are readable")
    return {"produced": n["produced"], "acknowledged": n["acknowledged"], "consumed": count,
            "lost": n["acknowledged"] - count}


def coordinator_leader_deleted():
    """The coordinator ensemble's leader pod deleted: a new leader, and the cluster keeps serving.

    The nodes are cordoned while the leader's pod is gone: a StatefulSet brings a deleted pod back within
    seconds, and a member that returns that fast resumes its leadership at the same epoch (its vote is
    persisted), which is fine but does not show the ensemble electing another leader."""
    def leader():
        out = kafka("metadata-quorum", "--bootstrap-server", BOOTSTRAP, "describe", "--status", check=False).stdout
        m, e = re.search(r"LeaderId:\s+(\d+)", out), re.search(r"LeaderEpoch:\s+(\d+)", out)
        return (int(m.group(1)), int(e.group(1))) if m and e else None
    old, old_epoch = wait_for("the quorum's leader", leader, 60, 2)
    nodes = [n["metadata"]["name"] for n in json.loads(sh("kubectl", "get", "nodes", "-o", "json").stdout)["items"]]
    load = Load("leader-change", records=20000, throughput=500)
    try:
        time.sleep(5)
        for n in nodes:
            sh("kubectl", "cordon", n)
        # Coordinator ids are ordinals + 1 (ZooKeeper numbering).
        sh("kubectl", "delete", "pod", "-n", NS, f"{CLUSTER}-coordinator-{old - 1}", "--wait=true", timeout=120)
        new, epoch = wait_for("a new leader", lambda: (lambda l: l if l and l[0] != old else None)(leader()), 120, 2)
    except Exception:
        load.abort()
        raise
    finally:
        for n in nodes:
            sh("kubectl", "uncordon", n, check=False)
    numbers = load.stop()
    wait_for("the cluster Ready", cluster_ready, 300, 2)
    numbers.update({"old_leader": old, "old_epoch": old_epoch, "new_leader": new, "new_epoch": epoch})
    return numbers


def delete_cluster():
    """Deleting the KafkaCluster removes every child object; PVCs are kept."""
    pvcs = {p["metadata"]["name"] for p in items("pvc")}
    check(len(pvcs) == 6, f"PVCs before delete: {sorted(pvcs)}")
    sh("kubectl", "delete", "kafkacluster", CLUSTER, "-n", NS, "--wait=true", timeout=180)
    sel = f"app.kubernetes.io/instance={CLUSTER}"

    def gone():
        left = []
        for kind in ("statefulsets", "services", "configmaps", "poddisruptionbudgets", "pods"):
            left += [f"{kind}/{o['metadata']['name']}" for o in items(kind, selector=sel)]
        if left:
            raise Failed(f"still there: {left}")
        return True
    wait_for("every child gone", gone, 180, 2)
    kept = {p["metadata"]["name"] for p in items("pvc")}
    check(kept == pvcs, f"PVCs after delete: {sorted(kept)}, before {sorted(pvcs)}")
    return {"pvcs_kept": len(kept)}


SCENARIOS = [operator_pod, minimal_ready, clients_through_bootstrap, distribution_in_broker_pod, external_nodeport, rolling_restart_under_load,
             stuck_broker_stops_the_roll, missing_image_stops_the_roll, broker_pod_deleted, coordinator_leader_deleted,
             delete_cluster]
REQUIRED = {"operator_pod", "minimal_ready"}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--node-address", required=True, help="where this machine reaches the node's NodePorts")
    ap.add_argument("--only", nargs="*", help="run these scenarios (after the required setup ones)")
    ARGS = ap.parse_args()
    failed = 0
    for fn in SCENARIOS:
        if ARGS.only and fn.__name__ not in ARGS.only and fn.__name__ not in REQUIRED:
            continue
        t0 = time.time()
        try:
            numbers = fn() or {}
            took = time.time() - t0
            print(f"PASS {fn.__name__:28} {took:6.1f}s  {json.dumps(numbers)}", flush=True)
        except Exception as e:  # noqa: BLE001 -- every failure is reported, the run goes on
            failed += 1
            took = time.time() - t0
            print(f"FAIL {fn.__name__:28} {took:6.1f}s  {e}", flush=True)
            if not isinstance(e, Failed):
                traceback.print_exc()
            if fn.__name__ in REQUIRED:
                break
    total = len(SCENARIOS) if not ARGS.only else None
    print(f"{'FAILED' if failed else 'OK'}: {failed} failed" + (f" of {total}" if total else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
