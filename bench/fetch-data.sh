#!/usr/bin/env bash
# Fetches the six ODDS tables the iforest benchmarks use (cardio, http, mammography,
# satellite, shuttle, thyroid) into bench/data/odds (git-ignored), as CSV `f0,...,fN,label`.
#
# Source: ADBench's copies of the ODDS tables, `.npz` files (arrays X and y) in
#   https://github.com/Minqi824/ADBench/tree/main/adbench/datasets/Classical
# converted to CSV by bench/npz_to_csv.py (Python standard library only): every value written
# with "%g" (six significant digits, integers without a decimal point), "\n" line ends.
# The SHA-256 sums below are of those converted CSV tables, not of the `.npz` files; they were
# checked against ADBench at commit 3dac822. A table whose sum differs is kept aside as
# <name>.csv.unverified and the script fails.
#
# Offline: ODDS_DIR=/folder/with/the/csv/tables bench/fetch-data.sh downloads nothing and
# checks the same sums on the tables in that folder (then run the benchmarks with the same
# ODDS_DIR).
#
# Licence and citation. ODDS: Shebuti Rayana (2016). ODDS Library
# [http://odds.cs.stonybrook.edu]. Stony Brook University, Department of Computer Sciences.
# ADBench: Songqiao Han, Xiyang Hu, Hailiang Huang, Minqi Jiang, Yue Zhao (2022). ADBench:
# Anomaly Detection Benchmark. NeurIPS 2022 Datasets and Benchmarks; its repository is
# BSD-2-Clause. The tables derive from public data sets (UCI Machine Learning Repository;
# http from KDD Cup 1999), under their own terms; cite ODDS and ADBench when you publish
# results on them. The tables are not redistributed with this repository.
#
# Usage, from anywhere: bench/fetch-data.sh [DEST]      (DEST default bench/data/odds)
# Environment: ODDS_DIR (offline check), PYTHON (default python3), ADBENCH_URL (the folder
# of the .npz files, default the one above on the main branch).
set -euo pipefail
# Paths given are relative to where the script is started; the defaults to the repository.
absolute() { [[ $1 == /* ]] && echo "$1" || echo "$PWD/$1"; }
dest=${1:+$(absolute "$1")}
[[ -n ${ODDS_DIR:-} ]] && ODDS_DIR=$(absolute "$ODDS_DIR")
cd "$(dirname "$0")/.."
dest=${dest:-bench/data/odds}
PYTHON=${PYTHON:-python3}
ADBENCH_URL=${ADBENCH_URL:-https://github.com/Minqi824/ADBench/raw/main/adbench/datasets/Classical}

# name, ADBench file, SHA-256 of the converted CSV.
TABLES="
cardio      6_cardio        c26b73e9cee1107540632df212d0fb5da526fbc31af0749f1c49ce6ba7241197
http        16_http         364a9cc8d50e5930508003aea0f66dc26576a34f4a7c6c17dbad0f65c53b3612
mammography 23_mammography  8da63d937a314e591e1eff2fe5a8388c00f5456cc6ba12c6f496b97e0683a892
satellite   30_satellite    8ceca3e9d2f4c20b67cae96c8f3a95112b5e28b7031034158edd35e064a4b1f5
shuttle     32_shuttle      1fc940b0bba548da29a73e81d6e83552a483ff36a4be26fa6f5e06738b2333bc
thyroid     38_thyroid      6b7db897a57e957bdf154b121314e57df25dac2e49971cf6ef108abf99294834
"

sha256() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

download() {
    if command -v curl >/dev/null; then
        curl -fsSL --retry 2 -o "$2" "$1"
    else
        "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
            "$1" "$2"
    fi
}

failed=0
if [[ -n ${ODDS_DIR:-} ]]; then
    echo "checking the tables in $ODDS_DIR (ODDS_DIR is set: nothing is downloaded)"
    while read -r name _ expected; do
        [[ -z $name ]] && continue
        table=$ODDS_DIR/$name.csv
        if [[ ! -f $table ]]; then
            echo "missing   $table"
            failed=1
        elif [[ $(sha256 "$table") == "$expected" ]]; then
            echo "ok        $table"
        else
            echo "MISMATCH  $table (sha256 $(sha256 "$table"), expected $expected)"
            failed=1
        fi
    done <<<"$TABLES"
    exit $failed
fi

mkdir -p "$dest"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
while read -r name file expected; do
    [[ -z $name ]] && continue
    table=$dest/$name.csv
    if [[ -f $table && $(sha256 "$table") == "$expected" ]]; then
        echo "ok        $table (already there)"
        continue
    fi
    if ! download "$ADBENCH_URL/$file.npz" "$scratch/$file.npz"; then
        echo "cannot download $ADBENCH_URL/$file.npz; offline? Set ODDS_DIR to a folder" \
            "holding the CSV tables to check them there." >&2
        exit 1
    fi
    "$PYTHON" bench/npz_to_csv.py "$scratch/$file.npz" "$scratch/$name.csv"
    actual=$(sha256 "$scratch/$name.csv")
    if [[ $actual == "$expected" ]]; then
        mv "$scratch/$name.csv" "$table"
        echo "ok        $table"
    else
        mv "$scratch/$name.csv" "$table.unverified"
        echo "MISMATCH  $table.unverified (sha256 $actual, expected $expected)"
        failed=1
    fi
done <<<"$TABLES"
exit $failed
