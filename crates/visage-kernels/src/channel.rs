//! Training-mode BatchNorm and PReLU on `Autodiff<Flex>` as two custom
//! autodiff operations with hand-written passes.
//!
//! Composed from burn tensor ops (what `visage_nn::channelwise` does on every
//! other backend), a training BatchNorm is about seven elementwise passes
//! forward (sums, centring, square, scale, shift) and as many again in the
//! backward pass, each a fresh tensor; PReLU is four and six. Here:
//!
//! - BatchNorm forward: one pass for the per-channel mean, one for the
//!   variance around it (f64 sums, so the two-pass result is what the
//!   composed ops give in f32 to rounding), one writing
//!   `y = (x − μ)·γ/√(σ² + ε) + β`. Backward: one pass for `Σ∂y` and
//!   `Σ∂y·x̂`, one writing `∂x = γ/√(σ² + ε)·(∂y − Σ∂y/M − x̂·Σ∂y·x̂/M)`;
//!   `∂γ = Σ∂y·x̂`, `∂β = Σ∂y` (`M = N·L`, `x̂ = (x − μ)/√(σ² + ε)`).
//! - PReLU forward `y = x` for `x > 0`, else `α_c·x`; backward
//!   `∂x = ∂y` or `α_c·∂y` and `∂α_c = Σ∂y·min(x, 0)`, as burn's
//!   `max(x, 0) + α·min(x, 0)` differentiates (slope `α` at 0).
//!
//! Activations are `[N, C, L]` (contiguous); every pass runs over rows
//! `(n, c)` or channels on rayon's threads.

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorPrimitive};
use rayon::prelude::*;

use crate::conv::{conv_path, ConvPath};

type AutodiffFlexTensor = burn::tensor::ops::FloatTensor<Autodiff<Flex>>;

/// The batch statistics of a training BatchNorm: per-channel mean and biased
/// variance (f32, `[C]`), for the running-statistics update.
#[derive(Debug, Clone)]
pub struct BatchStatistics {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel biased variance.
    pub variance: Vec<f32>,
}

/// Training-mode BatchNorm of `x: [N, C, L]` with `gamma`, `beta: [C]`, as
/// one custom autodiff op, when `B` is `Autodiff<Flex>`, the tensors are f32
/// and [`conv_path`] is [`ConvPath::Kernels`]; `None` otherwise (the caller
/// composes it from tensor ops).
pub fn batch_norm_train<B: Backend>(
    x: &Tensor<B, 3>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    epsilon: f64,
) -> Option<(Tensor<B, 3>, BatchStatistics)> {
    if !runs_here::<B>([x.dtype(), gamma.dtype(), beta.dtype()]) {
        return None;
    }
    let [batch, channels, length] = x.dims();
    if batch * length == 0 || gamma.dims()[0] != channels || beta.dims()[0] != channels {
        return None;
    }
    let primitive = |t: Tensor<Autodiff<Flex>, 3>| t.into_primitive().tensor();
    let x = primitive(concrete::<B, Autodiff<Flex>, 3>(x.clone()));
    let gamma = concrete::<B, Autodiff<Flex>, 1>(gamma.clone()).into_primitive().tensor();
    let beta = concrete::<B, Autodiff<Flex>, 1>(beta.clone()).into_primitive().tensor();
    let (output, statistics) = batch_norm_autodiff(x, gamma, beta, [batch, channels, length], epsilon as f32);
    Some((concrete::<Autodiff<Flex>, B, 3>(Tensor::from_primitive(TensorPrimitive::Float(output))), statistics))
}

/// PReLU of `x: [N, C, L]` with one slope per channel (`alpha: [C]`) as one
/// custom autodiff op, under the same conditions as [`batch_norm_train`].
pub fn prelu<B: Backend>(x: &Tensor<B, 3>, alpha: &Tensor<B, 1>) -> Option<Tensor<B, 3>> {
    if !runs_here::<B>([x.dtype(), alpha.dtype(), DType::F32]) {
        return None;
    }
    let [batch, channels, length] = x.dims();
    if batch * length == 0 || alpha.dims()[0] != channels {
        return None;
    }
    let x = concrete::<B, Autodiff<Flex>, 3>(x.clone()).into_primitive().tensor();
    let alpha = concrete::<B, Autodiff<Flex>, 1>(alpha.clone()).into_primitive().tensor();
    let output = prelu_autodiff(x, alpha, [batch, channels, length]);
    Some(concrete::<Autodiff<Flex>, B, 3>(Tensor::from_primitive(TensorPrimitive::Float(output))))
}

