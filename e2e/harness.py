"""The e2e harness shared by scenarios.py and topic_scenarios.py: commands (kubectl, helm), waiting,
checks, and the processes the scenarios start (the operator with the chart's identity, real oxka
brokers on loopback). scenarios.py's main fills ARGS before the first scenario runs; the lists of
started processes are stopped by main at the end.
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
import traceback
import urllib.error
import urllib.request

ARGS = None  # the command line of scenarios.py (paths, API server, kafka_port, operator_kubeconfig)
OPERATOR = None  # (Popen, metrics URL) of the operator the scenarios talk to
BROKERS = []  # oxka broker processes started here
OPERATORS = []  # (Popen, log path) of operator processes started here
NS = "e2e"
OP_NS = "oxka-system"
RELEASE = "oxka-operator"


class Failed(Exception):
    pass


def sh(*cmd, input=None, check=True, kubeconfig=True):
    cmd = list(cmd)
    if kubeconfig and cmd[0] in ("kubectl", "helm"):
        cmd[1:1] = ["--kubeconfig", ARGS.kubeconfig]
    r = subprocess.run(cmd, input=input, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise Failed(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def kubectl_json(*args):
    out = sh("kubectl", *args, "-o", "json").stdout
    return json.loads(out)


def get(kind, name, ns=NS):
    r = sh("kubectl", "get", kind, name, "-n", ns, "-o", "json", check=False)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def wait_for(what, fn, timeout=60, interval=0.3):
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
    raise Failed(f"timed out after {timeout}s waiting for {what} (last: {last})")


def condition(kc, type_):
    for c in (kc or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return {}


def kc(name="demo", ns=NS):
    return get("kafkacluster", name, ns)


def patch_kc(patch, name="demo", ns=NS, check=True):
    return sh("kubectl", "patch", "kafkacluster", name, "-n", ns, "--type", "merge", "-p", json.dumps(patch), check=check)


def mark_pods_ready(ns=NS, instance="demo"):
    """The kubelet's part: every pod of the cluster that is not Running and Ready becomes so."""
    pods = kubectl_json("get", "pods", "-n", ns, "-l", f"app.kubernetes.io/instance={instance}")["items"]
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        st = pod.get("status", {})
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
        if st.get("phase") == "Running" and ready:
            continue
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}}
        sh("kubectl", "patch", "pod", pod["metadata"]["name"], "-n", ns, "--subresource=status",
           "--type", "merge", "-p", json.dumps(status), check=False)


def settle(name="demo", ns=NS, timeout=90):
    """Plays kubelet until the KafkaCluster reports Ready and Progressing=False for its generation."""
    def done():
        mark_pods_ready(ns, name)
        k = kc(name, ns)
        gen = k["metadata"]["generation"]
        ok = (condition(k, "Ready").get("status") == "True"
              and condition(k, "Progressing").get("status") == "False"
              and k.get("status", {}).get("observedGeneration") == gen)
        return k if ok else None
    return wait_for(f"KafkaCluster {ns}/{name} to become Ready", done, timeout, interval=0.5)


def sts(name, ns=NS):
    return get("statefulset", name, ns)


def template_hash(s):
    return s["spec"]["template"]["metadata"]["annotations"]["oxka.io/config-hash"]


def pods(ns, selector):
    return kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]


def check(cond, message):
    if not cond:
        raise Failed(message)


# --- operator process -------------------------------------------------------------------------

def operator_kubeconfig():
    """A kubeconfig that authenticates as the chart's ServiceAccount."""
    token = sh("kubectl", "create", "token", RELEASE, "-n", OP_NS, "--duration=2h").stdout.strip()
    path = os.path.join(ARGS.work, "operator.kubeconfig")
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {{server: "{ARGS.apiserver}", certificate-authority: "{ARGS.ca}"}}
contexts:
- name: e2e
  context: {{cluster: e2e, user: sa, namespace: {OP_NS}}}
current-context: e2e
users:
- name: sa
  user: {{token: "{token}"}}
