#!/usr/bin/env bash
# Batched produce latency at a pinned rate (issue 15 item 5): kafka-producer-perf-test (4.1.1),
# acks=all, linger.ms=5, batch.size=131072, one partition, against oxka and Apache Kafka 4.x in the
# same rounds, so the two are compared at the same throughput and under the same machine load.
#
#   bench/latency.sh                            # 3 rounds, 2,000,000 x 100 B, pinned at 800,000/s
#   RUNS=5 RATE=600000 bench/latency.sh         # more rounds, another rate
#   OXKA_BIN=path/to/oxka bench/latency.sh      # skip the release build
#   BROKERS=oxka bench/latency.sh               # one of them only
#   OXKA_BEFORE_BIN=old/oxka BROKERS="oxka-before oxka kafka" bench/latency.sh  # and an earlier build
#
# Both brokers are started once (fresh data dirs) and stay up. Each round runs, for each broker in
# turn, one producer-perf-test pinned at $RATE records/s (`--throughput`) and one unpinned (as fast as
# the producer can, -1), each to a topic of its own. For oxka the round also reads its /metrics
# Produce histogram (the broker's own time, decode to response encoded) before and after the pinned
# run, and the broker process's CPU seconds. Prints every round and the medians; the machine's load
# average is printed at the start and the end (the machine is shared: say how loaded it was).
set -euo pipefail

RECORDS="${RECORDS:-2000000}"
RECORD_SIZE="${RECORD_SIZE:-100}"
RATE="${RATE:-800000}"
RUNS="${RUNS:-3}"
BROKERS="${BROKERS:-oxka kafka}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

BATCHED=(linger.ms=5 batch.size=131072)

# produce_buckets PORT: oxka's cumulative Produce request-time histogram, "le count" per line.
produce_buckets() {
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk -F'[{}" ]+' '/^kafka_network_requestmetrics_totaltime_seconds_bucket/ && /request="Produce"/ {
      for (i = 1; i <= NF; i++) if ($i == "le=") le = $(i + 1); print le, $NF }'
}

# bucket_p99 BEFORE AFTER: the bucket bound (ms) under which 99% of the requests between the two
# histogram snapshots fell.
bucket_p99() {
  awk 'FILENAME == ARGV[1] { before[$1] = $2; next } { n[FNR] = $2 - before[$1]; le[FNR] = $1 } END {
    t = n[FNR]; for (i = 1; i <= FNR; i++) if (n[i] >= 0.99 * t) { printf "%.1f", le[i] * 1000; exit } }' "$1" "$2"
}

# stage_table BEFORE AFTER: from two /metrics snapshots, oxka's Produce stages between them
# (`oxka_produce_stage_seconds`): "stage mean-ms p99-ms(bucket bound) sum-s" per line.
stage_table() {
  awk -F'[{}", ]+' '/^oxka_produce_stage_seconds_(bucket|sum|count)/ {
      stage = ""; le = ""
      for (i = 1; i <= NF; i++) { if ($i == "stage=") stage = $(i + 1); if ($i == "le=") le = $(i + 1) }
      key = $1 SUBSEP stage SUBSEP le
      if (FILENAME == ARGV[1]) { before[key] = $NF; next }
      v = $NF - before[key]
      if ($1 ~ /_sum$/) sum[stage] = v
      else if ($1 ~ /_count$/) count[stage] = v
      else { n[stage]++; b[stage, n[stage]] = le; c[stage, n[stage]] = v }
    } END {
      split("read budget local remote response_queue response_send total", order, " ")
      for (k = 1; k <= 7; k++) {
        st = order[k]; p99 = "-"
        for (i = 1; i <= n[st]; i++) if (c[st, i] >= 0.99 * count[st]) { p99 = sprintf("%.2f", b[st, i] * 1000); break }
        printf "%-15s %8.3f %8s %8.2f\n", st, count[st] ? sum[st] / count[st] * 1000 : 0, p99, sum[st]
      }
    }' "$1" "$2"
}

cpu_seconds() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

