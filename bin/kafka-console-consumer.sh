#!/usr/bin/env bash
# Kafka's kafka-console-consumer.sh, native (no JVM): runs `oxka tool console-consumer` with Kafka's flags; output and
# exit codes as Kafka 4.x's tool (differences in docs/tools.md).
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" tool console-consumer "$@"