fn runs_here<B: Backend>(dtypes: [DType; 3]) -> bool {
    TypeId::of::<B>() == TypeId::of::<Autodiff<Flex>>() && dtypes.iter().all(|d| *d == DType::F32) && conv_path() == ConvPath::Kernels
}

/// `tensor` as a tensor of backend `To`, which the caller has checked is `From`.
fn concrete<From: Backend, To: Backend, const D: usize>(tensor: Tensor<From, D>) -> Tensor<To, D> {
    let boxed: Box<dyn Any> = Box::new(tensor);
    *boxed.downcast::<Tensor<To, D>>().unwrap_or_else(|_| unreachable!("the backends were compared by TypeId"))
}

fn flex_tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, Shape::from(shape.to_vec())))
}

fn values(tensor: &FlexTensor) -> Vec<f32> {
    tensor.clone().to_contiguous().storage::<f32>().to_vec()
}

// ------------------------------------------------------------- BatchNorm

/// What the BatchNorm backward step keeps: the input's checkpoint, γ, the
/// batch mean and `1/√(σ² + ε)` per channel, and the shape.
#[derive(Debug)]
struct BatchNormBackward;

type BatchNormState = (NodeId, Vec<f32>, Vec<f32>, Vec<f32>, [usize; 3]);

impl Backward<Flex, 3> for BatchNormBackward {
    type State = BatchNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let output_grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x_state, gamma, mean, inv_std, shape) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state).to_contiguous();
        let (dy, x) = (output_grad.storage::<f32>(), x.storage::<f32>());
        let [batch, channels, length] = shape;
        let count = (batch * length) as f64;
        // Σ∂y and Σ∂y·x̂ per channel.
        let sums: Vec<(f64, f64)> = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mut sum, mut dot) = (0.0f64, 0.0f64);
                for n in 0..batch {
                    let start = (n * channels + c) * length;
                    let (mut s, mut d) = (0.0f32, 0.0f32);
                    for (g, v) in dy[start..start + length].iter().zip(&x[start..start + length]) {
                        s += g;
                        d += g * (v - mean[c]);
                    }
                    sum += s as f64;
                    dot += d as f64 * inv_std[c] as f64;
                }
                (sum, dot)
            })
            .collect();
        if let Some(node) = node_x {
            let mut dx = vec![0.0f32; dy.len()];
            dx.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
                let c = row % channels;
                let start = row * length;
                let (sum, dot) = sums[c];
                let scale = gamma[c] * inv_std[c];
                let (mean_dy, mean_dot) = ((sum / count) as f32, (dot / count) as f32);
                for ((o, g), v) in out.iter_mut().zip(&dy[start..start + length]).zip(&x[start..start + length]) {
                    let normalised = (v - mean[c]) * inv_std[c];
                    *o = scale * (g - mean_dy - normalised * mean_dot);
                }
            });
            grads.register::<Flex>(node.id, flex_tensor(dx, &shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(sums.iter().map(|s| s.1 as f32).collect(), &[channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(sums.iter().map(|s| s.0 as f32).collect(), &[channels]));
        }
    }
}

/// The forward pass: output, batch statistics and `1/√(σ² + ε)`.
fn batch_norm_values(x: &[f32], gamma: &[f32], beta: &[f32], shape: [usize; 3], epsilon: f32) -> (Vec<f32>, BatchStatistics, Vec<f32>) {
    let [batch, channels, length] = shape;
    let count = (batch * length) as f64;
    let rows = |c: usize| (0..batch).map(move |n| (n * channels + c) * length);
    let statistics: Vec<(f32, f32)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = rows(c).map(|start| x[start..start + length].iter().sum::<f32>() as f64).sum();
            let mean = (sum / count) as f32;
            let squares: f64 = rows(c).map(|start| x[start..start + length].iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() as f64).sum();
            (mean, (squares / count) as f32)
        })
        .collect();
    let inv_std: Vec<f32> = statistics.iter().map(|(_, var)| 1.0 / (var + epsilon).sqrt()).collect();
    let mut output = vec![0.0f32; x.len()];
    output.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
        let c = row % channels;
        let (scale, mean) = (gamma[c] * inv_std[c], statistics[c].0);
        let shift = beta[c] - mean * scale;
        for (o, v) in out.iter_mut().zip(&x[row * length..(row + 1) * length]) {
            *o = v * scale + shift;
        }
    });
    let statistics = BatchStatistics { mean: statistics.iter().map(|s| s.0).collect(), variance: statistics.iter().map(|s| s.1).collect() };
    (output, statistics, inv_std)
}

