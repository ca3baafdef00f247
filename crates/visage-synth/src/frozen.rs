//! A frozen network's BatchNorms under autodiff, and the BatchNorm prior.

use burn::nn::{BatchNorm, Dropout};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use visage_nn::ForwardHook;

/// Runs every BatchNorm as in inference — `γ·(x − μ̂)/√(σ̂² + ε) + β` with
/// the running statistics — even on an autodiff backend, where burn's own
/// BatchNorm would normalise with the batch's statistics and update the
/// running ones. Dropout is the identity (eval mode).
///
/// For each BatchNorm over a 4-D input it also adds the layer's term of the
/// BatchNorm-statistics prior: `‖μ − μ̂‖₂ + ‖σ² − σ̂²‖₂` with `μ, σ²` the
/// per-channel mean and biased variance of the input over batch and space.
/// The feature BatchNorm1d (on `[N, E]`) takes no part in the prior: its
/// statistics are over many identities, which a batch of a few targets
/// cannot and should not match.
pub struct FrozenStatistics<B: Backend> {
    prior: Option<Tensor<B, 1>>,
    layers: usize,
}

impl<B: Backend> Default for FrozenStatistics<B> {
    fn default() -> Self {
        Self { prior: None, layers: 0 }
    }
}

impl<B: Backend> FrozenStatistics<B> {
    /// The prior summed over the spatial BatchNorm layers seen so far, and
    /// how many there were. `None` before any forward pass.
    pub fn prior_sum(&self) -> Option<(Tensor<B, 1>, usize)> {
        self.prior.clone().map(|sum| (sum, self.layers))
    }

    /// The prior averaged over layers, so its weight means the same for
    /// networks of different depth.
    pub fn prior_mean(&self) -> Option<Tensor<B, 1>> {
        self.prior.clone().map(|sum| sum / self.layers as f64)
    }
}

/// `‖μ − μ̂‖₂ + ‖σ² − σ̂²‖₂` of `input` (`[N, C, H, W]`) against the given
/// running statistics (`[C]`): one layer's term of the prior.
pub fn statistics_distance<B: Backend>(input: Tensor<B, 4>, running_mean: Tensor<B, 1>, running_var: Tensor<B, 1>) -> Tensor<B, 1> {
    let [n, c, h, w] = input.dims();
    let per_channel = input.swap_dims(0, 1).reshape([c, n * h * w]);
    let mean = per_channel.clone().mean_dim(1);
    let var = (per_channel - mean.clone()).powi_scalar(2).mean_dim(1);
    let distance = |a: Tensor<B, 2>, b: Tensor<B, 1>| (a.reshape([c]) - b).powi_scalar(2).sum().sqrt();
    distance(mean, running_mean) + distance(var, running_var)
}

impl<B: Backend> ForwardHook<B> for FrozenStatistics<B> {
    fn batch_norm<const D: usize>(&mut self, norm: &BatchNorm<B>, input: Tensor<B, D>) -> Tensor<B, D> {
        let dims = input.dims();
        let running_mean = norm.running_mean.value();
        let running_var = norm.running_var.value();
        if D == 4 {
            let spatial = input.clone().reshape([dims[0], dims[1], dims[2], dims[3]]);
            let term = statistics_distance(spatial, running_mean.clone(), running_var.clone());
            self.prior = Some(match self.prior.take() {
                Some(sum) => sum + term,
                None => term,
            });
            self.layers += 1;
        }
        let scale = norm.gamma.val() / (running_var + norm.epsilon).sqrt();
        let shift = norm.beta.val() - running_mean * scale.clone();
        let mut channel_shape = [1usize; D];
        channel_shape[1] = dims[1];
        input * scale.reshape(channel_shape) + shift.reshape(channel_shape)
    }

    fn dropout<const D: usize>(&mut self, _dropout: &Dropout, input: Tensor<B, D>) -> Tensor<B, D> {
        input
    }
}
