#!/usr/bin/env bash
# The one command that runs every check of the project, as CI does (.ci/run calls it):
#   tools -> fmt -> clippy -> cargo test (unit + integration) -> fault checker (300 s of faults;
#   OXKA_FAULTCHECK=0 leaves the fault run out, OXKA_FAULTCHECK_SKIP=1 all of it) with e2e/run.sh
#   (API server) beside it -> images (daemonless build, compared with the Dockerfile)
#   -> e2e/node/run.sh (real pods; OXKA_E2E_NODE=0 leaves it out).
#
# The integration tests run the debug oxka binary that cargo test builds anyway: it keeps overflow checks
# and debug assertions on, and it is fast enough (a million-record produce takes ~10 s), so CI spends no
# time on a second, release build. OXKA_TEST_RELEASE=1 runs them against a release build instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build outside the checkout, in the same cache as the tools, so a fresh clone (CI) reuses compiled
# dependencies instead of rebuilding kube, kafka-protocol and openraft from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${OXKA_CACHE:-$HOME/.cache/oxka}/target}"

step() { printf '\n=== %s\n' "$*"; }
t0=$SECONDS

# Keep the build cache bounded. Incremental artifacts are what grew it past 40 GB and filled the disk
# (a CI run died with "No space left on device"); a one-shot CI build gains nothing from them. When the
# cache still outgrows OXKA_CACHE_MAX_GB (default 30) its debug artifacts are dropped and rebuilt.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
prune_build_cache() {
  local debug="$CARGO_TARGET_DIR/debug" max_gb="${OXKA_CACHE_MAX_GB:-30}" used_gb free_gb
  rm -rf "$debug/incremental"
  if [[ -d "$debug" ]]; then
    used_gb=$(( $(du -sk "$CARGO_TARGET_DIR" | cut -f1) / 1024 / 1024 ))
    if (( used_gb > max_gb )); then
      echo "build cache $CARGO_TARGET_DIR holds ${used_gb} GB (> ${max_gb} GB): dropping its debug artifacts"
      rm -rf "$debug"
    fi
  fi
  free_gb=$(( $(df -Pk "$(dirname "$CARGO_TARGET_DIR")" | awk 'NR==2 {print $4}') / 1024 / 1024 ))
  if (( free_gb < 12 )); then
    echo "only ${free_gb} GB free on $(dirname "$CARGO_TARGET_DIR"): the build, the fault checker and the node" >&2
    echo "suite need about 12 GB. Free some space (old build caches under ~/.cache/oxka, /tmp) and rerun." >&2
    exit 1
  fi
}
mkdir -p "$CARGO_TARGET_DIR"
prune_build_cache

step "install test tools"
bash scripts/install-tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

if [[ -n "${OXKA_TEST_RELEASE:-}" ]]; then
  step "cargo build --release (oxka)"
  cargo build --release -p oxka-broker --bin oxka
  export OXKA_BIN="$CARGO_TARGET_DIR/release/oxka"
fi

# Every test `cargo test --workspace` runs, in two lanes side by side (scripts/test-lanes.sh says why
# and which binaries go where).
step "cargo test (two lanes: scripts/test-lanes.sh)"
bash scripts/test-lanes.sh
# Built now, run beside the fault checker (scripts/side-tests.sh, two lanes).
cargo test --workspace --test transactions_cluster --test native_tools --no-run

