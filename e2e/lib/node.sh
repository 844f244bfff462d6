# A single-node Kubernetes cluster whose pods really run, on this machine, without Docker.
#
# Source this file (after controlplane.sh), then: node_start DIR; ... ; node_stop. Needs root.
# Exposes ADMIN_KUBECONFIG, APISERVER_URL, NODE_IP, NODE_NAME, CTR (a ctr command line for the node's
# containerd, namespace k8s.io).
#
# What runs, every process started here and recorded by PID under DIR/pids:
#   etcd, kube-apiserver, kube-controller-manager (controlplane.sh, in real-node mode), kube-scheduler,
#   containerd (Debian; root, state, socket, CNI config and the opt path under DIR; restrict_oom_score_adj
#   because root lacks CAP_SYS_RESOURCE here; cgroupfs), kubelet (cgroupfs, failCgroupV1: false),
#   kube-proxy (iptables mode), CoreDNS (host process, kubernetes plugin only, no upstream forwarding).
# Network, confined to the machine:
#   a port-less bridge oxkanode0 holding NODE_IP (10.247.0.1/32, never routed anywhere): the API server,
#   kubelet, CoreDNS (port 53) and NodePorts listen there;
#   a bridge oxkapod0 with the pod network 10.248.0.0/24 (bridge CNI plugin, host-local IPAM, no IP
#   masquerade), services in 10.249.0.0/24, and an iptables rule that drops pod traffic to anything but
#   pods, services and this node (chain OXKA-E2E-ISOLATE).
# Storage: pre-created hostPath PersistentVolumes under DIR/pv in a default StorageClass `local`.
#
# Machine state that this changes, recorded first (DIR/state) and restored by node_stop: the sysctls the
# kubelet and kube-proxy set (and ip_forward), every iptables/ip6tables rule and chain added (KUBE-*,
# CNI-*, OXKA-*), mounts under DIR and /run/netns/cni-*, the kubelet's cgroups (kubepods), the links it
# created, and /run/containerd, /var/lib/cni, /var/log/pods, /var/log/containers when they did not exist.
# /run/oxka-e2e-node/current names the live node: node_start first tears down a node a killed run left.

NODE_IP="${OXKA_NODE_IP:-10.247.0.1}"
POD_CIDR="${OXKA_POD_CIDR:-10.248.0.0/24}"
SERVICE_CIDR="${OXKA_SERVICE_CIDR:-10.249.0.0/24}"
NODE_NAME="oxka-node"
NODE_LINK="oxkanode0"
POD_BRIDGE="oxkapod0"
NODE_RUN="/run/oxka-e2e-node"
CNI_BIN="${OXKA_CNI_BIN:-/usr/lib/cni}"
# Paths outside DIR that the kubelet, containerd and CNI write to no matter what they are told.
NODE_GLOBAL_DIRS=(/run/containerd /var/lib/cni /var/log/pods /var/log/containers /var/lib/kubelet)
# Sysctls touched by the kubelet, kube-proxy and this script (prefix match); restored by value.
NODE_SYSCTLS='^(kernel\.panic|kernel\.panic_on_oops|kernel\.keys\.root_max|vm\.overcommit_memory|vm\.panic_on_oom|net\.ipv4\.ip_forward|net\.ipv4\.conf\.(all|default|lo|eth0)\.|net\.ipv6\.conf\.(all|default)\.forwarding|net\.bridge\.|net\.netfilter\.nf_conntrack_(max|tcp_timeout_established|tcp_timeout_close_wait|tcp_be_liberal)) '

node_log() { echo "[node] $*" >&2; }

