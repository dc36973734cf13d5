//! Models and points the tests draw.

use iforest::{Contamination, IsolationForest, IsolationForestParams};

use super::points::Points;

/// The original's two clusters, and a few points far from both.
pub fn two_d() -> (IsolationForest, Points) {
    let table = dataset::synthetic_training_data(3);
    let model = IsolationForestParams::new()
        .n_trees(50)
        .contamination(Contamination::Fraction(0.01))
        .seed(3)
        .fit(&table.data, 2)
        .unwrap();
    let mut data = table.data[..400].to_vec();
    data.extend_from_slice(&[3.5, -3.5, -3.8, 3.1, 0.0, 0.1, 3.9, 3.9]);
    let flagged = data
        .chunks(2)
        .map(|row| model.predict(row).unwrap())
        .collect();
    let points = Points {
        n_features: 2,
        data,
        flagged,
        labels: None,
    };
    (model, points)
}

/// Six features: a Gaussian-like cloud and a few far rows (labelled 1).
pub fn many_features() -> (IsolationForest, Points) {
    let n_features = 6;
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for row in 0..1500 {
        let anomaly = row % 100 == 0;
        for feature in 0..n_features {
            let jitter = ((row * 7 + feature * 13) as f64 * 0.618_034).fract() - 0.5;
            data.push(if anomaly { 6.0 + jitter } else { jitter });
        }
        labels.push(u8::from(anomaly));
    }
    let model = IsolationForestParams::new()
        .contamination(Contamination::Fraction(0.01))
        .seed(1)
        .fit(&data, n_features)
        .unwrap();
    let flagged = data
        .chunks(n_features)
        .map(|row| model.predict(row).unwrap())
        .collect();
    let points = Points {
        n_features,
        data,
        flagged,
        labels: Some(labels),
    };
    (model, points)
}