fn batch_norm_autodiff(
    x: AutodiffFlexTensor,
    gamma: AutodiffFlexTensor,
    beta: AutodiffFlexTensor,
    shape: [usize; 3],
    epsilon: f32,
) -> (AutodiffFlexTensor, BatchStatistics) {
    let (x_values, gamma_values, beta_values) = (x.primitive.clone().to_contiguous(), values(&gamma.primitive), values(&beta.primitive));
    let (output, statistics, inv_std) = batch_norm_values(x_values.storage::<f32>(), &gamma_values, &beta_values, shape, epsilon);
    let output = flex_tensor(output, &shape);
    let tensor =
        match BatchNormBackward.prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish((x_state, gamma_values, statistics.mean.clone(), inv_std, shape), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
    (tensor, statistics)
}

// ----------------------------------------------------------------- PReLU

/// What the PReLU backward step keeps: the input's checkpoint, the slopes
/// and the shape.
#[derive(Debug)]
struct PreluBackward;

impl Backward<Flex, 2> for PreluBackward {
    type State = (NodeId, Vec<f32>, [usize; 3]);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_alpha] = ops.parents;
        let output_grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x_state, alpha, shape) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state).to_contiguous();
        let (dy, x) = (output_grad.storage::<f32>(), x.storage::<f32>());
        let [batch, channels, length] = shape;
        if let Some(node) = node_x {
            let mut dx = vec![0.0f32; dy.len()];
            dx.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
                let a = alpha[row % channels];
                let start = row * length;
                for ((o, g), v) in out.iter_mut().zip(&dy[start..start + length]).zip(&x[start..start + length]) {
                    *o = if *v > 0.0 { *g } else { a * g };
                }
            });
            grads.register::<Flex>(node.id, flex_tensor(dx, &shape));
        }
        if let Some(node) = node_alpha {
            let slopes: Vec<f32> = (0..channels)
                .into_par_iter()
                .map(|c| {
                    let mut sum = 0.0f64;
                    for n in 0..batch {
                        let start = (n * channels + c) * length;
                        let row: f32 = dy[start..start + length].iter().zip(&x[start..start + length]).map(|(g, v)| g * v.min(0.0)).sum();
                        sum += row as f64;
                    }
                    sum as f32
                })
                .collect();
            grads.register::<Flex>(node.id, flex_tensor(slopes, &[channels]));
        }
    }
}

fn prelu_values(x: &[f32], alpha: &[f32], shape: [usize; 3]) -> Vec<f32> {
    let [_, channels, length] = shape;
    let mut output = vec![0.0f32; x.len()];
    output.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
        let a = alpha[row % channels];
        for (o, v) in out.iter_mut().zip(&x[row * length..(row + 1) * length]) {
            *o = if *v > 0.0 { *v } else { a * v };
        }
    });
    output
}

