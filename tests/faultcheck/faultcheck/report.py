"""The summary table at the end of a run."""

from __future__ import annotations

from collections import Counter

from .verify import Findings


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max([len(k) for k, _ in rows] + [10])
    lines = [f"---- {title} " + "-" * max(0, width + 20 - len(title))]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def summary(*, args, seconds_producing: float, faults: Counter, fault_failures: Counter, producers: list[dict],
            findings: Findings, exits: dict[str, list[str]], recovery: list[float], recovery_timeouts: int,
            verdict: list[str]) -> str:
    out = []
    rec_s = findings.acked / seconds_producing if seconds_producing else 0
    out.append(table([
        ("seed", str(args.seed)),
        ("cluster", f"{args.coordinators} coordinators, {args.brokers} brokers; topics {args.topics} x "
                    f"{args.partitions} partitions, replication factor {args.replication_factor}, "
                    f"min.insync.replicas {args.min_insync}"),
        ("producers", ", ".join(f"{p['name']}({'idempotent' if p['idempotent'] else 'plain'})" for p in producers)
                      + f"; acks=all, {args.rate:g} records/s each"),
        ("producing", f"{seconds_producing:.0f} s; {findings.sent} sent, {findings.acked} acknowledged "
                      f"({rec_s:.0f} acknowledged records/s)"),
        ("read back", f"{findings.records_read} records from {findings.partitions_read} partitions"),
    ], "faultcheck run"))

    rows = [(k, f"{faults.get(k, 0)} injected" + (f", {fault_failures[k]} failed to inject" if fault_failures.get(k) else ""))
            for k in args.kinds]
    rows.append(("total", f"{sum(faults.values())} (at least {args.min_faults_per_kind} of each kind required)"))
    if recovery:
        rows.append(("recovery", f"median {sorted(recovery)[len(recovery) // 2]:.1f} s, max {max(recovery):.1f} s; "
                                 f"{recovery_timeouts} timed out"))
    out.append(table(rows, "faults"))

    delivery: Counter = Counter()
    client: Counter = Counter()
    request: Counter = Counter()
    fatal = 0
    for p in producers:
        delivery.update(p["delivery_errors"])
        request.update(p["request_errors"])
        client.update(p["client_errors"])
        fatal += len(p["fatal"])
    rows = [(f"batch error (retried): {k}", str(v)) for k, v in request.most_common()]
    rows += [(f"delivery failed: {k}", str(v)) for k, v in delivery.most_common()]
    rows += [(f"client error: {k}", str(v)) for k, v in client.most_common()]
    rows.append(("fatal producer errors", str(fatal)))
    rows.append(("unanswered at the end", str(sum(p["unanswered"] for p in producers))))
    out.append(table(rows, "produce errors by kind"))
    bumps: Counter = Counter()
    for p in producers:
        bumps.update(p.get("epoch_bumps", {}))
    if bumps:
        out.append(table([(f"after {k}", str(v)) for k, v in bumps.most_common()],
                         "producer epoch bumps by librdkafka (idempotent producers re-send unacknowledged batches)"))

    if exits:
        out.append(table([(name, ", ".join(how)) for name, how in exits.items()],
                         "processes that exited by themselves (restarted)"))

    def mark(n: int) -> str:
        return f"{n}  <-- FAIL" if n else "0"

    out.append(table([
        ("acknowledged but lost", mark(findings.lost)),
        ("duplicated (idempotent)", mark(findings.duplicated_idempotent)),
        ("reordered (idempotent)", mark(findings.reordered_idempotent)),
        ("misplaced (wrong partition)", mark(findings.misplaced)),
        ("moved (acked offset overwritten)", mark(findings.moved)),
        ("unreadable partitions", mark(len(findings.unreadable))),
        ("duplicated across librdkafka's epoch bump (allowed)", str(findings.duplicated_epoch_bump)),
        ("duplicated (plain, allowed)", str(findings.duplicated_other)),
        ("reordered (plain, allowed)", str(findings.reordered_other)),
        ("unacknowledged but present (fine)", str(findings.unacked_present)),
        ("not ours (foreign values)", str(findings.foreign)),
        ("partitions with log start > 0", ", ".join(f"{k}:{v}" for k, v in findings.log_start_offsets.items()) or "none"),
    ], "records"))
    for kind, items in findings.examples.items():
        out.append(f"  first {kind}: " + "; ".join(items))
    for problem in findings.unreadable:
        out.append(f"  unreadable: {problem}")
    out.append("VERDICT: " + ("PASS" if not verdict else "FAIL: " + "; ".join(verdict)))
    return "\n".join(out)
