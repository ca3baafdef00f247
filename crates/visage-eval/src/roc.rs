//! Exact ROC of a verification system, and the numbers read from it:
//! AUC, EER and TAR@FAR.
//!
//! Definitions (scikit-learn's `roc_curve` / `roc_auc_score` conventions, so
//! the numbers equal the reference fixtures computed with it):
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

use std::path::PathBuf;

use serde::Serialize;

use crate::io::scores_csv::read_scores_csv;
use crate::sort::{key_score, sorted_keys};

/// Default FAR targets of the `visage eval roc` contract: 1e-6 … 1e-1.
pub const DEFAULT_FARS: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

/// Scores of genuine (same identity) and impostor (different identity) pairs.
#[derive(Debug, Clone, Default)]
pub struct LabelledScores {
    /// Scores of same-identity pairs (higher = more alike), any order, no NaN.
    pub genuine: Vec<f64>,
    /// Scores of different-identity pairs, same scale.
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

    /// Scores and labels held in memory (the Python package's `roc`), checked
    /// as [`read_scores_csv`] checks a file: the same number of each, every
    /// score finite, every label 0 or 1 (1 = same identity), both classes
    /// present. The message names the first offending position (0-based).
    pub fn from_labels(scores: &[f64], labels: &[f64]) -> std::result::Result<Self, String> {
        if scores.len() != labels.len() {
            return Err(format!("{} scores but {} labels: expected one label per score", scores.len(), labels.len()));
        }
        if scores.is_empty() {
            return Err("no scores: a ROC needs genuine (label 1) and impostor (label 0) pairs".into());
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(format!("score {i} is {}: scores must be finite", scores[i]));
        }
        let mut out = LabelledScores::default();
        for (i, (&score, &label)) in scores.iter().zip(labels).enumerate() {
            match label {
                1.0 => out.genuine.push(score),
                0.0 => out.impostor.push(score),
                other => return Err(format!("label {i} is {other}: expected 0 or 1")),
            }
        }
        out.check_both_classes()?;
        Ok(out)
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

/// Refuses FAR (or FPIR) targets that are not rates: each must be finite
/// and in [0, 1]. `option` names them in the message (`--far`, `fars`).
pub fn check_rates(option: &str, rates: &[f64]) -> crate::Result<()> {
    match rates.iter().find(|f| !(f.is_finite() && **f >= 0.0 && **f <= 1.0)) {
        Some(f) => Err(crate::EvalError::Invalid(format!("{option} {f}: expected rates between 0 and 1"))),
        None => Ok(()),
    }
}

/// One operating point: accept `score ≥ threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    /// The lowest score accepted (`+∞` for the point (0, 0)).
    pub threshold: f64,
    /// False accept rate = FPR.
    pub far: f64,
    /// True accept rate = TPR.
    pub tar: f64,
}

/// TAR at one FAR target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TarAtFar {
    /// The FAR target, as asked.
    pub far: f64,
    /// The highest TAR among ROC points whose FAR is ≤ the target, in [0, 1].
    pub tar: f64,
    /// The threshold of the chosen ROC point (`+∞` when no pair may be accepted).
    #[serde(skip)]
    pub threshold: f64,
}

/// Everything `visage eval roc` reports, plus a thinned curve for plots.
#[derive(Debug, Clone)]
pub struct RocSummary {
    /// Area under the ROC, in [0, 1]: the probability that a genuine pair
    /// outscores an impostor pair, ties counting ½.
    pub auc: f64,
    /// Equal error rate: min over thresholds of max(FAR, FRR), in [0, 1].
    pub eer: f64,
    /// Threshold at which the EER is attained.
    pub eer_threshold: f64,
    /// One entry per FAR target, in the order asked.
    pub tar_at_far: Vec<TarAtFar>,
    /// Number of genuine pairs.
    pub n_genuine: u64,
    /// Number of impostor pairs.
    pub n_impostor: u64,
    /// ROC points thinned for drawing (≤ a few thousand, endpoints kept).
    pub curve: Vec<RocPoint>,
}

/// Contract output of `visage eval roc --json`.
#[derive(Debug, Serialize)]
pub struct RocReport {
    /// As [`RocSummary::auc`].
    pub auc: f64,
    /// As [`RocSummary::eer`].
    pub eer: f64,
    /// `{"far", "tar"}` per target (thresholds are not part of the contract).
    pub tar_at_far: Vec<TarAtFar>,
}

