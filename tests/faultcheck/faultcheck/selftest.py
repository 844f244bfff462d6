"""`--self-test`: proves the checker can fail. After the producers stopped, and before the read-back,
it damages two partitions the way a broken broker would:

- partition 0 of the first topic: DeleteRecords removes its first records (up to 50) -> they are
  acknowledged but gone: **lost**;
- partition 1: its first records (up to 50) are read, deleted with DeleteRecords and appended again at
  the end (a plain producer, same keys and values), the first idempotent producer's record among them
  twice -> the idempotent producers' records among them come after higher seqs: **reordered**, and one
  is there twice: **duplicated**.

The self-test passes (exit 0) only if the verdict is FAIL and reports at least that many lost records,
and at least one reordered and one duplicated idempotent record.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from . import QUIET
from .verify import Findings, ProducerRecords

HOW_MANY = 50


def read_head(bootstrap: str, topic: str, partition: int, count: int) -> list[tuple[bytes, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faultcheck-selftest",
                         "enable.auto.commit": False, **QUIET})
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        out: list[tuple[bytes, bytes]] = []
        deadline = time.time() + 60
        while len(out) < count and time.time() < deadline:
            for msg in consumer.consume(num_messages=count, timeout=1.0):
                if not msg.error() and msg.offset() < count and len(out) == msg.offset():
                    out.append((msg.key(), msg.value()))
        if len(out) < count:
            raise RuntimeError(f"self-test: read only {len(out)} of the first {count} records of {topic}-{partition}")
        return out
    finally:
        consumer.close()


def high_watermark(bootstrap: str, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faultcheck-selftest", **QUIET})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()


def tamper(bootstrap: str, topics: list[str], records: dict[str, ProducerRecords], log) -> dict[str, int]:
    topic = topics[0]
    k_lost = min(HOW_MANY, high_watermark(bootstrap, topic, 0))
    k_moved = min(HOW_MANY, high_watermark(bootstrap, topic, 1))
    lost_head = read_head(bootstrap, topic, 0, k_lost)
    moved_head = read_head(bootstrap, topic, 1, k_moved)
    expected_lost = 0
    for _, value in lost_head:
        name, seq, _ = value.decode().split(":", 2)
        if records[name].acked_offsets[int(seq)] >= 0:
            expected_lost += 1

    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    futures = admin.delete_records([TopicPartition(topic, 0, k_lost), TopicPartition(topic, 1, k_moved)],
                                   request_timeout=30)
    for tp, future in futures.items():
        future.result()
    log(f"self-test: DeleteRecords removed the first {k_lost} records of {topic}-0 "
        f"({expected_lost} of them acknowledged) and the first {k_moved} of {topic}-1")

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False, **QUIET})
    again = next((kv for kv in moved_head if records[kv[1].decode().split(":", 1)[0]].idempotent), None)
    for key, value in moved_head + ([again] if again else []):
        producer.produce(topic, key=key, value=value, partition=1)
    if producer.flush(30):
        raise RuntimeError("self-test: re-appending the records of partition 1 did not finish in 30 s")
    idempotent_moved = sum(1 for _, v in moved_head if records[v.decode().split(":", 1)[0]].idempotent)
    log(f"self-test: appended those {k_moved} again at the end of {topic}-1 ({idempotent_moved} from idempotent "
        f"producers), plus a second copy of {again[1][:12].decode() if again else 'none'}")
    return {"lost": expected_lost, "reordered": 1 if idempotent_moved else 0, "duplicated": 1 if again else 0}


def judge_self_test(findings: Findings, verdict: list[str], expected: dict[str, int], log) -> int:
    seen = {"lost": findings.lost, "reordered": findings.reordered_idempotent,
            "duplicated": findings.duplicated_idempotent}
    missed = [f"{k}: expected at least {v}, reported {seen[k]}" for k, v in expected.items() if seen[k] < v]
    if not all(expected.values()):
        missed.append(f"the damage was too small to test with ({expected}): produce for longer")
    if not verdict:
        missed.append("the verdict was PASS")
    if missed:
        log("SELF-TEST FAILED: the checker did not catch the damage: " + "; ".join(missed))
        return 1
    log(f"SELF-TEST PASSED: the checker reported {seen['lost']} lost, {seen['reordered']} reordered and "
        f"{seen['duplicated']} duplicated records and failed the run (expected at least {expected})")
    return 0
