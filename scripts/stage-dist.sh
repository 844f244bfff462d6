#!/usr/bin/env bash
# Lays out an oxka install in DIR from the checkout and the given binary (scripts/dist.sh packs it; the
# distribution test runs the seed's quick start in it; e2e/image/rootfs.sh puts it in the oxka image).
#   scripts/stage-dist.sh [--links] OXKA_BINARY DIR
# bin/ holds the checkout's scripts (bin/*.sh) beside the binary; with --links (the images, which have
# no shell) every script name is instead a link to the binary, which runs what that script runs when
# started under its name (broker/src/process/invoked_as.rs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LINKS=""
if [[ "${1:-}" == --links ]]; then
  LINKS=1
  shift
fi
BINARY="$1"
DIR="$2"
mkdir -p "$DIR/bin" "$DIR/config" "$DIR/logs"
cp "$BINARY" "$DIR/bin/oxka"
for script in "$ROOT"/bin/*.sh; do
  if [[ -n "$LINKS" ]]; then
    ln -sf oxka "$DIR/bin/$(basename "$script")"
  else
    cp "$script" "$DIR/bin/"
  fi
done
cp "$ROOT/config/zookeeper.properties" "$DIR/config/"
# The checkout's server.properties runs the embedded coordinator (one command, no other setup); the
# distribution's follows the seed: a broker of the coordinator started from zookeeper.properties.
sed 's|^# No zookeeper.connect / coordinator.connect: the broker runs its embedded single-node coordinator.$|# The coordinator ensemble (oxka'"'"'s ZooKeeper), started with bin/zookeeper-server-start.sh first.\nzookeeper.connect=localhost:2181|' \
  "$ROOT/config/server.properties" > "$DIR/config/server.properties"
grep -q '^zookeeper.connect=localhost:2181$' "$DIR/config/server.properties" \
  || { echo "stage-dist: config/server.properties changed; update the zookeeper.connect line here" >&2; exit 1; }
cp "$ROOT/README.md" "$ROOT/LICENSE" "$DIR/"
