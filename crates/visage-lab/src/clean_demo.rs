//! The proof that sub-centre cleaning works: labels flipped on purpose at
//! known rates, cleaning judged as label-noise detection, and the networks
//! trained on raw and on cleaned data compared on held-out verification.
//!
//! Per noise fraction p (0 included, as the reference):
//! 1. a copy of the training folder with ⌊p·N⌉ samples (chosen at random)
//!    filed under another class (uniform over the others) — [`flip_plan`];
//!    `flipped.csv` lists them;
//! 2. a `subcenter` run (the base config) on the noisy copy, then [`clean`]:
//!    precision = flipped ∩ dropped / dropped, recall = flipped ∩ dropped / flipped;
//! 3. the same run with an `arcface` head (K = 1, same s and m) on the raw
//!    noisy copy and on the cleaned copy (same epochs, so the cleaned run
//!    takes fewer steps);
//! 4. every run's backbone on the held-out folder: insightface's 10-fold
//!    verification accuracy on all same-class pairs and as many seeded
//!    different-class pairs ([`heldout_pairs`]); no mirror (digits are not
//!    symmetric).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use visage_data::{DecodeOptions, FaceSource, ImageFolder};
use visage_eval::plot::line::{Line, LineChart, SeriesLabelPosition};
use visage_eval::verification::{combine_with_flip, kfold_accuracy, squared_distances, VerificationConfig};
use visage_heads::HeadConfig;
use visage_image::RgbImage;

use visage_train::checkpoint;
use visage_train::clean::{clean, CleanOptions};
use visage_train::config::TrainConfig;
use visage_train::error::{Result, TrainError};
use visage_train::trainer::{train, RunOptions};
use visage_train::verification::embed;

/// What [`run_noise_demo`] trains on, which noise levels it tries and where
/// it writes.
#[derive(Clone, Debug)]
pub struct NoiseDemoOptions {
    /// A train.toml with a `subcenter` head; its `data.source` is the clean training folder.
    /// Every run of the demo uses its settings (the ArcFace runs with K = 1, same s and m).
    pub config: TrainConfig,
    /// Held-out images, one sub-folder per class with the training folder's
    /// class names: the verification pairs are drawn from them.
    pub heldout: PathBuf,
    /// Fractions of training labels to flip, e.g. 0, 0.1, …, 0.4; each in
    /// [0, 1) (`visage clean noise-demo` checks; [`flip_plan`] clamps to [0, 1]).
    pub fractions: Vec<f64>,
    /// Root of the outputs: per fraction `noise-NN/` (NN = percent) holding
    /// the noisy copy `data/`, `flipped.csv`, the cleaned copy `cleaned/` and
    /// the three runs; each of these is deleted and rewritten.
    pub out_dir: PathBuf,
    /// Seed of the flips and of the negative pairs.
    pub seed: u64,
    /// Cleaning threshold in degrees, in (0, 180]: a sample further than
    /// this from its class's dominant sub-centre is dropped (the paper's
    /// 75°, [`visage_train::clean::DEFAULT_MAX_ANGLE_DEG`], is the CLI's default).
    pub max_angle_deg: f64,
}

/// One noise fraction's outcome: cleaning as a detector of the flipped
/// labels, and the three runs' held-out verification accuracy.
#[derive(Clone, Debug, Serialize)]
pub struct NoiseLevelResult {
    /// Fraction of training labels flipped on purpose, as given in the options.
    pub fraction: f64,
    /// Training samples N (the same at every level).
    pub samples: usize,
    /// Samples given a wrong label: round(fraction·N).
    pub flipped: usize,
    /// Samples the sub-centre cleaning dropped from the noisy copy.
    pub dropped: usize,
    /// Dropped samples that had been flipped: the true detections.
    pub dropped_flipped: usize,
    /// Flipped among dropped (NaN when nothing is dropped).
    pub precision: f64,
    /// Dropped among flipped (NaN when nothing is flipped).
    pub recall: f64,
    /// Fraction of the cleaned set whose label is still wrong: flipped
    /// samples not dropped over samples kept.
    pub noise_after_cleaning: f64,
    /// Held-out verification accuracy in [0, 1] (mean of 10 folds, threshold
    /// chosen on the other nine) of the sub-centre run on the noisy data.
    pub verification_subcenter_raw: f64,
    /// The same for the ArcFace run (K = 1) on the noisy data.
    pub verification_arcface_raw: f64,
    /// The same for the ArcFace run on the cleaned data.
    pub verification_arcface_cleaned: f64,
}

