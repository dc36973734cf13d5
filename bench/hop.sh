#!/usr/bin/env bash
# One latency measurement of the generator → broker → consumer hop alone (no detector):
# a fresh 3-partition topic, bench/lat_probe.py consuming it from its end, the release
# generator offering RATE records/s for SECONDS. Prints the probe's lines and the broker's CPU.
#
#   BROKERS=127.0.0.1:19600 bench/hop.sh [-X key=value ...]        (generator settings)
#   CONSUMER="fetch.wait.max.ms=5 ..." bench/hop.sh ...             (probe consumer settings)
set -euo pipefail
cd "$(dirname "$0")/.."
BROKERS=${BROKERS:-127.0.0.1:19600}
RATE=${RATE:-10000}
SECONDS_=${SECONDS_:-20}
PY=${PY:-.venv/bin/python}
BIN=${BIN:-target/release}
topic="hop-$$-$RANDOM"
"$BIN/inspector" --brokers "$BROKERS" create-topics "$topic:3" >/dev/null 2>&1
broker_pid=$(pgrep -f "tansu broker --listener-url tcp://$BROKERS" | head -n 1)
cpu() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }
out=$(mktemp)
# shellcheck disable=SC2086
$PY bench/lat_probe.py consume "$BROKERS" "$topic" "$SECONDS_" ${CONSUMER:-} >"$out" 2>&1 &
probe=$!
until grep -q ready "$out"; do sleep 0.1; done
before=$(cpu)
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
read -r busy0 idle0 < <(busy)
"${BIN_GEN:-$BIN}/generator" --brokers "$BROKERS" --topic "$topic" --count $((RATE * SECONDS_)) \
    --rate "$RATE" --seed 2 "$@" >/dev/null 2>&1
wait "$probe"
after=$(cpu)
read -r busy1 idle1 < <(busy)
grep -v ready "$out"
echo "  broker CPU: $(awk -v a="$before" -v b="$after" -v s="$SECONDS_" 'BEGIN { printf "%.0f%%", (b - a) / s }') of one core"
echo "  machine: $(awk -v b="$((busy1 - busy0))" -v i="$((idle1 - idle0))" 'BEGIN { printf "%.0f%% busy (both cores)", 100 * b / (b + i) }')"
rm -f "$out"
