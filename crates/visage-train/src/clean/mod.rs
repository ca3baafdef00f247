//! Sub-centre ArcFace data cleaning (Deng et al., "Sub-center ArcFace",
//! TPAMI; docs/spec/heads.md "Sub-center ArcFace and cleaning").
//!
//! A network trained with the `subcenter` head has K centres per class; clean
//! samples of a class gather around one of them (the *dominant* sub-centre)
//! while mislabelled or otherwise noisy samples, which the max over
//! sub-centres lets the head tolerate, sit at the others or far from all.
//! Cleaning keeps, per class, the samples within `max_angle_deg` (75° in the
//! paper) of the dominant sub-centre and drops the rest; training then
//! continues with K = 1 on the kept samples.
//!
//! The decisions are pure functions of cosines ([`own_class_cosines`],
//! [`decide`]); [`clean`] runs the network (eval mode, batched, the run's
//! input size and normalisation) over a dataset and writes:
//!
//! - the cleaned dataset in the input's format: `data/<class>/…` (the kept
//!   files copied) for an image folder, `train.rec` + `train.idx` for RecordIO
//!   (insightface's layout, every class kept even when emptied, so labels
//!   keep their meaning);
//! - `dropped.csv`: one row per dropped sample (path or record key, class,
//!   angle to the dominant sub-centre, nearest and dominant sub-centre);
//! - `summary.json`: counts and the dominant sub-centre's share per class;
//! - `montages/<class>.png`: the dropped faces of each class, worst first.
//!
//! Every file is written beside its target and renamed into place.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use visage_data::{DecodeOptions, FaceSource, InsightfacePacker, RecordDataset};
use visage_eval::io::text::split_csv_line;
use visage_eval::plot::montage::{montage, Tile};
use visage_image::RgbImage;
use visage_image::{write_atomically, write_png};

use crate::checkpoint;
use crate::error::{Result, TrainError};
use crate::trainer::TrainSource;
use crate::verification::embed;

/// The paper's threshold: a sample further than this from its class's
/// dominant sub-centre is taken as noise.
pub const DEFAULT_MAX_ANGLE_DEG: f64 = 75.0;

// ---------------------------------------------------------------------------
// The decisions, over plain arrays.

/// What cleaning decided for one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleDecision {
    /// The sub-centre of its own class it is closest to (largest cosine).
    pub nearest_subcentre: usize,
    /// Its angle to its class's dominant sub-centre, in degrees.
    pub angle_deg: f64,
    pub kept: bool,
}

/// What cleaning decided for one class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassDecision {
    /// The sub-centre most of the class's samples are nearest to.
    pub dominant_subcentre: usize,
    /// Per sub-centre, how many of the class's samples are nearest to it.
    pub nearest_counts: Vec<usize>,
}

impl ClassDecision {
    pub fn samples(&self) -> usize {
        self.nearest_counts.iter().sum()
    }

