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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::module::{AutodiffModule, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Device as _, DeviceId, DeviceOps};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use visage_data::{Augmentation, Batch, FaceSource, Loader, LoaderConfig};
use visage_heads::{HeadError, MarginHead, PartialFc, SplitRank};
use visage_nn::BackboneShape;

use crate::checkpoint::{self, CentreSlice, TrainState};
use crate::clip::{clip_global_norm, scale_gradients};
use crate::config::{TrainConfig, VerificationSection};
use crate::distributed::{self, Collective, NodeLayout, NodeStep};
use crate::error::{Result, TrainError};
use crate::imprint::{self, CentreInit};
use crate::metrics::{CsvLog, MetricsLog, MetricsRow};
use crate::model::TrainModel;
use crate::model_parallel::{class_slice, split_gradients, SplitGradients, SplitLayout, MAX_SPLIT_CLASSES};
use crate::optimizer::AnyOptimizer;
use crate::parallel::{combine, shard_gradients, split_batch, sum_gradients};
use crate::schedule::LrSchedule;
pub use crate::source::TrainSource;
use crate::step::{head_loss, with_step_rng};
use crate::verification::VerificationSet;

/// How [`train`] runs, beyond the config; [`Default`] starts afresh and runs to the end.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from the newest checkpoint in `out_dir` when there is one.
    pub resume: bool,
    /// Stop (without a final checkpoint) once this many steps are done in
    /// total: a kill at a known point, for tests and for time-boxed runs.
    pub stop_after: Option<u64>,
    /// Train as one node of several ([`crate::distributed`]); `None`: this process alone.
    pub nodes: Option<NodeLayout>,
}

/// What the caller sees after every step (for a progress bar); a step whose
/// batch had no readable sample is counted but not reported.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// Steps done, this one included (1-based).
    pub steps_done: u64,
    /// Steps of the whole run: `epochs × batches per epoch`.
    pub total_steps: u64,
    /// The step's epoch (0-based).
    pub epoch: u64,
    /// The learning rate the step used.
    pub lr: f64,
    /// The batch-mean loss.
    pub loss: f32,
    /// Top-1 on the batch with the margin applied, in [0, 1]; `None` with Partial FC.
    pub accuracy: Option<f32>,
    /// The step's throughput (loading excluded).
    pub images_per_s: f64,
    /// Samples left out so far because they could not be read.
    pub skipped_samples: u64,
}

impl StepReport {
    fn of(row: &MetricsRow, total_steps: u64, skipped_samples: u64) -> Self {
        Self {
            steps_done: row.step + 1,
            total_steps,
            epoch: row.epoch,
            lr: row.lr,
            loss: row.loss,
            accuracy: row.accuracy,
            images_per_s: row.images_per_s,
            skipped_samples,
        }
    }
}

/// How a call to [`train`] ended (at the last step, or at `stop_after`).
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Steps done in total, those before a resume included.
    pub steps_done: u64,
    /// Steps of the whole run.
    pub total_steps: u64,
    /// The loss of the last step this call took (NaN when it took none).
    pub last_loss: f32,
    /// The checkpoint this call resumed from, if it did.
    pub resumed_from: Option<PathBuf>,
    /// The newest checkpoint written or resumed from (none when stopped
    /// before the first `checkpoint.every_steps`).
    pub last_checkpoint: Option<PathBuf>,
    /// The run's `metrics.csv` (written by node 0 only).
    pub metrics: PathBuf,
    /// Steps this call took.
    pub steps_taken: u64,
    /// Time this call spent in all-reduces across nodes (zero on one node).
    pub communication: Duration,
}

