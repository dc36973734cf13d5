#!/usr/bin/env bash
# Accounting under disturbance: a seeded stream of ids 0..N-1 (N=100000 by default, 5000/s)
# through the detectors while, one scenario at a time, a detector is killed with SIGKILL,
# detectors are added and removed, the broker is killed and restarted, and the broker is down
# for 10 s. Prints, per scenario, the anomalies expected (offline scoring with the same model),
# found, lost, unexpected and duplicated, and the transactions missing or duplicated.
#
#   scripts/accounting.sh [--records N] [--rate R] [--seed S]
#
# It runs its own Tansu broker (sqlite storage, a free port) because it kills it; logs go to
# .run/accounting-<time>/. Exits 1 if a scenario lost or invented anything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --records|--rate|--seed) args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        *) die "unknown option $1 (use --records N, --rate R, --seed S)" ;;
    esac
done
scripts/broker.sh install
work_dir="$RUN_DIR/accounting-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$work_dir"
build_release
cargo build --release --quiet -p e2e --example accounting || die "cargo build failed"
log "accounting run, logs in $work_dir"
started=$SECONDS
status=0
"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/accounting" --work-dir "$work_dir" "${args[@]}" \
    || status=$?
log "took $((SECONDS - started)) s"
exit "$status"
