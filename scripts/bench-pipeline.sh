#!/usr/bin/env bash
# Pipeline benchmark on the local broker (or $KAFKA_BOOTSTRAP), all in one run. RECORDS seeded
# records are produced once into a 3-partition topic; then, on those same records, each reader
# in its own group: a plain pass-through (consume → produce, no scoring: the ceiling the broker
# allows), our detector, and the reference Python detector (reference/python) on
# the first PYTHON_RECORDS. Pass-through and detector alternate, REPEATS times each; the table
# shows medians.
#
# Two detectors: on Tansu the first member to join takes every partition at once and reads
# a pre-produced topic before the second one arrives, so this line forms the group on an empty
# topic first and produces the same records while the two run; beside it, the pass-through
# measured the same way.
#
#   scripts/bench-pipeline.sh            (RECORDS=200000 PYTHON_RECORDS=3000 REPEATS=3)
#
# SCENARIO=payments: the records are the payments scenario's (`generator --scenario payments
# --seed 7`), JSON records read through named features; the model is fitted by `trainer fit
# --jsonl --features PAYMENTS_FEATURES --contamination PAYMENTS_CONTAMINATION` on the
# TRAIN_RECORDS payments before them, and every record the detectors read comes after those.
# The reference Python detector, which reads only `data`, is left out.
#
# BASELINE_DETECTOR=PATH: another detector binary (say, a build of an earlier commit) read
# the same records in each round after ours, on the same model: its line shows what a change
# costs, measured in the same run.
#
# Then one detector under a steady offered load (LATENCY_RATE=10000 records/s for
# LATENCY_SECONDS=20): end-to-end latency from each transaction's Kafka timestamp to its
# anomaly's, p50/p95/p99 over every anomaly, from `inspector stats --once --json`; on the
# broker, then on librdkafka's mock cluster (no broker storage), with the detector's defaults
# and with a 1 ms fetch wait.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

RECORDS=${RECORDS:-200000}
PYTHON_RECORDS=${PYTHON_RECORDS:-3000}
REPEATS=${REPEATS:-3}
# The latency line: one detector under a steady offered load.
LATENCY_RATE=${LATENCY_RATE:-10000}
LATENCY_SECONDS=${LATENCY_SECONDS:-20}
# Extra flags for the latency line's detector and generator (e.g. "-X fetch.wait.max.ms=1").
LATENCY_DETECTOR_ARGS=${LATENCY_DETECTOR_ARGS:-}
LATENCY_GENERATOR_ARGS=${LATENCY_GENERATOR_ARGS:-}
# LINES=latency: only the latency lines.
LINES=${LINES:-all}
# synthetic (the generator's `data` records, trainer fit's default model) or payments.
SCENARIO=${SCENARIO:-synthetic}
TRAIN_RECORDS=${TRAIN_RECORDS:-40000}
PAYMENTS_FEATURES=${PAYMENTS_FEATURES:-amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday}
PAYMENTS_CONTAMINATION=${PAYMENTS_CONTAMINATION:-0.01}
run_id="bench-$$-$(date +%s)"
mkdir -p "$RUN_DIR"

started_broker=0
cleanup() { if [ "$started_broker" = 1 ]; then scripts/broker.sh stop || true; fi; }
trap cleanup EXIT
build_release
(cd "$ROOT" && cargo build --release --quiet -p detector --example passthrough) ||
    die "cargo build failed"
export NO_BUILD=1
if ! external_cluster && ! broker_answers "$LOCAL_BROKER"; then
    scripts/broker.sh start
    started_broker=1
fi
export KAFKA_BOOTSTRAP
KAFKA_BOOTSTRAP=$(bootstrap)

model="$RUN_DIR/$run_id-model.bin"
payments="$RUN_DIR/$run_id-payments.jsonl"
case "$SCENARIO" in
synthetic)
    scripts/trainer.sh fit --out "$model" >/dev/null 2>&1
    ;;
payments)
    # The training payments, then the benchmark's (enough for the latency line too).
    stream=$((RECORDS > LATENCY_RATE * LATENCY_SECONDS ? RECORDS : LATENCY_RATE * LATENCY_SECONDS))
    scripts/generator.sh --scenario payments --seed 7 --count $((TRAIN_RECORDS + stream)) \
        --print 2>/dev/null | tail -n "$stream" >"$payments.stream"
    scripts/generator.sh --scenario payments --seed 7 --count "$TRAIN_RECORDS" --print \
        2>/dev/null >"$payments"
    scripts/trainer.sh fit --jsonl "$payments" --features "$PAYMENTS_FEATURES" \
        --contamination "$PAYMENTS_CONTAMINATION" --out "$model" >/dev/null 2>&1
    ;;
