#!/usr/bin/env bash
# Produce latency through a rolling restart (issue 11's target: p99 during a roll at most 3x the steady
# p99), oxka against Apache Kafka 4.x on this machine, one after the other, on loopback.
#
#   bench/roll.sh                                  # both systems
#   OXKA_BIN=path/to/oxka SYSTEMS=oxka bench/roll.sh   # skip the release build; one system
#
# Each system runs three nodes, every one holding a controller and a broker:
#   oxka   node i = `oxka coordinator` i (the Raft ensemble) + `oxka broker` i
#   kafka  node i = a combined KRaft broker+controller (controller.quorum.voters of all three)
# A topic of $PARTITIONS partitions, RF 3, min.insync.replicas=2, bench/java/RollProducer.java (the
# Java client's defaults: idempotent, acks=all) sending $RATE records/s the whole time, and a console
# consumer in a group reading them (so __consumer_offsets, 50 partitions at RF 3, rolls too). After
# $STEADY_SECONDS s (the first $WARMUP_SECONDS left out), the nodes are rolled one at a time as the
# operator does: SIGTERM (a controlled shutdown), wait for the exit, start again, wait until no
# partition of any topic is under-replicated, then the next node; oxka's broker stops before its
# coordinator and starts after it. Then $AFTER_SECONDS s more.
# Prints, per system: steady p50/p99/max, the roll's p50/p99/max and its ratio to the steady p99,
# failed sends, and each node's stop and return times. Raw files stay in $BENCH_DIR.
set -euo pipefail

PARTITIONS="${PARTITIONS:-12}"
RATE="${RATE:-200}"
SYSTEMS="${SYSTEMS:-oxka kafka}"
WARMUP_SECONDS="${WARMUP_SECONDS:-10}"
STEADY_SECONDS="${STEADY_SECONDS:-40}"
AFTER_SECONDS="${AFTER_SECONDS:-10}"
RECORDS=0 RECORD_SIZE=0 # lib.sh's perf tools are not used here
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

COMMON=(
  "offsets.topic.replication.factor=3"
  "transaction.state.log.replication.factor=3"
  "transaction.state.log.min.isr=2"
  "share.coordinator.state.topic.replication.factor=3"
  "share.coordinator.state.topic.min.isr=2"
  "group.initial.rebalance.delay.ms=0"
)
now_ms() { date +%s%3N; }

# Each node's processes, restarted by roll_node: NODE_CMD[name] is the command line (printf %q).
declare -A NODE_CMD
start_named() { # NAME LOG COMMAND...
  local name="$1" logf="$2"
  shift 2
  NODE_CMD[$name]="$(printf '%q ' "$@")"
  start_node "$name" "$logf" "$@"
}
restart_named() { # NAME
  local name="$1" i
  for i in "${!NODE_NAMES[@]}"; do
    [[ ${NODE_NAMES[i]} == "$name" ]] || continue
    bash -c "exec ${NODE_CMD[$name]}" >>"${NODE_LOGS[i]}" 2>&1 &
    NODE_PIDS[i]=$!
    return
  done
  die "no node named $name"
}
stop_named() { # NAME: SIGTERM, then waits (SIGKILL after 60 s); prints the seconds it took
  local name="$1" i p t0=$SECONDS
  for i in "${!NODE_NAMES[@]}"; do
    [[ ${NODE_NAMES[i]} == "$name" ]] || continue
    p="${NODE_PIDS[i]}"
    kill -TERM "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null && ((SECONDS - t0 < 60)); do sleep 0.2; done
    if kill -0 "$p" 2>/dev/null; then
      log "$name still ran 60 s after SIGTERM: killed"
      kill -9 "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
    echo $((SECONDS - t0))
    return
  done
  die "no node named $name"
}

