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


def write_tools_file(path, text):
    """Writes `text` to `path` in the tools pod and reads it back. The text goes in the command itself, not
    through `kubectl exec -i` stdin: one CI run's producer ran with VerifiableProducer's built-in retries=0
    (1501 sends failed with retriable errors, all of them retried in every other run), which an empty file
    explains; reading the file back turns such a write into a clear failure here instead."""
    sh("kubectl", "exec", "-n", NS, TOOLS_POD, "--", "sh", "-c", f"printf '%s' \"$1\" > {path}", "sh", text)
    back = sh("kubectl", "exec", "-n", NS, TOOLS_POD, "--", "cat", path).stdout
    check(back == text, f"{path} in the tools pod holds {back!r}, want {text!r}")


class Load:
    """A producer (Kafka's VerifiableProducer: every acknowledged value is printed) and a consumer group
    member (console consumer) running while something happens to the cluster. stop() waits for both and
    then reads the topic from the start: every acknowledged value must be there, and none twice."""

    def __init__(self, topic, records=30000, throughput=1000, retries=False):
        """With `retries`, the producer runs with the Java client's own defaults (retries=MAX_INT within
        delivery.timeout.ms=120000, idempotence) as an application would; otherwise with VerifiableProducer's
        hard-coded retries=0, where every retriable error of one request (a connection closed by a broker
        that shuts down, NOT_LEADER_OR_FOLLOWER after leadership moved) is reported as a failed send.
        `records=None` produces until stop(), which ends both tools with SIGTERM (VerifiableProducer's
        shutdown hook closes the producer, so every record sent by then is acknowledged or failed)."""
        self.topic, self.records = topic, records
        config = "/dev/null"
        if retries:
            config = f"/tmp/{topic}-producer.properties"
            write_tools_file(config, "retries=2147483647\ndelivery.timeout.ms=120000\nenable.idempotence=true\n")
        kafka("topics", "--bootstrap-server", BOOTSTRAP, "--create", "--topic", topic, "--partitions", "6",
              "--replication-factor", "3")
        self.producer = self._java(
            "producer", [TOOLS["verifiable-producer"], "--bootstrap-server", BOOTSTRAP, "--topic", topic,
                         "--max-messages", str(records or -1), "--throughput", str(throughput), "--acks", "-1",
                         "--producer.config", config])
        self.acked, self.errors, self.consumed, self.error_kinds, self.sent = set(), 0, 0, {}, None
        self.ack_times = []  # (value, the ack's time in ms, partition), to locate stalls
        self.threads = [threading.Thread(target=self._read_producer, daemon=True)]
        self.threads[0].start()
        # The consumer joins once records flow, so that it never waits on a topic its brokers do not know
        # yet (one run where it joined at once read 0 records during the roll; the cause is not proven).
        wait_for("the first acknowledged record", lambda: self.acked or self.producer.poll() is not None, 60, 0.5)
        limit = ["--max-messages", str(records)] if records else []
        self.consumer = self._java(
            "consumer", [TOOLS["console-consumer"], "--bootstrap-server", BOOTSTRAP, "--topic", topic, "--group",
                         f"{topic}-group", "--from-beginning", "--timeout-ms", "90000"] + limit)
        self.threads.append(threading.Thread(target=self._read_consumer, daemon=True))
        self.threads[1].start()

    def _java(self, role, args):
        """One of Kafka's tools in the tools pod, its pid in /tmp/TOPIC-ROLE.pid (for SIGTERM)."""
        pid = f"/tmp/{self.topic}-{role}.pid"
        cmd = ("echo $$ > " + pid + "; exec java -Xmx256m -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties"
               " -cp '/opt/kafka/libs/*' " + " ".join(args) + f" 2> /tmp/{self.topic}-{role}.err")
        return subprocess.Popen(["kubectl", "--kubeconfig", ARGS.kubeconfig, "exec", "-n", NS, TOOLS_POD, "--", "sh",
                                 "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def _terminate(self, role):
        sh("kubectl", "exec", "-n", NS, TOOLS_POD, "--", "sh", "-c",
           f"kill -TERM $(cat /tmp/{self.topic}-{role}.pid)", check=False)

    def _read_producer(self):
        for line in self.producer.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("name") == "producer_send_success":
                self.acked.add(e["value"])
                self.ack_times.append((int(e["value"]), e.get("timestamp", 0), e.get("partition", -1)))
            elif e.get("name") == "producer_send_error":
                self.errors += 1
                kind = f"{e.get('exception', '')}: {e.get('message', '')}"[:160]
                self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
            elif e.get("name") == "tool_data":
                self.sent = e.get("sent")

    def longest_stalls(self, since_s, rate, n=5):
        """The `n` most delayed acknowledgements after `since_s` (epoch s), at most one per second:
        (ack time as HH:MM:SS.mmm UTC, delay in ms, partition). VerifiableProducer sends value v at about
        v / rate s after its first send (its throttle catches up after a blocked send), so an ack's delay
        is its time minus that, less the smallest such difference (the run's fastest ack)."""
        late = [(ts - v * 1000 / rate, ts, partition) for v, ts, partition in self.ack_times]
        if not late:
            return []
        base = min(d for d, _, _ in late)
        worst, seconds = [], set()
        for d, ts, partition in sorted(late, reverse=True):
            if ts < since_s * 1000 or ts // 1000 in seconds:
                continue
            seconds.add(ts // 1000)
            worst.append((time.strftime("%H:%M:%S", time.gmtime(ts / 1000)) + f".{int(ts) % 1000:03d}",
                          int(d - base), partition))
            if len(worst) == n:
                break
        return worst

    def _read_consumer(self):
        for _ in self.consumer.stdout:
            self.consumed += 1

    def running(self):
        return self.producer.poll() is None

    def abort(self):
        """Stops following the clients (a failed scenario) and ends them in the pod."""
        for role, p in (("producer", self.producer), ("consumer", getattr(self, "consumer", None))):
            if p and p.poll() is None:
                self._terminate(role)
                p.kill()

    def stop(self, timeout=600):
        if self.records is None:
            self._terminate("producer")
        try:
            self.producer.wait(timeout)
        except subprocess.TimeoutExpired:
            self.producer.kill()
            raise Failed(f"the producer did not finish {self.records} records in {timeout}s")
        self.threads[0].join(10)
        if self.records is None:
            # The group member has read everything once it has read as many records as were acknowledged.
            try:
                wait_for("the group consumer to catch up", lambda: self.consumed >= len(self.acked), 20, 0.5)
            except Failed:
                pass  # its count is reported below; the stored records are what is checked
            self._terminate("consumer")
        try:
            self.consumer.wait(150)  # exits after all records, or 90 s after the last one it saw
        except subprocess.TimeoutExpired:
            self.consumer.kill()
        for t in self.threads:
            t.join(10)
        out = kafka("console-consumer", "--bootstrap-server", BOOTSTRAP, "--topic", self.topic, "--from-beginning",
                    "--timeout-ms", "20000", timeout=600, check=False).stdout
        values = out.split()
        stored = set(values)
        lost = len(self.acked - stored)
        if self.error_kinds:
            print(f"     send errors by kind: {self.error_kinds}", flush=True)
            # The client's own warnings say whether it retried ("retrying (N attempts left)") and why not.
            err = sh("kubectl", "exec", "-n", NS, TOOLS_POD, "--", "sh", "-c",
                     f"grep -E 'WARN|ERROR' /tmp/{self.topic}-producer.err | tail -n 8", check=False).stdout
            print("     producer warnings (last 8):\n" + "\n".join(f"       {l[:300]}" for l in err.splitlines()),
                  flush=True)
        numbers = {"produced": self.records or self.sent, "acknowledged": len(self.acked),
                   "send_errors": self.errors, "consumed": self.consumed, "stored": len(values),
                   "duplicated": len(values) - len(stored), "lost": lost}
        check(lost == 0, f"{lost} acknowledged records are missing: {numbers}")
        check(len(self.acked) > 0, f"nothing was acknowledged: {numbers}")
        check(numbers["duplicated"] == 0, f"{numbers['duplicated']} values are stored more than once: {numbers}")
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
    # The operator's canary runs from the start, so that it counts through every later scenario's rolls.
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
       json.dumps({"spec": {"canary": {"enabled": True, "intervalSeconds": 1}}}))
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


PERF_RATE, PERF_SECONDS, PERF_EVERY = 200, 20, 15


def perf_latency(topic):
    """One producer-perf-test run of PERF_SECONDS at a fixed PERF_RATE (acks=all, the Java client's default
    retries and idempotence): its final line's latency percentiles, in ms."""
    started = time.time()
    r = kafka("producer-perf-test", "--topic", topic, "--num-records", str(PERF_RATE * PERF_SECONDS),
              "--record-size", "100", "--throughput", str(PERF_RATE), "--producer-props",
              f"bootstrap.servers={BOOTSTRAP}", "acks=all", timeout=PERF_SECONDS * 10)
    out = r.stdout
    m = re.search(r"(\d+) records sent, [\d.]+ records/sec .*?, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, "
                  r"(\d+) ms 99th, (\d+) ms 99.9th", out)
    check(m, f"producer-perf-test printed no final percentiles: {out[-500:]}")
    sent, top, p50, p95, p99, p999 = (int(float(x)) for x in m.groups())
    check(sent == PERF_RATE * PERF_SECONDS, f"producer-perf-test completed {sent} of {PERF_RATE * PERF_SECONDS} records")
    # The tool's 5 s windows ("N records sent, ... max latency"), kept to locate a stall in time.
    windows = [line.strip() for line in out.splitlines() if "records sent" in line][:-1]
    # The client's own warnings (retries, disconnections, timeouts: log4j2 at WARN, with times).
    warnings = [line.strip() for line in r.stderr.splitlines() if " WARN " in line or " ERROR " in line]
    return {"p50": p50, "p99": p99, "p999": p999, "max": top, "started": started, "windows": windows,
            "warnings": warnings}


class PerfDuringRoll:
    """producer-perf-test runs of equal size, a new one every PERF_EVERY s (each lasts PERF_SECONDS, so they
    overlap and every moment of the roll is measured), until stop(). Since every run has the same number of
    records, the largest per-run p99 is an upper bound of the p99 over all their records together: at most 1%
    of each run's records is above its own p99, so at most 1% of all of them is above the largest one."""

    def __init__(self, topic):
        self.topic, self.runs, self.errors, self.done = topic, [], [], threading.Event()
        self.workers = []
        self.scheduler = threading.Thread(target=self._schedule, daemon=True)
        self.scheduler.start()

    def _schedule(self):
        while not self.done.is_set():
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.workers.append(t)
            self.done.wait(PERF_EVERY)

    def _run(self):
        try:
            self.runs.append(perf_latency(self.topic))
        except Failed as e:
            self.errors.append(str(e))

    def stop(self):
        self.done.set()
        self.scheduler.join(5)
        for t in self.workers:
            t.join(PERF_SECONDS * 10)
        check(not self.errors, f"producer-perf-test failed during the roll: {self.errors}")
        check(self.runs, "no producer-perf-test run finished during the roll")
        return self.runs


def wait_rolled(before, components, timeout=600):
    """Waits until every pod of `components` was replaced (uids not in `before`), all Ready, the cluster
    Ready with no roll in status; returns the most broker pods missing or unready at once."""
    most_down, deadline = 0, time.time() + timeout
    while time.time() < deadline:
        brokers = pods_of("broker")
        down = sum(1 for p in brokers if not ready(p) or p["metadata"].get("deletionTimestamp")) + (3 - len(brokers))
        most_down = max(most_down, down)
        pods = [p for c in components for p in pods_of(c)]
        replaced = all(before.get(p["metadata"]["name"]) != p["metadata"]["uid"] for p in pods)
        if replaced and down == 0 and len(pods) == 3 * len(components) and all(ready(p) for p in pods):
            k = cluster_ready()
            if k and "roll" not in k["status"]:
                return most_down
        time.sleep(1)
    raise Failed(f"the {' and '.join(components)} did not all roll within {timeout} s")


class PodLogs:
    """Follows the logs of every broker, coordinator and operator pod into OXKA_E2E_POD_LOGS (one file per
    pod incarnation, named by pod and uid), so that the logs of pods a roll replaced survive for diagnosis;
    does nothing when that variable is unset."""

    def __init__(self):
        self.dir = os.environ.get("OXKA_E2E_POD_LOGS")
        self.followed, self.done = {}, threading.Event()
        if self.dir:
            os.makedirs(self.dir, exist_ok=True)
            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        while not self.done.wait(1):
            try:
                pods = pods_of("broker") + pods_of("coordinator")
            except Exception:  # noqa: BLE001 -- the API server may be busy; the next second retries
                continue
            for pod in pods:
                name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
                running = any("running" in c.get("state", {}) for c in pod.get("status", {}).get("containerStatuses", []))
                if uid in self.followed or not running:
                    continue
                out = open(os.path.join(self.dir, f"{name}.{uid[:8]}.log"), "wb")
                self.followed[uid] = subprocess.Popen(
                    ["kubectl", "--kubeconfig", ARGS.kubeconfig, "logs", "-f", "-n", NS, name],
                    stdout=out, stderr=subprocess.STDOUT)

    def stop(self):
        self.done.set()
        for p in self.followed.values():
            p.terminate()


def uids():
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of("broker") + pods_of("coordinator")}


def rolling_restart_under_load():
    """A config change rolls every broker pod one at a time, then an image upgrade (the same bits tagged
    oxka:VERSION-upgrade on the node) rolls the coordinators and then the brokers, health-gated (each broker
    only when every partition keeps min.insync.replicas without it, the next only once it is back in every ISR),
    while a producer (acks=all, idempotent, retrying as the Java client does by default) and a consumer group
    run through both rolls: no acknowledged record is lost or stored twice and not one send fails
    (VerifiableProducer alone sets retries=0, which turns the retriable errors of any broker restart, a closed
    connection or NOT_LEADER_OR_FOLLOWER, into failed sends). Produce latency: producer-perf-test at a fixed
    rate in steady state (the same load running), then in overlapping runs spanning both rolls; the p99 during
    the rolls against 3x the steady one is printed as a target (met or not), not checked. The operator's canary agrees: nothing lost or duplicated,
    and status.lastRoll has the canary's figures for the image roll."""
    upgrade = f"oxka:{version()}-upgrade"
    kafka("topics", "--bootstrap-server", BOOTSTRAP, "--create", "--topic", "latency", "--partitions", "6",
          "--replication-factor", "3")
    logs = PodLogs()
    load = Load("rolling", records=None, throughput=500, retries=True)
    waits = set()
    try:
        steady = perf_latency("latency")
        during = PerfDuringRoll("latency")
        patched_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        before = uids()
        t0 = time.time()
        sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
           json.dumps({"spec": {"brokers": {"config": {"log.retention.hours": "100"}}}}))
        down_config = wait_rolled(before, ["broker"])
        config_roll_s = time.time() - t0
        before = uids()
        t1 = time.time()
        sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
           json.dumps({"spec": {"image": upgrade}}))
        down_image = wait_rolled(before, ["coordinator", "broker"])
        image_roll_s = time.time() - t1
        rolled_while_producing = load.running()
        runs = during.stop()
    except Exception:
        load.abort()
        logs.stop()
        raise
    numbers = load.stop()
    logs.stop()
    stalls = ", ".join(f"{at} {late} ms (partition {p})" for at, late, p in load.longest_stalls(t0, 500))
    print(f"     the load's most delayed acks during the rolls (at most one per second): {stalls}", flush=True)
    images = {c["image"] for p in pods_of("broker") + pods_of("coordinator") for c in p["spec"]["containers"]}
    check(images == {upgrade}, f"pods run {images} after the upgrade, want {upgrade}")
    p99_roll = max(r["p99"] for r in runs)
    numbers.update({"config_roll_s": round(config_roll_s), "image_roll_s": round(image_roll_s),
                    "max_brokers_down": max(down_config, down_image), "roll_during_load": rolled_while_producing,
                    "p99_steady_ms": steady["p99"], "p99_roll_ms": p99_roll,
                    "p99_roll_runs_ms": [r["p99"] for r in runs], "p999_steady_ms": steady["p999"],
                    "p999_roll_ms": max(r["p999"] for r in runs), "max_roll_ms": max(r["max"] for r in runs)})
    restarted = restarts_since(patched_at)
    print(f"     restarts: {restarted}", flush=True)
    print(f"     produce latency (producer-perf-test, {PERF_RATE}/s, {PERF_SECONDS} s per run): steady p99 "
          f"{steady['p99']} ms; during the rolls p99 <= {p99_roll} ms over {len(runs)} runs {numbers['p99_roll_runs_ms']}",
          flush=True)
    timeline = sorted((p["metadata"]["creationTimestamp"][11:19], p["metadata"]["name"])
                      for c in ("coordinator", "broker") for p in pods_of(c))
    print("     pods created (UTC, the image roll's order): " + ", ".join(f"{n} {t}" for t, n in timeline), flush=True)
    for r in runs:
        if r["p99"] > 3 * max(steady["p99"], 1):
            at = time.strftime("%H:%M:%S", time.gmtime(r["started"]))
            print(f"     a run above 3x steady, started {at} UTC (p99 {r['p99']} ms), its 5 s windows:", flush=True)
            for w in r["windows"]:
                print(f"       {w}", flush=True)
            print(f"       the producer's warnings ({len(r['warnings'])}, the first 20):", flush=True)
            for w in r["warnings"][:20]:
                print(f"         {w[:300]}", flush=True)
    check(numbers["max_brokers_down"] <= 1, f"{numbers['max_brokers_down']} broker pods were down at once")
    check(rolled_while_producing, "the producer was not running through both rolls")
    check(numbers["send_errors"] == 0, f"{numbers['send_errors']} sends failed during the rolls: {numbers}")
    check(numbers["acknowledged"] == numbers["produced"], f"not every record sent was acknowledged: {numbers}")
    canary_agrees(numbers, t1)
    # A performance target (issue 11: p99 during a roll within 3x the steady state), printed with its
    # verdict like a benchmark's: on this 2-core machine it varies run to run (docs/testing.md has the
    # runs); what must hold, nothing lost, duplicated or failed, is checked above.
    met = p99_roll <= 3 * max(steady["p99"], 1)
    numbers["p99_target_met"] = met
    print(f"     issue 11 target, p99 during the rolls <= 3x steady: {p99_roll} ms vs 3 x {steady['p99']} ms: "
          f"{'met' if met else 'NOT met'}", flush=True)
    return numbers


