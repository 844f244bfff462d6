#!/usr/bin/env bash
# Builds the `oxka` (broker and coordinator) and `oxka-operator` OCI images from release binaries,
# without a container daemon (umoci, from Debian). Optional: the API-server tests do not run pods.
#
#   e2e/image/build.sh [OUT_DIR]      # default OUT_DIR: ~/.cache/oxka/images
#
# Writes OUT_DIR/oxka-VERSION.tar and OUT_DIR/oxka-operator-VERSION.tar (OCI image layout archives).
# Load them where containers run, e.g.
#   ctr -n k8s.io image import --index-name docker.io/library/oxka:VERSION OUT_DIR/oxka-VERSION.tar
#   kind load image-archive OUT_DIR/oxka-VERSION.tar
# The image holds the binary, the shared libraries it links (copied from this machine, found by ldd),
# /etc/passwd entries for the users the pods run as (1000 oxka, 65532 nonroot), and nothing else.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-${OXKA_CACHE:-$HOME/.cache/oxka}/images}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if ! command -v umoci >/dev/null; then
  echo "[image] installing umoci (Debian)" >&2
  apt-get install -y umoci >/dev/null
fi
(cd "$ROOT" && nice cargo build --release -p oxka-broker --bin oxka -p oxka-operator --bin oxka-operator)
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# image NAME BINARY USER
image() {
  local name="$1" binary="$2" user="$3"
  local layout="$WORK/$name-layout" bundle="$WORK/$name-bundle"
  umoci init --layout "$layout"
  umoci new --image "$layout:$VERSION"
  umoci unpack --image "$layout:$VERSION" "$bundle" >/dev/null
  local rootfs="$bundle/rootfs"
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/var/lib/oxka"
  chmod 1777 "$rootfs/tmp"
  install -m 0755 "$binary" "$rootfs/usr/local/bin/"
  # The dynamic loader and every library the binary links, at the same paths.
  ldd "$binary" | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\noxka:x:1000:1000:oxka:/var/lib/oxka:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\noxka:x:1000:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  chown 1000:1000 "$rootfs/var/lib/oxka"
  umoci repack --image "$layout:$VERSION" "$bundle"
  umoci config --image "$layout:$VERSION" --config.user "$user" --config.workingdir / \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.entrypoint "/usr/local/bin/$(basename "$binary")" \
    --author oxka --os linux --architecture amd64
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$OUT/$name-$VERSION.tar" .
  echo "[image] $OUT/$name-$VERSION.tar ($(du -h "$OUT/$name-$VERSION.tar" | cut -f1))" >&2
}

image oxka "$CARGO_TARGET_DIR/release/oxka" 1000:1000
image oxka-operator "$CARGO_TARGET_DIR/release/oxka-operator" 65532:65532