start_oxka() {
  local dir="$BENCH_DIR/oxka" p i servers="" connect=""
  read -r -a p <<<"$(free_ports 9)" # coordinators' client ports 0-2 and peer ports 3-5; brokers 6-8
  for i in 1 2 3; do
    servers+="server.$i=127.0.0.1:${p[i + 2]}:$((p[i + 2] + 1));127.0.0.1:${p[i - 1]}"$'\n'
    connect+="${connect:+,}127.0.0.1:${p[i - 1]}"
  done
  for i in 1 2 3; do
    mkdir -p "$dir/zk$i"
    echo "$i" >"$dir/zk$i/myid"
    printf 'dataDir=%s\nclientPort=%s\nmetrics.port=-1\n%s' "$dir/zk$i" "${p[i - 1]}" "$servers" >"$dir/zk$i.properties"
    start_named "coordinator $i" "$dir/zk$i.log" env RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
      "$OXKA_BIN" coordinator "$dir/zk$i.properties"
  done
  for i in 1 2 3; do
    {
      echo "broker.id=$i"
      echo "listeners=PLAINTEXT://127.0.0.1:${p[i + 5]}"
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:${p[i + 5]}"
      echo "log.dirs=$dir/broker$i/data"
      echo "metrics.port=-1"
      echo "zookeeper.connect=$connect"
      printf '%s\n' "${COMMON[@]}"
    } >"$dir/broker$i.properties"
    start_named "broker $i" "$dir/broker$i.log" env RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
      "$OXKA_BIN" broker "$dir/broker$i.properties"
  done
  BOOTSTRAP="127.0.0.1:${p[6]},127.0.0.1:${p[7]},127.0.0.1:${p[8]}"
}

start_kafka() {
  local dir="$BENCH_DIR/kafka" p i voters="" id
  read -r -a p <<<"$(free_ports 3)"
  for i in 1 2 3; do voters+="${voters:+,}$i@127.0.0.1:$((p[i - 1] + 1))"; done
  id=$(kafka4 storage random-uuid)
  for i in 1 2 3; do
    mkdir -p "$dir/node$i"
    echo "$id" >"$dir/node$i/cluster.id"
    start_named "node $i" "$dir/node$i.log" env KAFKA_HEAP_OPTS="$BROKER_HEAP" \
      "$root/scripts/apache-kafka-broker.sh" "$dir/node$i" "${p[i - 1]}" "node.id=$i" \
      "controller.quorum.voters=$voters" "log.dirs=$dir/node$i/data" "${COMMON[@]}"
  done
  BOOTSTRAP="127.0.0.1:${p[0]},127.0.0.1:${p[1]},127.0.0.1:${p[2]}"
}

