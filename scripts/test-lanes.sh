#!/usr/bin/env bash
# The workspace's tests (what `cargo test --workspace` runs) in two lanes side by side, for CI
# (scripts/test-all.sh). One after the other the integration test binaries took 21.5 minutes on the
# 2-core CI machine, and most of that is waiting: on failovers, session timeouts, retention and lock
# deadlines, and on Java tools starting. Each binary already runs two tests at a time (cargo's default
# on 2 cores) and takes the `serial()` lock for its heavy ones; two binaries at once keep the machine
# busy while one of them waits.
#
#   test-lanes.sh          both lanes at once, then the SOLO binaries alone; each lane's output is
#                          printed whole when it ends, and any failure fails the run (at the end)
#   test-lanes.sh waits    lane 1 only: the binaries in WAITS below
#   test-lanes.sh rest     lane 2 only: everything else but SOLO (unit tests, doc tests, other binaries)
#   test-lanes.sh solo     the binaries in SOLO, one after the other
#
# WAITS holds about half of the time (seconds from the CI rehearsal of 2026-12-07, one binary at a time):
# replication 148, consumer_groups 130, transactions_tools 85, groups_acceptance 72, share_groups 66
# (about 90 with the share-state tests since), storage_errors 60, cluster 52, leader_election 43
# (about 680 s); the rest is about 620 s with group_migration (65 s). SOLO are the binaries whose checks
# measure the machine: quotas' byte rates within 10%, a 20,000-partition produce flushed within 180 s,
# memory's RSS, pipelining's timing; beside another lane on 2 busy cores they failed (quotas ran at
# 0.84 MB/s of 1), so they run alone after both lanes (about 100 s).
# A new test binary lands in lane 2 by itself; move it to WAITS when lane 2 grows past lane 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WAITS=(replication consumer_groups transactions_tools groups_acceptance share_groups storage_errors cluster leader_election)
SOLO=(quotas scale memory pipelining)

# Every test executable `cargo test --workspace` builds, one per line: KIND NAME PACKAGE_DIR PATH. The
# lanes run these executables themselves, as cargo would (from the package's directory), rather than
# through two more `cargo test` commands: a `cargo test --test X` selection unifies other features than
# the whole workspace's build and compiles every test binary again.
list_tests() {
  cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, os, sys
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        t = m["target"]
        print(t["kind"][0], t["name"], os.path.dirname(m["manifest_path"]), m["executable"])
'
}

# run_lane LANE: runs the lane's executables one after the other (each runs its own tests two at a time),
# all of them even when one fails, and fails if any did.
run_lane() {
  local lane="$1" kind name dir exe failed=() status
  while read -r kind name dir exe; do
    local in=rest
    [[ $kind == test && " ${WAITS[*]} " == *" $name "* ]] && in=waits
    [[ $kind == test && " ${SOLO[*]} " == *" $name "* ]] && in=solo
    [[ $lane == "$in" ]] || continue
    printf '     Running %s %s (%s)\n' "$kind" "$name" "$exe"
    status=0
    (cd "$dir" && "$exe") || status=$?
    [[ $status -eq 0 ]] || failed+=("$kind $name (exit $status)")
  done < <(list_tests)
  if [[ $lane == rest ]]; then
    cargo test --workspace --doc || failed+=("doc tests")
  fi
  if [[ ${#failed[@]} -gt 0 ]]; then
    printf 'test lane %s: failed: %s\n' "$lane" "${failed[*]}"
    return 1
  fi
}

lane_waits() { run_lane waits; }
lane_rest() { run_lane rest; }
lane_solo() { run_lane solo; }

# timed NAME FUNCTION: runs one lane and says how long it took.
timed() {
  local start=$SECONDS status=0
  "$2" || status=$?
  printf '\n=== test lane %s ended after %d s (exit %d)\n' "$1" $((SECONDS - start)) "$status"
  return $status
}

case "${1:-both}" in
  waits) timed waits lane_waits ;;
  rest) timed rest lane_rest ;;
  solo) timed solo lane_solo ;;
  both)
    # Built first, once: two cargo processes building at the same time would wait on each other.
    cargo test --workspace --no-run
    logs=("$(mktemp /tmp/oxka-lane-waits.XXXXXX)" "$(mktemp /tmp/oxka-lane-rest.XXXXXX)")
    t0=$SECONDS
    bash "${BASH_SOURCE[0]}" waits >"${logs[0]}" 2>&1 &
    pids=("$!")
    bash "${BASH_SOURCE[0]}" rest >"${logs[1]}" 2>&1 &
    pids+=("$!")
    # On the way out (Ctrl-C, a failure), stop the lanes still running and drop their logs. Each lane's
    # pid is forgotten once it is waited for: the number may belong to another process by then. Every
    # command here must succeed: under `set -e` a failing one in an EXIT trap (a kill of a lane that
    # already ended) made this script exit 1 after every test had passed, and CI stopped there.
    stop_lanes() {
      local p
      for p in "${pids[@]}"; do
        [[ -z $p ]] || kill "$p" 2>/dev/null || true
      done
      rm -f "${logs[@]}"
    }
    trap stop_lanes EXIT
    failed=0
    for i in 0 1; do
      status=0
      wait "${pids[$i]}" || status=$?
      pids[i]=""
      printf '\n=== test lane %s: its output\n' "$([[ $i == 0 ]] && echo waits || echo rest)"
      cat "${logs[$i]}"
      [[ $status -eq 0 ]] || failed=1
    done
    printf '\n=== both test lanes ended after %d s; then the binaries that measure the machine, alone\n' $((SECONDS - t0))
    timed solo lane_solo || failed=1
    printf '\n=== all tests ended after %d s\n' $((SECONDS - t0))
    exit $failed
    ;;
  *)
    echo "usage: test-lanes.sh [both|waits|rest|solo]" >&2
    exit 2
    ;;
esac
