#!/usr/bin/env bash
# oxka against Apache Kafka 4.x on this machine, with Kafka's own perf tools and the same settings.
#
#   bench/run.sh                      # 2,000,000 records of 100 bytes
#   RECORDS=500000 bench/run.sh       # shorter
#   OXKA_BIN=path/to/oxka bench/run.sh  # skip the release build
#   BROKERS="oxka" bench/run.sh       # only one of: oxka kafka
#
# For each broker, one after the other (never both at once): start it on a loopback port with a fresh
# data dir, then run
#   1. kafka-producer-perf-test, acks=all, throughput -1, the producer's default batching
#   2. the same with linger.ms=5 batch.size=131072
#   3. kafka-consumer-perf-test over the records of run 1
# and read the broker's peak RSS (VmHWM) before stopping it. Prints a table with oxka/Kafka ratios.
# Raw tool output stays in $BENCH_DIR (printed at the end).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-2000000}"
RECORD_SIZE="${RECORD_SIZE:-100}"
BROKERS="${BROKERS:-oxka kafka}"
SEGMENT_BYTES="${SEGMENT_BYTES:-1073741824}"
BROKER_HEAP="${BROKER_HEAP:--Xmx1G -Xms1G}" # the seed's heap, for both brokers
BENCH_DIR="${BENCH_DIR:-$(mktemp -d /tmp/oxka-bench.XXXXXX)}"
mkdir -p "$BENCH_DIR"

log() { printf '[bench] %s\n' "$*" >&2; }

bash "$root/scripts/install-tools.sh" >"$BENCH_DIR/install-tools.log" 2>&1 \
  || { cat "$BENCH_DIR/install-tools.log" >&2; exit 1; }
if [[ -z "${OXKA_BIN:-}" ]]; then
  log "building oxka (release)..."
  (cd "$root" && cargo build --release -q -p oxka-broker --bin oxka)
  OXKA_BIN="$root/target/release/oxka"
fi
[[ -x "$OXKA_BIN" ]] || { echo "no oxka binary at $OXKA_BIN" >&2; exit 1; }

free_port() {
  python3 -c 'import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass'
}

BROKER_PID=""
cleanup() { [[ -n "$BROKER_PID" ]] && kill -9 "$BROKER_PID" 2>/dev/null || true; }
trap cleanup EXIT

# start_broker NAME PORT: starts it in the background, sets BROKER_PID, waits until it serves metadata.
start_broker() {
  local name="$1" port="$2" dir="$BENCH_DIR/$1"
  mkdir -p "$dir"
  local common=(
    "num.partitions=1"
    "log.segment.bytes=$SEGMENT_BYTES"
    "offsets.topic.replication.factor=1"
    "transaction.state.log.replication.factor=1"
    "transaction.state.log.min.isr=1"
    "group.initial.rebalance.delay.ms=0"
  )
  case "$name" in
    oxka)
      {
        echo "broker.id=0"
        echo "listeners=PLAINTEXT://127.0.0.1:$port"
        echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
        echo "log.dirs=$dir/data"
        echo "metrics.port=-1"
        printf '%s\n' "${common[@]}"
      } >"$dir/server.properties"
      KAFKA_HEAP_OPTS="$BROKER_HEAP" RUST_LOG="${RUST_LOG:-warn}" "$OXKA_BIN" broker "$dir/server.properties" >"$dir/broker.log" 2>&1 &
      ;;
    kafka)
      KAFKA_HEAP_OPTS="$BROKER_HEAP" "$root/scripts/apache-kafka-broker.sh" "$dir" "$port" "log.dirs=$dir/data" "${common[@]}" \
        >"$dir/broker.log" 2>&1 &
      ;;
  esac
  BROKER_PID=$!
  local i
  for i in $(seq 1 120); do
    kill -0 "$BROKER_PID" 2>/dev/null || { tail -30 "$dir/broker.log" >&2; echo "$name exited during startup" >&2; exit 1; }
    if "$root/scripts/kafka" 4 broker-api-versions --bootstrap-server "127.0.0.1:$port" >/dev/null 2>&1; then
      return
    fi
    sleep 1
  done
  tail -30 "$dir/broker.log" >&2
  echo "$name did not come up on port $port" >&2
  exit 1
}

