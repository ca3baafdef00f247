//! Parameter and FLOP counts, read from the built module (layer shapes,
//! strides, paddings), never from a table.
//!
//! FLOPs follow the convention of insightface's published numbers:
//! `arcface_torch/flops.py` runs ptflops (PyTorch backend) and prints its
//! count as "GFLOPs". That count is the multiply-accumulates of convolutions
//! and FC layers (one per weight per output position) **plus** one per
//! BatchNorm output element (two when the BN is affine), one per PReLU output
//! element and one per bias element. Only this total reproduces every
//! published figure: IResNet-200 is 23.476 G with BN/PReLU (published 23.5)
//! but 23.419 G of MACs alone, MobileFaceNet 0.449 G (published
//! "mobilefacenet-0.45G") against 0.438 G. So [`Cost::flops`] is the ptflops
//! total and [`Cost::macs`] the conv + FC part, both reported.
//! (`scripts/reference/backbones_reference.py` computes both with PyTorch
//! hooks; `tests/fixtures/backbone_counts.json` holds its numbers.)
//! Parameter-free layers (AdaFace's stride-only `MaxPool2d(1, s)` shortcut,
//! dropout, flatten, residual additions) count zero here; ptflops would count
//! the pooling's input elements, which no published figure includes.
//!
//! Parameters are counted as PyTorch's `sum(p.numel() for p in
//! model.parameters())`: every learnable or fixed weight/bias with a
//! state-dict counterpart (insightface's frozen feature-BN γ included,
//! AdaFace's affine-free feature BN excluded), BatchNorm running statistics
//! excluded.

use std::ops::Add;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A feature map's shape for one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape3 {
    /// C: channels.
    pub channels: usize,
    /// H: rows, in pixels of the feature map.
    pub height: usize,
    /// W: columns, in pixels of the feature map.
    pub width: usize,
}

impl Shape3 {
    /// C · H · W.
    pub fn elements(&self) -> u64 {
        (self.channels * self.height * self.width) as u64
    }
}

/// Work of one forward pass of one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Multiply-accumulates of convolutions and fully connected layers.
    pub macs: u64,
    /// Bias additions of convolutions and fully connected layers.
    pub bias_elements: u64,
    /// Output elements of all BatchNorm layers.
    pub norm_elements: u64,
    /// Output elements of the affine BatchNorm layers (their scale and shift
    /// count once more in ptflops' convention).
    pub affine_norm_elements: u64,
    /// Output elements of PReLU activations.
    pub activation_elements: u64,
}

impl Cost {
    /// ptflops' total, the number insightface publishes as "FLOPs" (see the module docs).
    pub fn flops(&self) -> u64 {
        self.macs + self.bias_elements + self.norm_elements + self.affine_norm_elements + self.activation_elements
    }

    /// An affine BatchNorm (learned or fixed scale and shift) with this output.
    pub fn batch_norm(shape: Shape3) -> Self {
        Self { norm_elements: shape.elements(), affine_norm_elements: shape.elements(), ..Self::default() }
    }

    /// A BatchNorm without scale and shift (`affine=False`) with this output.
    pub fn batch_norm_without_affine(shape: Shape3) -> Self {
        Self { norm_elements: shape.elements(), ..Self::default() }
    }

    /// A PReLU with this output: one FLOP per element.
    pub fn prelu(shape: Shape3) -> Self {
        Self { activation_elements: shape.elements(), ..Self::default() }
    }
}

impl Add for Cost {
    type Output = Cost;

    fn add(self, other: Cost) -> Cost {
        Cost {
            macs: self.macs + other.macs,
            bias_elements: self.bias_elements + other.bias_elements,
            affine_norm_elements: self.affine_norm_elements + other.affine_norm_elements,
            norm_elements: self.norm_elements + other.norm_elements,
            activation_elements: self.activation_elements + other.activation_elements,
        }
    }
}

/// MACs of a (grouped) convolution on `input` and its output shape:
/// out_h · out_w · out_channels · (in_channels / groups) · k_h · k_w.
pub fn conv_cost<B: Backend>(conv: &Conv2d<B>, input: Shape3) -> (Cost, Shape3) {
    let [channels_out, channels_per_group, kernel_h, kernel_w] = conv.weight.lazy_shape().dims::<4>();
    let (pad_top, pad_left, pad_bottom, pad_right) = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => (top, left, bottom, right),
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Same => (kernel_h / 2, kernel_w / 2, (kernel_h - 1) / 2, (kernel_w - 1) / 2),
    };
    let out_size = |size: usize, pad: usize, kernel: usize, stride: usize, dilation: usize| (size + pad - dilation * (kernel - 1) - 1) / stride + 1;
    let output = Shape3 {
        channels: channels_out,
        height: out_size(input.height, pad_top + pad_bottom, kernel_h, conv.stride[0], conv.dilation[0]),
        width: out_size(input.width, pad_left + pad_right, kernel_w, conv.stride[1], conv.dilation[1]),
    };
    let per_output = (channels_per_group * kernel_h * kernel_w) as u64;
    let bias_elements = if conv.bias.is_some() { output.elements() } else { 0 };
    (Cost { macs: output.elements() * per_output, bias_elements, ..Cost::default() }, output)
}

/// A fully connected layer on one sample: in · out MACs, out bias additions.
pub fn linear_cost<B: Backend>(linear: &Linear<B>) -> Cost {
    let [d_in, d_out] = linear.weight.lazy_shape().dims::<2>();
    let bias_elements = if linear.bias.is_some() { d_out as u64 } else { 0 };
    Cost { macs: (d_in * d_out) as u64, bias_elements, ..Cost::default() }
}

/// Parameter count of `module`, PyTorch's convention (see the module docs):
/// elements of every float parameter whose burn path `torch_key` maps to a
/// state-dict key, BatchNorm running statistics excluded. Reads shapes only,
/// so a freshly built (lazily initialised) model is not materialised.
pub fn count_params<B: Backend, M: Module<B>>(module: &M, torch_key: impl Fn(&str) -> Option<String>) -> u64 {
    struct Counter<F> {
        path: Vec<String>,
        torch_key: F,
        total: u64,
    }
    impl<B: Backend, F: Fn(&str) -> Option<String>> ModuleVisitor<B> for Counter<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let leaf = self.path.last().map(String::as_str).unwrap_or("");
            if matches!(leaf, "running_mean" | "running_var") {
                return;
            }
            if (self.torch_key)(&self.path.join(".")).is_some() {
                self.total += param.lazy_shape().num_elements() as u64;
            }
        }
    }
    let mut counter = Counter { path: Vec::new(), torch_key, total: 0 };
    module.visit(&mut counter);
    counter.total
}
