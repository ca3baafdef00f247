//! Data-parallel steps: one batch split into shards, each shard's forward
//! and backward pass on its own worker (a thread per device — several CPU
//! workers share the CPU device; GPU workers each own one), and the
//! gradients summed onto each parameter's device before one optimiser step
//! (burn's `MultiGradientsParams` + `Optimizer::step_multi`).
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

use burn::module::Module;
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::backend::{AutodiffBackend, DeviceOps};
use burn::tensor::{ElementConversion, Tensor};
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

/// The combined result of one data-parallel forward/backward pass.
pub struct ParallelGradients {
    /// Each shard's gradients (of its weighted loss) with its device, for
    /// `Optimizer::step_multi`, which sums them.
    pub grads: MultiGradientsParams,
    /// The batch-mean loss (shard losses weighted by their share).
    pub loss: f32,
    /// Top-1 over the whole batch, `None` with Partial FC.
    pub accuracy: Option<f32>,
    /// Mean L2 norm of the batch's features, over all shards.
    pub mean_feature_norm: f32,
    /// The head after the step (AdaFace: the shards' statistics averaged).
    pub head: MarginHead,
}

struct ShardResult {
    grads: GradientsParams,
    device_id: burn::tensor::backend::DeviceId,
    weighted_loss: f32,
    correct: Option<usize>,
    norm_sum: f32,
    rows: usize,
    head: MarginHead,
}

/// Forward and backward of every shard, each on its own thread, with a copy
/// of `model` forked to the shard's device and a copy of `head`. `step`
/// seeds Partial FC's class sampling. Fails with the first shard's
/// [`HeadError`] in shard order (non-finite features among them); a worker
/// that panics panics the caller.
pub fn shard_gradients<B: AutodiffBackend>(
    model: &TrainModel<B>,
    head: &MarginHead,
    partial_fc: Option<&PartialFc>,
    shards: Vec<Shard<B>>,
    step: u64,
) -> Result<ParallelGradients, HeadError> {
    let total: usize = shards.iter().map(|s| s.labels.len()).sum();
    let results: Vec<Result<ShardResult, HeadError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = shards
            .into_iter()
            .map(|shard| {
                let (model, mut head) = (model.clone(), head.clone());
                scope.spawn(move || -> Result<ShardResult, HeadError> {
                    let model = model.fork(&shard.device);
                    let rows = shard.labels.len();
                    let features = model.backbone.forward(shard.images);
                    let norm_sum: f32 = features.clone().powf_scalar(2.0).sum_dim(1).sqrt().sum().into_scalar().elem();
                    let (loss, correct) = head_loss(&mut head, partial_fc, features, model.centres.val(), &shard.labels, step)?;
                    let share = rows as f32 / total as f32;
                    let loss = loss.mul_scalar(share);
                    let weighted_loss: f32 = loss.clone().into_scalar().elem();
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    Ok(ShardResult { grads, device_id: shard.device.id(), weighted_loss, correct, norm_sum, rows, head })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a shard worker panicked")).collect()
    });
    let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;

    let loss = results.iter().map(|r| r.weighted_loss).sum();
    let accuracy = results.iter().map(|r| r.correct).sum::<Option<usize>>().map(|c| c as f32 / total.max(1) as f32);
    let mean_feature_norm = results.iter().map(|r| r.norm_sum).sum::<f32>() / total.max(1) as f32;
    let mut merged_head = results[0].head.clone();
    let states: Vec<AdaFaceState> = results.iter().filter_map(|r| r.head.adaface_state()).collect();
    if !states.is_empty() {
        let weight = |r: &ShardResult| r.rows as f64 / total as f64;
        let mean = results.iter().filter_map(|r| r.head.adaface_state().map(|s| s.batch_mean * weight(r))).sum();
        let std = results.iter().filter_map(|r| r.head.adaface_state().map(|s| s.batch_std * weight(r))).sum();
        merged_head.set_adaface_state(AdaFaceState { batch_mean: mean, batch_std: std });
    }
    let grads = MultiGradientsParams { grads: results.into_iter().map(|r| (r.grads, r.device_id)).collect() };
    Ok(ParallelGradients { grads, loss, accuracy, mean_feature_norm, head: merged_head })
}
