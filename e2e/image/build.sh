#!/usr/bin/env bash
# Builds oxka's images without a container daemon (umoci + skopeo, from Debian): the same images the
# Dockerfile builds (same files from e2e/image/rootfs.sh, same entrypoint, user, env and workdir;
# e2e/image/compare.sh checks it), plus the two images only the real-node tests need.
#
#   e2e/image/build.sh [IMAGE...]     # default: oxka oxka-operator
#
#   oxka:VERSION            broker and coordinator (Dockerfile target oxka)
#   oxka-operator:VERSION   the operator (Dockerfile target oxka-operator)
#   oxka-pause:VERSION      the pod sandbox image of the real node (nothing can be pulled here)
#   oxka-kafka-tools:KAFKA  Apache Kafka's Java tools (a jlink'd JRE, the kafka-tools jars, busybox)
#
# VERSION is the crate version (Cargo.toml). Each image is written to $OXKA_CACHE/images (override with
# OXKA_IMAGES) as NAME_TAG.tar, a docker-archive that `ctr -n k8s.io images import`, `docker load` and
# `kind load image-archive` all read, tagged docker.io/library/NAME:TAG. An image is rebuilt only when its
# inputs changed (their hash is kept next to it in NAME_TAG.key). Prints the archive paths on stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${OXKA_CACHE:-$HOME/.cache/oxka}"
OUT="${OXKA_IMAGES:-$CACHE/images}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
KAFKA_VERSION="4.1.1"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
log() { echo "[image] $*" >&2; }

for tool in umoci skopeo; do
  command -v "$tool" >/dev/null || { log "installing $tool (Debian)"; apt-get install -y "$tool" >/dev/null; }
done
mkdir -p "$OUT"
exec 8>"$OUT/.build.lock"
flock 8
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# finish NAME TAG ROOTFS KEY USER WORKDIR ENTRYPOINT...: wraps ROOTFS into NAME_TAG.tar unless KEY is unchanged.
finish() {
  local name="$1" tag="$2" rootfs="$3" key="$4" user="$5" workdir="$6"
  shift 6
  local archive="$OUT/${name}_$tag.tar"
  local layout="$WORK/$name-layout" bundle="$WORK/$name-bundle"
  umoci init --layout "$layout" >&2
  umoci new --image "$layout:$tag" >&2
  local rootless=()
  [[ $EUID -eq 0 ]] || rootless=(--rootless)  # (GitHub Actions runs as a user)
  umoci unpack "${rootless[@]}" --image "$layout:$tag" "$bundle" >&2
  rm -rf "$bundle/rootfs"
  mv "$rootfs" "$bundle/rootfs"
  umoci repack --image "$layout:$tag" "$bundle" >&2
  local entry=()
  for e in "$@"; do entry+=(--config.entrypoint "$e"); done
  umoci config --image "$layout:$tag" --config.user "$user" --config.workingdir "$workdir" \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin "${entry[@]}" \
    --os linux --architecture amd64 --author oxka --no-history >&2
  umoci gc --layout "$layout" >&2
  rm -f "$archive.tmp"
  skopeo copy -q "oci:$layout:$tag" "docker-archive:$archive.tmp:docker.io/library/$name:$tag"
  mv "$archive.tmp" "$archive"
  echo "$key" >"$OUT/${name}_$tag.key"
  log "$archive ($(du -h "$archive" | cut -f1))"
  echo "$archive"
}