/// Trains (or resumes) the run `config` describes on `device`, calling
/// `on_step` after every step.
///
/// Writes under `out_dir`: `metrics.csv` (one row per step),
/// `checkpoints/step-NNNNNNNN/` every `checkpoint.every_steps` steps and at
/// the end, and `verification.csv` when the config has a `[verification]`
/// section. With `options.resume` and a checkpoint in `out_dir`, the run
/// continues from it and the logs are cut back to it; the result is the
/// same, to the bit, as a run that never stopped (see the module docs; with
/// more than two workers BatchNorm's running averages may differ in the
/// last bit, see [`crate::parallel`]).
///
/// Errors: [`TrainError::Config`]/[`TrainError::Data`] when the data do not
/// make a run, [`TrainError::Checkpoint`] when the checkpoint to resume from
/// was made with another config or does not load, [`TrainError::Diverged`]
/// when the loss or the features stop being finite (the last checkpoint is
/// kept), [`TrainError::Write`] when the output cannot be written.
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
    let data = RunData::open(config, options.nodes.as_ref())?;
    let mut collective = match &options.nodes {
        Some(layout) => Some(Collective::<B::InnerBackend>::join(layout, device)?),
        None => None,
    };
    let result = run_steps::<B>(config, device, options, &data, collective.as_mut(), &mut on_step, &mut on_verification);
    if let Some(collective) = collective {
        collective.finish();
    }
    result
}

/// The loop of [`train_with_verification`], on one node or as one of several.
fn run_steps<B: AutodiffBackend>(
    config: &TrainConfig,
    device: &B::Device,
    options: &RunOptions,
    data: &RunData,
    mut collective: Option<&mut Collective<B::InnerBackend>>,
    on_step: &mut impl FnMut(&StepReport),
    on_verification: &mut impl FnMut(&str, u64, f64),
) -> Result<TrainSummary> {
    let split = split_layout(config, data, options.nodes.as_ref())?;
    let node_rank = options.nodes.as_ref().map_or(0, |layout| layout.node_rank);
    let mut progress = Progress::<B>::start(config, data, split.as_ref(), node_rank, device)?;
    let partial_fc = config.partial_fc.map(PartialFc::new).transpose()?;
    if options.resume {
        progress = progress.resume(config, device)?;
    }
    if let Some(collective) = collective.as_deref_mut() {
        distributed::agree_on_start(collective, progress.steps_done, run_fingerprint(config), device)?;
    }
    // Node 0 (or the only process) writes the logs and checkpoints.
    let writes = options.nodes.as_ref().is_none_or(|layout| layout.node_rank == 0);
    // With the centres split every node checkpoints its own slice.
    let checkpoints = writes || split.is_some();
    let world_size = options.nodes.as_ref().map_or(1, |layout| layout.nodes);
    let setup = StepSetup {
        config,
        side: data.shape.input_size(),
        partial_fc,
        workers: worker_devices::<B>(device, config.parallel.workers),
        device,
        split,
        slot_rows: (config.batch_size / world_size).div_ceil(config.parallel.workers),
    };
    let mut logs = if writes { Some(Logs::open(config, data.shape.input_size() as u32, progress.steps_done)?) } else { None };
    let total_steps = data.schedule.total_steps();
    let first_step = progress.steps_done;

    while progress.steps_done < total_steps {
        let epoch = progress.steps_done / data.steps_per_epoch;
        let start_batch = (progress.steps_done % data.steps_per_epoch) as usize;
        for batch in data.loader.iter_epoch(epoch, start_batch)? {
            if options.stop_after.is_some_and(|stop| progress.steps_done >= stop) {
                return Ok(progress.summary(config, total_steps, first_step, collective.as_deref()));
            }
            // On several nodes every node takes part in every step, even with
            // an empty batch here (it contributes nothing).
            if !batch.labels.is_empty() || collective.is_some() {
                let row;
                (progress, row) = progress.step(&setup, &data.schedule, epoch, batch, collective.as_deref_mut())?;
                if let Some(row) = row {
                    if let Some(logs) = logs.as_mut() {
                        logs.metrics.append(&row)?;
                    }
                    on_step(&StepReport::of(&row, total_steps, data.loader.skipped_total()));
                }
            }
            progress.steps_done += 1;
            if let Some(verification) = logs.as_mut().and_then(|logs| logs.verification.as_mut()) {
                verification.evaluate_if_due(config, &progress.model, progress.steps_done, total_steps, device, on_verification)?;
            }
            if checkpoints {
                progress.checkpoint_if_due(config, total_steps)?;
            }
        }
    }
    Ok(progress.summary(config, total_steps, first_step, collective.as_deref()))
}

