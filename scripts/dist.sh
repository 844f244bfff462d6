#!/usr/bin/env bash
# Builds the distribution: oxka-<version>.tar.gz with Kafka's layout, so the seed's quick start works as
# its readers type it (bin/zookeeper-server-start.sh -daemon config/zookeeper.properties, then
# bin/kafka-server-start.sh -daemon config/server.properties, logs/server.log, the stop scripts):
#   bin/     the oxka binary and Kafka's start/stop scripts (bin/*.sh of the checkout)
#   config/  server.properties (pointing at the coordinator on localhost:2181, as the seed's does) and
#            zookeeper.properties
#   logs/    where -daemon writes (LOG_DIR overrides it)
#   README.md, LICENSE (Apache-2.0, the workspace's license)
# Usage: scripts/dist.sh [OUT_DIR]   (default ~/.cache/oxka/dist; OXKA_DIST_PROFILE=debug packs a debug
# build instead of a release build). Prints the archive's path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-${OXKA_CACHE:-$HOME/.cache/oxka}/dist}"
PROFILE="${OXKA_DIST_PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${OXKA_CACHE:-$HOME/.cache/oxka}/target}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
if [[ "$PROFILE" == release ]]; then
  cargo build --release -p oxka-broker --bin oxka >&2
else
  cargo build -p oxka-broker --bin oxka >&2
fi
NAME="oxka-$VERSION"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
bash "$ROOT/scripts/stage-dist.sh" "$CARGO_TARGET_DIR/$PROFILE/oxka" "$STAGE/$NAME"
mkdir -p "$OUT"
tar -C "$STAGE" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "$OUT/$NAME.tar.gz"
