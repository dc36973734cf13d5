#!/usr/bin/env python3
"""Two builds of crates/iforest's `speed` example, run alternately in one go.

    speed_ab.py BEFORE AFTER [--rounds N] [--label-a NAME] [--label-b NAME] [-- SPEED ARGS...]

BEFORE and AFTER are `speed` binaries (for instance an older commit's, built into its own
target folder, and this one's). Rounds run A B B A, A B B A, ... so a machine that gets
slower or faster meanwhile weighs on both alike. Each run prints one median per
table (over its --reps); this prints, per table, the median over the rounds of those figures
for both builds and their ratio (after / before), then the same for the fastest round, which
other work on a shared machine disturbs least. Arguments after `--` go to both binaries
(the ODDS folder, --reps, --tables, --extended). The environment passes through, so
IFOREST_PORTABLE=1 compares the portable walks.
"""
import argparse
import statistics
import subprocess
import sys

COLUMNS = ["fit_ms", "single_us", "batch_us_per_row"]


def run(binary, args):
    output = subprocess.run([binary] + args, check=True, capture_output=True, text=True).stdout
    lines = [line.split("\t") for line in output.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    return {row[0]: {c: float(row[header.index(c)]) for c in COLUMNS} for row in rows}


def main():
    argv = sys.argv[1:]
    passed = []
    if "--" in argv:
        at = argv.index("--")
        argv, passed = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--label-a", default="before")
    parser.add_argument("--label-b", default="after")
    options = parser.parse_args(argv)

    results = {"a": [], "b": []}
    for round_index in range(options.rounds):
        order = "ab" if round_index % 2 == 0 else "ba"
        for which in order:
            binary = options.before if which == "a" else options.after
            results[which].append(run(binary, passed))
            print(f"round {round_index + 1}/{options.rounds}: {which} done", file=sys.stderr)

    tables = list(results["a"][0])
    print(f"medians over {options.rounds} rounds; ratio = {options.label_b} / {options.label_a}")
    a_name, b_name = options.label_a, options.label_b
    print(f"{'dataset':<14} {'column':<17} {a_name:>10} {b_name:>10} {'ratio':>7}"
          f" {'min ' + a_name:>12} {'min ' + b_name:>12} {'ratio':>7}")
    for table in tables:
        for column in COLUMNS:
            a = [run[table][column] for run in results["a"]]
            b = [run[table][column] for run in results["b"]]
            ma, mb = statistics.median(a), statistics.median(b)
            la, lb = min(a), min(b)
            print(f"{table:<14} {column:<17} {ma:>10.3f} {mb:>10.3f} {mb / ma:>7.3f}"
                  f" {la:>12.3f} {lb:>12.3f} {lb / la:>7.3f}")


if __name__ == "__main__":
    main()
