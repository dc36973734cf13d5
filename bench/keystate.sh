#!/usr/bin/env bash
# Per-key state in the detector, on a broker: the throughput of one detector whose model has
# per-key features, over KEYS distinct keys, against the consume→produce pass-through, on the
# same pre-produced records in the same run (ROUNDS rounds each, alternating, medians); the
# memory its key states take at the end (the detector's own estimate, per key); and the time
# to restore them on assignment (a detector started again in the same group, given a few
# new records so that it restores every partition, reads it from its log).
#
# Records: RECORDS payments-like JSON lines, `{"id", "card", "amount", "ts"}`, card
# `c-<(i × 7919) mod KEYS>` (every key about RECORDS/KEYS times, 10 ms of record time apart),
# keyed by card, into a fresh 3-partition topic. Model: `trainer fit` on TRAIN records of the
# same shape with other amounts, features FEATURES keyed by `card`, timed by `ts`.
# Usage: KAFKA_BOOTSTRAP=127.0.0.1:19450 bench/keystate.sh
# Environment: RECORDS (500000), KEYS (100000), TRAIN (RECORDS), ROUNDS (3), FEATURES,
# BIN (a folder holding release builds of detector, generator, trainer, inspector and
# examples/passthrough; then nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP to a broker, e.g. scripts/broker.sh start --storage sqlite}"
export KAFKA_BOOTSTRAP
RECORDS=${RECORDS:-500000}
KEYS=${KEYS:-100000}
TRAIN=${TRAIN:-$RECORDS}
ROUNDS=${ROUNDS:-3}
FEATURES=${FEATURES:-amount:log,amount:zscore,amount:delta,count:1h,since_last}
if [[ -z ${BIN:-} ]]; then
    cargo build --release -q -p detector -p generator -p trainer -p inspector \
        --example passthrough
    BIN=${CARGO_TARGET_DIR:-target}/release
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=keystate-$$-$(date +%s)
log() { echo "[keystate] $*" >&2; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# records SEED N: N payments-like lines over KEYS keys.
records() {
    awk -v seed="$1" -v n="$2" -v k="$KEYS" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++) {
            c = (i * 7919) % k
            printf "{\"id\":%d,\"card\":\"c-%d\",\"amount\":%.2f,\"ts\":%d}\n",
                i, c, (c % 97 + 1) * (0.8 + 0.4 * rand()), 1796000000000 + i * 10
        }
    }'
}
records 7 "$RECORDS" >"$work/records.jsonl"
# Training: the same shape with other amounts, so that keys have the same histories.
records 8 "$TRAIN" >"$work/train.jsonl"
"$BIN/trainer" fit --jsonl "$work/train.jsonl" --features "$FEATURES" --key-field card \
    --time-field ts --contamination 0.01 --out "$work/model.bin" >/dev/null 2>&1
"$BIN/inspector" create-topics "$run-in:3" "$run-out" "$run-dlq" >/dev/null 2>&1
"$BIN/generator" --jsonl "$work/records.jsonl" --key-field card --topic "$run-in" --rate 0 \
    --count 0 >/dev/null 2>"$work/generator.log"
log "$RECORDS records over $KEYS keys in $run-in; features $FEATURES"

# One reader in a fresh group reads the whole topic; prints its summary line. Rates count from
# the first record read to the last output acknowledged, so the idle wait is not in them; it
# is 10 s because Tansu (sqlite) pauses longer than 3 s between partitions of a large topic.
passthrough() {
    RUST_LOG=info "$BIN/examples/passthrough" --input-topic "$run-in" --output-topic "$run-out" \
        --group "$run-pass-$1" --idle-exit 10 2>"$work/pass-$1.log"
}
detector() {
    RUST_LOG=info "$BIN/detector" --model "$work/model.bin" --input-topic "$run-in" \
        --output-topic "$run-out" --dlq-topic "$run-dlq" --group "$run-det-$1" --idle-exit 10 \
        2>"$work/det-$1.log"
}
pass_rates=() det_rates=()
for round in $(seq "$ROUNDS"); do
    out=$(passthrough "$round")
    [ "$(field consumed "$out")" = "$RECORDS" ] || log "warning: pass-through read $(field consumed "$out")"
    pass_rates+=("$(field rate "$out")")
    out=$(detector "$round")
    [ "$(field consumed "$out")" = "$RECORDS" ] || log "warning: detector read $(field consumed "$out")"
    det_rates+=("$(field rate "$out")")
    log "round $round: pass-through ${pass_rates[-1]}/s, detector ${det_rates[-1]}/s"
done
held=$(grep -o 'per-key state held at the end: .*' "$work/det-$ROUNDS.log" || echo "none")

# Restore: a few new records, then the same group again.
tail -n 30 "$work/records.jsonl" | sed 's/"id":\([0-9]*\)/"id":\1000000/' >"$work/more.jsonl"
"$BIN/generator" --jsonl "$work/more.jsonl" --key-field card --topic "$run-in" --rate 0 \
    --count 0 >/dev/null 2>>"$work/generator.log"
detector "$ROUNDS" >/dev/null
restores=$(grep -o 'restored .*' "$work/det-$ROUNDS.log" | tail -n 3)

pass=$(median "${pass_rates[@]}")
det=$(median "${det_rates[@]}")
echo "records=$RECORDS keys=$KEYS rounds=$ROUNDS"
echo "pass-through records/s: ${pass_rates[*]} (median $pass)"
echo "detector (per-key) records/s: ${det_rates[*]} (median $det)"
awk -v d="$det" -v p="$pass" 'BEGIN { printf "detector / pass-through: %.2f\n", d / p }'
echo "memory: $held"
echo "restore on assignment:"
echo "$restores"
