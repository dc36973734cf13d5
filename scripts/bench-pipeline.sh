#!/usr/bin/env bash
# Pipeline benchmark on the local broker (or $KAFKA_BOOTSTRAP), all in one run on the same
# seeded records: a plain pass-through (the ceiling), our detector with one and with two
# instances (started first, so the measurement holds no group join), and the reference Python detector
# (../shared/reference/python) on the first PYTHON_RECORDS of them.
#
#   scripts/bench-pipeline.sh            (RECORDS=200000 PYTHON_RECORDS=3000 by default)
#
# Then one detector under a steady offered load (LATENCY_RATE=10000 records/s for
# LATENCY_SECONDS=20): end-to-end latency from each transaction's Kafka timestamp to its
# anomaly's, p50/p95/p99 over every anomaly, from `inspector stats --once --json`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

RECORDS=${RECORDS:-200000}
PYTHON_RECORDS=${PYTHON_RECORDS:-3000}
# The latency line: one detector under a steady offered load.
LATENCY_RATE=${LATENCY_RATE:-10000}
LATENCY_SECONDS=${LATENCY_SECONDS:-20}
run_id="bench-$$-$(date +%s)"
mkdir -p "$RUN_DIR"

started_broker=0
cleanup() { if [ "$started_broker" = 1 ]; then scripts/broker.sh stop || true; fi; }
trap cleanup EXIT
build_release
(cd "$ROOT" && cargo build --release --quiet -p detector --example passthrough) || die "cargo build failed"
export NO_BUILD=1
if ! external_cluster && ! broker_answers "$LOCAL_BROKER"; then
    scripts/broker.sh start
    started_broker=1
fi
export KAFKA_BOOTSTRAP
KAFKA_BOOTSTRAP=$(bootstrap)

model="$RUN_DIR/$run_id-model.bin"
scripts/trainer.sh fit --out "$model" >/dev/null 2>&1

# `detector: ... first_ms=A last_ms=B` → fields
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# Partitions a detector owns now: its last "assigned partitions" log line.
owned() { grep "assigned partitions" "$1" 2>/dev/null | tail -n 1 | grep -o '/[0-9]*' | wc -l; }

# measure N [passthrough]: N detectors (or one plain consume→produce pass-through, the ceiling
# the broker allows) join a group on a fresh topic; once they share its 3 partitions, the same
# seeded records are produced; the rate spans the first record any of them read to the last
# batch any of them acknowledged.
measure() {
    local n=$1 kind=${2:-detector} tx="$run_id-tx-$1-${2:-detector}" pids=() logs=() i
    scripts/inspector.sh create-topics "$tx:3" "$run_id-anomalies-$n" "$run_id-dlq" 2>/dev/null
    for i in $(seq "$n"); do
        logs+=("$RUN_DIR/$run_id-$kind-$n-$i")
        if [ "$kind" = passthrough ]; then
            RUST_LOG=info "$(bin examples/passthrough)" --input-topic "$tx" \
                --output-topic "$run_id-anomalies-$n" --group "$run_id-p$n" --idle-exit 3 \
                >"${logs[-1]}.out" 2>"${logs[-1]}.log" &
        else
            RUST_LOG=info "$(bin detector)" --model "$model" --input-topic "$tx" \
                --output-topic "$run_id-anomalies-$n" --dlq-topic "$run_id-dlq" \
                --group "$run_id-g$n" --idle-exit 3 >"${logs[-1]}.out" 2>"${logs[-1]}.log" &
        fi
        pids+=($!)
    done
    local deadline=$((SECONDS + 60)) total
    while :; do
        total=0
        for i in "${logs[@]}"; do total=$((total + $(owned "$i.log"))); done
        [ "$total" = 3 ] && for i in "${logs[@]}"; do [ "$(owned "$i.log")" -gt 0 ] || total=0; done
        [ "$total" = 3 ] && break
        [ $SECONDS -lt $deadline ] || die "the detectors did not share the partitions within 60 s"
        sleep 0.2
    done
    scripts/generator.sh --topic "$tx" --count "$RECORDS" --rate 0 --seed 1 >/dev/null 2>&1
    wait "${pids[@]}"
    local first=99999999999999 last=0 consumed=0 out
    for i in "${logs[@]}"; do
        out=$(cat "$i.out")
        consumed=$((consumed + $(field consumed "$out")))
        first=$(( $(field first_ms "$out") < first ? $(field first_ms "$out") : first ))
        last=$(( $(field last_ms "$out") > last ? $(field last_ms "$out") : last ))
    done
    [ "$consumed" = "$RECORDS" ] || log "warning: $n detector(s) read $consumed of $RECORDS records"
    awk -v n="$consumed" -v s="$first" -v e="$last" 'BEGIN { printf "%.0f", n / ((e - s) / 1000) }'
}

