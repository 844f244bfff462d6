#!/usr/bin/env bash
# Partitions at scale (issue 15): one broker holding PARTITIONS partitions (default 50,000, in topics of
# 1,000) under an open-file limit of 20,000, oxka against Apache Kafka 4.x, one after the other, each on
# a fresh data dir: how long CreateTopics takes for them all, the broker's RSS holding them, Metadata
# latency for all topics and for one topic (p50/p99, requests written by hand so no client library's
# cache is measured), a clean shutdown, and the restart to the first Metadata answer listing every
# partition with its leader.
#
#   bench/partitions.sh                              # 50,000 partitions, oxka then Kafka
#   PARTITIONS=10000 BROKERS=oxka bench/partitions.sh
#   OXKA_BIN=path/to/oxka bench/partitions.sh        # skip the release build
#
# Kafka maps two index files per segment: 50,000 partitions need more than Linux's default 65,530
# memory maps, so (as root) vm.max_map_count is raised to 262,144 for the run and restored after it,
# as Kafka's documentation asks of its operators.
set -euo pipefail

PARTITIONS="${PARTITIONS:-50000}"
PER_TOPIC="${PER_TOPIC:-1000}"
BROKERS="${BROKERS:-oxka kafka}"
FD_LIMIT="${FD_LIMIT:-20000}"
RECORDS=0 RECORD_SIZE=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

TOPICS=$(((PARTITIONS + PER_TOPIC - 1) / PER_TOPIC))
ulimit -n "$FD_LIMIT" || die "cannot set the open-file limit to $FD_LIMIT (hard limit $(ulimit -Hn))"
old_maps=$(sysctl -n vm.max_map_count)
restore_maps() { sysctl -qw vm.max_map_count="$old_maps" 2>/dev/null || true; }
if ((old_maps < 262144)); then
  sysctl -qw vm.max_map_count=262144 || die "cannot raise vm.max_map_count (Kafka needs it for $PARTITIONS partitions)"
  trap 'kill_nodes; restore_maps' EXIT
fi
py="${OXKA_CACHE:-$HOME/.cache/oxka}/venv/bin/python"

# create_all BOOTSTRAP: CreateTopics for TOPICS topics of PER_TOPIC partitions, then waits until Metadata lists every partition with a leader; prints seconds.
create_all() {
  "$py" - "$1" "$TOPICS" "$PER_TOPIC" <<'EOF'
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topics, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 300000})
start = time.time()
names = [f"scale-{i:04d}" for i in range(topics)]
# One topic per request, ten requests in flight: Kafka's controller refuses a request of more than
# 10,000 records ("Unable to perform excessively large batch operation"), a topic of 1,000 partitions
# being about 1,000.
for i in range(0, topics, 10):
    futures = []
    for n in names[i:i + 10]:
        futures += admin.create_topics([NewTopic(n, per, 1)], operation_timeout=300,
                                       request_timeout=300).values()
    for f in futures:
        f.result(timeout=600)
created = time.time() - start
while True:
    md = admin.list_topics(timeout=120)
    led = sum(1 for n in names if n in md.topics
              for p in md.topics[n].partitions.values() if p.leader >= 0)
    if led == topics * per:
        break
    if time.time() - start > 1800:
        sys.exit(f"only {led} of {topics * per} partitions have a leader after 30 minutes")
    time.sleep(1)
print(f"{created:.1f} {time.time() - start:.1f}")
EOF
}

# metadata_latency PORT: p50 and p99 in ms of Metadata v1 for all topics (20 requests) and for one
# topic (500 requests), on one connection, each answer read whole before the next request.
metadata_latency() {
  "$py" - "$1" <<'EOF'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
cid = 0
def ask(topics):
    global cid
    cid += 1
    client = b"oxka-bench"
    body = struct.pack(">hhih", 3, 1, cid, len(client)) + client
    if topics is None:
        body += struct.pack(">i", -1)
    else:
        body += struct.pack(">i", len(topics))
        for t in topics:
            body += struct.pack(">h", len(t)) + t.encode()
    start = time.perf_counter()
    s.sendall(struct.pack(">i", len(body)) + body)
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    left = struct.unpack(">i", head)[0]
    while left:
        left -= len(s.recv(min(left, 1 << 20)))
    return (time.perf_counter() - start) * 1000
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
ask(None)
whole = [ask(None) for _ in range(20)]
one = [ask(["scale-0000"]) for _ in range(500)]
print(f"{pct(whole, 50):.1f} {pct(whole, 99):.1f} {pct(one, 50):.2f} {pct(one, 99):.2f}")
EOF
}

