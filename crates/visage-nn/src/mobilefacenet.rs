//! MobileFaceNet in insightface `arcface_torch` `backbones/mobilefacenet.py`'s
//! layout (`mbf`: scale 2, blocks (1, 4, 6, 2); `mbf_large`: scale 4, blocks
//! (2, 8, 12, 4)).
//!
//! Layout for scale s (112 px input), every convolution bias-free:
//! 1. stem: ConvBlock(3 → 64s, 3×3, stride 2) — ConvBlock = conv → BN → PReLU;
//! 2. with `blocks[0]` = 1: ConvBlock(64s → 64s, 3×3, groups 64); otherwise a
//!    Residual of `blocks[0]` units with expansion 128;
//! 3. DepthWise(64s → 64s, stride 2, expansion 128), Residual(64s, `blocks[1]`, 128);
//! 4. DepthWise(64s → 128s, stride 2, expansion 256), Residual(128s, `blocks[2]`, 256);
//! 5. DepthWise(128s → 128s, stride 2, expansion 512), Residual(128s, `blocks[3]`, 256);
//! 6. conv_sep: ConvBlock(128s → 512, 1×1);
//! 7. GDC head: depthwise 7×7 conv → BN (a LinearBlock) → flatten →
//!    Linear(512 → E, no bias) → BatchNorm1d(E) (affine, trained).
//!
//! DepthWise(in → out, expansion g) is the inverted-residual bottleneck:
//! ConvBlock(in → g, 1×1) → ConvBlock(g → g, 3×3, groups g, stride) →
//! LinearBlock(g → out, 1×1) (conv → BN, no activation); Residual units are
//! stride-1 DepthWise(c → c) with the input added back. The expansion widths
//! do not scale with s.

use burn::module::{Initializer, Module};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, LinearConfig, PRelu};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::complexity::{conv_cost, linear_cost, Cost, Shape3};
use crate::error::NnError;
use crate::layers::{batch_norm, conv, conv_forward, prelu, ForwardHook, Plain};

/// The shape of a MobileFaceNet. [`MobileFaceNetConfig::mbf`] and
/// [`MobileFaceNetConfig::mbf_large`] are insightface's; the fields are
/// public so tests can shrink it.
#[derive(Debug, Clone, PartialEq)]
pub struct MobileFaceNetConfig {
    /// Units in the four Residual stages ((1, 4, 6, 2) for `mbf`). A first
    /// entry of 1 means a grouped ConvBlock instead of a Residual there.
    pub blocks_per_stage: [usize; 4],
    /// Channels of the stem and the first two stages (64 · scale).
    pub stem_width: usize,
    /// Channels of the last two stages (128 · scale).
    pub body_width: usize,
    /// Groups of the grouped 3×3 ConvBlock used when `blocks_per_stage[0]` is 1 (64).
    pub stem_groups: usize,
    /// Expansion widths of the four Residual stages (128, 128, 256, 256).
    pub residual_expansion: [usize; 4],
    /// Expansion widths of the three stride-2 DepthWise units (128, 256, 512).
    pub downsample_expansion: [usize; 3],
    /// Channels entering the GDC head (512).
    pub head_width: usize,
    /// Length of the feature vector (512, or 128 for the small embedding).
    pub embedding_size: usize,
    /// Side of the square input; a multiple of 16 (the GDC kernel is input / 16).
    pub input_size: usize,
}

impl MobileFaceNetConfig {
    fn with_scale(blocks_per_stage: [usize; 4], scale: usize) -> Self {
        Self {
            blocks_per_stage,
            stem_width: 64 * scale,
            body_width: 128 * scale,
            stem_groups: 64,
            residual_expansion: [128, 128, 256, 256],
            downsample_expansion: [128, 256, 512],
            head_width: 512,
            embedding_size: 512,
            input_size: 112,
        }
    }

    /// insightface `mbf` (`get_mbf`): scale 2, blocks (1, 4, 6, 2).
    pub fn mbf() -> Self {
        Self::mbf_scaled(2)
    }

    /// insightface `mbf_large` (`get_mbf_large`): scale 4, blocks (2, 8, 12, 4).
    pub fn mbf_large() -> Self {
        Self::mbf_large_scaled(4)
    }