stop_broker() {
  kill -TERM "$BROKER_PID"
  local i
  for i in $(seq 1 60); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 1; done
  kill -9 "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

peak_rss_mb() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# producer_run NAME PORT TOPIC LABEL [extra producer props...]: prints "rec/s MB/s p50 p99 avg".
producer_run() {
  local name="$1" port="$2" topic="$3" label="$4"
  shift 4
  local out="$BENCH_DIR/$name/producer-$label.txt"
  "$root/scripts/kafka" 4 topics --bootstrap-server "127.0.0.1:$port" --create --topic "$topic" \
    --partitions 1 --replication-factor 1 >/dev/null
  "$root/scripts/kafka" 4 producer-perf-test --topic "$topic" --num-records "$RECORDS" --record-size "$RECORD_SIZE" \
    --throughput -1 --producer-props "bootstrap.servers=127.0.0.1:$port" acks=all "$@" >"$out" 2>&1 \
    || { tail -20 "$out" >&2; echo "producer-perf-test against $name failed" >&2; exit 1; }
  # "2000000 records sent, 585651.2 records/sec (55.85 MB/sec), 376.48 ms avg latency, 817.00 ms max
  #  latency, 366 ms 50th, 695 ms 95th, 784 ms 99th, 812 ms 99.9th."
  grep "records sent" "$out" | tail -1 | sed -E 's/^([0-9]+) records sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\), ([0-9.]+) ms avg latency.*, ([0-9]+) ms 50th, [0-9]+ ms 95th, ([0-9]+) ms 99th.*/\2 \3 \5 \6 \4/'
}

# consumer_run NAME PORT TOPIC: prints "MB/s msg/s fetch-MB/s".
consumer_run() {
  local name="$1" port="$2" topic="$3" out="$BENCH_DIR/$1/consumer.txt"
  "$root/scripts/kafka" 4 consumer-perf-test --bootstrap-server "127.0.0.1:$port" --topic "$topic" \
    --messages "$RECORDS" --timeout 60000 >"$out" 2>&1 \
    || { tail -20 "$out" >&2; echo "consumer-perf-test against $name failed" >&2; exit 1; }
  # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
  # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  grep -E '^[0-9]{4}-' "$out" | tail -1 | awk -F', *' '{ print $4, $6, $9 }'
}

declare -A R
for name in $BROKERS; do
  port=$(free_port)
  log "$name: starting on 127.0.0.1:$port"
  start_broker "$name" "$port"
  log "$name: producer-perf-test, default batching ($RECORDS x $RECORD_SIZE B, acks=all)"
  R[$name.default]=$(producer_run "$name" "$port" bench-default default)
  log "$name: producer-perf-test, linger.ms=5 batch.size=131072"
  R[$name.batched]=$(producer_run "$name" "$port" bench-batched batched linger.ms=5 batch.size=131072)
  log "$name: consumer-perf-test"
  R[$name.consumer]=$(consumer_run "$name" "$port" bench-default)
  R[$name.rss]=$(peak_rss_mb "$BROKER_PID")
  stop_broker
done

# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
field() { awk -v i="$2" '{ print $i }' <<<"${R[$1]:-}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

echo
echo "oxka vs Apache Kafka $(basename "$(readlink -f "${OXKA_CACHE:-$HOME/.cache/oxka}/kafka-4")" | sed 's/kafka-//'): $RECORDS records of $RECORD_SIZE B, acks=all, 1 partition, loopback, $(nproc) cores"
printf '%-34s %14s %14s %12s\n' "metric" "oxka" "kafka" "oxka/kafka"
row() { # label key field-index
  local a b
  a=$(field "oxka.$2" "$3"); b=$(field "kafka.$2" "$3")
  [[ -n "$a" ]] && a=$(printf '%.1f' "$a")
  [[ -n "$b" ]] && b=$(printf '%.1f' "$b")
  printf '%-34s %14s %14s %12s\n' "$1" "${a:--}" "${b:--}" "$(ratio "$a" "$b")"
}
row "producer default: records/s" default 1
row "producer default: MB/s" default 2
row "producer default: p50 latency ms" default 3
row "producer default: p99 latency ms" default 4
row "producer batched: records/s" batched 1
row "producer batched: MB/s" batched 2
row "producer batched: p50 latency ms" batched 3
row "producer batched: p99 latency ms" batched 4
row "consumer: MB/s" consumer 1
row "consumer: records/s" consumer 2
row "consumer: fetch MB/s" consumer 3
a="${R[oxka.rss]:-}"; b="${R[kafka.rss]:-}"
printf '%-34s %14s %14s %12s\n' "broker peak RSS MB (VmHWM)" "${a:--}" "${b:--}" "$(ratio "$a" "$b")"
echo
echo "raw output: $BENCH_DIR"