impl RocSummary {
    /// The numbers of the JSON contract, without counts, thresholds or curve.
    pub fn report(&self) -> RocReport {
        RocReport { auc: self.auc, eer: self.eer, tar_at_far: self.tar_at_far.clone() }
    }

    /// Threshold whose FAR is the largest not above `target_far` (the
    /// operating point of TAR@FAR), `+∞` when even the top score is too many.
    pub fn threshold_at_far(&self, target_far: f64) -> f64 {
        self.tar_at_far.iter().find(|t| t.far == target_far).map(|t| t.threshold).unwrap_or(f64::INFINITY)
    }
}

/// One evaluated system of a comparison: its display name, its ROC summary
/// and, when asked for, the scores themselves (for histograms).
#[derive(Debug, Clone)]
pub struct NamedRoc {
    /// Display name (legend, report rows, `--json`'s `name`).
    pub name: String,
    /// Its ROC summary at the FAR targets asked for.
    pub summary: RocSummary,
    /// The scores the summary was computed from; `None` unless kept.
    pub scores: Option<LabelledScores>,
}

/// Reads each `(name, scores CSV)` system with [`read_scores_csv`] and computes
/// its [`roc_summary`] at `fars`, in the order given. `keep_scores` keeps the
/// scores in [`NamedRoc::scores`] (8 bytes per pair); otherwise they are
/// dropped once summarised. The first unreadable or invalid file is the error.
pub fn evaluate_score_files(systems: &[(String, PathBuf)], fars: &[f64], keep_scores: bool) -> crate::Result<Vec<NamedRoc>> {
    let mut out = Vec::with_capacity(systems.len());
    for (name, path) in systems {
        let scores = read_scores_csv(path)?;
        let summary = roc_summary(&scores, fars);
        out.push(NamedRoc { name: name.clone(), summary, scores: keep_scores.then_some(scores) });
    }
    Ok(out)
}

/// Computes the exact ROC summary. Panics if a class is empty (call
/// [`LabelledScores::check_both_classes`] first) or a score is NaN.
pub fn roc_summary(scores: &LabelledScores, fars: &[f64]) -> RocSummary {
    assert!(!scores.genuine.is_empty() && !scores.impostor.is_empty(), "ROC needs both classes");
    // each sort is parallel inside (over its top-digit buckets)
    let genuine = sorted_keys(&scores.genuine);
    let impostor = sorted_keys(&scores.impostor);
    walk(Runs::new(vec![genuine]), Runs::new(vec![impostor]), fars)
}

/// Ascending sorted runs of one class, consumed from the top.
struct Runs {
    runs: Vec<Vec<u64>>,
    ends: Vec<usize>,
    total: u64,
}

impl Runs {
    fn new(runs: Vec<Vec<u64>>) -> Self {
        let ends = runs.iter().map(Vec::len).collect();
        let total = runs.iter().map(|r| r.len() as u64).sum();
        Runs { runs, ends, total }
    }

    /// Highest remaining key.
    #[inline]
    fn top(&self) -> Option<u64> {
        let mut best = None;
        for (run, &end) in self.runs.iter().zip(&self.ends) {
            if end > 0 {
                let k = run[end - 1];
                if best.is_none_or(|b| k > b) {
                    best = Some(k);
                }
            }
        }
        best
    }

    /// Removes every remaining key equal to `key`; returns how many.
    #[inline]
    fn take(&mut self, key: u64) -> u64 {
        let mut taken = 0;
        for (run, end) in self.runs.iter().zip(self.ends.iter_mut()) {
            while *end > 0 && run[*end - 1] == key {
                *end -= 1;
                taken += 1;
            }
        }
        taken
    }
}

/// Largest false-accept count whose FAR (`fp / n_neg`, as computed in
/// floating point) does not exceed `far`; `None` when even 0 does.
fn fp_limit(far: f64, n_neg: u64) -> Option<u64> {
    let neg_f = n_neg as f64;
    if far.is_nan() || far < 0.0 {
        return None;
    }
    let mut l = ((far * neg_f).floor().max(0.0) as u64).min(n_neg);
    while l < n_neg && ((l + 1) as f64 / neg_f) <= far {
        l += 1;
    }
    while l > 0 && (l as f64 / neg_f) > far {
        l -= 1;
    }
    Some(l)
}

