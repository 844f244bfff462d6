#!/usr/bin/env bash
# Start-up time of a native tool against Kafka's JVM tool: `oxka tool topics --list` (what
# bin/kafka-topics.sh runs) and Apache Kafka 4.x's `kafka-topics.sh --list`, each RUNS times against
# the same oxka broker, one after the other. Every run is a fresh process: the time is the whole
# command, process start to exit, including one ListTopics round trip (Metadata) to a local broker.
#
#   bench/tools-startup.sh                 # 10 runs each
#   RUNS=20 bench/tools-startup.sh
#   OXKA_BIN=path/to/oxka bench/tools-startup.sh   # skip the release build
#
# Prints min / median / max wall-clock milliseconds per tool and the median ratio.
set -euo pipefail

RUNS="${RUNS:-10}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

port="$(free_ports 1)"
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
wait_brokers "127.0.0.1:$port" 1 120 || die "oxka did not come up on port $port"
bootstrap="127.0.0.1:$port"
"$OXKA_BIN" tool topics --bootstrap-server "$bootstrap" --create --topic startup-bench >/dev/null

# time_runs LABEL COMMAND...: runs COMMAND $RUNS times (output checked, then dropped); prints the
# sorted wall-clock milliseconds, one line.
time_runs() {
  local label="$1" i start end out
  shift
  local times=()
  for ((i = 0; i < RUNS; i++)); do
    start=$(date +%s%N)
    out="$("$@" 2>&1)" || die "$label failed: $out"
    end=$(date +%s%N)
    grep -qx startup-bench <<<"$out" || die "$label did not list the topic: $out"
    times+=($(((end - start) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' '
}

log "timing $RUNS runs each against $bootstrap..."
native="$(time_runs native "$OXKA_BIN" tool topics --bootstrap-server "$bootstrap" --list)"
java="$(time_runs kafka "$root/scripts/kafka" 4 topics --bootstrap-server "$bootstrap" --list)"

summary() { # sorted times -> "min median max"
  local -a t=($1)
  echo "${t[0]} ${t[$((${#t[@]} / 2))]} ${t[$((${#t[@]} - 1))]}"
}
read -r nmin nmed nmax <<<"$(summary "$native")"
read -r jmin jmed jmax <<<"$(summary "$java")"
printf '\n%-44s %8s %8s %8s\n' "topics --list, wall clock ms ($RUNS runs)" min median max
printf '%-44s %8s %8s %8s\n' "oxka tool topics (native)" "$nmin" "$nmed" "$nmax"
printf '%-44s %8s %8s %8s\n' "kafka-topics.sh (Kafka $(kafka_version), JVM)" "$jmin" "$jmed" "$jmax"
awk -v n="$nmed" -v j="$jmed" 'BEGIN { if (n > 0) printf "median: Kafka'"'"'s tool takes %.1fx as long\n", j / n }'
log "raw times: native [$native] kafka [$java]; logs in $BENCH_DIR"