/// The run as every node must see it: the config without the paths, which
/// may differ from machine to machine.
fn run_fingerprint(config: &TrainConfig) -> u64 {
    let mut run = config.clone();
    run.out_dir = PathBuf::new();
    run.data.source = PathBuf::new();
    run.backbone.init_from = None;
    run.verification = None;
    distributed::fingerprint(serde_json::to_string(&run).unwrap_or_default().as_bytes())
}

/// Where this node's class centres sit when `[partial_fc] model_parallel`
/// splits them across the nodes (one process: every class in one slice).
fn split_layout(config: &TrainConfig, data: &RunData, nodes: Option<&NodeLayout>) -> Result<Option<SplitLayout>> {
    if !config.partial_fc.is_some_and(|p| p.model_parallel) {
        return Ok(None);
    }
    let (processes, rank) = nodes.map_or((1, 0), |layout| (layout.nodes, layout.node_rank));
    if data.classes < processes || data.classes > MAX_SPLIT_CLASSES {
        return Err(TrainError::Config {
            path: config.data.source.clone(),
            message: format!(
                "[partial_fc] model_parallel splits the {} classes over {processes} nodes: needs at least one class per node and at most {MAX_SPLIT_CLASSES} classes",
                data.classes
            ),
        });
    }
    Ok(Some(SplitLayout { classes: data.classes, slice: class_slice(data.classes, processes, rank), rank: SplitRank { rank, processes } }))
}

/// What a run trains on and for how long, fixed before its first step.
struct RunData {
    shape: BackboneShape,
    source: Arc<TrainSource>,
    classes: usize,
    loader: Loader<TrainSource>,
    steps_per_epoch: u64,
    schedule: LrSchedule,
}

impl RunData {
    /// Creates `out_dir`, opens the data and its loader, and lays out the
    /// schedule over `epochs` full batches' worth of steps.
    fn open(config: &TrainConfig, nodes: Option<&NodeLayout>) -> Result<Self> {
        let out_dir = &config.out_dir;
        std::fs::create_dir_all(out_dir).map_err(|source| TrainError::Write { path: out_dir.clone(), source })?;
        let shape =
            config.backbone.shape().map_err(|message| TrainError::Config { path: out_dir.clone(), message: format!("[backbone] {message}") })?;

        let source = Arc::new(TrainSource::open(&config.data.source)?);
        let classes = source.num_classes().filter(|&c| c > 0).ok_or_else(|| TrainError::Config {
            path: config.data.source.clone(),
            message: "the data source does not say how many identities it has".into(),
        })?;
        // Across nodes each reads its loader rank with its part of the batch.
        let (rank, world_size) = nodes.map_or((0, 1), |layout| (layout.node_rank, layout.nodes));
        if !config.batch_size.is_multiple_of(world_size) || config.batch_size / world_size < config.parallel.workers {
            return Err(TrainError::Config {
                path: out_dir.clone(),
                message: format!(
                    "batch_size {} must split evenly over {world_size} nodes, with at least [parallel] workers = {} images per node",
                    config.batch_size, config.parallel.workers
                ),
            });
        }
        let loader_config = LoaderConfig {
            batch_size: config.batch_size / world_size,
            rank,
            world_size,
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
        Ok(Self { shape, source, classes, loader, steps_per_epoch, schedule })
    }
}

/// How every step of a run is taken.
struct StepSetup<'a, B: AutodiffBackend> {
    config: &'a TrainConfig,
    /// The input side in pixels.
    side: usize,
    partial_fc: Option<PartialFc>,
    /// One device per worker; a single entry is the one-device step.
    workers: Vec<B::Device>,
    device: &'a B::Device,
    /// This node's class centres when `[partial_fc] model_parallel` splits them.
    split: Option<SplitLayout>,
    /// The most rows one global worker takes in a step (the gather's block).
    slot_rows: usize,
}

