#!/bin/sh
# Lays out the root filesystem of an oxka image: the one recipe both image builds run, so that the
# Dockerfile's images and the daemonless ones (e2e/image/build.sh) hold the same files at the same
# paths. POSIX sh: it runs in the Dockerfile's Rust build stage and on this machine.
#
#   e2e/image/rootfs.sh BINARY ROOTFS
#
# ROOTFS receives:
#   /usr/local/bin/NAME         the binary (0755, debug info stripped, symbols kept)
#   the dynamic loader and every shared library the binary links, at the paths ldd reports (glibc,
#   libgcc_s: what distroless/cc holds, nothing more)
#   /etc/passwd, /etc/group     root, oxka (1000: the pods' user) and nonroot (65532: the operator's)
#   /tmp (1777), /var/lib/oxka  (the pods mount their data volumes below it)
# No shell, no package manager. Owners are left to the image builder (everything is root's).
set -eu

binary="$1"
rootfs="$2"
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
# Directories created for the libraries get the usual mode whatever the umask.
find "$rootfs" -type d ! -path "$rootfs/tmp" -exec chmod 0755 {} +
printf 'root:x:0:0:root:/root:/sbin/nologin\noxka:x:1000:1000:oxka:/var/lib/oxka:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\noxka:x:1000:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
