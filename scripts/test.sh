#!/usr/bin/env bash
# The test command: installs what is missing, starts a broker for the tests, runs every test,
# checks formatting and lints, and stops what it started. On a fresh two-core machine the
# first run installs Tansu (~20 min).
#
#   scripts/test.sh [extra cargo test arguments]
#
# The tests get a broker of their own: Tansu on 127.0.0.1:19092 with sqlite storage in
# .run/test (fresh each run), beside any broker you run on 9092. Not memory storage: Tansu
# 0.6.0's memory engine answers a fetch from inside a record batch with the next batch, so a
# consumer that resumes mid-batch (a restart, a rebalance) silently skips records; the sqlite
# engine does not. With KAFKA_BOOTSTRAP set, the tests use that cluster and start no broker.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs"

# 1. The reference Python pipeline's environment, for the interoperability tests.
"$ROOT/scripts/python-env.sh"

# 2. The broker.
started_broker=0
test_run_dir="$ROOT/.run/test"
test_broker() { BROKER_PORT=19092 RUN_DIR="$test_run_dir" "$ROOT/scripts/broker.sh" "$@"; }
cleanup() {
    if [ "$started_broker" = 1 ]; then test_broker stop || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Tansu is installed even with KAFKA_BOOTSTRAP set: the accounting test runs a broker of its
# own, because it kills and restarts it.
test_broker install
if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
    test_broker stop >/dev/null 2>&1 || true # a test broker left behind by a killed run
    rm -rf "$test_run_dir"
    test_broker start --storage sqlite
    started_broker=1
    export KAFKA_BOOTSTRAP="127.0.0.1:19092"
fi
export REFERENCE_PYTHON="$ROOT/.venv/bin/python"

# 3. Everything: unit tests, doc tests, integration tests against the broker.
log "running the tests against $KAFKA_BOOTSTRAP"
cargo test --workspace --locked "$@"

# 4. The code as a reviewer reads it: formatted, no clippy warning, documentation that builds
#    without a warning (broken links, missing docs).
log "checking formatting, lints and documentation"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
# 5. The workspace's shape: no crate leans on a process crate, no module cycle.
python3 scripts/check-layout.py
