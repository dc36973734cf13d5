#!/usr/bin/env bash
# Run the trainer process (release build, built on first use) against $KAFKA_BOOTSTRAP or the
# local broker. All arguments go to `trainer`; see `scripts/trainer.sh --help`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
run_process trainer "$@"
