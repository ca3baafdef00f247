//! Partial FC across nodes (model parallelism, arcface_torch's
//! `PartialFC_V2`), on with `[partial_fc] model_parallel = true`.
//!
//! Node `r` of `N` holds one contiguous slice of the class centres
//! ([`class_slice`]: arcface_torch's split, the first `C mod N` nodes one
//! class more) with its optimiser state, and no other centre. A step:
//!
//! 1. every worker runs its backbone forward on its rows and hands the
//!    features to its node;
//! 2. the features and labels of the whole batch are gathered on every node:
//!    one all-reduce of a block per global worker (rows, then label and
//!    features per row, zeros elsewhere; adding zeros is exact, so every node
//!    reads every row exactly), laid out in global worker order, the order
//!    one process with `N × workers` workers concatenates its workers' rows in;
//! 3. each node computes the logits of all rows against its slice, sampled as
//!    Partial FC's shard `r` (a pure function of seed, step, `r` and the
//!    batch's labels), and two all-reduces make the softmax exact
//!    ([`visage_heads::MarginHead::forward_split`]): the row maxima, gathered
//!    like the features, and the row sums of `exp` with the target logits;
//! 4. the gradient of the features, each node's part summed by a third
//!    all-reduce, goes back to the workers, whose backbones run backward
//!    from it; the slice's gradient stays on its node;
//! 5. the step's usual all-reduce ([`crate::distributed`]) sums the
//!    backbones' gradients and averages BatchNorm's statistics; the centres
//!    are not in it.
//!
//! Without `--nodes` (one process) the same path runs with every centre
//! in one slice and no all-reduce: the workers' features are concatenated
//! and one head sees the whole batch, which is the unsharded head the
//! split one is tested against (`crates/visage-cli/tests/multinode_cli.rs`).
//! Every node logs the same loss: the head's value is computed from the
//! all-reduced sums, identical everywhere.
//!
//! Labels travel as `f32`, exact below 2²⁴ classes; the trainer refuses
//! more.

use std::ops::Range;
use std::sync::mpsc;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use visage_heads::{CentreShard, MarginHead, PartialFc, SplitRank};

use crate::distributed::Collective;
use crate::error::{Result, TrainError};
use crate::model::TrainModel;
use crate::parallel::Shard;

/// The most classes a split head takes: labels are exchanged as `f32`.
pub const MAX_SPLIT_CLASSES: usize = 1 << 24;

/// The classes node `rank` of `nodes` holds: `C / N` each, one more for the
/// first `C mod N` nodes (arcface_torch's `PartialFC_V2` split).
pub fn class_slice(classes: usize, nodes: usize, rank: usize) -> Range<usize> {
    let (base, extra) = (classes / nodes, classes % nodes);
    let start = base * rank + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// Where this node's centres sit among all of them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SplitLayout {
    /// Classes of the run.
    pub classes: usize,
    /// The classes this node holds.
    pub slice: Range<usize>,
    /// This node and the node count (1 without `--nodes`).
    pub rank: SplitRank,
}

/// What a split step gives the trainer before the backbone's exchange.
pub(crate) struct SplitGradients {
    /// Each worker's backbone gradients, in worker order.
    pub worker_grads: Vec<GradientsParams>,
    /// The gradient of this node's slice of centres.
    pub centre_grads: GradientsParams,
    /// The batch-mean loss, the same on every node.
    pub loss: f32,
    /// Mean L2 norm of the whole batch's features.
    pub mean_feature_norm: f32,
    /// Rows of the whole batch.
    pub rows: usize,
}

