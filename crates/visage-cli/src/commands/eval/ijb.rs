//! `visage eval ijb`: IJB-B/C-style template evaluation from insightface's
//! `meta/` folder — 1:1 verification (ROC, TAR@FAR) and, with a gallery and
//! probes, 1:N identification (CMC, TPIR@FPIR).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use visage_eval::ijb::{identify, pair_scores, pool_templates, IdentificationResult, PoolingOptions};
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::ijb_meta::{find_meta_file, read_detector_scores, read_face_tid_mid, read_template_pairs, read_template_subjects};
use visage_eval::plot::{self, roc::RocChart};
use visage_eval::roc::{roc_summary, RocSummary, DEFAULT_FARS};
use visage_eval::EvalError;

use super::{cannot_write, check_fars, check_rates, input, print_json};
use crate::commands::Failure;

/// Arguments of `visage eval ijb`.
#[derive(Debug, Args)]
pub struct IjbArgs {
    /// insightface `meta/` folder holding `*_face_tid_mid.txt`,
    /// `*_template_pair_label.txt` and (for --detector-score) `*_name_5pts_score.txt`.
    #[arg(long)]
    meta: PathBuf,
    /// Face features, one row per line of `*_face_tid_mid.txt`, same order.
    #[arg(long)]
    features: PathBuf,
    /// Features of the flipped faces (flip test: added to --features).
    #[arg(long)]
    flip_features: Option<PathBuf>,
    /// Keep raw feature norms when pooling (quality-weighted by magnitude).
    #[arg(long)]
    norm_score: bool,
    /// Weight each face by its detector score.
    #[arg(long)]
    detector_score: bool,
    /// FAR targets for 1:1 TAR@FAR.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_FARS.to_vec())]
    far: Vec<f64>,
    /// 1:N gallery CSV (`TEMPLATE_ID`, `SUBJECT_ID` columns).
    #[arg(long, requires = "probe")]
    gallery: Option<PathBuf>,
    /// 1:N probe CSV (`TEMPLATE_ID`, `SUBJECT_ID` columns).
    #[arg(long, requires = "gallery")]
    probe: Option<PathBuf>,
    /// FPIR targets for TPIR@FPIR.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.01, 0.1])]
    fpir: Vec<f64>,
    /// 1:1 ROC chart, `.svg` or `.png`.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// What the command reports.
struct Evaluation {
    templates: usize,
    pairs: usize,
    verification: RocSummary,
    identification: Option<IdentificationResult>,
}

impl IjbArgs {
    pub fn run(&self, out: &mut dyn Write) -> Result<(), Failure> {
        check_fars(&self.far)?;
        check_rates("--fpir", &self.fpir)?;
        let r = self.evaluate().map_err(input)?;
        if self.json {
            let report = serde_json::json!({
                "templates": r.templates,
                "verification": r.verification.report(),
                "identification": r.identification,
            });
            print_json(out, &report)
        } else {
            let mut text = format!("{} templates, {} pairs: AUC {:.6}, EER {:.6}\n", r.templates, r.pairs, r.verification.auc, r.verification.eer);
            for t in &r.verification.tar_at_far {
                text += &format!("  TAR@FAR={:e}: {:.6}\n", t.far, t.tar);
            }
            if let Some(i) = &r.identification {
                text += &format!("1:N: rank-1 {:.6}, rank-5 {:.6}\n", i.rank1, i.rank5);
                for t in &i.tpir_at_fpir {
                    text += &format!("  TPIR@FPIR={:e}: {:.6}\n", t.fpir, t.tpir);
                }
            }
            write!(out, "{text}").map_err(cannot_write("stdout"))
        }
    }

    /// Reads the meta files and the features, checks that they agree, pools
    /// the templates and scores them; saves `--plot` on the way.
    fn evaluate(&self) -> visage_eval::Result<Evaluation> {
        let faces_path = find_meta_file(&self.meta, "_face_tid_mid.txt")?;
        let pairs_path = find_meta_file(&self.meta, "_template_pair_label.txt")?;
        let faces = read_face_tid_mid(&faces_path)?;
        let mut features = read_embeddings(&self.features)?;
        if features.nrows() != faces.len() {
            let message = format!("{} rows, but {} lists {} faces", features.nrows(), faces_path.display(), faces.len());
            return Err(EvalError::content(&self.features, message));
        }
        if let Some(path) = &self.flip_features {
            let flip = read_embeddings(path)?;
            if flip.dim() != features.dim() {
                return Err(EvalError::content(path, format!("shape {:?} differs from {:?} of --features", flip.dim(), features.dim())));
            }
            features += &flip;
        }
        let detector = if self.detector_score {
            let path = find_meta_file(&self.meta, "_name_5pts_score.txt")?;
            let scores = read_detector_scores(&path)?;
            if scores.len() != faces.len() {
                return Err(EvalError::content(&path, format!("{} lines for {} faces in {}", scores.len(), faces.len(), faces_path.display())));
            }
            if let Some((i, _)) = scores.iter().zip(&faces).enumerate().find(|(_, (s, f))| s.0 != f.image) {
                let message = format!("image `{}` where {} has `{}` (same order expected)", scores[i].0, faces_path.display(), faces[i].image);
                return Err(EvalError::parse(&path, i + 1, message));
            }
            Some(scores.into_iter().map(|s| s.1).collect::<Vec<f64>>())
        } else {
            None
        };
        let options = PoolingOptions { norm_score: self.norm_score, detector_score: self.detector_score };
        let templates = pool_templates(&features, &faces, detector.as_deref(), options);
        let pairs = read_template_pairs(&pairs_path)?;
        let scores = pair_scores(&templates, &pairs)
            .map_err(|t| EvalError::content(&pairs_path, format!("template {t} has no face in {}", faces_path.display())))?;
        scores.check_both_classes().map_err(|m| EvalError::content(&pairs_path, m))?;
        let verification = roc_summary(&scores, &self.far);
        if let Some(path) = &self.plot {
            plot::save(&RocChart { title: "IJB 1:1 verification".into(), systems: vec![("templates", verification.curve.as_slice())] }, path)?;
        }
        let identification = match (&self.gallery, &self.probe) {
            (Some(g), Some(p)) => {
                let gallery = read_template_subjects(g)?;
                let probes = read_template_subjects(p)?;
                let r = identify(&templates, &gallery, &probes, &self.fpir)
                    .map_err(|t| EvalError::content(g.parent().unwrap_or(g), format!("1:N template {t} has no face in {}", faces_path.display())))?;
                Some(r)
            }
            _ => None,
        };
        Ok(Evaluation { templates: templates.ids.len(), pairs: pairs.len(), verification, identification })
    }
}