declare -A PORT METRICS_PORT PID
for name in $BROKERS; do
  read -r p m <<<"$(free_ports 2)"
  PORT[$name]=$p
  METRICS_PORT[$name]=$m
  log "$name: starting on 127.0.0.1:$p"
  start_broker "$name" "$p" "$m"
  PID[$name]=${NODE_PIDS[-1]}
done
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A R
for ((round = 1; round <= RUNS; round++)); do
  for name in $BROKERS; do
    port=${PORT[$name]}
    dir="$BENCH_DIR/$name"
    for mode in pinned max; do
      topic="lat-$mode-$round"
      kafka4 topics --bootstrap-server "127.0.0.1:$port" --create --topic "$topic" \
        --partitions 1 --replication-factor 1 >/dev/null
      throughput=$RATE
      [[ $mode == max ]] && throughput=-1
      if [[ $name == oxka* ]]; then
        produce_buckets "${METRICS_PORT[$name]}" >"$dir/buckets-before"
        curl -sf "http://127.0.0.1:${METRICS_PORT[$name]}/metrics" >"$dir/metrics-before-$mode-$round"
        cpu0=$(cpu_seconds "${PID[$name]}")
      fi
      out=$(PERF_THROUGHPUT=$throughput producer_perf "$dir/producer-$mode-$round.txt" "127.0.0.1:$port" "$topic" "${BATCHED[@]}")
      if [[ $name == oxka* ]]; then
        produce_buckets "${METRICS_PORT[$name]}" >"$dir/buckets-after"
        curl -sf "http://127.0.0.1:${METRICS_PORT[$name]}/metrics" >"$dir/metrics-after-$mode-$round"
        cpu1=$(cpu_seconds "${PID[$name]}")
        out="$out $(bucket_p99 "$dir/buckets-before" "$dir/buckets-after") $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')"
      fi
      R[$name.$mode.$round]=$out
      log "round $round $name $mode: $out (records/s MB/s p50 p99 avg max [broker-p99-ms broker-cpu-s])"
    done
  done
done
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f\n", m }'; }
col() { # NAME MODE FIELD: the median over the rounds
  local r
  for ((r = 1; r <= RUNS; r++)); do awk -v i="$3" '{ print $i }' <<<"${R[$1.$2.$r]:-}"; done | grep . | median
}

echo
echo "batched produce (linger.ms=5 batch.size=131072, acks=all, 1 partition), $RECORDS x $RECORD_SIZE B, $RUNS rounds, medians, $(nproc) cores"
printf '%-42s' "metric"; printf ' %12s' $BROKERS; echo
row() { # LABEL MODE FIELD
  printf '%-42s' "$1"
  for name in $BROKERS; do printf ' %12s' "$(col "$name" "$2" "$3")"; done
  echo
}
for mode in pinned max; do
  label=$mode
  [[ $mode == pinned ]] && label="pinned $RATE/s"
  row "$label: records/s" "$mode" 1
  row "$label: p50 ms" "$mode" 3
  row "$label: p99 ms" "$mode" 4
  row "$label: broker's Produce p99 ms (<= bucket)" "$mode" 7
  row "$label: broker CPU s" "$mode" 8
done
echo
echo "rounds (records/s MB/s p50 p99 avg max [broker-p99-ms broker-cpu-s]):"
for ((r = 1; r <= RUNS; r++)); do
  for name in $BROKERS; do
    for mode in pinned max; do printf '  %d %-5s %-6s %s\n' "$r" "$name" "$mode" "${R[$name.$mode.$r]:-}"; done
  done
done
for name in $BROKERS; do
  [[ $name == oxka* ]] || continue
  for ((r = 1; r <= RUNS; r++)); do
    echo
    echo "$name Produce stages, pinned run of round $r (stage, mean ms, p99 ms as a bucket bound, total s):"
    stage_table "$BENCH_DIR/$name/metrics-before-pinned-$r" "$BENCH_DIR/$name/metrics-after-pinned-$r"
  done
done
echo "raw output: $BENCH_DIR"
