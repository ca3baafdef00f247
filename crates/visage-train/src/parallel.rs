//! Data-parallel steps: one batch split into shards, each shard's forward
//! and backward pass on its own worker (a thread per device — several CPU
//! workers share the CPU device; GPU workers each own one), and the
//! gradients summed onto the parameters' device in worker order before one
//! optimiser step ([`sum_gradients`]). Across processes and machines each
//! node's sum is then all-reduced ([`crate::distributed`]).
//!
//! Shards are interleaved: worker `k` of `W` takes rows `k, k + W, …` of the
//! batch. That is how the loader shares an epoch among ranks (rank `r` takes
//! positions `r, r + W, …`), so `N` processes with one worker each see
//! exactly the shards that one process with `N` workers sees.
//!
//! Each shard's loss is weighted by its share of the batch, `n_k / N`, so the
//! summed gradient is the gradient of the whole batch's mean loss, exactly as
//! one worker would compute it — except where the network or head looks at
//! batch statistics: BatchNorm normalises each shard by its own statistics
//! and AdaFace's running norm statistics see one shard each (averaged after
//! the step), which is what PyTorch DDP without SyncBatchNorm does too.
//!
//! BatchNorm's running averages: burn keeps one value per thread and folds
//! them into their mean on synchronisation, which the trainer forces after
//! every step — each worker updates the same starting value with its own
//! shard's statistics and the step's result is the mean of the workers'
//! (PyTorch DDP keeps rank 0's instead). No worker sees another's update
//! within a step, so the order the threads run in does not matter: with two
//! workers a resumed run is bit-identical (tested); with more, the fold's
//! order of addition follows a hash map and the running averages may differ
//! in the last bit.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use visage_heads::{AdaFaceState, HeadError, MarginHead, PartialFc};

use crate::model::TrainModel;
use crate::step::head_loss;

/// One worker's part of a batch, already on its device.
pub struct Shard<B: AutodiffBackend> {
    /// The worker's device; its forward and backward pass run there.
    pub device: B::Device,
    /// `n_k × 3 × S × S` normalised images.
    pub images: Tensor<B, 4>,
    /// Class of each image, `n_k` of them.
    pub labels: Vec<usize>,
}

/// What one shard's forward and backward pass gives the step besides its
/// gradients; [`combine`] turns a step's summaries into its metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShardSummary {
    /// Rows of the shard.
    pub rows: usize,
    /// The shard's mean loss times its weight `rows / batch rows`.
    pub weighted_loss: f32,
    /// Rows whose logits rank their own class first; `None` with Partial FC.
    pub correct: Option<usize>,
    /// Sum over the shard's rows of the feature's L2 norm.
    pub norm_sum: f32,
    /// AdaFace's batch statistics after the shard; `None` for the other heads.
    pub adaface: Option<AdaFaceState>,
}

/// The result of one data-parallel forward/backward pass.
pub struct ParallelGradients {
    /// Each shard's gradients (of its weighted loss), in worker order.
    pub grads: Vec<GradientsParams>,
    /// Each shard's summary, in worker order.
    pub shards: Vec<ShardSummary>,
}

/// A step's metrics, from every shard's summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Combined {
    /// The batch-mean loss (shard losses weighted by their share).
    pub loss: f32,
    /// Top-1 over the whole batch, `None` with Partial FC.
    pub accuracy: Option<f32>,
    /// Mean L2 norm of the batch's features, over all shards.
    pub mean_feature_norm: f32,
    /// Rows in all shards.
    pub rows: usize,
}

/// Adds up shard summaries in their order — the same order on every node,
/// so every node computes the same bits — and sets AdaFace's statistics of
/// `head` to the shards' row-weighted mean.
pub fn combine(shards: &[ShardSummary], head: &mut MarginHead) -> Combined {
    let total: usize = shards.iter().map(|s| s.rows).sum();
    let loss = shards.iter().map(|s| s.weighted_loss).sum();
    let accuracy = shards.iter().map(|s| s.correct).sum::<Option<usize>>().map(|c| c as f32 / total.max(1) as f32);
    let mean_feature_norm = shards.iter().map(|s| s.norm_sum).sum::<f32>() / total.max(1) as f32;
    if shards.iter().any(|s| s.adaface.is_some()) {
        let weight = |s: &ShardSummary| s.rows as f64 / total.max(1) as f64;
        let batch_mean = shards.iter().filter_map(|s| s.adaface.map(|a| a.batch_mean * weight(s))).sum();
        let batch_std = shards.iter().filter_map(|s| s.adaface.map(|a| a.batch_std * weight(s))).sum();
        head.set_adaface_state(AdaFaceState { batch_mean, batch_std });
    }
    Combined { loss, accuracy, mean_feature_norm, rows: total }
}

