"""Unit tests of the checker's verdict logic (no cluster, no root):

    cd tests/faultcheck && ~/.cache/oxka/venv/bin/python -m unittest -v test_verify
"""

import array
import unittest

from faultcheck.verify import Findings, ProducerRecords, check_record, tally

TOPICS = ["t0", "t1"]
PARTITIONS = 2


def where(seq: int) -> tuple[str, int]:
    """The partition the producer sends `seq` to (as producer.py does)."""
    return TOPICS[seq % len(TOPICS)], (seq // len(TOPICS)) % PARTITIONS


def run(log: dict[tuple[str, int], list[str]], acked: dict[str, list[int]], idempotent: dict[str, bool]) -> Findings:
    producers = {name: ProducerRecords(name, idempotent[name], array.array("q", offsets))
                 for name, offsets in acked.items()}
    f = Findings()
    highest: dict = {}
    for (topic, partition), values in log.items():
        for offset, value in enumerate(values):
            if value is None:  # a gap: nothing at this offset
                continue
            check_record(f, producers, highest, topic, partition, offset, value.encode(), TOPICS, PARTITIONS)
    tally(f, producers, TOPICS, PARTITIONS)
    return f


def clean_log(name: str, count: int) -> tuple[dict, list[int]]:
    """Every seq of `name` in its partition, in order; the offsets they were acknowledged at."""
    log: dict[tuple[str, int], list[str]] = {}
    offsets = []
    for seq in range(count):
        values = log.setdefault(where(seq), [])
        offsets.append(len(values))
        values.append(f"{name}:{seq}:x")
    return log, offsets


def gone(log: dict, seq: int) -> None:
    values = log[where(seq)]
    values[values.index(f"p0i:{seq}:x")] = None


class VerdictTest(unittest.TestCase):
    def test_a_clean_log_passes(self):
        log, offsets = clean_log("p0i", 40)
        f = run(log, {"p0i": offsets}, {"p0i": True})
        self.assertEqual(f.failures(), {})
        self.assertEqual((f.acked, f.records_read), (40, 0))  # read_back counts records, not check_record

    def test_an_acknowledged_record_missing_is_lost(self):
        log, offsets = clean_log("p0i", 40)
        gone(log, 8)
        f = run(log, {"p0i": offsets}, {"p0i": True})
        self.assertEqual(f.failures(), {"lost": 1})
        self.assertIn("p0i:8", f.examples["lost"][0])

    def test_an_unacknowledged_record_missing_is_fine(self):
        log, offsets = clean_log("p0i", 40)
        gone(log, 8)
        offsets[8] = -1
        f = run(log, {"p0i": offsets}, {"p0i": True})
        self.assertEqual(f.failures(), {})

    def test_duplicates_fail_only_with_idempotence(self):
        for idempotent in (True, False):
            log, offsets = clean_log("p", 40)
            log[where(4)].append("p:4:x")
            f = run(log, {"p": offsets}, {"p": idempotent})
            self.assertEqual((f.duplicated_idempotent, f.duplicated_other), (1, 0) if idempotent else (0, 1))
            self.assertEqual(bool(f.failures()), idempotent)

    def test_reordering_fails_only_with_idempotence(self):
        for idempotent in (True, False):
            log, offsets = clean_log("p", 40)
            values = log[where(0)]  # seqs 0, 4, 8, ...: swap the first two
            values[0], values[1] = values[1], values[0]
            f = run(log, {"p": [-1] * 40}, {"p": idempotent})
            self.assertEqual((f.reordered_idempotent, f.reordered_other), (1, 0) if idempotent else (0, 1))

    def test_a_record_in_another_partition_is_misplaced(self):
        log, offsets = clean_log("p0i", 40)
        log[where(1)].append("p0i:0:x")
        log[where(0)].remove("p0i:0:x")
        f = run(log, {"p0i": [-1] * 40}, {"p0i": True})
        self.assertEqual(f.misplaced, 1)

    def test_an_acknowledged_offset_holding_another_record_is_moved(self):
        log, offsets = clean_log("p0i", 40)
        offsets[4] += 1
        f = run(log, {"p0i": offsets}, {"p0i": True})
        self.assertEqual(f.moved, 1)

    def test_values_of_no_producer_are_foreign(self):
        log, offsets = clean_log("p0i", 4)
        log[("t0", 0)].append("garbage")
        log[("t0", 0)].append("p0i:999:x")
        f = run(log, {"p0i": offsets}, {"p0i": True})
        self.assertEqual(f.foreign, 2)


if __name__ == "__main__":
    unittest.main()
