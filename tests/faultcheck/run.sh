#!/usr/bin/env bash
# The fault checker: runs coordinators and brokers as processes in network namespaces, produces
# numbered records with acks=all while injecting faults from a seeded schedule, then reads everything
# back and fails on acknowledged-but-lost, duplicated or reordered records. See docs/testing.md.
#
#   tests/faultcheck/run.sh --duration 60 --min-faults-per-kind 3     # a short run
#   tests/faultcheck/run.sh --self-test                               # the checker catches damage
#   tests/faultcheck/run.sh --help                                    # every flag
#
# Needs root, iproute2 and iptables, and the Python venv of scripts/install-tools.sh. The oxka binary
# is --oxka-bin, else $OXKA_BIN, else $CARGO_TARGET_DIR/debug/oxka (default target dir
# ~/.cache/oxka/target-faults): build it first with `cargo build -p oxka-broker --bin oxka`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${OXKA_CACHE:-$HOME/.cache/oxka}/venv/bin/python"
[[ -x "$python" ]] || { echo "no $python: run scripts/install-tools.sh" >&2; exit 2; }
cd "$here"
exec "$python" -m faultcheck "$@"
