#!/usr/bin/env bash
# Pipeline benchmark on the local broker (or $KAFKA_BOOTSTRAP), all in one run on the same
# pre-produced records: our detector with one and with two instances, and the reference Python
# detector (../shared/reference/python) on the first PYTHON_RECORDS of them.
#
#   scripts/bench-pipeline.sh            (RECORDS=200000 PYTHON_RECORDS=3000 by default)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

RECORDS=${RECORDS:-200000}
PYTHON_RECORDS=${PYTHON_RECORDS:-3000}
run_id="bench-$$-$(date +%s)"
mkdir -p "$RUN_DIR"

started_broker=0
cleanup() { if [ "$started_broker" = 1 ]; then scripts/broker.sh stop || true; fi; }
trap cleanup EXIT
build_release
export NO_BUILD=1
if ! external_cluster && ! broker_answers "$LOCAL_BROKER"; then
    scripts/broker.sh start
    started_broker=1
fi
export KAFKA_BOOTSTRAP
KAFKA_BOOTSTRAP=$(bootstrap)

tx="$run_id-tx"
scripts/inspector.sh create-topics "$tx:3" "$run_id-anomalies-1" "$run_id-anomalies-2" \
    "$run_id-anomalies-py" "$run_id-dlq" 2>/dev/null
model="$RUN_DIR/$run_id-model.bin"
scripts/trainer.sh fit --out "$model" >/dev/null 2>&1
log "producing $RECORDS records"
scripts/generator.sh --topic "$tx" --count "$RECORDS" --rate 0 --seed 1 2>/dev/null

# `detector: ... first_ms=A last_ms=B` → fields
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

detect() { # group output-topic
    "$(bin detector)" --model "$model" --input-topic "$tx" --output-topic "$2" \
        --dlq-topic "$run_id-dlq" --group "$1" --idle-exit 3 2>/dev/null
}

log "one detector"
one=$(detect "$run_id-g1" "$run_id-anomalies-1")
one_rate=$(field rate "$one")

log "two detectors"
detect "$run_id-g2" "$run_id-anomalies-2" >"$RUN_DIR/$run_id-d1.out" &
first=$!
detect "$run_id-g2" "$run_id-anomalies-2" >"$RUN_DIR/$run_id-d2.out"
wait "$first"
a=$(cat "$RUN_DIR/$run_id-d1.out") b=$(cat "$RUN_DIR/$run_id-d2.out")
start=$(printf '%s\n' "$(field first_ms "$a")" "$(field first_ms "$b")" | grep -v '^0$' | sort -n | head -1)
end=$(printf '%s\n' "$(field last_ms "$a")" "$(field last_ms "$b")" | sort -n | tail -1)
consumed=$(( $(field consumed "$a") + $(field consumed "$b") ))
two_rate=$(awk -v n="$consumed" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", n / ((e - s) / 1000) }')

py_rate=""
if scripts/python-env.sh >/dev/null 2>&1; then
    log "reference Python detector ($PYTHON_RECORDS records)"
    python_model="$RUN_DIR/$run_id-model.joblib"
    .venv/bin/python ../shared/reference/python/seed_train.py --out "$python_model" >/dev/null
    py=$(.venv/bin/python ../shared/reference/python/seed_detector.py --bootstrap "$KAFKA_BOOTSTRAP" \
        --input "$tx" --output "$run_id-anomalies-py" --group "$run_id-py" --model "$python_model" \
        --max-messages "$PYTHON_RECORDS" --idle-exit 10)
    py_rate=$(field rate "$py")
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f×", a / b; else print "n/a" }'; }
printf '\n%-40s %14s %12s\n' "detector ($RECORDS records, broker $KAFKA_BOOTSTRAP)" "records/s" "vs Python"
printf '%-40s %14s %12s\n' "ours, 1 instance" "$one_rate" "$(ratio "$one_rate" "${py_rate:-0}")"
printf '%-40s %14s %12s\n' "ours, 2 instances (same group)" "$two_rate" "$(ratio "$two_rate" "${py_rate:-0}")"
printf '%-40s %14s %12s\n' "reference Python ($PYTHON_RECORDS records)" "${py_rate:-not run}" "1×"