/// What one step gives the log.
struct StepOutcome {
    loss: f32,
    accuracy: Option<f32>,
    mean_feature_norm: f32,
    /// Images in the step, over every node.
    rows: usize,
}

/// What changes from step to step: all of it goes into a checkpoint.
struct Progress<B: AutodiffBackend> {
    model: TrainModel<B>,
    optimizer: AnyOptimizer<TrainModel<B>, B>,
    head: MarginHead,
    steps_done: u64,
    last_loss: f32,
    resumed_from: Option<PathBuf>,
    last_checkpoint: Option<PathBuf>,
    /// Where this process writes and resumes its checkpoints.
    checkpoints: PathBuf,
    /// The centres this process holds, when they are split across nodes.
    centre_slice: Option<CentreSlice>,
}

impl<B: AutodiffBackend> Progress<B> {
    /// A fresh head, model and optimiser: the model drawn from the seed,
    /// with `init_from`'s weights and imprinted centres when the config asks.
    /// With the centres split, the node draws (or imprints) every centre as
    /// one process would and keeps its slice, so the split run starts where
    /// the unsplit one does.
    fn start(config: &TrainConfig, data: &RunData, split: Option<&SplitLayout>, node_rank: usize, device: &B::Device) -> Result<Self> {
        let head = MarginHead::new(config.head)?;
        let mut model = TrainModel::<B>::init(&data.shape, data.classes, config.head.centres_per_class(), config.seed, device)?;
        if let Some(weights) = &config.backbone.init_from {
            model.backbone = visage_nn::load_weights::<B>(weights, config.backbone.init_family, &data.shape, device)?;
        }
        if config.init_centres == CentreInit::ClassMeans {
            model.centres = Param::from_tensor(imprinted_centres(config, data, &model, device)?);
        }
        let mut checkpoints = checkpoint::checkpoints_dir(&config.out_dir);
        let mut centre_slice = None;
        if let Some(split) = split {
            let k = config.head.centres_per_class();
            let [_, dim] = model.centres.val().dims();
            let kept = model.centres.val().slice([split.slice.start * k..split.slice.end * k, 0..dim]).into_data();
            model.centres = Param::from_tensor(Tensor::from_data(kept, device));
            checkpoints = checkpoint::node_checkpoints_dir(&config.out_dir, node_rank);
            centre_slice = Some(CentreSlice {
                node: split.rank.rank,
                nodes: split.rank.processes,
                first_class: split.slice.start,
                classes: split.slice.len(),
                total_classes: split.classes,
            });
        }
        let optimizer = AnyOptimizer::new(&config.optimizer);
        Ok(Self { model, optimizer, head, steps_done: 0, last_loss: f32::NAN, resumed_from: None, last_checkpoint: None, checkpoints, centre_slice })
    }

