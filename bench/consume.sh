#!/usr/bin/env bash
# Consumption with a client that is not the bottleneck (issue 15): kcat (librdkafka) with large
# fetches reads $CONSUME_MB MiB from oxka and from Apache Kafka 4.x in the same run, against the
# loopback TCP bandwidth iperf3 measures on the same machine.
#
#   bench/consume.sh                          # 1 GiB, 16 KiB records, 4 partitions, 3 reads each
#   CONSUME_MB=256 RUNS=1 bench/consume.sh    # shorter
#   OXKA_BIN=path/to/oxka bench/consume.sh    # skip the release build
#   BROKERS="oxka kafka" bench/consume.sh     # of: oxka-copy (fetch.zero.copy.enable=false), oxka, kafka
#
# First iperf3 (one TCP stream on 127.0.0.1 for 5 s). Then for each broker, one after the other:
# start it with a fresh data dir, write the data with kafka-producer-perf-test (acks=1, 1 MiB
# batches, uncompressed), then read it all $RUNS times with kcat (`-o beginning -e`, one connection,
# 16 MiB per partition and 64 MiB per fetch, offsets printed and counted so every record is checked to
# arrive). The data is in the page cache for every read (just written). MB/s is MiB of record values
# per second of kcat's wall time (start to exit, connection and metadata included); the best of the
# runs is reported, the others are in the raw output.
set -euo pipefail

CONSUME_MB="${CONSUME_MB:-1024}"
RECORD_SIZE="${RECORD_SIZE:-16384}"
PARTITIONS="${PARTITIONS:-4}"
RUNS="${RUNS:-3}"
BROKERS="${BROKERS:-oxka-copy oxka kafka}"
RECORDS=$((CONSUME_MB * 1024 * 1024 / RECORD_SIZE))
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup
command -v iperf3 >/dev/null || die "iperf3 is missing: run scripts/install-tools.sh"

# loopback_mib_s: one iperf3 stream over 127.0.0.1 for 5 s; prints the receiver's MiB/s.
loopback_mib_s() {
  local port
  port=$(free_ports 1)
  iperf3 -s -1 -p "$port" -B 127.0.0.1 >"$BENCH_DIR/iperf3-server.txt" 2>&1 &
  local server=$!
  sleep 0.5
  iperf3 -c 127.0.0.1 -p "$port" -t 5 -J >"$BENCH_DIR/iperf3.json" 2>&1 || { kill "$server" 2>/dev/null; die "iperf3 failed: $BENCH_DIR/iperf3.json"; }
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
    -X fetch.message.max.bytes=16777216 -X fetch.max.bytes=67108864 -X receive.message.max.bytes=100000000 \
    -X queued.max.messages.kbytes=2097151 -X queued.min.messages=10000000 -X fetch.wait.max.ms=100 \
    >"$out" 2>"$out.err" || { cat "$out.err" >&2; die "kcat failed against $name"; }
  t1=$(date +%s%N)
  got=$(wc -l <"$out")
  ((got == RECORDS)) || die "kcat read $got records from $name, expected $RECORDS ($out)"
  awk -v b=$((RECORDS * RECORD_SIZE)) -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", b / 1048576 / (ns / 1e9) }'
}

log "loopback TCP bandwidth (iperf3, one stream, 5 s)"
loopback=$(loopback_mib_s)
log "loopback: $loopback MiB/s"

declare -A BEST ALL
for name in $BROKERS; do
  port=$(free_ports 1)
  log "$name: starting on 127.0.0.1:$port"
  start_consume_broker "$name" "$port"
  kafka4 topics --bootstrap-server "127.0.0.1:$port" --create --topic bench-consume \
    --partitions "$PARTITIONS" --replication-factor 1 >/dev/null
  log "$name: writing $RECORDS records of $RECORD_SIZE B ($CONSUME_MB MiB) over $PARTITIONS partitions"
  PERF_RECORDS=$RECORDS producer_perf "$BENCH_DIR/$name/producer.txt" "127.0.0.1:$port" bench-consume \
    acks=1 linger.ms=20 batch.size=1048576 max.request.size=10485760 >/dev/null
  for ((run = 1; run <= RUNS; run++)); do
    mib_s=$(kcat_read "$name" "127.0.0.1:$port" "$run")
    log "$name: read $run: $mib_s MiB/s"
    ALL[$name]="${ALL[$name]:-}$mib_s "
    if [[ -z ${BEST[$name]:-} ]] || awk -v a="$mib_s" -v b="${BEST[$name]}" 'BEGIN { exit !(a > b) }'; then
      BEST[$name]=$mib_s
    fi
  done
  stop_nodes 60
  rm -rf "$BENCH_DIR/$name/data" # 1 GiB per broker: not kept
done

echo
echo "consume $CONSUME_MB MiB ($RECORDS x $RECORD_SIZE B, $PARTITIONS partitions) with kcat $(kcat -V 2>&1 | sed -nE 's/^Version ([^ ]+) .*(librdkafka [^ ]+).*/\1, \2/p'), best of $RUNS, loopback, $(nproc) cores"
printf '%-32s %12s %14s %14s\n' "broker" "MiB/s" "of loopback" "all runs"
printf '%-32s %12s %14s %14s\n' "iperf3 loopback, one stream" "$loopback" "1.00" "-"
for name in $BROKERS; do
  label="$name"
  [[ $name == kafka ]] && label="Apache Kafka $(kafka_version)"
  [[ $name == oxka-copy ]] && label="oxka, copying (zero.copy=false)"
  [[ $name == oxka ]] && label="oxka, sendfile"
  printf '%-32s %12s %14s %14s\n' "$label" "${BEST[$name]}" "$(ratio "${BEST[$name]}" "$loopback")" "${ALL[$name]% }"
done
for name in oxka oxka-copy; do
  [[ -n ${BEST[$name]:-} && -n ${BEST[kafka]:-} ]] && printf '%-32s %12s\n' "$name / kafka" "$(ratio "${BEST[$name]}" "${BEST[kafka]}")"
done
[[ -n ${BEST[oxka]:-} && -n ${BEST[oxka-copy]:-} ]] && printf '%-32s %12s\n' "oxka sendfile / copying" "$(ratio "${BEST[oxka]}" "${BEST[oxka-copy]}")"
echo
echo "raw output: $BENCH_DIR"
