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
//! - `montages/<class>.png` (`montages/class-<label>.png` for RecordIO):
//!   the dropped faces of each class, worst first.
//!
//! Every file is written beside its target and renamed into place.

mod decide;
mod embed;
mod report;
mod rewrite;

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

pub use self::decide::{angle_deg, decide, dominant_subcentres, own_class_cosines, ClassDecision, Decisions, SampleDecision};
use self::embed::{check_classes, embed_samples, Subcentres};
use self::report::{class_summaries, dropped_samples, write_dropped_csv, write_montages, write_summary};
pub use self::report::{read_dropped_csv, ClassSummary, CleanSummary, DataFormat, DroppedSample, Unreadable, DROPPED_CSV_HEADER};
use self::rewrite::write_cleaned;
use crate::error::{Result, TrainError};
use crate::source::TrainSource;

/// The paper's threshold: a sample further than this from its class's
/// dominant sub-centre is taken as noise.
pub const DEFAULT_MAX_ANGLE_DEG: f64 = 75.0;

/// How [`clean`] decides and how it runs; [`Default`] is the paper's 75°,
/// 128 images per forward pass and 64 faces per montage.
#[derive(Clone, Debug)]
pub struct CleanOptions {
    /// Drop samples further than this from their class's dominant
    /// sub-centre, in degrees, in (0, 180]; a sample exactly at it stays.
    pub max_angle_deg: f64,
    /// Images per forward pass (0 counts as 1).
    pub batch_size: usize,
    /// At most this many dropped faces per class in its montage (the worst).
    pub montage_faces: usize,
}

impl Default for CleanOptions {
    fn default() -> Self {
        Self { max_angle_deg: DEFAULT_MAX_ANGLE_DEG, batch_size: 128, montage_faces: 64 }
    }
}

/// What [`clean`] wrote, with the summary it wrote as JSON.
#[derive(Clone, Debug)]
pub struct CleanReport {
    /// What `summary.json` holds.
    pub summary: CleanSummary,
    /// `out_dir/summary.json`.
    pub summary_json: PathBuf,
    /// The rows of `dropped.csv`, in its order: by label, the largest angle
    /// first within a class, then by index.
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
    let network = Subcentres::<B>::load(checkpoint_path, device)?;
    let source = TrainSource::open(data)?;
    let class_names = check_classes(&source, data, network.classes, &network.state.config.data.source)?;
    let format = match source {
        TrainSource::Folder(_) => DataFormat::Folder,
        TrainSource::Record(_) => DataFormat::Recordio,
    };
    let embedded = embed_samples(&network, &source, data, options.batch_size, device, &mut progress)?;

    let (labels, classes) = (&embedded.labels, network.classes);
    let decisions = decide(&own_class_cosines(&embedded.features, &network.centres, labels, network.k), labels, classes, options.max_angle_deg);

    std::fs::create_dir_all(out_dir).map_err(|source| TrainError::Write { path: out_dir.to_path_buf(), source })?;
    let kept: Vec<usize> = embedded.indices.iter().zip(&decisions.samples).filter(|(_, d)| d.kept).map(|(&i, _)| i).collect();
    let cleaned = write_cleaned(&source, &kept, classes, out_dir)?;

    let dropped = dropped_samples(&source, &embedded, &decisions, &class_names);
    let dropped_csv = write_dropped_csv(&dropped, out_dir)?;
    let montages = out_dir.join("montages");
    write_montages(&source, &dropped, &class_names, format, network.side, options.montage_faces, &montages)?;

    let summary = CleanSummary {
        checkpoint: network.dir,
        steps_done: network.state.steps_done,
        data: data.to_path_buf(),
        format,
        cleaned,
        dropped_csv,
        montages,
        max_angle_deg: options.max_angle_deg,
        subcentres_per_class: network.k,
        samples: embedded.indices.len(),
        kept: kept.len(),
        dropped: dropped.len(),
        classes: class_summaries(&decisions, &dropped, &class_names),
        unreadable: embedded.unreadable,
    };
    let summary_json = write_summary(&summary, out_dir)?;
    Ok(CleanReport { summary, summary_json, dropped })
}

/// How a sample is named in messages and in `dropped.csv`.
fn sample_name(source: &TrainSource, index: usize) -> String {
    match source {
        TrainSource::Folder(folder) => folder.images()[index].path.display().to_string(),
        TrainSource::Record(records) => format!("{}#key {}", records.path().display(), records.image_key(index)),
    }
}