/// Steps 1–4 of the module docs. `slot_rows` bounds the rows of one
/// global worker (the gather's block size); `head` is updated in place
/// (AdaFace's statistics, from the whole batch on every node).
#[allow(clippy::too_many_arguments)]
pub(crate) fn split_gradients<B: AutodiffBackend>(
    model: &TrainModel<B>,
    head: &mut MarginHead,
    partial_fc: &PartialFc,
    layout: &SplitLayout,
    shards: Vec<Shard<B>>,
    workers: usize,
    slot_rows: usize,
    collective: Option<&mut Collective<B::InnerBackend>>,
    device: &B::Device,
    step: u64,
) -> Result<SplitGradients> {
    let local_labels: Vec<Vec<usize>> = shards.iter().map(|s| s.labels.clone()).collect();
    let (feature_sender, feature_receiver) = mpsc::channel::<(usize, Vec<f32>)>();
    let mut grad_senders = Vec::with_capacity(shards.len());
    std::thread::scope(|scope| {
        let threads: Vec<_> = shards
            .into_iter()
            .enumerate()
            .map(|(k, shard)| {
                let (grad_sender, grad_receiver) = mpsc::channel::<Vec<f32>>();
                grad_senders.push(grad_sender);
                let feature_sender = feature_sender.clone();
                let model = model.clone();
                scope.spawn(move || -> Option<GradientsParams> {
                    let model = model.fork(&shard.device);
                    let features = model.backbone.forward(shard.images);
                    let dims = features.dims();
                    let values = features.clone().into_data().convert::<f32>().into_vec::<f32>().ok()?;
                    feature_sender.send((k, values)).ok()?;
                    drop(feature_sender);
                    // The node's head runs now; a closed channel means it failed.
                    let grad = grad_receiver.recv().ok()?;
                    let grad = Tensor::<B, 2>::from_data(TensorData::new(grad, dims), &shard.device);
                    // d(Σ features ⊙ g)/d features = g: the backbone runs backward from g.
                    Some(GradientsParams::from_grads((features * grad).sum().backward(), &model))
                })
            })
            .collect();
        drop(feature_sender);
        let head_part =
            head_step(model, head, partial_fc, layout, &local_labels, workers, slot_rows, collective, device, step, feature_receiver, grad_senders);
        let worker_grads: Vec<Option<GradientsParams>> = threads.into_iter().map(|t| t.join().expect("a split worker panicked")).collect();
        let mut part = head_part?;
        part.worker_grads = worker_grads.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| TrainError::Collective {
            node: format!("node {} of {}", layout.rank.rank, layout.rank.processes),
            message: format!("step {step}: a worker stopped before its backward pass"),
        })?;
        Ok(part)
    })
}