""")
    return path


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_operator(identity):
    port = free_port()
    log = os.path.join(ARGS.work, "logs", f"operator-{identity}-{len(OPERATORS)}.log")
    env = dict(os.environ, KUBECONFIG=ARGS.operator_kubeconfig, RUST_LOG="info,kube=warn",
               POD_NAMESPACE=OP_NS, POD_NAME=identity)
    # Placement checks and KafkaTopics' admin requests go to a local oxka broker (start_oxka_broker)
    # instead of the in-cluster bootstrap Service, which has no pods behind it here. Topics are
    # resynced every 2 s so drift is found quickly.
    p = subprocess.Popen([ARGS.operator, "run", "--leader-election", f"--leader-election-lease={RELEASE}-leader",
                          "--install-crds", f"--metrics-address=127.0.0.1:{port}",
                          f"--kafka-bootstrap-template=127.0.0.1:{ARGS.kafka_port}", "--roll-settle-secs=1",
                          "--roll-address-settle-secs=0", "--topic-resync-secs=2"],
                         env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    OPERATORS.append((p, log))
    url = f"http://127.0.0.1:{port}"
    wait_for(f"operator {identity} /readyz", lambda: http_get(url + "/readyz")[0] == 200, 30)
    return p, url


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


def stop_operator(p, hard=False):
    if p.poll() is None:
        p.kill() if hard else p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start_oxka_broker(broker_id):
    """A real oxka broker on loopback (embedded single-node coordinator) that owns topic `orders`."""
    import socket
    import struct
    d = tempfile.mkdtemp(dir=ARGS.work)
    with open(os.path.join(d, "server.properties"), "w") as f:
        f.write(f"broker.id={broker_id}\nlisteners=PLAINTEXT://127.0.0.1:{ARGS.kafka_port}\n"
                f"log.dirs={d}/data\nmetrics.port={free_port()}\n")
    log = open(os.path.join(ARGS.work, "logs", f"oxka-broker-{broker_id}.log"), "w")
    p = subprocess.Popen([ARGS.oxka, "broker", os.path.join(d, "server.properties")], stdout=log, stderr=subprocess.STDOUT)
    BROKERS.append(p)

    def metadata_orders():
        # Metadata v4 for topic "orders" with allow_auto_topic_creation: the broker creates it.
        client, topic = b"e2e", b"orders"
        body = struct.pack(">hhih", 3, 4, 1, len(client)) + client
        body += struct.pack(">ih", 1, len(topic)) + topic + struct.pack(">b", 1)
        try:
            with socket.create_connection(("127.0.0.1", ARGS.kafka_port), 2) as s:
                s.sendall(struct.pack(">i", len(body)) + body)
                return len(s.recv(4)) == 4
        except OSError:
            return False
    wait_for(f"oxka broker {broker_id} to serve Metadata", metadata_orders, 30)
    return p


def main(scenarios, required, groups):
    """Runs the scenarios in order (with --only: the named ones, the required ones, and every scenario
    of a group one of them belongs to); a failed required scenario stops the run. Returns the exit
    status."""
    ap = argparse.ArgumentParser()
    for a in ("root", "work", "kubeconfig", "apiserver", "ca", "operator", "check-config", "oxka"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--only", default="")
    global ARGS
    ARGS = ap.parse_args()
    ARGS.kafka_port = free_port()
    os.environ["KUBECONFIG"] = ARGS.kubeconfig
    passed = failed = 0
    only = set(filter(None, ARGS.only.split(",")))
    for group in groups:
        names = {f.__name__ for f in group}
        if only & names:
            only |= names
    try:
        for scenario in scenarios:
            if only and scenario.__name__ not in only and scenario not in required:
                continue
            start = time.time()
            try:
                scenario()
                passed += 1
                print(f"PASS {scenario.__name__} ({time.time() - start:.1f}s)", flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure the same way
                failed += 1
                detail = str(e) if isinstance(e, Failed) else traceback.format_exc()
                print(f"FAIL {scenario.__name__} ({time.time() - start:.1f}s): {detail}", flush=True)
                if scenario in required:
                    print("stopping: later scenarios depend on this one", flush=True)
                    break
    finally:
        for p, log in OPERATORS:
            stop_operator(p)
        for p in BROKERS:
            stop_operator(p)
        if failed:
            for _, log in OPERATORS[-2:]:
                print(f"--- last lines of {log}")
                with open(log) as f:
                    print("".join(f.readlines()[-30:]))
    print(f"e2e: {passed} passed, {failed} failed")
    return 1 if failed else 0
