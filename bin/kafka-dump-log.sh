#!/usr/bin/env bash
# Kafka's kafka-dump-log.sh, native (no JVM): runs `oxka tool dump-log` with Kafka's flags; output and
# exit codes as Kafka 4.x's tool (differences in docs/tools.md).
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" tool dump-log "$@"
