//! The training loop: batches from the loader, backbone → margin head →
//! loss → gradients → optimiser step, with the learning-rate schedule,
//! metrics, checkpoints and exact resume.
//!
//! Exactness: a run that is killed and resumed takes the same steps on the
//! same batches with the same state as one that never stopped. The batches
//! are a pure function of (seed, epoch, batch index); the model, optimiser
//! momenta, AdamW moments, BatchNorm running statistics and AdaFace's
//! statistics are in the checkpoint at full precision; the backend's random
//! generator (dropout) is reseeded from (seed, step) before every step.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend, Device as _, DeviceId, DeviceOps};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use visage_data::{Augmentation, FaceSource, ImageFolder, LabelledImage, Loader, LoaderConfig, RecordDataset};
use visage_heads::{CentreShard, HeadError, MarginHead, PartialFc};

use crate::checkpoint::{self, TrainState};
use crate::clip::clip_global_norm;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::imprint::{self, CentreInit};
use crate::metrics::{CsvLog, MetricsLog, MetricsRow};
use crate::model::{with_backend_rng, TrainModel};
use crate::optimizer::AnyOptimizer;
use crate::parallel::{shard_gradients, Shard};
use crate::schedule::LrSchedule;
use crate::verification::VerificationSet;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from the newest checkpoint in `out_dir` when there is one.
    pub resume: bool,
    /// Stop (without a final checkpoint) once this many steps are done in
    /// total: a kill at a known point, for tests and for time-boxed runs.
    pub stop_after: Option<u64>,
}

/// What the caller sees after every step (for a progress bar).
#[derive(Clone, Debug)]
pub struct StepReport {
    pub steps_done: u64,
    pub total_steps: u64,
    pub epoch: u64,
    pub lr: f64,
    pub loss: f32,
    pub accuracy: Option<f32>,
    pub images_per_s: f64,
    /// Samples left out so far because they could not be read.
    pub skipped_samples: u64,
}

#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub steps_done: u64,
    pub total_steps: u64,
    pub last_loss: f32,
    pub resumed_from: Option<PathBuf>,
    pub last_checkpoint: Option<PathBuf>,
    pub metrics: PathBuf,
}

/// The training data: an insightface RecordIO file or an image folder.
pub enum TrainSource {
    Record(RecordDataset),
    Folder(ImageFolder),
}

impl TrainSource {
    /// A folder is read as one sub-folder per identity; anything else as a `.rec`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(if path.is_dir() { Self::Folder(ImageFolder::scan(path)?) } else { Self::Record(RecordDataset::open(path)?) })
    }
}

impl FaceSource for TrainSource {
    fn len(&self) -> usize {
        match self {
            Self::Record(source) => FaceSource::len(source),
            Self::Folder(source) => FaceSource::len(source),
        }
    }

    fn num_classes(&self) -> Option<usize> {
        match self {
            Self::Record(source) => FaceSource::num_classes(source),
            Self::Folder(source) => FaceSource::num_classes(source),
        }
    }

    fn load(&self, index: usize, decode: &visage_data::DecodeOptions) -> visage_data::Result<LabelledImage> {
        match self {
            Self::Record(source) => source.load(index, decode),
            Self::Folder(source) => source.load(index, decode),
        }
    }
}

/// Trains (or resumes) the run `config` describes on `device`.
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    device: &B::Device,
    options: &RunOptions,
    mut on_step: impl FnMut(&StepReport),
) -> Result<TrainSummary> {
    train_with_verification::<B>(config, device, options, &mut on_step, |_, _, _| {})
}