    /// Continues from the newest checkpoint in this process's checkpoint
    /// folder, if there is one; it must have been made with the same config
    /// (and, with split centres, for the same slice).
    fn resume(mut self, config: &TrainConfig, device: &B::Device) -> Result<Self> {
        if let Some(path) = checkpoint::latest_in(&self.checkpoints) {
            let (model, optimizer, state) = checkpoint::load(&path, self.model, self.optimizer, device)?;
            if state.config != *config {
                return Err(TrainError::Checkpoint {
                    path,
                    message: "was made with a different config; resume with the same train.toml, or start a new out_dir".into(),
                });
            }
            if state.centres != self.centre_slice {
                let describe = |slice: &Option<CentreSlice>| match slice {
                    Some(s) => {
                        format!("classes {}..{} of {} (node {} of {})", s.first_class, s.first_class + s.classes, s.total_classes, s.node, s.nodes)
                    }
                    None => "every class centre".into(),
                };
                return Err(TrainError::Checkpoint {
                    path,
                    message: format!(
                        "holds {} but this process needs {}; resume with the --nodes and --node-rank the run was started with",
                        describe(&state.centres),
                        describe(&self.centre_slice)
                    ),
                });
            }
            (self.model, self.optimizer, self.head, self.steps_done) = (model, optimizer, state.head, state.steps_done);
            self.resumed_from = Some(path.clone());
            self.last_checkpoint = Some(path);
        }
        Ok(self)
    }

    /// One optimiser step on a batch (not empty on one node), on one device
    /// or split over the workers and nodes; returns the state after it and
    /// its metrics row (none when every node's batch was empty).
    fn step(
        self,
        setup: &StepSetup<'_, B>,
        schedule: &LrSchedule,
        epoch: u64,
        batch: Batch,
        collective: Option<&mut Collective<B::InnerBackend>>,
    ) -> Result<(Self, Option<MetricsRow>)> {
        let step = self.steps_done;
        let started = Instant::now();
        let lr = schedule.lr(step);
        let pixels = batch.images.into_raw_vec_and_offset().0;
        let labels: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();
        let (mut progress, outcome) = if let Some(split) = &setup.split {
            self.split_step(setup, split, step, lr, &pixels, &labels, collective)?
        } else if setup.workers.len() > 1 || collective.is_some() {
            self.multi_device_step(setup, step, lr, &pixels, &labels, collective)?
        } else {
            self.single_device_step(setup, step, lr, pixels, &labels)?
        };
        let Some(outcome) = outcome else {
            return Ok((progress, None));
        };
        progress.last_loss = outcome.loss;
        let images_per_s = outcome.rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let row = MetricsRow {
            step,
            epoch,
            lr,
            loss: outcome.loss,
            accuracy: outcome.accuracy,
            mean_feature_norm: outcome.mean_feature_norm,
            images_per_s,
        };
        Ok((progress, Some(row)))
    }

    /// Forward, backward, clipping and the optimiser step on `setup.device`.
    fn single_device_step(
        mut self,
        setup: &StepSetup<'_, B>,
        step: u64,
        lr: f64,
        pixels: Vec<f32>,
        labels: &[usize],
    ) -> Result<(Self, Option<StepOutcome>)> {
        let (config, device, side) = (setup.config, setup.device, setup.side);
        let images = Tensor::<B, 4>::from_data(TensorData::new(pixels, [labels.len(), 3, side, side]), device);
        let features = with_step_rng::<B, _>(config, device, step, || self.model.backbone.forward(images));
        let mean_feature_norm: f32 = features.clone().powf_scalar(2.0).sum_dim(1).sqrt().mean().into_scalar().elem();
        let (loss, correct) = head_loss(&mut self.head, setup.partial_fc.as_ref(), features, self.model.centres.val(), labels, step)
            .map_err(|e| head_error(e, step, &self.last_checkpoint))?;
        let accuracy = correct.map(|c| c as f32 / labels.len().max(1) as f32);
        let loss_value: f32 = loss.clone().into_scalar().elem();
        if !loss_value.is_finite() {
            return Err(diverged(step, format!("the loss is {loss_value}"), &self.last_checkpoint));
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.model);
        if let Some(max_norm) = config.grad_clip_norm {
            clip_global_norm(&self.model.backbone, &mut [&mut grads], max_norm, device);
        }
        self.model = self.optimizer.step(lr, self.model, grads);
        Ok((self, Some(StepOutcome { loss: loss_value, accuracy, mean_feature_norm, rows: labels.len() })))
    }

