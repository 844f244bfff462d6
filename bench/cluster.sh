#!/usr/bin/env bash
# Three brokers, replication factor 3: oxka against Apache Kafka 4.x on this machine, with Kafka's own
# perf tools and the same settings (issue 9).
#
#   bench/cluster.sh                            # 1,000,000 records of 100 bytes
#   RECORDS=20000 bench/cluster.sh              # a quick check
#   OXKA_BIN=path/to/oxka SYSTEMS=oxka bench/cluster.sh   # skip the release build; only one system
#
# For each system, one after the other (never both at once), a cluster on loopback with fresh data dirs:
#   oxka   3 `oxka coordinator`s (server.1..3, the Raft ensemble) and 3 `oxka broker`s (broker.id 1..3,
#          zookeeper.connect listing the coordinators)
#   kafka  3 KRaft nodes in combined mode (process.roles=broker,controller, controller.quorum.voters),
#          each formatted with the same cluster id (scripts/apache-kafka-broker.sh)
# every broker with KAFKA_HEAP_OPTS=$BROKER_HEAP. Then a topic of $PARTITIONS partitions, replication
# factor 3, min.insync.replicas=2 (one per producer run), and
#   1. kafka-producer-perf-test, acks=all, throughput -1, the producer's default batching
#   2. the same with linger.ms=5 batch.size=131072
#      Both report the steady state after the first $SATURATED_WARMUP records (default a fifth) and the
#      whole run: KIP-1052's --warmup-records (kafka-tools $PERF_TOOLS_VERSION from Maven Central; the
#      same ProducerPerformance as Kafka's script otherwise). Records sent while the perf-test JVM
#      starts (cold JIT, first metadata, connections) wait for all of that; in a run of a few seconds
#      they are more than 1% of the records, so the whole run's p99 measures the client's start-up.
#   3. the batched settings again at a fixed $RATE records/s for $RATE_SECONDS s (default 300,000/s, 30 s),
#      a rate both systems sustain: latency at the same load, without the producer's own queue at
#      saturation (in runs 1 and 2 the perf-test JVM is the bottleneck on a small machine: its one
#      sender thread also runs every record's callback, and its accumulator queue dominates the tail),
#      after $RATE_WARMUP_SECONDS s (default 10) of warm-up records
#   4. linger.ms=0 (the default batch size) at a fixed $RATE0 records/s (default 100,000/s): without
#      the 5 ms the batched producer holds every record whatever the brokers do
#   for each producer run, oxka's brokers' own Produce p99 (their /metrics histogram: receipt to
#   response, replication wait included), the perf-test JVM's GC pauses (both systems): where a
#   client-side tail comes from; and the CPU time every process of the cluster used for the producer runs
#   5. kafka-consumer-perf-test over the records of run 1
# with all three brokers as bootstrap servers; then every process's peak RSS (VmHWM). Prints a table with
# oxka/Kafka ratios and whether issue 9's targets hold (oxka's throughput at least 1.5x Kafka's, its
# p99 at most 0.5x). Raw output and every process's log stay in $BENCH_DIR (printed at the end).
set -euo pipefail

RECORDS="${RECORDS:-1000000}"
RECORD_SIZE="${RECORD_SIZE:-100}"
PARTITIONS="${PARTITIONS:-6}"
SYSTEMS="${SYSTEMS:-oxka kafka}"
RATE="${RATE:-300000}"              # records/s of the batched fixed-rate run (both systems sustain it)
RATE0="${RATE0:-100000}"            # records/s of the linger.ms=0 fixed-rate run
RATE_SECONDS="${RATE_SECONDS:-30}"
RATE_WARMUP_SECONDS="${RATE_WARMUP_SECONDS:-10}"
SATURATED_WARMUP="${SATURATED_WARMUP:-$((RECORDS / 5))}" # records left out of runs 1-2's steady state
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

# Both systems: the single-broker bench's settings, with the internal topics at RF 3 / min.insync 2.
COMMON=(
  "log.segment.bytes=$SEGMENT_BYTES"
  "offsets.topic.replication.factor=3"
  "transaction.state.log.replication.factor=3"
  "transaction.state.log.min.isr=2"
  "group.initial.rebalance.delay.ms=0"
)