node_need_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x "$CNI_BIN/bridge" ]] || missing+=(containernetworking-plugins)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v umoci >/dev/null || missing+=(umoci)
  command -v skopeo >/dev/null || missing+=(skopeo)
  command -v busybox >/dev/null || missing+=(busybox-static)
  if ((${#missing[@]})); then
    node_log "installing ${missing[*]} (Debian)"
    apt-get install -y "${missing[@]}" >/dev/null
  fi
}

# --- recording and restoring machine state ------------------------------------------------------

node_record_state() {
  local s="$NODE_DIR/state"
  mkdir -p "$s"
  sysctl -a 2>/dev/null | grep -E "$NODE_SYSCTLS" >"$s/sysctl" || true
  iptables-save >"$s/iptables" 2>/dev/null || true
  ip6tables-save >"$s/ip6tables" 2>/dev/null || true
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$s/links"
  ls -1 /run/netns 2>/dev/null | sort >"$s/netns" || true
  : >"$s/absent-dirs"
  local d
  for d in "${NODE_GLOBAL_DIRS[@]}"; do [[ -e "$d" ]] || echo "$d" >>"$s/absent-dirs"; done
  : >"$s/absent-cgroups"
  for d in /sys/fs/cgroup/*/; do
    local c
    for c in kubepods kubepods.slice k8s.io; do [[ -e "$d$c" ]] || echo "$d$c" >>"$s/absent-cgroups"; done
  done
}

# Deletes every rule and chain of TOOL (iptables/ip6tables) that is not in the BEFORE snapshot and
# belongs to Kubernetes, CNI or this harness. The snapshot is empty when the machine had no rules at all
# (iptables-nft prints nothing then): the sentinel line keeps awk's first-file test (FNR == NR) true for
# the snapshot only; without it an empty snapshot made every rule look recorded, and none was removed.
node_restore_iptables() { # tool before-file
  local tool="$1" before="$2" now table line chain
  now="$(mktemp)"
  "$tool-save" >"$now" 2>/dev/null || { rm -f "$now"; return 0; }
  local new_rules new_chains
  new_rules="$(mktemp)"; new_chains="$(mktemp)"
  awk -v out_r="$new_rules" -v out_c="$new_chains" '
    FNR == NR { if ($0 ~ /^\*/) t = substr($0, 2); else seen[t SUBSEP $0] = 1; next }
    /^\*/ { t = substr($0, 2); next }
    /^:/ { split($0, a, " "); if (!((t SUBSEP a[1] " " a[2] " " a[3]) in seen) && !(t SUBSEP $0 in seen)) {
             name = substr(a[1], 2); if (name ~ /^(KUBE-|CNI-|OXKA-)/) print t " " name > out_c } next }
    /^-A / { if (!((t SUBSEP $0) in seen) && $0 ~ /(KUBE-|CNI-|OXKA-|oxkapod0|oxkanode0|10\.24[789]\.)/) print t " " $0 > out_r }
  ' <(echo "*oxka-before"; sed -E 's/\[[0-9]+:[0-9]+\]//' "$before") <(sed -E 's/\[[0-9]+:[0-9]+\]//' "$now")
  # Rules first (they may jump to the chains), newest first.
  tac "$new_rules" | while read -r table line; do
    eval "set -- ${line/-A /-D }" 2>/dev/null || continue
    "$tool" -w -t "$table" "$@" 2>/dev/null || true
  done
  while read -r table chain; do "$tool" -w -t "$table" -F "$chain" 2>/dev/null || true; done <"$new_chains"
  while read -r table chain; do "$tool" -w -t "$table" -X "$chain" 2>/dev/null || true; done <"$new_chains"
  # Tables that did not exist before and are empty again (iptables-nft creates nat, mangle, ... on first
  # use) are removed too, when nft is there to do it.
  local family=ip
  [[ "$tool" == ip6tables ]] && family=ip6
  if command -v nft >/dev/null; then
    "$tool-save" 2>/dev/null | awk '/^\*/ {t = substr($0, 2); n[t] = 0; next} /^-A / {n[t]++} END {for (t in n) if (n[t] == 0) print t}' |
      while read -r table; do
        grep -qx "\*$table" "$before" || nft delete table "$family" "$table" 2>/dev/null || true
      done
  fi
  rm -f "$now" "$new_rules" "$new_chains"
}

