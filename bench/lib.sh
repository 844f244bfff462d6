# Shared by bench/run.sh (one broker) and bench/cluster.sh (three brokers, RF 3); sourced, not run.
# Tool setup, loopback ports, the processes a script starts, Kafka's perf tools with their output
# parsed, peak RSS, and the report's number formatting. The caller sets RECORDS and RECORD_SIZE.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SEGMENT_BYTES="${SEGMENT_BYTES:-1073741824}"
BROKER_HEAP="${BROKER_HEAP:--Xmx1G -Xms1G}" # the seed's heap, for every broker of both systems
BENCH_DIR="${BENCH_DIR:-$(mktemp -d /tmp/oxka-bench.XXXXXX)}"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
kafka4() { "$root/scripts/kafka" 4 "$@"; }
kafka_version() { basename "$(readlink -f "${OXKA_CACHE:-$HOME/.cache/oxka}/kafka-4")" | sed 's/kafka-//'; }

# bench_setup: installs Kafka's tools (scripts/install-tools.sh, quietly) and sets OXKA_BIN, building
# oxka in release unless it is given.
bench_setup() {
  mkdir -p "$BENCH_DIR"
  bash "$root/scripts/install-tools.sh" >"$BENCH_DIR/install-tools.log" 2>&1 \
    || { cat "$BENCH_DIR/install-tools.log" >&2; exit 1; }
  if [[ -z "${OXKA_BIN:-}" ]]; then
    log "building oxka (release)..."
    (cd "$root" && cargo build --release -q -p oxka-broker --bin oxka)
    OXKA_BIN="${CARGO_TARGET_DIR:-$root/target}/release/oxka"
  fi
  [[ -x "$OXKA_BIN" ]] || die "no oxka binary at $OXKA_BIN"
}

# free_ports N: N distinct free loopback ports p, each with p+1 free too (Kafka's controller listener
# and a coordinator's election port go there).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    held += [s, t]
    ports.append(p)
print(" ".join(map(str, ports)))
EOF
}

