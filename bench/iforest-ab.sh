#!/usr/bin/env bash
# Scoring and attribution speed of crates/iforest at an older commit (BASE) and in this
# checkout (range check off and on), in one process, timed in turn round after round
# (bench/iforest_ab.rs).
# On a machine shared with other work this compares far more steadily than separate runs.
#
# Usage, from anywhere: bench/iforest-ab.sh BASE [ROUNDS] [TABLES]
#   BASE    a commit whose crates/iforest has IsolationForestParams::fit and score_batch_into
#   ROUNDS  default 31;  TABLES  default synthetic-2d,http,shuttle,satellite
# Environment: ODDS_DIR (default bench/data/odds), AB_DIR (scratch folder, default
# target/iforest-ab), IFOREST_PORTABLE=1 to compare the portable walks.
# The scratch folder gets BASE's workspace manifest and crates/iforest (renamed to version
# 0.0.0 so both can be linked), and a one-file project using both; nothing else is touched.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '5,8p' "$0"; exit 2; }
base=$1
rounds=${2:-31}
tables=${3:-synthetic-2d,http,shuttle,satellite}
odds=${ODDS_DIR:-}
[[ -n $odds && $odds != /* ]] && odds=$PWD/$odds
cd "$(dirname "$0")/.."
repo=$PWD
odds=${odds:-$repo/bench/data/odds}
scratch=${AB_DIR:-$repo/target/iforest-ab}

rm -rf "$scratch/base"
mkdir -p "$scratch/base" "$scratch/harness/src"
git archive "$base" Cargo.toml crates/iforest | tar -x -C "$scratch/base"
sed -i.orig 's/^version.workspace = true/version = "0.0.0"/' "$scratch/base/crates/iforest/Cargo.toml"
cp bench/iforest_ab.rs "$scratch/harness/src/main.rs"
cat >"$scratch/harness/Cargo.toml" <<EOF
[package]
name = "iforest_ab"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
base = { package = "iforest", path = "$scratch/base/crates/iforest" }
new = { package = "iforest", path = "$repo/crates/iforest" }

[profile.release]
codegen-units = 1
lto = "thin"

[lints.rust]
unexpected_cfgs = { level = "warn", check-cfg = ["cfg(base_range)", "cfg(base_attribute)"] }

[workspace]
EOF
# What base has, for the harness's cfgs (see bench/iforest_ab.rs).
cfgs=()
grep -q "enum RangeCheck" "$scratch/base/crates/iforest/src/params.rs" && cfgs+=(--cfg base_range)
grep -rq "pub fn attribute(" "$scratch/base/crates/iforest/src" && cfgs+=(--cfg base_attribute)
RUSTFLAGS="${RUSTFLAGS:-} ${cfgs[*]}" cargo build --quiet --release \
    --manifest-path "$scratch/harness/Cargo.toml" --target-dir "$scratch/target"
echo "base $(git rev-parse --short "$base") vs this checkout ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', modified')), $(nproc) cores, $(uname -m)"
"$scratch/target/release/iforest_ab" "$odds" "$rounds" "$tables"
