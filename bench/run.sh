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
# and read the broker's peak RSS (VmHWM) before stopping it; then COLDSTART_RUNS (default 5, 0: none)
# cold starts of each (exec -> first ApiVersions answered, fresh data dir; bench/coldstart.sh alone
# runs more). Prints a table with oxka/Kafka ratios.
# Raw tool output stays in $BENCH_DIR (printed at the end).
set -euo pipefail

RECORDS="${RECORDS:-2000000}"
RECORD_SIZE="${RECORD_SIZE:-100}"
BROKERS="${BROKERS:-oxka kafka}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

# producer_run NAME PORT TOPIC LABEL [extra producer props...]: prints "rec/s MB/s p50 p99 avg max".
producer_run() {
  local name="$1" port="$2" topic="$3" label="$4"
  shift 4
  kafka4 topics --bootstrap-server "127.0.0.1:$port" --create --topic "$topic" \
    --partitions 1 --replication-factor 1 >/dev/null
  producer_perf "$BENCH_DIR/$name/producer-$label.txt" "127.0.0.1:$port" "$topic" "$@"
}

declare -A R
for name in $BROKERS; do
  port=$(free_ports 1)
  log "$name: starting on 127.0.0.1:$port"
  start_broker "$name" "$port"
  log "$name: producer-perf-test, default batching ($RECORDS x $RECORD_SIZE B, acks=all)"
  R[$name.default]=$(producer_run "$name" "$port" bench-default default)
  log "$name: producer-perf-test, linger.ms=5 batch.size=131072"
  R[$name.batched]=$(producer_run "$name" "$port" bench-batched batched linger.ms=5 batch.size=131072)
  log "$name: consumer-perf-test"
  R[$name.consumer]=$(consumer_perf "$BENCH_DIR/$name/consumer.txt" "127.0.0.1:$port" bench-default)
  R[$name.rss]=$(peak_rss_mb "${NODE_PIDS[0]}")
  stop_nodes 60
done
if ((${COLDSTART_RUNS:-5} > 0)); then
  for name in $BROKERS; do
    log "$name: ${COLDSTART_RUNS:-5} cold starts"
    R[$name.coldstart]=$(cold_start "$name" "${COLDSTART_RUNS:-5}")
  done
fi

# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
field() { awk -v i="$2" '{ print $i }' <<<"${R[$1]:-}"; }

echo
echo "oxka vs Apache Kafka $(kafka_version): $RECORDS records of $RECORD_SIZE B, acks=all, 1 partition, loopback, $(nproc) cores"
printf '%-34s %14s %14s %12s\n' "metric" "oxka" "kafka" "oxka/kafka"
row() { # label key field-index
  local a b
  a=$(field "oxka.$2" "$3"); b=$(field "kafka.$2" "$3")
  printf '%-34s %14s %14s %12s\n' "$1" "$(fmt1 "$a")" "$(fmt1 "$b")" "$(ratio "$a" "$b")"
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
row "cold start to ApiVersions ms" coldstart 1
a="${R[oxka.rss]:-}"; b="${R[kafka.rss]:-}"
printf '%-34s %14s %14s %12s\n' "broker peak RSS MB (VmHWM)" "${a:--}" "${b:--}" "$(ratio "$a" "$b")"
echo
echo "raw output: $BENCH_DIR"
