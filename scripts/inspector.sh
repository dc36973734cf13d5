#!/usr/bin/env bash
# Run the inspector process (release build, built on first use) against $KAFKA_BOOTSTRAP or the
# local broker. All arguments go to `inspector`; see `scripts/inspector.sh --help`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
run_process inspector "$@"