# ------------------------------------------------------------------------------------------------
# Processes: every broker or coordinator a script starts is a "node", killed when the script exits.
# ------------------------------------------------------------------------------------------------
NODE_NAMES=()
NODE_PIDS=()
NODE_LOGS=()
kill_nodes() { local p; for p in "${NODE_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap kill_nodes EXIT

# start_node NAME LOG COMMAND...: runs COMMAND in the background, stdout and stderr to LOG (pass
# environment with `env K=V ...`: env execs, so the pid is the program's).
start_node() {
  local name="$1" logf="$2"
  shift 2
  "$@" >"$logf" 2>&1 &
  NODE_NAMES+=("$name")
  NODE_PIDS+=("$!")
  NODE_LOGS+=("$logf")
}

# nodes_alive: fails, with the log tail of the first node that exited, unless all still run.
nodes_alive() {
  local i
  for i in "${!NODE_PIDS[@]}"; do
    kill -0 "${NODE_PIDS[i]}" 2>/dev/null && continue
    tail -30 "${NODE_LOGS[i]}" >&2
    log "${NODE_NAMES[i]} exited (log: ${NODE_LOGS[i]})"
    return 1
  done
}

# wait_brokers BOOTSTRAP COUNT [SECONDS]: until Metadata through BOOTSTRAP lists COUNT brokers (Kafka
# lists only unfenced ones), while every node stays alive.
wait_brokers() {
  local bootstrap="$1" want="$2" deadline=$((SECONDS + ${3:-120})) n=0
  while ((SECONDS < deadline)); do
    nodes_alive || return 1
    n=$(kafka4 broker-api-versions --bootstrap-server "$bootstrap" 2>/dev/null | grep -cE '^[^ ]+ \(id: ' || true)
    ((n >= want)) && return 0
    sleep 1
  done
  log "Metadata lists $n of $want brokers after ${3:-120} s"
  return 1
}

# stop_nodes [SECONDS [PREFIX]]: SIGTERM to every node (whose name starts with PREFIX) at once, SIGKILL
# to those still running after SECONDS (default 30; logged, it is worth knowing), then forgets them.
stop_nodes() {
  local secs="${1:-30}" prefix="${2:-}" deadline=$((SECONDS + ${1:-30})) i p
  local names=() pids=() logs=()
  for i in "${!NODE_PIDS[@]}"; do
    [[ ${NODE_NAMES[i]} == "$prefix"* ]] && kill -TERM "${NODE_PIDS[i]}" 2>/dev/null || true
  done
  for i in "${!NODE_PIDS[@]}"; do
    p="${NODE_PIDS[i]}"
    if [[ ${NODE_NAMES[i]} != "$prefix"* ]]; then
      names+=("${NODE_NAMES[i]}"); pids+=("$p"); logs+=("${NODE_LOGS[i]}")
      continue
    fi
    while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    if kill -0 "$p" 2>/dev/null; then
      log "${NODE_NAMES[i]} still ran $secs s after SIGTERM: killed"
      kill -9 "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  NODE_NAMES=("${names[@]}")
  NODE_PIDS=("${pids[@]}")
  NODE_LOGS=("${logs[@]}")
}

# start_broker NAME PORT [METRICS_PORT]: starts oxka, kafka or oxka-before (oxka from
# $OXKA_BEFORE_BIN, an earlier build to compare with) on a fresh data dir under $BENCH_DIR/NAME, waits
# until it serves metadata. oxka serves /metrics on METRICS_PORT if given.
# Used by bench/run.sh and bench/latency.sh.
start_broker() {
  local name="$1" port="$2" metrics="${3:--1}" dir="$BENCH_DIR/$1"
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
    oxka | oxka-before)
      local bin="$OXKA_BIN"
      [[ $name == oxka-before ]] && bin="${OXKA_BEFORE_BIN:?oxka-before needs OXKA_BEFORE_BIN}"
      {
        echo "broker.id=0"
        echo "listeners=PLAINTEXT://127.0.0.1:$port"
        echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
        echo "log.dirs=$dir/data"
        echo "metrics.port=$metrics"
        printf '%s\n' "${common[@]}"
      } >"$dir/server.properties"
      start_node "$name" "$dir/broker.log" env KAFKA_HEAP_OPTS="$BROKER_HEAP" RUST_LOG="${RUST_LOG:-warn}" \
        "$bin" broker "$dir/server.properties"
      ;;
    kafka)
      start_node kafka "$dir/broker.log" env KAFKA_HEAP_OPTS="$BROKER_HEAP" \
        "$root/scripts/apache-kafka-broker.sh" "$dir" "$port" "log.dirs=$dir/data" "${common[@]}"
      ;;
  esac
  wait_brokers "127.0.0.1:$port" 1 120 || die "$name did not come up on port $port"
}

peak_rss_mb() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# warn_lines LOG: how many lines of LOG are at WARN or ERROR level (oxka's tracing and Kafka's log4j).
warn_lines() { grep -cE '(^|[] ])(WARN|ERROR)[ :]' "$1" || true; }

# ------------------------------------------------------------------------------------------------
# Kafka's perf tools (4.x clients)
# ------------------------------------------------------------------------------------------------

# producer_perf OUT BOOTSTRAP TOPIC [producer props...]: kafka-producer-perf-test, acks=all, throughput
# -1, $RECORDS records of $RECORD_SIZE bytes; output to OUT. Prints "records/s MB/s p50 p99 avg max"
# (latencies in ms). The perf-test JVM's GC log goes to OUT.gc (see gc_pauses).
# PERF_THROUGHPUT (records/s, default -1: as fast as the producer can) and PERF_RECORDS (default
# $RECORDS) change one run.
producer_perf() {
  local out="$1" bootstrap="$2" topic="$3"
  shift 3
  KAFKA_OPTS="${KAFKA_OPTS:-} -Xlog:gc:file=$out.gc" \
    kafka4 producer-perf-test --topic "$topic" --num-records "${PERF_RECORDS:-$RECORDS}" --record-size "$RECORD_SIZE" \
    --throughput "${PERF_THROUGHPUT:--1}" --producer-props "bootstrap.servers=$bootstrap" acks=all "$@" >"$out" 2>&1 \
    || { tail -20 "$out" >&2; log "producer-perf-test failed (output: $out)"; return 1; }
  # "2000000 records sent, 585651.2 records/sec (55.85 MB/sec), 376.48 ms avg latency, 817.00 ms max
  #  latency, 366 ms 50th, 695 ms 95th, 784 ms 99th, 812 ms 99.9th."
  grep "records sent" "$out" | tail -1 | sed -E 's/^([0-9]+) records sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\), ([0-9.]+) ms avg latency, ([0-9.]+) ms max latency, ([0-9]+) ms 50th, [0-9]+ ms 95th, ([0-9]+) ms 99th.*/\2 \3 \6 \7 \4 \5/'
}