/// Streams the ROC points from the highest threshold down, in integers:
/// per point only counts, one comparison for the next pending FAR target,
/// and an exact rational comparison for the EER.
fn walk(mut genuine: Runs, mut impostor: Runs, fars: &[f64]) -> RocSummary {
    let (n_pos, n_neg) = (genuine.total, impostor.total);
    let (pos_f, neg_f) = (n_pos as f64, n_neg as f64);
    // FAR targets by increasing fp limit; each is answered by the last point
    // before fp first exceeds its limit
    let limits: Vec<Option<u64>> = fars.iter().map(|&f| fp_limit(f, n_neg)).collect();
    let mut order: Vec<usize> = (0..fars.len()).filter(|&t| limits[t].is_some()).collect();
    order.sort_by_key(|&t| limits[t]);
    let mut answers: Vec<(u64, f64)> = vec![(0, f64::INFINITY); fars.len()]; // (tp, threshold)
    let mut next = 0usize;

    let (mut tp, mut fp) = (0u64, 0u64);
    let mut prev_threshold = f64::INFINITY;
    // Σ (fp_k − fp_{k−1})·(tp_k + tp_{k−1}) = 2·P·N·AUC, exact in integers.
    let mut auc_twice: u128 = 0;
    // EER point: minimises max(fp/N, (P−tp)/P) ⇔ max(fp·P, (P−tp)·N); start at (0,0), t = +∞
    let (mut eer_scaled, mut eer_point, mut eer_threshold) = (n_pos as u128 * n_neg as u128, (0u64, 0u64), f64::INFINITY);
    let mut thinner = CurveThinner::new(n_pos);
    thinner.push(0, 0, f64::INFINITY, n_pos, n_neg);

    loop {
        let key = match (genuine.top(), impostor.top()) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        let (prev_tp, prev_fp) = (tp, fp);
        tp += genuine.take(key);
        fp += impostor.take(key);
        auc_twice += (fp - prev_fp) as u128 * (tp + prev_tp) as u128;
        let threshold = key_score(key);
        while next < order.len() && fp > limits[order[next]].unwrap() {
            answers[order[next]] = (prev_tp, prev_threshold);
            next += 1;
        }
        let scaled = (fp as u128 * n_pos as u128).max((n_pos - tp) as u128 * n_neg as u128);
        if scaled < eer_scaled {
            eer_scaled = scaled;
            eer_point = (tp, fp);
            eer_threshold = threshold;
        }
        thinner.push(tp, fp, threshold, n_pos, n_neg);
        prev_threshold = threshold;
    }
    for &t in &order[next..] {
        answers[t] = (tp, prev_threshold);
    }
    thinner.finish();
    let tar_at_far = fars.iter().zip(&answers).map(|(&far, &(t, threshold))| TarAtFar { far, tar: t as f64 / pos_f, threshold }).collect();
    RocSummary {
        auc: auc_twice as f64 / (2.0 * pos_f * neg_f),
        eer: (eer_point.1 as f64 / neg_f).max(1.0 - eer_point.0 as f64 / pos_f),
        eer_threshold,
        tar_at_far,
        n_genuine: n_pos,
        n_impostor: n_neg,
        curve: thinner.points,
    }
}

/// Keeps a point when it moves the curve visibly on a log-FAR or linear-TAR
/// axis: after each kept point the next one must reach ~250 steps per FAR
/// decade further, or 1/1000 more TAR; the point just before a kept one is
/// kept too, so steps stay steps. Integer comparisons only; bounds the curve
/// size independently of the number of pairs.
struct CurveThinner {
    points: Vec<RocPoint>,
    previous: Option<(RocPoint, bool)>, // last point seen, and whether it was kept
    next_fp: u64,
    next_tp: u64,
    tp_step: u64,
}

impl CurveThinner {
    fn new(n_pos: u64) -> Self {
        CurveThinner { points: Vec::new(), previous: None, next_fp: 0, next_tp: 0, tp_step: (n_pos / 1000).max(1) }
    }