/// The whole experiment (`results.json` of `visage clean noise-demo`).
#[derive(Clone, Debug, Serialize)]
pub struct NoiseDemoResult {
    /// Held-out pairs every run is verified on: all same-class pairs and as
    /// many different-class ones ([`heldout_pairs`]).
    pub heldout_pairs: usize,
    /// The cleaning threshold used, in degrees from the dominant sub-centre.
    pub max_angle_deg: f64,
    /// Sub-centres per class (`k`) of the sub-centre ArcFace runs, from the config's head.
    pub subcenters: usize,
    /// One per noise fraction, in the options' order.
    pub levels: Vec<NoiseLevelResult>,
}

/// SplitMix64: the demo's only randomness, so a seed gives the same flips everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1; the modulo bias is below 2^-50 for small n).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Which samples get which wrong label: exactly `round(fraction·N)` samples,
/// chosen uniformly without replacement, each given a label drawn uniformly
/// from the other `classes − 1`. `None` = label unchanged.
pub fn flip_plan(labels: &[usize], classes: usize, fraction: f64, seed: u64) -> Vec<Option<usize>> {
    assert!(classes >= 2 || fraction == 0.0, "flipping needs two classes");
    let n = labels.len();
    let count = ((fraction.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
    let mut rng = SplitMix(seed);
    // Partial Fisher–Yates: the first `count` of a random permutation.
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..count {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut plan = vec![None; n];
    for &index in &order[..count] {
        let other = rng.below(classes - 1);
        plan[index] = Some(if other >= labels[index] { other + 1 } else { other });
    }
    plan
}

/// All same-class pairs of `labels` and as many different-class pairs drawn
/// with `seed` (without repeats), shuffled so that the 10 folds mix both.
pub fn heldout_pairs(labels: &[usize], seed: u64) -> Vec<(usize, usize, bool)> {
    let n = labels.len();
    let mut pairs: Vec<(usize, usize, bool)> = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            if labels[a] == labels[b] {
                pairs.push((a, b, true));
            }
        }
    }
    let positives = pairs.len();
    let negatives_possible = n * n.saturating_sub(1) / 2 - positives;
    let mut rng = SplitMix(seed ^ 0x5EED);
    let mut seen = BTreeSet::new();
    while seen.len() < positives.min(negatives_possible) {
        let (a, b) = (rng.below(n), rng.below(n));
        if labels[a] != labels[b] && seen.insert((a.min(b), a.max(b))) {
            pairs.push((a.min(b), a.max(b), false));
        }
    }
    for i in (1..pairs.len()).rev() {
        pairs.swap(i, rng.below(i + 1));
    }
    pairs
}

/// Precision and recall of `dropped` as a detector of `flipped` (sample indices):
/// `(hits, hits / dropped, hits / flipped)` with hits = |flipped ∩ dropped|;
/// a ratio whose denominator is 0 is NaN.
pub fn detection_scores(flipped: &BTreeSet<usize>, dropped: &BTreeSet<usize>) -> (usize, f64, f64) {
    let hits = flipped.intersection(dropped).count();
    let ratio = |a: usize, b: usize| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
    (hits, ratio(hits, dropped.len()), ratio(hits, flipped.len()))
}

/// Runs the whole experiment; `log` gets one line per stage.
///
/// Per fraction it trains three networks with the config's schedule, so it
/// takes three full trainings per fraction. Errors: [`TrainError::Config`]
/// when the config's head is not `subcenter`, the held-out classes differ
/// from the training folder's, or two training files share a file name
/// (samples are matched across the copies by file name); otherwise what training, cleaning,
/// loading a checkpoint or writing the noisy copy returns.
pub fn run_noise_demo<B: AutodiffBackend>(options: &NoiseDemoOptions, device: &B::Device, mut log: impl FnMut(&str)) -> Result<NoiseDemoResult> {
    let base = &options.config;
    let HeadConfig::SubCenter(subcenter) = &base.head else {
        return Err(TrainError::Config {
            path: base.data.source.clone(),
            message: format!("the demo's config needs a `subcenter` head, not `{}`", base.head.kind()),
        });
    };
    let arcface_head = HeadConfig::ArcFace(subcenter.arcface());
    let train_folder = ImageFolder::scan(&base.data.source)?;
    let labels: Vec<usize> = train_folder.images().iter().map(|i| i.label as usize).collect();
    let classes = train_folder.num_classes();
    let heldout = load_folder(&options.heldout, base)?;
    if heldout.1 != train_folder.class_names() {
        return Err(TrainError::Config { path: options.heldout.clone(), message: "the held-out classes differ from the training folder's".into() });
    }
    let pairs = heldout_pairs(&heldout.2, options.seed);

    let mut levels = Vec::new();
    for &fraction in &options.fractions {
        let level_dir = options.out_dir.join(format!("noise-{:02}", (fraction * 100.0).round() as u32));
        let noisy = level_dir.join("data");
        let plan = flip_plan(&labels, classes, fraction, options.seed);
        write_noisy_folder(&train_folder, &plan, &noisy, &level_dir.join("flipped.csv"))?;
        let flipped: BTreeSet<usize> = plan.iter().enumerate().filter(|(_, p)| p.is_some()).map(|(i, _)| i).collect();
        log(&format!(
            "noise {:.0} %: {} of {} labels flipped; training subcenter (k = {})",
            100.0 * fraction,
            flipped.len(),
            labels.len(),
            subcenter.k
        ));

        let run = |name: &str, head: &HeadConfig, source: &Path| -> Result<PathBuf> {
            let config = TrainConfig { out_dir: level_dir.join(name), head: *head, data: visage_data_section(base, source), ..base.clone() };
            let _ = std::fs::remove_dir_all(&config.out_dir);
            train::<B>(&config, device, &RunOptions::default(), |_| {})?;
            Ok(config.out_dir)
        };
        let subcenter_run = run("subcenter-raw", &base.head, &noisy)?;
        let cleaned = clean::<B::InnerBackend>(
            &subcenter_run,
            &noisy,
            &level_dir.join("cleaned"),
            &CleanOptions { max_angle_deg: options.max_angle_deg, ..CleanOptions::default() },
            device,
            |_, _| {},
        )?;
        // The noisy folder lists the same files in another order: match by file name.
        let noisy_folder = ImageFolder::scan(&noisy)?;
        let original_index: std::collections::BTreeMap<std::ffi::OsString, usize> =
            train_folder.images().iter().enumerate().map(|(i, image)| (image.path.file_name().unwrap_or_default().to_os_string(), i)).collect();
        let dropped: BTreeSet<usize> =
            cleaned.dropped.iter().map(|d| original_index[noisy_folder.images()[d.index].path.file_name().unwrap_or_default()]).collect();
        let (hits, precision, recall) = detection_scores(&flipped, &dropped);
        let kept = cleaned.summary.kept;
        let noise_after_cleaning = (flipped.len() - hits) as f64 / kept.max(1) as f64;
        log(&format!(
            "  cleaning: dropped {} ({} flipped): precision {precision:.3}, recall {recall:.3}; noise left {:.1} %",
            dropped.len(),
            hits,
            100.0 * noise_after_cleaning
        ));
        let cleaned_folder = cleaned.summary.cleaned.clone();
        log("  training arcface on the raw and on the cleaned data");
        let arcface_raw = run("arcface-raw", &arcface_head, &noisy)?;
        let arcface_cleaned = run("arcface-cleaned", &arcface_head, &cleaned_folder)?;
        let verify = |run: &Path| -> Result<f64> { verification_accuracy::<B>(run, &heldout.0, &pairs, base, device) };
        let level = NoiseLevelResult {
            fraction,
            samples: labels.len(),
            flipped: flipped.len(),
            dropped: dropped.len(),
            dropped_flipped: hits,
            precision,
            recall,
            noise_after_cleaning,
            verification_subcenter_raw: verify(&subcenter_run)?,
            verification_arcface_raw: verify(&arcface_raw)?,
            verification_arcface_cleaned: verify(&arcface_cleaned)?,
        };
        log(&format!(
            "  held-out verification: subcenter raw {:.4}, arcface raw {:.4}, arcface cleaned {:.4}",
            level.verification_subcenter_raw, level.verification_arcface_raw, level.verification_arcface_cleaned
        ));
        levels.push(level);
    }
    Ok(NoiseDemoResult { heldout_pairs: pairs.len(), max_angle_deg: options.max_angle_deg, subcenters: subcenter.k, levels })
}

fn visage_data_section(base: &TrainConfig, source: &Path) -> visage_train::config::DataSection {
    visage_train::config::DataSection { source: source.to_path_buf(), ..base.data.clone() }
}

/// Copies `folder` to `target` with each planned sample filed under its new
/// class, and lists the flips in `csv`. File names must be unique across
/// classes (they are in examples/digits: the source index).
fn write_noisy_folder(folder: &ImageFolder, plan: &[Option<usize>], target: &Path, csv: &Path) -> Result<()> {
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Write { path, source }
    };
    let _ = std::fs::remove_dir_all(target);
    let names = folder.class_names();
    for name in names {
        std::fs::create_dir_all(target.join(name)).map_err(write(&target.join(name)))?;
    }
    let mut seen = BTreeSet::new();
    let mut lines = String::from("file,true_class,given_class\n");
    for (image, flip) in folder.images().iter().zip(plan) {
        let file = image.path.file_name().unwrap_or_default();
        if !seen.insert(file.to_os_string()) {
            return Err(TrainError::Config {
                path: image.path.clone(),
                message: "file names must be unique across classes to follow a flipped file".into(),
            });
        }
        let given = flip.unwrap_or(image.label as usize);
        let to = target.join(&names[given]).join(file);
        std::fs::copy(&image.path, &to).map_err(write(&to))?;
        if flip.is_some() {
            lines.push_str(&format!("{},{},{}\n", file.to_string_lossy(), names[image.label as usize], names[given]));
        }
    }
    std::fs::write(csv, lines).map_err(write(csv))
}

