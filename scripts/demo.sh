#!/usr/bin/env bash
# The demo: build, start the local broker, create the topics, train the model, start two
# detectors, stream synthetic transactions and show the anomalies as they arrive. Everything it
# started is stopped when it ends or on Ctrl-C.
#
#   scripts/demo.sh [--seconds S] [--rate R] [--model FILE]
#                   (defaults: 30 s at 100 records/s, models/model.bin)
#
# With KAFKA_BOOTSTRAP set, the demo uses that cluster and starts no broker.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

seconds=30
rate=100
model=models/model.bin
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=${2:?}; shift 2 ;;
        --rate) rate=${2:?}; shift 2 ;;
        --model) model=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

mkdir -p "$RUN_DIR"
pids=()
started_broker=0
cleanup() {
    trap - EXIT INT TERM
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$started_broker" = 1 ]; then scripts/broker.sh stop || true; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

log "1/6 building ($BUILD_PROFILE; the first build compiles librdkafka, a few minutes)"
build_release
export NO_BUILD=1

log "2/6 broker"
if ! external_cluster && ! broker_answers "$LOCAL_BROKER"; then
    scripts/broker.sh start
    started_broker=1
fi
export KAFKA_BOOTSTRAP
KAFKA_BOOTSTRAP=$(bootstrap)

log "3/6 topics"
scripts/topics.sh

log "4/6 training the model on the original pipeline's synthetic data"
scripts/trainer.sh fit --out "$model"

log "5/6 starting two detectors (group detectors); logs in .run/detector-1.log, .run/detector-2.log"
for n in 1 2; do
    scripts/detector.sh --model "$model" >"$RUN_DIR/detector-$n.log" 2>&1 &
    pids+=($!)
done

count=$((seconds * rate))
log "6/6 streaming $count transactions at $rate/s; anomalies as they arrive:"
# The tail ends 10 s after the last anomaly it saw.
scripts/inspector.sh tail --topic anomalies --timeout 10 &
tail_pid=$!
pids+=("$tail_pid")
scripts/generator.sh --count "$count" --rate "$rate"
wait "$tail_pid" 2>/dev/null || true

log "stopping the detectors"
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
pids=()
grep -h "detector: consumed" "$RUN_DIR"/detector-*.log || true
log "demo done"
