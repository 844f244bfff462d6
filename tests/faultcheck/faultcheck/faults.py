"""The seeded fault schedule and the injectors.

The schedule is a sequence of rounds; each round is every enabled fault kind once, in an order drawn
from `random.Random(seed)`, and each fault draws its own parameters (which partition's leader, which
broker, how long) from the same generator. So a seed always gives the same sequence of kinds, choices
and durations; what a choice resolves to at run time (which broker leads that partition right now,
which coordinator is the Raft leader) is the cluster's doing and is logged with the fault.

One fault at a time: inject, hold it, undo it, then wait until the cluster is whole again (every
process running, every /health 200, every checked partition led) before the next, so that with
RF 3 / min.insync 2 writes stay possible throughout.
"""

from __future__ import annotations

import errno
import os
import random
import time
from dataclasses import dataclass

from . import netns
from .cluster import Cluster, Process
from .controller_view import ControllerView
from .controller_view import metadata as controller_metadata

KINDS = ["kill-partition-leader", "kill-coordinator-leader", "pause-broker", "partition-broker", "disk-full"]


@dataclass
class Fault:
    number: int
    kind: str
    pick: int  # index into the partitions or brokers, resolved at injection time
    hold: float  # seconds the fault lasts (down time, pause, partition, full disk)


class Schedule:
    def __init__(self, seed: int, kinds: list[str], session_timeout_ms: int):
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.session = session_timeout_ms / 1000
        self.round: list[str] = []
        self.number = 0

    def next(self) -> Fault:
        if not self.round:
            self.round = list(self.kinds)
            self.rng.shuffle(self.round)
        kind = self.round.pop(0)
        self.number += 1
        pick = self.rng.randrange(1 << 30)
        if kind == "kill-partition-leader":
            # Down time before the restart: sometimes within the session timeout (the broker comes
            # back before the controller fences it), sometimes beyond it (fenced, leadership moves).
            hold = self.session * self.rng.uniform(0.15, 1.6)
        elif kind == "kill-coordinator-leader":
            # Half of them: restart within the election timeout (the old leader comes back before the
            # others notice); the other half (hold < 0): restart once the others elected a new leader,
            # plus -hold seconds.
            hold = self.rng.uniform(0.2, 0.5) if self.rng.random() < 0.5 else -self.rng.uniform(0.0, 0.5)
        elif kind in ("pause-broker", "partition-broker"):
            hold = self.session * self.rng.uniform(1.2, 1.6)  # longer than the session timeout
        else:
            hold = self.rng.uniform(0.5, 2.0)
        return Fault(self.number, kind, pick, hold)


class Injector:
    def __init__(self, cluster: Cluster, topics: list[str], partitions: int, log):
        self.cluster = cluster
        self.topics = topics
        self.partitions = partitions
        self.log = log
        self.ballast: list[str] = []
        self.cut: list[str] = []

    def controller_view(self) -> ControllerView:
        """Unfenced brokers and (topic, partition) -> (leader id or -1, replicas, ISR) as the
        coordinator leader's metadata image has them (a broker's own Metadata may be stale)."""
        leader = self.cluster.coordinator_leader()
        if leader is None:
            raise RuntimeError("no coordinator leader to ask for Metadata")
        return controller_metadata(leader.ip, leader.port, self.topics)

    def leaders(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> leader id (-1: none)."""
        return {tp: state[0] for tp, state in self.controller_view().partitions.items()}

    def broker(self, broker_id: int) -> Process:
        return next(b for b in self.cluster.brokers if b.id == broker_id)

    def inject(self, fault: Fault) -> str:
        """Injects, holds and undoes one fault; returns what it did, for the log."""
        return getattr(self, fault.kind.replace("-", "_"))(fault)

    def kill_partition_leader(self, fault: Fault) -> str:
        index = fault.pick % (len(self.topics) * self.partitions)
        tp = (self.topics[index // self.partitions], index % self.partitions)
        try:
            leader = self.leaders().get(tp, -1)
        except Exception as e:  # noqa: BLE001 — Metadata failed: fall back below
            self.log(f"  metadata failed: {e}")
            leader = -1
        if leader < 0:
            victim = self.cluster.brokers[fault.pick % len(self.cluster.brokers)]
            what = f"{tp[0]}-{tp[1]} has no leader in Metadata; killed {victim.name} instead"
        else:
            victim = self.broker(leader)
            what = f"{victim.name}, leader of {tp[0]}-{tp[1]}"
        victim.kill9()
        time.sleep(fault.hold)
        victim.spawn()
        victim.wait_accepting(90)
        return f"kill -9 {what}; restarted after {fault.hold:.1f} s"

    def kill_coordinator_leader(self, fault: Fault) -> str:
        leader = self.cluster.wait_coordinator_leader(30)
        leader.kill9()
        killed = time.time()
        if fault.hold >= 0:
            time.sleep(fault.hold)
            after = self.cluster.coordinator_leader()
        else:
            after = self.cluster.wait_coordinator_leader(30)
            time.sleep(-fault.hold)
        down = time.time() - killed
        leader.spawn()
        leader.wait_accepting(30)
        return (f"kill -9 {leader.name} (Raft leader); restarted after {down:.1f} s; "
                f"leader meanwhile: {after.name if after else 'none yet'}")

    def pause_broker(self, fault: Fault) -> str:
        victim = self.cluster.brokers[fault.pick % len(self.cluster.brokers)]
        victim.sigstop()
        time.sleep(fault.hold)
        victim.sigcont()
        return f"SIGSTOP {victim.name} for {fault.hold:.1f} s, then SIGCONT"

    def partition_broker(self, fault: Fault) -> str:
        victim = self.cluster.brokers[fault.pick % len(self.cluster.brokers)]
        peers = [p.ip for p in self.cluster.processes() if p is not victim]
        netns.cut_off(victim.ns, peers)
        self.cut.append(victim.ns)
        time.sleep(fault.hold)
        self.heal_all()
        return f"cut {victim.name} off from the other brokers and the coordinators for {fault.hold:.1f} s"

    def disk_full(self, fault: Fault) -> str:
        victim = self.cluster.brokers[fault.pick % len(self.cluster.brokers)]
        path = str(self.cluster.broker_disk(victim.id) / "ballast")
        self.ballast.append(path)
        filled = fill(path)
        time.sleep(fault.hold)
        self.free_all()
        return f"filled {victim.name}'s log.dirs tmpfs ({filled >> 20} MiB ballast) for {fault.hold:.1f} s"

    def heal_all(self) -> None:
        while self.cut:
            netns.heal(self.cut.pop())

    def free_all(self) -> None:
        while self.ballast:
            try:
                os.unlink(self.ballast.pop())
            except FileNotFoundError:
                pass

    def undo_all(self) -> None:
        """Whatever fault is still in force (an exception or Ctrl-C in the middle of one)."""
        self.heal_all()
        self.free_all()
        for p in self.cluster.processes():
            if p.stopped:
                p.sigcont()


def fill(path: str) -> int:
    """Writes `path` until the file system is full; returns the bytes written."""
    chunk = b"\0" * (1 << 20)
    written = 0
    with open(path, "wb", buffering=0) as f:
        st = os.statvfs(os.path.dirname(path))
        try:
            os.posix_fallocate(f.fileno(), 0, max(0, st.f_bavail * st.f_frsize - (1 << 20)))
            written = os.fstat(f.fileno()).st_size
            f.seek(written)
        except OSError:
            pass
        while True:
            try:
                written += f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) <= 4096:
                    break
                chunk = chunk[: len(chunk) // 2]
    return written