# serves_all PORT: seconds until Metadata through PORT lists every partition with a leader (600 s at most).
serves_all() {
  "$py" - "127.0.0.1:$1" "$((TOPICS * PER_TOPIC))" <<'EOF'
import sys, time
from confluent_kafka.admin import AdminClient
start = time.time()
want = int(sys.argv[2])
while time.time() - start < 600:
    try:
        md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)
        led = sum(1 for t in md.topics.values() for p in t.partitions.values()
                  if p.leader >= 0 and t.topic.startswith("scale-"))
        if led >= want:
            print(f"{time.time() - start:.1f}")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit("not every partition was served within 600 s")
EOF
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R
for name in $BROKERS; do
  read -r port <<<"$(free_ports 1)"
  log "$name: starting on $port, creating $TOPICS topics of $PER_TOPIC partitions"
  start_broker "$name" "$port"
  pid="${NODE_PIDS[-1]}"
  out=$(create_all "127.0.0.1:$port") || die "$name: creating the topics failed"
  read -r created led <<<"$out"
  rss=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  log "$name: created in $created s (all led at $led s), RSS $rss MB, $fds open files; Metadata latency"
  out=$(metadata_latency "$port") || die "$name: the Metadata requests failed"
  read -r all50 all99 one50 one99 <<<"$out"
  log "$name: Metadata all topics p50/p99 $all50/$all99 ms, one topic $one50/$one99 ms"
  log "$name: clean shutdown"
  t0=$(date +%s.%N)
  stop_nodes 300
  down=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  log "$name: restart"
  t0=$(date +%s.%N)
  # A broker that cannot restart is a result, not the end of the run (Kafka under the same open-file
  # limit cannot: its log dir goes offline with "Too many open files").
  restarted=1
  die() { log "ERROR: $*"; return 1; }
  start_broker "$name" "$port" || restarted=0
  die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
  if ((restarted)) && serves_all "$port" >/dev/null; then
    up=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    rss_after=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/${NODE_PIDS[-1]}/status")
  else
    up=failed rss_after=-
    log "$name: the restart failed (log: $BENCH_DIR/$name/broker.log)"
  fi
  log "$name: stopped in $down s, restarted in $up s"
  stop_nodes 300
  R[$name]="$created $led $rss $fds $all50 $all99 $one50 $one99 $down $up $rss_after"
  rm -rf "${BENCH_DIR:?}/$name/data"
done

echo
echo "one broker, $((TOPICS * PER_TOPIC)) partitions ($TOPICS topics of $PER_TOPIC), open-file limit $FD_LIMIT, $(nproc) cores"
printf '%-8s %9s %9s %8s %6s %10s %10s %9s %9s %9s %10s %9s\n' broker "create s" "led s" "RSS MB" fds \
  "all p50" "all p99" "one p50" "one p99" "stop s" "restart s" "RSS MB"
for name in $BROKERS; do
  # shellcheck disable=SC2086 # the row is a word list
  printf '%-8s %9s %9s %8s %6s %10s %10s %9s %9s %9s %10s %9s\n' "$name" ${R[$name]}
done
if [[ -n "${R[oxka]:-}" && -n "${R[kafka]:-}" ]]; then
  read -r -a o <<<"${R[oxka]}"
  read -r -a k <<<"${R[kafka]}"
  echo "oxka/kafka: all partitions led $(ratio "${o[1]}" "${k[1]}"), RSS $(ratio "${o[2]}" "${k[2]}"), Metadata all p99 $(ratio "${o[5]}" "${k[5]}"), one p99 $(ratio "${o[7]}" "${k[7]}"), restart $(ratio "${o[9]}" "${k[9]}")"
fi
echo "(latencies in ms; the second RSS is after the restart)"
echo "load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw output: $BENCH_DIR"
