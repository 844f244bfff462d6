"""One producer, run as its own process (`python -m faultcheck.producer <json args>`), so that several
librdkafka producers run truly concurrently with the fault injector.

Record `seq` (0, 1, 2, ...) goes to topic `seq % T`, partition `(seq // T) % P`, with key `seq` and value
`<producer>:<seq>:` padded to `value_bytes`. It sends at a fixed rate with acks=all (idempotent or
not), until SIGTERM or SIGINT; then it flushes (bounded) and writes `<out>`: a JSON summary (counts,
delivery errors by kind, client errors by kind) and `<out>.offsets`, a little-endian int64 per seq:
the offset the broker acknowledged, -1 if it never was (failed, or not yet answered at the end).

An idempotent producer also writes `<out>` key "resent": the records librdkafka sent under more than
one producer epoch, with how each send ended and why the epoch was bumped (sends.py; from its
`debug=msg,eos` log), so that verify.py can tell a duplicate of its epoch bump from any other.

A fatal error (idempotent producers only, e.g. an out-of-order sequence the broker refused) makes
librdkafka refuse all further work: it is counted and a new producer instance takes over with the
next seq, so the run goes on and the report shows it.
"""

from __future__ import annotations

import array
import json
import logging
import re
import signal
import sys
import time
from collections import Counter

from confluent_kafka import KafkaError, KafkaException, Producer

from .sends import SendTracker

stop = False

# librdkafka's per-batch failure (debug=msg): "... MessageSet with 3 message(s) (MsgId 65, BaseSeq 2)
# encountered error: Broker: Not leader for partition (actions Refresh,Retry)". The retried errors a
# delivery report never shows; counted per batch.
ENCOUNTERED = re.compile(r"encountered error: (.*?) \(actions")


def error_names() -> dict[str, str]:
    """librdkafka's error descriptions -> Kafka's error names (NOT_LEADER_OR_FOLLOWER, ...)."""
    names = {}
    for code in list(range(-199, -100)) + list(range(1, 130)):
        try:
            err = KafkaError(code)
            names[err.str()] = err.name()
        except Exception:  # noqa: BLE001 — not every number is an error code
            pass
    return names


class RequestErrors(logging.Handler):
    """Counts the batch errors librdkafka logs; passes warnings and errors on to stderr."""

    def __init__(self, counter: Counter, verbose: bool, sends: SendTracker | None = None):
        super().__init__()
        self.counter = counter
        self.names = error_names()
        self.verbose = verbose  # every line to stderr (FAULTCHECK_RDKAFKA_DEBUG is set)
        self.sends = sends
        if sends is not None:
            sends.names = self.names

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if self.sends is not None:
            self.sends.on_log(text)
        found = ENCOUNTERED.search(text)
        if found:
            self.counter[self.names.get(found.group(1), found.group(1))] += 1
        if self.verbose or (record.levelno >= logging.WARNING and not found):
            print(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {text}", file=sys.stderr)


def on_signal(signum, frame):  # noqa: ARG001
    global stop
    stop = True


def main() -> None:
    args = json.loads(sys.argv[1])
    name = args["name"]
    topics: list[str] = args["topics"]
    partitions: int = args["partitions"]
    rate: float = args["rate"]
    out: str = args["out"]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    offsets = array.array("q")
    delivery_errors: Counter[str] = Counter()
    client_errors: Counter[str] = Counter()
    request_errors: Counter[str] = Counter()
    rdkafka_log = logging.getLogger(f"rdkafka.{name}")
    rdkafka_log.setLevel(logging.DEBUG)
    rdkafka_log.propagate = False
    sends = SendTracker() if args["idempotent"] else None
    rdkafka_log.addHandler(RequestErrors(request_errors, verbose=bool(args.get("debug")), sends=sends))
    fatal: list[str] = []
    acked = 0
    config = {
        "bootstrap.servers": args["bootstrap"],
        "client.id": name,
        "acks": "all",
        "enable.idempotence": args["idempotent"],
        "max.in.flight.requests.per.connection": 5,
        "message.timeout.ms": args["message_timeout_ms"],
        "request.timeout.ms": 10000,
        "linger.ms": 5,
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 1000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        "topic.metadata.refresh.interval.ms": 5000,
        "socket.connection.setup.timeout.ms": 5000,
        "error_cb": lambda err: client_errors.update([err.name()]),
        # msg: the batch errors (RequestErrors) and every send (SendTracker); eos: the epoch bumps.
        "debug": ",".join(sorted({"msg", *(["eos"] if args["idempotent"] else []),
                                  *(args.get("debug") or "").split(",")} - {""})),
        "logger": rdkafka_log,
    }
    if not args["idempotent"]:
        config["retries"] = 2147483647

    def delivered(err, msg):
        nonlocal acked
        seq = int(msg.key())
        if err is None:
            offsets[seq] = msg.offset()
            acked += 1
        else:
            delivery_errors[err.name()] += 1

    producers = [Producer(config)]  # the last one is current; earlier ones hit a fatal error

    def on_fatal(e: Exception) -> None:
        """A fatal error (raised by poll/produce/flush): count it, keep the old instance for its
        delivery reports, go on with a new one (a new producer id)."""
        err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
        if err is None or not err.fatal():
            raise e
        fatal.append(f"{err.name()}: {err.str()}")
        print(f"fatal error, a new producer instance takes over: {err.str()}", file=sys.stderr, flush=True)
        producers.append(Producer(config))

    def poll(timeout: float) -> None:
        try:
            producers[-1].poll(timeout)
        except KafkaException as e:
            on_fatal(e)

    pad = "x" * max(0, args["value_bytes"] - len(name) - 12)
    started = time.monotonic()
    seq = 0
    while not stop:
        due = started + seq / rate
        now = time.monotonic()
        if now < due:
            poll(min(due - now, 0.05))
            continue
        topic = topics[seq % len(topics)]
        partition = (seq // len(topics)) % partitions
        offsets.append(-1)
        handed = False
        while not stop:
            try:
                producers[-1].produce(topic, key=str(seq), value=f"{name}:{seq}:{pad}",
                                      partition=partition, on_delivery=delivered)
                handed = True
                if sends is not None:  # librdkafka's MsgIds count the records produced to a partition
                    sends.on_produced(len(producers) - 1, topic, partition, seq)
                break
            except BufferError:
                poll(0.1)
            except KafkaException as e:
                on_fatal(e)
        if not handed:
            # Stopped before librdkafka took it: not a record of this run.
            offsets.pop()
            break
        seq += 1
        poll(0)

    deadline = time.monotonic() + args["flush_seconds"]
    while any(len(p) for p in producers) and time.monotonic() < deadline:
        for p in producers:
            try:
                p.poll(0.2 / len(producers))
            except KafkaException as e:
                if p is producers[-1]:
                    on_fatal(e)
    unanswered = sum(len(p) for p in producers)
    elapsed = time.monotonic() - started
    with open(out + ".offsets", "wb") as f:
        offsets.tofile(f)
    with open(out, "w") as f:
        json.dump({
            "name": name, "idempotent": args["idempotent"], "sent": len(offsets), "acked": acked,
            "unanswered": unanswered, "seconds": elapsed, "delivery_errors": dict(delivery_errors),
            "request_errors": dict(request_errors),
            "client_errors": dict(client_errors), "fatal": fatal,
            "epoch_bumps": dict(sends.bump_reasons) if sends else {},
            "resent": sends.resent() if sends else {},
        }, f)


if __name__ == "__main__":
    main()
