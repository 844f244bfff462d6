#!/usr/bin/env bash
# Start-up of the command-line tools (issue 16): oxka's native `oxka tool topics --list` against Apache
# Kafka's `kafka-topics.sh --list` (Kafka 4.x, a JVM), both asking the same oxka broker on loopback.
#
#   bench/tools.sh                       # 10 runs of each
#   RUNS=30 OXKA_BIN=path/to/oxka bench/tools.sh
#
# Starts one oxka broker with a fresh data dir and $TOPICS topics, checks that both tools list the same
# topics, then runs each tool $RUNS times one after the other (one warm-up run each first, so both
# read their files from the page cache) and prints the wall time (min, median, max), user+system CPU
# time and peak RSS of one run (GNU time), with oxka/Kafka ratios.
set -euo pipefail

RUNS="${RUNS:-10}"
TOPICS="${TOPICS:-20}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

port=$(free_ports 1)
dir="$BENCH_DIR/oxka"
mkdir -p "$dir"
{
  echo "broker.id=0"
  echo "listeners=PLAINTEXT://127.0.0.1:$port"
  echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
  echo "log.dirs=$dir/data"
  echo "metrics.port=-1"
} >"$dir/server.properties"
start_node oxka "$dir/broker.log" env RUST_LOG="${RUST_LOG:-warn}" "$OXKA_BIN" broker "$dir/server.properties"
bootstrap="127.0.0.1:$port"
wait_brokers "$bootstrap" 1 60 || die "oxka did not come up on port $port (log: $dir/broker.log)"
for i in $(seq 1 "$TOPICS"); do
  "$OXKA_BIN" tool topics --bootstrap-server "$bootstrap" --create --topic "tools-bench-$i" --partitions 3 >/dev/null
done

oxka_list=("$OXKA_BIN" tool topics --bootstrap-server "$bootstrap" --list)
kafka_list=("$root/scripts/kafka" 4 topics --bootstrap-server "$bootstrap" --list)
oxka_list() { "${oxka_list[@]}"; }
kafka_list() { "${kafka_list[@]}"; }

diff <(oxka_list | sort) <(kafka_list 2>/dev/null | sort) >"$BENCH_DIR/list.diff" \
  || die "the two tools list different topics: $BENCH_DIR/list.diff"
listed=$(oxka_list | grep -c .)
((listed >= TOPICS)) || die "oxka tool topics --list printed $listed topics, expected at least $TOPICS"

# measure NAME: RUNS wall times in ms (sorted, one per line) to $BENCH_DIR/NAME.ms, and one run's
# "cpu-ms peak-rss-kB" to $BENCH_DIR/NAME.res.
measure() {
  local name="$1" i t0 t1
  "${name}_list" >/dev/null 2>&1 # warm-up
  : >"$BENCH_DIR/$name.ms"
  for ((i = 0; i < RUNS; i++)); do
    t0=$(date +%s%N)
    "${name}_list" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000)) >>"$BENCH_DIR/$name.ms"
  done
  sort -n -o "$BENCH_DIR/$name.ms" "$BENCH_DIR/$name.ms"
  # GNU time: the process tree's CPU time and its largest process's peak RSS.
  local -n cmd="${name}_list"
  /usr/bin/time -f '%U %S %M' -o "$BENCH_DIR/$name.time" "${cmd[@]}" >/dev/null 2>&1
  awk '{ printf "%.0f %d\n", ($1 + $2) * 1000, $3 }' "$BENCH_DIR/$name.time" >"$BENCH_DIR/$name.res"
}
log "timing $RUNS runs of each tool against oxka at $bootstrap ($listed topics)"
measure oxka
measure kafka
stop_nodes 30

stat_ms() { awk -v q="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * q) + 1; print v[i] }' "$BENCH_DIR/$1.ms"; }
res() { awk -v f="$2" '{ print $f }' "$BENCH_DIR/$1.res"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.3f", a / b }'; }

echo
echo "topics --list against one oxka broker ($listed topics), $RUNS runs each, $(nproc) cores"
printf '%-28s %16s %22s %12s\n' "metric" "oxka tool" "kafka-topics.sh $(kafka_version)" "oxka/kafka"
for q in 0:min 0.5:median 1:max; do
  a=$(stat_ms oxka "${q%%:*}")
  b=$(stat_ms kafka "${q%%:*}")
  printf '%-28s %16s %22s %12s\n' "wall ms, ${q#*:}" "$a" "$b" "$(ratio "$a" "$b")"
done
a=$(res oxka 1) b=$(res kafka 1)
printf '%-28s %16s %22s %12s\n' "CPU ms (user+system)" "$a" "$b" "$(ratio "$a" "$b")"
a=$(res oxka 2) b=$(res kafka 2)
printf '%-28s %16s %22s %12s\n' "peak RSS MB" "$((a / 1024))" "$((b / 1024))" "$(ratio "$a" "$b")"
echo "raw output: $BENCH_DIR"
