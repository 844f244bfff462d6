#!/usr/bin/env bash
# The real-pod e2e suite on kind (a machine with Docker: a laptop, GitHub Actions), in one command:
#   e2e/kind/run.sh                        # every scenario of e2e/pods.py
#   e2e/kind/run.sh --only clients_through_bootstrap
# Creates a kind cluster, builds oxka and oxka-operator with the Dockerfile (docker build), loads them
# with `kind load docker-image`, builds the Kafka tools image daemonlessly (e2e/image/build.sh: umoci,
# skopeo, a JDK with jmods) and loads it with `kind load image-archive`, then runs e2e/pods.py, the same
# suite e2e/node/run.sh runs here, through the kind cluster's kubeconfig. Deletes the cluster at the end
# (OXKA_KIND_KEEP=1 keeps it). Needs: docker, kind, kubectl, helm, java 17 + maven (scripts/install-tools.sh),
# umoci and skopeo.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${OXKA_CACHE:-$HOME/.cache/oxka}"
CLUSTER="${OXKA_KIND_CLUSTER:-oxka-e2e}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
LOGS="${OXKA_KIND_LOGS:-$(mktemp -d /tmp/oxka-kind.XXXXXX)}"
for cmd in docker kind kubectl helm java mvn; do
  command -v "$cmd" >/dev/null || { echo "e2e/kind: $cmd is not installed" >&2; exit 1; }
done
t0=$SECONDS

bash "$ROOT/scripts/install-tools.sh" >/dev/null
echo "e2e-kind: docker build (oxka, oxka-operator $VERSION)" >&2
docker build -t "oxka:$VERSION" "$ROOT"
docker build --target oxka-operator -t "oxka-operator:$VERSION" "$ROOT"
TOOLS_ARCHIVE="$("$ROOT/e2e/image/build.sh" oxka-kafka-tools)"
echo "e2e-kind: images built in $((SECONDS - t0)) s" >&2

kind create cluster --name "$CLUSTER" --config "$ROOT/e2e/kind/cluster.yaml" --wait 180s
status=1
cleanup() {
  if [[ $status -ne 0 ]]; then
    kind export logs "$LOGS/kind" --name "$CLUSTER" >/dev/null 2>&1 || true
    kubectl --kubeconfig "$KUBECONFIG_FILE" get all,pvc,kafkaclusters -A -o wide >"$LOGS/objects.txt" 2>&1 || true
    echo "e2e-kind: logs kept in $LOGS" >&2
  fi
  [[ -n "${OXKA_KIND_KEEP:-}" ]] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  exit $status
}
KUBECONFIG_FILE="$LOGS/kubeconfig"
trap cleanup EXIT
kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG_FILE"
# oxka:VERSION-upgrade: the same bits under another tag, the image upgrade of rolling_restart_under_load.
docker tag "oxka:$VERSION" "oxka:$VERSION-upgrade"
kind load docker-image --name "$CLUSTER" "oxka:$VERSION" "oxka:$VERSION-upgrade" "oxka-operator:$VERSION"
kind load image-archive --name "$CLUSTER" "$TOOLS_ARCHIVE"
# NodePorts: the node container's address on the kind network is reachable from the Docker host.
NODE_ADDRESS="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CLUSTER-control-plane")"
echo "e2e-kind: cluster ready in $((SECONDS - t0)) s, node address $NODE_ADDRESS" >&2
set +e
python3 "$ROOT/e2e/pods.py" --kubeconfig "$KUBECONFIG_FILE" --node-address "$NODE_ADDRESS" "$@"
status=$?
set -e
echo "e2e-kind: finished in $((SECONDS - t0)) s" >&2