/// The node's side of [`split_gradients`]: gathers the features, runs the
/// head and sends each worker its rows of the features' gradient. Dropping
/// `grad_senders` on an error releases the workers.
#[allow(clippy::too_many_arguments)]
fn head_step<B: AutodiffBackend>(
    model: &TrainModel<B>,
    head: &mut MarginHead,
    partial_fc: &PartialFc,
    layout: &SplitLayout,
    local_labels: &[Vec<usize>],
    workers: usize,
    slot_rows: usize,
    mut collective: Option<&mut Collective<B::InnerBackend>>,
    device: &B::Device,
    step: u64,
    feature_receiver: mpsc::Receiver<(usize, Vec<f32>)>,
    grad_senders: Vec<mpsc::Sender<Vec<f32>>>,
) -> Result<SplitGradients> {
    let dim = model.centres.val().dims()[1];
    let node = || format!("node {} of {}", layout.rank.rank, layout.rank.processes);
    let mut local_features = vec![Vec::new(); local_labels.len()];
    for _ in 0..local_labels.len() {
        let (k, values) = feature_receiver
            .recv()
            .map_err(|_| TrainError::Collective { node: node(), message: format!("step {step}: a worker stopped in its forward pass") })?;
        local_features[k] = values;
    }

    // The whole batch in global worker order, and where this node's workers' rows are in it.
    let (nodes, rank) = (layout.rank.processes, layout.rank.rank);
    let (features, labels, offsets) = match collective.as_deref_mut() {
        None => {
            let offsets: Vec<usize> = local_labels.iter().scan(0, |at, l| Some(std::mem::replace(at, *at + l.len()))).collect();
            (local_features.concat(), local_labels.concat(), offsets)
        }
        Some(collective) => {
            let slot = 1 + slot_rows * (dim + 1);
            let mut blocks = vec![0f32; nodes * workers * slot];
            for (k, (labels, values)) in local_labels.iter().zip(&local_features).enumerate() {
                let block = &mut blocks[(rank + nodes * k) * slot..][..slot];
                block[0] = labels.len() as f32;
                for (i, (&label, row)) in labels.iter().zip(values.chunks(dim)).enumerate() {
                    block[1 + i * (dim + 1)] = label as f32;
                    block[2 + i * (dim + 1)..][..dim].copy_from_slice(row);
                }
            }
            let total = blocks.len();
            let gathered =
                collective.all_reduce_sum(Tensor::from_data(TensorData::new(blocks, [total]), device), &format!("step {step}: the features"))?;
            let gathered = host_f32(gathered, &node)?;
            let (mut features, mut labels, mut starts) = (Vec::new(), Vec::new(), Vec::new());
            for block in gathered.chunks(slot) {
                starts.push(labels.len());
                let rows = block[0] as usize;
                for row in block[1..].chunks(dim + 1).take(rows.min(slot_rows)) {
                    labels.push(row[0] as usize);
                    features.extend_from_slice(&row[1..]);
                }
            }
            let offsets: Vec<usize> = (0..local_labels.len()).map(|k| starts[rank + nodes * k]).collect();
            (features, labels, offsets)
        }
    };
    let rows = labels.len();
    if rows == 0 {
        // Every node saw the same empty batch: nothing to learn from.
        drop(grad_senders);
        return Ok(SplitGradients { worker_grads: Vec::new(), centre_grads: GradientsParams::new(), loss: 0.0, mean_feature_norm: 0.0, rows });
    }

    let features = Tensor::<B, 2>::from_data(TensorData::new(features, [rows, dim]), device).require_grad();
    let mean_feature_norm: f32 = features.clone().inner().powf_scalar(2.0).sum_dim(1).sqrt().mean().into_scalar().elem();
    let shard = CentreShard { centres: model.centres.val(), first_class: layout.slice.start };
    let all_reduce = |sum: Tensor<B, 2>| -> Result<Tensor<B, 2>> {
        match collective.as_deref_mut() {
            None => Ok(sum),
            Some(collective) => {
                let dims = sum.dims();
                let flat = sum.inner().reshape([dims[0] * dims[1]]);
                let reduced = collective.all_reduce_sum(flat, &format!("step {step}: the head's sums"))?;
                Ok(Tensor::from_inner(reduced.reshape(dims)))
            }
        }
    };
    let output = partial_fc.forward_split(head, features.clone(), &shard, layout.classes, &labels, step, layout.rank, all_reduce)?.output;
    let loss: f32 = output.loss.into_scalar().elem();
    let mut grads = output.surrogate.backward();
    let feature_grad = features.grad_remove(&mut grads).unwrap_or_else(|| Tensor::<B, 2>::zeros([rows, dim], device).inner());
    let centre_grads = GradientsParams::from_grads(grads, model);
    let feature_grad = match collective {
        None => feature_grad,
        Some(collective) => {
            let reduced = collective.all_reduce_sum(feature_grad.reshape([rows * dim]), &format!("step {step}: the features' gradient"))?;
            reduced.reshape([rows, dim])
        }
    };
    let feature_grad = host_f32(feature_grad.reshape([rows * dim]), &node)?;
    for ((sender, &offset), labels) in grad_senders.iter().zip(&offsets).zip(local_labels) {
        // A worker that died shows when it is joined.
        let _ = sender.send(feature_grad[offset * dim..(offset + labels.len()) * dim].to_vec());
    }
    Ok(SplitGradients { worker_grads: Vec::new(), centre_grads, loss, mean_feature_norm, rows })
}

fn host_f32<T: burn::tensor::backend::Backend>(tensor: Tensor<T, 1>, node: &impl Fn() -> String) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| TrainError::Collective { node: node(), message: format!("the exchanged numbers are not f32: {e:?}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_class_once_in_order() {
        for (classes, nodes) in [(10, 2), (10, 3), (7, 7), (93_431, 8)] {
            let slices: Vec<Range<usize>> = (0..nodes).map(|r| class_slice(classes, nodes, r)).collect();
            assert_eq!(slices[0].start, 0);
            assert!(slices.windows(2).all(|w| w[0].end == w[1].start));
            assert_eq!(slices[nodes - 1].end, classes);
            let sizes: Vec<usize> = slices.iter().map(|s| s.len()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
        assert_eq!(class_slice(10, 3, 0), 0..4);
        assert_eq!(class_slice(10, 3, 2), 7..10);
    }
}
