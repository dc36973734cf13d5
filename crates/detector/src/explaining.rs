//! The explanation every anomaly carries: the [`TOP`] features with the largest share of its
//! isolation, with their direction ([`Explainer`]). It is `iforest`'s attribution
//! (`IsolationForest::attribute`, what `explain` and `trainer score --explain` use), computed
//! only for the records above the threshold, into buffers kept across records.

use iforest::{FeatureContribution, IsolationForest};
use schema::{Direction, FeatureShare};

/// Features named in an explanation.
pub const TOP: usize = 3;

/// Reused buffers for explanations.
#[derive(Debug, Default)]
pub struct Explainer {
    contributions: Vec<FeatureContribution>,
    top: Vec<FeatureShare>,
}

impl Explainer {
    /// The largest shares of `row`'s isolation (at most [`TOP`]), largest first, ties in
    /// feature order (as `IsolationForest::explain` orders them). Empty when the forest
    /// refuses the row (it scored it, so it does not).
    pub fn top(&mut self, forest: &IsolationForest, row: &[f64]) -> &[FeatureShare] {
        self.top.clear();
        if let Err(error) = forest.attribute(row, &mut self.contributions) {
            log::warn!("an anomaly's explanation failed ({error}); it is written without one");
            return &self.top;
        }
        let by_share = |a: &FeatureContribution, b: &FeatureContribution| {
            b.share.total_cmp(&a.share).then(a.feature.cmp(&b.feature))
        };
        if self.contributions.len() > TOP {
            self.contributions.select_nth_unstable_by(TOP - 1, by_share);
            self.contributions.truncate(TOP);
        }
        self.contributions.sort_unstable_by(by_share);
        self.top
            .extend(self.contributions.iter().map(|contribution| FeatureShare {
                feature: contribution.feature,
                direction: match contribution.direction {
                    iforest::Direction::High => Direction::High,
                    iforest::Direction::Low => Direction::Low,
                },
                share: contribution.share,
            }));
        &self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::IsolationForestParams;

    #[test]
    fn the_top_three_are_explain_s_first_three() {
        let features = 6;
        let data: Vec<f64> = (0..3000 * features)
            .map(|i| ((i as f64 * 0.618_033_988_7).fract() - 0.5) * 2.0)
            .collect();
        let forest = IsolationForestParams::new()
            .seed(4)
            .fit(&data, features)
            .unwrap();
        let mut explainer = Explainer::default();
        for point in [
            [0.0, 9.0, 0.0, 0.0, -6.0, 0.0],
            [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
            [-3.0, 0.2, 4.0, -0.3, 0.0, 2.0],
        ] {
            let explained = forest.explain(&point).unwrap();
            let top = explainer.top(&forest, &point).to_vec();
            assert_eq!(top.len(), TOP);
            for (got, expected) in top.iter().zip(&explained.contributions) {
                assert_eq!(got.feature, expected.feature);
                assert_eq!(got.share.to_bits(), expected.share.to_bits());
                assert_eq!(got.direction.as_str(), expected.direction.to_string());
            }
            assert!(top.iter().map(|s| s.share).sum::<f64>() <= 1.0 + 1e-12);
        }
        // Fewer features than the top: all of them.
        let narrow = IsolationForestParams::new()
            .seed(1)
            .fit(&data[..2 * 500], 2)
            .unwrap();
        let top = explainer.top(&narrow, &[5.0, 0.0]).to_vec();
        assert_eq!(top.len(), 2);
        assert!(top[0].share >= top[1].share);
        assert!((top[0].share + top[1].share - 1.0).abs() < 1e-12);
        // A row the forest refuses: no explanation, no panic.
        assert!(explainer.top(&narrow, &[f64::NAN, 0.0]).is_empty());
    }
}