    /// Fraction of the class's samples nearest to the dominant sub-centre (0 for an empty class).
    pub fn dominant_share(&self) -> f64 {
        self.nearest_counts[self.dominant_subcentre] as f64 / self.samples().max(1) as f64
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decisions {
    pub samples: Vec<SampleDecision>,
    pub classes: Vec<ClassDecision>,
}

/// `N × K`: each sample's cosine to each of the K sub-centres of its own class
/// (`centres` is `classes·K × D`, row `c·K + j` = sub-centre `j` of class `c`;
/// neither features nor centres need be unit length). A zero row has cosine 0
/// to everything (90°), so it is dropped rather than kept by accident.
pub fn own_class_cosines(features: &Array2<f64>, centres: &Array2<f64>, labels: &[usize], k: usize) -> Array2<f64> {
    assert_eq!(features.nrows(), labels.len(), "one label per feature row");
    assert_eq!(features.ncols(), centres.ncols(), "features and centres have the same dimension");
    let unit = |row: ndarray::ArrayView1<f64>| {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row.to_owned() / norm
        } else {
            row.to_owned()
        }
    };
    let mut cosines = Array2::zeros((labels.len(), k));
    for ((row, &label), mut out) in features.rows().into_iter().zip(labels).zip(cosines.rows_mut()) {
        let x = unit(row);
        for j in 0..k {
            out[j] = x.dot(&unit(centres.row(label * k + j))).clamp(-1.0, 1.0);
        }
    }
    cosines
}

/// Index of the largest value; ties go to the lowest index (so the result
/// does not depend on anything but the numbers).
fn argmax_lowest(values: impl IntoIterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.into_iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Angle in degrees of a cosine (clamped to [−1, 1]).
pub fn angle_deg(cosine: f64) -> f64 {
    cosine.clamp(-1.0, 1.0).acos().to_degrees()
}

/// Per class, the dominant sub-centre: the one the most samples of the class
/// are nearest to. A tie between sub-centres goes to the lowest index; a class
/// without samples gets sub-centre 0 (and drops nothing, having nothing).
pub fn dominant_subcentres(nearest: &[usize], labels: &[usize], classes: usize, k: usize) -> Vec<ClassDecision> {
    let mut counts = vec![vec![0usize; k]; classes];
    for (&j, &label) in nearest.iter().zip(labels) {
        counts[label][j] += 1;
    }
    counts
        .into_iter()
        .map(|nearest_counts| ClassDecision { dominant_subcentre: argmax_lowest(nearest_counts.iter().map(|&n| n as f64)), nearest_counts })
        .collect()
}

/// The cleaning rule on `N × K` own-class cosines ([`own_class_cosines`]):
/// each sample's nearest sub-centre, each class's dominant one, and a sample
/// is kept when its angle to the dominant sub-centre is at most
/// `max_angle_deg` (a sample exactly at the threshold is kept; "exceeds" drops).
pub fn decide(cosines: &Array2<f64>, labels: &[usize], classes: usize, max_angle_deg: f64) -> Decisions {
    let k = cosines.ncols();
    let nearest: Vec<usize> = cosines.rows().into_iter().map(|row| argmax_lowest(row.iter().copied())).collect();
    let class_decisions = dominant_subcentres(&nearest, labels, classes, k);
    let samples = cosines
        .rows()
        .into_iter()
        .zip(labels)
        .zip(&nearest)
        .map(|((row, &label), &nearest_subcentre)| {
            let angle = angle_deg(row[class_decisions[label].dominant_subcentre]);
            SampleDecision { nearest_subcentre, angle_deg: angle, kept: angle <= max_angle_deg }
        })
        .collect();
    Decisions { samples, classes: class_decisions }
}

// ---------------------------------------------------------------------------
// The job: a checkpoint and a dataset in, a cleaned dataset and reports out.

#[derive(Clone, Debug)]
pub struct CleanOptions {
    /// Drop samples further than this from their class's dominant sub-centre.
    pub max_angle_deg: f64,
    /// Images per forward pass.
    pub batch_size: usize,
    /// At most this many dropped faces per class in its montage (the worst).
    pub montage_faces: usize,
}

impl Default for CleanOptions {
    fn default() -> Self {
        Self { max_angle_deg: DEFAULT_MAX_ANGLE_DEG, batch_size: 128, montage_faces: 64 }
    }
}

/// The input's format, which the cleaned copy keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    Folder,
    Recordio,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassSummary {
    pub label: usize,
    pub name: String,
    pub samples: usize,
    pub kept: usize,
    pub dropped: usize,
    pub dominant_subcentre: usize,
    /// Fraction of the class's samples nearest to the dominant sub-centre.
    pub dominant_share: f64,
    /// Per sub-centre, how many samples are nearest to it.
    pub nearest_counts: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unreadable {
    pub sample: String,
    pub reason: String,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CleanSummary {
    pub checkpoint: PathBuf,
    pub steps_done: u64,
    pub data: PathBuf,
    pub format: DataFormat,
    /// The cleaned dataset: a folder, or the `.rec` (its `.idx` beside it).
    pub cleaned: PathBuf,
    pub dropped_csv: PathBuf,
    pub montages: PathBuf,
    pub max_angle_deg: f64,
    pub subcentres_per_class: usize,
    pub samples: usize,
    pub kept: usize,
    pub dropped: usize,
    /// Samples that could not be read (left out of everything, the cleaned set included).
    pub unreadable: Vec<Unreadable>,
    pub classes: Vec<ClassSummary>,
}

/// One row of `dropped.csv` (also what the noise demo reads back).
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedSample {
    /// The file (folder input) or `train.rec#key K` (RecordIO).
    pub sample: String,
    /// Index in the source (the loader's order).
    pub index: usize,
    pub label: usize,
    pub class: String,
    pub angle_deg: f64,
    pub nearest_subcentre: usize,
    pub dominant_subcentre: usize,
}

pub const DROPPED_CSV_HEADER: &str = "sample,index,label,class,angle_deg,nearest_subcentre,dominant_subcentre";

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl DroppedSample {
    fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{:.4},{},{}",
            csv_field(&self.sample),
            self.index,
            self.label,
            csv_field(&self.class),
            self.angle_deg,
            self.nearest_subcentre,
            self.dominant_subcentre
        )
    }
}

/// Reads a `dropped.csv` back.
pub fn read_dropped_csv(path: &Path) -> Result<Vec<DroppedSample>> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Read { path: path.to_path_buf(), source })?;
    let bad = |line: usize, message: String| TrainError::Config { path: path.to_path_buf(), message: format!("line {line}: {message}") };
    let mut lines = text.lines();
    if lines.next() != Some(DROPPED_CSV_HEADER) {
        return Err(bad(1, format!("expected the header {DROPPED_CSV_HEADER:?}")));
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            let fields = split_csv_line(line);
            if fields.len() != 7 {
                return Err(bad(i + 2, format!("{} fields, expected 7", fields.len())));
            }
            let number = |k: usize| fields[k].parse::<f64>().map_err(|e| bad(i + 2, format!("field {}: {e}", k + 1)));
            Ok(DroppedSample {
                sample: fields[0].clone(),
                index: number(1)? as usize,
                label: number(2)? as usize,
                class: fields[3].clone(),
                angle_deg: number(4)?,
                nearest_subcentre: number(5)? as usize,
                dominant_subcentre: number(6)? as usize,
            })
        })
        .collect()
}