# Kafka's ProducerPerformance with KIP-1052's --warmup-records (kafka-tools 4.2 and later; the test
# suite's 4.1.1 lacks it), resolved from Maven Central into the cache. Runs with the JVM settings of
# Kafka's kafka-producer-perf-test.sh.
PERF_TOOLS_VERSION="${PERF_TOOLS_VERSION:-4.2.2}"
perf_tools_setup() {
  local dir="${OXKA_CACHE:-$HOME/.cache/oxka}/perf-tools-$PERF_TOOLS_VERSION"
  PERF_CP_FILE="$dir/classpath.txt"
  [[ -s "$PERF_CP_FILE" ]] && return
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.oxka.bench</groupId>
  <artifactId>perf-tools</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$PERF_TOOLS_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  log "resolving kafka-tools $PERF_TOOLS_VERSION (producer-perf-test with --warmup-records) from Maven Central..."
  mvn -q -B -f "$dir/pom.xml" dependency:build-classpath -Dmdep.outputFile="$PERF_CP_FILE.tmp" \
    -Dmdep.includeScope=runtime >"$dir/mvn.log" 2>&1 \
    || { tail -20 "$dir/mvn.log" >&2; die "maven could not resolve kafka-tools $PERF_TOOLS_VERSION"; }
  mv "$PERF_CP_FILE.tmp" "$PERF_CP_FILE"
}

# producer_perf_steady OUT BOOTSTRAP TOPIC WARMUP_RECORDS [producer props...]: as producer_perf, with
# the first WARMUP_RECORDS left out of the steady-state figures (the perf-test JVM's own warm-up: its
# JIT, its connections, its first metadata; records sent then wait for all of that). Prints the
# steady-state "records/s MB/s p50 p99 avg max", then the whole run's "p50 p99 max" (warm-up
# included).
producer_perf_steady() {
  local out="$1" bootstrap="$2" topic="$3" warmup="$4"
  shift 4
  perf_tools_setup
  java -Xmx512M -XX:+UseG1GC -Djava.awt.headless=true "-Xlog:gc:file=$out.gc" \
    "-Dlog4j2.configurationFile=${OXKA_CACHE:-$HOME/.cache/oxka}/kafka-4/log4j2.properties" \
    -cp "$(cat "$PERF_CP_FILE")" org.apache.kafka.tools.ProducerPerformance \
    --topic "$topic" --num-records "${PERF_RECORDS:-$RECORDS}" --warmup-records "$warmup" --record-size "$RECORD_SIZE" \
    ${PERF_ARGS:-} --throughput "${PERF_THROUGHPUT:--1}" --producer-props "bootstrap.servers=$bootstrap" acks=all "$@" >"$out" 2>&1 \
    || { tail -20 "$out" >&2; log "producer-perf-test (steady state) failed (output: $out)"; return 1; }
  # "1200000 steady state records sent, 99990.0 records/sec (9.54 MB/sec), 1.2 ms avg latency, 31.00 ms
  #  max latency, 1 ms 50th, 2 ms 95th, 4 ms 99th, 17 ms 99.9th." and the whole run's line before it,
  #  "1500000 records sent, ..." in the same format.
  local steady whole
  steady=$(grep "steady state records sent" "$out" | tail -1 | sed -E 's/^([0-9]+) steady state records sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\), ([0-9.]+) ms avg latency, ([0-9.]+) ms max latency, ([0-9]+) ms 50th, [0-9]+ ms 95th, ([0-9]+) ms 99th.*/\2 \3 \6 \7 \4 \5/')
  whole=$(grep -E "^[0-9]+ records sent.* 99th" "$out" | tail -1 | sed -E 's/^.* ([0-9.]+) ms max latency, ([0-9]+) ms 50th, [0-9]+ ms 95th, ([0-9]+) ms 99th.*/\2 \3 \1/')
  [[ -n $steady ]] && echo "$steady $whole"
}

