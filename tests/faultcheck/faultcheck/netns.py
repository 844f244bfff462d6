"""The checker's private network: one Linux network namespace per oxka process on one bridge.

Layout (SUBNET = 10.213.0.0/24, fixed so that a crashed run's leftovers can be found by name):

    root namespace  bridge oxfc0, 10.213.0.1      the checker: producers, admin, read-back, health
    oxfc-c<i>       10.213.0.(10+i), eth0          coordinator i
    oxfc-b<i>       10.213.0.(100+i), eth0         broker i

Every process has its own address, so every one of them uses the same well-known ports (2181, 9092,
...) with no clash with anything else on the machine. A network partition of broker i is a pair of
iptables DROP rules *inside* oxfc-b<i> (INPUT from / OUTPUT to every other coordinator and broker):
the broker is cut off from the cluster while the checker, at 10.213.0.1, still reaches it (producers
keep talking to it, as clients on the far side of a real partition would). Healing flushes them.

Everything is named with the prefix `oxfc`, so `cleanup()` removes all of it, ours or a crashed
run's: the namespaces (which takes their veth ends, addresses and iptables rules with them), the
host ends of the veths, the bridge. Processes inside a namespace are killed before it is deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

PREFIX = "oxfc"
BRIDGE = "oxfc0"
SUBNET = "10.213.0"
HOST_IP = f"{SUBNET}.1"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(list(args), capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out


def coordinator_ns(i: int) -> str:
    return f"{PREFIX}-c{i}"


def broker_ns(i: int) -> str:
    return f"{PREFIX}-b{i}"


def coordinator_ip(i: int) -> str:
    return f"{SUBNET}.{10 + i}"


def broker_ip(i: int) -> str:
    return f"{SUBNET}.{100 + i}"


def our_namespaces() -> list[str]:
    out = run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX + "-")]


def kill_namespace_processes(ns: str) -> list[int]:
    """SIGKILL every process in namespace `ns` (only ours ever run there); the pids killed."""
    pids = [int(p) for p in run("ip", "netns", "pids", ns, check=False).stdout.split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)  # a stopped process dies on SIGKILL too, but be explicit
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + 5
    while time.time() < deadline and run("ip", "netns", "pids", ns, check=False).stdout.split():
        time.sleep(0.05)
    return pids


def cleanup() -> list[str]:
    """Removes every oxfc namespace (killing its processes), veth and the bridge. Idempotent; returns
    what it removed, for the log."""
    removed = []
    for ns in our_namespaces():
        pids = kill_namespace_processes(ns)
        run("ip", "netns", "del", ns, check=False)
        removed.append(f"netns {ns}" + (f" (killed pids {pids})" if pids else ""))
    links = run("ip", "-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX) and name != BRIDGE:
            run("ip", "link", "del", name, check=False)
            removed.append(f"link {name}")
    if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        run("ip", "link", "del", BRIDGE)
        removed.append(f"bridge {BRIDGE}")
    return removed


def setup(coordinators: int, brokers: int) -> None:
    """Creates the bridge and one namespace per process. Call cleanup() first."""
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    members = [(coordinator_ns(i), coordinator_ip(i)) for i in range(1, coordinators + 1)]
    members += [(broker_ns(i), broker_ip(i)) for i in range(1, brokers + 1)]
    for ns, ip in members:
        host_end = ns  # e.g. oxfc-b1: at most 15 characters
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", host_end, "master", BRIDGE)
        run("ip", "link", "set", host_end, "up")
        run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
    # Bridged frames may be run through the root namespace's iptables (br_netfilter); a FORWARD
    # policy of DROP there (Docker sets one) would cut the namespaces off from each other.
    policy = run("iptables", "-S", "FORWARD", check=False).stdout
    if "-P FORWARD DROP" in policy:
        run("iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
            "-m", "comment", "--comment", PREFIX)


def remove_forward_rule() -> None:
    while run("iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
              "-m", "comment", "--comment", PREFIX, check=False).returncode == 0:
        pass


def cut_off(ns: str, peers: list[str]) -> None:
    """Drops every packet between namespace `ns` and the addresses `peers` (both directions), inside
    `ns`, so the host (the checker) still reaches it."""
    for peer in peers:
        run("ip", "netns", "exec", ns, "iptables", "-I", "INPUT", "-s", peer, "-j", "DROP")
        run("ip", "netns", "exec", ns, "iptables", "-I", "OUTPUT", "-d", peer, "-j", "DROP")


def heal(ns: str) -> None:
    run("ip", "netns", "exec", ns, "iptables", "-F", "INPUT")
    run("ip", "netns", "exec", ns, "iptables", "-F", "OUTPUT")
