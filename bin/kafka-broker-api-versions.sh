#!/usr/bin/env bash
# Kafka's kafka-broker-api-versions.sh, native (no JVM): runs `oxka tool broker-api-versions` with Kafka's flags; output and exit codes
# as Kafka 4.x's tool (differences in docs/tools.md).
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" tool broker-api-versions "$@"
