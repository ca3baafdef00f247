//! The insightface verification protocol (LFW-style; arcface_torch
//! `eval/verification.py`, restated in docs/spec/formats.md):
//! - embedding of a face = embedding(image) + embedding(horizontal flip),
//!   L2-normalised;
//! - distance of a pair = squared L2 distance (in [0, 4]);
//! - 10 folds in file order (no shuffle; the first `N mod 10` folds get one
//!   extra pair, as scikit-learn's `KFold`); for each fold the threshold is the
//!   one of 0, 0.01, …, 3.99 with the best accuracy on the other 9 folds
//!   (first best on ties), predicting "same" when `distance < threshold`;
//! - report mean and (population) standard deviation of the fold accuracies.

use ndarray::{Array2, Axis};
use serde::Serialize;

/// Protocol parameters; defaults are insightface's.
#[derive(Debug, Clone)]
pub struct VerificationConfig {
    /// Number of folds (10); [`kfold_accuracy`] clamps it to `2 ..= pairs`.
    pub folds: usize,
    /// Candidate thresholds on the squared distance.
    pub thresholds: Vec<f64>,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        // numpy's arange(0, 4, 0.01): start + i·step
        VerificationConfig { folds: 10, thresholds: (0..400).map(|i| i as f64 * 0.01).collect() }
    }
}

/// The protocol's outcome (`visage eval verify --json` prints this struct).
#[derive(Debug, Clone, Serialize)]
pub struct VerificationResult {
    /// Mean of the fold accuracies, in [0, 1] (the number papers report for LFW & co.).
    pub accuracy_mean: f64,
    /// Population standard deviation of the fold accuracies (NumPy's `std`).
    pub accuracy_std: f64,
    /// Accuracy on each test fold, in fold order.
    pub fold_accuracy: Vec<f64>,
    /// The squared-distance threshold chosen on the other folds, per fold.
    pub fold_threshold: Vec<f64>,
}

/// Image + flip embeddings summed, then each row L2-normalised.
pub fn combine_with_flip(embeddings: &Array2<f64>, flipped: Option<&Array2<f64>>) -> Array2<f64> {
    let mut sum = match flipped {
        Some(f) => embeddings + f,
        None => embeddings.clone(),
    };
    for mut row in sum.axis_iter_mut(Axis(0)) {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row.mapv_inplace(|v| v / norm);
        }
    }
    sum
}

/// Squared L2 distance of each pair of rows.
pub fn squared_distances(embeddings: &Array2<f64>, pairs: &[(usize, usize)]) -> Vec<f64> {
    pairs.iter().map(|&(a, b)| embeddings.row(a).iter().zip(embeddings.row(b).iter()).map(|(x, y)| (x - y) * (x - y)).sum()).collect()
}

fn accuracy(distances: &[f64], issame: &[bool], idx: &[usize], threshold: f64) -> f64 {
    let correct = idx.iter().filter(|&&i| (distances[i] < threshold) == issame[i]).count();
    correct as f64 / idx.len() as f64
}

/// k-fold accuracy with the threshold chosen on the other folds.
pub fn kfold_accuracy(distances: &[f64], issame: &[bool], config: &VerificationConfig) -> VerificationResult {
    let n = distances.len();
    let folds = config.folds.clamp(2, n.max(2));
    let mut bounds = vec![0usize];
    for k in 0..folds {
        let size = n / folds + usize::from(k < n % folds);
        bounds.push(bounds[k] + size);
    }
    let mut fold_accuracy = Vec::with_capacity(folds);
    let mut fold_threshold = Vec::with_capacity(folds);
    for k in 0..folds {
        let test: Vec<usize> = (bounds[k]..bounds[k + 1]).collect();
        let train: Vec<usize> = (0..n).filter(|i| *i < bounds[k] || *i >= bounds[k + 1]).collect();
        let mut best = (f64::NEG_INFINITY, 0.0);
        for &t in &config.thresholds {
            let acc = accuracy(distances, issame, &train, t);
            if acc > best.0 {
                best = (acc, t);
            }
        }
        fold_threshold.push(best.1);
        fold_accuracy.push(accuracy(distances, issame, &test, best.1));
    }
    let mean = fold_accuracy.iter().sum::<f64>() / folds as f64;
    let var = fold_accuracy.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / folds as f64;
    VerificationResult { accuracy_mean: mean, accuracy_std: var.sqrt(), fold_accuracy, fold_threshold }
}

/// The whole protocol on embeddings: [`combine_with_flip`], the
/// [`squared_distances`] of `pairs` (0-based rows of `embeddings`; an index
/// past the last row panics) and [`kfold_accuracy`] against `issame` (one
/// flag per pair). `flipped`, when given, has the shape of `embeddings`.
pub fn evaluate_pairs(
    embeddings: &Array2<f64>,
    flipped: Option<&Array2<f64>>,
    pairs: &[(usize, usize)],
    issame: &[bool],
    config: &VerificationConfig,
) -> VerificationResult {
    let combined = combine_with_flip(embeddings, flipped);
    let distances = squared_distances(&combined, pairs);
    kfold_accuracy(&distances, issame, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_separable_pairs_score_one() {
        // same pairs at distance 0.5, different at 2.5: any threshold in (0.5, 2.5] is perfect
        let distances: Vec<f64> = (0..40).map(|i| if i % 2 == 0 { 0.5 } else { 2.5 }).collect();
        let issame: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let r = kfold_accuracy(&distances, &issame, &VerificationConfig::default());
        assert_eq!(r.accuracy_mean, 1.0);
        assert_eq!(r.accuracy_std, 0.0);
        assert!(r.fold_threshold.iter().all(|&t| (t - 0.51).abs() < 1e-12), "{:?}", r.fold_threshold);
    }

    #[test]
    fn fold_sizes_follow_kfold() {
        // 23 pairs: folds of 3,3,3,2,…; an all-wrong test fold shows up exactly
        let distances = vec![1.0; 23];
        let issame = vec![true; 23];
        let r = kfold_accuracy(&distances, &issame, &VerificationConfig::default());
        assert_eq!(r.fold_accuracy.len(), 10);
        assert!(r.fold_accuracy.iter().all(|&a| a == 1.0)); // threshold 1.01 accepts all
    }
}
