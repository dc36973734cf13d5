#!/usr/bin/env bash
# Per-key features against the best model without them, on the same records in the same run,
# through the command line as a user runs it.
#
# Payments: `generator --scenario payments --print` writes COUNT seeded payments (scenario
# seed SEED); `trainer fit` learns on the first TRAIN; `trainer eval --warm-up TRAIN
# --group-field fraud` measures the rest, each card's history built from the records before
# (the training ones included), as a detector running since then would have it. Plain lists
# (no per-key item) against the plain list plus per-card items keyed by `card`, timed by `ts`.
# Sensors: the same with SENSOR_COUNT readings, SENSOR_TRAIN for training, keyed by `sensor`:
# the plain value against `value:zscore` and `value:lag:8`.
#
# Every list runs with the range check off and on (payments; on for sensors), contamination
# auto and Q (SENSOR_Q), and forest seeds 42..42+SEEDS-1. Prints, per list and setting, the
# medians over forest seeds of precision, recall and F1 at the model's threshold, ROC AUC and
# average precision; then, for the best setting of each list by median F1, the same per fraud
# or fault kind (each kind against all the normal records).
# Usage: bench/perkey.sh
# Environment: COUNT (60000), TRAIN (40000), SEED (7), SEEDS (5), Q (0.01), SENSOR_COUNT
# (120000), SENSOR_TRAIN (80000), SENSOR_Q (0.02), CARGO_TARGET_DIR; BIN, a folder holding
# `trainer` and `generator` already built (then nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-60000}
TRAIN=${TRAIN:-40000}
SEED=${SEED:-7}
SEEDS=${SEEDS:-5}
Q=${Q:-0.01}
SENSOR_COUNT=${SENSOR_COUNT:-120000}
SENSOR_TRAIN=${SENSOR_TRAIN:-80000}
SENSOR_Q=${SENSOR_Q:-0.02}
if [[ -z ${BIN:-} ]]; then
    cargo build --release -q -p trainer -p generator
    BIN=${CARGO_TARGET_DIR:-target}/release
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PLAIN=amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday
RARE=amount:log,/merchant/mcc:rarity,/merchant/country:rarity,ts:hour,ts:weekday
PER_CARD=amount:log:zscore,count:10m,count:1h,since_last
# name|features|settings: one list each.
payments_lists=(
    "plain|$PLAIN|"
    "plain-rarity|$RARE|"
    "per-card|$PLAIN,$PER_CARD|--key-field card --time-field ts"
)
sensor_lists=(
    "value|value|"
    "value+lag:8|value,value:lag:8|--key-field sensor --time-field ts"
    "value+zscore|value,value:zscore|--key-field sensor --time-field ts"
    "value+zscore(h60)|value,value:zscore|--key-field sensor --time-field ts --half-life 60"
    "value+zscore+lag:8(h60)|value,value:zscore,value:lag:8|--key-field sensor --time-field ts --half-life 60"
)

# run SCENARIO FILE TRAIN GROUP Q RANGES LIST...: one line per fit, `scenario name range
# contamination seed <eval JSON>`.
run() {
    local scenario=$1 file=$2 train=$3 group=$4 q=$5 ranges=$6
    shift 6
    head -n "$train" "$file" >"$work/train.jsonl"
    for entry in "$@"; do
        IFS='|' read -r name list settings <<<"$entry"
        for range in $ranges; do
            for contamination in auto "$q"; do
                for ((seed = 42; seed < 42 + SEEDS; seed++)); do
                    model="$work/model.bin"
                    # shellcheck disable=SC2086 # settings are several flags
                    RUST_LOG=warn "$BIN/trainer" fit --jsonl "$work/train.jsonl" \
                        --features "$list" $settings --range-check "$range" \
                        --contamination "$contamination" --seed "$seed" --out "$model" \
                        --models-dir "$work/by-id" >/dev/null
                    printf '%s %s %s %s %s ' "$scenario" "$name" "$range" "$contamination" "$seed"
                    RUST_LOG=warn "$BIN/trainer" eval --jsonl "$file" --warm-up "$train" \
                        --model "$model" --group-field "$group" --json
                done
            done
        done
    done
}

"$BIN/generator" --scenario payments --count "$COUNT" --seed "$SEED" --print \
    >"$work/payments.jsonl" 2>/dev/null
"$BIN/generator" --scenario sensors --count "$SENSOR_COUNT" --seed "$SEED" --print \
    >"$work/sensors.jsonl" 2>/dev/null
{
    run payments "$work/payments.jsonl" "$TRAIN" fraud "$Q" "off on" "${payments_lists[@]}"
    run sensors "$work/sensors.jsonl" "$SENSOR_TRAIN" fault "$SENSOR_Q" "on" "${sensor_lists[@]}"
} >"$work/results.txt"

python3 - "$work/results.txt" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    scenario, name, range_check, contamination, seed, text = line.split(" ", 5)
    runs.setdefault(scenario, {}).setdefault((name, range_check, contamination), []).append(json.loads(text))

def median(results, key, kind=None):
    values = [(r if kind is None else r["groups"][kind])[key] for r in results]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")

for scenario, settings in runs.items():
    first = next(iter(settings.values()))[0]
    print(f"\n{scenario}: {first['rows']} records measured, {first['labelled_anomalies']} labelled 1; "
          f"medians over {len(next(iter(settings.values())))} forest seeds")
    print(f"{'list':<24} {'range':<5} {'contam.':<7} {'precision':>9} {'recall':>7} {'F1':>7} {'ROC AUC':>8} {'avg prec':>8}")
    best = {}
    for (name, range_check, contamination), results in settings.items():
        f1 = median(results, "f1")
        print(f"{name:<24} {range_check:<5} {contamination:<7} {median(results, 'precision'):9.4f} "
              f"{median(results, 'recall'):7.4f} {f1:7.4f} {median(results, 'roc_auc'):8.4f} "
              f"{median(results, 'average_precision'):8.4f}")
        if name not in best or f1 > best[name][0]:
            best[name] = (f1, range_check, contamination, results)
    kinds = sorted(first["groups"])
    print(f"\nper kind, each list at its best setting by F1 (recall / F1 / ROC AUC)")
    print(f"{'list':<24} {'setting':<12}" + "".join(f" {k:>22}" for k in kinds))
    for name, (f1, range_check, contamination, results) in best.items():
        cells = "".join(
            f" {median(results, 'recall', k):6.3f} {median(results, 'f1', k):6.3f} {median(results, 'roc_auc', k):6.3f}"
            for k in kinds)
        print(f"{name:<24} {range_check + ' ' + contamination:<12}{cells}")
PY
