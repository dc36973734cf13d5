#!/usr/bin/env bash
# Named features on the payments scenario, through the command line as a user runs it:
# `generator --scenario payments --print` writes COUNT seeded payments (scenario seed SEED),
# `trainer fit` learns FEATURES on the first TRAIN of them, `trainer eval --group-field fraud`
# scores the rest, for the range check off and on, contamination auto and Q, forest seeds
# 42..42+SEEDS-1. Prints, per setting and fraud kind, the medians over forest seeds of ROC
# AUC, precision, recall and F1 (each kind against all the normal payments), and the share of
# the kind's frauds whose explanation's top feature is the one the fraud was made in
# (amount for `amount` and `card_amount`, the category for `category`, the hour for
# `night_burst`, a per-key count for `card_burst`).
# Usage: bench/features-payments.sh
# Environment: COUNT (60000), TRAIN (40000), SEED (7), SEEDS (5), Q (0.01), FEATURES
# (amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday),
# CARGO_TARGET_DIR; BIN, a folder holding `trainer` and `generator` already built (then
# nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-60000}
TRAIN=${TRAIN:-40000}
SEED=${SEED:-7}
SEEDS=${SEEDS:-5}
Q=${Q:-0.01}
FEATURES=${FEATURES:-amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday}
if [[ -z ${BIN:-} ]]; then
    cargo build --release -q -p trainer -p generator
    BIN=${CARGO_TARGET_DIR:-target}/release
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN/generator" --scenario payments --count "$COUNT" --seed "$SEED" --print \
    >"$work/payments.jsonl" 2>/dev/null
head -n "$TRAIN" "$work/payments.jsonl" >"$work/train.jsonl"
tail -n +"$((TRAIN + 1))" "$work/payments.jsonl" >"$work/test.jsonl"
for range in off on; do
    for contamination in auto "$Q"; do
        for ((seed = 42; seed < 42 + SEEDS; seed++)); do
            model="$work/model-$range-$contamination-$seed.bin"
            RUST_LOG=warn "$BIN/trainer" fit --jsonl "$work/train.jsonl" \
                --features "$FEATURES" --range-check "$range" --contamination "$contamination" \
                --seed "$seed" --out "$model" --models-dir "$work/by-id" >/dev/null
            printf '%s %s %s ' "$range" "$contamination" "$seed"
            RUST_LOG=warn "$BIN/trainer" eval --jsonl "$work/test.jsonl" \
                --model "$model" --group-field fraud --json
        done
    done
done >"$work/results.txt"
python3 - "$work/results.txt" "$FEATURES" <<'PY'
import json, statistics, sys
made_in = {"amount": "amount", "category": "mcc", "night_burst": "ts:hour",
           "card_amount": "amount", "card_burst": "count:"}
runs = {}
for line in open(sys.argv[1]):
    range_check, contamination, seed, text = line.split(" ", 3)
    runs.setdefault((range_check, contamination), []).append(json.loads(text))
print(f"features {sys.argv[2]}")
print("range  contamination  kind          n  ROC AUC  precision  recall     F1  top feature = made in")
for (range_check, contamination), results in runs.items():
    kinds = ["all"] + sorted(results[0]["groups"])
    for kind in kinds:
        def median(key):
            values = [(r if kind == "all" else r["groups"][kind])[key] for r in results]
            return statistics.median(values)
        n = (results[0] if kind == "all" else results[0]["groups"][kind])["labelled_anomalies"]
        top = ""
        if kind != "all":
            shares = []
            for r in results:
                tops = r["groups"][kind]["top_features"]
                hit = sum(c for f, c in tops.items() if made_in[kind] in f)
                shares.append(hit / max(1, sum(tops.values())))
            top = f"{statistics.median(shares):.0%}"
        print(f"{range_check:<6} {contamination:<14} {kind:<12} {n:>3}  {median('roc_auc'):7.4f}"
              f"  {median('precision'):9.4f}  {median('recall'):6.4f}  {median('f1'):6.4f}  {top}")
PY
