#!/usr/bin/env bash
# The test command: installs what is missing, starts the local broker, runs every test, stops
# what it started. On a fresh two-core machine the first run installs Tansu (~20 min).
#
#   scripts/test.sh [extra cargo test arguments]
#
# With KAFKA_BOOTSTRAP set, the integration tests use that cluster and no broker is started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs"

# 1. The reference Python pipeline's environment, for the interoperability tests.
"$ROOT/scripts/python-env.sh"

# 2. The broker.
started_broker=0
cleanup() {
    if [ "$started_broker" = 1 ]; then "$ROOT/scripts/broker.sh" stop || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! external_cluster; then
    "$ROOT/scripts/broker.sh" install
    if ! broker_answers "$LOCAL_BROKER"; then
        "$ROOT/scripts/broker.sh" start
        started_broker=1
    fi
fi
export KAFKA_BOOTSTRAP="$(bootstrap)"
export REFERENCE_PYTHON="$ROOT/.venv/bin/python"

# 3. Everything: unit tests, doc tests, integration tests against the broker.
log "running the tests against $KAFKA_BOOTSTRAP"
cargo test --workspace --locked "$@"
