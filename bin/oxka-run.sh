#!/usr/bin/env bash
# Runs the oxka binary of this install with the given arguments (the other scripts call it, as Kafka's
# call kafka-run-class.sh). The binary: $OXKA_BIN, else bin/oxka (the distribution), else a cargo build
# in the checkout (target/release, then target/debug). LOG_DIR defaults to the install's logs/.
base_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LOG_DIR="${LOG_DIR:-$base_dir/logs}"
for candidate in "${OXKA_BIN:-}" "$base_dir/bin/oxka" "${CARGO_TARGET_DIR:-$base_dir/target}/release/oxka" \
  "${CARGO_TARGET_DIR:-$base_dir/target}/debug/oxka"; do
  if [[ -n "$candidate" && -x "$candidate" ]]; then
    exec "$candidate" "$@"
  fi
done
if command -v oxka >/dev/null 2>&1; then
  exec oxka "$@"
fi
echo "oxka: no oxka binary here: build it (cargo build --release -p oxka-broker), or set OXKA_BIN" >&2
exit 1
