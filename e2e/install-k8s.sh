#!/usr/bin/env bash
# Builds the Kubernetes binaries the e2e tests need, from their Go modules (no release binary can be
# downloaded here), into a cache outside the checkout:
#   $OXKA_CACHE/k8s/bin/{kube-apiserver,kube-controller-manager,etcd,helm}       (all: API-server tests)
#   $OXKA_CACHE/k8s/bin/{kubelet,kube-scheduler,kube-proxy,coredns,pause}        (node: the real node)
# Skips every binary that is already present (OXKA_K8S_VERSION etc. pick other versions; delete the
# binary to rebuild). Concurrent runs serialise on a lock.
#
# Why a wrapper module: k8s.io/kubernetes' go.mod requires its staging modules (k8s.io/api, ...) at
# v0.0.0 with local replaces, so `go install k8s.io/kubernetes/cmd/...@v1.N.P` fails. A module that
# requires k8s.io/kubernetes and replaces each staging module with its published v0.N.P works, and can
# `go build` the main packages of its dependency directly.
set -euo pipefail

K8S_VERSION="${OXKA_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${OXKA_ETCD_VERSION:-v3.6.5}"
HELM_VERSION="${OXKA_HELM_VERSION:-v3.19.5}"
COREDNS_VERSION="${OXKA_COREDNS_VERSION:-v1.12.4}"
CACHE="${OXKA_CACHE:-$HOME/.cache/oxka}"
BIN="$CACHE/k8s/bin"
WORK="$CACHE/k8s/src"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
NICE="nice -n 10"

mkdir -p "$BIN" "$WORK"
exec 9>"$CACHE/k8s/.install.lock"
flock 9

log() { echo "[install-k8s] $*" >&2; }

staging_version() { # v1.34.4 -> v0.34.4
  echo "v0.${K8S_VERSION#v1.}"
}

build_k8s() { # binaries...
  local need=()
  for b in "$@"; do
    [[ -x "$BIN/$b" ]] || need+=("$b")
  done
  [[ ${#need[@]} -eq 0 ]] && { log "kube binaries present"; return; }
  local mod="$WORK/kubernetes-$K8S_VERSION"
  mkdir -p "$mod"
  if [[ ! -f "$mod/go.sum" ]] || ! grep -q cmd/kubelet "$mod/tools.go" 2>/dev/null; then
    log "preparing wrapper module for k8s.io/kubernetes $K8S_VERSION"
    local gomod
    gomod="$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
    local sv; sv="$(staging_version)"
    {
      echo "module oxka.local/k8s-build"
      echo
      grep -E '^go [0-9]' "$gomod"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      # Every staging module k8s.io/kubernetes pins at v0.0.0 gets its published version.
      grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" \
        | awk -v sv="$sv" '{print "\t" $1 " => " $1 " " sv}'
      echo ")"
    } >"$mod/go.mod"
    cat >"$mod/tools.go" <<'GOEOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GOEOF
    (cd "$mod" && $NICE "$GO" mod tidy)
  fi
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  for b in "${need[@]}"; do
    log "building $b $K8S_VERSION (slow on 2 cores the first time)"
    (cd "$mod" && $NICE "$GO" build -trimpath -ldflags "$ld" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$BIN/$b.tmp" "$BIN/$b"
  done
}

build_etcd() {
  [[ -x "$BIN/etcd" ]] && { log "etcd present"; return; }
  local mod="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$mod"
  cat >"$mod/main.go" <<'GOEOF'
// etcd built from its Go module: the same entry point as etcd's own main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GOEOF
  if [[ ! -f "$mod/go.mod" ]]; then
    (cd "$mod" && "$GO" mod init oxka.local/etcd-build && "$GO" get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && $NICE "$GO" mod tidy)
  fi
  log "building etcd $ETCD_VERSION"
  (cd "$mod" && $NICE "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" .)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_helm() {
  [[ -x "$BIN/helm" ]] && { log "helm present"; return; }
  log "building helm $HELM_VERSION"
  GOBIN="$BIN" $NICE "$GO" install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# CoreDNS from its Go module, with its default plugin set (kubernetes, forward, cache, ...).
build_coredns() {
  [[ -x "$BIN/coredns" ]] && { log "coredns present"; return; }
  log "building coredns $COREDNS_VERSION"
  GOBIN="$BIN" CGO_ENABLED=0 $NICE "$GO" install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
}

# The pod sandbox ("pause") program: nothing can be pulled here, so the sandbox image is this static
# program (reaps children, exits on SIGINT/SIGTERM), wrapped into an image by e2e/image/build.sh.
build_pause() {
  [[ -x "$BIN/pause" ]] && { log "pause present"; return; }
  local mod="$WORK/pause"
  mkdir -p "$mod"
  cat >"$mod/main.go" <<'GOEOF'
// pause: the process that holds a pod's namespaces. Sleeps until SIGINT or SIGTERM, reaping zombies.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
GOEOF
  [[ -f "$mod/go.mod" ]] || (cd "$mod" && "$GO" mod init oxka.local/pause >/dev/null 2>&1)
  (cd "$mod" && CGO_ENABLED=0 $NICE "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/pause" .)
}

what="${1:-all}"
case "$what" in
  etcd) build_etcd ;;
  helm) build_helm ;;
  kube) build_k8s kube-apiserver kube-controller-manager ;;
  coredns) build_coredns ;;
  pause) build_pause ;;
  all) build_etcd; build_helm; build_k8s kube-apiserver kube-controller-manager ;;
  node) build_etcd; build_helm; build_pause; build_k8s kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet; build_coredns ;;
  *) echo "usage: $0 [all|node|etcd|helm|kube|coredns|pause]" >&2; exit 2 ;;
esac
ls -la "$BIN" >&2
