//! MagFace's claim, tested on a trained run: the feature magnitude ‖x‖ of a
//! MagFace network is a quality score (Meng et al., CVPR 2021, §3.3), so it
//! should fall as the input gets worse, while recognition stays as good as
//! ArcFace's.
//!
//! A run's checkpoint is loaded, its network put in eval mode, and held-out
//! images are embedded clean and at increasing severities of each
//! [`Degradation`]. Per level: the mean magnitude and the identification
//! accuracy (nearest class centre by cosine; the centres are the means of the
//! L2-normalised features of the clean gallery, by default the run's own
//! training images). Per degradation: Spearman's ρ between severity and
//! magnitude over every (image, level) pair. `write_report` puts several
//! runs (MagFace against ArcFace) side by side in one HTML file and a chart.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use ndarray::{Array2, Axis};
use serde::Serialize;
use visage_data::{DecodeOptions, FaceSource, ImageFolder, Normalization};
use visage_eval::cluster::magnitude::spearman;
use visage_eval::plot::line::{Line, LineChart, SeriesLabelPosition};
use visage_eval::report::{write_html, Section};
use visage_image::RgbImage;
use visage_nn::Backbone;

use visage_data::degrade::Degradation;
use visage_train::checkpoint::{self, TrainState};
use visage_train::error::{Result, TrainError};
use visage_train::model::TrainModel;
use visage_train::optimizer::AnyOptimizer;
use visage_train::verification::embed;

/// What [`evaluate_run`] embeds and how finely it steps the severities;
/// [`DemoOptions::new`] gives the defaults (run's training data as gallery,
/// 5 steps, 128 images per pass).
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Held-out images, one sub-folder per class (the training classes, same
    /// names, else [`evaluate_run`] fails with [`TrainError::Config`]); each is
    /// resized to the network's input side if it differs.
    pub heldout: PathBuf,
    /// Clean images whose mean features are the class centres; `None`: the run's training data.
    pub gallery: Option<PathBuf>,
    /// Severity levels after the clean one, per degradation, equally spaced
    /// up to [`Degradation::default_severities`]' top (blur σ = side/12 px,
    /// noise σ = 100 grey levels, occlusion 40 % of the area). Default 5.
    pub steps: usize,
    /// Images per forward pass (bounds memory, not the result). Default 128.
    pub batch_size: usize,
}

impl DemoOptions {
    /// Options for the held-out folder `heldout`: gallery `None` (the run's
    /// training data), 5 severity steps, 128 images per forward pass.
    pub fn new(heldout: impl Into<PathBuf>) -> Self {
        Self { heldout: heldout.into(), gallery: None, steps: 5, batch_size: 128 }
    }
}

/// One severity level of one degradation, over every held-out image.
#[derive(Clone, Debug, Serialize)]
pub struct LevelResult {
    /// In the degradation's unit ([`Degradation::unit`]: blur σ in pixels,
    /// noise σ in 8-bit grey levels, occluded fraction of the area); 0 = clean.
    pub severity: f64,
    /// Mean over the held-out images of the raw (not normalised) feature
    /// magnitude ‖x‖ at this severity.
    pub mean_magnitude: f64,
    /// Identification accuracy in [0, 1]: fraction of held-out images whose nearest class centre is their own class.
    pub accuracy: f64,
}

/// One degradation applied to every held-out image at each severity level,
/// and how the magnitude followed it. Every ρ is in [−1, 1].
#[derive(Clone, Debug, Serialize)]
pub struct LadderResult {
    /// The degradation stepped through (blur, noise or occlusion).
    pub degradation: Degradation,
    /// Clean first, then increasing severity: `steps + 1` levels.
    pub levels: Vec<LevelResult>,
    /// Spearman's ρ of (severity, magnitude) over every image at every level;
    /// strongly negative means magnitude ranks the inputs by quality. NaN when
    /// undefined (a constant magnitude or severity, or fewer than 3 pairs).
    pub spearman_rho: f64,
    /// The mean over images of each image's own ρ of (severity, magnitude):
    /// how consistently one image's magnitude falls as it degrades. Images
    /// whose ρ is undefined are left out; 0 when none has one.
    pub per_image_rho: f64,
    /// Spearman's ρ of (magnitude, cosine to the image's own class centre)
    /// over every image at every level: MagFace's "a larger magnitude sits
    /// closer to its class" (§3.3, Fig. 1), the property a quality score
    /// needs. NaN when undefined.
    pub magnitude_cosine_rho: f64,
}

