#!/usr/bin/env bash
# Kafka's kafka-server-start.sh, for oxka: starts a broker; -daemon starts it in the background with its
# log in $LOG_DIR/server.log. KAFKA_HEAP_OPTS is read as Kafka reads it.
if [[ $# -lt 1 ]]; then
  echo "USAGE: $0 [-daemon] server.properties [--override property=value]*"
  exit 1
fi
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" broker "$@"