# fully_replicated SECONDS: until no partition of any topic is under-replicated (and the describe
# answers), while every node stays alive.
fully_replicated() {
  local deadline=$((SECONDS + $1)) out
  while ((SECONDS < deadline)); do
    nodes_alive || return 1
    if out=$(kafka4 topics --bootstrap-server "$BOOTSTRAP" --describe --under-replicated-partitions 2>/dev/null) &&
      [[ -z $(grep -E 'Partition: ' <<<"$out") ]] &&
      kafka4 topics --bootstrap-server "$BOOTSTRAP" --describe --topic roll 2>/dev/null | grep -q 'Isr: [0-9]*,[0-9]*,[0-9]*'; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

compile_producer() {
  local classes="$BENCH_DIR/classes"
  mkdir -p "$classes"
  KAFKA_CP="$(cat "${OXKA_CACHE:-$HOME/.cache/oxka}/kafka-4/classpath.txt")"
  javac -d "$classes" -cp "$KAFKA_CP" "$root/bench/java/RollProducer.java"
  PRODUCER_CP="$KAFKA_CP:$classes"
}

# roll SYSTEM: the whole run for one system; writes $BENCH_DIR/SYSTEM/{latency.txt,marks.txt}.
roll() {
  local name="$1" dir="$BENCH_DIR/$1" i down back
  mkdir -p "$dir"
  log "$name: starting 3 nodes"
  "start_$name"
  wait_brokers "$BOOTSTRAP" 3 120 || die "$name: the brokers did not come up"
  kafka4 topics --bootstrap-server "$BOOTSTRAP" --create --topic roll --partitions "$PARTITIONS" \
    --replication-factor 3 --config min.insync.replicas=2 >/dev/null
  fully_replicated 120 || die "$name: topic roll did not reach 3 in-sync replicas"
  rm -f "$dir/stop"
  java -Xmx256M -cp "$PRODUCER_CP" "-Dlog4j2.configurationFile=${OXKA_CACHE:-$HOME/.cache/oxka}/kafka-4/log4j2.properties" \
    RollProducer "$BOOTSTRAP" roll "$RATE" "$dir/stop" "$dir/latency.txt" >"$dir/producer.log" 2>&1 &
  local producer=$!
  # A consumer group reads beside it, as in issue 11's scenario: __consumer_offsets (50 partitions,
  # RF 3) then changes leaders in the roll too.
  # In its own process group: the tool's JVM is a child of the script that starts it.
  setsid "$root/scripts/kafka" 4 console-consumer --bootstrap-server "$BOOTSTRAP" --topic roll --group roll \
    >/dev/null 2>"$dir/consumer.log" &
  local consumer=$!
  echo "start $(now_ms)" >"$dir/marks.txt"
  sleep "$STEADY_SECONDS"
  fully_replicated 60 || die "$name: under-replicated partitions before the roll"
  echo "roll_start $(now_ms)" >>"$dir/marks.txt"
  for i in 1 2 3; do
    if [[ $name == oxka ]]; then
      down=$(stop_named "broker $i")
      down="$down+$(stop_named "coordinator $i")"
      restart_named "coordinator $i"
      restart_named "broker $i"
    else
      down=$(stop_named "node $i")
      restart_named "node $i"
    fi
    local t0=$SECONDS
    fully_replicated 180 || die "$name: node $i did not come back into every ISR"
    back=$((SECONDS - t0))
    log "$name: node $i stopped in ${down} s, back in every ISR ${back} s after its start"
    echo "node$i $(now_ms) $down $back" >>"$dir/marks.txt"
  done
  echo "roll_end $(now_ms)" >>"$dir/marks.txt"
  sleep "$AFTER_SECONDS"
  touch "$dir/stop"
  wait "$producer" || log "$name: the producer exited with an error (see $dir/producer.log)"
  kill -- "-$consumer" 2>/dev/null || true
  wait "$consumer" 2>/dev/null || true
  stop_nodes 30
}

report() { # SYSTEM
  python3 - "$BENCH_DIR/$1" "$WARMUP_SECONDS" <<'EOF'
import sys
d, warm = sys.argv[1], int(sys.argv[2])
marks = {}
nodes = []
for line in open(f"{d}/marks.txt"):
    f = line.split()
    if f[0].startswith("node"):
        nodes.append(f"{f[0]} stop {f[2]} s, back {f[3]} s")
    else:
        marks[f[0]] = int(f[1])
rows = [l.split() for l in open(f"{d}/latency.txt")]
def stats(lo, hi):
    xs = sorted(float(r[1]) for r in rows if lo <= int(r[0]) < hi and r[2] == "ok")
    failed = sum(1 for r in rows if lo <= int(r[0]) < hi and r[2] != "ok")
    if not xs:
        return None
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return len(xs), q(0.5), q(0.99), xs[-1], failed
steady = stats(marks["start"] + warm * 1000, marks["roll_start"])
during = stats(marks["roll_start"], marks["roll_end"])
after = stats(marks["roll_end"], 1 << 62)
fmt = lambda s: f"{s[0]} records, p50 {s[1]:.1f} ms, p99 {s[2]:.1f} ms, max {s[3]:.1f} ms, failed {s[4]}" if s else "no records"
print(f"  steady: {fmt(steady)}")
print(f"  roll ({(marks['roll_end'] - marks['roll_start']) / 1000:.0f} s): {fmt(during)}")
print(f"  after:  {fmt(after)}")
if steady and during:
    r = during[2] / steady[2]
    print(f"  roll p99 / steady p99 = {r:.1f} (issue 11's target: at most 3)")
print("  " + "; ".join(nodes))
EOF
}

compile_producer
for name in $SYSTEMS; do
  roll "$name"
done
for name in $SYSTEMS; do
  echo "$name:"
  report "$name"
done
log "raw output and logs: $BENCH_DIR"