# gc_pauses FILE: from a JVM's unified GC log (-Xlog:gc), "count total-ms max-ms" of its
# stop-the-world pauses: the client's own share of a latency tail (a record waits in the producer
# while its JVM is paused).
gc_pauses() {
  awk '/Pause/ && match($0, /[0-9.]+ms$/) { v = substr($0, RSTART, RLENGTH - 2); n++; t += v; if (v > m) m = v }
    END { printf "%d %.0f %.0f\n", n, t, m }' "$1" 2>/dev/null || echo "- - -"
}

# consumer_perf OUT BOOTSTRAP TOPIC: kafka-consumer-perf-test over $RECORDS records; output to OUT.
# Prints "MB/s records/s fetch-MB/s".
consumer_perf() {
  local out="$1" bootstrap="$2" topic="$3"
  kafka4 consumer-perf-test --bootstrap-server "$bootstrap" --topic "$topic" \
    --messages "$RECORDS" --timeout 60000 >"$out" 2>&1 \
    || { tail -20 "$out" >&2; log "consumer-perf-test failed (output: $out)"; return 1; }
  # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
  # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  grep -E '^[0-9]{4}-' "$out" | tail -1 | awk -F', *' '{ print $4, $6, $9 }'
}

# ------------------------------------------------------------------------------------------------
# Cold start (issue 15: "a broker with no data answers ApiVersions within 100 ms of exec")
# ------------------------------------------------------------------------------------------------

# cold_start_once NAME TAG: one start of NAME on a fresh data dir and new ports; prints the ms.
cold_start_once() {
  local name="$1" port dir
  port=$(free_ports 1)
  dir="$BENCH_DIR/coldstart-$name-$2"
  mkdir -p "$dir"
  case "$name" in
    oxka)
      printf '%s\n' "broker.id=0" "listeners=PLAINTEXT://127.0.0.1:$port" \
        "advertised.listeners=PLAINTEXT://127.0.0.1:$port" "log.dirs=$dir/data" "metrics.port=-1" \
        "offsets.topic.replication.factor=1" "transaction.state.log.replication.factor=1" \
        "transaction.state.log.min.isr=1" >"$dir/server.properties"
      python3 "$root/bench/apiversions_probe.py" "$port" 60 "$dir/broker.log" -- \
        env RUST_LOG="${RUST_LOG:-warn}" "$OXKA_BIN" broker "$dir/server.properties" 2>>"$dir/probe.err"
      ;;
    kafka)
      KAFKA_FORMAT_ONLY=1 "$root/scripts/apache-kafka-broker.sh" "$dir" "$port" "log.dirs=$dir/data" || return 1
      python3 "$root/bench/apiversions_probe.py" "$port" 120 "$dir/broker.log" -- \
        env KAFKA_HEAP_OPTS="$BROKER_HEAP" "$root/scripts/kafka" 4 server-start "$dir/server.properties" \
        2>>"$dir/probe.err"
      ;;
  esac
}

# cold_start NAME RUNS: RUNS times, start broker NAME (oxka or kafka) on a fresh, empty data dir and
# time exec -> first ApiVersions answered on loopback (bench/apiversions_probe.py, a tight connect
# loop), then kill it. Prints "median min max" in ms. Kafka's storage is formatted before the clock
# starts (`kafka-storage.sh format` is a step of its own, a separate JVM); the clock runs from the exec
# of `kafka-server-start` with the bench's heap, as bench/run.sh starts it.
cold_start() {
  local name="$1" runs="$2" i ms all=()
  for ((i = 0; i < runs; i++)); do
    # A run that fails (another process took a port meanwhile, on a shared machine) is tried again.
    ms=$(cold_start_once "$name" "$i.1" || cold_start_once "$name" "$i.2") \
      || die "$name cold start failed twice (logs: $BENCH_DIR/coldstart-$name-$i.*)"
    all+=("$ms")
    log "$name cold start $((i + 1))/$runs: $ms ms"
  done
  printf '%s\n' "${all[@]}" | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f %.1f\n", m, v[1], v[NR] }'
}

# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
fmt1() { [[ -n "$1" ]] && printf '%.1f' "$1" || printf -- '-'; } # one decimal, "-" when not measured
