#!/usr/bin/env python3
"""The operator's end-to-end scenarios against a real kube-apiserver (started by e2e/run.sh).

Drives the system as a user would: helm installs the chart, the operator runs as a local process
with the chart's ServiceAccount identity (so the chart's RBAC is what it gets), kubectl applies the
examples. There is no scheduler or kubelet: pods stay Pending, and `mark_pods_ready` plays the
kubelet's part by patching pod status. Only the standard library is used. The helpers and the runner
are in harness.py; the KafkaTopic scenarios in topic_scenarios.py, the drain ones in drain_scenarios.py,
the built-in canary's in canary_scenarios.py.

Prints one line per scenario and a closing 'N passed, M failed' line; exits non-zero on failure.
"""

import json
import os
import sys
import tempfile
import time

import canary_scenarios
import drain_scenarios
import harness as h
import security_scenarios
import topic_scenarios
from harness import (BROKERS, NS, OP_NS, RELEASE, check, condition, get, http_get, kc, kubectl_json,
                     operator_kubeconfig, patch_kc, pods, settle, sh, start_operator, start_oxka_broker,
                     stop_operator, sts, template_hash, wait_for)


# --- scenarios --------------------------------------------------------------------------------

def chart_lint():
    sh("helm", "lint", f"{h.ARGS.root}/charts/oxka-operator", kubeconfig=False)


def chart_template_dry_run():
    sh("kubectl", "create", "namespace", OP_NS)
    rendered = sh("helm", "template", RELEASE, f"{h.ARGS.root}/charts/oxka-operator", "-n", OP_NS, "--include-crds",
                  kubeconfig=False).stdout
    sh("kubectl", "apply", "--dry-run=server", "-f", "-", input=rendered)
    # A namespaced install (Role instead of ClusterRole) must be accepted too.
    rendered = sh("helm", "template", RELEASE, f"{h.ARGS.root}/charts/oxka-operator", "-n", OP_NS,
                  "--set", f"watchNamespace={OP_NS}", kubeconfig=False).stdout
    sh("kubectl", "apply", "--dry-run=server", "-f", "-", input=rendered)
    # Nodes are cluster-scoped: their ClusterRole stays even for a namespaced install, and goes with rbac.nodes=false.
    check(f"name: {RELEASE}-nodes" in rendered, "a namespaced install has no ClusterRole for nodes")
    rendered = sh("helm", "template", RELEASE, f"{h.ARGS.root}/charts/oxka-operator", "-n", OP_NS,
                  "--set", "rbac.nodes=false", kubeconfig=False).stdout
    check(f"name: {RELEASE}-nodes" not in rendered and "nodes]" not in rendered, "rbac.nodes=false still grants nodes")


def helm_install():
    sh("helm", "install", RELEASE, f"{h.ARGS.root}/charts/oxka-operator", "-n", OP_NS)
    sh("kubectl", "wait", "--for=condition=Established", "crd/kafkaclusters.oxka.io", "--timeout=30s")
    check(get("serviceaccount", RELEASE, OP_NS), "the chart created no ServiceAccount")
    h.ARGS.operator_kubeconfig = operator_kubeconfig()


def operator_starts_with_chart_rbac():
    h.OPERATOR = start_operator("op-a")
    lease = wait_for("the leader Lease", lambda: get("lease", f"{RELEASE}-leader", OP_NS), 30)
    check(lease["spec"]["holderIdentity"] == "op-a", f"lease holder is {lease['spec'].get('holderIdentity')}")
    # RBAC is real: the ServiceAccount cannot read Secrets.
    r = sh("kubectl", "--kubeconfig", h.ARGS.operator_kubeconfig, "get", "secrets", "-A", check=False, kubeconfig=False)
    check(r.returncode != 0 and "forbidden" in r.stderr, f"the operator's identity can list secrets: {r.stderr}")
    # It may read pods and nodes (broker.rack), delete pods (health-gated rolls), and change neither.
    for verb, resource, allowed in (("list", "pods", "yes"), ("get", "nodes", "yes"), ("delete", "pods", "yes"),
                                    ("patch", "pods", "no"), ("patch", "nodes", "no")):
        r = sh("kubectl", "--kubeconfig", h.ARGS.operator_kubeconfig, "auth", "can-i", verb, resource, "-A",
               check=False, kubeconfig=False)
        check(r.stdout.strip() == allowed, f"can-i {verb} {resource}: {r.stdout.strip()} (want {allowed})")