/// What [`clean`] wrote, with the summary it wrote as JSON.
#[derive(Clone, Debug)]
pub struct CleanReport {
    pub summary: CleanSummary,
    pub summary_json: PathBuf,
    pub dropped: Vec<DroppedSample>,
}

/// Cleans `data` (an image folder or a `.rec`) with the sub-centres of
/// `checkpoint` (a checkpoint folder or a run folder: its newest) into
/// `out_dir`. `progress(done, total)` is called after every embedded batch.
/// Run it on a non-autodiff backend: the network is then in eval mode.
pub fn clean<B: Backend>(
    checkpoint_path: &Path,
    data: &Path,
    out_dir: &Path,
    options: &CleanOptions,
    device: &B::Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<CleanReport> {
    if !(options.max_angle_deg > 0.0 && options.max_angle_deg <= 180.0) {
        return Err(TrainError::Config { path: out_dir.to_path_buf(), message: format!("max angle {}° is not in (0, 180]", options.max_angle_deg) });
    }
    let (model, state, checkpoint_dir) = checkpoint::load_model::<B>(checkpoint_path, device)?;
    let config = &state.config;
    let k = config.head.centres_per_class();
    if k < 2 {
        return Err(TrainError::Checkpoint {
            path: checkpoint_dir.join("state.json"),
            message: format!(
                "the head is `{}` with {k} centre per class; cleaning needs a `subcenter` head with k > 1 (the dominant sub-centre is chosen among a class's K)",
                config.head.kind()
            ),
        });
    }
    let centres = tensor_to_array(model.centres.val());
    if centres.nrows() % k != 0 {
        return Err(TrainError::Checkpoint {
            path: checkpoint_dir.clone(),
            message: format!("{} centre rows are not a multiple of k = {k}", centres.nrows()),
        });
    }
    let classes = centres.nrows() / k;
    let shape = config
        .backbone
        .shape()
        .map_err(|message| TrainError::Checkpoint { path: checkpoint_dir.clone(), message: format!("[backbone] {message}") })?;
    let side = shape.input_size() as u32;
    let normalization = config.data.normalization.normalization();

    let source = TrainSource::open(data)?;
    let class_names = check_classes(&source, data, classes, &config.data.source)?;
    let format = match source {
        TrainSource::Folder(_) => DataFormat::Folder,
        TrainSource::Record(_) => DataFormat::Recordio,
    };

    // Embed every readable sample; unreadable ones are reported and skipped.
    let decode = DecodeOptions::default();
    let total = source.len();
    let batch = options.batch_size.max(1);
    let (mut indices, mut labels, mut unreadable) = (Vec::with_capacity(total), Vec::with_capacity(total), Vec::new());
    let mut feature_rows: Vec<f64> = Vec::new();
    let mut dim = 0;
    let mut pending: Vec<RgbImage> = Vec::with_capacity(batch);
    let flush = |pending: &mut Vec<RgbImage>, feature_rows: &mut Vec<f64>, dim: &mut usize| {
        if !pending.is_empty() {
            let features = embed(&model.backbone, pending, normalization, false, batch, device);
            *dim = features.ncols();
            feature_rows.extend(features.iter());
            pending.clear();
        }
    };
    for index in 0..total {
        match source.load(index, &decode) {
            Ok(sample) => {
                let label = sample.label as usize;
                if label >= classes {
                    return Err(TrainError::Config {
                        path: data.to_path_buf(),
                        message: format!("{} has label {label}, but the checkpoint has {classes} classes", sample_name(&source, index)),
                    });
                }
                pending.push(resized(sample.image, side));
                indices.push(index);
                labels.push(label);
            }
            Err(e) => unreadable.push(Unreadable { sample: sample_name(&source, index), reason: e.to_string() }),
        }
        if pending.len() == batch {
            flush(&mut pending, &mut feature_rows, &mut dim);
            progress(index + 1, total);
        }
    }
    flush(&mut pending, &mut feature_rows, &mut dim);
    progress(total, total);
    if indices.is_empty() {
        return Err(TrainError::Config { path: data.to_path_buf(), message: format!("no readable sample ({} unreadable)", unreadable.len()) });
    }
    let features = Array2::from_shape_vec((indices.len(), dim), feature_rows).expect("one row per embedded sample");
    if dim != centres.ncols() {
        return Err(TrainError::Checkpoint {
            path: checkpoint_dir.clone(),
            message: format!("features have {dim} dimensions, the centres {}", centres.ncols()),
        });
    }

    let decisions = decide(&own_class_cosines(&features, &centres, &labels, k), &labels, classes, options.max_angle_deg);

    std::fs::create_dir_all(out_dir).map_err(|source| TrainError::Write { path: out_dir.to_path_buf(), source })?;
    let kept: Vec<usize> = indices.iter().zip(&decisions.samples).filter(|(_, d)| d.kept).map(|(&i, _)| i).collect();
    let cleaned = match &source {
        TrainSource::Folder(folder) => write_folder(folder, &kept, &out_dir.join("data"))?,
        TrainSource::Record(records) => write_records(records, &kept, classes, &out_dir.join("train.rec"))?,
    };

    let mut dropped: Vec<DroppedSample> = indices
        .iter()
        .zip(&labels)
        .zip(&decisions.samples)
        .filter(|(_, d)| !d.kept)
        .map(|((&index, &label), d)| DroppedSample {
            sample: sample_name(&source, index),
            index,
            label,
            class: class_names[label].clone(),
            angle_deg: d.angle_deg,
            nearest_subcentre: d.nearest_subcentre,
            dominant_subcentre: decisions.classes[label].dominant_subcentre,
        })
        .collect();
    dropped.sort_by(|a, b| a.label.cmp(&b.label).then(b.angle_deg.total_cmp(&a.angle_deg)).then(a.index.cmp(&b.index)));
    let mut csv = String::from(DROPPED_CSV_HEADER);
    csv.push('\n');
    for row in &dropped {
        csv.push_str(&row.csv_row());
        csv.push('\n');
    }
    let dropped_csv = out_dir.join("dropped.csv");
    write_atomically(&dropped_csv, csv.as_bytes()).map_err(|e| write_error(&dropped_csv, e))?;

    let montages = out_dir.join("montages");
    write_montages(&source, &dropped, &class_names, format, side, options.montage_faces, &montages)?;

    let class_summaries = decisions
        .classes
        .iter()
        .enumerate()
        .map(|(label, class)| {
            let dropped_here = dropped.iter().filter(|d| d.label == label).count();
            ClassSummary {
                label,
                name: class_names[label].clone(),
                samples: class.samples(),
                kept: class.samples() - dropped_here,
                dropped: dropped_here,
                dominant_subcentre: class.dominant_subcentre,
                dominant_share: class.dominant_share(),
                nearest_counts: class.nearest_counts.clone(),
            }
        })
        .collect();
    let summary = CleanSummary {
        checkpoint: checkpoint_dir,
        steps_done: state.steps_done,
        data: data.to_path_buf(),
        format,
        cleaned,
        dropped_csv,
        montages,
        max_angle_deg: options.max_angle_deg,
        subcentres_per_class: k,
        samples: indices.len(),
        kept: kept.len(),
        dropped: dropped.len(),
        unreadable,
        classes: class_summaries,
    };
    let summary_json = out_dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    write_atomically(&summary_json, json.as_bytes()).map_err(|e| write_error(&summary_json, e))?;
    Ok(CleanReport { summary, summary_json, dropped })
}

fn write_error(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Write { path: path.to_path_buf(), source }
}

fn tensor_to_array<B: Backend>(tensor: burn::tensor::Tensor<B, 2>) -> Array2<f64> {
    let [rows, cols] = tensor.dims();
    let values = tensor.into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
    Array2::from_shape_vec((rows, cols), values.into_iter().map(f64::from).collect()).expect("a 2-d tensor")
}

fn resized(image: RgbImage, side: u32) -> RgbImage {
    if image.dimensions() == (side, side) {
        image
    } else {
        // As the training loader resizes.
        image::imageops::resize(&image, side, side, image::imageops::FilterType::Triangle)
    }
}

/// How a sample is named in messages and in `dropped.csv`.
fn sample_name(source: &TrainSource, index: usize) -> String {
    match source {
        TrainSource::Folder(folder) => folder.images()[index].path.display().to_string(),
        TrainSource::Record(records) => format!("{}#key {}", records.path().display(), records.image_key(index)),
    }
}

/// The class names of `source`, checked against the checkpoint's `classes`:
/// the count always; for a folder whose run was trained on a folder that is
/// still there, the names too (same count, other names = other identities).
fn check_classes(source: &TrainSource, data: &Path, classes: usize, trained_on: &Path) -> Result<Vec<String>> {
    let mismatch = |message: String| TrainError::Config { path: data.to_path_buf(), message };
    match source {
        TrainSource::Folder(folder) => {
            if folder.num_classes() != classes {
                return Err(mismatch(format!(
                    "{} identity folders, but the checkpoint was trained on {classes} classes (its centres); clean the data it was trained on",
                    folder.num_classes()
                )));
            }
            if trained_on.is_dir() {
                if let Ok(trained) = visage_data::ImageFolder::scan(trained_on) {
                    if let Some((label, (here, there))) =
                        folder.class_names().iter().zip(trained.class_names()).enumerate().find(|(_, (a, b))| a != b)
                    {
                        return Err(mismatch(format!(
                            "class {label} is {here:?} here but {there:?} in the checkpoint's training folder {}",
                            trained_on.display()
                        )));
                    }
                }
            }
            Ok(folder.class_names().to_vec())
        }
        TrainSource::Record(records) => {
            if let Some(n) = records.num_classes() {
                if n != classes {
                    return Err(mismatch(format!(
                        "the header names {n} identities, but the checkpoint was trained on {classes} classes (its centres)"
                    )));
                }
            }
            Ok((0..classes).map(|c| c.to_string()).collect())
        }
    }
}

/// Copies the kept files to `target/<class>/…` (paths below the input root
/// kept), every class folder created even when emptied so that the labels of
/// the cleaned folder are those of the input. Built as a hidden sibling and
/// renamed into place.
fn write_folder(folder: &visage_data::ImageFolder, kept: &[usize], target: &Path) -> Result<PathBuf> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Write { path, source }
    };
    let _ = std::fs::remove_dir_all(&temp);
    for class in folder.class_names() {
        std::fs::create_dir_all(temp.join(class)).map_err(write(&temp.join(class)))?;
    }
    for &index in kept {
        let from = &folder.images()[index].path;
        let relative = from.strip_prefix(folder.root()).unwrap_or(from);
        let to = temp.join(relative);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(write(dir))?;
        }
        std::fs::copy(from, &to).map_err(write(&to))?;
    }
    let _ = std::fs::remove_dir_all(target);
    std::fs::rename(&temp, target).map_err(write(target))?;
    Ok(target.to_path_buf())
}