node_restore_state() {
  local s="$NODE_DIR/state"
  [[ -d "$s" ]] || return 0
  # Mounts under the work dir (overlay rootfs, shm, secrets, the kubelet's self bind-mount), deepest first.
  local m
  for _ in 1 2 3; do
    awk -v d="$NODE_DIR" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  # Network namespaces the CNI plugins made (containerd names them cni-UUID).
  local ns
  for ns in $(ls -1 /run/netns 2>/dev/null); do
    grep -qxF "$ns" "$s/netns" 2>/dev/null && continue
    [[ "$ns" == cni-* ]] || continue
    umount "/run/netns/$ns" 2>/dev/null || umount -l "/run/netns/$ns" 2>/dev/null || true
    rm -f "/run/netns/$ns"
  done
  # Links: veths left on the pod bridge, the bridge, the node's own link.
  local link
  for link in $(ip -o link show master "$POD_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
    ip link delete "$link" 2>/dev/null || true
  done
  for link in "$POD_BRIDGE" "$NODE_LINK"; do
    grep -qxF "$link" "$s/links" || ip link delete "$link" 2>/dev/null || true
  done
  node_restore_iptables iptables "$s/iptables"
  node_restore_iptables ip6tables "$s/ip6tables"
  # Cgroups the kubelet created: kill what is left inside, then remove them deepest first.
  local cg
  while read -r cg; do
    [[ -d "$cg" ]] || continue
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d "$cg" ]] && node_log "could not remove cgroup $cg"
  done <"$s/absent-cgroups"
  # Sysctls back to their recorded values, unless someone else (another test on this machine) changed
  # them since the node came up: then theirs is kept, and said.
  local key eq value cur up
  while read -r key eq value; do
    cur="$(sysctl -n "$key" 2>/dev/null)" || continue
    [[ "$cur" == "$value" ]] && continue
    up="$(awk -v k="$key" '$1 == k {sub(/^[^=]*= ?/, ""); print; exit}' "$s/sysctl.up" 2>/dev/null || true)"
    if [[ -f "$s/sysctl.up" && "$cur" != "$up" ]]; then
      node_log "sysctl $key is $cur, changed by someone else while the node ran (was $value before it): left alone"
      continue
    fi
    sysctl -qw "$key=$value" 2>/dev/null || node_log "could not restore sysctl $key=$value (now $cur)"
  done <"$s/sysctl"
  # Global directories that did not exist before.
  local d
  while read -r d; do
    [[ -e "$d" ]] || continue
    awk -v d="$d" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$d"
  done <"$s/absent-dirs"
}

# --- processes -----------------------------------------------------------------------------------

# node_daemon NAME CMD...: starts CMD in the background with its log in DIR/logs/NAME.log; the PID
# recorded is the daemon's own.
node_daemon() {
  local name="$1"
  shift
  # (fd 7, the node lock, is not inherited: a daemon orphaned by a killed run must not hold the lock)
  "$@" >"$NODE_DIR/logs/$name.log" 2>&1 7>&- &
  echo $! >"$NODE_DIR/pids/$name"
}

node_kill() { # name [signal]
  local f="$NODE_DIR/pids/$1" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

# --- bring-up ------------------------------------------------------------------------------------

node_network() {
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  # A bridge with no ports holds the address (this kernel has no dummy links); its local route is enough.
  ip link add "$NODE_LINK" type bridge
  ip addr add "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_LINK" up
  mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  cat >"$NODE_DIR/cni/net.d/10-oxka.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "oxka-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Pods may reach pods, services and this node; nothing else (no route out of the machine).
  iptables -w -N OXKA-E2E-ISOLATE
  iptables -w -A OXKA-E2E-ISOLATE -d "$POD_CIDR" -j RETURN
  iptables -w -A OXKA-E2E-ISOLATE -d "$SERVICE_CIDR" -j RETURN
  iptables -w -A OXKA-E2E-ISOLATE -j DROP
  iptables -w -I FORWARD 1 -s "$POD_CIDR" -j OXKA-E2E-ISOLATE
}

node_containerd() {
  local c="$NODE_DIR/containerd"
  mkdir -p "$c"
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$c/containerd.sock"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$c/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "docker.io/library/oxka-pause:$IMAGE_VERSION"
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$CNI_BIN"
      conf_dir = "$NODE_DIR/cni/net.d"
EOF
  CONTAINERD_SOCK="$c/containerd.sock"
  CTR=(ctr -a "$CONTAINERD_SOCK" -n k8s.io)
  node_daemon containerd containerd --config "$c/config.toml"
  local deadline=$((SECONDS + 30))
  until "${CTR[@]}" version >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { node_log "containerd did not start"; tail -20 "$NODE_DIR/logs/containerd.log" >&2; return 1; }
    sleep 0.3
  done
}

node_import_images() { # archives...
  local a
  for a in "$@"; do
    "${CTR[@]}" images import --no-unpack=false "$a" >/dev/null || { node_log "ctr import $a failed"; return 1; }
  done
}

node_kubelet() {
  local k="$NODE_DIR/kubelet"
  mkdir -p "$k" "$NODE_DIR/pod-logs"
  echo "# pods of the e2e node: cluster DNS only, no upstream" >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $CP_DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $NODE_DIR/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
rotateCertificates: false
EOF
  node_daemon kubelet "$K8S_BIN/kubelet" --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$ADMIN_KUBECONFIG" \
    --root-dir "$k" --cert-dir "$k/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
}

node_kube_proxy() {
  cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $ADMIN_KUBECONFIG}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
nodePortAddresses: ["$NODE_IP/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
  node_daemon kube-proxy "$K8S_BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml" --v=1
}

node_coredns() {
  cat >"$NODE_DIR/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $ADMIN_KUBECONFIG
        pods insecure
        ttl 5
    }
    cache 5
}
EOF
  node_daemon coredns "$K8S_BIN/coredns" -conf "$NODE_DIR/Corefile"
}

