//! Pairwise precision / recall / F-measure of a clustering.
//!
//! Over all unordered item pairs: a pair is *predicted positive* when both
//! items share a predicted cluster and *truly positive* when they share an
//! identity. Precision = TP / predicted-positive pairs, recall = TP / true
//! pairs (the same counts as scikit-learn's `pair_confusion_matrix`), F is
//! their harmonic mean. With no predicted (or no true) pair the ratio is
//! 0/0; it is reported as 1.0, as nothing wrong was claimed (or missed).

use super::contingency::Contingency;

fn pairs(n: u64) -> u128 {
    let n = n as u128;
    n * n.saturating_sub(1) / 2
}

/// `(precision, recall, f)`.
pub fn pairwise_prf(table: &Contingency) -> (f64, f64, f64) {
    let tp: u128 = table.cells.iter().map(|&c| pairs(c)).sum();
    let pred: u128 = table.pred_sizes.iter().map(|&c| pairs(c)).sum();
    let truth: u128 = table.truth_sizes.iter().map(|&c| pairs(c)).sum();
    let precision = if pred == 0 { 1.0 } else { tp as f64 / pred as f64 };
    let recall = if truth == 0 { 1.0 } else { tp as f64 / truth as f64 };
    (precision, recall, harmonic(precision, recall))
}

pub(crate) fn harmonic(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // truth {0,1,2}{3,4}, pred {0,1}{2,3,4}
        // true pairs: 3 + 1 = 4; predicted: 1 + 3 = 4; TP: (0,1),(3,4) = 2
        let t = Contingency::new(&[0, 0, 0, 1, 1], &[5, 5, 7, 7, 7]);
        let (p, r, f) = pairwise_prf(&t);
        assert_eq!((p, r, f), (0.5, 0.5, 0.5));
    }

    #[test]
    fn noise_items_are_singletons() {
        // pred all noise: no predicted pairs → precision 1 by convention, recall 0
        let t = Contingency::new(&[0, 0, 1], &[-1, -1, -1]);
        assert_eq!(pairwise_prf(&t), (1.0, 0.0, 0.0));
    }
}
