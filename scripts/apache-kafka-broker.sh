#!/usr/bin/env bash
# Runs a single-node Apache Kafka 4.x broker (KRaft, broker+controller in one JVM) in the foreground:
# the reference oxka is compared with. Used by bench/run.sh and by the integration tests when
# OXKA_TEST_TARGET=kafka (to prove a test against the real thing).
#
#   scripts/apache-kafka-broker.sh <data-dir> <port> [key=value ...]
#
# Writes <data-dir>/server.properties (the given key=value lines override the defaults), formats the
# storage on first start, then execs the broker (heap: KAFKA_HEAP_OPTS, default -Xmx1G -Xms1G as the seed).
# The KRaft controller listens on <port>+1. With KAFKA_FORMAT_ONLY=1 it stops after formatting (the
# cold-start bench times the broker's own start, `scripts/kafka 4 server-start <data-dir>/server.properties`).
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 <data-dir> <port> [key=value ...]" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$1"
port="$2"
shift 2
cport=$((port + 1))
mkdir -p "$dir"
props="$dir/server.properties"

{
  cat <<EOF
process.roles=broker,controller
node.id=0
controller.quorum.voters=0@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  for kv in "$@"; do echo "$kv"; done
} >"$props.tmp"
# Later keys win in java.util.Properties, so overrides simply follow the defaults.
mv "$props.tmp" "$props"

# The cluster id is made once per data dir; a restart formats nothing (--ignore-formatted).
[[ -s "$dir/cluster.id" ]] || "$here/kafka" 4 storage random-uuid >"$dir/cluster.id"
"$here/kafka" 4 storage format --ignore-formatted -t "$(cat "$dir/cluster.id")" -c "$props" \
  >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
[[ "${KAFKA_FORMAT_ONLY:-0}" == 1 ]] && exit 0
exec "$here/kafka" 4 server-start "$props"
