"""faultcheck: proves that no acknowledged record is lost while oxka survives faults.

    tests/faultcheck/run.sh --duration 300 --min-faults-per-kind 30      # what CI runs
    tests/faultcheck/run.sh --self-test                                  # the checker catches bad outcomes

Runs N coordinators and M brokers as processes in their own network namespaces (netns.py, cluster.py),
creates the checked topics (replication factor and min.insync.replicas from the flags), runs producers
with acks=all (half idempotent) sending numbered records (producer.py), injects one fault at a time from
a seeded schedule (faults.py), then stops the producers, reads every partition back and reports
(verify.py, report.py). Exit status: 0 pass, 1 fail (lost, duplicated or reordered records, too few
faults, a cluster that did not recover), 2 the run could not be set up. See docs/testing.md.
"""

from __future__ import annotations

import argparse
import array
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from . import QUIET, netns
from .cluster import TMPFS_SOURCE_PREFIX, Cluster, _die_with_parent
from .faults import KINDS, Injector, Schedule
from .report import summary
from .selftest import tamper, judge_self_test
from .verify import ProducerRecords, read_back

LOCK_FILE = "/run/lock/oxka-faultcheck.lock"
MARKER = ".oxka-faultcheck"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO = PACKAGE_DIR.parent.parent
T0 = time.time()
SETTLE = 0.3