/// [`train`], also calling `on_verification(set, steps_done, accuracy)` after
/// each evaluation of a verification set.
pub fn train_with_verification<B: AutodiffBackend>(
    config: &TrainConfig,
    device: &B::Device,
    options: &RunOptions,
    mut on_step: impl FnMut(&StepReport),
    mut on_verification: impl FnMut(&str, u64, f64),
) -> Result<TrainSummary> {
    let out_dir = &config.out_dir;
    std::fs::create_dir_all(out_dir).map_err(|source| TrainError::Write { path: out_dir.clone(), source })?;
    let shape = config.backbone.shape().map_err(|message| TrainError::Config { path: out_dir.clone(), message: format!("[backbone] {message}") })?;

    let source = Arc::new(TrainSource::open(&config.data.source)?);
    let classes = source.num_classes().filter(|&c| c > 0).ok_or_else(|| TrainError::Config {
        path: config.data.source.clone(),
        message: "the data source does not say how many identities it has".into(),
    })?;
    let loader_config = LoaderConfig {
        batch_size: config.batch_size,
        seed: config.seed,
        threads: config.data.threads.max(1),
        image_size: shape.input_size() as u32,
        normalization: config.data.normalization.normalization(),
        augmentation: if config.data.flip { Augmentation::default() } else { Augmentation::none() },
        ..LoaderConfig::default()
    };
    let loader = Loader::new(Arc::clone(&source), loader_config)?;
    let steps_per_epoch = loader.batches_per_epoch() as u64;
    if steps_per_epoch == 0 {
        return Err(TrainError::Config {
            path: config.data.source.clone(),
            message: format!("{} samples make no full batch of {}", source.len(), config.batch_size),
        });
    }
    let schedule = LrSchedule::new(config.optimizer.lr(), config.schedule.clone(), steps_per_epoch, config.epochs);
    let total_steps = schedule.total_steps();

    let mut head = MarginHead::new(config.head)?;
    let mut model = TrainModel::<B>::init(&shape, classes, config.head.centres_per_class(), config.seed, device)?;
    if let Some(weights) = &config.backbone.init_from {
        model.backbone = visage_nn::load_weights::<B>(weights, config.backbone.init_family, &shape, device)?;
    }
    if config.init_centres == CentreInit::ClassMeans {
        let (mut centres, empty) = imprint::class_mean_centres(
            &model.backbone.valid(),
            source.as_ref(),
            &config.data.source,
            classes,
            config.head.centres_per_class(),
            config.data.normalization.normalization(),
            shape.input_size() as u32,
            config.batch_size,
            device,
        )?;
        if !empty.is_empty() {
            // A class with no sample (emptied by `visage clean`) keeps its random start.
            let k = config.head.centres_per_class();
            let random = model.centres.val().into_data().convert::<f64>().to_vec::<f64>().expect("f64 centres");
            let width = centres.ncols();
            for class in empty {
                for row in class * k..(class + 1) * k {
                    centres.row_mut(row).assign(&ndarray::ArrayView1::from(&random[row * width..(row + 1) * width]));
                }
            }
        }
        model.centres = Param::from_tensor(imprint::centres_tensor::<B>(&centres, device));
    }
    let mut optimizer = AnyOptimizer::new(&config.optimizer);
    let partial_fc = config.partial_fc.map(PartialFc::new).transpose()?;

    let mut steps_done = 0;
    let mut resumed_from = None;
    let mut last_checkpoint = None;
    if options.resume {
        if let Some(path) = checkpoint::latest(out_dir) {
            let (loaded_model, loaded_optimizer, state) = checkpoint::load(&path, model, optimizer, device)?;
            if state.config != *config {
                return Err(TrainError::Checkpoint {
                    path,
                    message: "was made with a different config; resume with the same train.toml, or start a new out_dir".into(),
                });
            }
            (model, optimizer, head, steps_done) = (loaded_model, loaded_optimizer, state.head, state.steps_done);
            resumed_from = Some(path.clone());
            last_checkpoint = Some(path);
        }
    }
    let worker_devices = worker_devices::<B>(device, config.parallel.workers);
    let mut metrics = MetricsLog::open(out_dir, steps_done)?;
    let verification_sets = match &config.verification {
        Some(section) => section.sets.iter().map(|path| VerificationSet::load(path, shape.input_size() as u32)).collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let mut verification_log = match &config.verification {
        Some(_) => Some(CsvLog::open(out_dir, "verification.csv", "step,set,accuracy_mean,accuracy_std", steps_done)?),
        None => None,
    };
    let mut last_loss = f32::NAN;

    while steps_done < total_steps {
        let epoch = steps_done / steps_per_epoch;
        let start_batch = (steps_done % steps_per_epoch) as usize;
        for batch in loader.iter_epoch(epoch, start_batch)? {
            if options.stop_after.is_some_and(|stop| steps_done >= stop) {
                return Ok(TrainSummary { steps_done, total_steps, last_loss, resumed_from, last_checkpoint, metrics: metrics.path().to_path_buf() });
            }
            let step = steps_done;
            let started = Instant::now();
            let count = batch.labels.len();
            let lr = schedule.lr(step);
            if count > 0 {
                let side = shape.input_size();
                let pixels = batch.images.into_raw_vec_and_offset().0;
                let labels: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();
                let diverged = |what: String| TrainError::Diverged { step, what, last_checkpoint: last_checkpoint.clone() };
                // A NaN/∞ feature (the head refuses it) is divergence too, not a data error.
                let head_error = |e: HeadError| match e {
                    HeadError::NonFinite { .. } => diverged(format!("the backbone's features are not finite: {e}")),
                    other => TrainError::Head(other),
                };
                let (loss_value, accuracy, mean_norm) = if worker_devices.len() > 1 {
                    let shards = split_batch::<B>(&pixels, &labels, side, &worker_devices);
                    let parallel = with_step_rng::<B, _>(config, device, step, || shard_gradients(&model, &head, partial_fc.as_ref(), shards, step))
                        .map_err(head_error)?;
                    if !parallel.loss.is_finite() {
                        return Err(diverged(format!("the loss is {}", parallel.loss)));
                    }
                    let mut parallel = parallel;
                    if let Some(max_norm) = config.grad_clip_norm {
                        let mut shares: Vec<&mut GradientsParams> = parallel.grads.grads.iter_mut().map(|(grads, _)| grads).collect();
                        clip_global_norm(&model.backbone, &mut shares, max_norm, device);
                    }
                    model = optimizer.step_multi(lr, model, parallel.grads);
                    // Each worker thread left its own BatchNorm running averages;
                    // `valid()` folds them into one (their mean) now, before the
                    // next step's threads add theirs (see parallel.rs).
                    let _ = model.valid();
                    head = parallel.head;
                    (parallel.loss, parallel.accuracy, parallel.mean_feature_norm)
                } else {
                    let images = Tensor::<B, 4>::from_data(TensorData::new(pixels, [count, 3, side, side]), device);
                    let features = with_step_rng::<B, _>(config, device, step, || model.backbone.forward(images));
                    let mean_norm: f32 = features.clone().powf_scalar(2.0).sum_dim(1).sqrt().mean().into_scalar().elem();
                    let (loss, accuracy) = match &partial_fc {
                        Some(pfc) => {
                            let shard = CentreShard { centres: model.centres.val(), first_class: 0 };
                            let output = pfc.forward(&mut head, features, std::slice::from_ref(&shard), &labels, step).map_err(head_error)?;
                            (output.output.loss, None)
                        }
                        None => {
                            let output = head.forward(features, model.centres.val(), &labels).map_err(head_error)?;
                            (output.loss, Some(top1(output.logits, &labels)))
                        }
                    };
                    let loss_value: f32 = loss.clone().into_scalar().elem();
                    if !loss_value.is_finite() {
                        return Err(diverged(format!("the loss is {loss_value}")));
                    }
                    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
                    if let Some(max_norm) = config.grad_clip_norm {
                        clip_global_norm(&model.backbone, &mut [&mut grads], max_norm, device);
                    }
                    model = optimizer.step(lr, model, grads);
                    (loss_value, accuracy, mean_norm)
                };
                last_loss = loss_value;
                let images_per_s = count as f64 / started.elapsed().as_secs_f64().max(1e-9);
                metrics.append(&MetricsRow { step, epoch, lr, loss: loss_value, accuracy, mean_feature_norm: mean_norm, images_per_s })?;
                on_step(&StepReport {
                    steps_done: step + 1,
                    total_steps,
                    epoch,
                    lr,
                    loss: loss_value,
                    accuracy,
                    images_per_s,
                    skipped_samples: loader.skipped_total(),
                });
            }
            steps_done += 1;
            if let (Some(section), Some(log)) = (&config.verification, verification_log.as_mut()) {
                if steps_done % section.every_steps == 0 || steps_done == total_steps {
                    let network = model.valid();
                    for set in &verification_sets {
                        let normalization = config.data.normalization.normalization();
                        let result = set.evaluate(&network.backbone, normalization, section.batch_size, device);
                        log.append(&format!("{steps_done},{},{:.5},{:.5}", set.name, result.accuracy_mean, result.accuracy_std))?;
                        on_verification(&set.name, steps_done, result.accuracy_mean);
                    }
                }
            }
            if steps_done % config.checkpoint.every_steps == 0 || steps_done == total_steps {
                let state = TrainState { steps_done, head: head.clone(), config: config.clone(), last_loss };
                last_checkpoint = Some(checkpoint::save(out_dir, &model, &optimizer, &state, config.checkpoint.keep)?);
            }
        }
    }
    Ok(TrainSummary { steps_done, total_steps, last_loss, resumed_from, last_checkpoint, metrics: metrics.path().to_path_buf() })
}

/// The device of each worker: consecutive devices of the backend from
/// `device` on when it has enough of them, else `device` for all (threads
/// sharing the CPU).
fn worker_devices<B: AutodiffBackend>(device: &B::Device, workers: usize) -> Vec<B::Device> {
    let first = device.id();
    let available = B::device_count(first.type_id);
    if workers > 1 && available >= usize::from(first.index_id) + workers {
        (0..workers as u16).map(|k| B::Device::from_id(DeviceId { type_id: first.type_id, index_id: first.index_id + k })).collect()
    } else {
        vec![device.clone(); workers]
    }
}

/// Splits a batch into contiguous shards, one per worker device.
fn split_batch<B: AutodiffBackend>(pixels: &[f32], labels: &[usize], side: usize, devices: &[B::Device]) -> Vec<Shard<B>> {
    let per_shard = labels.len().div_ceil(devices.len());
    let plane = 3 * side * side;
    labels
        .chunks(per_shard)
        .zip(pixels.chunks(per_shard * plane))
        .zip(devices)
        .map(|((labels, pixels), device)| Shard {
            device: device.clone(),
            images: Tensor::<B, 4>::from_data(TensorData::new(pixels.to_vec(), [labels.len(), 3, side, side]), device),
            labels: labels.to_vec(),
        })
        .collect()
}

/// Runs one step's forward pass. Dropout draws from the backend's generator,
/// so with dropout it runs seeded per step (a resumed step draws the same
/// masks); without, it touches the generator not at all.
fn with_step_rng<B: Backend, T>(config: &TrainConfig, device: &B::Device, step: u64, forward: impl FnOnce() -> T) -> T {
    if config.backbone.dropout > 0.0 {
        with_backend_rng::<B, _>(device, step_seed(config.seed, step), forward)
    } else {
        forward()
    }
}

/// The backend seed of one step: SplitMix64 of (run seed, step), so steps
/// draw unrelated dropout masks and a resumed step draws the same one.
fn step_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fraction of rows whose largest logit is their label's.
fn top1<B: AutodiffBackend>(logits: Tensor<B, 2>, labels: &[usize]) -> f32 {
    correct_top1(logits, labels) as f32 / labels.len().max(1) as f32
}

/// Rows whose largest logit is their label's.
pub(crate) fn correct_top1<B: AutodiffBackend>(logits: Tensor<B, 2>, labels: &[usize]) -> usize {
    let predicted = logits.argmax(1).into_data();
    let predicted: Vec<i64> = predicted.convert::<i64>().to_vec().unwrap_or_default();
    predicted.iter().zip(labels).filter(|(p, l)| **p as usize == **l).count()
}
