#!/usr/bin/env python3
"""Fit the notebook's model: an IsolationForest on two synthetic 2-D clusters, saved with joblib."""
import argparse

import numpy as np
from joblib import dump
from sklearn.ensemble import IsolationForest

TREES = 50
SAMPLES = 500
CONTAMINATION = 0.01


def training_points(seed):
    """Two clusters of the same 500 draws, around (2, 2) and (-2, -2), to 3 decimals."""
    rng = np.random.RandomState(seed)
    spread = 0.3 * rng.randn(500, 2)
    return np.round(np.concatenate([spread + 2, spread - 2]), 3), rng


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="isolation_forest.joblib", help="where to save the model")
    parser.add_argument("--seed", type=int, default=42)
    options = parser.parse_args()

    points, rng = training_points(options.seed)
    model = IsolationForest(
        n_estimators=TREES, max_samples=SAMPLES, contamination=CONTAMINATION, random_state=rng
    )
    model.fit(points)
    dump(model, options.out)
    print(f"train.py: rows={len(points)} trees={TREES} samples={SAMPLES} out={options.out}")


if __name__ == "__main__":
    main()
