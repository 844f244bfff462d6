#!/usr/bin/env bash
# Kafka's kafka-server-stop.sh, for oxka: stops this install's brokers (SIGTERM: a controlled shutdown)
# and waits until they have exited. --node-id=N stops only broker N; --process-role=controller the
# coordinators. "No kafka server to stop" and status 1 when none runs.
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" stop broker "$@"
