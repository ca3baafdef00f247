//! BatchNorm and PReLU forward passes written for speed on the CPU backend,
//! with the same results as burn's layers (and PyTorch's running variance).
//!
//! Why not burn's own `BatchNorm::forward` / `PRelu::forward`: both broadcast
//! a `[1, C, 1, 1]` per-channel tensor against `[N, C, H, W]`, and burn-flex
//! runs that broadcast (and its autodiff backward) through a scalar strided
//! iterator; burn's BatchNorm also transposes the activations twice to take
//! its statistics. Profiling an IResNet training step put 56 % of the time
//! there (docs/benchmarks.md). Here the activations are viewed as `[N, C, L]`
//! and every per-channel tensor is materialised as `[N, C, 1]` (N × C values,
//! nothing next to N × C × L): flex then takes its SIMD "one scalar per row"
//! path for every broadcast, and every other op is on same-shaped contiguous
//! tensors. The ops stay generic burn tensor ops, so autodiff derives the
//! backward pass and every backend (CUDA included) runs the same code —
//! except training on the CPU backend (`Autodiff<Flex>`), where
//! `visage_kernels::channel` runs each of the two as one custom autodiff op
//! with hand-written passes (`VISAGE_CONV=burn` turns that off; the tests
//! below compare both against burn's layers).
//!
//! One deliberate difference from burn: the running variance is updated with
//! the *unbiased* batch variance (× n/(n−1)), as PyTorch's `BatchNorm` does, so
//! running statistics trained here mean what insightface/MagFace/AdaFace
//! checkpoints mean by them. Normalisation uses the biased variance, as both do.

use burn::nn::{BatchNorm, PRelu};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `[N, C, ...]` viewed as `[N, C, L]` (a free reshape of contiguous data).
fn rows<B: Backend, const D: usize>(input: Tensor<B, D>) -> (Tensor<B, 3>, [usize; D]) {
    let dims = input.dims();
    let length = dims[2..].iter().product::<usize>();
    (input.reshape([dims[0], dims[1], length]), dims)
}

/// A per-channel vector `[C]` laid out as `[N, C, 1]`, one copy per sample,
/// so broadcasting it along `L` is flex's fast per-row-scalar pattern.
fn per_row<B: Backend>(channel_values: Tensor<B, 3>, batch: usize) -> Tensor<B, 3> {
    channel_values.repeat_dim(0, batch)
}

/// The output of `norm` for `input` (`[N, C]` or `[N, C, H, W]`): batch
/// statistics (and a running-statistics update) when the backend records
/// gradients, running statistics otherwise — burn's rule.
pub fn batch_norm_forward<B: Backend, const D: usize>(norm: &BatchNorm<B>, input: Tensor<B, D>) -> Tensor<B, D> {
    assert!(D >= 2, "BatchNorm needs [N, C, ...], got a {D}-d tensor");
    if B::ad_enabled(&input.device()) {
        batch_norm_train(norm, input)
    } else {
        batch_norm_inference(norm, input)
    }
}

/// Normalise with the running statistics: `x·scale + shift` per channel.
fn batch_norm_inference<B: Backend, const D: usize>(norm: &BatchNorm<B>, input: Tensor<B, D>) -> Tensor<B, D> {
    let device = input.device();
    let (x, dims) = rows(input);
    let (batch, channels) = (dims[0], dims[1]);
    let mean = norm.running_mean.value().to_device(&device);
    let var = norm.running_var.value().to_device(&device);
    let scale = norm.gamma.val().div(var.add_scalar(norm.epsilon).sqrt());
    let shift = norm.beta.val().sub(mean.mul(scale.clone()));
    let scale = per_row(scale.reshape([1, channels, 1]), batch);
    let shift = per_row(shift.reshape([1, channels, 1]), batch);
    x.mul(scale).add(shift).reshape(dims)
}

/// Normalise with the batch's statistics and fold them into the running ones.
fn batch_norm_train<B: Backend, const D: usize>(norm: &BatchNorm<B>, input: Tensor<B, D>) -> Tensor<B, D> {
    let device = input.device();
    let (x, dims) = rows(input);
    let (batch, channels, length) = (dims[0], dims[1], x.dims()[2]);
    let count = (batch * length) as f64;

    // On the CPU backend's autodiff: one custom op with its own passes.
    if let Some((output, statistics)) = visage_kernels::channel::batch_norm_train(&x, &norm.gamma.val(), &norm.beta.val(), norm.epsilon) {
        update_running_from(norm, &statistics, count, &device);
        return output.reshape(dims);
    }

    let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(count);
    let centred = x.sub(per_row(mean.clone(), batch));
    let var = centred.clone().square().sum_dim(2).sum_dim(0).div_scalar(count);
    let scale = norm.gamma.val().reshape([1, channels, 1]).div(var.clone().add_scalar(norm.epsilon).sqrt());
    let output = centred.mul(per_row(scale, batch)).add(per_row(norm.beta.val().reshape([1, channels, 1]), batch));

    update_running(norm, mean.detach().reshape([channels]), var.detach().reshape([channels]), count, &device);
    output.reshape(dims)
}