    #[inline]
    fn push(&mut self, tp: u64, fp: u64, threshold: f64, n_pos: u64, n_neg: u64) {
        let keep = fp >= self.next_fp || tp >= self.next_tp;
        let point = || RocPoint { threshold, far: fp as f64 / n_neg as f64, tar: tp as f64 / n_pos as f64 };
        if keep {
            if let Some((prev, false)) = self.previous {
                self.points.push(prev);
            }
            self.points.push(point());
            self.next_fp = (fp + 1).max((fp as f64 * 1.0093) as u64); // 10^(1/250)
            self.next_tp = tp + self.tp_step;
            self.previous = Some((point(), true));
        } else if fp + 1 >= self.next_fp || tp + 1 >= self.next_tp || self.previous.is_none_or(|p| p.1) {
            // only a point that may precede a kept one needs materialising
            self.previous = Some((point(), false));
        } else if let Some((p, _)) = self.previous.as_mut() {
            *p = point();
        }
    }

    fn finish(&mut self) {
        if let Some((p, false)) = self.previous.take() {
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

    #[test]
    fn scores_in_memory_are_checked_as_a_file_is() {
        let scores = LabelledScores::from_labels(&[0.9, 0.2, 0.8], &[1.0, 0.0, 1.0]).unwrap();
        assert_eq!((scores.genuine, scores.impostor), (vec![0.9, 0.8], vec![0.2]));
        assert_eq!(LabelledScores::from_labels(&[0.9], &[1.0, 0.0]).unwrap_err(), "1 scores but 2 labels: expected one label per score");
        assert_eq!(LabelledScores::from_labels(&[0.9, f64::NAN], &[1.0, 0.0]).unwrap_err(), "score 1 is NaN: scores must be finite");
        assert_eq!(LabelledScores::from_labels(&[0.9, 0.1], &[1.0, 2.0]).unwrap_err(), "label 1 is 2: expected 0 or 1");
        assert!(LabelledScores::from_labels(&[0.9, 0.1], &[1.0, 1.0]).unwrap_err().starts_with("only genuine pairs"));
        assert!(LabelledScores::from_labels(&[], &[]).unwrap_err().starts_with("no scores"));
        assert!(check_rates("fars", &[0.0, 1e-3, 1.0]).is_ok());
        assert_eq!(check_rates("--far", &[1e-3, 1.5]).unwrap_err().to_string(), "--far 1.5: expected rates between 0 and 1");
        assert!(check_rates("fars", &[f64::NAN]).is_err());
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

    /// Many pieces (parallel-sorted runs merged by the walk) give the same
    /// numbers as a plain comparison-sort walk; heavy ties included.
    #[test]
    fn parallel_runs_equal_a_plain_walk() {
        let mut state = 99u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let genuine: Vec<f64> = (0..150_000).map(|_| ((next() + 0.4) * 500.0).round() / 500.0).collect();
        let impostor: Vec<f64> = (0..350_000).map(|_| (next() * 500.0).round() / 500.0).collect();
        let fars = [1e-5, 1e-3, 0.0123, 0.5];
        let s = summary(&genuine, &impostor, &fars);
        // reference: all pairs sorted descending, grouped by score
        let mut all: Vec<(f64, bool)> = genuine.iter().map(|&g| (g, true)).chain(impostor.iter().map(|&i| (i, false))).collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (p, n) = (genuine.len() as f64, impostor.len() as f64);
        let (mut tp, mut fp, mut auc, mut eer) = (0.0, 0.0, 0.0, 1.0f64);
        let mut best = vec![0.0; fars.len()];
        let mut k = 0;
        while k < all.len() {
            let (ptp, pfp) = (tp, fp);
            let v = all[k].0;
            while k < all.len() && all[k].0 == v {
                if all[k].1 {
                    tp += 1.0
                } else {
                    fp += 1.0
                }
                k += 1;
            }
            auc += (fp - pfp) / n * (tp + ptp) / p / 2.0;
            eer = eer.min((fp / n).max(1.0 - tp / p));
            for (b, &f) in best.iter_mut().zip(&fars) {
                if fp / n <= f {
                    *b = tp / p;
                }
            }
        }
        assert!((s.auc - auc).abs() < 1e-12, "{} vs {auc}", s.auc);
        assert_eq!(s.eer, eer);
        for (t, b) in s.tar_at_far.iter().zip(&best) {
            assert_eq!(t.tar, *b, "far {}", t.far);
        }
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
