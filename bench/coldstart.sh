#!/usr/bin/env bash
# Cold start: how long from the exec of a broker with a fresh, empty data dir to its first answered
# ApiVersions on loopback, oxka against Apache Kafka 4.x (issue 15: oxka's target is 100 ms).
#
#   bench/coldstart.sh                    # 11 runs of each, median/min/max
#   RUNS=5 BROKERS=oxka bench/coldstart.sh
#   OXKA_BIN=path/to/oxka bench/coldstart.sh   # skip the release build
#
# One process at a time. The probe (bench/apiversions_probe.py) connects in a tight loop (every
# millisecond) and counts the first ApiVersions v0 answered with error code 0; the clock starts just
# before the exec. oxka runs with RUST_LOG=warn (as in bench/run.sh); Kafka's storage is formatted
# before its clock starts (see cold_start in bench/lib.sh).
set -euo pipefail

RUNS="${RUNS:-11}"
BROKERS="${BROKERS:-oxka kafka}"
RECORDS=0 RECORD_SIZE=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R
for name in $BROKERS; do
  log "$name: $RUNS cold starts"
  R[$name]=$(cold_start "$name" "$RUNS")
done

echo
echo "cold start, exec -> first ApiVersions answered (fresh empty data dir, loopback, $RUNS runs, $(nproc) cores)"
printf '%-10s %12s %12s %12s\n' "broker" "median ms" "min ms" "max ms"
for name in $BROKERS; do
  read -r med lo hi <<<"${R[$name]}"
  printf '%-10s %12s %12s %12s\n' "$name" "$med" "$lo" "$hi"
done
a=$(awk '{ print $1 }' <<<"${R[oxka]:-}"); b=$(awk '{ print $1 }' <<<"${R[kafka]:-}")
[[ -n $a && -n $b ]] && awk -v a="$a" -v b="$b" 'BEGIN { printf "oxka/kafka (median): %.4f (Kafka takes %.0f times as long)\n", a / b, b / a }'
echo "load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw output: $BENCH_DIR"
