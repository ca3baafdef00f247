//! Error-versus-reject curves (ERC) of face quality scores, as in MagFace's
//! quality evaluation (Meng et al., CVPR 2021, §4.3, after Grother & Tabassi,
//! "Performance of biometric quality measures", TPAMI 2007):
//!
//! 1. pair quality = min of the two faces' qualities;
//! 2. the decision threshold is fixed once, on the *unfiltered* set, at the
//!    operating point of TAR@FAR for the target FMR (default 1e-3), i.e. the
//!    lowest threshold whose FMR does not exceed the target;
//! 3. for each reject fraction r (0 … 0.95) the ⌊r·G⌋ lowest-quality genuine
//!    pairs are dropped (ties keep input order) and the FNMR of the remaining
//!    genuine pairs is measured at that fixed threshold (FNMR only depends on
//!    genuine pairs; impostors set the threshold);
//! 4. the area under the curve (trapezoid over r) summarises it — lower is a
//!    better quality measure.

use serde::Serialize;

use crate::io::erc_csv::QualityPairs;
use crate::roc::{roc_summary, LabelledScores};

/// Default target false-match rate (MagFace's ERC figures use FMR = 1e-3).
pub const DEFAULT_TARGET_FMR: f64 = 1e-3;

/// Reject fractions 0, 0.01, …, 0.95.
pub fn default_fractions() -> Vec<f64> {
    (0..=95).map(|i| i as f64 / 100.0).collect()
}

/// One quality measure's curve.
#[derive(Debug, Clone, Serialize)]
pub struct ErcCurve {
    /// The quality measure's name (its CSV column prefix).
    pub name: String,
    /// Fixed decision threshold (accept `score ≥ threshold`).
    pub threshold: f64,
    /// Reject fractions r as given, ascending ([`default_fractions`]: 0, 0.01, …, 0.95).
    pub fractions: Vec<f64>,
    /// FNMR of the genuine pairs kept at each fraction (same order), in [0, 1].
    pub fnmr: Vec<f64>,
    /// Trapezoidal area under FNMR(r) over the fractions.
    pub area: f64,
}

/// Threshold fixed on all pairs at `target_fmr`.
pub fn fixed_threshold(scores: &[f64], is_same: &[bool], target_fmr: f64) -> f64 {
    let summary = roc_summary(&LabelledScores::from_pairs(scores, is_same), &[target_fmr]);
    summary.tar_at_far[0].threshold
}

/// ERC of one quality measure; `pair_quality[i]` belongs to pair `i`.
pub fn erc_curve(name: &str, scores: &[f64], is_same: &[bool], pair_quality: &[f64], threshold: f64, fractions: &[f64]) -> ErcCurve {
    let mut genuine: Vec<(f64, f64)> = (0..scores.len()).filter(|&i| is_same[i]).map(|i| (pair_quality[i], scores[i])).collect();
    genuine.sort_by(|a, b| a.0.total_cmp(&b.0)); // stable: ties keep input order
    let g = genuine.len();
    // misses_from[k] = false non-matches among genuine[k..]
    let mut misses_from = vec![0usize; g + 1];
    for k in (0..g).rev() {
        misses_from[k] = misses_from[k + 1] + usize::from(genuine[k].1 < threshold);
    }
    let fnmr: Vec<f64> = fractions
        .iter()
        .map(|&r| {
            let drop = ((r * g as f64) + 1e-9).floor() as usize;
            let drop = drop.min(g.saturating_sub(1));
            misses_from[drop] as f64 / (g - drop) as f64
        })
        .collect();
    let area = fractions.windows(2).zip(fnmr.windows(2)).map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0).sum();
    ErcCurve { name: name.to_string(), threshold, fractions: fractions.to_vec(), fnmr, area }
}

/// The ERC of every quality measure of `pairs`, in column order, all at one
/// threshold fixed on the unfiltered pairs at `target_fmr` and over
/// [`default_fractions`]. `pairs` must hold both genuine and impostor pairs
/// (as [`read_erc_csv`](crate::io::erc_csv::read_erc_csv) guarantees).
pub fn erc_curves(pairs: &QualityPairs, target_fmr: f64) -> Vec<ErcCurve> {
    let threshold = fixed_threshold(&pairs.scores, &pairs.is_same, target_fmr);
    let fractions = default_fractions();
    pairs.pair_quality.iter().map(|(name, q)| erc_curve(name, &pairs.scores, &pairs.is_same, q, threshold, &fractions)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejecting_bad_quality_misses_lowers_fnmr() {
        // 4 genuine: two misses (score 0.1) with the lowest quality; 2 impostors
        let scores = [0.1, 0.1, 0.9, 0.8, 0.2, 0.0];
        let same = [true, true, true, true, false, false];
        let quality = [0.1, 0.2, 0.9, 0.8, 0.5, 0.5];
        let t = fixed_threshold(&scores, &same, 0.0); // no impostor accepted: t = 0.8
        assert_eq!(t, 0.8);
        let c = erc_curve("q", &scores, &same, &quality, t, &[0.0, 0.25, 0.5]);
        assert_eq!(c.fnmr, vec![0.5, 1.0 / 3.0, 0.0]);
        let area = 0.25 * (0.5 + 1.0 / 3.0) / 2.0 + 0.25 * (1.0 / 3.0) / 2.0;
        assert!((c.area - area).abs() < 1e-15);
    }
}
