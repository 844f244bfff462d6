#!/usr/bin/env bash
# The integration tests scripts/test-all.sh runs beside the fault checker rather than in the plain
# `cargo test` run (they mostly wait, on failovers and timeouts or on Java tools starting): the
# replicated-transactions tests (#[ignore]d in the plain run) and then the native tools' comparisons
# with Kafka's (`test = false` in broker/Cargo.toml). One after the other, so that beside the checker
# and the API-server e2e they add about one core at most.
set -euo pipefail
cargo test -p oxka-broker --test transactions_cluster -- --ignored
cargo test -p oxka-broker --test native_tools
