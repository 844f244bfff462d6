#!/usr/bin/env bash
# The operator's API-server tests, in one command:
#   e2e/run.sh                       # everything
#   e2e/run.sh --only scale_up       # the required setup scenarios plus the named ones
# Builds (once, cached in ~/.cache/oxka) kube-apiserver, kube-controller-manager, etcd and helm from
# their Go modules, builds the operator, starts a control plane on loopback ports, and runs
# e2e/scenarios.py. Exits non-zero on any failure. Set OXKA_E2E_KEEP=1 to keep the work directory
# (logs of every process) after a successful run; it is always kept after a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${OXKA_CACHE:-$HOME/.cache/oxka}"
# Reuse whatever build the caller uses (scripts/test-all.sh: the workspace's target/).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$CACHE/k8s/bin:/usr/local/go/bin:$PATH"

"$ROOT/e2e/install-k8s.sh" all
command -v kubectl >/dev/null || { echo "e2e: kubectl is not installed (apt-get install kubectl, or build it like install-k8s.sh)" >&2; exit 1; }
# The operator, the config checker, and the oxka broker (a real broker answers placement questions).
(cd "$ROOT" && nice cargo build -q --workspace --bin oxka-operator --bin oxka --example check-config)

WORK="$(mktemp -d /tmp/oxka-e2e.XXXXXX)"
# shellcheck source=lib/controlplane.sh
source "$ROOT/e2e/lib/controlplane.sh"
status=1
cleanup() {
  cp_stop || true
  if [[ $status -eq 0 && -z "${OXKA_E2E_KEEP:-}" ]]; then
    rm -rf "$WORK"
  else
    echo "e2e: logs kept in $WORK/logs" >&2
  fi
}
trap cleanup EXIT
start=$SECONDS
cp_start "$WORK"
echo "e2e: control plane up in $((SECONDS - start))s at $APISERVER_URL" >&2
set +e
python3 "$ROOT/e2e/scenarios.py" --root "$ROOT" --work "$WORK" --kubeconfig "$ADMIN_KUBECONFIG" \
  --apiserver "$APISERVER_URL" --ca "$WORK/pki/ca.crt" \
  --operator "$CARGO_TARGET_DIR/debug/oxka-operator" \
  --check-config "$CARGO_TARGET_DIR/debug/examples/check-config" \
  --oxka "$CARGO_TARGET_DIR/debug/oxka" "$@"
status=$?
set -e
echo "e2e: finished in $((SECONDS - start))s" >&2
exit $status