node_storage() { # count
  mkdir -p "$NODE_DIR/pv"
  local i objects=""
  objects+="apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local, annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
"
  for i in $(seq -w 1 "$1"); do
    mkdir -p "$NODE_DIR/pv/pv$i"
    chmod 0777 "$NODE_DIR/pv/pv$i"
    objects+="---
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-pv$i, labels: {oxka.io/e2e-node: \"true\"}}
spec:
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  hostPath: {path: $NODE_DIR/pv/pv$i, type: Directory}
"
  done
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" apply -f - <<<"$objects" >/dev/null
}

node_wait_ready() { # seconds
  local deadline=$((SECONDS + $1))
  until kubectl --kubeconfig "$ADMIN_KUBECONFIG" get node "$NODE_NAME" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; do
    if ((SECONDS > deadline)); then
      node_log "node $NODE_NAME not Ready after $1 s; kubelet log tail:"
      tail -30 "$NODE_DIR/logs/kubelet.log" >&2
      return 1
    fi
    local p
    for p in containerd kubelet kube-proxy coredns; do
      kill -0 "$(cat "$NODE_DIR/pids/$p" 2>/dev/null)" 2>/dev/null || { node_log "$p exited:"; tail -30 "$NODE_DIR/logs/$p.log" >&2; return 1; }
    done
    sleep 1
  done
}

# node_start DIR IMAGE_ARCHIVE...: the whole node, images imported, node Ready and DNS answering.
node_start() {
  NODE_DIR="$1"
  shift
  [[ $EUID -eq 0 ]] || { node_log "the real node needs root"; return 1; }
  node_need_packages
  mkdir -p "$NODE_RUN"
  exec 7>"$NODE_RUN/lock"
  # One node at a time on a machine (fixed addresses): wait for another run's node to go away.
  if ! flock -n 7; then
    node_log "another real node is running (lock $NODE_RUN/lock): waiting up to ${OXKA_NODE_LOCK_WAIT:-1800} s"
    flock -w "${OXKA_NODE_LOCK_WAIT:-1800}" 7 || { node_log "the other real node did not go away"; return 1; }
  fi
  if [[ -f "$NODE_RUN/current" ]]; then
    local old; old="$(cat "$NODE_RUN/current")"
    node_log "a previous run left a node in $old: tearing it down first"
    (NODE_DIR="$old"; node_stop_in "$old") || true
    rm -rf "$old/containerd" "$old/kubelet" "$old/pv" "$old/etcd"
    node_log "its logs stay in $old/logs"
  fi
  mkdir -p "$NODE_DIR/logs" "$NODE_DIR/pids"
  echo "$NODE_DIR" >"$NODE_RUN/current"
  # Rules an earlier run left behind (say, a kube-proxy that wrote its chains again while the teardown
  # removed them) would make this run's setup fail ("Chain already exists"): remove every rule and chain
  # of Kubernetes, CNI and this harness first, as long as no kube-proxy of another node is running.
  if ! pgrep -x kube-proxy >/dev/null \
    && { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | grep -qE '^:(KUBE-|CNI-|OXKA-)'; then
    node_log "removing the iptables rules and chains an earlier run left behind"
    local none; none="$(mktemp)"; echo "*none" >"$none"
    node_restore_iptables iptables "$none"
    node_restore_iptables ip6tables "$none"
    rm -f "$none"
  fi
  node_record_state
  node_network
  CP_ADDRESS="$NODE_IP" CP_SERVICE_CIDR="$SERVICE_CIDR" CP_REAL_NODE=1 cp_start "$NODE_DIR" 7>&-
  for p in etcd kube-apiserver kube-controller-manager; do mv "$NODE_DIR/$p.pid" "$NODE_DIR/pids/$p"; done
  node_daemon kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$ADMIN_KUBECONFIG" \
    --authentication-kubeconfig "$ADMIN_KUBECONFIG" --authorization-kubeconfig "$ADMIN_KUBECONFIG" \
    --leader-elect=false --secure-port "$(free_port)" --bind-address 127.0.0.1
  node_containerd
  node_import_images "$@"
  node_kubelet
  node_kube_proxy
  node_coredns
  node_wait_ready 120
  node_storage "${OXKA_NODE_PVS:-24}"
  # What the node set (kubelet, kube-proxy): restored at the end unless changed again by someone else.
  sysctl -a 2>/dev/null | grep -E "$NODE_SYSCTLS" >"$NODE_DIR/state/sysctl.up" || true
}

node_stop_in() { # dir
  local NODE_DIR="$1"
  [[ -d "$NODE_DIR" ]] || { rm -f "$NODE_RUN/current"; return 0; }
  local c="$NODE_DIR/containerd" p
  for p in coredns kube-proxy kubelet; do node_kill "$p"; done
  # Every container and sandbox: killed, deleted, so the shims exit.
  if [[ -S "$c/containerd.sock" ]] && [[ -f "$NODE_DIR/pids/containerd" ]]; then
    local ctr=(ctr -a "$c/containerd.sock" -n k8s.io) t
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks delete -f "$t" >/dev/null 2>&1 || true; done
  fi
  node_kill containerd
  # Shims that outlived containerd: the ones started with this node's socket, by PID.
  local pid
  for pid in $(pgrep -f -- "-address $c/containerd.sock" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  for p in kube-scheduler kube-controller-manager kube-apiserver etcd; do node_kill "$p"; done
  node_restore_state
  rm -f "$NODE_RUN/current"
}

# node_stop: stops everything node_start started and restores the machine. Keeps DIR/logs.
node_stop() {
  [[ -n "${NODE_DIR:-}" ]] || return 0
  node_stop_in "$NODE_DIR"
}

# Collects what a failure needs into DIR/logs: every pod's logs (kubectl logs, previous too), pods,
# events and the KafkaClusters. The daemons' own logs are there already.
node_collect_logs() {
  local out="$NODE_DIR/logs/cluster" k=(kubectl --kubeconfig "$ADMIN_KUBECONFIG")
  mkdir -p "$out"
  "${k[@]}" get all,pvc,pv,kafkaclusters -A -o wide >"$out/objects.txt" 2>&1 || true
  "${k[@]}" get events -A --sort-by=.lastTimestamp >"$out/events.txt" 2>&1 || true
  "${k[@]}" describe pods -A >"$out/pods-describe.txt" 2>&1 || true
  local ns name c
  "${k[@]}" get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}' 2>/dev/null |
    while read -r ns name; do
      for c in $("${k[@]}" get pod -n "$ns" "$name" -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}' 2>/dev/null); do
        "${k[@]}" logs -n "$ns" "$name" -c "$c" >"$out/$ns.$name.$c.log" 2>&1 || true
        "${k[@]}" logs -n "$ns" "$name" -c "$c" --previous >"$out/$ns.$name.$c.previous.log" 2>/dev/null || rm -f "$out/$ns.$name.$c.previous.log"
      done
    done
}
