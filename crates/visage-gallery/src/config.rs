//! A gallery's settings: which recogniser its templates come from, the
//! quality screen, and the decision threshold with where it came from.
//!
//! The threshold is set either from the recogniser config's
//! `same_person_cosine` (its best-accuracy point on labelled pairs) or
//! calibrated for a target false-accept rate from a scores file (`score,label`
//! rows, visage-eval's format) with visage-eval's exact ROC: the threshold
//! of the ROC point that `TAR@FAR` reports, i.e. the lowest threshold whose
//! FAR does not exceed the target.

use std::path::Path;

use serde::{Deserialize, Serialize};
use visage_eval::roc::{roc_summary, LabelledScores};

use crate::error::{GalleryError, Result};
use crate::model::QualityPolicy;

/// The version of what a gallery stores (its config and, through it, the
/// backends' layouts); bumped when that changes incompatibly. A gallery of
/// another version is refused on open (embedded: `Corrupt`; PostgreSQL:
/// `Unsupported`).
pub const GALLERY_FORMAT_VERSION: u32 = 1;

/// A gallery's settings, fixed at creation except the threshold
/// ([`crate::GalleryStore::set_threshold`]). Stored as `gallery.json` (and
/// in each snapshot) by the embedded store, as the `visage_config` row by
/// PostgreSQL, and carried in every export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalleryConfig {
    /// [`GALLERY_FORMAT_VERSION`] of the build that created the gallery.
    pub format_version: u32,
    /// Length of every template.
    pub embedding_size: usize,
    /// The recogniser config name the templates come from: templates of
    /// different models are not comparable, so searches must use the same one.
    pub recognizer: String,
    /// The screen every enrolled face passes ([`QualityPolicy::screen`]).
    pub quality: QualityPolicy,
    /// When a search's top match counts as the same person.
    pub threshold: DecisionThreshold,
}

impl GalleryConfig {
    /// A config of the current [`GALLERY_FORMAT_VERSION`]. Nothing is
    /// checked here; a zero `embedding_size` is refused when a PostgreSQL
    /// gallery is created.
    pub fn new(embedding_size: usize, recognizer: impl Into<String>, quality: QualityPolicy, threshold: DecisionThreshold) -> Self {
        Self { format_version: GALLERY_FORMAT_VERSION, embedding_size, recognizer: recognizer.into(), quality, threshold }
    }

    /// Refuses queries or templates of another length with
    /// [`GalleryError::DimensionMismatch`] (bad input: they come from another
    /// recogniser); `what` names the vector in the message.
    pub fn check_dimension(&self, what: &str, len: usize) -> Result<()> {
        if len != self.embedding_size {
            return Err(GalleryError::DimensionMismatch { what: what.to_string(), expected: self.embedding_size, found: len });
        }
        Ok(())
    }
}

/// Accept a match when `score ≥ cosine`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionThreshold {
    /// The lowest cosine similarity accepted as the same person, in −1 to 1.
    pub cosine: f32,
    /// How the value was chosen.
    pub origin: ThresholdOrigin,
}

/// Where a threshold came from, so a listing can say how far to trust it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThresholdOrigin {
    /// The recogniser config's `same_person_cosine`.
    Recognizer {
        /// The recogniser config's name.
        recognizer: String,
    },
    /// Given by hand.
    Manual,
    /// Calibrated on a scores file for a target FAR.
    Calibrated {
        /// The scores file (as the caller named it) the ROC was computed on.
        scores: String,
        /// The false-accept rate asked for, in (0, 1).
        target_far: f64,
        /// FAR on the calibration impostors at the chosen threshold.
        achieved_far: f64,
        /// TAR on the calibration genuine pairs at the chosen threshold.
        tar: f64,
        /// Genuine (same-person) pairs in the scores file.
        genuine_pairs: u64,
        /// Impostor pairs in the scores file: the smallest FAR it can
        /// measure is `1 / impostor_pairs`.
        impostor_pairs: u64,
    },
}

impl DecisionThreshold {
    /// A threshold given by hand; `Invalid` (bad input) outside −1 to 1.
    pub fn manual(cosine: f32) -> Result<Self> {
        check_cosine(cosine)?;
        Ok(Self { cosine, origin: ThresholdOrigin::Manual })
    }

    /// The recogniser config's `same_person_cosine`; `Invalid` outside −1 to 1
    /// (a broken config).
    pub fn from_recognizer(recognizer: &str, same_person_cosine: f32) -> Result<Self> {
        check_cosine(same_person_cosine)?;
        Ok(Self { cosine: same_person_cosine, origin: ThresholdOrigin::Recognizer { recognizer: recognizer.to_string() } })
    }

    /// Reads a scores CSV (`score,label`, label 1 = same person) and
    /// calibrates on it ([`calibrate_threshold`]). An unreadable or
    /// malformed file is [`GalleryError::Calibration`] (bad input).
    pub fn calibrate_from_file(scores_csv: &Path, target_far: f64) -> Result<Self> {
        let scores = visage_eval::io::scores_csv::read_scores_csv(scores_csv).map_err(|e| GalleryError::Calibration(e.to_string()))?;
        calibrate_threshold(&scores, target_far, &scores_csv.display().to_string())
    }