def minimal_cluster_objects():
    sh("kubectl", "create", "namespace", NS)
    sh("kubectl", "apply", "-n", NS, "-f", f"{h.ARGS.root}/examples/minimal.yaml")
    uid = wait_for("the KafkaCluster", lambda: kc())["metadata"]["uid"]
    wait_for("the broker StatefulSet", lambda: sts("demo-broker"))
    expected = [("statefulset", "demo-coordinator"), ("statefulset", "demo-broker"),
                ("service", "demo-coordinator-headless"), ("service", "demo-broker-headless"),
                ("service", "demo-bootstrap"), ("configmap", "demo-coordinator-config"),
                ("configmap", "demo-broker-config"), ("poddisruptionbudget", "demo-coordinator"),
                ("poddisruptionbudget", "demo-broker")]
    for kind, name in expected:
        obj = wait_for(f"{kind} {name}", lambda: get(kind, name))
        owners = obj["metadata"].get("ownerReferences", [])
        check(any(o["uid"] == uid and o.get("controller") for o in owners), f"{kind} {name} is not owned by demo")
    check(sts("demo-coordinator")["spec"]["replicas"] == 3, "coordinators != 3")
    check(sts("demo-broker")["spec"]["replicas"] == 3, "brokers != 3")
    for name in ("demo-broker", "demo-coordinator"):
        check(get("pdb", name)["spec"]["maxUnavailable"] == 1, f"PDB {name} maxUnavailable != 1")
    data = get("configmap", "demo-broker-config")["data"]
    check(sorted(data) == [f"server-{i}.properties" for i in range(3)], f"broker ConfigMap keys {sorted(data)}")
    check("advertised.listeners=INTERNAL://demo-broker-1.demo-broker-headless.e2e.svc.cluster.local:9092" in data["server-1.properties"],
          "broker 1 does not advertise its pod DNS name")
    zk = get("configmap", "demo-coordinator-config")["data"]
    check(zk["myid-2"].strip() == "3" and "server.3=demo-coordinator-2." in zk["zookeeper-0.properties"], "coordinator ids")
    # The controller-manager made pods, with the ordinal label the pods use to pick their file.
    p = wait_for("6 pods", lambda: (lambda ps: ps if len(ps) == 6 else None)(pods(NS, "app.kubernetes.io/instance=demo")))
    check(all("apps.kubernetes.io/pod-index" in x["metadata"]["labels"] for x in p), "pods lack the pod-index label")
    status = wait_for("status", lambda: (kc().get("status") or {}).get("bootstrapAddress"))
    check(status == "demo-bootstrap.e2e.svc:9092", f"bootstrap address {status}")


def subset(want, have, path=""):
    """Every field in `want` is in `have` with the same value (lists element by element)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return f"{path}: {have!r} is not an object"
        for k, v in want.items():
            if k not in have:
                return f"{path}.{k} missing"
            err = subset(v, have[k], f"{path}.{k}")
            if err:
                return err
        return None
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return f"{path}: list length {len(want)} != {len(have) if isinstance(have, list) else have!r}"
        for i, (w, h) in enumerate(zip(want, have)):
            err = subset(w, h, f"{path}[{i}]")
            if err:
                return err
        return None
    if want != have and str(want) != str(have):
        return f"{path}: want {want!r}, have {have!r}"
    return None


def render_matches_live_objects():
    live_kc = sh("kubectl", "get", "kafkacluster", "demo", "-n", NS, "-o", "json").stdout
    rendered = json.loads(sh(h.ARGS.operator, "render", "-f", "-", "-o", "json", input=live_kc, kubeconfig=False).stdout)
    check(len(rendered["items"]) == 9, f"render printed {len(rendered['items'])} objects")
    for obj in rendered["items"]:
        name = obj["metadata"]["name"]
        live = get(obj["kind"], name)
        check(live is not None, f"rendered {obj['kind']} {name} does not exist")
        err = subset(obj, live)
        check(err is None, f"{obj['kind']} {name} differs from `oxka-operator render`: {err}")


def live_configs_parse():
    """Every pod's file, as it sits in the live ConfigMaps, is accepted by oxka's own parsers."""
    files = []
    d = tempfile.mkdtemp(dir=h.ARGS.work)
    for cm in ("demo-broker-config", "demo-coordinator-config"):
        for key, text in get("configmap", cm)["data"].items():
            if not key.endswith(".properties"):
                continue
            path = os.path.join(d, key)
            with open(path, "w") as f:
                f.write(text)
            files.append(path)
    check(len(files) == 6, f"expected 3 broker and 3 coordinator files, found {len(files)}")
    r = sh(h.ARGS.check_config, *files, check=False, kubeconfig=False)
    check(r.returncode == 0, f"oxka refused a rendered config: {r.stderr}")


def production_example():
    sh("kubectl", "create", "namespace", "kafka")
    sh("kubectl", "apply", "-f", f"{h.ARGS.root}/examples/production.yaml")
    wait_for("prod brokers", lambda: sts("prod-broker", "kafka"))
    ports = []
    for i in range(5):
        svc = wait_for(f"external service {i}", lambda: get("service", f"prod-broker-{i}-external", "kafka"))
        check(svc["spec"]["type"] == "NodePort", "external service type")
        ports.append(svc["spec"]["ports"][0]["nodePort"])
    check(ports == list(range(31090, 31095)), f"node ports {ports}")
    data = get("configmap", "prod-broker-config", "kafka")["data"]
    check("EXTERNAL://kafka.example.com:31094" in data["server-4.properties"], "broker 4 external address")
    pod = sts("prod-broker", "kafka")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    check(env["KAFKA_HEAP_OPTS"] == "-Xmx4G -Xms4G", f"heap {env['KAFKA_HEAP_OPTS']}")
    check(pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone", "rack spread")


def bind(pod, node, ns):
    """The scheduler's part: bind a pod to a node through the pods/binding subresource."""
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod, "namespace": ns},
               "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
    sh("kubectl", "create", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}/binding", "-f", "-", input=json.dumps(binding))


