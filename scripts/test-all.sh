#!/usr/bin/env bash
# The one command that runs every check of the project, as CI does (.ci/run calls it):
#   tools -> fmt -> clippy -> cargo test (unit + integration) -> e2e/run.sh when it exists.
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

step "cargo test"
cargo test --workspace --no-fail-fast

if [[ -f e2e/run.sh ]]; then
  step "e2e/run.sh"
  bash e2e/run.sh
fi

step "all checks passed in $((SECONDS - t0)) s"
