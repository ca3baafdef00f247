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
    let (x, gamma, beta) = (to_primitive(x), to_primitive(gamma), to_primitive(beta));
    let (output, statistics) = batch_norm_autodiff(x, gamma, beta, [batch, channels, length], epsilon as f32);
    Some((from_primitive(output), statistics))
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
    let output = prelu_autodiff(to_primitive(x), to_primitive(alpha), [batch, channels, length]);
    Some(from_primitive(output))
}

/// Training-mode BatchNorm followed by PReLU (`prelu(batch_norm(x))`, the
/// `BN → PReLU` of IResNet blocks and MobileFaceNet's conv blocks) as one
/// custom autodiff op: the BatchNorm output is never stored; the backward
/// pass recomputes it from `x` while it takes the sums. Same conditions as
/// [`batch_norm_train`].
pub fn batch_norm_prelu_train<B: Backend>(
    x: &Tensor<B, 3>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    alpha: &Tensor<B, 1>,
    epsilon: f64,
) -> Option<(Tensor<B, 3>, BatchStatistics)> {
    if !runs_here::<B>([x.dtype(), gamma.dtype(), beta.dtype()]) || alpha.dtype() != DType::F32 {
        return None;
    }
    let [batch, channels, length] = x.dims();
    if batch * length == 0 || gamma.dims()[0] != channels || beta.dims()[0] != channels || alpha.dims()[0] != channels {
        return None;
    }
    let parameters = [to_primitive(gamma), to_primitive(beta), to_primitive(alpha)];
    let (output, statistics) = batch_norm_prelu_autodiff(to_primitive(x), parameters, [batch, channels, length], epsilon as f32);
    Some((from_primitive(output), statistics))
}

fn runs_here<B: Backend>(dtypes: [DType; 3]) -> bool {
    TypeId::of::<B>() == TypeId::of::<Autodiff<Flex>>() && dtypes.iter().all(|d| *d == DType::F32) && conv_path() == ConvPath::Kernels
}

/// `tensor`'s primitive on `Autodiff<Flex>`, which the caller has checked `B` is.
fn to_primitive<B: Backend, const D: usize>(tensor: &Tensor<B, D>) -> AutodiffFlexTensor {
    concrete::<B, Autodiff<Flex>, D>(tensor.clone()).into_primitive().tensor()
}

