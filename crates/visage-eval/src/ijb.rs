//! IJB-B/IJB-C style template evaluation (insightface's `eval_ijbc.py`
//! recipe, restated in docs/spec/formats.md):
//! - optional flip test: a face's feature is feature(image) + feature(flip);
//! - each face feature is L2-normalised unless *norm-score* keeps its raw
//!   norm — the quality-weighted pooling where the feature magnitude (a
//!   MagFace quality) weighs the face;
//! - optional *detector-score* weighting multiplies a face by its detection score;
//! - template = Σ over media of (mean of that media's faces), L2-normalised;
//! - 1:1 score = cosine of the two templates → ROC, TAR@FAR ([`crate::roc`]);
//! - 1:N: probe templates against a gallery (one score per subject = its best
//!   template): CMC rank-k, and TPIR@FPIR where a mated probe counts at
//!   threshold t when its top-1 subject is right and scores ≥ t, and FPIR is
//!   the share of non-mated probes whose top score is ≥ t (NIST IR 8238 §3).

use std::collections::{BTreeMap, HashMap};

use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::io::ijb_meta::FaceRecord;
use crate::roc::{roc_summary, LabelledScores};

/// Pooling options (all off = insightface's plain setting).
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolingOptions {
    /// Keep each face's raw feature norm (quality-weighted pooling by magnitude).
    pub norm_score: bool,
    /// Multiply each face by its detector score.
    pub detector_score: bool,
}

/// Template features, rows in ascending template id.
pub struct Templates {
    /// Template ids, ascending.
    pub ids: Vec<i64>,
    /// One L2-normalised feature per template (rows in `ids` order), so a
    /// dot product of two rows is their cosine.
    pub features: Array2<f64>,
    index: HashMap<i64, usize>,
}

impl Templates {
    /// The row of `features` holding `template`, if it had any face.
    pub fn row(&self, template: i64) -> Option<usize> {
        self.index.get(&template).copied()
    }
}

/// Pools face features (rows in `faces` order) into templates.
pub fn pool_templates(features: &Array2<f64>, faces: &[FaceRecord], detector_scores: Option<&[f64]>, options: PoolingOptions) -> Templates {
    assert_eq!(features.nrows(), faces.len(), "one feature row per face");
    // template → media → (sum, count)
    let mut groups: BTreeMap<i64, BTreeMap<i64, (Array1<f64>, usize)>> = BTreeMap::new();
    for (i, face) in faces.iter().enumerate() {
        let mut f = features.row(i).to_owned();
        if !options.norm_score {
            let norm = f.dot(&f).sqrt();
            if norm > 0.0 {
                f /= norm;
            }
        }
        if options.detector_score {
            if let Some(scores) = detector_scores {
                f *= scores[i];
            }
        }
        let media = groups.entry(face.template).or_default();
        let entry = media.entry(face.media).or_insert_with(|| (Array1::zeros(features.ncols()), 0));
        entry.0 += &f;
        entry.1 += 1;
    }
    let ids: Vec<i64> = groups.keys().copied().collect();
    let mut out = Array2::zeros((ids.len(), features.ncols()));
    for (row, media) in groups.values().enumerate() {
        let mut t = Array1::<f64>::zeros(features.ncols());
        for (sum, count) in media.values() {
            t.scaled_add(1.0 / *count as f64, sum);
        }
        let norm = t.dot(&t).sqrt();
        if norm > 0.0 {
            t /= norm;
        }
        out.row_mut(row).assign(&t);
    }
    let index = ids.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    Templates { ids, features: out, index }
}

/// Cosine scores of template pairs; `Err(template)` names an unknown template.
pub fn pair_scores(templates: &Templates, pairs: &[(i64, i64, bool)]) -> Result<LabelledScores, i64> {
    let mut scores = LabelledScores::default();
    for &(a, b, same) in pairs {
        let ra = templates.row(a).ok_or(a)?;
        let rb = templates.row(b).ok_or(b)?;
        let s = templates.features.row(ra).dot(&templates.features.row(rb));
        if same {
            scores.genuine.push(s)
        } else {
            scores.impostor.push(s)
        }
    }
    Ok(scores)
}

/// True positive identification rate at one false positive identification
/// rate target (NIST IR 8238's TPIR@FPIR).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TpirAtFpir {
    /// The FPIR target: the share of non-mated probes allowed a top score ≥ the threshold.
    pub fpir: f64,
    /// Share of mated probes whose right subject is top-1 with a score ≥ the threshold.
    pub tpir: f64,
}

