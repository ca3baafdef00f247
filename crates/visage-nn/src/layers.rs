//! Constructors for the few layer shapes both backbones use, so each
//! architecture file reads like its layout table. All convolutions are
//! bias-free (a BatchNorm follows every one of them in both layouts).
//!
//! The BatchNorm and PReLU layers are burn's (so checkpoints keep burn's
//! parameter layout); their forward passes run through [`crate::channelwise`].

use burn::module::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, PRelu, PReluConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// BatchNorm epsilon of both reference layouts (PyTorch's default).
pub const BN_EPSILON: f64 = 1e-5;

/// PReLU's initial negative slope (PyTorch's default).
pub const PRELU_INIT: f64 = 0.25;

/// A bias-free `kernel × kernel` convolution with symmetric padding.
#[allow(clippy::too_many_arguments)]
pub fn conv<B: Backend>(
    channels_in: usize,
    channels_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    initializer: Initializer,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([channels_in, channels_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(initializer)
        .init(device)
}

/// `conv`'s forward pass through [`visage_kernels::conv2d`]: this crate's
/// CPU kernels on burn's flex backend (with and without autodiff), burn's own
/// conv2d everywhere else and under `VISAGE_CONV=burn`. The result is
/// `conv.forward(input)` (within f32 rounding, `visage-kernels`' tests);
/// padding other than the explicit symmetric kind [`conv`] builds goes to
/// `conv.forward` directly.
pub fn conv_forward<B: Backend>(conv: &Conv2d<B>, input: Tensor<B, 4>) -> Tensor<B, 4> {
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => visage_kernels::conv2d(
            input,
            conv.weight.val(),
            conv.bias.as_ref().map(|bias| bias.val()),
            ConvOptions::new(conv.stride, [top, left], conv.dilation, conv.groups),
        ),
        _ => conv.forward(input),
    }
}

/// BatchNorm with PyTorch's epsilon and momentum (weight 1, bias 0).
pub fn batch_norm<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(channels).with_epsilon(BN_EPSILON).init(device)
}

/// One PReLU slope per channel, as `nn.PReLU(channels)`.
pub fn prelu<B: Backend>(channels: usize, device: &B::Device) -> PRelu<B> {
    PReluConfig::new().with_num_parameters(channels).with_alpha(PRELU_INIT).init(device)
}

/// What a forward pass does at each BatchNorm and dropout layer.
///
/// Both architectures run every BatchNorm and dropout through a hook, so one
/// forward pass serves two purposes: [`Plain`] is burn's own behaviour (batch
/// statistics and live dropout on an autodiff backend, running statistics
/// otherwise), and a caller that optimises the *input* through a frozen
/// network (face synthesis, DeepInversion) supplies a hook that normalises
/// with the running statistics even under autodiff and records each layer's
/// batch statistics for a prior.
pub trait ForwardHook<B: Backend> {
    /// The output of `norm` for `input` (`[N, C]` or `[N, C, H, W]`).
    fn batch_norm<const D: usize>(&mut self, norm: &BatchNorm<B>, input: Tensor<B, D>) -> Tensor<B, D>;

    /// `prelu(batch_norm(input))`; [`Plain`] runs it as one fused op on the
    /// CPU backend's autodiff, a hook that watches its BatchNorms keeps this
    /// default.
    fn batch_norm_prelu<const D: usize>(&mut self, norm: &BatchNorm<B>, prelu: &PRelu<B>, input: Tensor<B, D>) -> Tensor<B, D> {
        crate::channelwise::prelu_forward(prelu, self.batch_norm(norm, input))
    }

    /// The output of `dropout` for `input`.
    fn dropout<const D: usize>(&mut self, dropout: &Dropout, input: Tensor<B, D>) -> Tensor<B, D> {
        dropout.forward(input)
    }
}

/// Batch statistics under autodiff, running statistics otherwise (burn's
/// rule), through [`crate::channelwise`]'s faster equivalent of burn's layer:
/// what [`crate::Backbone::forward`] uses.
pub struct Plain;

impl<B: Backend> ForwardHook<B> for Plain {
    fn batch_norm<const D: usize>(&mut self, norm: &BatchNorm<B>, input: Tensor<B, D>) -> Tensor<B, D> {
        crate::channelwise::batch_norm_forward(norm, input)
    }

    fn batch_norm_prelu<const D: usize>(&mut self, norm: &BatchNorm<B>, prelu: &PRelu<B>, input: Tensor<B, D>) -> Tensor<B, D> {
        crate::channelwise::batch_norm_prelu_forward(norm, prelu, input)
    }
}
