//! IResNet ("improved" pre-activation ResNet of ArcFace), in insightface
//! `arcface_torch` `backbones/iresnet.py`'s layout, with AdaFace's `net.py`
//! IR layout as a variant that differs only in its shortcut rule, its head's
//! last BatchNorm and its tensor names.
//!
//! Layout (112 × 112 input, widths 64/128/256/512):
//! - stem: conv3×3(3→64, stride 1) → BN → PReLU;
//! - four stages of [`IBasicBlock`]s, the first block of each with stride 2:
//!   BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN, plus the shortcut;
//! - head: BN2d → flatten → dropout → FC(512·7·7 → E) → BN1d (the feature).
//!
//! Shortcuts: insightface projects (conv1×1(stride) + BN) whenever the
//! stride is not 1 or the width changes, so every stage's first block
//! projects, stage 1 included. AdaFace projects only when the width changes;
//! where it does not (its stage 1: 64 → 64, stride 2) the shortcut is
//! `MaxPool2d(1, stride)`, i.e. plain subsampling, with no parameters.
//!
//! The feature BatchNorm: insightface keeps its weight (γ) at 1.0 and out of
//! training (`requires_grad = False`), learning only β; AdaFace uses
//! `BatchNorm1d(affine=False)`: γ = 1 and β = 0, neither stored nor trained.
//! Both are expressed here as burn `BatchNorm` with the fixed parameters
//! marked as not requiring gradients.

use burn::module::{Initializer, Module};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Dropout, DropoutConfig, Linear, LinearConfig, PRelu};
use burn::tensor::backend::Backend;
use burn::tensor::module::max_pool2d;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::complexity::{conv_cost, linear_cost, Cost, Shape3};
use crate::error::NnError;
use crate::layers::{batch_norm, conv, conv_forward, prelu, ForwardHook, Plain};

/// Which reference implementation's module tree (and so tensor names and
/// shortcut rule) an IResNet follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IResNetLayout {
    /// insightface `arcface_torch` (also MagFace's `iresnet.py`).
    #[default]
    Insightface,
    /// AdaFace `net.py` `IR_18/34/50/101`.
    Adaface,
}

impl std::str::FromStr for IResNetLayout {
    type Err = NnError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "insightface" | "arcface" | "magface" => Ok(Self::Insightface),
            "adaface" => Ok(Self::Adaface),
            _ => Err(NnError::InvalidConfig { field: "layout", problem: format!("must be insightface (also MagFace's) or adaface, got '{text}'") }),
        }
    }
}

impl std::fmt::Display for IResNetLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Insightface => "insightface",
            Self::Adaface => "adaface",
        })
    }
}

/// The shape of an IResNet. The named constructors give the published depths;
/// the fields are public so tests and experiments can shrink it.
#[derive(Debug, Clone, PartialEq)]
pub struct IResNetConfig {
    /// Blocks in each of the four stages ([3, 4, 14, 3] for IResNet-50).
    pub blocks_per_stage: [usize; 4],
    /// Output channels of each stage (64, 128, 256, 512 in every published model).
    pub stage_widths: [usize; 4],
    /// Output channels of the stem convolution (64 in every published model).
    pub stem_width: usize,
    /// Length of the feature vector (512 in every published model).
    pub embedding_size: usize,
    /// Dropout before the FC layer (insightface trains with 0, AdaFace with 0.4).
    pub dropout: f64,
    /// Side of the square input in pixels; must be a multiple of 16 (four stride-2 stages).
    pub input_size: usize,
    /// Whose module tree and shortcut rule.
    pub layout: IResNetLayout,
}

impl IResNetConfig {
    /// The published widths with the given stage depths, 512-d feature, no dropout, 112 px input.
    pub fn with_blocks(blocks_per_stage: [usize; 4]) -> Self {
        Self {
            blocks_per_stage,
            stage_widths: [64, 128, 256, 512],
            stem_width: 64,
            embedding_size: 512,
            dropout: 0.0,
            input_size: 112,
            layout: IResNetLayout::Insightface,
        }
    }

    /// IResNet-18: blocks 2, 2, 2, 2.
    pub fn iresnet18() -> Self {
        Self::with_blocks([2, 2, 2, 2])
    }

    /// IResNet-34: blocks 3, 4, 6, 3.
    pub fn iresnet34() -> Self {
        Self::with_blocks([3, 4, 6, 3])
    }