/// An `Autodiff<Flex>` result as a tensor of `B` (which is `Autodiff<Flex>`).
fn from_primitive<B: Backend>(output: AutodiffFlexTensor) -> Tensor<B, 3> {
    concrete::<Autodiff<Flex>, B, 3>(Tensor::from_primitive(TensorPrimitive::Float(output)))
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

// ------------------------------------------------------------- row loops

/// The loops over one row, written with 16 independent partial sums so that
/// the compiler vectorises the reductions (one running f32 sum cannot be
/// reordered), and compiled twice: for the baseline CPU and with AVX2 + FMA,
/// chosen at run time.
mod rows {
    /// Runs `$body` (a block using the row arguments) through an AVX2 + FMA
    /// copy when the CPU has both.
    macro_rules! dispatch {
        (fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
            pub(super) fn $name($($arg: $ty),*) -> $ret {
                #[inline(always)]
                fn generic($($arg: $ty),*) -> $ret $body
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn wide($($arg: $ty),*) -> $ret {
                        generic($($arg),*)
                    }
                    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                        // SAFETY: the CPU has the features `wide` is compiled for.
                        return unsafe { wide($($arg),*) };
                    }
                }
                generic($($arg),*)
            }
        };
    }

    const LANES: usize = 16;

    fn reduce(lanes: [f32; LANES]) -> f64 {
        lanes.iter().map(|v| *v as f64).sum()
    }

    dispatch! {
        fn sum(x: &[f32]) -> f64 {
            let mut acc = [0.0f32; LANES];
            let blocks = x.chunks_exact(LANES);
            let tail: f32 = blocks.remainder().iter().sum();
            for block in blocks {
                for i in 0..LANES {
                    acc[i] += block[i];
                }
            }
            reduce(acc) + tail as f64
        }
    }

    dispatch! {
        fn squared_deviations(x: &[f32], mean: f32) -> f64 {
            let mut acc = [0.0f32; LANES];
            let blocks = x.chunks_exact(LANES);
            let tail: f32 = blocks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
            for block in blocks {
                for i in 0..LANES {
                    let d = block[i] - mean;
                    acc[i] += d * d;
                }
            }
            reduce(acc) + tail as f64
        }
    }

    dispatch! {
        fn affine(x: &[f32], scale: f32, shift: f32, out: &mut [f32]) -> () {
            for (o, v) in out.iter_mut().zip(x) {
                *o = v * scale + shift;
            }
        }
    }

    dispatch! {
        fn sum_and_centred_dot(dy: &[f32], x: &[f32], mean: f32) -> (f64, f64) {
            let (mut sums, mut dots) = ([0.0f32; LANES], [0.0f32; LANES]);
            let (g_blocks, x_blocks) = (dy.chunks_exact(LANES), x.chunks_exact(LANES));
            let (mut tail_sum, mut tail_dot) = (0.0f32, 0.0f32);
            for (g, v) in g_blocks.remainder().iter().zip(x_blocks.remainder()) {
                tail_sum += g;
                tail_dot += g * (v - mean);
            }
            for (g, v) in g_blocks.zip(x_blocks) {
                for i in 0..LANES {
                    sums[i] += g[i];
                    dots[i] += g[i] * (v[i] - mean);
                }
            }
            (reduce(sums) + tail_sum as f64, reduce(dots) + tail_dot as f64)
        }
    }

    dispatch! {
        fn batch_norm_input_grad(dy: &[f32], x: &[f32], c: [f32; 4], out: &mut [f32]) -> () {
            // c = [γ·inv_std, mean(∂y), mean, inv_std · mean(∂y·x̂)]
            let [scale, mean_dy, mean, slope] = c;
            for ((o, g), v) in out.iter_mut().zip(dy).zip(x) {
                *o = scale * (g - mean_dy - (v - mean) * slope);
            }
        }
    }

    dispatch! {
        fn prelu(x: &[f32], alpha: f32, out: &mut [f32]) -> () {
            for (o, v) in out.iter_mut().zip(x) {
                *o = if *v > 0.0 { *v } else { alpha * v };
            }
        }
    }

    dispatch! {
        fn prelu_input_grad(dy: &[f32], x: &[f32], alpha: f32, out: &mut [f32]) -> () {
            for ((o, g), v) in out.iter_mut().zip(dy).zip(x) {
                *o = if *v > 0.0 { *g } else { alpha * g };
            }
        }
    }

    dispatch! {
        fn batch_norm_prelu(x: &[f32], c: [f32; 3], out: &mut [f32]) -> () {
            // c = [scale, shift, α]
            let [scale, shift, alpha] = c;
            for (o, v) in out.iter_mut().zip(x) {
                let y = v * scale + shift;
                *o = if y > 0.0 { y } else { alpha * y };
            }
        }
    }

    dispatch! {
        fn batch_norm_prelu_sums(dz: &[f32], x: &[f32], c: [f32; 4]) -> (f64, f64, f64) {
            // c = [scale, shift, α, mean]: Σ∂y, Σ∂y·(x − μ), Σ∂z·min(y, 0)
            let [scale, shift, alpha, mean] = c;
            let (mut sums, mut dots, mut slopes) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
            let (g_blocks, x_blocks) = (dz.chunks_exact(LANES), x.chunks_exact(LANES));
            let (mut tail_sum, mut tail_dot, mut tail_slope) = (0.0f32, 0.0f32, 0.0f32);
            for (g, v) in g_blocks.remainder().iter().zip(x_blocks.remainder()) {
                let y = v * scale + shift;
                let dy = if y > 0.0 { *g } else { alpha * g };
                tail_sum += dy;
                tail_dot += dy * (v - mean);
                tail_slope += g * y.min(0.0);
            }
            for (g, v) in g_blocks.zip(x_blocks) {
                for i in 0..LANES {
                    let y = v[i] * scale + shift;
                    let dy = if y > 0.0 { g[i] } else { alpha * g[i] };
                    sums[i] += dy;
                    dots[i] += dy * (v[i] - mean);
                    slopes[i] += g[i] * y.min(0.0);
                }
            }
            (reduce(sums) + tail_sum as f64, reduce(dots) + tail_dot as f64, reduce(slopes) + tail_slope as f64)
        }
    }

    dispatch! {
        fn batch_norm_prelu_input_grad(dz: &[f32], x: &[f32], c: [f32; 6], out: &mut [f32]) -> () {
            // c = [scale, shift, α, mean(∂y), mean, inv_std · mean(∂y·x̂)]
            let [scale, shift, alpha, mean_dy, mean, slope] = c;
            for ((o, g), v) in out.iter_mut().zip(dz).zip(x) {
                let y = v * scale + shift;
                let dy = if y > 0.0 { *g } else { alpha * g };
                *o = scale * (dy - mean_dy - (v - mean) * slope);
            }
        }
    }

    dispatch! {
        fn negative_dot(dy: &[f32], x: &[f32]) -> f64 {
            let mut acc = [0.0f32; LANES];
            let (g_blocks, x_blocks) = (dy.chunks_exact(LANES), x.chunks_exact(LANES));
            let tail: f32 = g_blocks.remainder().iter().zip(x_blocks.remainder()).map(|(g, v)| g * v.min(0.0)).sum();
            for (g, v) in g_blocks.zip(x_blocks) {
                for i in 0..LANES {
                    acc[i] += g[i] * v[i].min(0.0);
                }
            }
            reduce(acc) + tail as f64
        }
    }
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
                    let (s, d) = rows::sum_and_centred_dot(&dy[start..start + length], &x[start..start + length], mean[c]);
                    sum += s;
                    dot += d;
                }
                (sum, dot * inv_std[c] as f64)
            })
            .collect();
        if let Some(node) = node_x {
            let mut dx = vec![0.0f32; dy.len()];
            dx.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
                let c = row % channels;
                let start = row * length;
                let (sum, dot) = sums[c];
                let (mean_dy, mean_dot) = ((sum / count) as f32, (dot / count) as f32);
                let constants = [gamma[c] * inv_std[c], mean_dy, mean[c], inv_std[c] * mean_dot];
                rows::batch_norm_input_grad(&dy[start..start + length], &x[start..start + length], constants, out);
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

/// The batch statistics of `x` and `1/√(σ² + ε)` per channel.
fn batch_statistics(x: &[f32], shape: [usize; 3], epsilon: f32) -> (BatchStatistics, Vec<f32>) {
    let [batch, channels, length] = shape;
    let count = (batch * length) as f64;
    let channel_rows = |c: usize| (0..batch).map(move |n| (n * channels + c) * length);
    let statistics: Vec<(f32, f32)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = channel_rows(c).map(|start| rows::sum(&x[start..start + length])).sum();
            let mean = (sum / count) as f32;
            let squares: f64 = channel_rows(c).map(|start| rows::squared_deviations(&x[start..start + length], mean)).sum();
            (mean, (squares / count) as f32)
        })
        .collect();
    let inv_std: Vec<f32> = statistics.iter().map(|(_, var)| 1.0 / (var + epsilon).sqrt()).collect();
    let statistics = BatchStatistics { mean: statistics.iter().map(|s| s.0).collect(), variance: statistics.iter().map(|s| s.1).collect() };
    (statistics, inv_std)
}