# start_oxka: the coordinator ensemble, then the brokers; sets BOOTSTRAP and METRICS (the brokers'
# /metrics ports).
start_oxka() {
  local dir="$BENCH_DIR/oxka" p i servers="" connect=""
  read -r -a p <<<"$(free_ports 12)" # coordinators' client ports 0-2 and peer ports 3-5; brokers 6-8, metrics 9-11
  for i in 1 2 3; do
    servers+="server.$i=127.0.0.1:${p[i + 2]}:$((p[i + 2] + 1));127.0.0.1:${p[i - 1]}"$'\n'
    connect+="${connect:+,}127.0.0.1:${p[i - 1]}"
  done
  for i in 1 2 3; do
    mkdir -p "$dir/zk$i"
    echo "$i" >"$dir/zk$i/myid"
    printf 'dataDir=%s\nclientPort=%s\nmetrics.port=-1\n%s' "$dir/zk$i" "${p[i - 1]}" "$servers" >"$dir/zk$i.properties"
    start_node "oxka coordinator $i" "$dir/zk$i.log" env RUST_LOG="${RUST_LOG:-warn}" NO_COLOR=1 \
      "$OXKA_BIN" coordinator "$dir/zk$i.properties"
  done
  for i in 1 2 3; do
    {
      echo "broker.id=$i"
      echo "listeners=PLAINTEXT://127.0.0.1:${p[i + 5]}"
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:${p[i + 5]}"
      echo "log.dirs=$dir/broker$i/data"
      echo "metrics.port=${p[i + 8]}"
      echo "zookeeper.connect=$connect"
      printf '%s\n' "${COMMON[@]}"
    } >"$dir/broker$i.properties"
    start_node "oxka broker $i" "$dir/broker$i.log" env KAFKA_HEAP_OPTS="$BROKER_HEAP" RUST_LOG="${RUST_LOG:-warn}" \
      NO_COLOR=1 "$OXKA_BIN" broker "$dir/broker$i.properties"
  done
  BOOTSTRAP="127.0.0.1:${p[6]},127.0.0.1:${p[7]},127.0.0.1:${p[8]}"
  METRICS=("${p[@]:9:3}")
}

# produce_histogram: the three oxka brokers' Produce request time histogram buckets, summed
# ("le count" lines).
produce_histogram() {
  local i
  for i in 1 2 3; do curl -sf "http://127.0.0.1:${METRICS[i - 1]}/metrics" || true; done |
    awk -F'[{}" ]+' '/^kafka_network_requestmetrics_totaltime_seconds_bucket/ && /request="Produce"/ {
      for (f = 2; f < NF; f++) if ($f == "le=") le = $(f + 1); n[le] += $NF }
      END { for (le in n) print le, n[le] }' | sort -g
}

# server_p99 BEFORE: from the histogram on stdin minus BEFORE, the bucket bound (ms) under which 99% of
# the Produce requests between the two scrapes completed, as the broker measured them (receipt to
# response): the broker's own share of the produce latency.
server_p99() {
  awk 'FILENAME == ARGV[1] { before[$1] = $2; next } { d[++k] = $1; c[k] = $2 - before[$1] }
    END { total = c[k]; for (i = 1; i <= k; i++) if (c[i] >= 0.99 * total) { printf "%g", d[i] * 1000; exit } }' "$1" -
}

# cpu_seconds: user + system CPU seconds used so far by every process of the running cluster.
cpu_seconds() {
  local pid t=0 hz
  hz=$(getconf CLK_TCK)
  for pid in "${NODE_PIDS[@]}"; do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  awk -v t="$t" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }'
}

# server_before NAME / server_after NAME RUN: for oxka, the brokers' Produce histogram before a run and
# R[oxka.server_p99.RUN], the p99 of the Produce requests the brokers answered during it (the rate
# run includes its warm-up records).
server_before() { [[ $1 == oxka ]] && produce_histogram >"$BENCH_DIR/oxka/produce-before.txt" || true; }
server_after() {
  [[ $1 == oxka ]] && R[oxka.server_p99.$2]=$(produce_histogram | server_p99 "$BENCH_DIR/oxka/produce-before.txt") || true
}

