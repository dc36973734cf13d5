#!/usr/bin/env bash
# Run the generator process (release build, built on first use) against $KAFKA_BOOTSTRAP or the
# local broker. All arguments go to `generator`; see `scripts/generator.sh --help`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
run_process generator "$@"