def canary_agrees(numbers, image_roll_started):
    """status.canary (the operator's own producer and consumer since minimal_ready) and status.lastRoll (the
    image roll, the last one) show what the test's clients saw: records acknowledged, none lost or duplicated."""
    k = get("kafkacluster", CLUSTER)
    c = k["status"].get("canary") or {}
    check(c.get("acknowledged", 0) > 0 and c.get("lost") == 0 and c.get("duplicated") == 0, f"status.canary: {c}")
    loss = condition(k, "DataLoss")
    check(loss.get("status") == "False" and loss.get("reason") == "NoDataLoss", f"DataLoss condition: {loss}")
    last = k["status"].get("lastRoll") or {}
    lc = last.get("canary") or {}
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(image_roll_started - 5))
    check(last.get("podsRestarted") == 6 and last.get("startedAt", "") >= started,
          f"status.lastRoll does not describe the image roll (6 pods, started after {started}): {last}")
    check(lc.get("complete") and lc.get("acknowledged", 0) > 0 and lc.get("lost") == 0 and lc.get("duplicated") == 0,
          f"status.lastRoll.canary: {lc}")
    numbers["canary"] = {k2: c.get(k2) for k2 in ("acknowledged", "failed", "lost", "duplicated", "latencyP99Ms")}
    numbers["canary_last_roll"] = {k2: lc.get(k2) for k2 in ("produced", "acknowledged", "failed", "lost", "duplicated",
                                                              "latencyP99Ms")}


