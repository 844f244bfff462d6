#!/usr/bin/env bash
# Consumption with a client that is not the bottleneck (issue 15): kcat (librdkafka) with large
# fetches reads $CONSUME_MB MiB from oxka and from Apache Kafka 4.x in the same run, against the
# loopback TCP bandwidth iperf3 measures on the same machine.
#
#   bench/consume.sh                          # 1 GiB, 16 KiB records, 4 partitions, 5 rounds
#   CONSUME_MB=256 RUNS=1 bench/consume.sh    # shorter
#   OXKA_BIN=path/to/oxka bench/consume.sh    # skip the release build
#   BROKERS="oxka kafka" bench/consume.sh     # of: oxka-copy (fetch.zero.copy.enable=false), oxka, kafka
#
# Each broker is started with a fresh data dir and gets the data from kafka-producer-perf-test (acks=1,
# 1 MiB batches, uncompressed); all stay up. Then $RUNS rounds, each: iperf3 (one TCP stream on
# 127.0.0.1 for 3 s), then one whole read from each broker in turn with kcat (`-o beginning -e`, one
# connection, 2 MiB per partition and 8 MiB per fetch, fetch.wait.max.ms=5 so the final empty
# fetch that tells kcat it reached the end waits little, offsets printed and counted so every record
# is checked to arrive). The data is in the page cache for every read (just written). MiB/s is MiB
# of record values per second of kcat's wall time (start to exit, connection and metadata
# included); the median of the rounds is compared, the best and every round are printed too.
set -euo pipefail

CONSUME_MB="${CONSUME_MB:-1024}"
RECORD_SIZE="${RECORD_SIZE:-16384}"
PARTITIONS="${PARTITIONS:-4}"
RUNS="${RUNS:-5}"
# kcat's fetch sizes: 2 MiB per partition, 8 MiB per response. librdkafka allocates a buffer per
# response: one larger than glibc's mmap threshold (at most 32 MiB) is fresh memory each time, and
# its page faults make the client the bottleneck (64 MiB responses: 0.7 s of kcat system time per
# GiB, 8 MiB: 0.16 s).
PARTITION_FETCH_BYTES="${PARTITION_FETCH_BYTES:-2097152}"
FETCH_BYTES="${FETCH_BYTES:-8388608}"
BROKERS="${BROKERS:-oxka-copy oxka kafka}"
RECORDS=$((CONSUME_MB * 1024 * 1024 / RECORD_SIZE))
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup
command -v iperf3 >/dev/null || die "iperf3 is missing: run scripts/install-tools.sh"

# loopback_mib_s: one iperf3 stream over 127.0.0.1 for 3 s; prints the receiver's MiB/s.
loopback_mib_s() {
  local port
  port=$(free_ports 1)
  iperf3 -s -1 -p "$port" -B 127.0.0.1 >"$BENCH_DIR/iperf3-server.txt" 2>&1 &
  local server=$!
  sleep 0.5
  iperf3 -c 127.0.0.1 -p "$port" -t 3 -J >"$BENCH_DIR/iperf3.json" 2>&1 || { kill "$server" 2>/dev/null; die "iperf3 failed: $BENCH_DIR/iperf3.json"; }
  wait "$server" 2>/dev/null || true
  python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 8 / 1048576))' \
    "$BENCH_DIR/iperf3.json"
}

# start_consume_broker NAME PORT: starts oxka (zero-copy or not) or Kafka, waits for metadata.
start_consume_broker() {
  local name="$1" port="$2" dir="$BENCH_DIR/$1"
  mkdir -p "$dir"
  local common=("num.partitions=1" "log.segment.bytes=$SEGMENT_BYTES" "offsets.topic.replication.factor=1"
    "transaction.state.log.replication.factor=1" "transaction.state.log.min.isr=1" "group.initial.rebalance.delay.ms=0")
  case "$name" in
    oxka | oxka-copy)
      {
        echo "broker.id=0"
        echo "listeners=PLAINTEXT://127.0.0.1:$port"
        echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
        echo "log.dirs=$dir/data"
        echo "metrics.port=-1"
        [[ $name == oxka-copy ]] && echo "fetch.zero.copy.enable=false"
        printf '%s\n' "${common[@]}"
      } >"$dir/server.properties"
      start_node "$name" "$dir/broker.log" env KAFKA_HEAP_OPTS="$BROKER_HEAP" RUST_LOG="${RUST_LOG:-warn}" \
        "$OXKA_BIN" broker "$dir/server.properties"
      ;;
    kafka)
      start_node kafka "$dir/broker.log" env KAFKA_HEAP_OPTS="$BROKER_HEAP" \
        "$root/scripts/apache-kafka-broker.sh" "$dir" "$port" "log.dirs=$dir/data" "${common[@]}"
      ;;
    *) die "unknown broker $name (oxka-copy, oxka, kafka)" ;;
  esac
  wait_brokers "127.0.0.1:$port" 1 120 || die "$name did not come up on port $port"
}