# oxka_replication_stats: the brokers' replication counters after the runs, summed over the three
# (their /metrics saved next to the logs): "ISR shrinks N, expands N, follower fetches answered N".
oxka_replication_stats() {
  local i f sum
  for i in 1 2 3; do
    curl -sf "http://127.0.0.1:${METRICS[i - 1]}/metrics" >"$BENCH_DIR/oxka/broker$i.metrics" || true
  done
  sum() { cat "$BENCH_DIR"/oxka/broker?.metrics | awk -v m="$1" '$1 ~ "^"m"({|$)" { t += $2 } END { printf "%d", t }'; }
  echo "ISR shrinks $(sum kafka_server_replicamanager_isrshrinks_total), expands $(sum kafka_server_replicamanager_isrexpands_total), follower fetches answered $(sum kafka_server_fetcherstats_follower_requests_total)"
}

# start_kafka: three combined broker+controller nodes, controllers on each broker port + 1; sets BOOTSTRAP.
start_kafka() {
  local dir="$BENCH_DIR/kafka" p i voters="" id
  read -r -a p <<<"$(free_ports 3)"
  for i in 1 2 3; do voters+="${voters:+,}$i@127.0.0.1:$((p[i - 1] + 1))"; done
  id=$(kafka4 storage random-uuid)
  for i in 1 2 3; do
    mkdir -p "$dir/node$i"
    echo "$id" >"$dir/node$i/cluster.id" # the script formats with it
    start_node "kafka node $i" "$dir/node$i.log" env KAFKA_HEAP_OPTS="$BROKER_HEAP" \
      "$root/scripts/apache-kafka-broker.sh" "$dir/node$i" "${p[i - 1]}" "node.id=$i" \
      "controller.quorum.voters=$voters" "log.dirs=$dir/node$i/data" "${COMMON[@]}"
  done
  BOOTSTRAP="127.0.0.1:${p[0]},127.0.0.1:${p[1]},127.0.0.1:${p[2]}"
}

# create_topic NAME TOPIC: RF 3, min.insync.replicas=2; waits until every partition has a leader and
# three in-sync replicas.
create_topic() {
  local name="$1" topic="$2" deadline=$((SECONDS + 60)) n=0
  kafka4 topics --bootstrap-server "$BOOTSTRAP" --create --topic "$topic" --partitions "$PARTITIONS" \
    --replication-factor 3 --config min.insync.replicas=2 >/dev/null
  while ((SECONDS < deadline)); do
    kafka4 topics --bootstrap-server "$BOOTSTRAP" --describe --topic "$topic" >"$BENCH_DIR/$name/$topic.txt" 2>&1 || true
    n=$(grep -cE 'Leader: [0-9]+.*Isr: [0-9]+,[0-9]+,[0-9]+' "$BENCH_DIR/$name/$topic.txt" || true)
    ((n >= PARTITIONS)) && return 0
    sleep 1
  done
  cat "$BENCH_DIR/$name/$topic.txt" >&2
  die "$name: only $n of $PARTITIONS partitions of $topic have a leader and 3 in-sync replicas"
}