def racks_from_nodes():
    """spec.rack: each broker's broker.rack is its node's label, written into its own file only, never into
    the StatefulSet; missing labels and missing RBAC are reported, and what cannot be read is kept."""
    ns, key = "kafka", "topology.kubernetes.io/zone"
    nodes = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "e2e-node-a", "labels": {key: "zone-a"}}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "e2e-node-b"}}]}
    sh("kubectl", "apply", "-f", "-", input=json.dumps(nodes))
    settle("prod", ns, timeout=120)  # the broker ConfigMap is only written while the ensemble is settled
    before = sts("prod-broker", ns)
    data = lambda: get("configmap", "prod-broker-config", ns)["data"]  # noqa: E731
    prod = lambda: kc("prod", ns)  # noqa: E731

    def rack_of(i):
        """The broker.rack line of broker i's file in the live ConfigMap, if any."""
        lines = data()[f"server-{i}.properties"].splitlines()
        return next((line for line in lines if line.startswith("broker.rack=")), None)
    init = before["spec"]["template"]["spec"]["initContainers"][0]
    check(init["command"][:2] == ["oxka", "await-config"] and "broker.rack" in init["command"], f"init {init['command']}")

    bind("prod-broker-0", "e2e-node-a", ns)
    wait_for("broker.rack=zone-a in broker 0's file", lambda: rack_of(0) == "broker.rack=zone-a", 30)
    d = data()
    check(d["rack-node-0"].strip() == "e2e-node-a", f"rack-node-0 is {d.get('rack-node-0')!r}")
    check(all("broker.rack" not in d[f"server-{i}.properties"] for i in range(1, 5)), "other brokers got a rack")

    # A node without the label: no rack, and the reason in status and an Event.
    bind("prod-broker-1", "e2e-node-b", ns)
    c = wait_for("Degraded/RackUnknown", lambda: (lambda c: c if c.get("reason") == "RackUnknown" else None)(condition(prod(), "Degraded")), 30)
    check(f"node e2e-node-b has no label {key}: broker 1 gets no broker.rack" in c["message"], c["message"])
    check("broker.rack" not in data()["server-1.properties"], "broker 1 got a rack from an unlabelled node")
    events = kubectl_json("get", "events", "-n", ns)["items"]
    check(any(e["reason"] == "RackUnknown" and e["type"] == "Warning" and "e2e-node-b" in e.get("note", e.get("message", ""))
              for e in events), "no Warning event RackUnknown naming the node")
    sh("kubectl", "label", "node", "e2e-node-b", f"{key}=zone-b")
    wait_for("broker.rack=zone-b for broker 1 once its node is labelled", lambda: rack_of(1) == "broker.rack=zone-b", 40)
    wait_for("Degraded=False", lambda: condition(prod(), "Degraded").get("status") == "False", 30)

    # Without RBAC for nodes: the reason names the chart value, and racks already rendered are kept.
    crb = kubectl_json("get", "clusterrolebinding", f"{RELEASE}-nodes")
    sh("kubectl", "delete", "clusterrolebinding", f"{RELEASE}-nodes")
    bind("prod-broker-2", "e2e-node-a", ns)
    c = wait_for("RackUnknown for lack of RBAC", lambda: (lambda c: c if "may not get nodes" in c.get("message", "") else None)(condition(prod(), "Degraded")), 40)
    check("rbac.nodes=true" in c["message"] and "broker 0 keeps broker.rack=zone-a" in c["message"], c["message"])
    check(rack_of(0) == "broker.rack=zone-a" and rack_of(1) == "broker.rack=zone-b", "racks changed while nodes were unreadable")
    for k in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        crb["metadata"].pop(k, None)
    sh("kubectl", "create", "-f", "-", input=json.dumps(crb))
    wait_for("broker.rack=zone-a for broker 2 once nodes are readable", lambda: rack_of(2) == "broker.rack=zone-a", 40)
    wait_for("Degraded=False", lambda: condition(prod(), "Degraded").get("status") == "False", 30)

    # Racks are per pod: the StatefulSet (template, hash, generation) never changed.
    after = sts("prod-broker", ns)
    check(after["metadata"]["generation"] == before["metadata"]["generation"], "racks changed the StatefulSet's generation")
    check(template_hash(after) == template_hash(before), "racks changed the config hash")
    check(after["spec"]["template"] == before["spec"]["template"], "racks changed the pod template")
    # Reconciles that learn nothing new write nothing (pods and nodes are read, not changed).
    cm_version = get("configmap", "prod-broker-config", ns)["metadata"]["resourceVersion"]
    # (Only Degraded is compared: the node lifecycle controller may mark pods on these kubelet-less nodes
    # NotReady at any time, which rightly changes Ready.)
    degraded = condition(prod(), "Degraded")
    for i in range(2):
        sh("kubectl", "annotate", "--overwrite", "kafkacluster", "prod", "-n", ns, f"e2e/poke={i}")
        time.sleep(1.5)
    check(get("configmap", "prod-broker-config", ns)["metadata"]["resourceVersion"] == cm_version,
          "a no-op reconcile rewrote the broker ConfigMap")
    check(condition(prod(), "Degraded") == degraded, "a no-op reconcile changed the Degraded condition")
    check(sts("prod-broker", ns)["metadata"]["generation"] == before["metadata"]["generation"], "generation moved")

    # The init container's contract, run with the live files as the kubelet would mount them.
    d = data()
    mount = tempfile.mkdtemp(dir=h.ARGS.work)
    for name, text in d.items():
        with open(os.path.join(mount, name), "w") as f:
            f.write(text)

    def await_rack(index, node, timeout):
        cmd = [a.replace("$(POD_INDEX)", str(index)).replace("$(NODE_NAME)", node).replace("/etc/oxka", mount)
               for a in init["command"]]
        cmd = [h.ARGS.oxka] + cmd[1:]
        cmd[cmd.index("--timeout-secs") + 1] = str(timeout)
        return sh(*cmd, check=False, kubeconfig=False)
    r = await_rack(0, "e2e-node-a", 5)
    check(r.returncode == 0, f"await-config for broker 0 failed: {r.stderr}")
    r = await_rack(0, "e2e-node-b", 1)  # a pod of ordinal 0 rescheduled elsewhere waits for its new rack
    check(r.returncode != 0 and "names node e2e-node-a, not this pod's node e2e-node-b" in r.stderr, r.stderr)
    r = await_rack(3, "e2e-node-a", 1)
    check(r.returncode != 0 and "has not yet written broker.rack" in r.stderr and "rbac.nodes=true" in r.stderr
          and f"lacks the label {key}" in r.stderr, r.stderr)
    r = sh(h.ARGS.check_config, os.path.join(mount, "server-0.properties"), check=False, kubeconfig=False)
    check(r.returncode == 0, f"oxka refused a file with broker.rack: {r.stderr}")


