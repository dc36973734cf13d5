#!/usr/bin/env python3
"""scikit-learn's IsolationForest on the same data and settings as crates/iforest's examples.

    sklearn_compare.py accuracy ODDS_DIR [--seeds N]   dataset, rows, features, auc
    sklearn_compare.py speed ODDS_DIR [--reps N]       dataset, rows, features, fit_ms,
                                                       single_us, batch_us_per_row

100 trees, 256 samples; AUC is the mean over seeds 0..N, fitted and scored on all rows.
Speed is one thread (set OMP_NUM_THREADS=1 etc. before starting Python), medians over
--reps repetitions. Output is tab-separated, with a header, like the Rust examples.
"""
import argparse
import glob
import os
import statistics
import time

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

SINGLE_ROWS = 300  # rows scored one call at a time per repetition
# The synthetic table (1000 rows) is scored tiled to this many rows, so a per-call overhead
# does not count as per-row cost (the Rust example does the same).
SYNTHETIC_BATCH_ROWS = 100_000


def read(path):
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    return table[:, :-1], table[:, -1]


def two_clusters():
    """Two clusters of 500 points, 0.3·N(0, 1) around (2, 2) and (−2, −2)."""
    rng = np.random.default_rng(42)
    return np.vstack([c + 0.3 * rng.standard_normal((500, 2)) for c in (2.0, -2.0)])


def forest(seed):
    return IsolationForest(n_estimators=100, max_samples=256, random_state=seed, n_jobs=1)


def accuracy(odds, seeds):
    print("dataset\trows\tfeatures\tauc")
    for path in sorted(glob.glob(os.path.join(odds, "*.csv"))):
        x, y = read(path)
        aucs = [roc_auc_score(y, -forest(s).fit(x).score_samples(x)) for s in range(seeds)]
        name = os.path.splitext(os.path.basename(path))[0]
        print(f"{name}\t{len(x)}\t{x.shape[1]}\t{statistics.fmean(aucs):.4f}")


def median_of(reps, run):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(odds, reps):
    print("dataset\trows\tfeatures\tfit_ms\tsingle_us\tbatch_us_per_row")
    tables = [("synthetic-2d", two_clusters())]
    for name in ("http", "shuttle", "satellite"):
        tables.append((name, read(os.path.join(odds, f"{name}.csv"))[0]))
    for name, x in tables:
        fit = median_of(reps, lambda: forest(1).fit(x))
        model = forest(1).fit(x)
        rows = [x[i % len(x)].reshape(1, -1) for i in range(SINGLE_ROWS)]

        def one_by_one():
            for row in rows:
                model.score_samples(row)

        single = median_of(max(1, reps // 2), one_by_one) / len(rows)
        batch_rows = x if len(x) >= SYNTHETIC_BATCH_ROWS else np.tile(x, (SYNTHETIC_BATCH_ROWS // len(x), 1))
        batch = median_of(reps, lambda: model.score_samples(batch_rows)) / len(batch_rows)
        print(f"{name}\t{len(x)}\t{x.shape[1]}\t{fit * 1e3:.2f}\t{single * 1e6:.3f}\t"
              f"{batch * 1e6:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["accuracy", "speed"])
    parser.add_argument("odds")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if args.what == "accuracy":
        accuracy(args.odds, args.seeds)
    else:
        speed(args.odds, args.reps)


if __name__ == "__main__":
    main()
