#!/bin/sh
# Lays out the root filesystem of an oxka image: the one recipe both image builds run, so that the
# Dockerfile's images and the daemonless ones (e2e/image/build.sh) hold the same files at the same
# paths. POSIX sh: it runs in the Dockerfile's Rust build stage and on this machine.
#
#   e2e/image/rootfs.sh BINARY ROOTFS [--distribution]
#
# ROOTFS receives:
#   /usr/local/bin/NAME         the binary (0755, debug info stripped, symbols kept)
#   with --distribution (the oxka image): /opt/oxka, the layout of the release archive
#   (scripts/stage-dist.sh --links: bin/ with the binary and every script name as a link to it, config/
#   with the shipped server.properties and zookeeper.properties, logs/ (1777), README.md, LICENSE), and
#   /usr/local/bin/NAME a link to /opt/oxka/bin/NAME
#   the dynamic loader and every shared library the binary links, at the paths ldd reports (glibc,
#   libgcc_s: what distroless/cc holds, nothing more)
#   /etc/passwd, /etc/group     root, oxka (1000: the pods' user) and nonroot (65532: the operator's)
#   /tmp (1777), /var/lib/oxka  (the pods mount their data volumes below it)
# No shell, no package manager. Owners are left to the image builder (everything is root's).
set -eu

binary="$1"
rootfs="$2"
distribution="${3:-}"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/var/lib/oxka"
chmod 0755 "$rootfs/usr" "$rootfs/usr/local" "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/var" "$rootfs/var/lib" "$rootfs/var/lib/oxka"
chmod 1777 "$rootfs/tmp"
cp "$binary" "$rootfs/usr/local/bin/"
# The release profile keeps line tables (debug = 1) for profiling; an image needs only the symbols
# that panics and backtraces print. binutils' strip is in the Rust image and on any build machine.
strip --strip-debug "$rootfs/usr/local/bin/$(basename "$binary")"
chmod 0755 "$rootfs/usr/local/bin/$(basename "$binary")"
# ldd prints "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
ldd "$binary" | grep -oE '/[^ ]+' | sort -u | while read -r lib; do
  dir="$rootfs$(dirname "$lib")"
  mkdir -p "$dir"
  cp -L "$lib" "$rootfs$lib"
  chmod 0755 "$rootfs$lib"
done
if [ "$distribution" = --distribution ]; then
  [ "$(basename "$binary")" = oxka ] || { echo "rootfs.sh: --distribution is the oxka binary's layout" >&2; exit 2; }
  bash "$(dirname "$0")/../../scripts/stage-dist.sh" --links "$rootfs/usr/local/bin/oxka" "$rootfs/opt/oxka"
  rm "$rootfs/usr/local/bin/oxka"
  ln -s /opt/oxka/bin/oxka "$rootfs/usr/local/bin/oxka"
  chmod 0644 "$rootfs/opt/oxka/config/"* "$rootfs/opt/oxka/README.md" "$rootfs/opt/oxka/LICENSE"
elif [ -n "$distribution" ]; then
  echo "rootfs.sh: unknown option $distribution (the one option is --distribution)" >&2
  exit 2
fi
# Directories created for the libraries get the usual mode whatever the umask; logs/ is written by
# -daemon as the pods' user.
find "$rootfs" -type d ! -path "$rootfs/tmp" -exec chmod 0755 {} +
[ ! -d "$rootfs/opt/oxka/logs" ] || chmod 1777 "$rootfs/opt/oxka/logs"
printf 'root:x:0:0:root:/root:/sbin/nologin\noxka:x:1000:1000:oxka:/var/lib/oxka:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\noxka:x:1000:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