def invalid_change_touches_no_pod():
    """An override the broker would refuse at start-up, applied to the running cluster: the operator applies
    nothing (no StatefulSet change, no pod restarted), Degraded/InvalidSpec and a Warning Event name the key,
    the value and why; `oxka-operator render` (in the operator's pod) of the same spec exits non-zero with it."""
    before = uids()
    gens = {r: get("statefulset", f"{CLUSTER}-{r}")["metadata"]["generation"] for r in ("broker", "coordinator")}
    good = get("kafkacluster", CLUSTER)["spec"]["brokers"]["config"]["log.retention.hours"]
    patched_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
       json.dumps({"spec": {"brokers": {"config": {"log.retention.hours": "abc"}}}}))
    want = '"abc" for log.retention.hours'
    c = wait_for("Degraded/InvalidSpec", lambda: (lambda c: c if c.get("reason") == "InvalidSpec" else None)(
        condition(get("kafkacluster", CLUSTER), "Degraded")), 60, 1)
    check(want in c["message"] and "expected an integer" in c["message"],
          f"Degraded/InvalidSpec should name {want} and 'expected an integer': {c['message']}")
    events = [e.get("message", "") for e in items("events") if e["reason"] == "InvalidSpec"
              and (e.get("eventTime") or e["metadata"]["creationTimestamp"] or "")[:19] >= patched_at[:19]]
    events = events or [e.get("message", "") for e in items("events") if e["reason"] == "InvalidSpec"]
    check(any(want in m for m in events), f"no InvalidSpec Event naming {want}: {events}")
    ops = items("pods", OP_NS, "app.kubernetes.io/name=oxka-operator")
    spec = get("kafkacluster", CLUSTER)
    for key in ("status", "metadata"):
        spec.pop(key, None)
    spec["metadata"] = {"name": CLUSTER, "namespace": NS}
    r = sh("kubectl", "exec", "-i", "-n", OP_NS, ops[0]["metadata"]["name"], "--", "oxka-operator", "render", "-f", "-",
           input=json.dumps(spec), check=False)
    check(r.returncode != 0 and want in r.stderr, f"render of the same spec: exit {r.returncode}, stderr {r.stderr[-500:]}")
    time.sleep(5)  # reconciliations go on (every 5 s with a condition set): still nothing is applied
    now_gens = {r: get("statefulset", f"{CLUSTER}-{r}")["metadata"]["generation"] for r in ("broker", "coordinator")}
    check(now_gens == gens, f"StatefulSet generations changed for a refused spec: {gens} -> {now_gens}")
    check(uids() == before, f"pods were replaced for a refused spec: {sorted(set(uids().items()) - set(before.items()))}")
    sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
       json.dumps({"spec": {"brokers": {"config": {"log.retention.hours": good}}}}))
    wait_for("the cluster Ready again", lambda: (lambda k: k if condition(k, "Degraded").get("status") == "False" else None)(cluster_ready()), 60, 1)
    check(uids() == before, "pods were replaced after the spec was fixed")
    return {"condition": c["message"][:160], "render_exit": r.returncode}