/// Decoded images, class names and labels of a folder, at the run's input size.
fn load_folder(root: &Path, config: &TrainConfig) -> Result<(Vec<RgbImage>, Vec<String>, Vec<usize>)> {
    let side = config.backbone.shape().map_err(|message| TrainError::Config { path: root.to_path_buf(), message })?.input_size() as u32;
    let folder = ImageFolder::scan(root)?;
    let decode = DecodeOptions::default();
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for index in 0..folder.len() {
        let sample = folder.load(index, &decode)?;
        images.push(if sample.image.dimensions() == (side, side) {
            sample.image
        } else {
            image::imageops::resize(&sample.image, side, side, image::imageops::FilterType::Triangle)
        });
        labels.push(sample.label as usize);
    }
    Ok((images, folder.class_names().to_vec(), labels))
}

fn verification_accuracy<B: AutodiffBackend>(
    run: &Path,
    images: &[RgbImage],
    pairs: &[(usize, usize, bool)],
    config: &TrainConfig,
    device: &B::Device,
) -> Result<f64> {
    let (backbone, _) = checkpoint::load_backbone::<B::InnerBackend>(run, device)?;
    let features = embed(&backbone, images, config.data.normalization.normalization(), false, 128, device);
    let unit = combine_with_flip(&features, None);
    let index_pairs: Vec<(usize, usize)> = pairs.iter().map(|&(a, b, _)| (a, b)).collect();
    let issame: Vec<bool> = pairs.iter().map(|&(_, _, same)| same).collect();
    Ok(kfold_accuracy(&squared_distances(&unit, &index_pairs), &issame, &VerificationConfig::default()).accuracy_mean)
}