impl LadderResult {
    /// Whether the mean magnitude falls strictly from each level to the next.
    pub fn magnitude_falls_monotonically(&self) -> bool {
        self.levels.windows(2).all(|w| w[1].mean_magnitude < w[0].mean_magnitude)
    }
}

/// One run's (one checkpoint's) results on every degradation, as
/// [`evaluate_run`] returns and [`write_report`] tabulates them.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// The run's folder name (e.g. `digits-magface`).
    pub name: String,
    /// The margin head it was trained with: its config `kind` (`magface`, `arcface`, …).
    pub head: String,
    /// The checkpoint folder evaluated (the one holding `state.json`).
    pub checkpoint: PathBuf,
    /// Optimiser steps the checkpoint had taken, from its `state.json`.
    pub steps_done: u64,
    /// Number of held-out images, each embedded at every level of every ladder.
    pub heldout_images: usize,
    /// One per degradation, in [`Degradation::ALL`]'s order (blur, noise, occlusion).
    pub ladders: Vec<LadderResult>,
}

impl RunResult {
    /// Accuracy in [0, 1] on the clean held-out images (level 0 of the first
    /// ladder); NaN when there is no ladder.
    pub fn clean_accuracy(&self) -> f64 {
        self.ladders.first().and_then(|l| l.levels.first()).map_or(f64::NAN, |l| l.accuracy)
    }

    /// Mean ‖x‖ of the clean held-out images (level 0 of the first ladder),
    /// the reference the report's relative magnitudes divide by; NaN when
    /// there is no ladder.
    pub fn clean_mean_magnitude(&self) -> f64 {
        self.ladders.first().and_then(|l| l.levels.first()).map_or(f64::NAN, |l| l.mean_magnitude)
    }

    /// The ladder of `degradation`; `None` only if the result was built
    /// without it ([`evaluate_run`] fills every one).
    pub fn ladder(&self, degradation: Degradation) -> Option<&LadderResult> {
        self.ladders.iter().find(|l| l.degradation == degradation)
    }
}

