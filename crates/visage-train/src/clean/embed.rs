//! The network's part of cleaning: a checkpoint's backbone and sub-centres,
//! checked to fit each other and the data, and every readable sample's
//! feature.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use ndarray::Array2;
use visage_data::{DecodeOptions, FaceSource, Normalization};
use visage_image::RgbImage;

use super::report::Unreadable;
use super::sample_name;
use crate::checkpoint::{self, TrainState};
use crate::error::{Result, TrainError};
use crate::model::TrainModel;
use crate::source::TrainSource;
use crate::verification::embed;

/// A checkpoint's network with its sub-centres, as cleaning needs them.
pub(super) struct Subcentres<B: Backend> {
    pub model: TrainModel<B>,
    pub state: TrainState,
    /// The checkpoint folder (the newest one when a run folder was named).
    pub dir: PathBuf,
    /// `classes·K × D`, row `c·K + j` = sub-centre `j` of class `c`.
    pub centres: Array2<f64>,
    /// Sub-centres per class, at least 2.
    pub k: usize,
    pub classes: usize,
    /// The run's input side in pixels.
    pub side: u32,
    pub normalization: Normalization,
}

impl<B: Backend> Subcentres<B> {
    /// Loads the checkpoint; fails unless its head has K > 1 sub-centres per
    /// class and its centre rows are a multiple of K.
    pub fn load(checkpoint_path: &Path, device: &B::Device) -> Result<Self> {
        let (model, state, dir) = checkpoint::load_model::<B>(checkpoint_path, device)?;
        let config = &state.config;
        let k = config.head.centres_per_class();
        if k < 2 {
            return Err(TrainError::Checkpoint {
                path: dir.join("state.json"),
                message: format!(
                    "the head is `{}` with {k} centre per class; cleaning needs a `subcenter` head with k > 1 (the dominant sub-centre is chosen among a class's K)",
                    config.head.kind()
                ),
            });
        }
        let centres = tensor_to_array(model.centres.val());
        if centres.nrows() % k != 0 {
            return Err(TrainError::Checkpoint {
                path: dir.clone(),
                message: format!("{} centre rows are not a multiple of k = {k}", centres.nrows()),
            });
        }
        let classes = centres.nrows() / k;
        let shape =
            config.backbone.shape().map_err(|message| TrainError::Checkpoint { path: dir.clone(), message: format!("[backbone] {message}") })?;
        let side = shape.input_size() as u32;
        let normalization = config.data.normalization.normalization();
        Ok(Self { model, state, dir, centres, k, classes, side, normalization })
    }
}

/// The readable samples' features, in source order.
pub(super) struct Embedded {
    /// Source index of each row of `features`.
    pub indices: Vec<usize>,
    /// Class of each row of `features`.
    pub labels: Vec<usize>,
    /// `N × D` raw (not normalised) features.
    pub features: Array2<f64>,
    /// The samples that could not be read, left out of everything.
    pub unreadable: Vec<Unreadable>,
}

/// Embeds every readable sample of `source` (resized to the run's input as
/// the training loader does, unmirrored, `batch_size` per forward pass);
/// unreadable ones are reported and skipped. `progress(done, total)` after
/// every batch. Fails on a label the checkpoint has no class for, when no
/// sample is readable, or when the features do not have the centres' width.
pub(super) fn embed_samples<B: Backend>(
    network: &Subcentres<B>,
    source: &TrainSource,
    data: &Path,
    batch_size: usize,
    device: &B::Device,
    progress: &mut impl FnMut(usize, usize),
) -> Result<Embedded> {
    let decode = DecodeOptions::default();
    let total = source.len();
    let batch = batch_size.max(1);
    let (mut indices, mut labels, mut unreadable) = (Vec::with_capacity(total), Vec::with_capacity(total), Vec::new());
    let mut feature_rows: Vec<f64> = Vec::new();
    let mut dim = 0;
    let mut pending: Vec<RgbImage> = Vec::with_capacity(batch);
    let flush = |pending: &mut Vec<RgbImage>, feature_rows: &mut Vec<f64>, dim: &mut usize| {
        if !pending.is_empty() {
            let features = embed(&network.model.backbone, pending, network.normalization, false, batch, device);
            *dim = features.ncols();
            feature_rows.extend(features.iter());
            pending.clear();
        }
    };
    for index in 0..total {
        match source.load(index, &decode) {
            Ok(sample) => {
                let label = sample.label as usize;
                if label >= network.classes {
                    return Err(TrainError::Config {
                        path: data.to_path_buf(),
                        message: format!("{} has label {label}, but the checkpoint has {} classes", sample_name(source, index), network.classes),
                    });
                }
                pending.push(resized(sample.image, network.side));
                indices.push(index);
                labels.push(label);
            }
            Err(e) => unreadable.push(Unreadable { sample: sample_name(source, index), reason: e.to_string() }),
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
    if dim != network.centres.ncols() {
        return Err(TrainError::Checkpoint {
            path: network.dir.clone(),
            message: format!("features have {dim} dimensions, the centres {}", network.centres.ncols()),
        });
    }

    Ok(Embedded { indices, labels, features, unreadable })
}

/// The class names of `source`, checked against the checkpoint's `classes`:
/// the count always; for a folder whose run was trained on a folder that is
/// still there, the names too (same count, other names = other identities).
pub(super) fn check_classes(source: &TrainSource, data: &Path, classes: usize, trained_on: &Path) -> Result<Vec<String>> {
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
