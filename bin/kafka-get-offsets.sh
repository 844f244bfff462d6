#!/usr/bin/env bash
# Kafka's kafka-get-offsets.sh, native (no JVM): runs `oxka tool get-offsets` with Kafka's flags; output and
# exit codes as Kafka 4.x's tool (differences in docs/tools.md).
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" tool get-offsets "$@"