/// The forward pass: output, batch statistics and `1/√(σ² + ε)`.
fn batch_norm_values(x: &[f32], gamma: &[f32], beta: &[f32], shape: [usize; 3], epsilon: f32) -> (Vec<f32>, BatchStatistics, Vec<f32>) {
    let [_, channels, length] = shape;
    let (statistics, inv_std) = batch_statistics(x, shape, epsilon);
    let mut output = vec![0.0f32; x.len()];
    output.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
        let c = row % channels;
        let (scale, mean) = (gamma[c] * inv_std[c], statistics.mean[c]);
        rows::affine(&x[row * length..(row + 1) * length], scale, beta[c] - mean * scale, out);
    });
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

// ---------------------------------------------------- BatchNorm + PReLU

/// What the fused backward step keeps: the input's checkpoint, γ, α, the
/// batch mean, `1/√(σ² + ε)` and β's shift per channel, and the shape.
#[derive(Debug)]
struct BatchNormPreluBackward;

/// Per channel: γ, α, mean, 1/√(σ² + ε), β.
type ChannelConstants = [Vec<f32>; 5];

impl Backward<Flex, 4> for BatchNormPreluBackward {
    type State = (NodeId, ChannelConstants, [usize; 3]);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta, node_alpha] = ops.parents;
        let output_grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x_state, [gamma, alpha, mean, inv_std, beta], shape) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state).to_contiguous();
        let (dz, x) = (output_grad.storage::<f32>(), x.storage::<f32>());
        let [batch, channels, length] = shape;
        let count = (batch * length) as f64;
        let scale: Vec<f32> = (0..channels).map(|c| gamma[c] * inv_std[c]).collect();
        let shift: Vec<f32> = (0..channels).map(|c| beta[c] - mean[c] * scale[c]).collect();
        // Σ∂y, Σ∂y·x̂ and Σ∂z·min(y, 0) per channel (y, ∂y recomputed).
        let sums: Vec<(f64, f64, f64)> = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mut sum, mut dot, mut slope) = (0.0f64, 0.0f64, 0.0f64);
                for n in 0..batch {
                    let start = (n * channels + c) * length;
                    let constants = [scale[c], shift[c], alpha[c], mean[c]];
                    let (s, d, a) = rows::batch_norm_prelu_sums(&dz[start..start + length], &x[start..start + length], constants);
                    sum += s;
                    dot += d;
                    slope += a;
                }
                (sum, dot * inv_std[c] as f64, slope)
            })
            .collect();
        if let Some(node) = node_x {
            let mut dx = vec![0.0f32; dz.len()];
            dx.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
                let c = row % channels;
                let start = row * length;
                let (sum, dot, _) = sums[c];
                let constants = [scale[c], shift[c], alpha[c], (sum / count) as f32, mean[c], inv_std[c] * (dot / count) as f32];
                rows::batch_norm_prelu_input_grad(&dz[start..start + length], &x[start..start + length], constants, out);
            });
            grads.register::<Flex>(node.id, flex_tensor(dx, &shape));
        }
        let per_channel = |f: fn(&(f64, f64, f64)) -> f64| flex_tensor(sums.iter().map(|s| f(s) as f32).collect(), &[channels]);
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, per_channel(|s| s.1));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, per_channel(|s| s.0));
        }
        if let Some(node) = node_alpha {
            grads.register::<Flex>(node.id, per_channel(|s| s.2));
        }
    }
}

