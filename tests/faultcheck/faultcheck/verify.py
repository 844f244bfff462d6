"""Reads every checked partition from its log start to its high watermark and compares what is there
with what the producers were told.

For every producer, per seq: the offset it was acknowledged at (-1: never acknowledged) and how often
and where the record is in the log. Findings:

- lost: acknowledged, but in no partition. Always a failure.
- duplicated: present more than once. A failure for idempotent producers, except a duplicate of
  librdkafka's own epoch bump (`explain_duplicate`: the producer's log shows each copy could come from
  another producer epoch, the earlier sends unacknowledged, the epochs bumped by librdkafka itself
  after a broker answer Apache Kafka also gives), which is counted apart; informational for the others (a retry after a lost answer legitimately
  writes a record twice without idempotence).
- reordered: an idempotent producer's record that comes, in its partition, after a record of the same
  producer with a higher seq (the producer sent in seq order, one partition's records in order). A
  failure; informational for non-idempotent producers (retries may reorder there).
- misplaced: a record in another partition than the one it was sent to. A failure.
- moved: acknowledged at offset X, but found only at other offsets. Kafka never moves an acknowledged
  record; reported (and a failure), since it means the acknowledged offset was overwritten.
- unacknowledged but present: the producer gave up (timeout) or never got the answer, but the write
  had happened. Fine, informational.
"""

from __future__ import annotations

import array
import time
from dataclasses import dataclass, field

from . import QUIET
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

EXAMPLES = 10

# Answers through which a broker's idempotent-producer state shows: a duplicate that involves one of them
# is never put down to the client's epoch bump.
SUSPECT = {"OUT_OF_ORDER_SEQUENCE_NUMBER", "DUPLICATE_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID",
           "INVALID_PRODUCER_EPOCH"}

# Epoch-bump triggers (sends.py's wording) that Apache Kafka also gives: a request refused without
# being written for a condition that can clear before the next request in flight is checked (the
# broker became leader, the ISR grew back), which then gets OUT_OF_ORDER_SEQUENCE_NUMBER
# (confluentinc/librdkafka#4953). Not KAFKA_STORAGE_ERROR: after an I/O error Kafka refuses every
# later append to the log dir with KAFKA_STORAGE_ERROR before it checks sequences
# (LocalLog.maybeHandleIOException), so OUT_OF_ORDER_SEQUENCE_NUMBER behind one is a broker's own.
KAFKA_BUMP_TRIGGERS = {f"OUT_OF_ORDER_SEQUENCE_NUMBER behind a request that failed with {error}"
                       for error in ("NOT_LEADER_FOR_PARTITION", "NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS")}


def explain_duplicate(sessions: list[dict] | None, copies: int) -> str | None:
    """Why an idempotent producer's record may be in the log `copies` times, or None if nothing the
    producer logged explains it (then it is a failure).

    `sessions` (sends.py, `resent`): the producer id/epochs the record was sent under, in order, with
    the end of each send. Within one epoch the broker must write a batch once (Kafka matches a retry
    against the producer's last 5 batches, `ProducerStateEntry.findDuplicateBatch`), so each epoch
    accounts for one copy at most, and only if:
    - every later epoch is a bump librdkafka made itself (same producer id, higher epoch), after a
      broker answer Apache Kafka also gives (`KAFKA_BUMP_TRIGGERS`);
    - no send of the record under an earlier epoch was acknowledged (librdkafka re-sends only what it
      has no success for), and each ended with an answer (an error: the write may have happened);
    - no send of it got an answer that concerns the broker's idempotence state (`SUSPECT`): an
      OUT_OF_ORDER_SEQUENCE_NUMBER for a batch the broker had written, say, would be a broker bug.
    """
    if not sessions or len(sessions) < 2 or copies > len(sessions):
        return None
    pid = sessions[0]["pid"]
    for before, after in zip(sessions, sessions[1:]):
        if after["pid"] != pid or after["epoch"] <= before["epoch"] or after.get("bump") not in KAFKA_BUMP_TRIGGERS:
            return None
    for s in sessions[:-1]:
        if not s["outcomes"] or any(o is None or o == "delivered" for o in s["outcomes"]):
            return None
    if any(o in SUSPECT for s in sessions for o in s["outcomes"]):
        return None
    def ends(s: dict) -> str:
        return ", ".join(dict.fromkeys(o or "no answer" for o in s["outcomes"]))
    text = f"producer id {pid}: sent under epoch {sessions[0]['epoch']} ({ends(sessions[0])})"
    for s in sessions[1:]:
        text += f", again under epoch {s['epoch']} ({ends(s)}) after librdkafka bumped the epoch: {s['bump']}"
    return text


@dataclass
class ProducerRecords:
    name: str
    idempotent: bool
    acked_offsets: array.array  # per seq, the acknowledged offset or -1
    resent: dict[int, list[dict]] = field(default_factory=dict)  # seq -> sessions (sends.py), idempotent only
    count: bytearray = field(init=False)  # per seq, how often it is in the log (saturating at 255)
    found_at: array.array = field(init=False)  # per seq, the offset of its first copy (-1: none)

    def __post_init__(self):
        n = len(self.acked_offsets)
        self.count = bytearray(n)
        self.found_at = array.array("q", [-1]) * n


