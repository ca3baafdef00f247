//! Exact ROC of a verification system, and the numbers read from it:
//! AUC, EER and TAR@FAR.
//!
//! Definitions (the evaluation issue; scikit-learn's `roc_curve` conventions):
//! - a threshold `t` accepts a pair when `score ≥ t`; the ROC points are the
//!   operating points at every distinct score, from `+∞` (accept nothing,
//!   point (0, 0)) down to the lowest score (accept everything, point (1, 1)).
//!   Tied scores enter together, so ties are never split.
//! - AUC: trapezoidal area under those points — identical to
//!   `sklearn.metrics.roc_auc_score` (the trapezoid over tied blocks is the
//!   Mann–Whitney statistic with ties counted ½).
//! - EER: `min over thresholds of max(FAR, FRR)` with `FRR = 1 − TAR`.
//! - TAR@FAR: the highest TPR among ROC points with FPR ≤ FAR.
//!
//! The walk is one pass over the two sorted score lists (radix sort, see
//! [`crate::sort`]); AUC is accumulated in integers, so it is exact up to
//! the final division.

use serde::Serialize;

use crate::sort::{key_score, sorted_keys};

/// Default FAR targets of the `visage eval roc` contract: 1e-6 … 1e-1.
pub const DEFAULT_FARS: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

/// Scores of genuine (same identity) and impostor (different identity) pairs.
#[derive(Debug, Clone, Default)]
pub struct LabelledScores {
    pub genuine: Vec<f64>,
    pub impostor: Vec<f64>,
}

impl LabelledScores {
    /// Splits paired `(score, is_same)` slices.
    pub fn from_pairs(scores: &[f64], is_same: &[bool]) -> Self {
        let mut out = LabelledScores::default();
        for (&s, &same) in scores.iter().zip(is_same) {
            if same {
                out.genuine.push(s)
            } else {
                out.impostor.push(s)
            }
        }
        out
    }

    /// A ROC needs both classes; the message says which one is missing.
    pub fn check_both_classes(&self) -> std::result::Result<(), String> {
        match (self.genuine.is_empty(), self.impostor.is_empty()) {
            (true, true) => Err("no pairs: expected rows of `score,label`".into()),
            (true, false) => Err("only impostor pairs (label 0): a ROC needs genuine pairs (label 1) too".into()),
            (false, true) => Err("only genuine pairs (label 1): a ROC needs impostor pairs (label 0) too".into()),
            (false, false) => Ok(()),
        }
    }
}

/// One operating point: accept `score ≥ threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    pub threshold: f64,
    /// False accept rate = FPR.
    pub far: f64,
    /// True accept rate = TPR.
    pub tar: f64,
}

/// TAR at one FAR target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TarAtFar {
    pub far: f64,
    pub tar: f64,
    /// The threshold of the chosen ROC point (`+∞` when no pair may be accepted).
    #[serde(skip)]
    pub threshold: f64,
}

/// Everything `visage eval roc` reports, plus a thinned curve for plots.
#[derive(Debug, Clone)]
pub struct RocSummary {
    pub auc: f64,
    pub eer: f64,
    /// Threshold at which the EER is attained.
    pub eer_threshold: f64,
    pub tar_at_far: Vec<TarAtFar>,
    pub n_genuine: u64,
    pub n_impostor: u64,
    /// ROC points thinned for drawing (≤ a few thousand, endpoints kept).
    pub curve: Vec<RocPoint>,
}

/// Contract output of `visage eval roc --json`.
#[derive(Debug, Serialize)]
pub struct RocReport {
    pub auc: f64,
    pub eer: f64,
    pub tar_at_far: Vec<TarAtFar>,
}

impl RocSummary {
    pub fn report(&self) -> RocReport {
        RocReport { auc: self.auc, eer: self.eer, tar_at_far: self.tar_at_far.clone() }
    }