/// Evaluates `run`: a run folder (its newest checkpoint) or one checkpoint folder.
///
/// The network runs in eval mode; the held-out images are embedded clean and
/// at every level of every [`Degradation`] (each image's noise and occluder
/// fixed by its index, so the levels differ only in severity), and
/// identification is by cosine to the class centres of the gallery.
///
/// Errors: [`TrainError::Checkpoint`] when `run` holds no checkpoint, its
/// `state.json` is invalid or its backbone settings are; [`TrainError::Read`]
/// when `state.json` cannot be read; [`TrainError::Config`] when the held-out
/// classes differ from the gallery's; data errors when a folder cannot be
/// scanned or an image decoded; checkpoint errors when the weights do not load.
pub fn evaluate_run<B: AutodiffBackend>(run: &Path, options: &DemoOptions, device: &B::Device) -> Result<RunResult> {
    let checkpoint_dir = if run.join("state.json").is_file() {
        run.to_path_buf()
    } else {
        checkpoint::latest(run).ok_or_else(|| TrainError::Checkpoint {
            path: run.to_path_buf(),
            message: "no checkpoint here (expected a run folder with checkpoints/step-*/ or a checkpoint folder with state.json)".into(),
        })?
    };
    let state = read_state(&checkpoint_dir)?;
    let config = &state.config;
    let shape = config
        .backbone
        .shape()
        .map_err(|message| TrainError::Checkpoint { path: checkpoint_dir.clone(), message: format!("[backbone] {message}") })?;
    let side = shape.input_size() as u32;
    let normalization = config.data.normalization.normalization();

    let gallery_path = options.gallery.clone().unwrap_or_else(|| config.data.source.clone());
    let gallery = LabelledImages::load(&gallery_path, side)?;
    let heldout = LabelledImages::load(&options.heldout, side)?;
    if heldout.class_names != gallery.class_names {
        return Err(TrainError::Config {
            path: options.heldout.clone(),
            message: format!("classes {:?} differ from the gallery's {:?} ({})", heldout.class_names, gallery.class_names, gallery_path.display()),
        });
    }

    let fresh = TrainModel::<B>::init(&shape, gallery.class_names.len(), config.head.centres_per_class(), config.seed, device)?;
    let optimizer = AnyOptimizer::new(&config.optimizer);
    let (model, _, _) = checkpoint::load(&checkpoint_dir, fresh, optimizer, device)?;
    let backbone = model.valid().backbone;

    let centres = class_centres(
        &embed_images(&backbone, &gallery.images, normalization, options.batch_size, device),
        &gallery.labels,
        gallery.class_names.len(),
    );
    // Severity 0 is the same clean images for every degradation: embed them once.
    let clean_features = embed_images(&backbone, &heldout.images, normalization, options.batch_size, device);
    let ladders = Degradation::ALL
        .iter()
        .map(|&degradation| {
            let severities = degradation.default_severities(side, options.steps);
            let mut levels = Vec::with_capacity(severities.len());
            let (mut all_severities, mut all_magnitudes, mut all_cosines) = (Vec::new(), Vec::new(), Vec::new());
            let mut per_image: Vec<Vec<f64>> = vec![Vec::with_capacity(severities.len()); heldout.images.len()];
            for &severity in &severities {
                let features = if severity == 0.0 {
                    clean_features.clone()
                } else {
                    let degraded: Vec<RgbImage> =
                        heldout.images.iter().enumerate().map(|(i, image)| degradation.apply(image, severity, i as u64)).collect();
                    embed_images(&backbone, &degraded, normalization, options.batch_size, device)
                };
                let magnitudes: Vec<f64> = features.rows().into_iter().map(|row| row.dot(&row).sqrt()).collect();
                let accuracy = nearest_centre_accuracy(&features, &centres, &heldout.labels);
                levels.push(LevelResult { severity, mean_magnitude: mean(&magnitudes), accuracy });
                all_severities.extend(std::iter::repeat_n(severity, magnitudes.len()));
                all_cosines.extend(own_centre_cosines(&features, &centres, &heldout.labels));
                per_image.iter_mut().zip(&magnitudes).for_each(|(image, &m)| image.push(m));
                all_magnitudes.extend(magnitudes);
            }
            let spearman_rho = spearman(&all_severities, &all_magnitudes).unwrap_or(f64::NAN);
            let image_rhos: Vec<f64> = per_image.iter().filter_map(|m| spearman(&severities, m)).collect();
            let magnitude_cosine_rho = spearman(&all_magnitudes, &all_cosines).unwrap_or(f64::NAN);
            LadderResult { degradation, levels, spearman_rho, per_image_rho: mean(&image_rhos), magnitude_cosine_rho }
        })
        .collect();

    let name = run.file_name().map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(RunResult {
        name,
        head: config.head.kind().to_string(),
        checkpoint: checkpoint_dir,
        steps_done: state.steps_done,
        heldout_images: heldout.images.len(),
        ladders,
    })
}

fn read_state(checkpoint_dir: &Path) -> Result<TrainState> {
    let path = checkpoint_dir.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Read { path: path.clone(), source })?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint { path, message: format!("invalid state: {e}") })
}

/// An image folder decoded into memory at the network's input size.
struct LabelledImages {
    class_names: Vec<String>,
    images: Vec<RgbImage>,
    labels: Vec<usize>,
}

impl LabelledImages {
    fn load(root: &Path, side: u32) -> Result<Self> {
        let folder = ImageFolder::scan(root)?;
        let decode = DecodeOptions::default();
        let (mut images, mut labels) = (Vec::with_capacity(folder.len()), Vec::with_capacity(folder.len()));
        for index in 0..folder.len() {
            let loaded = folder.load(index, &decode)?;
            let image = if loaded.image.dimensions() == (side, side) {
                loaded.image
            } else {
                // As the training loader resizes.
                image::imageops::resize(&loaded.image, side, side, image::imageops::FilterType::Triangle)
            };
            images.push(image);
            labels.push(loaded.label as usize);
        }
        Ok(Self { class_names: folder.class_names().to_vec(), images, labels })
    }
}

