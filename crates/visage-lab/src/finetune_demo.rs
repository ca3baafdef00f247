//! Fine-tuning a real pretrained recogniser with the MagFace head: does its
//! feature magnitude order faces by quality better after?
//!
//! 1. [`FaceSplit::prepare`] (visage-data) splits aligned 112×112 crops (one folder per
//!    identity, e.g. `shared/data/reference/aligned`) by photo: in every
//!    identity with at least three crops, every third crop is held out; the
//!    rest become an image folder for `visage train`, each crop written clean
//!    and once per [`Degradation`] at a severity drawn per crop (offline
//!    augmentation: the network sees bad faces of every identity, so the
//!    magnitude has something to learn).
//! 2. The run itself is a plain `visage train` config (`init_from` the
//!    pretrained ONNX model, `kind = "magface"`).
//! 3. [`evaluate_quality`] embeds the held-out crops clean and at increasing
//!    severities and compares them with the clean training crops (the
//!    gallery): the ERC of magnitude as a quality score (visage-eval's
//!    [`erc_curve`]: pair quality = the probe's magnitude, the gallery side
//!    is clean; threshold fixed at FMR 1e-3 on all pairs) and Spearman's ρ of
//!    magnitude against severity per degradation. Run once on the pretrained
//!    network and once on the fine-tuned one.

use burn::tensor::backend::Backend;
use image::RgbImage;
use ndarray::Array2;
use serde::Serialize;
use visage_data::Normalization;
use visage_eval::cluster::magnitude::spearman;
use visage_eval::erc::{default_fractions, erc_curve, fixed_threshold, DEFAULT_TARGET_FMR};
use visage_nn::Backbone;

use visage_data::degrade::Degradation;
pub use visage_data::split::{FaceSplit, LADDER_STEPS};
use visage_train::verification::embed;

/// How well one network's magnitudes track quality on the held-out ladders.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    /// Spearman's ρ between severity and magnitude over every (probe, level)
    /// of each degradation, clean level included: −1 is a perfect ordering.
    /// One `(degradation name, ρ)` per [`Degradation::ALL`]; 0 when ρ is undefined.
    pub spearman: Vec<(String, f64)>,
    /// Mean magnitude ‖x‖ per level, per degradation: `(name, means)` with
    /// [`LADDER_STEPS`]` + 1` means, level 0 = clean.
    pub mean_magnitude: Vec<(String, Vec<f64>)>,
    /// Area under the ERC of magnitude (lower: rejecting low-magnitude
    /// probes removes more of the false non-matches).
    pub erc_area: f64,
    /// FNMR at the fixed threshold with nothing rejected, and with 20 % and
    /// 50 % of the genuine pairs rejected by magnitude: `(reject fraction, FNMR)`,
    /// both in [0, 1].
    pub fnmr_at_reject: [(f64, f64); 3],
    /// Cosine decision threshold (accept score ≥ threshold), fixed on all
    /// pairs at FMR 1e-3.
    pub threshold: f64,
    /// Pairs of a probe and a gallery crop of the same identity, over every
    /// probe level.
    pub genuine_pairs: usize,
    /// Pairs of a probe and a gallery crop of different identities.
    pub impostor_pairs: usize,
    /// Every (probe, gallery) pair, in a fixed order for a given split: the
    /// same pairs for any network, so qualities of one network can be judged
    /// on the scores of another ([`erc_area`]).
    #[serde(skip)]
    pub pairs: Pairs,
}

/// Scores, labels and probe qualities of the evaluation's pairs: three
/// parallel vectors, one entry per (probe, gallery crop) pair. Probes come
/// clean first, then each degradation's levels 1…[`LADDER_STEPS`] in
/// [`Degradation::ALL`]'s order; within each, probe-major.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    /// Cosine between the probe's and the clean gallery crop's features, in [−1, 1].
    pub scores: Vec<f64>,
    /// Whether probe and gallery crop are the same identity (a genuine pair).
    pub is_same: Vec<bool>,
    /// The probe's feature magnitude ‖x‖: the pair's quality (the gallery side is clean).
    pub probe_magnitude: Vec<f64>,
}

/// ERC area of `quality` on the comparator that produced `pairs`' scores
/// (threshold fixed at FMR 1e-3 on them). With one network's scores and two
/// networks' magnitudes, the recognition is the same and only the ordering
/// by quality differs. `quality` has one value per pair, in `pairs`' order
/// (another report's [`Pairs::probe_magnitude`] of the same split fits).
/// Lower is better.
pub fn erc_area(pairs: &Pairs, quality: &[f64]) -> f64 {
    let threshold = fixed_threshold(&pairs.scores, &pairs.is_same, DEFAULT_TARGET_FMR);
    erc_curve("quality", &pairs.scores, &pairs.is_same, quality, threshold, &default_fractions()).area
}