fn prelu_autodiff(x: AutodiffFlexTensor, alpha: AutodiffFlexTensor, shape: [usize; 3]) -> AutodiffFlexTensor {
    let (x_values, alpha_values) = (x.primitive.clone().to_contiguous(), values(&alpha.primitive));
    let output = flex_tensor(prelu_values(x_values.storage::<f32>(), &alpha_values, shape), &shape);
    match PreluBackward.prepare::<NoCheckpointing>([x.node.clone(), alpha.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            prep.finish((x_state, alpha_values, shape), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::conv::with_conv_path;

    type Ad = Autodiff<Flex>;

    fn largest_difference(a: Vec<f32>, b: Vec<f32>) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    fn flat<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    /// The custom op (it must run: `Some`) against BatchNorm composed from
    /// burn's tensor ops: output, ∂x, ∂γ, ∂β within 1e-5 of the largest
    /// entry; the batch statistics against sums in f64.
    #[test]
    fn batch_norm_matches_composed_ops() {
        let device = Default::default();
        let (n, c, l) = (3, 5, 37);
        let x0 = Tensor::<Ad, 3>::random([n, c, l], Distribution::Normal(0.7, 2.0), &device);
        let r = Tensor::<Ad, 3>::random([n, c, l], Distribution::Normal(0.0, 1.0), &device);
        let gamma0 = Tensor::<Ad, 1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
        let beta0 = Tensor::<Ad, 1>::random([c], Distribution::Uniform(-0.5, 0.5), &device);
        let eps = 1e-5;
        let run = |custom: bool| {
            let (x, gamma, beta) = (x0.clone().require_grad(), gamma0.clone().require_grad(), beta0.clone().require_grad());
            let y = if custom {
                let (y, statistics) = batch_norm_train(&x, &gamma, &beta, eps).expect("the custom op runs on Autodiff<Flex>");
                let values = x0.clone().into_data().to_vec::<f32>().unwrap();
                for ch in 0..c {
                    let xs: Vec<f64> = (0..n).flat_map(|s| (0..l).map(move |i| (s * c + ch) * l + i)).map(|i| values[i] as f64).collect();
                    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
                    let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / xs.len() as f64;
                    assert!(
                        (statistics.mean[ch] as f64 - mean).abs() < 1e-5 && (statistics.variance[ch] as f64 - var).abs() < 1e-4 * var,
                        "channel {ch}"
                    );
                }
                y
            } else {
                let count = (n * l) as f64;
                let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(count);
                let centred = x.clone().sub(mean);
                let var = centred.clone().square().sum_dim(2).sum_dim(0).div_scalar(count);
                centred.div(var.add_scalar(eps).sqrt()).mul(gamma.clone().reshape([1, c, 1])).add(beta.clone().reshape([1, c, 1]))
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            [flat(y), flat(x.grad(&grads).unwrap()), flat(gamma.grad(&grads).unwrap()), flat(beta.grad(&grads).unwrap())]
        };
        let (ours, reference) = (run(true), run(false));
        for (what, (a, b)) in ["output", "input gradient", "gamma gradient", "beta gradient"].iter().zip(ours.into_iter().zip(reference)) {
            let error = largest_difference(a, b);
            assert!(error < 1e-5, "{what}: {error}");
        }
    }

    /// The custom PReLU against `relu(x) + α·(x − relu(x))` from tensor ops
    /// (burn's PReLU): output, ∂x and ∂α; exact zeros in x take the slope α.
    #[test]
    fn prelu_matches_composed_ops() {
        let device = Default::default();
        let (n, c, l) = (2, 4, 19);
        let mut values = Tensor::<Ad, 3>::random([n, c, l], Distribution::Normal(0.0, 1.0), &device).into_data().to_vec::<f32>().unwrap();
        values[3] = 0.0;
        values[40] = 0.0;
        let x0 = Tensor::<Ad, 3>::from_data(TensorData::new(values, [n, c, l]), &device);
        let r = Tensor::<Ad, 3>::random([n, c, l], Distribution::Normal(0.0, 1.0), &device);
        let alpha0 = Tensor::<Ad, 1>::random([c], Distribution::Uniform(-0.5, 0.8), &device);
        let run = |custom: bool| {
            let (x, alpha) = (x0.clone().require_grad(), alpha0.clone().require_grad());
            let y = if custom {
                prelu(&x, &alpha).expect("the custom op runs on Autodiff<Flex>")
            } else {
                let positive = burn::tensor::activation::relu(x.clone());
                positive.clone().add(x.clone().sub(positive).mul(alpha.clone().reshape([1, c, 1])))
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            [flat(y), flat(x.grad(&grads).unwrap()), flat(alpha.grad(&grads).unwrap())]
        };
        let (ours, reference) = (run(true), run(false));
        for (what, (a, b)) in ["output", "input gradient", "alpha gradient"].iter().zip(ours.into_iter().zip(reference)) {
            let error = largest_difference(a, b);
            assert!(error < 1e-5, "{what}: {error}");
        }
    }

    /// Other backends, `VISAGE_CONV=burn` and empty inputs leave the caller
    /// to compose the ops.
    #[test]
    fn declines_where_it_does_not_apply() {
        let device = Default::default();
        let x = Tensor::<Ad, 3>::zeros([2, 3, 4], &device);
        let v = Tensor::<Ad, 1>::ones([3], &device);
        assert!(with_conv_path(ConvPath::Burn, || batch_norm_train(&x, &v, &v, 1e-5).is_none() && prelu(&x, &v).is_none()));
        let plain = Tensor::<Flex, 3>::zeros([2, 3, 4], &device);
        let pv = Tensor::<Flex, 1>::ones([3], &device);
        assert!(batch_norm_train(&plain, &pv, &pv, 1e-5).is_none() && prelu(&plain, &pv).is_none());
        let empty = Tensor::<Ad, 3>::zeros([2, 3, 0], &device);
        assert!(batch_norm_train(&empty, &v, &v, 1e-5).is_none() && prelu(&empty, &v).is_none());
    }
}