    /// Threshold whose FAR is the largest not above `target_far` (the
    /// operating point of TAR@FAR), `+∞` when even the top score is too many.
    pub fn threshold_at_far(&self, target_far: f64) -> f64 {
        self.tar_at_far
            .iter()
            .find(|t| t.far == target_far)
            .map(|t| t.threshold)
            .unwrap_or(f64::INFINITY)
    }
}

/// Computes the exact ROC summary. Panics if a class is empty (call
/// [`LabelledScores::check_both_classes`] first) or a score is NaN.
pub fn roc_summary(scores: &LabelledScores, fars: &[f64]) -> RocSummary {
    assert!(!scores.genuine.is_empty() && !scores.impostor.is_empty(), "ROC needs both classes");
    let (genuine, impostor) = rayon::join(|| sorted_keys(&scores.genuine), || sorted_keys(&scores.impostor));
    walk(&genuine, &impostor, fars)
}

/// Streams the ROC points of two ascending key lists from the highest
/// threshold down.
fn walk(genuine: &[u64], impostor: &[u64], fars: &[f64]) -> RocSummary {
    let n_pos = genuine.len() as u64;
    let n_neg = impostor.len() as u64;
    let (pos_f, neg_f) = (n_pos as f64, n_neg as f64);

    let mut gi = genuine.len(); // genuine[gi..] are accepted
    let mut ii = impostor.len();
    let (mut tp, mut fp) = (0u64, 0u64);
    // Σ (fp_k − fp_{k−1})·(tp_k + tp_{k−1}) = 2·P·N·AUC, exact in integers.
    let mut auc_twice: u128 = 0;
    let mut eer = 1.0f64; // the point (0,0) at t = +∞: max(FAR 0, FRR 1)
    let mut eer_threshold = f64::INFINITY;
    let mut tar_at: Vec<TarAtFar> =
        fars.iter().map(|&far| TarAtFar { far, tar: 0.0, threshold: f64::INFINITY }).collect();
    let mut thinner = CurveThinner::new();
    thinner.push(RocPoint { threshold: f64::INFINITY, far: 0.0, tar: 0.0 });

    while gi > 0 || ii > 0 {
        let next_g = if gi > 0 { Some(genuine[gi - 1]) } else { None };
        let next_i = if ii > 0 { Some(impostor[ii - 1]) } else { None };
        let key = match (next_g, next_i) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => unreachable!(),
        };
        let (prev_tp, prev_fp) = (tp, fp);
        while gi > 0 && genuine[gi - 1] == key {
            gi -= 1;
            tp += 1;
        }
        while ii > 0 && impostor[ii - 1] == key {
            ii -= 1;
            fp += 1;
        }
        auc_twice += (fp - prev_fp) as u128 * (tp + prev_tp) as u128;
        let far = fp as f64 / neg_f;
        let tar = tp as f64 / pos_f;
        let threshold = key_score(key);
        let worst = far.max(1.0 - tar);
        if worst < eer {
            eer = worst;
            eer_threshold = threshold;
        }
        for t in tar_at.iter_mut() {
            // TPR only grows along the walk, so the last admissible point is the best.
            if far <= t.far {
                t.tar = tar;
                t.threshold = threshold;
            }
        }
        thinner.push(RocPoint { threshold, far, tar });
    }
    thinner.finish();
    RocSummary {
        auc: auc_twice as f64 / (2.0 * pos_f * neg_f),
        eer,
        eer_threshold,
        tar_at_far: tar_at,
        n_genuine: n_pos,
        n_impostor: n_neg,
        curve: thinner.points,
    }
}

/// Keeps a point when it moves the curve visibly on a log-FAR or linear-TAR
/// axis (250 bins per FAR decade, 1/1000 in TAR); bounds the curve size
/// independently of the number of pairs.
struct CurveThinner {
    points: Vec<RocPoint>,
    pending: Option<RocPoint>,
}