/// Forward and backward of every shard, each on its own thread, with a copy
/// of `model` forked to the shard's device and a copy of `head`. Each
/// shard's loss is weighted by `rows / batch_rows`, `batch_rows` being the
/// rows of the whole step (over every node). `step` seeds Partial FC's class
/// sampling. Fails with the first shard's [`HeadError`] in shard order
/// (non-finite features among them); a worker that panics panics the caller.
pub fn shard_gradients<B: AutodiffBackend>(
    model: &TrainModel<B>,
    head: &MarginHead,
    partial_fc: Option<&PartialFc>,
    shards: Vec<Shard<B>>,
    batch_rows: usize,
    step: u64,
) -> Result<ParallelGradients, HeadError> {
    type ShardResult = Result<(GradientsParams, ShardSummary), HeadError>;
    let results: Vec<ShardResult> = std::thread::scope(|scope| {
        let workers: Vec<_> = shards
            .into_iter()
            .map(|shard| {
                let (model, mut head) = (model.clone(), head.clone());
                scope.spawn(move || -> ShardResult {
                    let model = model.fork(&shard.device);
                    let rows = shard.labels.len();
                    let features = model.backbone.forward(shard.images);
                    let norm_sum: f32 = features.clone().powf_scalar(2.0).sum_dim(1).sqrt().sum().into_scalar().elem();
                    let (loss, correct) = head_loss(&mut head, partial_fc, features, model.centres.val(), &shard.labels, step)?;
                    let share = rows as f32 / batch_rows.max(1) as f32;
                    let loss = loss.mul_scalar(share);
                    let weighted_loss: f32 = loss.clone().into_scalar().elem();
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    Ok((grads, ShardSummary { rows, weighted_loss, correct, norm_sum, adaface: head.adaface_state() }))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a shard worker panicked")).collect()
    });
    let (grads, shards) = results.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
    Ok(ParallelGradients { grads, shards })
}

/// Splits a batch (`pixels`: `N × 3 × side × side`, one label per image)
/// into interleaved shards, one per worker device: worker `k` of `W` takes
/// rows `k, k + W, …` (see the module docs). Workers beyond the batch's
/// rows get no shard.
pub fn split_batch<B: AutodiffBackend>(pixels: &[f32], labels: &[usize], side: usize, devices: &[B::Device]) -> Vec<Shard<B>> {
    let plane = 3 * side * side;
    let workers = devices.len().max(1);
    devices
        .iter()
        .enumerate()
        .take(labels.len())
        .map(|(k, device)| {
            let rows: Vec<usize> = (k..labels.len()).step_by(workers).collect();
            let shard_pixels: Vec<f32> = rows.iter().flat_map(|&i| pixels[i * plane..(i + 1) * plane].iter().copied()).collect();
            Shard {
                device: device.clone(),
                images: Tensor::<B, 4>::from_data(TensorData::new(shard_pixels, [rows.len(), 3, side, side]), device),
                labels: rows.iter().map(|&i| labels[i]).collect(),
            }
        })
        .collect()
}

/// Sums the workers' gradients of every trainable parameter of `module`
/// onto `device`, in worker order (with two workers `a + b`: the same bits
/// whichever finished first). With `zero_fill`, a trainable parameter that
/// no worker has a gradient for gets zeros, so that every node lays out the
/// same tensors for an all-reduce.
pub fn sum_gradients<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    grads: &[GradientsParams],
    device: &B::Device,
    zero_fill: bool,
) -> GradientsParams {
    let mut sum = SumGradients::<B> { grads, device: device.clone(), zero_fill, out: GradientsParams::new() };
    module.visit(&mut sum);
    sum.out
}

/// One parameter's gradient summed over the workers that have one, on
/// `device` (`None` when none has).
pub(crate) fn summed_gradient<'g, B: AutodiffBackend, const D: usize>(
    grads: impl Iterator<Item = &'g GradientsParams>,
    id: ParamId,
    device: &B::Device,
) -> Option<Tensor<B::InnerBackend, D>> {
    grads.filter_map(|grads| grads.get::<B::InnerBackend, D>(id)).map(|grad| grad.to_device(device)).reduce(|a, b| a + b)
}

struct SumGradients<'a, B: AutodiffBackend> {
    grads: &'a [GradientsParams],
    device: B::Device,
    zero_fill: bool,
    out: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SumGradients<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !param.is_require_grad() {
            return;
        }
        let summed = match summed_gradient::<B, D>(self.grads.iter(), param.id, &self.device) {
            Some(grad) => grad,
            None if self.zero_fill => Tensor::zeros(param.shape(), &self.device),
            None => return,
        };
        self.out.register::<B::InnerBackend, D>(param.id, summed);
    }
}