*) die "SCENARIO is synthetic or payments, not $SCENARIO" ;;
esac

# records TOPIC COUNT RATE SEED [FLAG...]: the scenario's first COUNT records into TOPIC at
# RATE per second (0: flat out); the synthetic ones seeded with SEED.
records() {
    local topic=$1 count=$2 rate=$3 seed=$4
    shift 4
    if [ "$SCENARIO" = payments ]; then
        scripts/generator.sh --topic "$topic" --jsonl "$payments.stream" --count "$count" \
            --rate "$rate" "$@"
    else
        scripts/generator.sh --topic "$topic" --count "$count" --rate "$rate" --seed "$seed" "$@"
    fi
}

# `detector: ... first_ms=A last_ms=B` → fields
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# Partitions a detector owns now: its last "assigned partitions" log line.
owned() { grep "assigned partitions" "$1" 2>/dev/null | tail -n 1 | grep -o '/[0-9]*' | wc -l; }

# start N KIND INPUT TAG: N detectors (or pass-throughs) in a fresh group on INPUT, writing to
# a fresh output topic; their pids and log files' stems are appended to `pids` and `stems`.
pids=() stems=()
start() {
    local n=$1 kind=$2 input=$3 tag=$4 i stem
    scripts/inspector.sh create-topics "$run_id-out-$tag" 2>/dev/null
    for i in $(seq "$n"); do
        stem="$RUN_DIR/$run_id-$tag-$i"
        if [ "$kind" = passthrough ]; then
            RUST_LOG=info "$(bin examples/passthrough)" --input-topic "$input" \
                --output-topic "$run_id-out-$tag" --group "$run_id-$tag" --idle-exit 3 \
                >"$stem.out" 2>"$stem.log" &
        else
            local detector
            detector=$(bin detector)
            [ "$kind" = baseline ] && detector=$BASELINE_DETECTOR
            RUST_LOG=info "$detector" --model "$model" --input-topic "$input" \
                --output-topic "$run_id-out-$tag" --dlq-topic "$run_id-dlq" \
                --group "$run_id-$tag" --idle-exit 3 >"$stem.out" 2>"$stem.log" &
        fi
        pids+=($!)
        stems+=("$stem")
    done
}

# rate STEM...: records per second over the span from the first record any of them read to
# the last output any of them had acknowledged (each prints first_ms/last_ms in its summary).
rate() {
    local first=99999999999999 last=0 consumed=0 out stem
    for stem in "$@"; do
        out=$(cat "$stem.out")
        consumed=$((consumed + $(field consumed "$out")))
        first=$(( $(field first_ms "$out") < first ? $(field first_ms "$out") : first ))
        last=$(( $(field last_ms "$out") > last ? $(field last_ms "$out") : last ))
    done
    [ "$consumed" = "$RECORDS" ] || log "warning: $* read $consumed of $RECORDS records"
    awk -v n="$consumed" -v s="$first" -v e="$last" 'BEGIN { printf "%.0f", n / ((e - s) / 1000) }'
}

# pre_produced KIND TAG: one reader (no rebalance) reads the pre-produced topic from the start.
pre_produced() {
    pids=() stems=()
    start 1 "$1" "$tx" "$2"
    wait "${pids[@]}"
    rate "${stems[@]}"
}