def invalid_specs_rejected_by_cel():
    head = "apiVersion: oxka.io/v1alpha1\nkind: KafkaCluster\nmetadata: {name: bad, namespace: e2e}\n"
    cases = [
        ("spec: {coordinators: {replicas: 4}}", "coordinators.replicas must be odd"),
        ("spec: {listeners: {external: {type: NodePort, advertisedHostTemplate: n.example.com}}}", "needs nodePortBase"),
        ("spec: {listeners: {external: {type: LoadBalancer, advertisedHostTemplate: kafka.example.com}}}", "needs {id} in advertisedHostTemplate"),
        ("spec: {coordinators: {heap: lots}}", "heap must be a quantity"),
    ]
    for spec, message in cases:
        r = sh("kubectl", "apply", "-f", "-", input=head + spec + "\n", check=False)
        check(r.returncode != 0 and message in r.stderr, f"{spec!r} was not rejected with {message!r}: {r.stderr or r.stdout}")
        # `render` refuses what the API server refuses, with the same message (one source: the CRD).
        r = sh(h.ARGS.operator, "render", "-f", "-", input=head + spec + "\n", kubeconfig=False, check=False)
        check(r.returncode != 0 and message in r.stderr, f"render accepted {spec!r}: {r.stderr or r.stdout}")
    r = sh("kubectl", "apply", "-f", "-", check=False,
           input=head.replace("name: bad", "name: " + "x" * 41) + "spec: {}\n")
    check(r.returncode != 0 and "at most 40 characters" in r.stderr, f"long name: {r.stderr}")
    r = patch_kc({"spec": {"coordinators": {"replicas": 5}}}, check=False)
    check(r.returncode != 0 and "cannot change after creation" in r.stderr, f"ensemble resize: {r.stderr}")


def first_ready():
    k = settle()
    check(k["status"]["brokers"]["readyReplicas"] == 3, f"status {k['status']}")


def operator_owned_keys_refused_in_status():
    gen = sts("demo-broker")["metadata"]["generation"]
    patch_kc({"spec": {"brokers": {"config": {"broker.id": "7"}}}})
    c = wait_for("Degraded/InvalidSpec", lambda: (lambda c: c if c.get("reason") == "InvalidSpec" else None)(condition(kc(), "Degraded")), 30)
    check("must not set broker.id: the operator sets it from the StatefulSet ordinal" in c["message"], c["message"])
    check(sts("demo-broker")["metadata"]["generation"] == gen, "the broker StatefulSet changed for an invalid spec")
    patch_kc({"spec": {"brokers": {"config": {"broker.id": None}}}})
    wait_for("Degraded=False", lambda: condition(kc(), "Degraded").get("status") == "False", 30)
    settle()