    /// The same step with the batch split over the workers: each shard's
    /// gradients on its own thread (see [`crate::parallel`]), summed in
    /// worker order; on several nodes the sums are all-reduced (see
    /// [`crate::distributed`]); then clipped and applied.
    fn multi_device_step(
        mut self,
        setup: &StepSetup<'_, B>,
        step: u64,
        lr: f64,
        pixels: &[f32],
        labels: &[usize],
        collective: Option<&mut Collective<B::InnerBackend>>,
    ) -> Result<(Self, Option<StepOutcome>)> {
        let (config, device) = (setup.config, setup.device);
        let shards = split_batch::<B>(pixels, labels, setup.side, &setup.workers);
        // Shares of the whole step's batch: on several nodes the configured
        // batch (corrected below if samples were skipped somewhere).
        let batch_rows = if collective.is_some() { config.batch_size } else { labels.len() };
        let parallel = with_step_rng::<B, _>(config, device, step, || {
            shard_gradients(&self.model, &self.head, setup.partial_fc.as_ref(), shards, batch_rows, step)
        });
        let (mut grads, shards) = match collective {
            None => {
                let parallel = parallel.map_err(|e| head_error(e, step, &self.last_checkpoint))?;
                (sum_gradients(&self.model, &parallel.grads, device, false), parallel.shards)
            }
            Some(collective) => {
                let (local, shards, local_error) = match parallel {
                    Ok(parallel) => (sum_gradients(&self.model, &parallel.grads, device, true), parallel.shards, None),
                    Err(e) => (sum_gradients(&self.model, &[], device, true), Vec::new(), Some(e)),
                };
                // This node's workers' BatchNorm averages folded into one
                // before the nodes average theirs.
                let _ = self.model.valid();
                let workers = setup.workers.len();
                let exchanged;
                (self.model, exchanged) = distributed::exchange_step::<B, _>(
                    collective,
                    self.model,
                    NodeStep { grads: local, shards: &shards, workers, failed: local_error.is_some() },
                    device,
                    step,
                )?;
                if let Some(e) = local_error {
                    return Err(head_error(e, step, &self.last_checkpoint));
                }
                if !exchanged.failed_nodes.is_empty() {
                    let what = format!("the features of node(s) {:?} are not finite", exchanged.failed_nodes);
                    return Err(diverged(step, what, &self.last_checkpoint));
                }
                (exchanged.grads, exchanged.shards)
            }
        };
        let mut combined = combine(&shards, &mut self.head);
        if combined.rows == 0 {
            return Ok((self, None));
        }
        if combined.rows != batch_rows {
            // Unreadable samples left the step short: the shares were of the
            // configured batch, the mean is over the rows there were.
            let factor = batch_rows as f32 / combined.rows as f32;
            combined.loss *= factor;
            scale_gradients(&self.model, &mut grads, factor);
        }
        if !combined.loss.is_finite() {
            return Err(diverged(step, format!("the loss is {}", combined.loss), &self.last_checkpoint));
        }
        if let Some(max_norm) = config.grad_clip_norm {
            clip_global_norm(&self.model.backbone, &mut [&mut grads], max_norm, device);
        }
        self.model = self.optimizer.step(lr, self.model, grads);
        // Each worker thread left its own BatchNorm running averages;
        // `valid()` folds them into one (their mean) now, before the next
        // step's threads add theirs (see parallel.rs).
        let _ = self.model.valid();
        let outcome =
            StepOutcome { loss: combined.loss, accuracy: combined.accuracy, mean_feature_norm: combined.mean_feature_norm, rows: combined.rows };
        Ok((self, Some(outcome)))
    }

