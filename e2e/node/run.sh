#!/usr/bin/env bash
# The real-pod e2e suite on this machine, in one command (root, no Docker):
#   e2e/node/run.sh                        # every scenario of e2e/pods.py
#   e2e/node/run.sh --only clients_through_bootstrap
#   e2e/node/run.sh --up                   # only the node: prints its kubeconfig, tears down on Ctrl-C / SIGTERM
# Builds (once, cached by version in ~/.cache/oxka) the Kubernetes node binaries, CoreDNS and the pause
# program from their Go modules; builds the images daemonlessly (e2e/image/build.sh, rebuilt only when
# their inputs change); brings up a single-node cluster whose pods really run (e2e/lib/node.sh); runs
# e2e/pods.py against it; tears everything down and restores the machine, on success and on failure.
# A failure keeps every log under the printed directory: the daemons' (kubelet, containerd, ...) and, in
# logs/cluster, every pod's `kubectl logs`, events and descriptions. OXKA_E2E_KEEP=1 keeps them always.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${OXKA_CACHE:-$HOME/.cache/oxka}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$CACHE/k8s/bin:/usr/local/go/bin:$PATH"
[[ $EUID -eq 0 ]] || { echo "e2e/node/run.sh: needs root (containerd, runc, iptables, mounts)" >&2; exit 1; }
t0=$SECONDS

"$ROOT/e2e/install-k8s.sh" node
bash "$ROOT/scripts/install-tools.sh" >/dev/null
command -v kubectl >/dev/null || { echo "e2e: kubectl is not installed" >&2; exit 1; }
mapfile -t ARCHIVES < <("$ROOT/e2e/image/build.sh" oxka oxka-operator oxka-pause oxka-kafka-tools)
[[ ${#ARCHIVES[@]} -eq 4 ]] || { echo "e2e: image build failed" >&2; exit 1; }
echo "e2e-node: binaries and images ready in $((SECONDS - t0)) s" >&2

# The pods' images, volumes and logs go under /tmp and /var/lib: with too little room there the kubelet
# evicts pods (DiskPressure) in the middle of a scenario, which looks like an oxka failure. Say so first.
for dir in /tmp /var/lib; do
  free_gb=$(df -P -BG "$dir" | awk 'NR==2 {gsub("G","",$4); print $4}')
  if (( free_gb < ${OXKA_E2E_MIN_FREE_GB:-8} )); then
    echo "e2e-node: only ${free_gb} GB free under $dir; the suite needs ${OXKA_E2E_MIN_FREE_GB:-8} GB (free some, e.g. old target dirs under ~/.cache/oxka, or set OXKA_E2E_MIN_FREE_GB)" >&2
    exit 1
  fi
done

IMAGE_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
WORK="$(mktemp -d /tmp/oxka-node.XXXXXX)"
# shellcheck source=../lib/controlplane.sh
source "$ROOT/e2e/lib/controlplane.sh"
# shellcheck source=../lib/node.sh
source "$ROOT/e2e/lib/node.sh"
status=1
cleanup() {
  trap - EXIT INT TERM
  if [[ ($status -ne 0 || -n "${OXKA_E2E_KEEP:-}") && -n "${ADMIN_KUBECONFIG:-}" ]]; then node_collect_logs || true; fi
  local t=$SECONDS
  node_stop || true
  echo "e2e-node: node stopped and machine restored in $((SECONDS - t)) s" >&2
  if [[ $status -eq 0 && -z "${OXKA_E2E_KEEP:-}" ]]; then
    rm -rf "$WORK"
  else
    # Keep the logs, drop the container images and volumes.
    rm -rf "$WORK/containerd" "$WORK/kubelet" "$WORK/pv" "$WORK/etcd"
    echo "e2e-node: logs kept in $WORK/logs" >&2
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start=$SECONDS
node_start "$WORK" "${ARCHIVES[@]}"
echo "e2e-node: node $NODE_NAME Ready in $((SECONDS - start)) s (kubeconfig $ADMIN_KUBECONFIG)" >&2
# The image upgrade that rolling_restart_under_load rolls out: the same bits under another tag.
"${CTR[@]}" images tag "docker.io/library/oxka:$IMAGE_VERSION" "docker.io/library/oxka:$IMAGE_VERSION-upgrade" >/dev/null
if [[ "${1:-}" == --up ]]; then
  echo "e2e-node: up; export KUBECONFIG=$ADMIN_KUBECONFIG  (node address $NODE_IP); stop with kill -TERM $$" >&2
  status=0
  while sleep 1; do :; done
fi
set +e
# With OXKA_E2E_KEEP, the logs of every broker and coordinator pod are followed as they run (pods a roll
# replaced included) into logs/pods.
[[ -n "${OXKA_E2E_KEEP:-}" ]] && export OXKA_E2E_POD_LOGS="$WORK/logs/pods"
python3 "$ROOT/e2e/pods.py" --kubeconfig "$ADMIN_KUBECONFIG" --node-address "$NODE_IP" "$@"
status=$?
set -e
echo "e2e-node: finished in $((SECONDS - t0)) s" >&2
