#!/usr/bin/env bash
# Kafka's zookeeper-server-start.sh, for oxka: starts a coordinator (oxka's ZooKeeper) from a
# zookeeper.properties file; -daemon starts it in the background with its log in $LOG_DIR/zookeeper.out.
if [[ $# -lt 1 ]]; then
  echo "USAGE: $0 [-daemon] zookeeper.properties"
  exit 1
fi
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" coordinator "$@"