/// `prelu(batch_norm(input))`: under autodiff on the CPU backend one fused
/// op (`visage_kernels::channel::batch_norm_prelu_train`, the BatchNorm
/// output never stored), elsewhere [`batch_norm_forward`] then
/// [`prelu_forward`]. Running statistics are updated as by
/// [`batch_norm_forward`].
pub fn batch_norm_prelu_forward<B: Backend, const D: usize>(norm: &BatchNorm<B>, prelu: &PRelu<B>, input: Tensor<B, D>) -> Tensor<B, D> {
    assert!(D >= 2, "BatchNorm needs [N, C, ...], got a {D}-d tensor");
    if B::ad_enabled(&input.device()) {
        let device = input.device();
        let (x, dims) = rows(input.clone());
        let (batch, channels, length) = (dims[0], dims[1], x.dims()[2]);
        let alpha = channel_slopes(prelu, channels);
        if let Some((output, statistics)) =
            visage_kernels::channel::batch_norm_prelu_train(&x, &norm.gamma.val(), &norm.beta.val(), &alpha, norm.epsilon)
        {
            update_running_from(norm, &statistics, (batch * length) as f64, &device);
            return output.reshape(dims);
        }
    }
    prelu_forward(prelu, batch_norm_forward(norm, input))
}

/// [`update_running`] with the statistics a `visage_kernels::channel` op returned.
fn update_running_from<B: Backend>(norm: &BatchNorm<B>, statistics: &visage_kernels::channel::BatchStatistics, count: f64, device: &B::Device) {
    let mean = Tensor::<B, 1>::from_floats(statistics.mean.as_slice(), device);
    let var = Tensor::<B, 1>::from_floats(statistics.variance.as_slice(), device);
    update_running(norm, mean, var, count, device);
}

/// Folds a batch's per-channel mean and biased variance (`[C]`, detached)
/// into `norm`'s running statistics, PyTorch's way (momentum; the unbiased
/// variance).
fn update_running<B: Backend>(norm: &BatchNorm<B>, mean: Tensor<B, 1>, var: Tensor<B, 1>, count: f64, device: &B::Device) {
    let momentum = norm.momentum;
    let unbiased = if count > 1.0 { count / (count - 1.0) } else { 1.0 };
    let running_mean = norm.running_mean.value_sync().to_device(device);
    let running_var = norm.running_var.value_sync().to_device(device);
    norm.running_mean.update(running_mean.mul_scalar(1.0 - momentum).add(mean.mul_scalar(momentum)).detach());
    norm.running_var.update(running_var.mul_scalar(1.0 - momentum).add(var.mul_scalar(momentum * unbiased)).detach());
}

/// `prelu`'s slopes as one per channel (`[C]`), a single shared slope repeated.
fn channel_slopes<B: Backend>(prelu: &PRelu<B>, channels: usize) -> Tensor<B, 1> {
    let alpha = prelu.alpha.val();
    if alpha.dims()[0] == 1 {
        alpha.repeat_dim(0, channels)
    } else {
        alpha
    }
}

