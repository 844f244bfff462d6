"""What an idempotent librdkafka producer sent, from its own debug log (`debug=msg,eos`): every
ProduceRequest batch (partition, MsgIds, producer id and epoch, base sequence), how it ended
(delivered, or the error), and every local epoch bump with the answer that triggered it.

Why: librdkafka's idempotent producer bumps its producer epoch by itself (no InitProducerId) after
some broker answers, e.g. OUT_OF_ORDER_SEQUENCE_NUMBER for a request queued behind one that failed
("skipped sequence numbers", `rd_kafka_handle_idempotent_Produce_error` in rdkafka_request.c), then
re-sends every unacknowledged message under the new epoch from sequence 0. A batch whose earlier send
was written but not acknowledged (the leader was killed, or answered NOT_LEADER_OR_FOLLOWER after the
append while it waited for acks=all) is then written again: a broker cannot recognise it, since Kafka
matches duplicates only within one producer epoch (`ProducerStateEntry.findDuplicateBatch`). That is
librdkafka's documented limit (confluentinc/librdkafka#4953), not a broker fault. verify.py uses this
record to tell such duplicates from any other (see `explain_duplicate` there).

librdkafka numbers messages per partition (MsgId 1, 2, ... in the order they were produced to it), so
the producer passes the seq of each MsgId: `on_produced(instance, topic, partition, seq)`.
"""

from __future__ import annotations

import array
import re
from collections import Counter

# "checked-0 [5]: Produce MessageSet with 1 message(s) (168 bytes, ApiVersion 10, MsgVersion 2,
#  MsgId 713, BaseSeq 712, PID{Id:0,Epoch:0}, uncompressed)"
PRODUCE = re.compile(r"(\S+) \[(\d+)\]: Produce MessageSet with (\d+) message\(s\) \(.*?MsgId (\d+), "
                     r"BaseSeq (-?\d+), PID\{Id:(-?\d+),Epoch:(-?\d+)\}")
# "checked-0 [5]: MessageSet with 1 message(s) (MsgId 712, BaseSeq 711) encountered error: Broker: ...
#  (actions Refresh,Retry,MsgNotPersisted)" or "... (MsgId 713, BaseSeq 712) delivered"
RESULT = re.compile(r"(\S+) \[(\d+)\]: MessageSet with (\d+) message\(s\) \(MsgId (\d+), BaseSeq (-?\d+)\) "
                    r"(?:(delivered)|encountered error: (.*?) \(actions)")
# "Beginning partition drain in state Assigned for PID{Id:0,Epoch:0} epoch bump for 1 partition(s) with
#  in-flight requests: skipped sequence numbers"
BUMP_BEGIN = re.compile(r"Beginning partition drain in state \w+ for PID\{Id:(-?\d+),Epoch:(-?\d+)\} epoch bump "
                        r"for \d+ partition\(s\) with in-flight requests: (.*)$")
# "All partitions drained, bumped epoch to PID{Id:0,Epoch:1}"
BUMPED = re.compile(r"bumped epoch to PID\{Id:(-?\d+),Epoch:(-?\d+)\}")
# "ERRSEQ ... failed due to skipped sequence numbers (...) caused by previous failed request
#  (KAFKA_STORAGE_ERROR, actions ..."
CAUSE = re.compile(r"failed due to skipped sequence numbers .*? caused by previous failed request \((\w+)")
INSTANCE = re.compile(r"\[[^\]\s]*#producer-(\d+)\]")


class SendTracker:
    def __init__(self, names: dict[str, str] | None = None):
        self.names = names or {}  # librdkafka's error descriptions -> Kafka's error names
        # (instance, topic, partition) -> seq of MsgId k at index k - 1
        self.seq_of: dict[tuple[int, str, int], array.array] = {}
        # Sends: (instance, topic, partition, first MsgId, count, pid, epoch); outcome by index.
        self.sends: list[tuple[int, str, int, int, int, int, int]] = []
        self.outcome: list[str | None] = []
        self.pending: dict[tuple[int, str, int, int, int], list[int]] = {}  # answer key -> send indexes, oldest first
        # Local epoch bumps: (instance, pid, new epoch) -> "reason (after ERROR)"
        self.bumps: dict[tuple[int, int, int], str] = {}
        self.bump_reasons: Counter = Counter()
        self._reason: dict[int, str] = {}  # instance -> reason of the bump being drained
        self._cause: dict[int, str] = {}  # instance -> error that led to the last OUT_OF_ORDER

    def on_produced(self, instance: int, topic: str, partition: int, seq: int) -> None:
        self.seq_of.setdefault((instance, topic, partition), array.array("q")).append(seq)

    def on_log(self, text: str) -> None:
        if "MessageSet" not in text and "epoch" not in text and "skipped sequence" not in text:
            return
        m = INSTANCE.search(text)
        instance = int(m.group(1)) - 1 if m else 0
        if (m := PRODUCE.search(text)) is not None:
            topic, part, count, msgid, base_seq, pid, epoch = m.groups()
            key = (instance, topic, int(part), int(msgid), int(base_seq))
            self.pending.setdefault(key, []).append(len(self.sends))
            self.sends.append((instance, topic, int(part), int(msgid), int(count), int(pid), int(epoch)))
            self.outcome.append(None)
        elif (m := RESULT.search(text)) is not None:
            topic, part, _, msgid, base_seq, delivered, error = m.groups()
            waiting = self.pending.get((instance, topic, int(part), int(msgid), int(base_seq)))
            if waiting:
                self.outcome[waiting.pop(0)] = "delivered" if delivered else self.names.get(error, error)
        elif (m := CAUSE.search(text)) is not None:
            self._cause[instance] = m.group(1)
        elif (m := BUMP_BEGIN.search(text)) is not None:
            reason = m.group(3).strip()
            cause = self._cause.pop(instance, None)
            if reason == "skipped sequence numbers" and cause:
                reason = f"OUT_OF_ORDER_SEQUENCE_NUMBER behind a request that failed with {cause}"
            self._reason.setdefault(instance, reason)  # the first answer of a drain started it
        elif (m := BUMPED.search(text)) is not None:
            reason = self._reason.pop(instance, "unknown")
            self.bumps[(instance, int(m.group(1)), int(m.group(2)))] = reason
            self.bump_reasons[reason] += 1

    def resent(self) -> dict[int, list[dict]]:
        """Per seq sent under more than one producer id/epoch: its sessions in send order, each
        {"pid", "epoch", "outcomes" (one per send: "delivered", an error name, or null: no answer
        seen), "bump" (for a later epoch of the same id: the local bump's reason, else null)}."""
        per_msg: dict[tuple[int, str, int, int], list] = {}
        for i, (instance, topic, part, first, count, pid, epoch) in enumerate(self.sends):
            for msgid in range(first, first + count):
                sessions = per_msg.setdefault((instance, topic, part, msgid), [])
                if not sessions or sessions[-1][:2] != (pid, epoch):
                    sessions.append((pid, epoch, []))
                sessions[-1][2].append(self.outcome[i])
        out: dict[int, list[dict]] = {}
        for (instance, topic, part, msgid), sessions in per_msg.items():
            if len({(pid, epoch) for pid, epoch, _ in sessions}) < 2:
                continue
            seqs = self.seq_of.get((instance, topic, part))
            if seqs is None or not 1 <= msgid <= len(seqs):
                continue
            out[seqs[msgid - 1]] = [{"pid": pid, "epoch": epoch, "outcomes": outcomes,
                                     "bump": self.bumps.get((instance, pid, epoch))}
                                    for pid, epoch, outcomes in sessions]
        return out