fn embed_images<B: Backend>(
    backbone: &Backbone<B>,
    images: &[RgbImage],
    normalization: Normalization,
    batch: usize,
    device: &B::Device,
) -> Array2<f64> {
    embed(backbone, images, normalization, false, batch, device)
}

/// Per class, the mean of its members' unit features, itself made unit length.
fn class_centres(features: &Array2<f64>, labels: &[usize], classes: usize) -> Array2<f64> {
    let mut centres = Array2::<f64>::zeros((classes, features.ncols()));
    for (row, &label) in features.rows().into_iter().zip(labels) {
        let norm = row.dot(&row).sqrt().max(1e-12);
        let mut centre = centres.row_mut(label);
        centre.scaled_add(1.0 / norm, &row);
    }
    for mut centre in centres.axis_iter_mut(Axis(0)) {
        let norm = centre.dot(&centre).sqrt().max(1e-12);
        centre /= norm;
    }
    centres
}

/// Fraction of rows whose most cosine-similar centre is their label's.
fn nearest_centre_accuracy(features: &Array2<f64>, centres: &Array2<f64>, labels: &[usize]) -> f64 {
    let scores = features.dot(&centres.t()); // cosine up to each row's positive norm: same argmax
    let correct = scores
        .rows()
        .into_iter()
        .zip(labels)
        .filter(|(row, &label)| {
            let best = row.iter().enumerate().fold((0, f64::NEG_INFINITY), |best, (c, &s)| if s > best.1 { (c, s) } else { best });
            best.0 == label
        })
        .count();
    correct as f64 / labels.len().max(1) as f64
}