impl QualityReport {
    /// The mean of the per-degradation ρ (0 when there is none).
    pub fn mean_spearman(&self) -> f64 {
        self.spearman.iter().map(|(_, rho)| rho).sum::<f64>() / self.spearman.len().max(1) as f64
    }
}

fn unit_rows(features: &Array2<f64>) -> (Array2<f64>, Vec<f64>) {
    let mut unit = features.clone();
    let mut norms = Vec::with_capacity(features.nrows());
    for mut row in unit.rows_mut() {
        let norm = row.dot(&row).sqrt();
        norms.push(norm);
        row /= norm.max(1e-12);
    }
    (unit, norms)
}

/// Measures how well `backbone`'s magnitudes track quality on `split` (step 3
/// of the module doc): held-out crops embedded clean and at levels
/// 1…[`LADDER_STEPS`] of each degradation, scored by cosine against the
/// clean gallery crops. The degradations are seeded per crop and level, so
/// two networks see the same probes. `batch` bounds the faces per forward pass.
pub fn evaluate_quality<B: Backend>(
    backbone: &Backbone<B>,
    normalization: Normalization,
    split: &FaceSplit,
    batch: usize,
    device: &B::Device,
) -> QualityReport {
    let gallery_faces: Vec<RgbImage> = split.gallery.iter().map(|(_, face)| face.clone()).collect();
    let (gallery, _) = unit_rows(&embed(backbone, &gallery_faces, normalization, false, batch, device));
    let side = split.heldout.first().map(|(_, face)| face.width()).unwrap_or(112);

    // Probes: the clean held-out crops once, then each degradation's levels 1…steps.
    let clean: Vec<RgbImage> = split.heldout.iter().map(|(_, face)| face.clone()).collect();
    let clean_features = embed(backbone, &clean, normalization, false, batch, device);
    let mut probe_features = vec![clean_features.clone()];
    let mut spearman_rows = Vec::new();
    let mut mean_magnitude = Vec::new();
    let (_, clean_norms) = unit_rows(&clean_features);
    for kind in Degradation::ALL {
        let severities = kind.default_severities(side, LADDER_STEPS);
        let (mut severity_of, mut magnitude_of) = (Vec::new(), Vec::new());
        let mut means = Vec::new();
        for (level, &severity) in severities.iter().enumerate() {
            let norms = if level == 0 {
                clean_norms.clone()
            } else {
                let degraded: Vec<RgbImage> =
                    split.heldout.iter().enumerate().map(|(i, (_, face))| kind.apply(face, severity, 7919 * i as u64 + level as u64)).collect();
                let features = embed(backbone, &degraded, normalization, false, batch, device);
                let (_, norms) = unit_rows(&features);
                probe_features.push(features);
                norms
            };
            means.push(norms.iter().sum::<f64>() / norms.len().max(1) as f64);
            severity_of.extend(std::iter::repeat_n(severity, norms.len()));
            magnitude_of.extend(norms);
        }
        spearman_rows.push((kind.name().to_string(), spearman(&severity_of, &magnitude_of).unwrap_or(0.0)));
        mean_magnitude.push((kind.name().to_string(), means));
    }

    let (mut scores, mut is_same, mut quality) = (Vec::new(), Vec::new(), Vec::new());
    for features in &probe_features {
        let (unit, norms) = unit_rows(features);
        let cosines = unit.dot(&gallery.t());
        for (p, row) in cosines.rows().into_iter().enumerate() {
            let probe_class = split.heldout[p].0;
            for (g, &cosine) in row.iter().enumerate() {
                scores.push(cosine);
                is_same.push(split.gallery[g].0 == probe_class);
                quality.push(norms[p]);
            }
        }
    }
    let threshold = fixed_threshold(&scores, &is_same, DEFAULT_TARGET_FMR);
    let curve = erc_curve("magnitude", &scores, &is_same, &quality, threshold, &default_fractions());
    let at = |fraction: f64| {
        let index = curve.fractions.iter().position(|&f| (f - fraction).abs() < 1e-9).unwrap_or(0);
        (fraction, curve.fnmr[index])
    };
    let genuine_pairs = is_same.iter().filter(|&&same| same).count();
    QualityReport {
        spearman: spearman_rows,
        mean_magnitude,
        erc_area: curve.area,
        fnmr_at_reject: [at(0.0), at(0.2), at(0.5)],
        threshold,
        genuine_pairs,
        impostor_pairs: is_same.len() - genuine_pairs,
        pairs: Pairs { scores, is_same, probe_magnitude: quality },
    }
}
