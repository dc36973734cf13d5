#!/usr/bin/env bash
# The demo: build, start a local broker, create the topics, train the model, start two
# detectors in one consumer group, show how they share the partitions, start the live page
# (inspector serve), stream synthetic transactions and show the anomalies as they arrive.
# Everything it started is stopped when it ends or on Ctrl-C.
#
#   scripts/demo.sh [--broker dev|tansu] [--seconds S] [--rate R] [--model FILE]
#                   [--page-port PORT]
#                   (defaults: the development broker, 30 s at 100 records/s, models/model.bin,
#                   the live page on http://127.0.0.1:8080/; port 0 picks a free one)
#
# --broker dev (the default) runs the development broker built with this workspace
# (crates/devbroker: librdkafka's mock cluster; records are kept in memory and lost when it
# stops). --broker tansu runs Tansu, installed from crates.io on first use (long: it is
# compiled). With KAFKA_BOOTSTRAP set, the demo uses that cluster and starts no broker.
set -euo pipefail
# The demo profile (Cargo.toml): the release build less its slowest optimisations, so that a
# fresh clone gets to the first anomaly sooner. BUILD_PROFILE=release (or debug) overrides.
export BUILD_PROFILE="${BUILD_PROFILE:-demo}"
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

broker=dev
seconds=30
rate=100
model=models/model.bin
page_port=8080
while [ $# -gt 0 ]; do
    case "$1" in
        --broker) broker=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --rate) rate=${2:?}; shift 2 ;;
        --model) model=${2:?}; shift 2 ;;
        --page-port) page_port=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
case "$broker" in
    dev | tansu) ;;
    *) die "--broker must be dev or tansu, not $broker" ;;
esac
case "$page_port" in
    '' | *[!0-9]*) die "--page-port must be a port number, not $page_port" ;;
esac

