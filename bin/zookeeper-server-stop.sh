#!/usr/bin/env bash
# Kafka's zookeeper-server-stop.sh, for oxka: stops this install's coordinators and waits until they
# have exited. "No zookeeper server to stop" and status 1 when none runs.
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" stop coordinator "$@"