    /// IResNet-50: blocks 3, 4, 14, 3.
    pub fn iresnet50() -> Self {
        Self::with_blocks([3, 4, 14, 3])
    }

    /// IResNet-100: blocks 3, 13, 30, 3.
    pub fn iresnet100() -> Self {
        Self::with_blocks([3, 13, 30, 3])
    }

    /// IResNet-200: blocks 6, 26, 60, 6.
    pub fn iresnet200() -> Self {
        Self::with_blocks([6, 26, 60, 6])
    }

    /// Side of the last stage's feature map (7 for a 112 px input).
    pub fn feature_map_size(&self) -> usize {
        self.input_size / 16
    }

    /// Refuses shapes the layout cannot build, naming the field.
    pub fn validate(&self) -> Result<(), NnError> {
        let invalid = |field, problem: String| Err(NnError::InvalidConfig { field, problem });
        if self.blocks_per_stage.contains(&0) {
            return invalid("blocks_per_stage", format!("must be at least 1 per stage, got {:?}", self.blocks_per_stage));
        }
        if self.stage_widths.contains(&0) || self.stem_width == 0 {
            return invalid("stage_widths", "and stem_width must be positive".into());
        }
        if self.embedding_size == 0 {
            return invalid("embedding_size", "must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid("dropout", format!("must be in [0, 1), got {}", self.dropout));
        }
        if self.input_size == 0 || !self.input_size.is_multiple_of(16) {
            return invalid("input_size", format!("must be a positive multiple of 16, got {}", self.input_size));
        }
        Ok(())
    }

    /// Builds the network with insightface's initialisation: conv weights
    /// N(0, 0.1), BN weight 1 and bias 0, PReLU 0.25, FC PyTorch's default
    /// U(±1/√fan_in).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<IResNet<B>, NnError> {
        self.validate()?;
        let conv_init = Initializer::Normal { mean: 0.0, std: 0.1 };
        let mut channels = self.stem_width;
        let conv1 = conv(3, channels, 3, 1, 1, 1, conv_init.clone(), device);
        let mut stages: Vec<Vec<IBasicBlock<B>>> = Vec::with_capacity(4);
        for (&blocks, &width) in self.blocks_per_stage.iter().zip(&self.stage_widths) {
            let mut stage = Vec::with_capacity(blocks);
            for index in 0..blocks {
                let stride = if index == 0 { 2 } else { 1 };
                stage.push(IBasicBlock::new(channels, width, stride, self.layout, &conv_init, device));
                channels = width;
            }
            stages.push(stage);
        }
        let [layer1, layer2, layer3, layer4]: [Vec<IBasicBlock<B>>; 4] =
            stages.try_into().unwrap_or_else(|_| unreachable!("four stages are built above"));
        let side = self.feature_map_size();
        let mut features = batch_norm(self.embedding_size, device);
        features.gamma = features.gamma.set_require_grad(false);
        if self.layout == IResNetLayout::Adaface {
            features.beta = features.beta.set_require_grad(false);
        }
        Ok(IResNet {
            conv1,
            bn1: batch_norm(self.stem_width, device),
            prelu: prelu(self.stem_width, device),
            layer1,
            layer2,
            layer3,
            layer4,
            bn2: batch_norm(channels, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: LinearConfig::new(channels * side * side, self.embedding_size).init(device),
            features,
            features_affine: self.layout == IResNetLayout::Insightface,
        })
    }

    /// The PyTorch state-dict key of a parameter, given its burn module path
    /// (`layer1.0.bn1.gamma`), in this config's layout. `None`: the parameter
    /// has no counterpart there (AdaFace's affine-free feature BN) and keeps
    /// its fixed value.
    pub fn torch_key(&self, burn_path: &str) -> Option<String> {
        match self.layout {
            IResNetLayout::Insightface => Some(insightface_key(burn_path)),
            IResNetLayout::Adaface => adaface_key(burn_path, self.blocks_per_stage),
        }
    }
}

/// burn's parameter names inside the layers used here, renamed to PyTorch's.
fn torch_leaf(name: &str) -> &str {
    match name {
        "gamma" | "alpha" => "weight",
        "beta" => "bias",
        other => other,
    }
}

/// insightface/MagFace key of a burn path: the module trees are the same, so
/// only burn's leaf names (`gamma`/`beta` of BatchNorm, `alpha` of PReLU)
/// become `weight`/`bias`, and the projection shortcut's named fields
/// (`downsample.conv`, `downsample.bn`) become the `nn.Sequential` indices
/// `downsample.0`, `downsample.1`. FC weights are stored transposed by burn
/// ([in, out] vs PyTorch's [out, in]); the loader handles that, not the name.
///
/// `layer1.0.bn1.gamma` → `layer1.0.bn1.weight`,
/// `layer2.0.downsample.bn.running_var` → `layer2.0.downsample.1.running_var`,
/// `prelu.alpha` → `prelu.weight`, `features.beta` → `features.bias`.
pub fn insightface_key(burn_path: &str) -> String {
    let segments: Vec<&str> = burn_path.split('.').collect();
    let last = segments.len().saturating_sub(1);
    segments
        .iter()
        .enumerate()
        .map(|(index, segment)| match *segment {
            "conv" if index > 0 && segments[index - 1] == "downsample" => "0",
            "bn" if index > 0 && segments[index - 1] == "downsample" => "1",
            leaf if index == last => torch_leaf(leaf),
            other => other,
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// AdaFace `net.py` key of a burn path. Its tree is flat: `input_layer`
/// (conv, BN, PReLU), `body.K` for the K-th block over all stages, each with
/// `res_layer.0..5` (BN, conv, BN, PReLU, conv, BN) and `shortcut_layer.0/1`
/// (conv, BN), and `output_layer` (0: BN2d, 1: dropout, 2: flatten, 3: FC,
/// 4: BN1d without affine parameters, so `features.gamma`/`features.beta`
/// map to nothing).
pub fn adaface_key(burn_path: &str, blocks_per_stage: [usize; 4]) -> Option<String> {
    let segments: Vec<&str> = burn_path.split('.').collect();
    let leaf = torch_leaf(segments.last()?);
    let prefix = match segments.as_slice() {
        ["conv1", _] => "input_layer.0".to_string(),
        ["bn1", _] => "input_layer.1".to_string(),
        ["prelu", _] => "input_layer.2".to_string(),
        ["bn2", _] => "output_layer.0".to_string(),
        ["fc", _] => "output_layer.3".to_string(),
        ["features", "gamma" | "beta"] => return None,
        ["features", _] => "output_layer.4".to_string(),
        [stage, block, rest @ ..] if stage.starts_with("layer") => {
            let stage_number: usize = stage["layer".len()..].parse().ok().filter(|n| (1..=4).contains(n))?;
            let block_index: usize = block.parse().ok()?;
            let body_index = blocks_per_stage.iter().take(stage_number - 1).sum::<usize>() + block_index;
            let inner = match rest {
                ["bn1", _] => "res_layer.0",
                ["conv1", _] => "res_layer.1",
                ["bn2", _] => "res_layer.2",
                ["prelu", _] => "res_layer.3",
                ["conv2", _] => "res_layer.4",
                ["bn3", _] => "res_layer.5",
                ["downsample", "conv", _] => "shortcut_layer.0",
                ["downsample", "bn", _] => "shortcut_layer.1",
                _ => return None,
            };
            format!("body.{body_index}.{inner}")
        }
        _ => return None,
    };
    Some(format!("{prefix}.{leaf}"))
}

/// The projection shortcut: conv1×1(stride) → BN (`downsample.0`, `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// 1×1 convolution with the block's stride, in → out channels, no bias.
    pub conv: Conv2d<B>,
    /// BatchNorm over the out channels.
    pub bn: BatchNorm<B>,
}

/// One residual unit: BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN, plus
/// the shortcut.
#[derive(Module, Debug)]
pub struct IBasicBlock<B: Backend> {
    /// Pre-activation BatchNorm over the input channels.
    pub bn1: BatchNorm<B>,
    /// 3×3 convolution, stride 1, in → out channels.
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub bn2: BatchNorm<B>,
    /// Per-channel PReLU after `bn2`.
    pub prelu: PRelu<B>,
    /// 3×3 convolution with the block's stride (2 in a stage's first block), out → out.
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`; its output is added to the shortcut.
    pub bn3: BatchNorm<B>,
    /// The projection shortcut, where the layout asks for one.
    pub downsample: Option<Downsample<B>>,
    /// Without a projection: the shortcut's subsampling stride (AdaFace's
    /// `MaxPool2d(1, stride)`); 1 is the identity.
    pub shortcut_stride: usize,
}

impl<B: Backend> IBasicBlock<B> {
    fn new(channels_in: usize, channels_out: usize, stride: usize, layout: IResNetLayout, conv_init: &Initializer, device: &B::Device) -> Self {
        let project = match layout {
            IResNetLayout::Insightface => stride != 1 || channels_in != channels_out,
            IResNetLayout::Adaface => channels_in != channels_out,
        };
        let downsample = project.then(|| Downsample {
            conv: conv(channels_in, channels_out, 1, stride, 0, 1, conv_init.clone(), device),
            bn: batch_norm(channels_out, device),
        });
        Self {
            bn1: batch_norm(channels_in, device),
            conv1: conv(channels_in, channels_out, 3, 1, 1, 1, conv_init.clone(), device),
            bn2: batch_norm(channels_out, device),
            prelu: prelu(channels_out, device),
            conv2: conv(channels_out, channels_out, 3, stride, 1, 1, conv_init.clone(), device),
            bn3: batch_norm(channels_out, device),
            downsample,
            shortcut_stride: if project { 1 } else { stride },
        }
    }

    /// `[N, C_in, H, W]` → `[N, C_out, H / stride, W / stride]`, every
    /// BatchNorm run through `hook`.
    pub fn forward<H: ForwardHook<B>>(&self, input: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 4> {
        let shortcut = match &self.downsample {
            Some(downsample) => hook.batch_norm(&downsample.bn, conv_forward(&downsample.conv, input.clone())),
            None if self.shortcut_stride > 1 => {
                let stride = [self.shortcut_stride; 2];
                max_pool2d(input.clone(), [1, 1], stride, [0, 0], [1, 1], false)
            }
            None => input.clone(),
        };
        let residual = conv_forward(&self.conv1, hook.batch_norm(&self.bn1, input));
        let residual = hook.batch_norm_prelu(&self.bn2, &self.prelu, residual);
        let residual = hook.batch_norm(&self.bn3, conv_forward(&self.conv2, residual));
        residual + shortcut
    }

    fn cost(&self, input: Shape3) -> (Cost, Shape3) {
        let mut cost = Cost::batch_norm(input);
        let (conv1_cost, hidden) = conv_cost(&self.conv1, input);
        cost = cost + conv1_cost + Cost::batch_norm(hidden) + Cost::prelu(hidden);
        let (conv2_cost, output) = conv_cost(&self.conv2, hidden);
        cost = cost + conv2_cost + Cost::batch_norm(output);
        if let Some(downsample) = &self.downsample {
            cost = cost + conv_cost(&downsample.conv, input).0 + Cost::batch_norm(output);
        }
        (cost, output)
    }
}

/// The IResNet network; field names follow insightface's module names so
/// that [`insightface_key`] is a renaming of leaves only.
#[derive(Module, Debug)]
pub struct IResNet<B: Backend> {
    /// Stem: 3×3 convolution, stride 1, 3 → `stem_width` channels.
    pub conv1: Conv2d<B>,
    /// Stem BatchNorm.
    pub bn1: BatchNorm<B>,
    /// Stem PReLU.
    pub prelu: PRelu<B>,
    /// Stage 1 (64 channels in the published models; S/2 × S/2 out).
    pub layer1: Vec<IBasicBlock<B>>,
    /// Stage 2 (128 channels; S/4 × S/4 out).
    pub layer2: Vec<IBasicBlock<B>>,
    /// Stage 3 (256 channels; S/8 × S/8 out).
    pub layer3: Vec<IBasicBlock<B>>,
    /// Stage 4 (512 channels; S/16 × S/16 out, 7 × 7 at 112 px).
    pub layer4: Vec<IBasicBlock<B>>,
    /// BatchNorm2d over the last stage's output, before flattening.
    pub bn2: BatchNorm<B>,
    /// Dropout on the flattened map (probability `IResNetConfig::dropout`).
    pub dropout: Dropout,
    /// FC from the flattened map (512 · 7 · 7 at 112 px) to E, with bias;
    /// burn stores its weight `[in, out]`, PyTorch `[out, in]`.
    pub fc: Linear<B>,
    /// The feature BatchNorm1d (γ fixed at 1, see the module docs).
    pub features: BatchNorm<B>,
    /// Whether `features` has scale and shift in the reference (insightface:
    /// yes, γ frozen; AdaFace: `affine=False`). Only FLOP counting reads it.
    pub features_affine: bool,
}

impl<B: Backend> IResNet<B> {
    /// Normalised NCHW faces (`[batch, 3, S, S]`) → raw features `[batch, E]`
    /// (not L2-normalised: the norm is the quality signal MagFace/AdaFace use).
    pub fn forward(&self, faces: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(faces, &mut Plain)
    }

    /// [`Self::forward`] with every BatchNorm and the dropout run through `hook`.
    pub fn forward_hooked<H: ForwardHook<B>>(&self, faces: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 2> {
        let x = hook.batch_norm_prelu(&self.bn1, &self.prelu, conv_forward(&self.conv1, faces));
        let x = self.stages().fold(x, |x, block| block.forward(x, hook));
        let x = hook.batch_norm(&self.bn2, x).flatten::<2>(1, 3);
        let x = self.fc.forward(hook.dropout(&self.dropout, x));
        hook.batch_norm(&self.features, x)
    }

    fn stages(&self) -> impl Iterator<Item = &IBasicBlock<B>> {
        self.layer1.iter().chain(&self.layer2).chain(&self.layer3).chain(&self.layer4)
    }

    /// FLOPs (ptflops' convention) and their parts for one forward pass of
    /// one `input_size`² face (see [`Cost`]).
    pub fn cost(&self, input_size: usize) -> Cost {
        let input = Shape3 { channels: 3, height: input_size, width: input_size };
        let (stem_cost, x) = conv_cost(&self.conv1, input);
        let mut cost = stem_cost + Cost::batch_norm(x) + Cost::prelu(x);
        let x = self.stages().fold(x, |x, block| {
            let (block_cost, output) = block.cost(x);
            cost = cost + block_cost;
            output
        });
        cost = cost + Cost::batch_norm(x) + linear_cost(&self.fc);
        let embedding = Shape3 { channels: self.fc.weight.lazy_shape().dims::<2>()[1], height: 1, width: 1 };
        if self.features_affine {
            cost + Cost::batch_norm(embedding)
        } else {
            cost + Cost::batch_norm_without_affine(embedding)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insightface_keys_rename_leaves_and_projection_indices() {
        assert_eq!(insightface_key("conv1.weight"), "conv1.weight");
        assert_eq!(insightface_key("prelu.alpha"), "prelu.weight");
        assert_eq!(insightface_key("layer1.0.bn1.gamma"), "layer1.0.bn1.weight");
        assert_eq!(insightface_key("layer3.13.bn3.running_var"), "layer3.13.bn3.running_var");
        assert_eq!(insightface_key("layer2.0.downsample.conv.weight"), "layer2.0.downsample.0.weight");
        assert_eq!(insightface_key("layer2.0.downsample.bn.beta"), "layer2.0.downsample.1.bias");
        assert_eq!(insightface_key("features.gamma"), "features.weight");
        assert_eq!(insightface_key("fc.bias"), "fc.bias");
    }

    #[test]
    fn adaface_keys_number_blocks_across_stages() {
        let r50 = [3, 4, 14, 3];
        let key = |path| adaface_key(path, r50);
        assert_eq!(key("conv1.weight").as_deref(), Some("input_layer.0.weight"));
        assert_eq!(key("prelu.alpha").as_deref(), Some("input_layer.2.weight"));
        assert_eq!(key("layer1.0.bn1.gamma").as_deref(), Some("body.0.res_layer.0.weight"));
        // layer3 starts after 3 + 4 blocks.
        assert_eq!(key("layer3.2.conv2.weight").as_deref(), Some("body.9.res_layer.4.weight"));
        assert_eq!(key("layer4.0.downsample.bn.running_mean").as_deref(), Some("body.21.shortcut_layer.1.running_mean"));
        assert_eq!(key("fc.weight").as_deref(), Some("output_layer.3.weight"));
        assert_eq!(key("features.running_var").as_deref(), Some("output_layer.4.running_var"));
        assert_eq!(key("features.gamma"), None);
        assert_eq!(key("features.beta"), None);
        assert_eq!(key("layer5.0.bn1.gamma"), None);
    }

    #[test]
    fn invalid_shapes_are_refused_naming_the_field() {
        let config = IResNetConfig { input_size: 100, ..IResNetConfig::iresnet18() };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("input_size") && error.contains("100"), "{error}");
        let config = IResNetConfig { dropout: 1.0, ..IResNetConfig::iresnet18() };
        assert!(config.validate().unwrap_err().to_string().contains("dropout"));
        let config = IResNetConfig { blocks_per_stage: [2, 0, 2, 2], ..IResNetConfig::iresnet18() };
        assert!(config.validate().unwrap_err().to_string().contains("blocks_per_stage"));
    }
}