impl CurveThinner {
    fn new() -> Self {
        CurveThinner { points: Vec::new(), pending: None }
    }
    fn bins(p: &RocPoint) -> (i64, i64) {
        let far_bin = if p.far > 0.0 { (p.far.log10() * 250.0).floor() as i64 } else { i64::MIN };
        (far_bin, (p.tar * 1000.0).floor() as i64)
    }
    fn push(&mut self, p: RocPoint) {
        match self.points.last() {
            None => self.points.push(p),
            Some(last) if Self::bins(last) != Self::bins(&p) => {
                // keep the last point of the previous bin, so steps stay steps
                if let Some(prev) = self.pending.take() {
                    if prev != *last {
                        self.points.push(prev);
                    }
                }
                self.points.push(p);
            }
            Some(_) => self.pending = Some(p),
        }
    }
    fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            self.points.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(genuine: &[f64], impostor: &[f64], fars: &[f64]) -> RocSummary {
        roc_summary(&LabelledScores { genuine: genuine.to_vec(), impostor: impostor.to_vec() }, fars)
    }

    /// Hand-computed: genuine {0.9, 0.8, 0.4}, impostor {0.7, 0.3}.
    /// Points (fp,tp): (0,0) (0,1) (0,2) (1,2) (1,3) (2,3) → AUC = 5/6
    /// (5 of 6 genuine–impostor orderings are right).
    #[test]
    fn hand_computed_small_case() {
        let s = summary(&[0.9, 0.8, 0.4], &[0.7, 0.3], &[0.0, 0.5]);
        assert!((s.auc - 5.0 / 6.0).abs() < 1e-15);
        // EER: at t=0.4: FAR 1/2, FRR 0 → 0.5; at t=0.8: FAR 0, FRR 1/3 → 1/3.
        assert!((s.eer - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(s.eer_threshold, 0.8);
        assert!((s.tar_at_far[0].tar - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(s.tar_at_far[1].tar, 1.0);
    }

    /// Ties between classes count ½ in the AUC and are never split by a threshold.
    #[test]
    fn ties_across_classes() {
        // all scores equal: one step from (0,0) to (1,1) → AUC ½, TAR@FAR<1 = 0
        let s = summary(&[0.5, 0.5], &[0.5, 0.5, 0.5], &[0.5, 1.0]);
        assert!((s.auc - 0.5).abs() < 1e-15);
        assert_eq!(s.tar_at_far[0].tar, 0.0);
        assert_eq!(s.tar_at_far[1].tar, 1.0);
        assert_eq!(s.eer, 1.0);
        // genuine {1, 0.5}, impostor {0.5, 0}: points (0,0) (0,.5) (.5,1) (1,1)
        // area = 0 + ½·(0.5+1)/2... = 0.5·0.75 + 0.5·1 = 0.875
        let s = summary(&[1.0, 0.5], &[0.5, 0.0], &[0.25, 0.5]);
        assert!((s.auc - 0.875).abs() < 1e-15);
        assert_eq!(s.tar_at_far[0].tar, 0.5);
        assert_eq!(s.tar_at_far[1].tar, 1.0);
        assert_eq!(s.eer, 0.5);
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let s = summary(&[0.0], &[-0.0], &[0.5]);
        assert!((s.auc - 0.5).abs() < 1e-15);
    }

    #[test]
    fn curve_is_thinned_but_keeps_ends() {
        let genuine: Vec<f64> = (0..100_000).map(|i| (i as f64) * 1e-5 + 0.3).collect();
        let impostor: Vec<f64> = (0..100_000).map(|i| (i as f64) * 1e-5).collect();
        let s = summary(&genuine, &impostor, &DEFAULT_FARS);
        assert!(s.curve.len() < 5000, "{}", s.curve.len());
        assert_eq!(s.curve.first().unwrap().far, 0.0);
        let last = s.curve.last().unwrap();
        assert_eq!((last.far, last.tar), (1.0, 1.0));
    }
}
