#!/usr/bin/env bash
# The running oxka processes of this install: pid, role, id, listeners, data dirs, config file.
exec "$(dirname "${BASH_SOURCE[0]}")/oxka-run.sh" status "$@"