fn batch_norm_prelu_autodiff(
    x: AutodiffFlexTensor,
    parameters: [AutodiffFlexTensor; 3],
    shape: [usize; 3],
    epsilon: f32,
) -> (AutodiffFlexTensor, BatchStatistics) {
    let [gamma, beta, alpha] = parameters;
    let x_values = x.primitive.clone().to_contiguous();
    let (gamma_values, beta_values, alpha_values) = (values(&gamma.primitive), values(&beta.primitive), values(&alpha.primitive));
    let (statistics, inv_std) = batch_statistics(x_values.storage::<f32>(), shape, epsilon);
    let [_, channels, length] = shape;
    let mut output = vec![0.0f32; x_values.storage::<f32>().len()];
    let x_slice = x_values.storage::<f32>();
    output.par_chunks_mut(length).enumerate().for_each(|(row, out)| {
        let c = row % channels;
        let scale = gamma_values[c] * inv_std[c];
        let constants = [scale, beta_values[c] - statistics.mean[c] * scale, alpha_values[c]];
        rows::batch_norm_prelu(&x_slice[row * length..(row + 1) * length], constants, out);
    });
    let output = flex_tensor(output, &shape);
    let parents = [x.node.clone(), gamma.node.clone(), beta.node.clone(), alpha.node.clone()];
    let tensor = match BatchNormPreluBackward.prepare::<NoCheckpointing>(parents).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            prep.finish((x_state, [gamma_values, alpha_values, statistics.mean.clone(), inv_std, beta_values], shape), output)
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
                let start = row * length;
                rows::prelu_input_grad(&dy[start..start + length], &x[start..start + length], alpha[row % channels], out);
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
                        sum += rows::negative_dot(&dy[start..start + length], &x[start..start + length]);
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
        rows::prelu(&x[row * length..(row + 1) * length], alpha[row % channels], out);
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

    /// The fused BatchNorm + PReLU op (it must run) against BatchNorm then
    /// PReLU composed from tensor ops: output, ∂x, ∂γ, ∂β, ∂α within 1e-5 of
    /// the largest entry, the statistics equal to the BatchNorm op's.
    #[test]
    fn batch_norm_prelu_matches_composed_ops() {
        let device = Default::default();
        let (n, c, l) = (4, 6, 29);
        let x0 = Tensor::<Ad, 3>::random([n, c, l], Distribution::Normal(0.3, 1.5), &device);
        let r = Tensor::<Ad, 3>::random([n, c, l], Distribution::Normal(0.0, 1.0), &device);
        let gamma0 = Tensor::<Ad, 1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
        let beta0 = Tensor::<Ad, 1>::random([c], Distribution::Uniform(-0.5, 0.5), &device);
        let alpha0 = Tensor::<Ad, 1>::random([c], Distribution::Uniform(-0.3, 0.6), &device);
        let eps = 1e-5;
        let run = |fused: bool| {
            let (x, gamma, beta, alpha) =
                (x0.clone().require_grad(), gamma0.clone().require_grad(), beta0.clone().require_grad(), alpha0.clone().require_grad());
            let z = if fused {
                let (z, statistics) = batch_norm_prelu_train(&x, &gamma, &beta, &alpha, eps).expect("the fused op runs on Autodiff<Flex>");
                let (_, alone) = batch_norm_train(&x0.clone(), &gamma0, &beta0, eps).expect("runs");
                assert_eq!((statistics.mean, statistics.variance), (alone.mean, alone.variance));
                z
            } else {
                let count = (n * l) as f64;
                let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(count);
                let centred = x.clone().sub(mean);
                let var = centred.clone().square().sum_dim(2).sum_dim(0).div_scalar(count);
                let y = centred.div(var.add_scalar(eps).sqrt()).mul(gamma.clone().reshape([1, c, 1])).add(beta.clone().reshape([1, c, 1]));
                let positive = burn::tensor::activation::relu(y.clone());
                positive.clone().add(y.sub(positive).mul(alpha.clone().reshape([1, c, 1])))
            };
            let grads = (z.clone() * r.clone()).sum().backward();
            [
                flat(z),
                flat(x.grad(&grads).unwrap()),
                flat(gamma.grad(&grads).unwrap()),
                flat(beta.grad(&grads).unwrap()),
                flat(alpha.grad(&grads).unwrap()),
            ]
        };
        let (ours, reference) = (run(true), run(false));
        for (what, (a, b)) in
            ["output", "input gradient", "gamma gradient", "beta gradient", "alpha gradient"].iter().zip(ours.into_iter().zip(reference))
        {
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
        assert!(with_conv_path(ConvPath::Burn, || batch_norm_train(&x, &v, &v, 1e-5).is_none()
            && prelu(&x, &v).is_none()
            && batch_norm_prelu_train(&x, &v, &v, &v, 1e-5).is_none()));
        let plain = Tensor::<Flex, 3>::zeros([2, 3, 4], &device);
        let pv = Tensor::<Flex, 1>::ones([3], &device);
        assert!(batch_norm_train(&plain, &pv, &pv, 1e-5).is_none() && prelu(&plain, &pv).is_none());
        let empty = Tensor::<Ad, 3>::zeros([2, 3, 0], &device);
        assert!(batch_norm_train(&empty, &v, &v, 1e-5).is_none() && prelu(&empty, &v).is_none());
    }
}