/// The two charts: precision and recall of the dropped samples against the
/// noise fraction; held-out verification accuracy of each run against it.
pub fn charts(result: &NoiseDemoResult) -> (LineChart, LineChart) {
    let noisy: Vec<&NoiseLevelResult> = result.levels.iter().filter(|l| l.flipped > 0).collect();
    let series = |name: &str, value: &dyn Fn(&NoiseLevelResult) -> f64, levels: &[&NoiseLevelResult]| Line {
        name: name.to_string(),
        points: levels.iter().map(|l| (100.0 * l.fraction, value(l))).collect(),
    };
    let detection = LineChart::new(
        format!("Sub-centre cleaning as label-noise detection (> {}° from the dominant sub-centre)", result.max_angle_deg),
        "Labels flipped on purpose (%)",
        "Precision / recall of the dropped samples",
        vec![series("precision", &|l| l.precision, &noisy), series("recall", &|l| l.recall, &noisy)],
    )
    .with_markers()
    .with_legend(SeriesLabelPosition::LowerLeft);
    let all: Vec<&NoiseLevelResult> = result.levels.iter().collect();
    let verification = LineChart::new(
        format!("Held-out verification accuracy ({} pairs, 10-fold)", result.heldout_pairs),
        "Labels flipped on purpose (%)",
        "Verification accuracy",
        vec![
            series("ArcFace on raw data", &|l| l.verification_arcface_raw, &all),
            series("ArcFace on cleaned data", &|l| l.verification_arcface_cleaned, &all),
            series(&format!("sub-centre ArcFace (k = {}) on raw data", result.subcenters), &|l| l.verification_subcenter_raw, &all),
        ],
    )
    .with_markers()
    .with_legend(SeriesLabelPosition::LowerLeft);
    (detection, verification)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_are_exact_in_number_always_to_another_class_and_seeded() {
        let labels: Vec<usize> = (0..200).map(|i| i % 5).collect();
        let plan = flip_plan(&labels, 5, 0.3, 9);
        assert_eq!(plan.iter().filter(|p| p.is_some()).count(), 60);
        assert!(plan.iter().zip(&labels).all(|(p, &l)| p.is_none_or(|to| to != l && to < 5)));
        assert_eq!(plan, flip_plan(&labels, 5, 0.3, 9));
        assert_ne!(plan, flip_plan(&labels, 5, 0.3, 10));
        // Flipping everything: each of class 0's 400 samples goes to one of
        // the 4 others, about 100 each (binomial sd 8.7; the seed is fixed).
        let labels: Vec<usize> = (0..2000).map(|i| i % 5).collect();
        let all = flip_plan(&labels, 5, 1.0, 9);
        let mut to = [0usize; 5];
        all.iter().zip(&labels).filter(|(_, &l)| l == 0).for_each(|(p, _)| to[p.unwrap()] += 1);
        assert_eq!(to[0], 0);
        assert!(to[1..].iter().all(|&n| (70..=130).contains(&n)), "{to:?}");
        assert!(flip_plan(&labels, 5, 0.0, 9).iter().all(Option::is_none));
    }

    #[test]
    fn pairs_are_every_positive_and_as_many_distinct_negatives() {
        let labels = [0, 0, 0, 1, 1, 2];
        let pairs = heldout_pairs(&labels, 3);
        let positives: BTreeSet<(usize, usize)> = pairs.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
        assert_eq!(positives, BTreeSet::from([(0, 1), (0, 2), (1, 2), (3, 4)]));
        let negatives: BTreeSet<(usize, usize)> = pairs.iter().filter(|p| !p.2).map(|p| (p.0, p.1)).collect();
        assert_eq!((negatives.len(), pairs.len()), (4, 8));
        assert!(negatives.iter().all(|&(a, b)| labels[a] != labels[b]));
    }

    #[test]
    fn detection_scores_by_hand() {
        let flipped = BTreeSet::from([1, 2, 3, 4]);
        let dropped = BTreeSet::from([3, 4, 5]);
        let (hits, precision, recall) = detection_scores(&flipped, &dropped);
        assert_eq!((hits, precision, recall), (2, 2.0 / 3.0, 0.5));
        assert!(detection_scores(&BTreeSet::new(), &BTreeSet::new()).1.is_nan());
    }
}