    /// `mbf`'s blocks (1, 4, 6, 2) at width multiplier `scale`. Scale 1 is
    /// the MobileFaceNet of the paper (Chen et al. 2018, table 1: 64 channels
    /// to the second stage, 128 after, expansions 128/256/256/512/256).
    pub fn mbf_scaled(scale: usize) -> Self {
        Self::with_scale([1, 4, 6, 2], scale)
    }

    /// `mbf_large`'s blocks (2, 8, 12, 4) at width multiplier `scale`.
    pub fn mbf_large_scaled(scale: usize) -> Self {
        Self::with_scale([2, 8, 12, 4], scale)
    }

    /// Side of the last stage's feature map and of the GDC kernel (7 for a 112 px input).
    pub fn feature_map_size(&self) -> usize {
        self.input_size / 16
    }

    /// Refuses shapes the layout cannot build ([`NnError::InvalidConfig`]
    /// naming the field): an empty stage, a zero width, group count or
    /// expansion, `stem_groups` not dividing `stem_width` where the grouped
    /// ConvBlock is used, an input side that is not a positive multiple of 16.
    pub fn validate(&self) -> Result<(), NnError> {
        let invalid = |field, problem: String| Err(NnError::InvalidConfig { field, problem });
        if self.blocks_per_stage.contains(&0) {
            return invalid("blocks_per_stage", format!("must be at least 1 per stage, got {:?}", self.blocks_per_stage));
        }
        let widths = [self.stem_width, self.body_width, self.stem_groups, self.head_width, self.embedding_size];
        if widths.contains(&0) || self.residual_expansion.contains(&0) || self.downsample_expansion.contains(&0) {
            return invalid("widths", "every width, group count and expansion must be positive".into());
        }
        if self.blocks_per_stage[0] == 1 && !self.stem_width.is_multiple_of(self.stem_groups) {
            return invalid("stem_groups", format!("{} does not divide stem_width {}", self.stem_groups, self.stem_width));
        }
        if self.input_size == 0 || !self.input_size.is_multiple_of(16) {
            return invalid("input_size", format!("must be a positive multiple of 16, got {}", self.input_size));
        }
        Ok(())
    }

    /// Builds the network with insightface's initialisation (He normal on
    /// fan-out for convolutions and the linear layer, BN weight 1 / bias 0,
    /// PReLU 0.25). burn's fan-out of a grouped convolution divides by the
    /// groups where PyTorch's does not: the depthwise layers start with a
    /// larger spread than PyTorch's (initialisation only; loaded weights are exact).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<MobileFaceNet<B>, NnError> {
        self.validate()?;
        let init = Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: true };
        let [b1, b2, b3, b4] = self.blocks_per_stage;
        let [e1, e2, e3, e4] = self.residual_expansion;
        let [d2, d3, d4] = self.downsample_expansion;
        let (stem, body) = (self.stem_width, self.body_width);
        let (stem_dw, stage1) = if b1 == 1 {
            (Some(ConvBlock::new(stem, stem, 3, 1, 1, self.stem_groups, &init, device)), None)
        } else {
            (None, Some(Residual::new(stem, b1, e1, &init, device)))
        };
        let side = self.feature_map_size();
        Ok(MobileFaceNet {
            stem: ConvBlock::new(3, stem, 3, 2, 1, 1, &init, device),
            stem_dw,
            stage1,
            down2: DepthWise::new(stem, stem, d2, 2, false, &init, device),
            stage2: Residual::new(stem, b2, e2, &init, device),
            down3: DepthWise::new(stem, body, d3, 2, false, &init, device),
            stage3: Residual::new(body, b3, e3, &init, device),
            down4: DepthWise::new(body, body, d4, 2, false, &init, device),
            stage4: Residual::new(body, b4, e4, &init, device),
            conv_sep: ConvBlock::new(body, self.head_width, 1, 1, 0, 1, &init, device),
            features: Gdc {
                dw: LinearBlock::new(self.head_width, self.head_width, side, 1, 0, self.head_width, &init, device),
                linear: LinearConfig::new(self.head_width, self.embedding_size).with_bias(false).with_initializer(init.clone()).init(device),
                norm: batch_norm(self.embedding_size, device),
            },
        })
    }
}