/// Open-set 1:N identification of probe templates against a gallery.
#[derive(Debug, Clone, Serialize)]
pub struct IdentificationResult {
    /// Probes whose subject is enrolled in the gallery.
    pub mated_probes: usize,
    /// Probes whose subject is not in the gallery.
    pub non_mated_probes: usize,
    /// Share of mated probes whose subject ranks first (`cmc[0]`).
    pub rank1: f64,
    /// Share of mated probes whose subject is among the first 5 (the last
    /// CMC entry when there are fewer subjects).
    pub rank5: f64,
    /// CMC: identification rate at ranks 1 … 20 (or the number of subjects).
    pub cmc: Vec<f64>,
    /// One entry per FPIR target, in the order given; empty unless there are
    /// both mated and non-mated probes.
    pub tpir_at_fpir: Vec<TpirAtFpir>,
}

/// Open-set 1:N identification. `gallery`/`probes`: `(template, subject)`.
/// `Err(template)` names a template without features.
pub fn identify(templates: &Templates, gallery: &[(i64, i64)], probes: &[(i64, i64)], fpirs: &[f64]) -> Result<IdentificationResult, i64> {
    let mut subjects: Vec<i64> = gallery.iter().map(|g| g.1).collect();
    subjects.sort_unstable();
    subjects.dedup();
    let subject_col: HashMap<i64, usize> = subjects.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    let gallery_rows: Vec<(usize, usize)> =
        gallery.iter().map(|&(t, s)| templates.row(t).map(|r| (r, subject_col[&s])).ok_or(t)).collect::<Result<_, _>>()?;
    let max_rank = subjects.len().clamp(1, 20);
    let mut rank_hits = vec![0usize; max_rank];
    let mut top_scores = LabelledScores::default();
    let (mut mated, mut non_mated) = (0usize, 0usize);
    for &(t, subject) in probes {
        let p = templates.features.row(templates.row(t).ok_or(t)?);
        let mut best = vec![f64::NEG_INFINITY; subjects.len()];
        for &(row, col) in &gallery_rows {
            best[col] = best[col].max(templates.features.row(row).dot(&p));
        }
        // top-1: highest score, lowest subject index on ties
        let (top_col, top_score) = best.iter().enumerate().fold((0, f64::NEG_INFINITY), |acc, (i, &s)| if s > acc.1 { (i, s) } else { acc });
        match subject_col.get(&subject) {
            Some(&col) => {
                mated += 1;
                let rank = 1 + best.iter().filter(|&&s| s > best[col]).count();
                for (k, hits) in rank_hits.iter_mut().enumerate() {
                    if rank <= k + 1 {
                        *hits += 1;
                    }
                }
                // a wrong top-1 is never a true positive identification
                top_scores.genuine.push(if top_col == col { top_score } else { f64::NEG_INFINITY });
            }
            None => {
                non_mated += 1;
                top_scores.impostor.push(top_score);
            }
        }
    }
    let cmc: Vec<f64> = rank_hits.iter().map(|&h| h as f64 / mated.max(1) as f64).collect();
    let tpir_at_fpir = if mated > 0 && non_mated > 0 {
        roc_summary(&top_scores, fpirs).tar_at_far.iter().map(|t| TpirAtFpir { fpir: t.far, tpir: t.tar }).collect()
    } else {
        Vec::new()
    };
    Ok(IdentificationResult { mated_probes: mated, non_mated_probes: non_mated, rank1: cmc[0], rank5: cmc[cmc.len().min(5) - 1], cmc, tpir_at_fpir })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn face(t: i64, m: i64) -> FaceRecord {
        FaceRecord { image: String::new(), template: t, media: m }
    }

    #[test]
    fn media_are_averaged_then_summed() {
        // template 1: media 10 has two faces (x, x), media 11 one face (y)
        // → mean(x,x) + y = x + y, normalised; media weight does not grow with frame count
        let f = array![[2.0, 0.0], [4.0, 0.0], [0.0, 3.0]];
        let t = pool_templates(&f, &[face(1, 10), face(1, 10), face(1, 11)], None, PoolingOptions::default());
        let h = 1.0 / 2f64.sqrt();
        assert!((t.features[[0, 0]] - h).abs() < 1e-15 && (t.features[[0, 1]] - h).abs() < 1e-15);
        // norm-score: raw norms weigh the faces: mean(2,4)=3 vs 3 → still equal
        let t = pool_templates(&f, &[face(1, 10), face(1, 10), face(1, 11)], None, PoolingOptions { norm_score: true, detector_score: false });
        assert!((t.features[[0, 0]] - h).abs() < 1e-15);
        // detector score 0.5 on the y face halves its weight: (1, 0.5)/‖·‖
        let t = pool_templates(
            &f,
            &[face(1, 10), face(1, 10), face(1, 11)],
            Some(&[1.0, 1.0, 0.5]),
            PoolingOptions { norm_score: false, detector_score: true },
        );
        let n = (1.25f64).sqrt();
        assert!((t.features[[0, 0]] - 1.0 / n).abs() < 1e-15 && (t.features[[0, 1]] - 0.5 / n).abs() < 1e-15);
    }
}