# fresh NAME TAG KEY: true when the archive exists and was built from the same inputs.
fresh() {
  [[ -f "$OUT/${1}_$2.tar" && "$(cat "$OUT/${1}_$2.key" 2>/dev/null)" == "$3" ]]
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# OXKA_IMAGE_PROFILE=debug builds the images from the debug binaries instead (CI: `cargo test` has
# built them already, and a cold release build would cost CI ~10 minutes); same files otherwise.
PROFILE="${OXKA_IMAGE_PROFILE:-release}"
release_binaries() {
  [[ -n "${BUILT:-}" ]] && return
  if [[ "$PROFILE" == release ]]; then
    log "cargo build --release (oxka, oxka-operator)"
    (cd "$ROOT" && nice cargo build -q --release --locked -p oxka-broker --bin oxka -p oxka-operator --bin oxka-operator)
  else
    # With the whole workspace's features, exactly as e2e/run.sh and scripts/test-all.sh build them, so
    # that the binaries cargo test built are reused (a `-p` build unifies fewer features and rebuilds
    # every crate of the workspace).
    log "cargo build (debug: oxka, oxka-operator)"
    (cd "$ROOT" && nice cargo build -q --workspace --bin oxka-operator --bin oxka --example check-config)
  fi
  BUILT=1
}

# The product images: one binary each, laid out by rootfs.sh exactly as in the Dockerfile (the oxka
# image with the distribution in /opt/oxka, its working directory).
product() { # NAME USER WORKDIR [--distribution]
  local name="$1" user="$2" workdir="$3" layout="${4:-}"
  release_binaries
  local bin="$CARGO_TARGET_DIR/$([[ "$PROFILE" == release ]] && echo release || echo debug)/$name"
  local key; key="$(hash_of "$bin" "$ROOT/e2e/image/rootfs.sh" "$0" "$ROOT/scripts/stage-dist.sh" \
    "$ROOT"/bin/*.sh "$ROOT"/config/*.properties "$ROOT/README.md" "$ROOT/LICENSE")"
  if fresh "$name" "$VERSION" "$key"; then echo "$OUT/${name}_$VERSION.tar"; return; fi
  sh "$ROOT/e2e/image/rootfs.sh" "$bin" "$WORK/$name-rootfs" $layout
  finish "$name" "$VERSION" "$WORK/$name-rootfs" "$key" "$user" "$workdir" "/usr/local/bin/$name"
}

pause() {
  local bin="$CACHE/k8s/bin/pause"
  [[ -x "$bin" ]] || "$ROOT/e2e/install-k8s.sh" pause
  local key; key="$(hash_of "$bin" "$0")"
  if fresh oxka-pause "$VERSION" "$key"; then echo "$OUT/oxka-pause_$VERSION.tar"; return; fi
  local rootfs="$WORK/pause-rootfs"
  mkdir -p "$rootfs"
  install -m 0755 "$bin" "$rootfs/pause"
  finish oxka-pause "$VERSION" "$rootfs" "$key" 65535:65535 / /pause
}

# Kafka's Java tools for pods that act as clients: `java -cp '/opt/kafka/libs/*' MAIN ARGS`. The JRE is
# jlink'd from this machine's JDK (the modules Kafka's clients and tools use), the jars are the ones
# scripts/install-tools.sh resolved from Maven Central, busybox gives sh, sleep and nc.
kafka_tools() {
  local cp_file="$CACHE/kafka-4/classpath.txt"
  [[ -f "$cp_file" ]] || bash "$ROOT/scripts/install-tools.sh"
  command -v busybox >/dev/null || apt-get install -y busybox-static >/dev/null
  local jlink; jlink="$(readlink -f "$(command -v jlink)")"
  local jdk; jdk="$(dirname "$(dirname "$jlink")")"
  local key; key="$( (tr ':' '\n' <"$cp_file"; cat "$jdk/release" "$0") | sha256sum | cut -d' ' -f1)"
  if fresh oxka-kafka-tools "$KAFKA_VERSION" "$key"; then echo "$OUT/oxka-kafka-tools_$KAFKA_VERSION.tar"; return; fi
  local rootfs="$WORK/kafka-tools-rootfs"
  mkdir -p "$rootfs/opt/kafka/libs" "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
  chmod 1777 "$rootfs/tmp"
  "$jlink" --module-path "$jdk/jmods" --output "$rootfs/opt/java" --strip-debug --no-header-files --no-man-pages \
    --compress=2 --add-modules java.base,java.desktop,java.instrument,java.logging,java.management,java.naming,java.net.http,java.scripting,java.security.jgss,java.security.sasl,java.sql,java.xml,jdk.crypto.ec,jdk.management,jdk.unsupported,jdk.zipfs
  # The JRE's own libraries find each other through RPATH; the system ones (glibc, zlib, ...) are copied.
  find "$rootfs/opt/java" -type f \( -name '*.so' -o -path '*/bin/*' \) -exec ldd {} + 2>/dev/null |
    grep -oE '=> /[^ ]+|^\s*/[^ ]+' | grep -oE '/[^ ]+' | grep -v "^$rootfs" | sort -u | while read -r lib; do
      mkdir -p "$rootfs$(dirname "$lib")"
      cp -L "$lib" "$rootfs$lib"
    done
  tr ':' '\n' <"$cp_file" | while read -r jar; do [[ -n "$jar" ]] && cp "$jar" "$rootfs/opt/kafka/libs/"; done
  cp "$CACHE/kafka-4/log4j2.properties" "$rootfs/opt/kafka/" 2>/dev/null || true
  install -m 0755 "$(command -v busybox)" "$rootfs/bin/busybox"
  for applet in sh sleep nc cat ls env; do ln -s busybox "$rootfs/bin/$applet"; done
  # (not a symlink: the launcher finds libjli.so relative to the path it was started by)
  printf '#!/bin/sh\nexec /opt/java/bin/java "$@"\n' >"$rootfs/bin/java"
  chmod 0755 "$rootfs/bin/java"
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/tmp:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  finish oxka-kafka-tools "$KAFKA_VERSION" "$rootfs" "$key" 65532:65532 / /bin/sleep 2147483647
}

[[ $# -gt 0 ]] || set -- oxka oxka-operator
for image in "$@"; do
  case "$image" in
    oxka) product oxka 1000:1000 /opt/oxka --distribution ;;
    oxka-operator) product oxka-operator 65532:65532 / ;;
    oxka-pause | pause) pause ;;
    oxka-kafka-tools | kafka-tools) kafka_tools ;;
    *) echo "usage: $0 [oxka|oxka-operator|oxka-pause|oxka-kafka-tools]..." >&2; exit 2 ;;
  esac
done