@dataclass
class Findings:
    records_read: int = 0
    partitions_read: int = 0
    lost: int = 0
    duplicated_idempotent: int = 0
    duplicated_other: int = 0
    duplicated_epoch_bump: int = 0  # idempotent, explained by librdkafka's epoch bump (not a failure)
    reordered_idempotent: int = 0
    reordered_other: int = 0
    misplaced: int = 0
    moved: int = 0
    foreign: int = 0
    unacked_present: int = 0
    acked: int = 0
    sent: int = 0
    unreadable: list[str] = field(default_factory=list)
    log_start_offsets: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def example(self, kind: str, text: str) -> None:
        items = self.examples.setdefault(kind, [])
        if len(items) < EXAMPLES:
            items.append(text)

    def failures(self) -> dict[str, int]:
        bad = {
            "lost": self.lost,
            "duplicated (idempotent)": self.duplicated_idempotent,
            "reordered (idempotent)": self.reordered_idempotent,
            "misplaced": self.misplaced,
            "moved": self.moved,
            "unreadable partitions": len(self.unreadable),
        }
        return {k: v for k, v in bad.items() if v}


def read_back(bootstrap: str, topics: list[str], partitions: int, producers: dict[str, ProducerRecords],
              timeout: float) -> Findings:
    f = Findings()
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "faultcheck-reader",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.max.bytes": 8 * 1024 * 1024,
        "topic.metadata.refresh.interval.ms": 5000,
        "isolation.level": "read_uncommitted",
        **QUIET,
    })
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            for p in range(partitions):
                tp = TopicPartition(topic, p)
                for attempt in range(20):
                    try:
                        low, high = consumer.get_watermark_offsets(tp, timeout=10)
                        break
                    except Exception as e:  # noqa: BLE001 — retried, then reported
                        if attempt == 19:
                            f.unreadable.append(f"{topic}-{p}: watermarks: {e}")
                        time.sleep(1)
                else:
                    continue
                ends[(topic, p)] = high
                if low:
                    f.log_start_offsets[f"{topic}-{p}"] = low
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p), end in ends.items() if end > 0])
        position = {key: -1 for key, end in ends.items() if end > 0}
        highest: dict[tuple[str, str, int], int] = {}  # (producer, topic, partition) -> highest seq so far
        deadline = time.time() + timeout
        while any(position[key] + 1 < ends[key] for key in position):
            if time.time() > deadline:
                for key in position:
                    if position[key] + 1 < ends[key]:
                        f.unreadable.append(f"{key[0]}-{key[1]}: read up to offset {position[key]} of {ends[key]} "
                                            f"within {timeout:.0f} s")
                break
            for msg in consumer.consume(num_messages=5000, timeout=1.0):
                if msg.error():
                    continue
                key = (msg.topic(), msg.partition())
                if key not in position or msg.offset() >= ends[key]:
                    continue
                position[key] = msg.offset()
                f.records_read += 1
                check_record(f, producers, highest, msg.topic(), msg.partition(), msg.offset(),
                             msg.value(), topics, partitions)
        f.partitions_read = len(ends)
    finally:
        consumer.close()
    tally(f, producers, topics, partitions)
    return f


def check_record(f: Findings, producers: dict[str, ProducerRecords], highest: dict, topic: str, partition: int,
                 offset: int, value: bytes, topics: list[str], partitions: int) -> None:
    try:
        name, seq_text, _ = value.decode().split(":", 2)
        seq = int(seq_text)
        rec = producers[name]
        if seq >= len(rec.acked_offsets):
            raise ValueError("seq never sent")
    except (ValueError, KeyError, UnicodeDecodeError):
        f.foreign += 1
        f.example("foreign", f"{topic}-{partition}@{offset}: {value[:40]!r}")
        return
    where = f"{name}:{seq} at {topic}-{partition}@{offset}"
    if topics[seq % len(topics)] != topic or (seq // len(topics)) % partitions != partition:
        f.misplaced += 1
        f.example("misplaced", where)
    if rec.count[seq] == 0:
        rec.found_at[seq] = offset
        top = highest.get((name, topic, partition), -1)
        if seq < top:
            if rec.idempotent:
                f.reordered_idempotent += 1
                f.example("reordered (idempotent)", f"{where} after seq {top}")
            else:
                f.reordered_other += 1
        else:
            highest[(name, topic, partition)] = seq
    else:
        if rec.idempotent:
            why = explain_duplicate(rec.resent.get(seq), rec.count[seq] + 1)
            if why:
                f.duplicated_epoch_bump += 1
                f.example("duplicated across librdkafka's epoch bump (allowed)",
                          f"{where}, first copy at offset {rec.found_at[seq]}: {why}")
            else:
                f.duplicated_idempotent += 1
                f.example("duplicated (idempotent)", f"{where}, first copy at offset {rec.found_at[seq]}")
        else:
            f.duplicated_other += 1
    if rec.count[seq] < 255:
        rec.count[seq] += 1


def tally(f: Findings, producers: dict[str, ProducerRecords], topics: list[str], partitions: int) -> None:
    for rec in producers.values():
        f.sent += len(rec.acked_offsets)
        for seq, acked_at in enumerate(rec.acked_offsets):
            present = rec.count[seq] > 0
            if acked_at >= 0:
                f.acked += 1
                if not present:
                    f.lost += 1
                    where = f"{topics[seq % len(topics)]}-{(seq // len(topics)) % partitions}"
                    f.example("lost", f"{rec.name}:{seq} acknowledged at {where}@{acked_at}")
                elif rec.count[seq] == 1 and rec.found_at[seq] != acked_at:
                    f.moved += 1
                    f.example("moved", f"{rec.name}:{seq} acknowledged at offset {acked_at}, "
                                       f"found at {rec.found_at[seq]}")
            elif present:
                f.unacked_present += 1