    /// Whether a search score (a cosine) is a match: `score ≥ cosine`.
    pub fn accepts(&self, score: f32) -> bool {
        score >= self.cosine
    }
}

fn check_cosine(cosine: f32) -> Result<()> {
    if !(-1.0..=1.0).contains(&cosine) {
        return Err(GalleryError::invalid("threshold", format!("{cosine} is not a cosine similarity (−1 to 1)")));
    }
    Ok(())
}

/// The threshold at which FAR ≤ `target_far` on these scores, with the
/// FAR and TAR it reaches. Refuses targets the impostor count cannot
/// resolve (below `1/impostors`, where one false accept already exceeds it
/// and the estimate rests on no event at all) and scores where nothing can
/// be accepted.
pub fn calibrate_threshold(scores: &LabelledScores, target_far: f64, source: &str) -> Result<DecisionThreshold> {
    scores.check_both_classes().map_err(|m| GalleryError::Calibration(format!("{source}: {m}")))?;
    if !(target_far > 0.0 && target_far < 1.0) {
        return Err(GalleryError::Calibration(format!("target FAR {target_far} must be in (0, 1)")));
    }
    let impostors = scores.impostor.len() as u64;
    if target_far * (impostors as f64) < 1.0 {
        return Err(GalleryError::Calibration(format!(
            "{source}: FAR {target_far:e} needs at least {:.0} impostor pairs to be measured, the file has {impostors}",
            (1.0 / target_far).ceil()
        )));
    }
    let summary = roc_summary(scores, &[target_far]);
    let point = summary.tar_at_far[0];
    if !point.threshold.is_finite() {
        return Err(GalleryError::Calibration(format!("{source}: no threshold reaches FAR {target_far:e}")));
    }
    // Scores are cosines compared in f32: round the threshold up, never
    // down, so no impostor below it in f64 is accepted in f32.
    let mut cosine = point.threshold as f32;
    if f64::from(cosine) < point.threshold {
        cosine = cosine.next_up();
    }
    check_cosine(cosine.clamp(-1.0, 1.0))?;
    let accepted_impostors = scores.impostor.iter().filter(|&&s| s >= point.threshold).count();
    Ok(DecisionThreshold {
        cosine: cosine.clamp(-1.0, 1.0),
        origin: ThresholdOrigin::Calibrated {
            scores: source.to_string(),
            target_far,
            achieved_far: accepted_impostors as f64 / impostors as f64,
            tar: point.tar,
            genuine_pairs: scores.genuine.len() as u64,
            impostor_pairs: impostors,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_picks_the_lowest_threshold_within_the_far() {
        // Impostors 0.0, 0.1, …, 0.9; genuine 0.50, 0.85, 0.95, 0.99. ROC points
        // from the top: 0.99 (tp 1), 0.95 (tp 2), 0.90 (fp 1), 0.85 (tp 3, fp 1),
        // 0.80 (fp 2), … FAR ≤ 0.1 allows one false accept: the last point with
        // fp ≤ 1 is 0.85, TAR 3/4.
        let scores = LabelledScores { genuine: vec![0.50, 0.85, 0.95, 0.99], impostor: (0..10).map(|i| f64::from(i) * 0.1).collect() };
        let threshold = calibrate_threshold(&scores, 0.1, "s.csv").unwrap();
        assert_eq!(threshold.cosine, 0.85);
        let ThresholdOrigin::Calibrated { achieved_far, tar, genuine_pairs, impostor_pairs, .. } = threshold.origin else { panic!() };
        assert_eq!((achieved_far, tar, genuine_pairs, impostor_pairs), (0.1, 0.75, 4, 10));
        // FAR 0.2 (two false accepts): impostor 0.8 and 0.9 → threshold 0.8, genuine 0.85+ (TAR 0.75).
        assert!((calibrate_threshold(&scores, 0.2, "s.csv").unwrap().cosine - 0.8).abs() < 1e-6);
    }

    #[test]
    fn calibration_refuses_what_it_cannot_measure() {
        let scores = LabelledScores { genuine: vec![0.9], impostor: vec![0.1; 100] };
        let err = calibrate_threshold(&scores, 1e-3, "s.csv").unwrap_err().to_string();
        assert!(err.contains("needs at least 1000 impostor pairs") && err.contains("has 100"), "{err}");
        let one_class = LabelledScores { genuine: vec![0.9], impostor: vec![] };
        assert!(calibrate_threshold(&one_class, 0.1, "s.csv").unwrap_err().to_string().contains("s.csv: only genuine"));
        assert!(calibrate_threshold(&scores, 1.5, "s.csv").is_err());
    }

    #[test]
    fn threshold_is_rounded_up_into_f32() {
        // 0.7 has no f32: its nearest, 0.699999988…, lies below it, so the
        // threshold must be the next f32 up or it would accept scores < 0.7.
        assert!(f64::from(0.7f32) < 0.7);
        let scores = LabelledScores { genuine: vec![0.7], impostor: vec![0.0; 10] };
        let t = calibrate_threshold(&scores, 0.1, "s").unwrap().cosine;
        assert_eq!(t, 0.7f32.next_up());
        assert!(f64::from(t) >= 0.7);
    }
}