    /// The step with the class centres split across nodes
    /// ([`crate::model_parallel`]): the workers' features gathered, one head
    /// over the whole batch against this node's slice, the features'
    /// gradient back to the workers; the backbone's gradients and BatchNorm
    /// statistics are then exchanged as in [`Self::multi_device_step`], the
    /// slice's gradient stays here.
    #[allow(clippy::too_many_arguments)]
    fn split_step(
        mut self,
        setup: &StepSetup<'_, B>,
        split: &SplitLayout,
        step: u64,
        lr: f64,
        pixels: &[f32],
        labels: &[usize],
        mut collective: Option<&mut Collective<B::InnerBackend>>,
    ) -> Result<(Self, Option<StepOutcome>)> {
        let (config, device) = (setup.config, setup.device);
        let partial_fc = setup.partial_fc.as_ref().expect("model_parallel is a [partial_fc] option");
        let shards = split_batch::<B>(pixels, labels, setup.side, &setup.workers);
        let workers = setup.workers.len();
        let gathered = with_step_rng::<B, _>(config, device, step, || {
            split_gradients(&self.model, &mut self.head, partial_fc, split, shards, workers, setup.slot_rows, collective.as_deref_mut(), device, step)
        });
        let SplitGradients { worker_grads, centre_grads, loss, mean_feature_norm, rows } = gathered.map_err(|e| match e {
            TrainError::Head(e) => head_error(e, step, &self.last_checkpoint),
            other => other,
        })?;
        let mut grads = match collective {
            None => {
                let mut all = worker_grads;
                all.push(centre_grads);
                sum_gradients(&self.model, &all, device, false)
            }
            Some(collective) => {
                let local = sum_gradients(&self.model.backbone, &worker_grads, device, true);
                // This node's workers' BatchNorm averages folded into one first.
                let _ = self.model.valid();
                let centres = self.model.centres.id;
                let node = NodeStep { grads: local, shards: &[], workers, failed: false };
                let (backbone, exchanged) = distributed::exchange_step::<B, _>(collective, self.model.backbone, node, device, step)?;
                self.model.backbone = backbone;
                let mut grads = exchanged.grads;
                if let Some(grad) = centre_grads.get::<B::InnerBackend, 2>(centres) {
                    grads.register::<B::InnerBackend, 2>(centres, grad);
                }
                grads
            }
        };
        if rows == 0 {
            return Ok((self, None));
        }
        if !loss.is_finite() {
            return Err(diverged(step, format!("the loss is {loss}"), &self.last_checkpoint));
        }
        if let Some(max_norm) = config.grad_clip_norm {
            clip_global_norm(&self.model.backbone, &mut [&mut grads], max_norm, device);
        }
        self.model = self.optimizer.step(lr, self.model, grads);
        let _ = self.model.valid();
        Ok((self, Some(StepOutcome { loss, accuracy: None, mean_feature_norm, rows })))
    }

    /// Saves a checkpoint every `checkpoint.every_steps` steps and after the last.
    fn checkpoint_if_due(&mut self, config: &TrainConfig, total_steps: u64) -> Result<()> {
        if self.steps_done.is_multiple_of(config.checkpoint.every_steps) || self.steps_done == total_steps {
            let state = TrainState {
                steps_done: self.steps_done,
                head: self.head.clone(),
                config: config.clone(),
                last_loss: self.last_loss,
                centres: self.centre_slice.clone(),
            };
            self.last_checkpoint = Some(checkpoint::save_in(&self.checkpoints, &self.model, &self.optimizer, &state, config.checkpoint.keep)?);
        }
        Ok(())
    }

    fn summary(self, config: &TrainConfig, total_steps: u64, first_step: u64, collective: Option<&Collective<B::InnerBackend>>) -> TrainSummary {
        TrainSummary {
            steps_done: self.steps_done,
            total_steps,
            last_loss: self.last_loss,
            resumed_from: self.resumed_from,
            last_checkpoint: self.last_checkpoint,
            metrics: MetricsLog::path_in(&config.out_dir),
            steps_taken: self.steps_done - first_step,
            communication: collective.map_or(Duration::ZERO, |c| c.communication),
        }
    }
}

