//! Ranking and classification metrics for labelled scores (1 = anomaly, higher score = more
//! anomalous), defined as scikit-learn defines them so figures compare one to one.

/// Area under the ROC curve, ties counted as half (Mann–Whitney with average ranks).
/// `None` when the labels hold a single class.
pub fn roc_auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&label| label == 1).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + end + 1) as f64 / 2.0;
        let tied_positives = order[start..end]
            .iter()
            .filter(|&&i| labels[i] == 1)
            .count();
        positive_rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let positives = positives as f64;
    Some((positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives as f64))
}

/// Average precision: Σ (Rₙ − Rₙ₋₁)·Pₙ over the distinct score thresholds, highest first.
/// `None` when there is no positive label.
pub fn average_precision(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let positives = labels.iter().filter(|&&label| label == 1).count();
    if positives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut true_positives, mut seen, mut previous_recall, mut sum) = (0usize, 0usize, 0.0, 0.0);
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        true_positives += order[start..end]
            .iter()
            .filter(|&&i| labels[i] == 1)
            .count();
        seen += end - start;
        let recall = true_positives as f64 / positives as f64;
        sum += (recall - previous_recall) * (true_positives as f64 / seen as f64);
        previous_recall = recall;
        start = end;
    }
    Some(sum)
}

/// Counts of a binary prediction against labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Predicted anomaly, labelled anomaly.
    pub true_positives: usize,
    /// Predicted anomaly, labelled normal.
    pub false_positives: usize,
    /// Predicted normal, labelled anomaly.
    pub false_negatives: usize,
    /// Predicted normal, labelled normal.
    pub true_negatives: usize,
}

impl Confusion {
    /// Tallies `predicted[i]` (true = anomaly) against `labels[i]`.
    pub fn tally(predicted: &[bool], labels: &[u8]) -> Self {
        let mut confusion = Self::default();
        for (&anomaly, &label) in predicted.iter().zip(labels) {
            match (anomaly, label == 1) {
                (true, true) => confusion.true_positives += 1,
                (true, false) => confusion.false_positives += 1,
                (false, true) => confusion.false_negatives += 1,
                (false, false) => confusion.true_negatives += 1,
            }
        }
        confusion
    }

    /// Share of predicted anomalies that are labelled anomalies (0 when none predicted).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Share of labelled anomalies that were predicted (0 when none labelled).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_inverted_and_tied_rankings() {
        let labels = [0, 0, 1, 1];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &labels), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.2], &[1, 1]), None);
    }

    #[test]
    fn auc_matches_scikit_learn_on_a_small_case() {
        // sklearn.metrics.roc_auc_score([0,1,0,1,1], [0.1,0.4,0.35,0.8,0.35]) == 0.91666…
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8, 0.35], &[0, 1, 0, 1, 1]).unwrap();
        assert!((auc - 11.0 / 12.0).abs() < 1e-12, "{auc}");
    }

    #[test]
    fn average_precision_matches_scikit_learn() {
        // sklearn.metrics.average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.8333…
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
        assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
        assert_eq!(average_precision(&[0.3], &[0]), None);
    }

    #[test]
    fn confusion_counts_and_rates() {
        let confusion = Confusion::tally(&[true, true, false, false, true], &[1, 0, 1, 0, 1]);
        assert_eq!(
            confusion,
            Confusion {
                true_positives: 2,
                false_positives: 1,
                false_negatives: 1,
                true_negatives: 1
            }
        );
        assert!((confusion.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((confusion.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((confusion.f1() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(Confusion::default().precision(), 0.0);
    }
}