def overrides_the_broker_refuses_never_reach_a_pod():
    """An override the broker itself would refuse at start-up (issue 11: every pod would crash-loop as the
    roll reached it) is refused before anything is applied, in status and by `render` alike."""
    gen = sts("demo-broker")["metadata"]["generation"]
    live_kc = json.dumps(kc())
    patch_kc({"spec": {"brokers": {"config": {"log.retention.hours": "abc"}}}})
    c = wait_for("Degraded/InvalidSpec", lambda: (lambda c: c if c.get("reason") == "InvalidSpec" else None)(condition(kc(), "Degraded")), 30)
    check("the broker would refuse its configuration at start-up" in c["message"]
          and '"abc" for log.retention.hours' in c["message"] and "expected an integer" in c["message"], c["message"])
    check(sts("demo-broker")["metadata"]["generation"] == gen, "the broker StatefulSet changed for a refused override")
    bad = json.loads(live_kc)
    bad["spec"].setdefault("brokers", {}).setdefault("config", {})["log.retention.hours"] = "abc"
    r = sh(h.ARGS.operator, "render", "-f", "-", input=json.dumps(bad), kubeconfig=False, check=False)
    check(r.returncode != 0 and '"abc" for log.retention.hours' in r.stderr, f"render: {r.returncode} {r.stderr}")
    patch_kc({"spec": {"brokers": {"config": {"log.retention.hours": None}}}})
    wait_for("Degraded=False", lambda: condition(kc(), "Degraded").get("status") == "False", 30)
    settle()


def config_change_rolls_one_at_a_time():
    """Brokers use OnDelete: the operator deletes one stale pod, then waits for it to be Ready (played here)
    and for Kafka to say every partition keeps min.insync.replicas without the next one. Kafka here is a
    real oxka broker on loopback (broker 9, not one of demo's), reached through --kafka-bootstrap-template."""
    if not BROKERS:
        start_oxka_broker(9)
    check(sts("demo-broker")["spec"]["updateStrategy"]["type"] == "OnDelete", "the broker StatefulSet is not OnDelete")
    before = kc()["status"]["brokers"]["configHash"]
    coordinator_uids = {p["metadata"]["uid"] for p in pods(NS, "app.kubernetes.io/component=coordinator,app.kubernetes.io/instance=demo")}
    patch_kc({"spec": {"brokers": {"config": {"num.partitions": "6"}}}})
    k = wait_for("a new broker hash and Progressing", lambda: (lambda k: k if k["status"]["brokers"].get("configHash") != before
                 and condition(k, "Progressing").get("status") == "True" else None)(kc()), 30)
    after = k["status"]["brokers"]["configHash"]
    check(condition(k, "Progressing")["reason"] == "RollingBrokers", f"reason {condition(k, 'Progressing')}")
    check(template_hash(sts("demo-broker")) == after, "StatefulSet template hash differs from status")
    roll = wait_for("status.roll", lambda: kc()["status"].get("roll"), 30)
    check(roll["tier"] == "brokers" and roll.get("startedAt"), f"status.roll {roll}")

    # Nothing marks pods ready now: the StatefulSet replaces one broker and waits for it.
    def stalled():
        ps = pods(NS, "app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo")
        new = [p for p in ps if p["metadata"]["annotations"].get("oxka.io/config-hash") == after]
        return (ps, new) if len(new) == 1 and len(ps) == 3 else None
    _, new = wait_for("one broker restarted", stalled, 30)
    check(new[0]["metadata"]["name"] == "demo-broker-2", f"restarted {new[0]['metadata']['name']} first")
    time.sleep(2)
    _, new = stalled() or (None, [])
    check(len(new) == 1, "a second broker restarted before the first was Ready")
    settle()
    ps = pods(NS, "app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo")
    check(all(p["metadata"]["annotations"]["oxka.io/config-hash"] == after for p in ps), "not every broker runs the new config")
    still = {p["metadata"]["uid"] for p in pods(NS, "app.kubernetes.io/component=coordinator,app.kubernetes.io/instance=demo")}
    check(still == coordinator_uids, "coordinators restarted for a broker-only change")
    check("roll" not in kc()["status"], f"status.roll stayed after the roll: {kc()['status'].get('roll')}")
    events = kubectl_json("get", "events", "-n", NS)["items"]
    restarted = {e.get("note", e.get("message", "")).split()[2] for e in events if e["reason"] == "RestartingPod"}
    check({"demo-broker-0", "demo-broker-1", "demo-broker-2"} <= restarted, f"RestartingPod events for {restarted}")


