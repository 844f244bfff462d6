# Starts etcd, kube-apiserver and kube-controller-manager on loopback ports, the way
# controller-runtime's envtest starts its control plane (plus the controller-manager, so that
# StatefulSets get pods and owner references get garbage-collected). No scheduler and no kubelet:
# pods stay Pending, and tests mark them Running/Ready by patching pod status.
#
# Source this file, then: cp_start DIR; ... ; cp_stop. Exposes ADMIN_KUBECONFIG, APISERVER_URL, CP_DIR.
#
# e2e/lib/node.sh starts the same control plane for a real node with CP_REAL_NODE=1: the API server
# listens on CP_ADDRESS (the node's address, which pods reach), serves CP_SERVICE_CIDR, publishes itself
# as the `kubernetes` Service's endpoint, runs the ServiceAccount admission plugin (pods get tokens) and
# reaches the kubelet with the admin client certificate.

K8S_BIN="${OXKA_CACHE:-$HOME/.cache/oxka}/k8s/bin"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Writes a kubeconfig for $APISERVER_URL with the given user section (YAML lines).
write_kubeconfig() { # file user-yaml
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $APISERVER_URL
    certificate-authority: $CP_DIR/pki/ca.crt
contexts:
- name: e2e
  context: {cluster: e2e, user: user}
current-context: e2e
users:
- name: user
  user:
$2
KC
}

# 10.0.0.0/24 -> 10.0.0.1: the `kubernetes` Service's ClusterIP.
first_service_ip() {
  local net="${CP_SERVICE_CIDR:-10.0.0.0/24}"
  net="${net%/*}"
  echo "${net%.*}.$((${net##*.} + 1))"
}

cp_pki() {
  local pki="$CP_DIR/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=oxka-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "${CP_ADDRESS:-127.0.0.1}" "$(first_service_ip)" >server.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 2 -extfile server.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=e2e-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >client.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 2 -extfile client.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

wait_http() { # url what seconds
  local deadline=$((SECONDS + $3))
  until curl -sk --max-time 2 "$1" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "$2 did not come up; last log lines:" >&2; return 1; fi
    sleep 0.5
  done
}

cp_start() { # dir
  CP_DIR="$1"
  mkdir -p "$CP_DIR/logs"
  cp_pki
  local etcd_client etcd_peer api_port kcm_port
  etcd_client=$(free_port); etcd_peer=$(free_port); api_port=$(free_port); kcm_port=$(free_port)
  local address="${CP_ADDRESS:-127.0.0.1}"
  APISERVER_URL="https://$address:$api_port"
  local mode_flags=(--disable-admission-plugins ServiceAccount --endpoint-reconciler-type none)
  if [[ -n "${CP_REAL_NODE:-}" ]]; then
    mode_flags=(--kubelet-client-certificate "$CP_DIR/pki/admin.crt" --kubelet-client-key "$CP_DIR/pki/admin.key"
      --kubelet-preferred-address-types InternalIP)
  fi
  "$K8S_BIN/etcd" --data-dir "$CP_DIR/etcd" --name e2e \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "e2e=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level warn \
    >"$CP_DIR/logs/etcd.log" 2>&1 &
  echo $! >"$CP_DIR/etcd.pid"
  wait_http "http://127.0.0.1:$etcd_client/health" etcd 30 || { tail -20 "$CP_DIR/logs/etcd.log" >&2; return 1; }

  "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --cert-dir "$CP_DIR/pki" --tls-cert-file "$CP_DIR/pki/apiserver.crt" --tls-private-key-file "$CP_DIR/pki/apiserver.key" \
    --secure-port "$api_port" --bind-address "$address" --advertise-address "$address" \
    --authorization-mode RBAC --client-ca-file "$CP_DIR/pki/ca.crt" \
    --service-cluster-ip-range "${CP_SERVICE_CIDR:-10.0.0.0/24}" --allow-privileged=true \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$CP_DIR/pki/sa.pub" --service-account-signing-key-file "$CP_DIR/pki/sa.key" \
    "${mode_flags[@]}" \
    >"$CP_DIR/logs/kube-apiserver.log" 2>&1 &
  echo $! >"$CP_DIR/kube-apiserver.pid"
  ADMIN_KUBECONFIG="$CP_DIR/admin.kubeconfig"
  write_kubeconfig "$ADMIN_KUBECONFIG" "    client-certificate: $CP_DIR/pki/admin.crt
    client-key: $CP_DIR/pki/admin.key"
  local deadline=$((SECONDS + 90))
  until kubectl --kubeconfig "$ADMIN_KUBECONFIG" get --raw /readyz >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "kube-apiserver did not become ready:" >&2; tail -30 "$CP_DIR/logs/kube-apiserver.log" >&2; return 1; fi
    sleep 1
  done

  "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$ADMIN_KUBECONFIG" --authentication-kubeconfig "$ADMIN_KUBECONFIG" --authorization-kubeconfig "$ADMIN_KUBECONFIG" \
    --leader-elect=false --secure-port "$kcm_port" --bind-address 127.0.0.1 \
    --root-ca-file "$CP_DIR/pki/ca.crt" --service-account-private-key-file "$CP_DIR/pki/sa.key" \
    --controllers '*' --concurrent-gc-syncs 5 \
    >"$CP_DIR/logs/kube-controller-manager.log" 2>&1 &
  echo $! >"$CP_DIR/kube-controller-manager.pid"
  wait_http "https://127.0.0.1:$kcm_port/healthz" kube-controller-manager 60 || { tail -20 "$CP_DIR/logs/kube-controller-manager.log" >&2; return 1; }
}

cp_stop() {
  local p
  for p in kube-controller-manager kube-apiserver etcd; do
    if [[ -f "$CP_DIR/$p.pid" ]]; then
      kill "$(cat "$CP_DIR/$p.pid")" 2>/dev/null || true
    fi
  done
  for p in kube-controller-manager kube-apiserver etcd; do
    if [[ -f "$CP_DIR/$p.pid" ]]; then
      local pid; pid=$(cat "$CP_DIR/$p.pid")
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$CP_DIR/$p.pid"
    fi
  done
}
