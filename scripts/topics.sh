#!/usr/bin/env bash
# Create the pipeline's topics if they are missing: transactions (3 partitions, so up to three
# detectors share the work), anomalies and transactions.dlq. Idempotent. Arguments (e.g.
# --client-config FILE, -X key=value) go to the inspector that creates them.
#
#   scripts/topics.sh --state-for GROUP    also GROUP's changelog of per-key state,
#                                          GROUP.transactions.state (compacted, 3 partitions)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
TOPICS=(transactions:3 anomalies:1 transactions.dlq:1)
run_process inspector create-topics "${TOPICS[@]}" "$@"
