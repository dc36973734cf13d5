#!/usr/bin/env bash
# crates/iforest beside scikit-learn's IsolationForest, in one run, on one thread:
#   accuracy: mean ROC AUC over seeds 0..SEEDS on every ODDS table (100 trees × 256, fitted
#             and scored on all rows), and the bar: ours ≥ scikit-learn − 0.005;
#   speed:    fit ms, single-row µs, batch µs/row (medians over REPS) on the synthetic 2-D
#             data, http, shuttle and satellite, and scikit-learn's time ÷ ours.
#   range:    the range check (RangeCheck) off and on: ROC AUC of the same forests scored
#             both ways (means, per-seed spreads, the mean per-seed difference and its
#             spread), speed of each, and precision/recall on the synthetic event table
#             (examples/events.rs). Not part of `all`.
# Usage: bench/iforest.sh [accuracy|speed|range|all] [ODDS_DIR]
# The data folder is the second argument, else the environment variable ODDS_DIR, else
# bench/data/odds in the repository (bench/fetch-data.sh fetches the tables there).
# Environment: ODDS_DIR, PYTHON (default .venv/bin/python; the scikit-learn columns are
# skipped if it cannot import sklearn), SEEDS (5), REPS (7), CARGO_TARGET_DIR.
set -euo pipefail
what=${1:-all}
ODDS=${2:-${ODDS_DIR:-}}
# A folder given relative to where the script is started.
[[ -n $ODDS && $ODDS != /* ]] && ODDS=$PWD/$ODDS
cd "$(dirname "$0")/.."
ODDS=${ODDS:-bench/data/odds}
if ! ls "$ODDS"/*.csv >/dev/null 2>&1; then
    echo "no ODDS tables in $ODDS: run bench/fetch-data.sh, or set ODDS_DIR" >&2
    exit 1
fi
PYTHON=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-5}
REPS=${REPS:-7}
target=${CARGO_TARGET_DIR:-target}
cores=$(nproc --all)
# One thread everywhere: numpy/BLAS/OpenMP in scikit-learn, and our examples use one.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1 \
    NUMEXPR_NUM_THREADS=1

cargo build --quiet --release -p iforest --examples
sklearn=false
if "$PYTHON" -c 'import sklearn' 2>/dev/null; then
    sklearn=true
    echo "scikit-learn $("$PYTHON" -c 'import sklearn; print(sklearn.__version__)')," \
        "$cores cores, $(uname -m)"
else
    echo "scikit-learn not importable with $PYTHON: showing ours only" >&2
fi

# side_by_side OURS THEIRS KIND: joins two tab-separated tables on the dataset column.
side_by_side() {
    awk -F'\t' -v kind="$3" -v have="$([ -n "$2" ] && echo 1 || echo 0)" '
        NR == FNR { if (FNR > 1) theirs[$1] = $0; next }
        FNR == 1 {
            if (kind == "accuracy")
                printf "%-14s %8s %4s %8s", "dataset", "rows", "feat", "ours"
            else
                printf "%-14s %8s %4s %9s %10s %9s", "dataset", "rows", "feat", "fit_ms",
                    "single_us", "batch_us"
            if (have && kind == "accuracy") printf " %8s %8s %5s", "sklearn", "diff", "bar"
            if (have && kind == "speed")
                printf " | %9s %10s %9s | %7s %7s %7s", "fit_ms", "single_us", "batch_us",
                    "fit_x", "single_x", "batch_x"
            printf "\n"; next
        }
        {
            if (kind == "accuracy") printf "%-14s %8s %4s %8s", $1, $2, $3, $4
            else printf "%-14s %8s %4s %9s %10s %9s", $1, $2, $3, $4, $5, $6
            if (have && ($1 in theirs)) {
                split(theirs[$1], t, "\t")
                if (kind == "accuracy")
                    printf " %8s %+8.4f %5s", t[4], $4 - t[4], ($4 >= t[4] - 0.005) ? "ok" : "MISS"
                else
                    printf " | %9s %10s %9s | %6.1fx %6.0fx %6.1fx", t[4], t[5], t[6],
                        t[4] / $4, t[5] / $5, t[6] / $6
            }
            printf "\n"
        }' <(echo "$2") <(echo "$1")
}

if [[ $what == accuracy || $what == all ]]; then
    echo
    echo "ROC AUC, mean over seeds 0..$SEEDS (100 trees, 256 samples, fitted and scored on all rows)"
    ours=$("$target/release/examples/accuracy" "$ODDS" --seeds "$SEEDS")
    theirs=""
    $sklearn && theirs=$("$PYTHON" bench/sklearn_compare.py accuracy "$ODDS" --seeds "$SEEDS")
    side_by_side "$ours" "$theirs" accuracy
fi
if [[ $what == speed || $what == all ]]; then
    echo
    echo "Speed, one thread, medians over $REPS repetitions (ours | scikit-learn | scikit-learn ÷ ours)"
    ours=$("$target/release/examples/speed" "$ODDS" --reps "$REPS")
    theirs=""
    $sklearn && theirs=$("$PYTHON" bench/sklearn_compare.py speed "$ODDS" --reps "$REPS")
    side_by_side "$ours" "$theirs" speed
fi
if [[ $what == range ]]; then
    echo
    echo "ROC AUC with the range check off and on (the same forests), seeds 0..$SEEDS"
    "$target/release/examples/accuracy" "$ODDS" --seeds "$SEEDS" --range-check both
    for check in off on; do
        echo
        echo "Speed with the range check $check, one thread, medians over $REPS repetitions"
        "$target/release/examples/speed" "$ODDS" --reps "$REPS" --range-check "$check"
    done
    echo
    echo "Synthetic event table (examples/events.rs), seeds 0..$SEEDS"
    "$target/release/examples/events" --seeds "$SEEDS"
fi
