"""The cluster under test: N `oxka coordinator` and M `oxka broker` processes, each in its own network
namespace (see netns.py), with data under the work dir, and each broker's `log.dirs` on its own small
tmpfs so that the checker can fill it (the full-disk fault).

The approach follows the Rust fixtures `broker/tests/common/{cluster,coordinator}.rs`: coordinators get
`server.N=host:peer:election;host:client` lines and a `myid` file, brokers get `broker.id`,
`zookeeper.connect` listing the coordinators' client addresses and a short heartbeat; a coordinator is
up when its client port accepts connections, a broker when its Kafka port does (it binds only after it
registered and the controller unfenced it). Health: `GET /health` on each process's `metrics.port`.

Processes are started with `ip netns exec`, which execs the command in place: the pid we hold *is* the
oxka process, so kill -9, SIGSTOP and SIGCONT reach it directly. Each gets PR_SET_PDEATHSIG=SIGKILL, so
even a checker killed by SIGKILL leaves no oxka process behind.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import netns

CLIENT_PORT = 2181
PEER_PORT = 2888
COORDINATOR_METRICS_PORT = 9405
KAFKA_PORT = 9092
BROKER_METRICS_PORT = 9404
TMPFS_SOURCE_PREFIX = "oxfc-"


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def http_get(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body); (0, reason) when the endpoint does not answer."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        conn.close()
        return resp.status, body
    except (OSError, http.client.HTTPException) as e:
        return 0, f"{type(e).__name__}: {e}"


def accepts(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Process:
    """One oxka process: its namespace, command line and log; restartable on the same data."""

    name: str  # "coordinator 2", "broker 1"
    id: int
    ns: str
    ip: str
    port: int  # client port (coordinator) or Kafka port (broker)
    metrics_port: int
    args: list[str]
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen | None = None
    starts: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    stopped: bool = False  # SIGSTOPped by the checker

    def spawn(self) -> None:
        assert self.popen is None, f"{self.name} is already running"
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"\n==== faultcheck: start #{self.starts} of {self.name} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, **self.env}, preexec_fn=_die_with_parent,
                start_new_session=True,  # Ctrl-C reaches the checker, which then cleans up
            )

    def wait_accepting(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while not accepts(self.ip, self.port):
            if self.popen.poll() is not None:
                code = self.popen.returncode
                self.popen = None
                raise RuntimeError(f"{self.name} exited with {code} while starting; log: {self.log}")
            if time.time() > deadline:
                raise RuntimeError(f"{self.name} did not accept connections on {self.ip}:{self.port} "
                                   f"within {timeout:.0f} s; log: {self.log}")
            time.sleep(0.05)

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def reap_if_exited(self) -> str | None:
        """If the process died by itself, forget it and say how (for the report)."""
        if self.popen is not None and self.popen.poll() is not None:
            code = self.popen.returncode
            self.popen = None
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            self.unexpected_exits.append(how)
            return how
        return None

    def kill9(self) -> None:
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait()
            self.popen = None
            self.stopped = False

    def sigstop(self) -> None:
        os.kill(self.popen.pid, signal.SIGSTOP)
        self.stopped = True

    def sigcont(self) -> None:
        if self.popen is not None:
            os.kill(self.popen.pid, signal.SIGCONT)
        self.stopped = False

    def health(self) -> tuple[int, str]:
        return http_get(self.ip, self.metrics_port, "/health")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, binary: str, workdir: Path, coordinators: int, brokers: int,
                 session_timeout_ms: int, disk_mib: int, rust_log: str, replication_factor: int,
                 segment_bytes: int = 4 << 20):
        self.binary = binary
        self.workdir = workdir
        self.session_timeout_ms = session_timeout_ms
        self.disk_mib = disk_mib
        self.coordinators: list[Process] = []
        self.brokers: list[Process] = []
        env = {"RUST_LOG": rust_log, "NO_COLOR": "1"}
        servers = "".join(
            f"server.{i}={netns.coordinator_ip(i)}:{PEER_PORT}:{PEER_PORT + 1};{netns.coordinator_ip(i)}:{CLIENT_PORT}\n"
            for i in range(1, coordinators + 1))
        for i in range(1, coordinators + 1):
            data = workdir / f"coordinator-{i}"
            data.mkdir(parents=True, exist_ok=True)
            (data / "myid").write_text(f"{i}\n")
            config = workdir / f"coordinator-{i}.properties"
            config.write_text(
                f"dataDir={data}\nclientPort={CLIENT_PORT}\nmetrics.port={COORDINATOR_METRICS_PORT}\n"
                f"raft.election.timeout.ms=500\nraft.heartbeat.interval.ms=100\nrequest.timeout.ms=3000\n"
                f"broker.session.timeout.ms={session_timeout_ms}\n{servers}")
            self.coordinators.append(Process(
                f"coordinator {i}", i, netns.coordinator_ns(i), netns.coordinator_ip(i), CLIENT_PORT,
                COORDINATOR_METRICS_PORT, [binary, "coordinator", str(config)],
                workdir / f"coordinator-{i}.log", {**env, "KAFKA_HEAP_OPTS": "-Xmx64m"}))
        self.connect = ",".join(f"{c.ip}:{CLIENT_PORT}" for c in self.coordinators)
        for i in range(1, brokers + 1):
            ip = netns.broker_ip(i)
            data = self.broker_data_dir(i)
            config = workdir / f"broker-{i}.properties"
            config.write_text("\n".join([
                f"broker.id={i}",
                f"listeners=PLAINTEXT://{ip}:{KAFKA_PORT}",
                f"advertised.listeners=PLAINTEXT://{ip}:{KAFKA_PORT}",
                f"log.dirs={data}",
                f"metrics.port={BROKER_METRICS_PORT}",
                f"zookeeper.connect={self.connect}",
                "broker.heartbeat.interval.ms=250",
                "initial.broker.registration.timeout.ms=30000",
                "auto.create.topics.enable=false",
                "num.partitions=1",
                f"log.segment.bytes={segment_bytes}",
                f"log.index.size.max.bytes={max(4096, min(10 << 20, segment_bytes // 8))}",
                "log.retention.ms=-1",
                "group.initial.rebalance.delay.ms=0",
                f"offsets.topic.replication.factor={replication_factor}",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "",
            ]))
            self.brokers.append(Process(
                f"broker {i}", i, netns.broker_ns(i), ip, KAFKA_PORT, BROKER_METRICS_PORT,
                [binary, "broker", str(config)], workdir / f"broker-{i}.log",
                {**env, "KAFKA_HEAP_OPTS": "-Xmx256m"}))
        self.bootstrap = ",".join(f"{b.ip}:{KAFKA_PORT}" for b in self.brokers)

    def broker_data_dir(self, i: int) -> Path:
        return self.workdir / f"broker-{i}" / "data"

    def broker_disk(self, i: int) -> Path:
        """The tmpfs mount point of broker i (its log.dirs is a directory inside it)."""
        return self.workdir / f"broker-{i}"

    def mount_disks(self) -> None:
        for b in self.brokers:
            mount = self.broker_disk(b.id)
            mount.mkdir(parents=True, exist_ok=True)
            netns.run("mount", "-t", "tmpfs", "-o", f"size={self.disk_mib}m",
                      f"{TMPFS_SOURCE_PREFIX}b{b.id}", str(mount))
            self.broker_data_dir(b.id).mkdir()

    def start(self) -> None:
        for c in self.coordinators:
            c.spawn()
        for c in self.coordinators:
            c.wait_accepting(30)
        self.wait_coordinator_leader(60)
        for b in self.brokers:
            b.spawn()
        for b in self.brokers:
            b.wait_accepting(90)

    def processes(self) -> list[Process]:
        return self.coordinators + self.brokers

    def coordinator_leader(self) -> Process | None:
        """The coordinator whose /health says it is the leader and a quorum acknowledges it."""
        for c in self.coordinators:
            if not c.running() or c.stopped:
                continue
            status, body = c.health()
            if status == 200 and "is the leader" in body:
                return c
        return None

    def wait_coordinator_leader(self, timeout: float) -> Process:
        deadline = time.time() + timeout
        while True:
            leader = self.coordinator_leader()
            if leader is not None:
                return leader
            if time.time() > deadline:
                raise RuntimeError(f"no coordinator leader within {timeout:.0f} s")
            time.sleep(0.1)

    def unhealthy(self) -> list[str]:
        """Why the cluster is not fully healthy (empty when it is): every process running, every
        coordinator and broker /health 200 (a leader with quorum, followers caught up; brokers
        registered and unfenced)."""
        problems = []
        for p in self.processes():
            if not p.running():
                problems.append(f"{p.name} is not running")
                continue
            status, body = p.health()
            if status != 200:
                problems.append(f"{p.name}: /health {status} {body.strip()[:120]}")
        return problems

    def stop_all(self) -> None:
        """SIGKILL everything (the verdict does not depend on a clean shutdown)."""
        for p in self.brokers + self.coordinators:
            if p.stopped:
                p.sigcont()
            p.kill9()