mkdir -p "$RUN_DIR"
pids=()
started_broker=0
# Stops what this demo started: its processes, then the broker.
stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
    if [ "$started_broker" = 1 ]; then
        scripts/broker.sh stop || true
        started_broker=0
    fi
}
cleanup() {
    trap - EXIT INT TERM
    stop_all
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# The binaries the demo runs; the development broker's only when it is used.
packages=(trainer generator detector inspector)
if [ "$broker" = dev ] && ! external_cluster; then packages+=(devbroker); fi
log "1/7 building ${packages[*]} ($BUILD_PROFILE; on a fresh clone this first compiles" \
    "librdkafka and OpenSSL: minutes)"
build_release "${packages[@]}"
export NO_BUILD=1

if external_cluster; then
    log "2/7 broker: the cluster at $KAFKA_BOOTSTRAP (KAFKA_BOOTSTRAP); none started"
elif broker_answers "$LOCAL_BROKER"; then
    log "2/7 broker: one already answers on $LOCAL_BROKER; using it" \
        "($(scripts/broker.sh kind 2>/dev/null || echo "not started by scripts/broker.sh"))"
else
    if [ "$broker" = dev ]; then
        log "2/7 broker: the DEVELOPMENT BROKER (crates/devbroker, librdkafka's mock cluster):" \
            "records are kept in memory and lost when it stops; --broker tansu for a real one"
    else
        log "2/7 broker: Tansu with sqlite storage in $RUN_DIR/tansu.db (installed from crates.io" \
            "on first use)"
    fi
    started_broker=1
    if [ "$broker" = tansu ]; then
        # sqlite: Tansu 0.6.0's memory storage reports wrong high watermarks (so wrong lag).
        scripts/broker.sh start --broker tansu --storage sqlite
    else
        scripts/broker.sh start --broker dev
    fi
fi
export KAFKA_BOOTSTRAP
KAFKA_BOOTSTRAP=$(bootstrap)

# Partitions of each topic the cluster lists: "NAME COUNT" lines.
partition_counts() { scripts/inspector.sh topics 2>/dev/null | awk 'NR > 1 { n[$1]++ } END { for (t in n) print t, n[t] }'; }
# The development broker does not serve CreateTopics: it made the pipeline's topics when it
# started. So look first, and create only what is missing.
counts=$(partition_counts || true)
has() { awk -v t="$1" '$1 == t { found = 1 } END { exit !found }' <<<"$counts"; }
if has transactions && has anomalies && has transactions.dlq; then
    log "3/7 topics: transactions ($(awk '$1 == "transactions" { print $2 }' <<<"$counts")" \
        "partitions), anomalies and transactions.dlq are there"
else
    log "3/7 topics"
    scripts/topics.sh
fi

log "4/7 training the model on the original pipeline's synthetic data"
scripts/trainer.sh fit --out "$model"

log "5/7 starting two detectors in one consumer group (detectors); logs in" \
    "$RUN_DIR/detector-1.log, $RUN_DIR/detector-2.log"
detector_args=()
if ! external_cluster && [ "$(scripts/broker.sh kind 2>/dev/null)" = dev ]; then
    # librdkafka's mock cluster completes a rebalance of a formed group only after the
    # members' session timeout less a second (rdkafka_mock_cgrp.c): 44 s with the default
    # 45 s. Should one detector join late, this keeps the wait to about 5 s.
    detector_args+=(-X session.timeout.ms=6000)
fi
for n in 1 2; do
    : >"$RUN_DIR/detector-$n.log"
    scripts/detector.sh --model "$model" "${detector_args[@]}" >"$RUN_DIR/detector-$n.log" 2>&1 &
    pids+=($!)
done

# The partitions a detector owns now, from its last "assigned partitions" log line.
owned() { grep "assigned partitions" "$RUN_DIR/detector-$1.log" 2>/dev/null | tail -n 1 | sed 's/.*assigned partitions: //'; }
deadline=$((SECONDS + 60))
until [ -n "$(owned 1)" ] && [ "$(owned 1)" != none ] && [ -n "$(owned 2)" ] && [ "$(owned 2)" != none ]; do
    if [ $SECONDS -ge $deadline ]; then
        log "warning: the detectors have not shared the partitions within 60 s; streaming anyway"
        break
    fi
    for n in 1 2; do
        if ! kill -0 "${pids[$((n - 1))]}" 2>/dev/null; then
            tail -n 20 "$RUN_DIR/detector-$n.log" >&2
            die "detector $n exited (see $RUN_DIR/detector-$n.log)"
        fi
    done
    sleep 0.2
done
log "6/7 the group shares the partitions: detector 1 reads $(owned 1); detector 2 reads $(owned 2)"

# The live page: `inspector serve` beside the detectors (stopped with them), reading from now,
# so it shows this run's stream. It prints its address once it listens; without it the demo
# goes on (the page is a view, not part of the pipeline).
start_dashboard() {
    local page_log="$RUN_DIR/inspector-serve.log" serve_pid address deadline
    : >"$page_log"
    scripts/inspector.sh serve --addr "127.0.0.1:$page_port" --model "$model" >"$page_log" 2>&1 &
    serve_pid=$!
    pids+=("$serve_pid")
    deadline=$((SECONDS + 30))
    until address=$(grep -o 'serving http://[^ ]*' "$page_log" | sed 's/^serving //') && [ -n "$address" ]; do
        if ! kill -0 "$serve_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            tail -n 5 "$page_log" >&2
            log "warning: the live page did not start (see $page_log); going on without it"
            return 0
        fi
        sleep 0.2
    done
    log "live page: $address (log in $page_log)"
}
start_dashboard

count=$((seconds * rate))
log "7/7 streaming $count transactions at $rate/s; anomalies as they arrive:"
# The tail ends 10 s after the last anomaly it saw.
scripts/inspector.sh tail --topic anomalies --timeout 10 &
tail_pid=$!
pids+=("$tail_pid")
# In the background and waited for, so that a SIGTERM is handled at once, not after it.
scripts/generator.sh --count "$count" --rate "$rate" &
generator_pid=$!
pids+=("$generator_pid")
wait "$generator_pid" || log "warning: the generator failed (exit $?)"
wait "$tail_pid" 2>/dev/null || true

log "stopping the detectors, the live page$([ "$started_broker" = 1 ] && echo " and the broker")"
stop_all
grep -h "detector: consumed" "$RUN_DIR"/detector-*.log || true
log "demo done"