# The fault checker (tests/faultcheck, docs/testing.md): 3 coordinators and 3 brokers in network
# namespaces, replication factor 3 / min.insync.replicas 2, acks=all producers, >= 30 faults of every
# kind in OXKA_FAULTCHECK_SECONDS (default 300); 0 lost, 0 reordered, 0 duplicated with idempotence.
# CI runs the verdict's unit tests, the self-test (the checker catches damage) and then the fault run
# (~6.5 minutes); OXKA_FAULTCHECK=0 leaves out the fault run, OXKA_FAULTCHECK_SKIP=1 all of it.
# Duplicates across a librdkafka producer-epoch bump that Kafka's own answers trigger are reported apart
# and allowed; every other duplicate fails (docs/testing.md, "Idempotent duplicates").
# Needs root (namespaces, iptables, tmpfs).
#
# The operator's API-server suite (e2e/run.sh, ~6 minutes) runs beside it: it mostly waits on
# reconciliations (about 0.4 of a core), the checker's processes live in their own network namespaces,
# and the two share no port. Together they take ~7.5 minutes instead of ~12 (measured on this 2-core
# machine: e2e 394 s and the fault run 432 s side by side, 45 passed and VERDICT: PASS).
# The replicated-transactions tests (broker/tests/transactions_cluster.rs, #[ignore]d in the plain
# cargo test run, ~3.5 minutes of waiting on failovers and timeouts) and the native tools' comparisons
# (broker/tests/native_tools.rs, `test = false`, ~4.5 minutes of Java tools, one test at a time) run
# there too, in two lanes (scripts/side-tests.sh): the transactions tests and then half of the
# comparisons in one, the e2e suite and then the other half in the other. One after the other in one
# lane (327 s + 326 s) they were the stage's longest path, past the fault run (456 s) and e2e (372 s),
# and the whole CI run took about 47 minutes. In two lanes (2026-12-07, a fresh clone): the fault run
# 444 s; e2e (50 scenarios) then one half 230 s; the transactions tests 316 s then the other half 206 s;
# the whole run 2783 s. Each side job's output is printed whole once it ends,
# and its failure fails the run; OXKA_E2E_SERIAL=1 runs them after the checker instead.
side_pids=()
side_names=()
side_logs=()
stop_side_jobs() { local pid; for pid in "${side_pids[@]}"; do kill -- "-$pid" 2>/dev/null; done; true; }
trap stop_side_jobs EXIT
# start_beside NAME COMMAND...: runs COMMAND in its own process group beside the fault checker.
start_beside() {
  local name="$1" log
  shift
  log="$(mktemp /tmp/oxka-side-log.XXXXXX)"
  step "$name, started beside the fault checker; its output follows when it ends"
  setsid "$@" >"$log" 2>&1 &
  side_pids+=("$!")
  side_names+=("$name")
  side_logs+=("$log")
}
side_commands() {
  echo "e2e/run.sh (API server), then half of the native tools' comparisons|bash scripts/side-tests.sh after-e2e"
  echo "replicated transactions, then the other half of the comparisons|bash scripts/side-tests.sh transactions"
}
start_side_jobs() {
  [[ "${OXKA_E2E_SERIAL:-}" != 1 ]] || return 0

  while IFS='|' read -r name command; do
    # shellcheck disable=SC2086 # the command is a plain word list
    start_beside "$name" $command
  done < <(side_commands)
}
finish_side_jobs() {
  local i status failed=0 name command
  if [[ ${#side_pids[@]} -eq 0 ]]; then
    while IFS='|' read -r name command; do
      step "$name"
      # shellcheck disable=SC2086
      $command || failed=1
    done < <(side_commands)
  fi
  for i in "${!side_pids[@]}"; do
    step "${side_names[$i]}: its output"
    status=0
    wait "${side_pids[$i]}" || status=$?
    cat "${side_logs[$i]}"
    rm -f "${side_logs[$i]}"
    if [[ $status -ne 0 ]]; then
      echo "${side_names[$i]} failed (exit $status)" >&2
      failed=1
    fi
  done
  side_pids=()
  [[ $failed -eq 0 ]] || exit 1
}

if [[ "${OXKA_FAULTCHECK_SKIP:-}" != 1 ]]; then
  step "fault checker (verdict unit tests, self-test, then ${OXKA_FAULTCHECK_SECONDS:-300} s of faults)"
  # The debug oxka that cargo test built. A plain `cargo build --bin oxka` would build every crate of the
  # workspace again: without the tests' dev-dependencies, or with `-p`, cargo unifies other features.
  # The same goes for every cargo command CI runs: `--workspace`, with the tests' (or an example's)
  # dev-dependencies, so that they all reuse one set of artifacts.
  export OXKA_BIN="${OXKA_BIN:-$CARGO_TARGET_DIR/debug/oxka}"
  [[ -x "$OXKA_BIN" ]] || { echo "no oxka binary at $OXKA_BIN: cargo test should have built it" >&2; exit 1; }
  start_side_jobs
  (cd tests/faultcheck && "${OXKA_CACHE:-$HOME/.cache/oxka}/venv/bin/python" -m unittest test_verify)
  bash tests/faultcheck/run.sh --self-test --duration 15 --min-faults-per-kind 0
  if [[ "${OXKA_FAULTCHECK:-1}" == 1 ]]; then
    bash tests/faultcheck/run.sh --duration "${OXKA_FAULTCHECK_SECONDS:-300}" --min-faults-per-kind 30
  fi
fi
finish_side_jobs

# The images: built daemonlessly (umoci, skopeo) and checked against the Dockerfile.
# From the debug binaries cargo test built anyway (OXKA_IMAGE_PROFILE=debug): a cold release build
# would cost CI ~10 minutes; the files, entrypoint and user are the same as the release images'.
step "images: e2e/image/build.sh + compare.py"
export OXKA_IMAGE_PROFILE="${OXKA_IMAGE_PROFILE:-debug}"
bash e2e/image/build.sh >/dev/null
python3 e2e/image/compare.py "${OXKA_CACHE:-$HOME/.cache/oxka}/images"

# Real pods on a node assembled on this machine (e2e/node/run.sh, ~7 minutes with its binaries cached):
# it refuses to start with too little free disk (kubelet DiskPressure evictions made it fail before) and
# waits for NodePort rules; OXKA_E2E_NODE=0 leaves it out.
if [[ "${OXKA_E2E_NODE:-1}" == 1 ]]; then
  step "e2e/node/run.sh (real pods)"
  bash e2e/node/run.sh
fi

step "all checks passed in $((SECONDS - t0)) s"
