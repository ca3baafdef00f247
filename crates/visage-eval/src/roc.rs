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
//! The walk is one pass over all pairs sorted by score with their labels
//! (radix sort, see [`crate::sort`]); AUC is accumulated in integers, so it
//! is exact up to the final division.

use std::path::PathBuf;

use serde::Serialize;

use crate::io::scores_csv::{read_scores_csv, read_scores_csv_pieces};
use crate::sort::{key_score, sort_pairs, SortedPairs, TOP_BUCKETS};

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
        let (summary, scores) = if keep_scores {
            let scores = read_scores_csv(path)?;
            (roc_summary(&scores, fars), Some(scores))
        } else {
            let pieces = read_scores_csv_pieces(path)?;
            (roc_summary_of_pieces(&pieces.iter().collect::<Vec<_>>(), fars), None)
        };
        out.push(NamedRoc { name: name.clone(), summary, scores });
    }
    Ok(out)
}

/// Computes the exact ROC summary. Panics if a class is empty (call
/// [`LabelledScores::check_both_classes`] first) or a score is NaN.
pub fn roc_summary(scores: &LabelledScores, fars: &[f64]) -> RocSummary {
    roc_summary_of_pieces(&[scores], fars)
}

/// [`roc_summary`] of the union of `pieces` (the scores CSV reader's
/// chunks, summarised without first being copied into one vector).
pub fn roc_summary_of_pieces(pieces: &[&LabelledScores], fars: &[f64]) -> RocSummary {
    let slices: Vec<(&[f64], &[f64])> = pieces.iter().map(|p| (p.genuine.as_slice(), p.impostor.as_slice())).collect();
    let (n_pos, n_neg) = slices.iter().fold((0u64, 0u64), |(g, i), (gs, is)| (g + gs.len() as u64, i + is.len() as u64));
    assert!(n_pos > 0 && n_neg > 0, "ROC needs both classes");
    // the sort is parallel inside (over its input pieces, then its buckets)
    walk(&sort_pairs(&slices), n_pos, n_neg, fars)
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
/// two for the curve, and the EER's exact rational comparison only in the
/// one bucket where it is decided.
///
/// EER: with `A = fp·P` (never decreasing along the walk) and
/// `B = (P − tp)·N` (never increasing), `max(A, B)` falls while `A < B` and
/// rises after; its first minimum is at `k*`, the first point with
/// `A ≥ B`, if `A(k*) < B(k* − 1)`, else at the first point whose `tp`
/// equals that of `k* − 1`. The bucket holding `k*` is found from the
/// buckets' counts, so only its points are compared.
fn walk(pairs: &SortedPairs, n_pos: u64, n_neg: u64, fars: &[f64]) -> RocSummary {
    let (pos_f, neg_f) = (n_pos as f64, n_neg as f64);
    let (pos, neg) = (n_pos as u128, n_neg as u128);
    let threshold = |key: Option<u64>| key.map_or(f64::INFINITY, key_score);
    // FAR targets by increasing fp limit; each is answered by the last point
    // before fp first exceeds its limit
    let limits: Vec<Option<u64>> = fars.iter().map(|&f| fp_limit(f, n_neg)).collect();
    let mut order: Vec<usize> = (0..fars.len()).filter(|&t| limits[t].is_some()).collect();
    order.sort_by_key(|&t| limits[t]);
    let mut answers: Vec<(u64, f64)> = vec![(0, f64::INFINITY); fars.len()]; // (tp, threshold)
    let mut next = 0usize;
    // the fp count past which the next pending target is answered
    let mut next_limit = order.first().map_or(u64::MAX, |&t| limits[t].unwrap());
    // the bucket of k*: the first (from the top) whose last point has A ≥ B
    let eer_bucket = {
        let (mut tp, mut fp) = (0u64, 0u64);
        (0..TOP_BUCKETS)
            .rev()
            .find(|&b| {
                let genuine = pairs.genuine_in[b];
                tp += genuine;
                fp += (pairs.starts[b + 1] - pairs.starts[b]) as u64 - genuine;
                fp as u128 * pos >= (n_pos - tp) as u128 * neg
            })
            .expect("the last point has A = P·N ≥ B = 0")
    };
    // EER point as (tp, fp, key); `None` until k* is met
    let mut eer: Option<(u64, u64, Option<u64>)> = None;
    // the first point with the current tp (the EER's fallback)
    let mut first_of_tp: (u64, u64, Option<u64>) = (0, 0, None);

    let (mut tp, mut fp) = (0u64, 0u64);
    // the previous point's key (`None`: the point (0, 0) at +∞)
    let mut prev_key: Option<u64> = None;
    // Σ (fp_k − fp_{k−1})·(tp_k + tp_{k−1}) = 2·P·N·AUC, exact in integers.
    let mut auc_twice: u128 = 0;
    let mut thinner = CurveThinner::new(n_pos, n_neg);

    for bucket in (0..TOP_BUCKETS).rev() {
        let entries = &pairs.entries[pairs.starts[bucket]..pairs.starts[bucket + 1]];
        let mut end = entries.len();
        while end > 0 {
            // one point: every entry of the highest remaining key
            let key_bits = entries[end - 1] >> 16;
            let (prev_tp, prev_fp) = (tp, fp);
            while end > 0 && entries[end - 1] >> 16 == key_bits {
                let genuine = entries[end - 1] & 1;
                tp += genuine;
                fp += 1 - genuine;
                end -= 1;
            }
            let key = SortedPairs::key(bucket, entries[end]);
            auc_twice += (fp - prev_fp) as u128 * (tp + prev_tp) as u128;
            while fp > next_limit {
                answers[order[next]] = (prev_tp, threshold(prev_key));
                next += 1;
                next_limit = order.get(next).map_or(u64::MAX, |&t| limits[t].unwrap());
            }
            if bucket == eer_bucket && eer.is_none() && fp as u128 * pos >= (n_pos - tp) as u128 * neg {
                let here = fp as u128 * pos;
                eer = Some(if here < (n_pos - prev_tp) as u128 * neg { (tp, fp, Some(key)) } else { first_of_tp });
            }
            if tp != prev_tp {
                first_of_tp = (tp, fp, Some(key));
            }
            thinner.push(tp, fp, Some(key), (prev_tp, prev_fp, prev_key));
            prev_key = Some(key);
        }
    }
    debug_assert_eq!((tp, fp), (n_pos, n_neg));
    for &t in &order[next..] {
        answers[t] = (tp, threshold(prev_key));
    }
    thinner.finish((tp, fp, prev_key));
    let (eer_tp, eer_fp, eer_key) = eer.expect("k* is in its bucket");
    let tar_at_far = fars.iter().zip(&answers).map(|(&far, &(t, threshold))| TarAtFar { far, tar: t as f64 / pos_f, threshold }).collect();
    RocSummary {
        auc: auc_twice as f64 / (2.0 * pos_f * neg_f),
        eer: (eer_fp as f64 / neg_f).max(1.0 - eer_tp as f64 / pos_f),
        eer_threshold: threshold(eer_key),
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
    n_pos: u64,
    n_neg: u64,
    /// Whether the last point seen was kept.
    previous_kept: bool,
    next_fp: u64,
    next_tp: u64,
    tp_step: u64,
}

/// A point of the walk as `(tp, fp, key)`; key `None` is `+∞`.
type WalkPoint = (u64, u64, Option<u64>);

impl CurveThinner {
    /// Starts with the point (0, 0) at `+∞`, always kept.
    fn new(n_pos: u64, n_neg: u64) -> Self {
        let mut thinner =
            CurveThinner { points: Vec::new(), n_pos, n_neg, previous_kept: false, next_fp: 0, next_tp: 0, tp_step: (n_pos / 1000).max(1) };
        thinner.keep((0, 0, None), None);
        thinner
    }

    fn point(&self, (tp, fp, key): WalkPoint) -> RocPoint {
        RocPoint { threshold: key.map_or(f64::INFINITY, key_score), far: fp as f64 / self.n_neg as f64, tar: tp as f64 / self.n_pos as f64 }
    }

    /// Takes the next point, `previous` being the one before it; only kept
    /// points (and the one before each) are turned into rates.
    #[inline]
    fn push(&mut self, tp: u64, fp: u64, key: Option<u64>, previous: WalkPoint) {
        if fp >= self.next_fp || tp >= self.next_tp {
            self.keep((tp, fp, key), Some(previous));
        } else {
            self.previous_kept = false;
        }
    }

    #[cold]
    fn keep(&mut self, point: WalkPoint, previous: Option<WalkPoint>) {
        if let (Some(previous), false) = (previous, self.previous_kept) {
            self.points.push(self.point(previous));
        }
        self.points.push(self.point(point));
        let (tp, fp, _) = point;
        self.next_fp = (fp + 1).max((fp as f64 * 1.0093) as u64); // 10^(1/250)
        self.next_tp = tp + self.tp_step;
        self.previous_kept = true;
    }

    /// `last`: the walk's last point, kept if it was not.
    fn finish(&mut self, last: WalkPoint) {
        if !self.previous_kept {
            self.points.push(self.point(last));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sort::score_key;

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

    /// The walk as first written: every point in order from a comparison
    /// sort, the EER by comparing every point, every point offered to the
    /// thinner as rates. Every field of the summary must equal it.
    fn reference_summary(genuine: &[f64], impostor: &[f64], fars: &[f64]) -> RocSummary {
        let mut all: Vec<(u64, bool)> =
            genuine.iter().map(|&g| (score_key(g), true)).chain(impostor.iter().map(|&i| (score_key(i), false))).collect();
        all.sort_by_key(|&(key, _)| std::cmp::Reverse(key));
        let (n_pos, n_neg) = (genuine.len() as u64, impostor.len() as u64);
        let limits: Vec<Option<u64>> = fars.iter().map(|&f| fp_limit(f, n_neg)).collect();
        let mut answers = vec![(0u64, f64::INFINITY); fars.len()];
        let mut answered = vec![false; fars.len()];
        let (mut tp, mut fp, mut auc_twice) = (0u64, 0u64, 0u128);
        let (mut eer_scaled, mut eer_point, mut eer_threshold) = (n_pos as u128 * n_neg as u128, (0u64, 0u64), f64::INFINITY);
        let point = |tp: u64, fp: u64, threshold: f64| RocPoint { threshold, far: fp as f64 / n_neg as f64, tar: tp as f64 / n_pos as f64 };
        // the thinner as first written: (point, kept) of the last point seen
        let mut curve = vec![point(0, 0, f64::INFINITY)];
        let mut previous = (point(0, 0, f64::INFINITY), true);
        let (mut next_fp, mut next_tp, tp_step) = (1u64, (n_pos / 1000).max(1), (n_pos / 1000).max(1));
        let mut prev_threshold = f64::INFINITY;
        let mut k = 0;
        while k < all.len() {
            let (prev_tp, prev_fp) = (tp, fp);
            let key = all[k].0;
            while k < all.len() && all[k].0 == key {
                if all[k].1 {
                    tp += 1
                } else {
                    fp += 1
                }
                k += 1;
            }
            auc_twice += (fp - prev_fp) as u128 * (tp + prev_tp) as u128;
            let threshold = key_score(key);
            for (t, limit) in limits.iter().enumerate() {
                if limit.is_some_and(|l| fp > l) && !answered[t] {
                    answers[t] = (prev_tp, prev_threshold);
                    answered[t] = true;
                }
            }
            let scaled = (fp as u128 * n_pos as u128).max((n_pos - tp) as u128 * n_neg as u128);
            if scaled < eer_scaled {
                (eer_scaled, eer_point, eer_threshold) = (scaled, (tp, fp), threshold);
            }
            if fp >= next_fp || tp >= next_tp {
                if !previous.1 {
                    curve.push(previous.0);
                }
                curve.push(point(tp, fp, threshold));
                next_fp = (fp + 1).max((fp as f64 * 1.0093) as u64);
                next_tp = tp + tp_step;
                previous = (point(tp, fp, threshold), true);
            } else {
                previous = (point(tp, fp, threshold), false);
            }
            prev_threshold = threshold;
        }
        if !previous.1 {
            curve.push(previous.0);
        }
        for (t, limit) in limits.iter().enumerate() {
            if limit.is_some() && !answered[t] {
                answers[t] = (tp, prev_threshold);
            }
        }
        let (p, n) = (n_pos as f64, n_neg as f64);
        RocSummary {
            auc: auc_twice as f64 / (2.0 * p * n),
            eer: (eer_point.1 as f64 / n).max(1.0 - eer_point.0 as f64 / p),
            eer_threshold,
            tar_at_far: fars.iter().zip(&answers).map(|(&far, &(t, threshold))| TarAtFar { far, tar: t as f64 / p, threshold }).collect(),
            n_genuine: n_pos,
            n_impostor: n_neg,
            curve,
        }
    }

    /// Continuous scores, scores on a coarse grid (many ties across
    /// classes), separable and inverted classes, tiny classes: every field,
    /// thresholds and the thinned curve included, bit for bit.
    #[test]
    fn every_field_equals_the_point_by_point_walk() {
        let mut state = 7u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let fars = [0.0, 1e-6, 1e-4, 1e-3, 0.0123, 0.1, 0.5, 1.0];
        for (n_gen, n_imp, shift, grid) in [
            (20_000, 180_000, 0.4, 0.0),
            (20_000, 180_000, 0.4, 1e-3),
            (50_000, 50_000, 0.05, 1e-2),
            (3000, 100_000, 2.0, 0.0),
            (3000, 100_000, -2.0, 0.0),
            (1, 100_000, 0.0, 1e-4),
            (100_000, 1, 0.0, 1e-4),
            (7, 5, 0.1, 0.1),
        ] {
            let mut draw = |count: usize, offset: f64| -> Vec<f64> {
                (0..count)
                    .map(|_| {
                        let v = (next() + next() + next() - 1.5) * 0.3 + offset;
                        if grid > 0.0 {
                            (v / grid).round() * grid
                        } else {
                            v
                        }
                    })
                    .collect()
            };
            let (genuine, impostor) = (draw(n_gen, shift), draw(n_imp, 0.0));
            let got = summary(&genuine, &impostor, &fars);
            let want = reference_summary(&genuine, &impostor, &fars);
            let case = format!("{n_gen} genuine, {n_imp} impostor, shift {shift}, grid {grid}");
            assert_eq!(got.auc.to_bits(), want.auc.to_bits(), "{case}");
            assert_eq!((got.eer.to_bits(), got.eer_threshold.to_bits()), (want.eer.to_bits(), want.eer_threshold.to_bits()), "{case}");
            assert_eq!(got.tar_at_far, want.tar_at_far, "{case}");
            assert_eq!((got.n_genuine, got.n_impostor), (want.n_genuine, want.n_impostor), "{case}");
            assert_eq!(got.curve, want.curve, "{case}");
        }
    }

    /// Many buckets (sorted in parallel) and pieces give the same numbers
    /// as a plain comparison-sort walk; heavy ties included.
    #[test]
    fn parallel_buckets_equal_a_plain_walk() {
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