/// PyTorch key of a MobileFaceNet parameter's burn path. burn's named fields
/// stand for insightface's `nn.Sequential`/`ModuleList` indices, one fixed
/// index per field name, whatever the context:
/// `stem`→`layers.0`, `stem_dw`/`stage1`→`layers.1`, `down2`→`layers.2`,
/// `stage2`→`layers.3`, `down3`→`layers.4`, `stage3`→`layers.5`,
/// `down4`→`layers.6`, `stage4`→`layers.7`; in a ConvBlock/LinearBlock
/// `conv`/`bn`/`prelu`→`layers.0/1/2`; in a DepthWise
/// `expand`/`depthwise`/`project`→`layers.0/1/2`; a Residual's
/// `blocks`→`layers`; in the GDC head `dw`/`linear`/`norm`→`layers.0/2/3`;
/// leaves `gamma`/`alpha`→`weight`, `beta`→`bias`.
///
/// `stage2.blocks.3.project.bn.gamma` → `layers.3.layers.3.layers.2.layers.1.weight`.
pub fn mobilefacenet_key(burn_path: &str) -> String {
    let segments: Vec<&str> = burn_path.split('.').collect();
    let last = segments.len().saturating_sub(1);
    segments
        .iter()
        .enumerate()
        .map(|(index, segment)| {
            if index == last {
                return match *segment {
                    "gamma" | "alpha" => "weight",
                    "beta" => "bias",
                    other => other,
                };
            }
            match *segment {
                "stem" => "layers.0",
                "stem_dw" | "stage1" => "layers.1",
                "down2" => "layers.2",
                "stage2" => "layers.3",
                "down3" => "layers.4",
                "stage3" => "layers.5",
                "down4" => "layers.6",
                "stage4" => "layers.7",
                "conv" | "expand" | "dw" => "layers.0",
                "bn" | "depthwise" => "layers.1",
                "prelu" | "project" | "linear" => "layers.2",
                "norm" => "layers.3",
                "blocks" => "layers",
                other => other,
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// conv → BN → PReLU (`layers.0/1/2`).
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    /// The convolution (bias-free; kernel, stride and groups by position in the network).
    pub conv: Conv2d<B>,
    /// BatchNorm over its output channels.
    pub bn: BatchNorm<B>,
    /// Per-channel PReLU.
    pub prelu: PRelu<B>,
}

impl<B: Backend> ConvBlock<B> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        channels_in: usize,
        channels_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        init: &Initializer,
        device: &B::Device,
    ) -> Self {
        Self {
            conv: conv(channels_in, channels_out, kernel, stride, padding, groups, init.clone(), device),
            bn: batch_norm(channels_out, device),
            prelu: prelu(channels_out, device),
        }
    }

    /// conv → BN (through `hook`) → PReLU on `[N, C, H, W]`.
    pub fn forward<H: ForwardHook<B>>(&self, input: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 4> {
        hook.batch_norm_prelu(&self.bn, &self.prelu, conv_forward(&self.conv, input))
    }

    fn cost(&self, input: Shape3) -> (Cost, Shape3) {
        let (cost, output) = conv_cost(&self.conv, input);
        (cost + Cost::batch_norm(output) + Cost::prelu(output), output)
    }
}

/// conv → BN, no activation (`layers.0/1`).
#[derive(Module, Debug)]
pub struct LinearBlock<B: Backend> {
    /// The convolution (bias-free).
    pub conv: Conv2d<B>,
    /// BatchNorm over its output channels.
    pub bn: BatchNorm<B>,
}

impl<B: Backend> LinearBlock<B> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        channels_in: usize,
        channels_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        init: &Initializer,
        device: &B::Device,
    ) -> Self {
        Self { conv: conv(channels_in, channels_out, kernel, stride, padding, groups, init.clone(), device), bn: batch_norm(channels_out, device) }
    }

    /// conv → BN (through `hook`) on `[N, C, H, W]`.
    pub fn forward<H: ForwardHook<B>>(&self, input: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 4> {
        hook.batch_norm(&self.bn, conv_forward(&self.conv, input))
    }

    fn cost(&self, input: Shape3) -> (Cost, Shape3) {
        let (cost, output) = conv_cost(&self.conv, input);
        (cost + Cost::batch_norm(output), output)
    }
}

/// Inverted-residual bottleneck: expand 1×1 → depthwise 3×3(stride) → project 1×1.
#[derive(Module, Debug)]
pub struct DepthWise<B: Backend> {
    /// 1×1 ConvBlock, in → expansion channels.
    pub expand: ConvBlock<B>,
    /// 3×3 depthwise ConvBlock (groups = expansion) with the unit's stride.
    pub depthwise: ConvBlock<B>,
    /// 1×1 LinearBlock, expansion → out channels, no activation.
    pub project: LinearBlock<B>,
    /// Whether the input is added to the output (Residual units only).
    pub residual: bool,
}

impl<B: Backend> DepthWise<B> {
    fn new(channels_in: usize, channels_out: usize, expansion: usize, stride: usize, residual: bool, init: &Initializer, device: &B::Device) -> Self {
        Self {
            expand: ConvBlock::new(channels_in, expansion, 1, 1, 0, 1, init, device),
            depthwise: ConvBlock::new(expansion, expansion, 3, stride, 1, expansion, init, device),
            project: LinearBlock::new(expansion, channels_out, 1, 1, 0, 1, init, device),
            residual,
        }
    }

    /// expand → depthwise → project, plus the input when `residual`, every
    /// BatchNorm run through `hook`.
    pub fn forward<H: ForwardHook<B>>(&self, input: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 4> {
        let hidden = self.expand.forward(input.clone(), hook);
        let output = self.project.forward(self.depthwise.forward(hidden, hook), hook);
        if self.residual {
            output + input
        } else {
            output
        }
    }

    fn cost(&self, input: Shape3) -> (Cost, Shape3) {
        let (expand, hidden) = self.expand.cost(input);
        let (depthwise, hidden) = self.depthwise.cost(hidden);
        let (project, output) = self.project.cost(hidden);
        (expand + depthwise + project, output)
    }
}

/// Stride-1 residual DepthWise units of one width (`layers.i`).
#[derive(Module, Debug)]
pub struct Residual<B: Backend> {
    /// The units in order (`layers.K`), each with `residual` set.
    pub blocks: Vec<DepthWise<B>>,
}

impl<B: Backend> Residual<B> {
    fn new(channels: usize, units: usize, expansion: usize, init: &Initializer, device: &B::Device) -> Self {
        let blocks = (0..units).map(|_| DepthWise::new(channels, channels, expansion, 1, true, init, device)).collect();
        Self { blocks }
    }

    /// The units one after the other; the shape `[N, C, H, W]` is kept.
    pub fn forward<H: ForwardHook<B>>(&self, input: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 4> {
        self.blocks.iter().fold(input, |x, block| block.forward(x, hook))
    }

    fn cost(&self, input: Shape3) -> (Cost, Shape3) {
        self.blocks.iter().fold((Cost::default(), input), |(cost, shape), block| {
            let (block_cost, output) = block.cost(shape);
            (cost + block_cost, output)
        })
    }
}

/// Global depthwise convolution head: a depthwise conv over the whole
/// feature map (LinearBlock) → flatten → Linear (no bias) → BatchNorm1d.
#[derive(Module, Debug)]
pub struct Gdc<B: Backend> {
    /// Depthwise conv with a kernel the size of the feature map (7×7 at
    /// 112 px), `head_width` groups, → BN: `[N, 512, 7, 7]` → `[N, 512, 1, 1]`.
    pub dw: LinearBlock<B>,
    /// `head_width` → E, no bias; burn stores the weight `[in, out]`.
    pub linear: Linear<B>,
    /// BatchNorm1d over the E features (affine, trained): its output is the feature.
    pub norm: BatchNorm<B>,
}

/// The MobileFaceNet network (field ↔ insightface index in [`mobilefacenet_key`]).
#[derive(Module, Debug)]
pub struct MobileFaceNet<B: Backend> {
    /// 3×3 ConvBlock, stride 2, 3 → `stem_width` (`layers.0`).
    pub stem: ConvBlock<B>,
    /// Grouped 3×3 ConvBlock when `blocks_per_stage[0]` is 1 (`layers.1`); else `None`.
    pub stem_dw: Option<ConvBlock<B>>,
    /// Residual stage 1 when `blocks_per_stage[0]` is above 1 (`layers.1`); else `None`.
    pub stage1: Option<Residual<B>>,
    /// Stride-2 DepthWise, `stem_width` → `stem_width` (`layers.2`).
    pub down2: DepthWise<B>,
    /// Residual stage 2 at `stem_width` (`layers.3`).
    pub stage2: Residual<B>,
    /// Stride-2 DepthWise, `stem_width` → `body_width` (`layers.4`).
    pub down3: DepthWise<B>,
    /// Residual stage 3 at `body_width` (`layers.5`).
    pub stage3: Residual<B>,
    /// Stride-2 DepthWise, `body_width` → `body_width` (`layers.6`).
    pub down4: DepthWise<B>,
    /// Residual stage 4 at `body_width` (`layers.7`).
    pub stage4: Residual<B>,
    /// 1×1 ConvBlock, `body_width` → `head_width` (insightface's `conv_sep`).
    pub conv_sep: ConvBlock<B>,
    /// The GDC head (insightface's `features`): `[N, head_width, S/16, S/16]` → `[N, E]`.
    pub features: Gdc<B>,
}

impl<B: Backend> MobileFaceNet<B> {
    /// Normalised NCHW faces → raw features `[batch, E]`.
    pub fn forward(&self, faces: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(faces, &mut Plain)
    }

    /// [`Self::forward`] with every BatchNorm run through `hook`.
    pub fn forward_hooked<H: ForwardHook<B>>(&self, faces: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 2> {
        let mut x = self.stem.forward(faces, hook);
        if let Some(stem_dw) = &self.stem_dw {
            x = stem_dw.forward(x, hook);
        }
        if let Some(stage1) = &self.stage1 {
            x = stage1.forward(x, hook);
        }
        let x = self.down2.forward(x, hook);
        let x = self.stage2.forward(x, hook);
        let x = self.down3.forward(x, hook);
        let x = self.stage3.forward(x, hook);
        let x = self.down4.forward(x, hook);
        let x = self.stage4.forward(x, hook);
        let x = self.conv_sep.forward(x, hook);
        let x = self.features.dw.forward(x, hook).flatten::<2>(1, 3);
        hook.batch_norm(&self.features.norm, self.features.linear.forward(x))
    }

    /// FLOPs (ptflops' convention) and their parts for one forward pass of
    /// one `input_size`² face (see [`Cost`]).
    pub fn cost(&self, input_size: usize) -> Cost {
        let input = Shape3 { channels: 3, height: input_size, width: input_size };
        let (mut cost, mut x) = self.stem.cost(input);
        let mut add = |(step, output): (Cost, Shape3), x: &mut Shape3| {
            cost = cost + step;
            *x = output;
        };
        if let Some(stem_dw) = &self.stem_dw {
            add(stem_dw.cost(x), &mut x);
        }
        if let Some(stage1) = &self.stage1 {
            add(stage1.cost(x), &mut x);
        }
        add(self.down2.cost(x), &mut x);
        add(self.stage2.cost(x), &mut x);
        add(self.down3.cost(x), &mut x);
        add(self.stage3.cost(x), &mut x);
        add(self.down4.cost(x), &mut x);
        add(self.stage4.cost(x), &mut x);
        add(self.conv_sep.cost(x), &mut x);
        add(self.features.dw.cost(x), &mut x);
        let embedding = self.features.linear.weight.lazy_shape().dims::<2>()[1];
        cost + linear_cost(&self.features.linear) + Cost::batch_norm(Shape3 { channels: embedding, height: 1, width: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::mobilefacenet_key;

    #[test]
    fn keys_follow_insightface_indices() {
        assert_eq!(mobilefacenet_key("stem.conv.weight"), "layers.0.layers.0.weight");
        assert_eq!(mobilefacenet_key("stem_dw.prelu.alpha"), "layers.1.layers.2.weight");
        assert_eq!(mobilefacenet_key("down2.depthwise.bn.gamma"), "layers.2.layers.1.layers.1.weight");
        assert_eq!(mobilefacenet_key("stage2.blocks.3.project.bn.beta"), "layers.3.layers.3.layers.2.layers.1.bias");
        assert_eq!(mobilefacenet_key("conv_sep.bn.running_mean"), "conv_sep.layers.1.running_mean");
        assert_eq!(mobilefacenet_key("features.dw.conv.weight"), "features.layers.0.layers.0.weight");
        assert_eq!(mobilefacenet_key("features.linear.weight"), "features.layers.2.weight");
        assert_eq!(mobilefacenet_key("features.norm.gamma"), "features.layers.3.weight");
    }
}