def coordinators_roll_before_brokers():
    old_image = sts("demo-broker")["spec"]["template"]["spec"]["containers"][0]["image"]
    patch_kc({"spec": {"image": "oxka:e2e-next"}})
    wait_for("coordinators on the new image", lambda: sts("demo-coordinator")["spec"]["template"]["spec"]["containers"][0]["image"] == "oxka:e2e-next", 30)
    k = wait_for("RollingCoordinators", lambda: (lambda k: k if condition(k, "Progressing").get("reason") == "RollingCoordinators" else None)(kc()), 30)
    time.sleep(2)
    check(sts("demo-broker")["spec"]["template"]["spec"]["containers"][0]["image"] == old_image,
          "brokers changed while the ensemble was rolling")
    settle(timeout=120)
    check(sts("demo-broker")["spec"]["template"]["spec"]["containers"][0]["image"] == "oxka:e2e-next", "brokers never rolled")


def scale_up():
    hash_before = template_hash(sts("demo-broker"))
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(NS, "app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo")}
    patch_kc({"spec": {"brokers": {"replicas": 4}}})
    wait_for("4 brokers", lambda: sts("demo-broker")["spec"]["replicas"] == 4, 30)
    check("server-3.properties" in get("configmap", "demo-broker-config")["data"], "no config for broker 3")
    check(template_hash(sts("demo-broker")) == hash_before, "scaling up changed the config hash")
    settle()
    now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(NS, "app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo")}
    check(all(now[n] == u for n, u in uids.items()), "existing brokers restarted on scale-up")


def restart_annotation_rolls_every_pod():
    """`oxka.io/restart` changes every pod template: coordinators roll, then brokers, through the same gate."""
    uids = {p["metadata"]["uid"] for p in pods(NS, "app.kubernetes.io/instance=demo")}
    sh("kubectl", "annotate", "--overwrite", "kafkacluster", "demo", "-n", NS, "oxka.io/restart=e2e-1")
    def annotated(role):
        return sts(f"demo-{role}")["spec"]["template"]["metadata"]["annotations"].get("oxka.io/restart") == "e2e-1"
    wait_for("the restart annotation in the coordinator template", lambda: annotated("coordinator"), 30)
    settle(timeout=150)
    check(annotated("broker"), "the broker template lacks the restart annotation")
    now = {p["metadata"]["uid"] for p in pods(NS, "app.kubernetes.io/instance=demo")}
    check(len(now) == 6 and not (now & uids), f"{len(now & uids)} pods were not restarted")


def a_pod_that_cannot_start_stops_the_roll():
    """An image that does not exist: the first coordinator restarted on it cannot pull it (played here: its
    status says ImagePullBackOff). The roll stops with Degraded/RollStuck naming the pod, nothing else
    restarts; putting the image back restarts that pod first and the roll completes."""
    sel = "app.kubernetes.io/instance=demo"
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(NS, sel)}
    good = kc()["spec"]["image"]
    patch_kc({"spec": {"image": "oxka:does-not-exist"}})

    def broken_pod():
        for p in pods(NS, sel):
            if p["metadata"]["uid"] != uids.get(p["metadata"]["name"]) and not p["metadata"].get("deletionTimestamp"):
                return p
    pod = wait_for("the first pod restarted on the new image", broken_pod, 30)["metadata"]["name"]
    check(pod.startswith("demo-coordinator-"), f"{pod} restarted first, not a coordinator")
    waiting = {"status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                          "containerStatuses": [{"name": "coordinator", "image": "oxka:does-not-exist", "imageID": "",
                                                 "ready": False, "restartCount": 0, "state": {"waiting": {
                                                     "reason": "ImagePullBackOff",
                                                     "message": 'Back-off pulling image "oxka:does-not-exist"'}}}]}}
    sh("kubectl", "patch", "pod", pod, "-n", NS, "--subresource=status", "--type", "merge", "-p", json.dumps(waiting))
    c = wait_for("Degraded/RollStuck", lambda: (lambda c: c if c.get("reason") == "RollStuck" else None)(condition(kc(), "Degraded")), 30)
    check(f"pod {pod} cannot start (ImagePullBackOff" in c["message"], c["message"])
    roll = kc()["status"]["roll"]
    check(roll["state"] == "Stuck" and roll["pod"] == pod and roll["tier"] == "coordinators", f"status.roll {roll}")
    time.sleep(8)  # more than a roll requeue: still nothing else restarts
    now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(NS, sel)}
    others = [n for n in now if n != pod and now[n] != uids.get(n)]
    check(not others, f"restarted past a broken pod: {others}")
    patch_kc({"spec": {"image": good}})
    settle(timeout=150)
    check("roll" not in kc()["status"], f"status.roll {kc()['status'].get('roll')}")
    now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(NS, sel)}
    check(now[pod] != uids[pod], f"{pod} was not restarted after the fix")


def scale_down_refused_while_unverified():
    # Nothing answers Kafka requests now: the scale-down cannot be verified.
    while BROKERS:
        stop_operator(BROKERS.pop())
    patch_kc({"spec": {"brokers": {"replicas": 3}}})
    c = wait_for("ScaleDownBlocked", lambda: (lambda c: c if c.get("reason") == "ScaleDownBlocked" else None)(condition(kc(), "Degraded")), 40)
    check("not removing brokers 3" in c["message"], c["message"])
    check(sts("demo-broker")["spec"]["replicas"] == 4, "brokers were removed without checking where data lives")
    check("server-3.properties" in get("configmap", "demo-broker-config")["data"], "broker 3's config was removed")
    patch_kc({"spec": {"brokers": {"replicas": 4}}})
    wait_for("Degraded=False", lambda: condition(kc(), "Degraded").get("status") == "False", 30)
    settle()