def log(text: str) -> None:
    now = time.time()
    wall = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 10) % 10}"
    print(f"[{now - T0:7.1f}s {wall}] {text}", flush=True)  # UTC wall clock, as in the processes' logs


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="tests/faultcheck/run.sh", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--seed", type=int, default=None, help="fault schedule seed (default: from the clock, printed)")
    ap.add_argument("--duration", type=float, default=300,
                    help="seconds of faults under load; the run goes on (up to twice as long) until every "
                         "kind reached --min-faults-per-kind")
    ap.add_argument("--min-faults-per-kind", type=int, default=30, help="fewer injected faults of any kind fail the run")
    ap.add_argument("--coordinators", type=int, default=3, help="oxka coordinator processes (the Raft ensemble)")
    ap.add_argument("--brokers", type=int, default=3, help="oxka broker processes")
    ap.add_argument("--replication-factor", type=int, default=3, help="of the checked topics")
    ap.add_argument("--min-insync", type=int, default=2, help="min.insync.replicas of the checked topics")
    ap.add_argument("--topics", type=int, default=2, help="checked topics")
    ap.add_argument("--partitions", type=int, default=6, help="partitions per topic")
    ap.add_argument("--producers", type=int, default=4, help="half of them idempotent")
    ap.add_argument("--rate", type=float, default=150, help="records/s per producer")
    ap.add_argument("--value-bytes", type=int, default=100, help="record value size")
    ap.add_argument("--message-timeout-ms", type=int, default=30000, help="librdkafka message.timeout.ms")
    ap.add_argument("--session-timeout-ms", type=int, default=1500, help="coordinators' broker.session.timeout.ms")
    ap.add_argument("--faults", default=",".join(KINDS), help="comma-separated fault kinds")
    ap.add_argument("--disk-mib", type=int, default=256, help="size of each broker's log.dirs tmpfs")
    ap.add_argument("--segment-bytes", type=int, default=1 << 20,
                    help="brokers' log.segment.bytes (small: frequent rolls, more recovery work after kill -9)")
    ap.add_argument("--recovery-timeout", type=float, default=60, help="bound on the wait for a whole cluster after a fault")
    ap.add_argument("--workdir", default="/tmp/oxka-faultcheck", help="config, logs and coordinator data (wiped first)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the workdir after a passing run (a failing run always keeps it)")
    ap.add_argument("--oxka-bin", default=None, help="default: $OXKA_BIN, else $CARGO_TARGET_DIR/debug/oxka")
    ap.add_argument("--rust-log", default="info,openraft=warn")
    ap.add_argument("--self-test", action="store_true",
                    help="after producing, delete and re-append acknowledged records; pass only if the checker reports them")
    args = ap.parse_args(argv)
    if args.seed is None:
        args.seed = int(time.time()) % 1_000_000
    args.kinds = [k for k in args.faults.split(",") if k]
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        ap.error(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    if not 1 <= args.coordinators <= 89 or not 1 <= args.brokers <= 99:
        ap.error("--coordinators must be 1..89 and --brokers 1..99 (addresses 10.213.0.11.. and .101..)")
    if args.producers < 2:
        ap.error("--producers must be at least 2 (one idempotent, one not)")
    if args.self_test and args.partitions < 2:
        ap.error("--self-test needs --partitions 2 or more")
    return args


def find_binary(args) -> str:
    candidates = [args.oxka_bin, os.environ.get("OXKA_BIN")]
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/oxka/target-faults"))
    candidates.append(str(Path(target) / "debug/oxka"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return str(Path(c).resolve())
    raise SystemExit(f"no oxka binary (tried {[c for c in candidates if c]}); build it with "
                     "`cargo build -p oxka-broker --bin oxka` or pass --oxka-bin / OXKA_BIN")


def unmount_stale() -> list[str]:
    removed = []
    for line in Path("/proc/mounts").read_text().splitlines():
        source, point, fstype = line.split()[:3]
        if fstype == "tmpfs" and source.startswith(TMPFS_SOURCE_PREFIX):
            point = point.replace("\\040", " ")
            if netns.run("umount", point, check=False).returncode != 0:
                netns.run("umount", "-l", point, check=False)
            removed.append(f"tmpfs {point}")
    return removed


def cleanup_everything() -> list[str]:
    removed = netns.cleanup()  # kills the processes in the namespaces first
    removed += unmount_stale()
    netns.remove_forward_rule()
    return removed


def prepare_workdir(path: Path) -> None:
    if path.exists():
        if any(path.iterdir()) and not (path / MARKER).exists():
            raise SystemExit(f"--workdir {path} is not empty and was not made by faultcheck; choose another")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by tests/faultcheck; wiped by the next run\n")


def create_topics(bootstrap: str, args) -> list[str]:
    names = [f"checked-{i}" for i in range(args.topics)]
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    new = [NewTopic(n, num_partitions=args.partitions, replication_factor=args.replication_factor,
                    config={"min.insync.replicas": str(args.min_insync), "retention.ms": "-1",
                            "retention.bytes": "-1"}) for n in names]
    for name, future in admin.create_topics(new, request_timeout=30).items():
        try:
            future.result()
        except Exception as e:  # noqa: BLE001
            raise SetupError(f"CreateTopics {name} (replication factor {args.replication_factor}, "
                             f"min.insync.replicas {args.min_insync}) failed: {e}") from None
    return names


class SetupError(Exception):
    pass


class Run:
    def __init__(self, args):
        self.args = args
        self.workdir = Path(args.workdir).resolve()
        self.cluster: Cluster | None = None
        self.injector: Injector | None = None
        self.producers: list[tuple[str, bool, subprocess.Popen, Path]] = []
        self.faults: Counter = Counter()
        self.fault_failures: Counter = Counter()
        self.exits: dict[str, list[str]] = {}
        self.recovery: list[float] = []
        self.recovery_timeouts = 0
        self.problems: list[str] = []
        self.passed = False

    # ---- cluster health -------------------------------------------------------------------------

    def restart_exited(self) -> None:
        for p in self.cluster.processes():
            how = p.reap_if_exited()
            if how:
                log(f"  !! {p.name} exited by itself ({how}); last log lines:\n{p.log_tail(8)}")
                self.exits.setdefault(p.name, []).append(how)
                try:
                    p.spawn()
                except Exception as e:  # noqa: BLE001
                    log(f"  !! restarting {p.name} failed: {e}")

    def wait_whole(self, timeout: float) -> float | None:
        """Waits until every process is up and healthy and, as the controller sees it, every broker
        is unfenced and every checked partition led with a complete ISR; the seconds it took, or None
        after `timeout`."""
        start = time.time()
        last = []
        while time.time() - start < timeout:
            self.restart_exited()
            last = self.cluster.unhealthy()
            if not last:
                try:
                    view = self.injector.controller_view()
                    states = view.partitions
                    fenced = sorted({b.id for b in self.cluster.brokers} - view.brokers)
                    offline = [f"{t}-{p}" for (t, p), (leader, _, _) in states.items() if leader < 0]
                    # With replication: every replica back in the ISR, so that the next fault leaves
                    # at least min.insync.replicas of them.
                    shrunk = [f"{t}-{p} ISR {isr} of {replicas}" for (t, p), (_, replicas, isr) in states.items()
                              if set(isr) != set(replicas)]
                    if fenced:
                        last = [f"the controller has brokers {fenced} fenced"]
                    elif len(states) < len(self.topics) * self.args.partitions:
                        last = [f"Metadata lists {len(states)} checked partitions"]
                    elif offline:
                        last = [f"no leader: {', '.join(offline)}"]
                    elif shrunk:
                        last = [f"ISR not complete: {', '.join(shrunk[:6])}"]
                    else:
                        return time.time() - start
                except Exception as e:  # noqa: BLE001
                    last = [f"Metadata: {e}"]
            time.sleep(0.2)
        log(f"  !! cluster not whole after {timeout:.0f} s: {'; '.join(last)}")
        return None

    # ---- producers ------------------------------------------------------------------------------

    def start_producers(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(PACKAGE_DIR)}
        for i in range(self.args.producers):
            idempotent = i % 2 == 0
            name = f"p{i}{'i' if idempotent else 'n'}"
            out = self.workdir / f"producer-{name}.json"
            spec = {"name": name, "idempotent": idempotent, "bootstrap": self.cluster.bootstrap,
                    "topics": self.topics, "partitions": self.args.partitions, "rate": self.args.rate,
                    "value_bytes": self.args.value_bytes, "message_timeout_ms": self.args.message_timeout_ms,
                    "flush_seconds": self.args.message_timeout_ms / 1000 + 5, "out": str(out),
                    "debug": os.environ.get("FAULTCHECK_RDKAFKA_DEBUG")}
            with open(self.workdir / f"producer-{name}.log", "wb") as plog:
                popen = subprocess.Popen([sys.executable, "-m", "faultcheck.producer", json.dumps(spec)],
                                         env=env, stdout=plog, stderr=plog, preexec_fn=_die_with_parent)
            self.producers.append((name, idempotent, popen, out))

    def stop_producers(self) -> tuple[list[dict], dict[str, ProducerRecords]]:
        for _, _, popen, _ in self.producers:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        summaries, records = [], {}
        for name, idempotent, popen, out in self.producers:
            try:
                popen.wait(timeout=self.args.message_timeout_ms / 1000 + 30)
            except subprocess.TimeoutExpired:
                popen.kill()
                raise SetupError(f"producer {name} did not finish; see {self.workdir}/producer-{name}.log")
            if popen.returncode != 0 or not out.exists():
                raise SetupError(f"producer {name} failed ({popen.returncode}); see {self.workdir}/producer-{name}.log")
            s = json.loads(out.read_text())
            offsets = array.array("q")
            with open(str(out) + ".offsets", "rb") as f:
                offsets.frombytes(f.read())
            summaries.append(s)
            resent = {int(seq): sessions for seq, sessions in s.get("resent", {}).items()}
            records[name] = ProducerRecords(name, idempotent, offsets, resent)
        self.producers = []
        return summaries, records

    def producers_alive(self) -> None:
        for name, _, popen, _ in self.producers:
            if popen.poll() is not None:
                raise SetupError(f"producer {name} exited early ({popen.returncode}); "
                                 f"see {self.workdir}/producer-{name}.log")

    # ---- the run --------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        binary = find_binary(a)
        prepare_workdir(self.workdir)
        log(f"seed {a.seed}; oxka {binary}; workdir {self.workdir}")
        netns.setup(a.coordinators, a.brokers)
        self.cluster = Cluster(binary, self.workdir, a.coordinators, a.brokers, a.session_timeout_ms,
                               a.disk_mib, a.rust_log, a.replication_factor, a.segment_bytes)
        self.cluster.mount_disks()
        self.cluster.start()
        log(f"cluster up: coordinators {self.cluster.connect}; brokers {self.cluster.bootstrap}")
        self.topics = create_topics(self.cluster.bootstrap, a)
        self.injector = Injector(self.cluster, self.topics, a.partitions, log)
        if self.wait_whole(60) is None:
            raise SetupError("the new cluster never became whole")
        log(f"topics {self.topics} created ({a.partitions} partitions, RF {a.replication_factor}, "
            f"min.insync.replicas {a.min_insync})")
        self.start_producers()
        time.sleep(3)
        self.producers_alive()

        started = time.time()
        schedule = Schedule(a.seed, a.kinds, a.session_timeout_ms)
        def more_faults() -> bool:
            elapsed = time.time() - started
            if elapsed < a.duration:
                return True
            # On a loaded machine (CI runs other suites beside the checker) recoveries take longer and
            # fewer faults fit in the duration: the run goes on, bounded, until every kind has its count.
            short = any(self.faults[k] < a.min_faults_per_kind for k in a.kinds)
            return short and elapsed < a.duration * 2

        while a.kinds and more_faults():
            fault = schedule.next()
            t = time.time()
            try:
                what = self.injector.inject(fault)
                self.faults[fault.kind] += 1
                log(f"fault {fault.number} {fault.kind}: {what}")
            except Exception as e:  # noqa: BLE001 — the cluster's fault, reported; the run goes on
                self.injector.undo_all()
                self.fault_failures[fault.kind] += 1
                log(f"fault {fault.number} {fault.kind}: could not inject: {e}")
            took = self.wait_whole(a.recovery_timeout)
            if took is None:
                self.recovery_timeouts += 1
            else:
                self.recovery.append(took)
                log(f"  whole again after {took:.1f} s (fault and recovery {time.time() - t:.1f} s)")
                time.sleep(SETTLE)  # clients find the new leaders before the next fault
            self.producers_alive()
        producing = time.time() - started + 3

        log("faults done; stopping the producers (they flush what is in flight)")
        summaries, records = self.stop_producers()
        if self.wait_whole(a.recovery_timeout) is None:
            self.problems.append("cluster not whole before the read-back")
        if a.self_test:
            expected = tamper(self.cluster.bootstrap, self.topics, records, log)
        log("reading every partition back")
        total = sum(len(r.acked_offsets) for r in records.values())
        findings = read_back(self.cluster.bootstrap, self.topics, a.partitions, records, timeout=120 + total / 2000)

        verdict = [f"{n} {k}" for k, n in findings.failures().items()]
        for kind in a.kinds:
            if self.faults[kind] < a.min_faults_per_kind:
                verdict.append(f"only {self.faults[kind]} {kind} faults (at least {a.min_faults_per_kind} required)")
        if self.recovery_timeouts:
            verdict.append(f"the cluster did not recover within {a.recovery_timeout:.0f} s "
                           f"after {self.recovery_timeouts} fault(s)")
        if findings.acked == 0:
            verdict.append("no record was acknowledged")
        verdict += self.problems
        panics = self.panics()
        if panics:
            verdict.append(f"{len(panics)} panic(s) in the process logs, first: {panics[0]}")
        text = summary(args=a, seconds_producing=producing, faults=self.faults, fault_failures=self.fault_failures,
                       producers=summaries, findings=findings, exits=self.exits, recovery=self.recovery,
                       recovery_timeouts=self.recovery_timeouts, verdict=verdict)
        print(text, flush=True)
        (self.workdir / "summary.txt").write_text(text + "\n")
        self.passed = not verdict
        if a.self_test:
            return judge_self_test(findings, verdict, expected, log)
        return 0 if not verdict else 1

    def panics(self) -> list[str]:
        """`panicked at` lines in the oxka processes' logs (a panic is a bug even when the process
        survives it)."""
        found = []
        for p in self.cluster.processes():
            try:
                text = p.log.read_text(errors="replace")
            except OSError:
                continue
            found += [f"{p.name}: {line.strip()[:200]}" for line in text.splitlines() if "panicked at" in line]
        return found

    def cleanup(self) -> None:
        for _, _, popen, _ in self.producers:
            if popen.poll() is None:
                popen.kill()
                popen.wait()
        if self.injector is not None:
            self.injector.undo_all()
        if self.cluster is not None:
            self.cluster.stop_all()
            if not self.passed and not self.args.self_test:
                try:
                    self.keep_data()
                except OSError as e:
                    log(f"could not keep the brokers' log dirs: {e}")
        removed = cleanup_everything()
        log(f"cleaned up: {', '.join(removed) if removed else 'nothing left'}")

    def keep_data(self) -> None:
        """Copies the brokers' log dirs off their tmpfs (which is unmounted next), so that a failure
        can be examined (`scripts/kafka 4 dump-log --files ...` shows producer ids and sequences)."""
        for b in self.cluster.brokers:
            source = self.cluster.broker_data_dir(b.id)
            if source.exists():
                target = self.workdir / f"broker-{b.id}-data"
                shutil.copytree(source, target, dirs_exist_ok=True)
                log(f"kept {b.name}'s log dir in {target}")


def interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("faultcheck needs root (network namespaces, iptables, tmpfs mounts)", file=sys.stderr)
        return 2
    for tool in ("ip", "iptables", "mount"):
        if shutil.which(tool) is None:
            print(f"faultcheck needs `{tool}` (Debian: apt-get install iproute2 iptables)", file=sys.stderr)
            return 2
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    lock = open(LOCK_FILE, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another faultcheck run holds {LOCK_FILE}; wait for it to finish", file=sys.stderr)
        return 2
    stale = cleanup_everything()
    if stale:
        log(f"removed leftovers of an earlier run: {', '.join(stale)}")
    # SIGTERM (CI timeouts) and SIGHUP unwind like Ctrl-C, through the cleanup below.
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    run = Run(args)
    code = 2
    try:
        code = run.run()
    except SetupError as e:
        log(f"FAILED: {e}")
        code = 2
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    except Exception:  # noqa: BLE001 — a harness or setup error: say so, clean up, exit 2
        import traceback
        traceback.print_exc()
        code = 2
    finally:
        run.cleanup()
        if code == 0 and not args.keep_logs and not args.self_test:
            shutil.rmtree(run.workdir, ignore_errors=True)
        else:
            log(f"logs and configs kept in {run.workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