# live N KIND TAG: N readers share a fresh, empty topic's 3 partitions; then the same seeded
# records are produced into it while they read.
live() {
    local n=$1 kind=$2 tag=$3 input="$run_id-live-$3" total i deadline=$((SECONDS + 60))
    scripts/inspector.sh create-topics "$input:3" 2>/dev/null
    pids=() stems=()
    start "$n" "$kind" "$input" "$tag"
    while :; do
        total=0
        for i in "${stems[@]}"; do total=$((total + $(owned "$i.log"))); done
        [ "$total" = 3 ] && for i in "${stems[@]}"; do [ "$(owned "$i.log")" -gt 0 ] || total=0; done
        [ "$total" = 3 ] && break
        [ $SECONDS -lt $deadline ] || die "the readers did not share the partitions within 60 s"
        sleep 0.2
    done
    records "$input" "$RECORDS" 0 1 >/dev/null 2>&1
    wait "${pids[@]}"
    rate "${stems[@]}"
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# latency_on TX ANOMALIES DLQ TAG PARTITIONS: one detector joins a group on TX (which exists,
# with PARTITIONS partitions); the generator then offers LATENCY_RATE records per second; the percentiles come
# from the records' and anomalies' timestamps. Prints p50 p95 p99, the anomalies matched to
# their transactions and the anomalies the detector wrote.
latency_on() {
    local tx=$1 an=$2 dlq=$3 group="$run_id-$4" log="$RUN_DIR/$run_id-$4" partitions=$5
    # shellcheck disable=SC2086 # word-split on purpose: extra flags
    RUST_LOG=info "$(bin detector)" --model "$model" --input-topic "$tx" --output-topic "$an" \
        --dlq-topic "$dlq" --group "$group" --idle-exit 3 $LATENCY_DETECTOR_ARGS \
        >"$log.out" 2>"$log.log" &
    local pid=$! deadline=$((SECONDS + 60))
    until [ "$(owned "$log.log")" = "$partitions" ]; do
        [ $SECONDS -lt $deadline ] || die "the detector did not get the partitions within 60 s"
        sleep 0.2
    done
    # shellcheck disable=SC2086
    records "$tx" $((LATENCY_RATE * LATENCY_SECONDS)) "$LATENCY_RATE" 2 \
        $LATENCY_GENERATOR_ARGS >/dev/null 2>&1
    wait "$pid"
    local written
    written=$(field anomalies "$(cat "$log.out")")
    scripts/inspector.sh stats --once --json --input-topic "$tx" --output-topic "$an" \
        --dlq-topic "$dlq" --group "$group" 2>/dev/null |
        python3 -c 'import json,sys; l=json.load(sys.stdin)["latency_ms"]; print("%.1f %.1f %.1f %d" % (l["p50"], l["p95"], l["p99"], l["count"]), sys.argv[1])' "$written"
}

# On the broker under test.
latency() {
    scripts/inspector.sh create-topics "$run_id-lat-tx:3" "$run_id-lat-anomalies" 2>/dev/null
    latency_on "$run_id-lat-tx" "$run_id-lat-anomalies" "$run_id-dlq" lat 3
}

# The same on librdkafka's mock cluster (crates/devbroker, the development broker): it keeps
# records in memory and answers a fetch as soon as it has records, so what is left is the
# latency of our processes and the client path. It drops a partition's oldest records past
# 5 MB (rdkafka_mock.c), hence more partitions, so that every record stays to be matched (an
# anomaly with its features and explanation is ~400 bytes: the synthetic stream's 127,000 of
# them need 16 partitions).
mock_latency() {
    local fifo="$RUN_DIR/$run_id-mock$1.in" out="$RUN_DIR/$run_id-mock$1.out" mock
    mkfifo "$fifo"
    "$(bin devbroker)" --stdin-close-stops m-tx:6 m-anomalies:16 m-dlq <"$fifo" >"$out" 2>/dev/null &
    mock=$!
    exec 7>"$fifo" # its stdin: it serves until this closes
    until [ -n "$(devbroker_address "$out")" ]; do sleep 0.1; done
    KAFKA_BOOTSTRAP=$(devbroker_address "$out") LATENCY_DETECTOR_ARGS="$LATENCY_DETECTOR_ARGS $2" \
        latency_on m-tx m-anomalies m-dlq "mock-lat$1" 6
    exec 7>&-
    wait "$mock"
}

tx="$run_id-tx"
scripts/inspector.sh create-topics "$tx:3" "$run_id-dlq" 2>/dev/null
if [ "$LINES" = latency ]; then
    log "latency: one detector, $LATENCY_RATE records/s offered for $LATENCY_SECONDS s" \
        "(detector: ${LATENCY_DETECTOR_ARGS:-defaults}; generator: ${LATENCY_GENERATOR_ARGS:-defaults})"
    read -r lat_p50 lat_p95 lat_p99 lat_count lat_written < <(latency)
    read -r mock_p50 mock_p95 mock_p99 mock_count mock_written < <(mock_latency 1 "")
    printf 'p50/p95/p99 ms: on %s %s/%s/%s (%s of %s); on the mock %s/%s/%s (%s of %s)\n' \
        "$KAFKA_BOOTSTRAP" "$lat_p50" "$lat_p95" "$lat_p99" "$lat_count" "$lat_written" \
        "$mock_p50" "$mock_p95" "$mock_p99" "$mock_count" "$mock_written"
    exit 0
fi
log "producing $RECORDS $SCENARIO records into $tx"
records "$tx" "$RECORDS" 0 1 >/dev/null 2>&1
pass_rates=() one_rates=() base_rates=()
for round in $(seq "$REPEATS"); do
    log "round $round of $REPEATS: pass-through, then one detector, on the pre-produced records"
    pass_rates+=("$(pre_produced passthrough "pass-$round")")
    one_rates+=("$(pre_produced detector "one-$round")")
    if [ -n "${BASELINE_DETECTOR:-}" ]; then
        base_rates+=("$(pre_produced baseline "base-$round")")
    fi
done
log "rounds: pass-through ${pass_rates[*]}; one detector ${one_rates[*]}" \
    "${BASELINE_DETECTOR:+; baseline ${base_rates[*]}}"
pass_rate=$(median "${pass_rates[@]}")
# Anomalies one detector wrote (each with its features and explanation).
one_anomalies=$(field anomalies "$(cat "$RUN_DIR/$run_id-one-$REPEATS-1.out")")
one_rate=$(median "${one_rates[@]}")
log "pass-through and two detectors, records produced while they read"
live_pass_rate=$(live 1 passthrough live-pass)
two_rate=$(live 2 detector live-two)

py_rate=""
if [ "$SCENARIO" = synthetic ] && scripts/python-env.sh >/dev/null 2>&1; then
    log "reference Python detector ($PYTHON_RECORDS records)"
    python_model="$RUN_DIR/$run_id-model.joblib"
    scripts/inspector.sh create-topics "$run_id-anomalies-py" 2>/dev/null
    .venv/bin/python reference/python/train.py --out "$python_model" >/dev/null
    py=$(.venv/bin/python reference/python/detect.py --bootstrap "$KAFKA_BOOTSTRAP" \
        --input "$tx" --output "$run_id-anomalies-py" --group "$run_id-py" --model "$python_model" \
        --max-messages "$PYTHON_RECORDS" --idle-exit 10)
    py_rate=$(field rate "$py")
fi

log "latency: one detector, $LATENCY_RATE records/s offered for $LATENCY_SECONDS s"
read -r lat_p50 lat_p95 lat_p99 lat_count lat_written < <(latency)
log "latency on librdkafka's mock cluster (no broker storage), same load"
read -r mock_p50 mock_p95 mock_p99 mock_count mock_written < <(mock_latency 1 "")
# The mock, like Tansu, answers a fetch that found nothing only after the consumer's whole
# fetch.wait.max.ms, so records arriving meanwhile wait up to 10 ms; Apache Kafka answers as
# soon as they arrive. A 1 ms wait comes closer to that.
log "latency on the mock cluster, the detector's fetch wait at 1 ms"
read -r fast_p50 fast_p95 fast_p99 fast_count fast_written < <(mock_latency 2 "-X fetch.wait.max.ms=1")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f×", a / b; else print "n/a" }'; }
share() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
row() { printf '%-52s %12s %16s %12s\n' "$@"; }
printf '\n'
row "($RECORDS $SCENARIO records, broker $KAFKA_BOOTSTRAP)" "records/s" "vs pass-through" "vs Python"
row "pre-produced: pass-through (median of $REPEATS)" "$pass_rate" "100%" "$(ratio "$pass_rate" "${py_rate:-0}")"
row "pre-produced: ours, 1 detector (median of $REPEATS)" "$one_rate" "$(share "$one_rate" "$pass_rate")" "$(ratio "$one_rate" "${py_rate:-0}")"
if [ -n "${BASELINE_DETECTOR:-}" ]; then
    base_rate=$(median "${base_rates[@]}")
    row "pre-produced: baseline detector (median of $REPEATS)" "$base_rate" \
        "$(share "$base_rate" "$pass_rate")" "$(ratio "$base_rate" "${py_rate:-0}")"
fi
row "pre-produced: reference Python ($PYTHON_RECORDS records)" "${py_rate:-not run}" "" "1×"
row "produced meanwhile: pass-through" "$live_pass_rate" "100%" ""
row "produced meanwhile: ours, 2 detectors (one group)" "$two_rate" "$(share "$two_rate" "$live_pass_rate")" "$(ratio "$two_rate" "${py_rate:-0}")"
printf '%s anomalies of %s records (%s), each with its features and explanation\n' \
    "$one_anomalies" "$RECORDS" "$(share "$one_anomalies" "$RECORDS")"
printf '\nend-to-end latency, one detector, %s records/s offered for %s s:\n' "$LATENCY_RATE" "$LATENCY_SECONDS"
printf '  %-34s p50 %6s ms, p95 %6s ms, p99 %6s ms (%s of %s anomalies matched)\n' \
    "on $KAFKA_BOOTSTRAP" "$lat_p50" "$lat_p95" "$lat_p99" "$lat_count" "$lat_written" \
    "on librdkafka's mock cluster" "$mock_p50" "$mock_p95" "$mock_p99" "$mock_count" "$mock_written" \
    "same, fetch.wait.max.ms=1" "$fast_p50" "$fast_p95" "$fast_p99" "$fast_count" "$fast_written"