# latency: one detector joins a fresh topic's group; the generator then offers LATENCY_RATE
# records per second; the percentiles come from the records' and anomalies' timestamps.
latency() {
    local tx="$run_id-lat-tx" an="$run_id-lat-anomalies" group="$run_id-lat" log="$RUN_DIR/$run_id-lat"
    scripts/inspector.sh create-topics "$tx:3" "$an" "$run_id-dlq" 2>/dev/null
    RUST_LOG=info "$(bin detector)" --model "$model" --input-topic "$tx" --output-topic "$an" \
        --dlq-topic "$run_id-dlq" --group "$group" --idle-exit 3 >"$log.out" 2>"$log.log" &
    local pid=$! deadline=$((SECONDS + 60))
    until [ "$(owned "$log.log")" = 3 ]; do
        [ $SECONDS -lt $deadline ] || die "the detector did not get the partitions within 60 s"
        sleep 0.2
    done
    scripts/generator.sh --topic "$tx" --count $((LATENCY_RATE * LATENCY_SECONDS)) \
        --rate "$LATENCY_RATE" --seed 2 >/dev/null 2>&1
    wait "$pid"
    scripts/inspector.sh stats --once --json --input-topic "$tx" --output-topic "$an" \
        --dlq-topic "$run_id-dlq" --group "$group" 2>/dev/null |
        python3 -c 'import json,sys; l=json.load(sys.stdin)["latency_ms"]; print("%.1f %.1f %.1f %d" % (l["p50"], l["p95"], l["p99"], l["count"]))'
}

log "pass-through (no scoring), $RECORDS records"
pass_rate=$(measure 1 passthrough)
log "one detector, $RECORDS records"
one_rate=$(measure 1)
log "two detectors, $RECORDS records"
two_rate=$(measure 2)
tx="$run_id-tx-1-detector"

py_rate=""
if scripts/python-env.sh >/dev/null 2>&1; then
    log "reference Python detector ($PYTHON_RECORDS records)"
    python_model="$RUN_DIR/$run_id-model.joblib"
    scripts/inspector.sh create-topics "$run_id-anomalies-py" 2>/dev/null
    .venv/bin/python ../shared/reference/python/seed_train.py --out "$python_model" >/dev/null
    py=$(.venv/bin/python ../shared/reference/python/seed_detector.py --bootstrap "$KAFKA_BOOTSTRAP" \
        --input "$tx" --output "$run_id-anomalies-py" --group "$run_id-py" --model "$python_model" \
        --max-messages "$PYTHON_RECORDS" --idle-exit 10)
    py_rate=$(field rate "$py")
fi

log "latency: one detector, $LATENCY_RATE records/s offered for $LATENCY_SECONDS s"
read -r lat_p50 lat_p95 lat_p99 lat_count < <(latency)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f×", a / b; else print "n/a" }'; }
share() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
printf '\n%-40s %12s %14s %12s\n' "($RECORDS records, broker $KAFKA_BOOTSTRAP)" "records/s" "vs pass-through" "vs Python"
printf '%-40s %12s %14s %12s\n' "pass-through (no scoring)" "$pass_rate" "100%" "$(ratio "$pass_rate" "${py_rate:-0}")"
printf '%-40s %12s %14s %12s\n' "ours, 1 detector" "$one_rate" "$(share "$one_rate" "$pass_rate")" "$(ratio "$one_rate" "${py_rate:-0}")"
printf '%-40s %12s %14s %12s\n' "ours, 2 detectors (same group)" "$two_rate" "$(share "$two_rate" "$pass_rate")" "$(ratio "$two_rate" "${py_rate:-0}")"
printf '%-40s %12s %14s %12s\n' "reference Python ($PYTHON_RECORDS records)" "${py_rate:-not run}" "" "1×"
printf '\nend-to-end latency, one detector, %s records/s offered for %s s (%s anomalies): p50 %s ms, p95 %s ms, p99 %s ms\n' \
    "$LATENCY_RATE" "$LATENCY_SECONDS" "$lat_count" "$lat_p50" "$lat_p95" "$lat_p99"