def metadata():
    """{(topic, partition): (replicas, leader)} and the broker ids, from Metadata: kcat on this machine through
    the external listener (broker 0's NodePort)."""
    r = sh("kcat", "-b", f"{ARGS.node_address}:{NODE_PORT_BASE}", "-L", "-J", "-m", "5", timeout=30)
    m = json.loads(r.stdout)
    parts = {(t["topic"], p["partition"]): ([x["id"] for x in p["replicas"]], p["leader"])
             for t in m["topics"] for p in t["partitions"]}
    return parts, sorted(b["id"] for b in m["brokers"])


def brokers_ready(n):
    def done():
        k = cluster_ready()
        pods = pods_of("broker")
        ok = k and k["status"]["brokers"]["readyReplicas"] == n and len(pods) == n and all(ready(p) for p in pods)
        return k if ok else None
    return done


class ScaleDownWatch:
    """While brokers are removed: Metadata every ~0.2 s (kcat, timestamped when each answer is in), the
    broker pods (a kubectl watch, timestamped when each event arrives), and KafkaCluster status."""

    def __init__(self, removed):
        self.removed, self.samples, self.deleting_at, self.drain, self.stop_ = set(removed), [], None, [], threading.Event()
        names = {f"{CLUSTER}-broker-{b}" for b in removed}
        self.watch = subprocess.Popen(
            ["kubectl", "--kubeconfig", ARGS.kubeconfig, "get", "pods", "-n", NS, "-w", "--no-headers", "-l",
             f"app.kubernetes.io/instance={CLUSTER},app.kubernetes.io/component=broker", "-o",
             "custom-columns=NAME:.metadata.name,DELETING:.metadata.deletionTimestamp"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

        def pods():
            for line in self.watch.stdout:
                f = line.split()
                if len(f) == 2 and f[0] in names and f[1] != "<none>" and self.deleting_at is None:
                    self.deleting_at = time.time()
        self.threads = [threading.Thread(target=pods, daemon=True), threading.Thread(target=self._poll, daemon=True)]
        for t in self.threads:
            t.start()
        time.sleep(1)  # the watch's initial list is in before anything changes

    def _poll(self):
        n = 0
        while not self.stop_.is_set():
            try:
                parts, _ = metadata()
                on = sorted({k for k, (r, _) in parts.items() if self.removed & set(r)})
                self.samples.append((time.time(), len(on), on[:3]))
                if n % 5 == 0:
                    d = (get("kafkacluster", CLUSTER) or {}).get("status", {}).get("drain")
                    if d:
                        self.drain.append(d)
            except Failed:
                pass
            n += 1
            time.sleep(0.1)

    def stop(self):
        self.stop_.set()
        self.watch.terminate()
        for t in self.threads:
            t.join(10)


def scale_out_and_in_under_load():
    """3 -> 5 brokers, `oxka.io/rebalance=spread`, 5 -> 3 while a producer (acks=all, idempotent, the Java
    client's retries) and a consumer group run throughout. The two new brokers join with nothing restarted;
    the annotation spreads leaders (and replicas) so that each of the 5 brokers leads as many partitions as
    the others within one; lowering the count drains brokers 3 and 4 first: Metadata, polled while it happens,
    shows nothing on them before either pod is deleted (the canary topic, one partition per broker at RF 3,
    included). Nothing acknowledged is lost or stored twice. (Failed sends are counted and printed, not
    refused here: the rolls above show that no send fails when brokers restart.)"""
    before = uids()
    load = Load("scaling", records=None, throughput=500, retries=True)
    try:
        t0 = time.time()
        sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
           json.dumps({"spec": {"brokers": {"replicas": 5}}}))
        wait_for("5 brokers Ready", brokers_ready(5), 300, 2)
        _, ids = wait_for("Metadata to list 5 brokers", lambda: (lambda m: m if m[1] == [0, 1, 2, 3, 4] else None)(metadata()), 60, 1)
        check(all(before.get(n) == u for n, u in uids().items() if n in before), "a pod restarted when brokers were added")
        # The canary follows the broker count: one partition per broker (before the rebalance, so that they
        # are spread too).
        try:
            wait_for("__oxka_canary to grow to 5 partitions",
                     lambda: sum(1 for k in metadata()[0] if k[0] == "__oxka_canary") == 5, 45, 1)
            canary_grown = None
        except Failed as e:
            canary_grown = str(e)  # checked at the end, after the scale-down was watched
        up_s = time.time() - t0
        t1 = time.time()
        sh("kubectl", "annotate", "kafkacluster", CLUSTER, "-n", NS, "oxka.io/rebalance=spread")
        wait_for("the operator to finish the rebalance and remove the annotation",
                 lambda: "oxka.io/rebalance" not in get("kafkacluster", CLUSTER)["metadata"].get("annotations", {}), 300, 2)
        parts, _ = metadata()
        leads = {b: sum(1 for _, l in parts.values() if l == b) for b in range(5)}
        holds = {b: sum(1 for r, _ in parts.values() if b in r) for b in range(5)}
        canary = {k: v for k, v in parts.items() if k[0] == "__oxka_canary"}
        check(max(leads.values()) - min(leads.values()) <= 1 and min(leads.values()) > 0,
              f"leaders per broker after the rebalance, want within one of each other on all 5: {leads}")
        check(max(holds.values()) - min(holds.values()) <= 1, f"replicas per broker after the rebalance: {holds}")
        canary_after_spread = canary
        spread_s = time.time() - t1
        t2 = time.time()
        watch = ScaleDownWatch([3, 4])
        try:
            sh("kubectl", "patch", "kafkacluster", CLUSTER, "-n", NS, "--type", "merge", "-p",
               json.dumps({"spec": {"brokers": {"replicas": 3}}}))
            wait_for("3 brokers Ready and no drain in status",
                     lambda: (lambda k: k if k and "drain" not in k["status"] else None)(brokers_ready(3)()), 300, 2)
        finally:
            watch.stop()
        down_s = time.time() - t2
        rolled_while_producing = load.running()
    except Exception:
        load.abort()
        raise
    numbers = load.stop()
    check(watch.deleting_at is not None, "the watch saw neither broker 3's nor broker 4's pod being deleted")
    seen = [s for s in watch.samples if s[0] < watch.deleting_at]
    check(seen and seen[0][1] > 0, f"brokers 3 and 4 held no replicas when the scale-down began: {seen[:1]}")
    last = seen[-1]
    check(last[1] == 0, f"Metadata {watch.deleting_at - last[0]:.1f} s before the first removed pod was deleted still "
          f"placed {last[1]} partitions on brokers 3 or 4 (e.g. {last[2]})")
    after = [s for s in watch.samples if s[0] > watch.deleting_at]
    check(all(s[1] == 0 for s in after), f"replicas on brokers 3 or 4 after their pods went: {[s for s in after if s[1]][:3]}")
    check(watch.drain, "status.drain was never seen during the scale-down")
    parts, ids = metadata()
    check(ids == [0, 1, 2], f"Metadata lists brokers {ids} after the scale-down")
    check(canary_grown is None, f"with 5 brokers: {canary_grown}")
    check(len(canary_after_spread) == 5 and all(len(r) == 3 for r, _ in canary_after_spread.values()),
          f"__oxka_canary after the rebalance, want 5 partitions of RF 3: {canary_after_spread}")
    canary = {k: r for k, (r, _) in parts.items() if k[0] == "__oxka_canary"}
    check(len(canary) == 5 and all(sorted(r) == [0, 1, 2] for r in canary.values()),
          f"__oxka_canary after the scale-down, want its 5 partitions on brokers 0, 1, 2: {canary}")
    check(rolled_while_producing, "the producer was not running throughout")
    numbers.update({"up_s": round(up_s), "spread_s": round(spread_s), "down_s": round(down_s), "leaders_on_5": leads,
                    "replicas_on_5": holds, "partitions_on_3_4_at_start": seen[0][1],
                    "empty_before_delete_s": round(watch.deleting_at - next(s[0] for s in seen if s[1] == 0), 1),
                    "drain_partitions": watch.drain[0].get("partitionsLeft")})
    return numbers


def kafka_topic_on_pods():
    """KafkaTopic against the pods' cluster: created (Kafka's kafka-topics shows its partitions, RF and
    retention.ms), grown from 3 to 6 partitions with a new retention.ms, deleted; one whose replication factor
    is above the broker count is refused with Kafka's error in status and never exists in Kafka."""
    def apply(name, spec):
        doc = {"apiVersion": "oxka.io/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": name, "namespace": NS},
               "spec": dict({"cluster": CLUSTER}, **spec)}
        sh("kubectl", "apply", "-f", "-", input=json.dumps(doc))

    def topic_ready(name, status, reason=None):
        def done():
            t = get("kafkatopic", name)
            c = condition(t, "Ready")
            ok = (c and t["status"].get("observedGeneration") == t["metadata"]["generation"] and c["status"] == status
                  and (reason is None or c["reason"] == reason))
            return t if ok else None
        return wait_for(f"KafkaTopic {name} Ready={status} {reason or ''}", done, 60, 1)

    def describe(name):
        out = kafka("topics", "--bootstrap-server", BOOTSTRAP, "--describe", "--topic", name).stdout
        m = re.search(r"PartitionCount: (\d+)\s+ReplicationFactor: (\d+)\s+Configs: (\S*)", out)
        check(m, f"kafka-topics --describe {name}: {out[-500:]}")
        return int(m.group(1)), int(m.group(2)), dict(kv.split("=", 1) for kv in m.group(3).split(",") if "=" in kv)

    apply("orders", {"partitions": 3, "replicationFactor": 3, "config": {"retention.ms": "3600000"}})
    apply("too-wide", {"partitions": 1, "replicationFactor": 4})
    topic_ready("orders", "True")
    got = describe("orders")
    check(got[:2] == (3, 3) and got[2].get("retention.ms") == "3600000", f"orders in Kafka: {got}")
    t = topic_ready("too-wide", "False", "InvalidReplicationFactor")
    refused = condition(t, "Ready")["message"]
    check("INVALID_REPLICATION_FACTOR (38)" in refused, f"too-wide's Ready message should carry Kafka's error: {refused}")
    sh("kubectl", "patch", "kafkatopic", "orders", "-n", NS, "--type", "merge", "-p",
       json.dumps({"spec": {"partitions": 6, "config": {"retention.ms": "7200000"}}}))
    topic_ready("orders", "True")
    grown = describe("orders")
    check(grown[:2] == (6, 3) and grown[2].get("retention.ms") == "7200000", f"orders in Kafka after the change: {grown}")
    check(("too-wide", 0) not in metadata()[0], "a refused KafkaTopic exists in Kafka")
    sh("kubectl", "delete", "kafkatopic", "orders", "too-wide", "-n", NS, "--timeout=60s", timeout=90)
    wait_for("orders to leave Kafka", lambda: not any(k[0] == "orders" for k in metadata()[0]), 60, 1)
    return {"created": got[:2], "grown": grown[:2], "retention_ms": grown[2].get("retention.ms"),
            "refused": refused[:120]}


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
    """A broker pod deleted comes back with its PVC and its data, and is no roll: status.lastRoll stays
    as it was (issue 11: any pod replacement used to be recorded as a roll, with a RollFinished Event)."""
    last_roll_before = get("kafkacluster", CLUSTER)["status"].get("lastRoll")
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
    last_roll_after = get("kafkacluster", CLUSTER)["status"].get("lastRoll")
    check(last_roll_after == last_roll_before,
          f"the pod's replacement was recorded as a roll: lastRoll {last_roll_before} -> {last_roll_after}")
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
    # (brokers removed by a scale-down leave their PVCs too, as a StatefulSet does)
    members = {f"data-{CLUSTER}-{r}-{i}" for r in ("broker", "coordinator") for i in range(3)}
    check(members <= pvcs, f"PVCs before delete: {sorted(pvcs)}, want at least {sorted(members)}")
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


SCENARIOS = [operator_pod, minimal_ready, clients_through_bootstrap, distribution_in_broker_pod, external_nodeport,
             rolling_restart_under_load, invalid_change_touches_no_pod, scale_out_and_in_under_load,
             kafka_topic_on_pods, stuck_broker_stops_the_roll, missing_image_stops_the_roll, broker_pod_deleted,
             coordinator_leader_deleted,
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
