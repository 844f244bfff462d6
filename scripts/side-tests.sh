#!/usr/bin/env bash
# The integration tests scripts/test-all.sh runs beside the fault checker rather than in the plain
# `cargo test` run (they mostly wait, on failovers and timeouts or on Java tools starting): the
# replicated-transactions tests (#[ignore]d in the plain run) and the native tools' comparisons with
# Kafka's (`test = false` in broker/Cargo.toml). The comparisons run one at a time inside their binary
# (they share ports), so they are dealt into two halves that run in two lanes:
#   side-tests.sh transactions   the replicated-transactions tests, then the first half of the comparisons
#   side-tests.sh after-e2e      the second half, once the API-server e2e (e2e/run.sh) is done
#   side-tests.sh                everything, one after the other
set -euo pipefail

# native_tools_half N: the comparisons whose place in `--list` order is N modulo 2.
native_tools_half() {
  local half="$1" names
  mapfile -t names < <(cargo test -q --workspace --test native_tools -- --list 2>/dev/null |
    sed -n 's/: test$//p' | awk -v half="$half" 'NR % 2 == half')
  if [[ ${#names[@]} -eq 0 ]]; then
    echo "side-tests.sh: no native_tools tests listed (cargo test --test native_tools -- --list)" >&2
    return 1
  fi
  cargo test --workspace --test native_tools -- --exact "${names[@]}"
}

case "${1:-all}" in
  transactions)
    cargo test --workspace --test transactions_cluster -- --ignored
    native_tools_half 0
    ;;
  after-e2e)
    bash e2e/run.sh
    native_tools_half 1
    ;;
  all)
    cargo test --workspace --test transactions_cluster -- --ignored
    cargo test --workspace --test native_tools
    ;;
  *)
    echo "usage: side-tests.sh [transactions|after-e2e|all]" >&2
    exit 2
    ;;
esac
