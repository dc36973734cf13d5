#!/usr/bin/env bash
# Create .venv with what the reference Python pipeline (reference/python) needs,
# unless it is already there. Used by the interoperability tests and the benchmarks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
VENV="$ROOT/.venv"
PACKAGES=(numpy scikit-learn joblib confluent-kafka)
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import numpy, sklearn, joblib, confluent_kafka' 2>/dev/null; then
    exit 0
fi
log "creating the Python environment in $VENV (${PACKAGES[*]})"
python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" || die "pip install failed"
