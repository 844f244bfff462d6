#!/usr/bin/env bash
# Kafka's kafka-log-dirs.sh, native (no JVM): runs `oxka tool log-dirs` with Kafka's flags; output and
# exit codes as Kafka 4.x's tool (differences in docs/tools.md).
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" tool log-dirs "$@"