/// Writes the kept records (their image bytes unchanged) as a new `.rec` in
/// insightface's layout, class by class so each class is one key range.
fn write_records(records: &RecordDataset, kept: &[usize], classes: usize, target: &Path) -> Result<PathBuf> {
    let mut packer = InsightfacePacker::create(target, classes)?;
    let mut entries: Vec<(u32, usize, Vec<u8>)> = Vec::with_capacity(kept.len());
    for &index in kept {
        let record = records.read_image(index)?;
        entries.push((record.label, index, record.record.image));
    }
    entries.sort_by_key(|(label, index, _)| (*label, *index));
    for (label, _, image) in entries {
        packer.push(label, image)?;
    }
    packer.finish()?;
    Ok(target.to_path_buf())
}

/// One PNG per class with dropped samples: the dropped faces, largest angle
/// first, captioned with their angle and nearest sub-centre.
fn write_montages(
    source: &TrainSource,
    dropped: &[DroppedSample],
    class_names: &[String],
    format: DataFormat,
    side: u32,
    per_class: usize,
    dir: &Path,
) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Write { path: dir.to_path_buf(), source })?;
    // Small crops (e.g. 32×32 digits) are shown at least 64 px wide so captions fit.
    let shown = side.max(64);
    let decode = DecodeOptions::default();
    for (label, name) in class_names.iter().enumerate() {
        let faces: Vec<(RgbImage, String)> = dropped
            .iter()
            .filter(|d| d.label == label)
            .take(per_class)
            .filter_map(|d| {
                let image = source.load(d.index, &decode).ok()?.image;
                let image = image::imageops::resize(&image, shown, shown, image::imageops::FilterType::Nearest);
                Some((image, format!("{:.0}° s{}", d.angle_deg, d.nearest_subcentre)))
            })
            .collect();
        if faces.is_empty() {
            continue;
        }
        let tiles: Vec<Tile<'_>> = faces.iter().map(|(crop, caption)| Tile { crop, caption: caption.clone(), flagged: false }).collect();
        let picture = montage(&tiles, 8).map_err(|e| TrainError::Write { path: dir.to_path_buf(), source: std::io::Error::other(e.to_string()) })?;
        let file = match format {
            DataFormat::Folder => dir.join(format!("{name}.png")),
            DataFormat::Recordio => dir.join(format!("class-{label}.png")),
        };
        write_png(&picture, &file).map_err(|e| write_error(&file, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// A unit vector in the plane at `degrees` from the x axis.
    fn at(degrees: f64) -> [f64; 2] {
        let r = degrees.to_radians();
        [r.cos(), r.sin()]
    }

    #[test]
    fn angles_of_hand_made_cosines() {
        assert_eq!(angle_deg(1.0), 0.0);
        assert_eq!(angle_deg(0.0), 90.0);
        assert_eq!(angle_deg(-1.0), 180.0);
        // acos(1/2) = 60° and acos(−1/√2) = 135°, to rounding.
        assert!((angle_deg(0.5) - 60.0).abs() < 1e-12);
        assert!((angle_deg(-std::f64::consts::FRAC_1_SQRT_2) - 135.0).abs() < 1e-12);
        // Rounding past ±1 is clamped, not NaN.
        assert_eq!(angle_deg(1.0 + 1e-12), 0.0);
    }

    #[test]
    fn cosines_are_to_the_own_class_subcentres_only() {
        // 2 classes × K = 2 in 2-d; the centres are not unit length.
        let centres = array![[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, -0.5]];
        let features = array![[5.0, 5.0], [5.0, 5.0], [0.0, 0.0]];
        let cosines = own_class_cosines(&features, &centres, &[0, 1, 1], 2);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let expected = array![[h, h], [-h, -h], [0.0, 0.0]];
        assert!((&cosines - &expected).iter().all(|d| d.abs() < 1e-12), "{cosines}");
    }

    #[test]
    fn dominant_subcentre_is_the_most_common_nearest_and_ties_go_to_the_lowest() {
        // Class 0 (K = 3): nearest 2, 2, 1 → dominant 2. Class 1: nearest 1, 0 → tie → 0.
        // Class 2: no samples → 0.
        let classes = dominant_subcentres(&[2, 2, 1, 1, 0], &[0, 0, 0, 1, 1], 3, 3);
        assert_eq!(classes[0], ClassDecision { dominant_subcentre: 2, nearest_counts: vec![0, 1, 2] });
        assert_eq!(classes[1], ClassDecision { dominant_subcentre: 0, nearest_counts: vec![1, 1, 0] });
        assert_eq!(classes[2], ClassDecision { dominant_subcentre: 0, nearest_counts: vec![0, 0, 0] });
        assert!((classes[0].dominant_share() - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(classes[2].dominant_share(), 0.0);
    }

    #[test]
    fn samples_beyond_the_threshold_of_the_dominant_subcentre_are_dropped() {
        // One class, K = 2: sub-centre 0 along x, sub-centre 1 at 100°.
        // Samples at 10°, −20°, 40° are nearest to 0 (dominant, 3 of 5);
        // 95° and 120° are nearest to 1 and lie 95° and 120° from sub-centre 0.
        let s0 = at(0.0);
        let s1 = at(100.0);
        let centres = array![[s0[0], s0[1]], [s1[0], s1[1]]];
        let angles = [10.0, -20.0, 40.0, 95.0, 120.0];
        let features = Array2::from_shape_fn((5, 2), |(i, d)| at(angles[i])[d]);
        let labels = [0; 5];
        let decisions = decide(&own_class_cosines(&features, &centres, &labels, 2), &labels, 1, DEFAULT_MAX_ANGLE_DEG);
        assert_eq!(decisions.classes[0].dominant_subcentre, 0);
        let nearest: Vec<usize> = decisions.samples.iter().map(|d| d.nearest_subcentre).collect();
        assert_eq!(nearest, [0, 0, 0, 1, 1]);
        for (decision, expected) in decisions.samples.iter().zip([10.0, 20.0, 40.0, 95.0, 120.0]) {
            assert!((decision.angle_deg - expected).abs() < 1e-9, "{} vs {expected}", decision.angle_deg);
        }
        let kept: Vec<bool> = decisions.samples.iter().map(|d| d.kept).collect();
        assert_eq!(kept, [true, true, true, false, false]);
        // With a 30° threshold the 40° sample goes too.
        let strict = decide(&own_class_cosines(&features, &centres, &labels, 2), &labels, 1, 30.0);
        assert_eq!(strict.samples.iter().map(|d| d.kept).collect::<Vec<_>>(), [true, true, false, false, false]);
    }

    #[test]
    fn the_threshold_is_inclusive_and_splits_just_around_75_degrees() {
        // Cosines given directly: exactly 90° (cos 0) with a 90° threshold is
        // kept; 74.999° kept and 75.001° dropped at the default 75°.
        let cosines = array![[0.0], [1.0]];
        let at_90 = decide(&cosines, &[0, 0], 1, 90.0);
        assert_eq!(at_90.samples[0].angle_deg, 90.0);
        assert!(at_90.samples[0].kept);
        let near = array![[74.999f64.to_radians().cos()], [75.001f64.to_radians().cos()], [1.0]];
        let decisions = decide(&near, &[0, 0, 0], 1, 75.0);
        assert_eq!(decisions.samples.iter().map(|d| d.kept).collect::<Vec<_>>(), [true, false, true]);
    }

    #[test]
    fn the_dominant_subcentre_decides_even_when_a_sample_is_nearer_another() {
        // Class 1 of 2, K = 2: sub-centre 1 (at 0°) is dominant (2 samples
        // nearest), sub-centre 0 at 180°. A sample at 170° is 10° from its
        // nearest (0) but 170° from the dominant one: dropped. A tie in the
        // nearest-count (1 vs 1) in class 0 goes to sub-centre 0.
        let c = |d: f64| at(d);
        let rows = [c(90.0), c(-90.0), c(180.0), c(0.0)];
        let centres = Array2::from_shape_fn((4, 2), |(i, d)| rows[i][d]);
        let angles = [80.0, -80.0, 5.0, -5.0, 170.0];
        let labels = [0, 0, 1, 1, 1];
        let features = Array2::from_shape_fn((5, 2), |(i, d)| at(angles[i])[d]);
        let decisions = decide(&own_class_cosines(&features, &centres, &labels, 2), &labels, 2, 75.0);
        assert_eq!(decisions.classes[0], ClassDecision { dominant_subcentre: 0, nearest_counts: vec![1, 1] });
        assert_eq!(decisions.classes[1], ClassDecision { dominant_subcentre: 1, nearest_counts: vec![1, 2] });
        let angles_to_dominant: Vec<f64> = decisions.samples.iter().map(|d| d.angle_deg).collect();
        for (got, expected) in angles_to_dominant.iter().zip([10.0, 170.0, 5.0, 5.0, 170.0]) {
            assert!((got - expected).abs() < 1e-9, "{angles_to_dominant:?}");
        }
        assert_eq!(decisions.samples.iter().map(|d| d.kept).collect::<Vec<_>>(), [true, false, true, true, false]);
        assert_eq!(decisions.samples[4].nearest_subcentre, 0);
    }

    #[test]
    fn dropped_csv_round_trips_with_quoted_fields() {
        let row = DroppedSample {
            sample: "a,b \"c\".png".into(),
            index: 3,
            label: 1,
            class: "x".into(),
            angle_deg: 80.25,
            nearest_subcentre: 2,
            dominant_subcentre: 0,
        };
        let dir = std::env::temp_dir().join(format!("visage-clean-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dropped.csv");
        std::fs::write(&path, format!("{DROPPED_CSV_HEADER}\n{}\n", row.csv_row())).unwrap();
        assert_eq!(read_dropped_csv(&path).unwrap(), vec![row]);
        std::fs::write(&path, "nope\n").unwrap();
        assert!(read_dropped_csv(&path).unwrap_err().to_string().contains("dropped.csv"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