# kcat_read NAME BOOTSTRAP RUN: reads the topic once; prints MiB/s; fails unless every record arrived.
kcat_read() {
  local name="$1" bootstrap="$2" run="$3" out t0 t1 got
  out="$BENCH_DIR/$name/kcat-$run.txt"
  t0=$(date +%s%N)
  kcat -C -b "$bootstrap" -t bench-consume -o beginning -e -q -f '%p %o\n' \
    -X fetch.message.max.bytes="$PARTITION_FETCH_BYTES" -X fetch.max.bytes="$FETCH_BYTES" -X receive.message.max.bytes=100000000 \
    -X queued.max.messages.kbytes=2097151 -X queued.min.messages=10000000 -X fetch.wait.max.ms=5 \
    >"$out" 2>"$out.err" || { cat "$out.err" >&2; die "kcat failed against $name"; }
  t1=$(date +%s%N)
  got=$(wc -l <"$out")
  ((got == RECORDS)) || die "kcat read $got records from $name, expected $RECORDS ($out)"
  awk -v b=$((RECORDS * RECORD_SIZE)) -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", b / 1048576 / (ns / 1e9) }'
}

# median and best of a space-separated list of numbers: "median best"
stats() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%s %s\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR] }'; }

declare -A PORT ALL
for name in $BROKERS; do
  PORT[$name]=$(free_ports 1)
  log "$name: starting on 127.0.0.1:${PORT[$name]}"
  start_consume_broker "$name" "${PORT[$name]}"
  kafka4 topics --bootstrap-server "127.0.0.1:${PORT[$name]}" --create --topic bench-consume \
    --partitions "$PARTITIONS" --replication-factor 1 >/dev/null
  log "$name: writing $RECORDS records of $RECORD_SIZE B ($CONSUME_MB MiB) over $PARTITIONS partitions"
  PERF_RECORDS=$RECORDS producer_perf "$BENCH_DIR/$name/producer.txt" "127.0.0.1:${PORT[$name]}" bench-consume \
    acks=1 linger.ms=20 batch.size=1048576 max.request.size=10485760 >/dev/null
done
# Rounds: iperf3, then one read from each broker; the other brokers are idle meanwhile. Interleaving
# spreads the load of a shared machine over all of them alike.
for ((run = 1; run <= RUNS; run++)); do
  mib_s=$(loopback_mib_s)
  log "round $run: iperf3 loopback $mib_s MiB/s"
  ALL[loopback]="${ALL[loopback]:-}$mib_s "
  for name in $BROKERS; do
    mib_s=$(kcat_read "$name" "127.0.0.1:${PORT[$name]}" "$run")
    log "round $run: $name $mib_s MiB/s"
    ALL[$name]="${ALL[$name]:-}$mib_s "
  done
done
stop_nodes 60
for name in $BROKERS; do rm -rf "$BENCH_DIR/$name/data"; done # 1 GiB per broker: not kept

declare -A MEDIAN BEST
for name in loopback $BROKERS; do
  read -r MEDIAN[$name] BEST[$name] <<<"$(stats "${ALL[$name]}")"
done
label() {
  case "$1" in
    loopback) echo "iperf3 loopback, one stream" ;;
    kafka) echo "Apache Kafka $(kafka_version)" ;;
    oxka-copy) echo "oxka, copying (zero.copy off)" ;;
    oxka) echo "oxka, sendfile" ;;
  esac
}
echo
echo "consume $CONSUME_MB MiB ($RECORDS x $RECORD_SIZE B, $PARTITIONS partitions) with kcat $(kcat -V 2>&1 | sed -nE 's/^Version ([^ ]+) .*(librdkafka [^ ]+).*/\1, \2/p'), $RUNS rounds, loopback, $(nproc) cores"
printf '%-30s %10s %10s %13s  %s\n' "MiB/s" "median" "best" "of loopback" "all rounds"
for name in loopback $BROKERS; do
  printf '%-30s %10s %10s %13s  %s\n' "$(label "$name")" "${MEDIAN[$name]}" "${BEST[$name]}" \
    "$(ratio "${MEDIAN[$name]}" "${MEDIAN[loopback]}")" "${ALL[$name]% }"
done
echo "ratios of medians:"
for pair in oxka:kafka oxka-copy:kafka oxka:oxka-copy; do
  a=${pair%%:*} b=${pair#*:}
  [[ -n ${MEDIAN[$a]:-} && -n ${MEDIAN[$b]:-} ]] && printf '  %-28s %10s\n' "$a / $b" "$(ratio "${MEDIAN[$a]}" "${MEDIAN[$b]}")"
done
echo
echo "raw output: $BENCH_DIR"