def scale_down_follows_placement():
    """Against a real oxka broker: removing broker 3 is refused while it leads orders-0 and no broker the
    spec keeps is live to take it (the drain has nowhere to move it), allowed when broker 3 holds nothing."""
    broker = start_oxka_broker(3)
    patch_kc({"spec": {"brokers": {"replicas": 3}}})
    c = wait_for("ScaleDownBlocked naming orders-0", lambda: (lambda c: c if "orders-0" in c.get("message", "") else None)(condition(kc(), "Degraded")), 40)
    check("not removing brokers 3: partition orders-0 has replication factor 1 but only 0 live brokers would remain (none)"
          in c["message"], c["message"])
    check(sts("demo-broker")["spec"]["replicas"] == 4, "broker 3 was removed while it led orders-0")
    stop_operator(broker)
    # The partition moved away (here: a broker 0 now owns orders): the operator scales down.
    start_oxka_broker(0)
    sh("kubectl", "annotate", "--overwrite", "kafkacluster", "demo", "-n", NS, "e2e/poke=placement")
    wait_for("3 brokers", lambda: sts("demo-broker")["spec"]["replicas"] == 3, 40)
    check("server-3.properties" not in get("configmap", "demo-broker-config")["data"], "broker 3's config is still rendered")
    wait_for("Degraded=False", lambda: condition(kc(), "Degraded").get("status") == "False", 30)
    settle()


def pause_annotation_stops_reconciliation():
    sh("kubectl", "annotate", "kafkacluster", "demo", "-n", NS, "oxka.io/paused=true")
    wait_for("ReconciliationPaused", lambda: condition(kc(), "Progressing").get("reason") == "ReconciliationPaused", 30)
    before = template_hash(sts("demo-broker"))
    patch_kc({"spec": {"brokers": {"config": {"num.partitions": "7"}}}})
    time.sleep(4)
    check(template_hash(sts("demo-broker")) == before, "a paused cluster was changed")
    sh("kubectl", "annotate", "kafkacluster", "demo", "-n", NS, "oxka.io/paused-")
    wait_for("the change after unpausing", lambda: template_hash(sts("demo-broker")) != before, 30)
    settle()


def operator_restart_converges_without_flapping():
    patch_kc({"spec": {"brokers": {"config": {"num.partitions": "8"}}}})
    time.sleep(0.3)
    stop_operator(h.OPERATOR[0], hard=True)  # mid-reconcile, without a graceful exit
    h.OPERATOR = start_operator("op-b")  # takes over once op-a's lease expires
    settle(timeout=120)

    def snapshot():
        out = {}
        for kind in ("statefulset", "configmap", "service", "poddisruptionbudget"):
            for o in kubectl_json("get", kind, "-n", NS, "-l", "app.kubernetes.io/instance=demo")["items"]:
                out[(kind, o["metadata"]["name"])] = (o["metadata"].get("generation"), o["metadata"]["resourceVersion"])
        return out
    first = snapshot()
    kc_status = kc()["status"]
    for i in range(3):  # each annotation change triggers a reconcile
        sh("kubectl", "annotate", "--overwrite", "kafkacluster", "demo", "-n", NS, f"e2e/poke={i}")
        time.sleep(1.5)
    second = snapshot()
    changed = {k: (first[k], second.get(k)) for k in first if first[k] != second.get(k)}
    check(not changed, f"no-op reconciles changed objects: {changed}")
    check(kc()["status"] == kc_status, "no-op reconciles changed status")


def standby_replica_takes_over():
    standby = start_operator("op-standby")
    time.sleep(3)
    holder = get("lease", f"{RELEASE}-leader", OP_NS)["spec"].get("holderIdentity")
    check(holder == "op-b", f"the standby took the lease from {holder}")
    stopped = time.time()
    stop_operator(h.OPERATOR[0])  # graceful: the leader releases its lease
    wait_for("the standby to lead", lambda: get("lease", f"{RELEASE}-leader", OP_NS)["spec"].get("holderIdentity") == "op-standby", 15)
    took = time.time() - stopped
    check(took < 8, f"fail-over took {took:.1f}s: the lease was not released")
    h.OPERATOR = standby
    sh("kubectl", "annotate", "--overwrite", "kafkacluster", "demo", "-n", NS, "e2e/poke=standby")
    settle()