/// The class-mean centres of `model`'s backbone on the training images
/// ([`imprint`]); a class with no sample (emptied by `visage clean`) keeps
/// its random start.
fn imprinted_centres<B: AutodiffBackend>(config: &TrainConfig, data: &RunData, model: &TrainModel<B>, device: &B::Device) -> Result<Tensor<B, 2>> {
    let k = config.head.centres_per_class();
    let (mut centres, empty) = imprint::class_mean_centres(
        &model.backbone.valid(),
        data.source.as_ref(),
        &config.data.source,
        data.classes,
        k,
        config.data.normalization.normalization(),
        data.shape.input_size() as u32,
        config.batch_size,
        device,
    )?;
    if !empty.is_empty() {
        let random = model.centres.val().into_data().convert::<f64>().to_vec::<f64>().expect("f64 centres");
        let width = centres.ncols();
        for class in empty {
            for row in class * k..(class + 1) * k {
                centres.row_mut(row).assign(&ndarray::ArrayView1::from(&random[row * width..(row + 1) * width]));
            }
        }
    }
    Ok(imprint::centres_tensor::<B>(&centres, device))
}

/// A non-finite loss: the run stops, pointing at the last good checkpoint.
fn diverged(step: u64, what: String, last_checkpoint: &Option<PathBuf>) -> TrainError {
    TrainError::Diverged { step, what, last_checkpoint: last_checkpoint.clone() }
}

/// A NaN/∞ feature (the head refuses it) is divergence too, not a data error.
fn head_error(e: HeadError, step: u64, last_checkpoint: &Option<PathBuf>) -> TrainError {
    match e {
        HeadError::NonFinite { .. } => diverged(step, format!("the backbone's features are not finite: {e}"), last_checkpoint),
        other => TrainError::Head(other),
    }
}

/// The run's logs: `metrics.csv`, and with a `[verification]` section the
/// sets and `verification.csv`; both cut back to the resume point.
struct Logs<'a> {
    metrics: MetricsLog,
    verification: Option<Verification<'a>>,
}

impl<'a> Logs<'a> {
    fn open(config: &'a TrainConfig, side: u32, steps_done: u64) -> Result<Self> {
        let metrics = MetricsLog::open(&config.out_dir, steps_done)?;
        let verification = match &config.verification {
            Some(section) => {
                let sets = section.sets.iter().map(|path| VerificationSet::load(path, side)).collect::<Result<Vec<_>>>()?;
                let log = CsvLog::open(&config.out_dir, "verification.csv", "step,set,accuracy_mean,accuracy_std", steps_done)?;
                Some(Verification { section, sets, log })
            }
            None => None,
        };
        Ok(Self { metrics, verification })
    }
}

/// The verification sets evaluated during the run.
struct Verification<'a> {
    section: &'a VerificationSection,
    sets: Vec<VerificationSet>,
    log: CsvLog,
}

impl Verification<'_> {
    /// Every `every_steps` steps and after the last: each set evaluated with
    /// the network in eval mode, logged and reported.
    fn evaluate_if_due<B: AutodiffBackend>(
        &mut self,
        config: &TrainConfig,
        model: &TrainModel<B>,
        steps_done: u64,
        total_steps: u64,
        device: &B::Device,
        on_verification: &mut impl FnMut(&str, u64, f64),
    ) -> Result<()> {
        if steps_done.is_multiple_of(self.section.every_steps) || steps_done == total_steps {
            let network = model.valid();
            for set in &self.sets {
                let normalization = config.data.normalization.normalization();
                let result = set.evaluate(&network.backbone, normalization, self.section.batch_size, device);
                self.log.append(&format!("{steps_done},{},{:.5},{:.5}", set.name, result.accuracy_mean, result.accuracy_std))?;
                on_verification(&set.name, steps_done, result.accuracy_mean);
            }
        }
        Ok(())
    }
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