declare -A R
for name in $SYSTEMS; do
  log "$name: starting 3 brokers"
  mkdir -p "$BENCH_DIR/$name"
  "start_$name"
  wait_brokers "$BOOTSTRAP" 3 180 || die "$name: the cluster did not come up (logs: $BENCH_DIR/$name)"
  log "$name: brokers up at $BOOTSTRAP; creating topics ($PARTITIONS partitions, RF 3, min.insync.replicas=2)"
  create_topic "$name" bench-default
  create_topic "$name" bench-batched
  create_topic "$name" bench-rate
  create_topic "$name" bench-rate0
  log "$name: producer-perf-test, default batching ($RECORDS x $RECORD_SIZE B, acks=all)"
  cpu0=$(cpu_seconds)
  server_before "$name"
  R[$name.default]=$(producer_perf_steady "$BENCH_DIR/$name/producer-default.txt" "$BOOTSTRAP" bench-default \
    "$SATURATED_WARMUP") || true
  server_after "$name" default
  log "$name: producer-perf-test, linger.ms=5 batch.size=131072"
  server_before "$name"
  R[$name.batched]=$(producer_perf_steady "$BENCH_DIR/$name/producer-batched.txt" "$BOOTSTRAP" bench-batched \
    "$SATURATED_WARMUP" linger.ms=5 batch.size=131072) || true
  server_after "$name" batched
  log "$name: producer-perf-test, linger.ms=5 batch.size=131072, at a fixed $RATE records/s for ${RATE_WARMUP_SECONDS}s of warm-up and ${RATE_SECONDS}s measured"
  server_before "$name"
  R[$name.rate]=$(PERF_THROUGHPUT=$RATE PERF_RECORDS=$((RATE * (RATE_WARMUP_SECONDS + RATE_SECONDS))) \
    producer_perf_steady "$BENCH_DIR/$name/producer-rate.txt" "$BOOTSTRAP" bench-rate $((RATE * RATE_WARMUP_SECONDS)) \
    linger.ms=5 batch.size=131072) || true
  server_after "$name" rate
  log "$name: producer-perf-test, linger.ms=0, at a fixed $RATE0 records/s for ${RATE_WARMUP_SECONDS}s of warm-up and ${RATE_SECONDS}s measured"
  server_before "$name"
  R[$name.rate0]=$(PERF_THROUGHPUT=$RATE0 PERF_RECORDS=$((RATE0 * (RATE_WARMUP_SECONDS + RATE_SECONDS))) \
    producer_perf_steady "$BENCH_DIR/$name/producer-rate0.txt" "$BOOTSTRAP" bench-rate0 $((RATE0 * RATE_WARMUP_SECONDS)) \
    linger.ms=0) || true
  server_after "$name" rate0
  R[$name.cpu]=$(awk -v a="$cpu0" -v b="$(cpu_seconds)" 'BEGIN { printf "%.1f", b - a }')
  for run in default batched rate rate0; do R[$name.gc.$run]=$(gc_pauses "$BENCH_DIR/$name/producer-$run.txt.gc"); done
  log "$name: consumer-perf-test"
  R[$name.consumer]=$(consumer_perf "$BENCH_DIR/$name/consumer.txt" "$BOOTSTRAP" bench-default) || true
  nodes_alive || log "$name: a process died during the run"
  [[ $name == oxka ]] && R[oxka.replication]=$(oxka_replication_stats)
  for i in "${!NODE_PIDS[@]}"; do
    node="${NODE_NAMES[i]}"
    R[$name.rss.${node##* }.${node% *}]=$(peak_rss_mb "${NODE_PIDS[i]}" 2>/dev/null || echo "")
    R[$name.warn]+="${R[$name.warn]:+, }${node#"$name "} $(warn_lines "${NODE_LOGS[i]}")"
  done
  t0=$SECONDS
  stop_nodes 30 "$name broker" # oxka: the brokers first, while the controller can confirm their shutdown
  stop_nodes 30
  log "$name: stopped in $((SECONDS - t0)) s"
  # The records themselves (GBs at 5M records x 3 replicas) go; outputs and logs stay.
  rm -rf "$BENCH_DIR/$name"/broker?/data "$BENCH_DIR/$name"/node?/data
done

# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
gc_cell() { local v="${R[$1.gc.$2]:-}"; [[ -n $v ]] && echo "${v// //}" || echo -; }
field() { awk -v i="$2" '{ print $i }' <<<"${R[$1]:-}"; }
# rss NAME ROLE: "a/b/c" for nodes 1..3 of that role; rss_sum NAME ROLE...: their total in MB (empty
# when not measured).
rss() {
  local v="${R[$1.rss.1.$1 $2]:-?}/${R[$1.rss.2.$1 $2]:-?}/${R[$1.rss.3.$1 $2]:-?}"
  [[ $v == "?/?/?" ]] && echo - || echo "$v"
}
rss_sum() {
  local name="$1" role i t=""
  shift
  for role in "$@"; do for i in 1 2 3; do t=$((t + ${R[$name.rss.$i.$name $role]:-0})); done; done
  [[ $t != 0 ]] && echo "$t" || true
}

echo
echo "oxka vs Apache Kafka $(kafka_version), 3 brokers: $RECORDS records of $RECORD_SIZE B, acks=all, $PARTITIONS partitions, RF 3, min.insync.replicas=2, loopback, $(nproc) cores"
printf '%-36s %14s %14s %12s\n' "metric" "oxka" "kafka" "oxka/kafka"
row() { # label key field-index
  local a b
  a=$(field "oxka.$2" "$3")
  b=$(field "kafka.$2" "$3")
  printf '%-36s %14s %14s %12s\n' "$1" "$(fmt1 "$a")" "$(fmt1 "$b")" "$(ratio "$a" "$b")"
}
for run in default batched rate rate0; do
  row "producer $run: records/s" "$run" 1
  row "producer $run: MB/s" "$run" 2
  row "producer $run: p50 latency ms" "$run" 3
  row "producer $run: p99 latency ms" "$run" 4
  row "producer $run: max latency ms" "$run" 6
  row "producer $run: whole run p99 ms" "$run" 8
done
for run in default batched rate rate0; do
  printf '%-36s %14s %14s %12s\n' "$run: oxka brokers' Produce p99 ms" "<= ${R[oxka.server_p99.$run]:-?}" "" ""
done
for run in default batched rate rate0; do
  printf '%-36s %14s %14s %12s\n' "$run: perf-test GC pauses n/sum/max" "$(gc_cell oxka $run)" "$(gc_cell kafka $run)" ""
done
echo "(rate: $RATE records/s with linger.ms=5 batch.size=131072, rate0: $RATE0 records/s with linger.ms=0; the steady state after ${RATE_WARMUP_SECONDS} s of warm-up)"
oc="${R[oxka.cpu]:-}"; kc="${R[kafka.cpu]:-}"
printf '%-36s %14s %14s %12s\n' "cluster CPU s, the 4 producer runs" "${oc:--}" "${kc:--}" "$(ratio "$oc" "$kc")"
row "consumer: MB/s" consumer 1
row "consumer: records/s" consumer 2
row "consumer: fetch MB/s" consumer 3
ob=$(rss_sum oxka broker); oa=$(rss_sum oxka broker coordinator); kb=$(rss_sum kafka node)
printf '%-36s %14s %14s %12s\n' "peak RSS MB, brokers 1/2/3" "$(rss oxka broker)" "$(rss kafka node)" "$(ratio "$ob" "$kb")"
printf '%-36s %14s %14s %12s\n' "peak RSS MB, coordinators 1/2/3" "$(rss oxka coordinator)" "(in the nodes)" ""
printf '%-36s %14s %14s %12s\n' "peak RSS MB, all 6 / all 3 processes" "${oa:--}" "${kb:--}" "$(ratio "$oa" "$kb")"

echo
echo "issue 9 targets (oxka/Kafka: throughput >= 1.5, p99 <= 0.5; at a fixed rate only the p99 counts):"
met=yes
for run in rate rate0; do
  l=$(ratio "$(field oxka.$run 4)" "$(field kafka.$run 4)")
  verdict=$(awk -v l="$l" 'BEGIN { print (l != "-" && l <= 0.5) ? "met" : "NOT met" }')
  [[ $verdict == met ]] || met=no
  [[ $l == - ]] && verdict="not measured"
  echo "  producer $run at a fixed rate: p99 ${l}x: $verdict"
done
for run in default batched; do
  t=$(ratio "$(field oxka.$run 1)" "$(field kafka.$run 1)")
  l=$(ratio "$(field oxka.$run 4)" "$(field kafka.$run 4)")
  verdict=$(awk -v t="$t" -v l="$l" 'BEGIN { print (t != "-" && l != "-" && t >= 1.5 && l <= 0.5) ? "met" : "NOT met" }')
  [[ $verdict == met ]] || met=no
  [[ $t == - || $l == - ]] && verdict="not measured"
  echo "  producer $run: throughput ${t}x, p99 ${l}x: $verdict"
done
echo "  all targets met: $met"
echo
for name in $SYSTEMS; do echo "$name log lines at WARN/ERROR: ${R[$name.warn]:-}"; done
[[ -n "${R[oxka.replication]:-}" ]] && echo "oxka brokers' replication metrics: ${R[oxka.replication]}"
echo "raw output and logs: $BENCH_DIR"