/// `prelu(x) = max(x, 0) + α_c · min(x, 0)`, one slope per channel (or one
/// shared slope), as `nn.PReLU`.
pub fn prelu_forward<B: Backend, const D: usize>(prelu: &PRelu<B>, input: Tensor<B, D>) -> Tensor<B, D> {
    assert!(D >= 2, "PReLU needs [N, C, ...], got a {D}-d tensor");
    let (x, dims) = rows(input);
    let (batch, channels) = (dims[0], dims[1]);
    let alpha = channel_slopes(prelu, channels);
    if let Some(output) = visage_kernels::channel::prelu(&x, &alpha) {
        return output.reshape(dims);
    }
    let positive = relu(x.clone());
    let negative = x.sub(positive.clone());
    positive.add(negative.mul(per_row(alpha.reshape([1, channels, 1]), batch))).reshape(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::module::{AutodiffModule, Param};
    use burn::nn::{BatchNormConfig, PReluConfig};
    use burn::tensor::{Distribution, TensorData};
    use visage_backend::Cpu;

    type Ad = Autodiff<Cpu>;

    fn close(a: TensorData, b: TensorData, tolerance: f32, what: &str) {
        let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= tolerance * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
        }
    }

    fn random_norm(channels: usize, device: &burn::tensor::Device<Ad>) -> BatchNorm<Ad> {
        let mut norm = BatchNormConfig::new(channels).init::<Ad>(device);
        norm.gamma = Param::from_tensor(Tensor::random([channels], Distribution::Uniform(0.5, 1.5), device));
        norm.beta = Param::from_tensor(Tensor::random([channels], Distribution::Uniform(-0.5, 0.5), device));
        norm
    }

    /// Output, input gradient and γ/β gradients equal burn's BatchNorm on the
    /// same batch, and the running statistics follow PyTorch's update
    /// (worked out here from the batch by hand).
    #[test]
    fn batch_norm_matches_burn_and_pytorch_running_statistics() {
        let device = Default::default();
        let input = Tensor::<Ad, 4>::random([3, 5, 4, 6], Distribution::Normal(0.7, 2.0), &device);
        let weights = Tensor::<Ad, 4>::random([3, 5, 4, 6], Distribution::Normal(0.0, 1.0), &device);
        let ours_norm = random_norm(5, &device);
        let burn_norm = ours_norm.clone();

        let x_ours = input.clone().detach().require_grad();
        let x_burn = input.clone().detach().require_grad();
        let y_ours = batch_norm_forward(&ours_norm, x_ours.clone());
        let y_burn = burn_norm.forward(x_burn.clone());
        close(y_ours.clone().into_data(), y_burn.clone().into_data(), 1e-5, "output");

        let g_ours = (y_ours * weights.clone()).sum().backward();
        let g_burn = (y_burn * weights).sum().backward();
        close(x_ours.grad(&g_ours).unwrap().into_data(), x_burn.grad(&g_burn).unwrap().into_data(), 1e-4, "input grad");
        let gamma = |n: &BatchNorm<Ad>, g| n.gamma.val().grad(g).unwrap().into_data();
        let beta = |n: &BatchNorm<Ad>, g| n.beta.val().grad(g).unwrap().into_data();
        close(gamma(&ours_norm, &g_ours), gamma(&burn_norm, &g_burn), 1e-4, "gamma grad");
        close(beta(&ours_norm, &g_ours), beta(&burn_norm, &g_burn), 1e-4, "beta grad");

        // PyTorch: running = 0.9·running + 0.1·batch, with the unbiased variance.
        let values = input.into_data().to_vec::<f32>().unwrap();
        let (n, c, l) = (3usize, 5usize, 24usize);
        let mut expected_mean = Vec::new();
        let mut expected_var = Vec::new();
        for channel in 0..c {
            let xs: Vec<f64> = (0..n).flat_map(|s| (0..l).map(move |i| (s, i))).map(|(s, i)| values[(s * c + channel) * l + i] as f64).collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
            expected_mean.push((0.1 * mean) as f32);
            expected_var.push((0.9 + 0.1 * var) as f32);
        }
        close(ours_norm.running_mean.value().into_data(), TensorData::from(expected_mean.as_slice()), 1e-5, "running mean");
        close(ours_norm.running_var.value().into_data(), TensorData::from(expected_var.as_slice()), 1e-5, "running var");
    }

    /// Without autodiff: running statistics, as burn's inference forward; a
    /// 2-d `[N, C]` input (the embedding's BatchNorm1d) takes the same path.
    #[test]
    fn batch_norm_inference_matches_burn() {
        let device = Default::default();
        let mut norm = random_norm(4, &device).valid();
        norm.running_mean = burn::module::RunningState::new(Tensor::random([4], Distribution::Normal(0.0, 1.0), &device));
        norm.running_var = burn::module::RunningState::new(Tensor::random([4], Distribution::Uniform(0.5, 2.0), &device));
        let images = Tensor::<Cpu, 4>::random([2, 4, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        close(batch_norm_forward(&norm, images.clone()).into_data(), norm.forward(images).into_data(), 1e-5, "4-d");
        let rows = Tensor::<Cpu, 2>::random([6, 4], Distribution::Normal(0.0, 1.0), &device);
        close(batch_norm_forward(&norm, rows.clone()).into_data(), norm.forward(rows).into_data(), 1e-5, "2-d");
    }

    /// Output and gradients (input and slopes) equal burn's PReLU, for one
    /// slope per channel and for a single shared slope.
    #[test]
    fn prelu_matches_burn() {
        let device = Default::default();
        for parameters in [6, 1] {
            let mut prelu = PReluConfig::new().with_num_parameters(parameters).init::<Ad>(&device);
            prelu.alpha = Param::from_tensor(Tensor::random([parameters], Distribution::Uniform(-0.5, 0.8), &device));
            let input = Tensor::<Ad, 4>::random([2, 6, 3, 5], Distribution::Normal(0.0, 1.0), &device);
            let weights = Tensor::<Ad, 4>::random([2, 6, 3, 5], Distribution::Normal(0.0, 1.0), &device);
            let (x_ours, x_burn) = (input.clone().require_grad(), input.require_grad());
            let y_ours = prelu_forward(&prelu, x_ours.clone());
            let y_burn = prelu.forward(x_burn.clone());
            close(y_ours.clone().into_data(), y_burn.clone().into_data(), 1e-6, "output");
            let g_ours = (y_ours * weights.clone()).sum().backward();
            let alpha_ours = prelu.alpha.val().grad(&g_ours).unwrap().into_data();
            let g_burn = (y_burn * weights).sum().backward();
            let alpha_burn = prelu.alpha.val().grad(&g_burn).unwrap().into_data();
            close(x_ours.grad(&g_ours).unwrap().into_data(), x_burn.grad(&g_burn).unwrap().into_data(), 1e-5, "input grad");
            close(alpha_ours, alpha_burn, 1e-4, "alpha grad");
        }
    }
}