/// Each row's cosine to its own class centre (centres are unit length).
fn own_centre_cosines(features: &Array2<f64>, centres: &Array2<f64>, labels: &[usize]) -> Vec<f64> {
    features.rows().into_iter().zip(labels).map(|(row, &label)| row.dot(&centres.row(label)) / row.dot(&row).sqrt().max(1e-12)).collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The report's charts: mean magnitude relative to the clean images, and
/// accuracy, against severity (as a fraction of the strongest level), one
/// line per (run, degradation).
pub fn charts(results: &[RunResult]) -> (LineChart, LineChart) {
    let lines = |value: &dyn Fn(&RunResult, &LevelResult) -> f64| -> Vec<Line> {
        results
            .iter()
            .flat_map(|run| {
                run.ladders.iter().map(move |ladder| {
                    let top = ladder.levels.last().map_or(1.0, |l| l.severity).max(f64::MIN_POSITIVE);
                    Line {
                        name: format!("{} · {} (ρ {:.2})", run.name, ladder.degradation.name(), ladder.spearman_rho),
                        points: ladder.levels.iter().map(|level| (level.severity / top, value(run, level))).collect(),
                    }
                })
            })
            .collect()
    };
    let x_desc = "Degradation severity (fraction of the strongest level)";
    let magnitude = LineChart::new(
        "Feature magnitude as held-out images degrade",
        x_desc,
        "Mean ‖x‖ / mean ‖x‖ of clean images",
        lines(&|run, level| level.mean_magnitude / run.clean_mean_magnitude()),
    )
    .with_markers()
    .with_legend(SeriesLabelPosition::LowerLeft);
    let accuracy = LineChart::new(
        "Identification accuracy as held-out images degrade",
        x_desc,
        "Accuracy (nearest class centre)",
        lines(&|_, level| level.accuracy),
    )
    .with_markers()
    .with_legend(SeriesLabelPosition::LowerLeft);
    (magnitude, accuracy)
}

/// Writes `html`: one self-contained HTML page with a summary row per run
/// (clean accuracy and ‖x‖, pooled and per-image ρ per degradation, ρ of
/// magnitude against cosine to the own centre), both [`charts`], and every
/// level's numbers. A failure to render or write is a [`TrainError::Config`]
/// naming `html`.
pub fn write_report(results: &[RunResult], html: &Path) -> Result<()> {
    let report_error = |e: visage_eval::EvalError| TrainError::Config { path: html.to_path_buf(), message: e.to_string() };
    let (magnitude_chart, accuracy_chart) = charts(results);
    let mut header =
        vec!["run".to_string(), "head".into(), "steps".into(), "held-out images".into(), "clean accuracy".into(), "clean mean ‖x‖".into()];
    header.extend(Degradation::ALL.iter().map(|d| format!("ρ(severity, ‖x‖) {}: pooled / per image", d.name())));
    header.push("ρ(‖x‖, cos to own centre), all levels".into());
    let rows = results
        .iter()
        .map(|run| {
            let mut row = vec![
                run.name.clone(),
                run.head.clone(),
                run.steps_done.to_string(),
                run.heldout_images.to_string(),
                format!("{:.1} %", 100.0 * run.clean_accuracy()),
                format!("{:.3}", run.clean_mean_magnitude()),
            ];
            row.extend(Degradation::ALL.iter().map(|&d| {
                run.ladder(d).map_or_else(String::new, |l| {
                    format!("{:.3} / {:.3}{}", l.spearman_rho, l.per_image_rho, if l.magnitude_falls_monotonically() { " (monotone)" } else { "" })
                })
            }));
            row.push(run.ladders.iter().map(|l| format!("{:.3}", l.magnitude_cosine_rho)).collect::<Vec<_>>().join(" / "));
            row
        })
        .collect();
    let mut sections = vec![Section::new("Summary")
        .with_table(header, rows)
        .with_note(
            "ρ(severity, ‖x‖): Spearman's rank correlation between degradation severity and feature magnitude, pooled over every held-out image \
                 at every level, and per image (mean of each image's own ρ); strongly negative means the magnitude ranks images by quality. \
                 ρ(‖x‖, cos): magnitude against the cosine to the image's own class centre, per degradation (blur / noise / occlusion). \
                 Accuracy: nearest class centre by cosine, centres from clean gallery images.",
        )
        .with_chart(&magnitude_chart)
        .map_err(report_error)?
        .with_chart(&accuracy_chart)
        .map_err(report_error)?];
    for run in results {
        let header = vec!["degradation".to_string(), "severity".into(), "mean ‖x‖".into(), "relative to clean".into(), "accuracy".into()];
        let rows = run
            .ladders
            .iter()
            .flat_map(|ladder| {
                ladder.levels.iter().map(move |level| {
                    vec![
                        ladder.degradation.name().to_string(),
                        format!("{:.3} {}", level.severity, ladder.degradation.unit()),
                        format!("{:.4}", level.mean_magnitude),
                        format!("{:.4}", level.mean_magnitude / run.clean_mean_magnitude()),
                        format!("{:.1} %", 100.0 * level.accuracy),
                    ]
                })
            })
            .collect();
        sections.push(Section::new(format!("{} ({}), checkpoint {}", run.name, run.head, run.checkpoint.display())).with_table(header, rows));
    }
    write_html(html, "MagFace: feature magnitude against image degradation", &sections).map_err(report_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_centre_by_cosine_not_by_distance() {
        // Row 0 is long and close in angle to centre 1; row 1 sits on centre 0.
        let features = ndarray::array![[0.1, 10.0], [1.0, 0.0], [0.0, -1.0]];
        let labels = [1, 0, 0];
        let centres = class_centres(&features, &labels, 2);
        // Class 0's centre: mean of (1, 0) and (0, −1), normalised = (1, −1)/√2.
        assert!((centres[[0, 0]] - 0.5f64.sqrt()).abs() < 1e-12 && (centres[[0, 1]] + 0.5f64.sqrt()).abs() < 1e-12);
        assert!((nearest_centre_accuracy(&features, &centres, &labels) - 1.0).abs() < 1e-12);
        assert!((nearest_centre_accuracy(&features, &centres, &[0, 0, 0]) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn monotone_means_strictly_falling() {
        let ladder = |means: &[f64]| LadderResult {
            degradation: Degradation::Blur,
            levels: means.iter().map(|&m| LevelResult { severity: 0.0, mean_magnitude: m, accuracy: 1.0 }).collect(),
            spearman_rho: -1.0,
            per_image_rho: -1.0,
            magnitude_cosine_rho: 1.0,
        };
        assert!(ladder(&[3.0, 2.0, 1.0]).magnitude_falls_monotonically());
        assert!(!ladder(&[3.0, 3.0, 1.0]).magnitude_falls_monotonically());
        assert!(!ladder(&[3.0, 1.0, 2.0]).magnitude_falls_monotonically());
    }
}