def crd_upgraded_by_the_operator_on_helm_upgrade():
    """Helm never upgrades crds/: the operator applies its own CRD at startup. Simulate an old CRD in
    the cluster, `helm upgrade`, restart the operator (as the new Deployment would), and the CRD is current."""
    crd = kubectl_json("get", "crd", "kafkaclusters.oxka.io")
    version = crd["spec"]["versions"][0]
    version["additionalPrinterColumns"] = [c for c in version["additionalPrinterColumns"] if c["name"] != "Bootstrap"]
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"].pop("rack")
    for key in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"):
        crd["metadata"].pop(key, None)
    crd.pop("status", None)
    sh("kubectl", "replace", "-f", "-", input=json.dumps(crd))
    old = kubectl_json("get", "crd", "kafkaclusters.oxka.io")
    check("rack" not in old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"], "the old CRD was not installed")
    sh("helm", "upgrade", RELEASE, f"{h.ARGS.root}/charts/oxka-operator", "-n", OP_NS, "--set", "replicaCount=2")
    stop_operator(h.OPERATOR[0])
    h.OPERATOR = start_operator("op-upgraded")

    def current():
        c = kubectl_json("get", "crd", "kafkaclusters.oxka.io")["spec"]["versions"][0]
        return "rack" in c["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"] and \
            any(col["name"] == "Bootstrap" for col in c["additionalPrinterColumns"])
    wait_for("the operator to upgrade the CRD", current, 30)
    check(get("deployment", RELEASE, OP_NS)["spec"]["replicas"] == 2, "helm upgrade did not apply")
    wait_for("the upgraded operator to lead", lambda: get("lease", f"{RELEASE}-leader", OP_NS)["spec"].get("holderIdentity") == "op-upgraded", 30)
    settle()


def metrics_endpoint():
    code, body = http_get(h.OPERATOR[1] + "/metrics")
    check(code == 200, f"/metrics answered {code}")
    for metric in ("oxka_operator_reconciliations_total", "oxka_operator_reconcile_errors_total",
                   "oxka_operator_reconcile_duration_seconds_bucket", "oxka_operator_leader 1",
                   "oxka_operator_roll_pod_restarts_total", "oxka_operator_rolls_stuck_total",
                   "oxka_operator_drain_reassignments_total", "oxka_operator_drains_finished_total"):
        check(metric in body, f"/metrics lacks {metric}")


def events_explain_actions():
    events = kubectl_json("get", "events", "-n", NS)["items"]
    reasons = {e["reason"] for e in events if e.get("involvedObject", {}).get("name") == "demo"}
    for wanted in ("Created", "RollingRestart", "RestartingPod", "RollStuck", "Scaled", "ScaleDownBlocked", "ScalingDown",
                   "DrainStarted", "DrainFinished", "InvalidSpec", "Paused"):
        check(wanted in reasons, f"no {wanted} event (have {sorted(reasons)})")


def delete_removes_children():
    sh("kubectl", "delete", "kafkacluster", "demo", "-n", NS, "--wait=false")

    def gone():
        left = []
        for kind in ("statefulset", "configmap", "service", "poddisruptionbudget"):
            left += [f"{kind}/{o['metadata']['name']}" for o in
                         kubectl_json("get", kind, "-n", NS, "-l", "app.kubernetes.io/instance=demo")["items"]]
        return True if not left else None
    wait_for("the garbage collector to remove demo's objects", gone, 90, interval=1)


SCENARIOS = [
    chart_lint, chart_template_dry_run, helm_install, operator_starts_with_chart_rbac,
    minimal_cluster_objects, render_matches_live_objects, live_configs_parse, production_example, racks_from_nodes,
    invalid_specs_rejected_by_cel, first_ready, operator_owned_keys_refused_in_status,
    overrides_the_broker_refuses_never_reach_a_pod,
    config_change_rolls_one_at_a_time, coordinators_roll_before_brokers, restart_annotation_rolls_every_pod,
    a_pod_that_cannot_start_stops_the_roll, scale_up,
    scale_down_refused_while_unverified, scale_down_follows_placement, *drain_scenarios.SCENARIOS,
    pause_annotation_stops_reconciliation,
    operator_restart_converges_without_flapping, standby_replica_takes_over,
    crd_upgraded_by_the_operator_on_helm_upgrade, metrics_endpoint,
    events_explain_actions, delete_removes_children,
]
# The KafkaTopic scenarios (topic_scenarios.py) run after the KafkaCluster ones, with the same operator.
SCENARIOS[-1:-1] = topic_scenarios.SCENARIOS
# The canary scenarios (canary_scenarios.py) run their own 3-broker oxka cluster and KafkaCluster.
SCENARIOS[-1:-1] = canary_scenarios.SCENARIOS
# The security scenarios (security_scenarios.py) run their own secured oxka broker, KafkaUsers and KafkaCluster.
SCENARIOS[-1:-1] = security_scenarios.SCENARIOS
# Later scenarios need these; when one fails the rest cannot run meaningfully.
REQUIRED = {chart_template_dry_run, helm_install, operator_starts_with_chart_rbac, minimal_cluster_objects}
# Scenarios that build on each other: `--only` naming one of a group runs the whole group.
GROUPS = [topic_scenarios.SCENARIOS, canary_scenarios.SCENARIOS, security_scenarios.SCENARIOS]


if __name__ == "__main__":
    sys.exit(h.main(SCENARIOS, REQUIRED, GROUPS))
