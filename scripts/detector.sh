#!/usr/bin/env bash
# Run the detector process (release build, built on first use) against $KAFKA_BOOTSTRAP or the
# local broker. All arguments go to `detector`; see `scripts/detector.sh --help`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
run_process detector "$@"
