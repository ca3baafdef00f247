//! Face-recognition backbones for burn, generic over the backend: IResNet
//! (insightface and AdaFace layouts) and MobileFaceNet, with the mapping from
//! burn module paths to the reference implementations' PyTorch state-dict
//! keys, a state-dict loader, and parameter/FLOP counts.
//!
//! Every backbone takes normalised NCHW float faces (`[batch, 3, 112, 112]`;
//! the normalisation — channel order, mean, scale — is the model's setting,
//! applied by the caller) and returns raw features `[batch, E]`: not
//! L2-normalised, because their norm is the quality signal of MagFace and
//! AdaFace.

pub mod channelwise;
pub mod complexity;
pub mod error;
pub mod iresnet;
mod layers;
pub mod mobilefacenet;
pub mod onnx;
pub mod pytorch;
pub mod seeded;
pub mod state_dict;

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use complexity::{count_params, Cost};
pub use error::NnError;
pub use iresnet::{IResNet, IResNetConfig, IResNetLayout};
pub use layers::{ForwardHook, Plain};
pub use mobilefacenet::{MobileFaceNet, MobileFaceNetConfig};
pub use onnx::{load_onnx_weights, read_onnx_iresnet, read_onnx_mobilefacenet, state_dict_of};
pub use pytorch::{load_pytorch_checkpoint, read_pytorch_checkpoint, CheckpointFamily, PytorchCheckpoint};
pub use seeded::{materialize, with_backend_rng};
pub use state_dict::{expected_keys, load_state_dict, HostTensor, StateDict};

/// The published backbones, by the names a training config uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    #[serde(alias = "r18")]
    Iresnet18,
    #[serde(alias = "r34")]
    Iresnet34,
    #[serde(alias = "r50")]
    Iresnet50,
    #[serde(alias = "r100")]
    Iresnet100,
    #[serde(alias = "r200")]
    Iresnet200,
    #[serde(alias = "mbf")]
    Mobilefacenet,
    #[serde(alias = "mbf_large")]
    MobilefacenetLarge,
}

impl Arch {
    pub const ALL: [Arch; 7] =
        [Arch::Iresnet18, Arch::Iresnet34, Arch::Iresnet50, Arch::Iresnet100, Arch::Iresnet200, Arch::Mobilefacenet, Arch::MobilefacenetLarge];

    /// The canonical name (`iresnet50`, `mobilefacenet_large`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Iresnet18 => "iresnet18",
            Arch::Iresnet34 => "iresnet34",
            Arch::Iresnet50 => "iresnet50",
            Arch::Iresnet100 => "iresnet100",
            Arch::Iresnet200 => "iresnet200",
            Arch::Mobilefacenet => "mobilefacenet",
            Arch::MobilefacenetLarge => "mobilefacenet_large",
        }
    }

    /// insightface's short name (`r50`, `mbf`), accepted as an alias.
    pub fn short_name(self) -> &'static str {
        match self {
            Arch::Iresnet18 => "r18",
            Arch::Iresnet34 => "r34",
            Arch::Iresnet50 => "r50",
            Arch::Iresnet100 => "r100",
            Arch::Iresnet200 => "r200",
            Arch::Mobilefacenet => "mbf",
            Arch::MobilefacenetLarge => "mbf_large",
        }
    }

    pub fn is_iresnet(self) -> bool {
        !matches!(self, Arch::Mobilefacenet | Arch::MobilefacenetLarge)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = NnError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Separators are optional: `iresnet50`, `IResNet-50`, `mbf_large`, `mbf-large`.
        let normalise = |name: &str| name.trim().to_ascii_lowercase().replace(['-', '_'], "");
        let wanted = normalise(text);
        let found = Arch::ALL.into_iter().find(|arch| normalise(arch.name()) == wanted || normalise(arch.short_name()) == wanted);
        found.ok_or_else(|| NnError::UnknownArch {
            name: text.to_string(),
            known: Arch::ALL.iter().map(|arch| format!("{} ({})", arch.name(), arch.short_name())).collect::<Vec<_>>().join(", "),
        })
    }
}

fn default_embedding_size() -> usize {
    512
}

/// A backbone as a training config names it:
///
/// ```toml
/// arch = "iresnet50"
/// embedding_size = 512   # default
/// dropout = 0.0          # default; IResNet only
/// layout = "insightface" # default; or "adaface" (IResNet only)
/// width_scale = 1        # MobileFaceNet only: insightface's `scale`
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    pub arch: Arch,
    #[serde(default = "default_embedding_size")]
    pub embedding_size: usize,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub layout: IResNetLayout,
    /// MobileFaceNet's width multiplier, insightface's `scale`: unset means
    /// the arch's own (2 for `mbf`, 4 for `mbf_large`); 1 is the paper's
    /// original network (64/128 channels), the layout of the Paddle ArcFace
    /// and faceplugin models. IResNet refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width_scale: Option<usize>,
}

/// The network a [`BackboneConfig`] describes, resolved to its layer shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum BackboneShape {
    IResNet(IResNetConfig),
    MobileFaceNet(MobileFaceNetConfig),
}

impl BackboneConfig {
    pub fn new(arch: Arch) -> Self {
        Self { arch, embedding_size: default_embedding_size(), dropout: 0.0, layout: IResNetLayout::default(), width_scale: None }
    }

    /// The layer shapes, after checking the options fit the architecture.
    pub fn shape(&self) -> Result<BackboneShape, NnError> {
        if self.arch.is_iresnet() && self.width_scale.is_some() {
            return Err(NnError::InvalidConfig {
                field: "width_scale",
                problem: format!("applies to MobileFaceNet only; {} has fixed stage widths", self.arch),
            });
        }
        let shape = match self.arch {
            Arch::Iresnet18 => IResNetConfig::iresnet18(),
            Arch::Iresnet34 => IResNetConfig::iresnet34(),
            Arch::Iresnet50 => IResNetConfig::iresnet50(),
            Arch::Iresnet100 => IResNetConfig::iresnet100(),
            Arch::Iresnet200 => IResNetConfig::iresnet200(),
            Arch::Mobilefacenet | Arch::MobilefacenetLarge => {
                if self.layout != IResNetLayout::Insightface {
                    return Err(NnError::InvalidConfig {
                        field: "layout",
                        problem: format!("applies to IResNet only; {} has insightface's layout", self.arch),
                    });
                }
                if self.dropout != 0.0 {
                    return Err(NnError::InvalidConfig {
                        field: "dropout",
                        problem: format!("applies to IResNet only; {} has no dropout layer", self.arch),
                    });
                }
                let mut shape = match (self.arch, self.width_scale) {
                    (Arch::Mobilefacenet, None) => MobileFaceNetConfig::mbf(),
                    (Arch::Mobilefacenet, Some(scale)) => MobileFaceNetConfig::mbf_scaled(scale),
                    (_, None) => MobileFaceNetConfig::mbf_large(),
                    (_, Some(scale)) => MobileFaceNetConfig::mbf_large_scaled(scale),
                };
                shape.embedding_size = self.embedding_size;
                shape.validate()?;
                return Ok(BackboneShape::MobileFaceNet(shape));
            }
        };
        let shape = IResNetConfig { embedding_size: self.embedding_size, dropout: self.dropout, layout: self.layout, ..shape };
        shape.validate()?;
        Ok(BackboneShape::IResNet(shape))
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Backbone<B>, NnError> {
        self.shape()?.init(device)
    }
}

impl BackboneShape {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Backbone<B>, NnError> {
        Ok(match self {
            BackboneShape::IResNet(config) => Backbone::IResNet(config.init(device)?),
            BackboneShape::MobileFaceNet(config) => Backbone::MobileFaceNet(config.init(device)?),
        })
    }

    pub fn input_size(&self) -> usize {
        match self {
            BackboneShape::IResNet(config) => config.input_size,
            BackboneShape::MobileFaceNet(config) => config.input_size,
        }
    }

    pub fn embedding_size(&self) -> usize {
        match self {
            BackboneShape::IResNet(config) => config.embedding_size,
            BackboneShape::MobileFaceNet(config) => config.embedding_size,
        }
    }

    /// The reference implementation's state-dict key for a burn path inside
    /// the network (a path of the inner `IResNet`/`MobileFaceNet`, without
    /// the `Backbone` variant).
    pub fn torch_key(&self, burn_path: &str) -> Option<String> {
        match self {
            BackboneShape::IResNet(config) => config.torch_key(burn_path),
            BackboneShape::MobileFaceNet(_) => Some(mobilefacenet::mobilefacenet_key(burn_path)),
        }
    }
}

/// Any backbone, for code that picks one from a config. (The variants'
/// sizes differ, but a backbone is built once and moved rarely.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone<B: Backend> {
    IResNet(IResNet<B>),
    MobileFaceNet(MobileFaceNet<B>),
}

impl<B: Backend> Backbone<B> {
    /// Normalised NCHW faces → raw features `[batch, E]`.
    pub fn forward(&self, faces: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            Backbone::IResNet(network) => network.forward(faces),
            Backbone::MobileFaceNet(network) => network.forward(faces),
        }
    }

    /// [`Self::forward`] with every BatchNorm (and IResNet's dropout) run
    /// through `hook` (see [`ForwardHook`]).
    pub fn forward_hooked<H: ForwardHook<B>>(&self, faces: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 2> {
        match self {
            Backbone::IResNet(network) => network.forward_hooked(faces, hook),
            Backbone::MobileFaceNet(network) => network.forward_hooked(faces, hook),
        }
    }

    /// Work of one forward pass of one `input_size`² face.
    pub fn cost(&self, input_size: usize) -> Cost {
        match self {
            Backbone::IResNet(network) => network.cost(input_size),
            Backbone::MobileFaceNet(network) => network.cost(input_size),
        }
    }

    /// Parameter count in PyTorch's convention (see [`complexity`]).
    pub fn num_torch_params(&self, shape: &BackboneShape) -> u64 {
        let key = |path: &str| shape.torch_key(path);
        match self {
            Backbone::IResNet(network) => count_params(network, key),
            Backbone::MobileFaceNet(network) => count_params(network, key),
        }
    }

    /// Loads a reference state dict (keys as [`BackboneShape::torch_key`] maps
    /// them). The key sets must match exactly (all missing and unexpected
    /// keys are reported at once), then every shape.
    pub fn load_state_dict(self, shape: &BackboneShape, state: &StateDict) -> Result<Self, NnError> {
        let key = |path: &str| shape.torch_key(path);
        let expected = match &self {
            Backbone::IResNet(network) => expected_keys(network, key),
            Backbone::MobileFaceNet(network) => expected_keys(network, key),
        };
        state.check_keys(&expected)?;
        Ok(match self {
            Backbone::IResNet(network) => Backbone::IResNet(load_state_dict(network, state, key)?),
            Backbone::MobileFaceNet(network) => Backbone::MobileFaceNet(load_state_dict(network, state, key)?),
        })
    }
}

/// Loads pretrained weights into a fresh backbone of `shape`: an ONNX model
/// (`.onnx`, IResNet or MobileFaceNet), a visage weights file
/// (`.safetensors` under the reference keys, as [`save_weights`] writes) or a
/// PyTorch checkpoint (anything else: `.pth`, `.pt`, Lightning `.ckpt`) of
/// the given family.
pub fn load_weights<B: Backend>(
    path: &std::path::Path,
    family: CheckpointFamily,
    shape: &BackboneShape,
    device: &B::Device,
) -> Result<Backbone<B>, NnError> {
    let has_extension = |wanted: &str| path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case(wanted));
    if has_extension("onnx") {
        load_onnx_weights(path, shape, device)
    } else if has_extension("safetensors") {
        let state = StateDict::read_safetensors(path)?;
        shape.init::<B>(device)?.load_state_dict(shape, &state).map_err(|error| NnError::Checkpoint {
            path: path.to_path_buf(),
            family: "safetensors".into(),
            source: Box::new(error),
        })
    } else {
        load_pytorch_checkpoint(path, family, shape, device)
    }
}

/// Header key under which [`save_weights`] stores the backbone's config (JSON).
pub const WEIGHTS_CONFIG_KEY: &str = "visage.backbone";

/// Writes `backbone`'s weights as safetensors under the reference keys, its
/// [`BackboneConfig`] in the header, so [`read_weights_config`] + [`load_weights`]
/// rebuild it without being told the architecture.
pub fn save_weights<B: Backend>(backbone: &Backbone<B>, config: &BackboneConfig, path: &std::path::Path) -> Result<(), NnError> {
    let shape = config.shape()?;
    let json = serde_json::to_string(config).map_err(|e| NnError::InvalidConfig { field: "backbone", problem: e.to_string() })?;
    let bytes = backbone.state_dict(&shape).to_safetensors_bytes([(WEIGHTS_CONFIG_KEY.to_string(), json)].into())?;
    std::fs::write(path, bytes).map_err(|source| NnError::Io { path: path.to_path_buf(), source })
}

/// The [`BackboneConfig`] a [`save_weights`] file carries.
pub fn read_weights_config(path: &std::path::Path) -> Result<BackboneConfig, NnError> {
    let metadata = StateDict::read_safetensors_metadata(path)?;
    let json = metadata.get(WEIGHTS_CONFIG_KEY).ok_or_else(|| NnError::Format {
        path: path.to_path_buf(),
        problem: format!("no `{WEIGHTS_CONFIG_KEY}` entry in the header: not written by visage (give the architecture)"),
    })?;
    serde_json::from_str(json)
        .map_err(|e| NnError::Format { path: path.to_path_buf(), problem: format!("`{WEIGHTS_CONFIG_KEY}` is not a backbone config: {e}") })
}

/// What `visage model info` reports about an architecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub arch: Arch,
    pub layout: IResNetLayout,
    /// Parameters, PyTorch's count (running statistics excluded).
    pub params: u64,
    /// FLOPs per face in insightface's (ptflops') convention: conv + FC
    /// multiply-accumulates plus BatchNorm, PReLU and bias elements.
    pub flops: u64,
    /// The conv + FC multiply-accumulates alone.
    pub macs: u64,
    /// `[1, 3, S, S]`, NCHW.
    pub input_shape: [usize; 4],
    pub feature_dim: usize,
}

impl BackboneConfig {
    /// Builds the network lazily (no weights are drawn) and reads its counts.
    pub fn info<B: Backend>(&self, device: &B::Device) -> Result<ModelInfo, NnError> {
        let shape = self.shape()?;
        let network = shape.init::<B>(device)?;
        let cost = network.cost(shape.input_size());
        let side = shape.input_size();
        Ok(ModelInfo {
            arch: self.arch,
            layout: self.layout,
            params: network.num_torch_params(&shape),
            flops: cost.flops(),
            macs: cost.macs,
            input_shape: [1, 3, side, side],
            feature_dim: shape.embedding_size(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_toml_names_the_backbone() {
        let config: BackboneConfig = toml::from_str("arch = \"iresnet50\"\nembedding_size = 512\n").unwrap();
        assert_eq!(config, BackboneConfig::new(Arch::Iresnet50));
        let config: BackboneConfig = toml::from_str("arch = \"r100\"\nlayout = \"adaface\"\ndropout = 0.4\n").unwrap();
        assert_eq!(config.arch, Arch::Iresnet100);
        assert_eq!(config.layout, IResNetLayout::Adaface);
        assert_eq!(config.dropout, 0.4);
        let config: BackboneConfig = toml::from_str("arch = \"mbf\"\nembedding_size = 128\n").unwrap();
        assert_eq!(config.arch, Arch::Mobilefacenet);
        assert_eq!(config.embedding_size, 128);
    }

    #[test]
    fn misspelt_fields_and_unknown_archs_are_refused() {
        let error = toml::from_str::<BackboneConfig>("arch = \"iresnet50\"\nembeding_size = 512\n").unwrap_err();
        assert!(error.to_string().contains("embeding_size"), "{error}");
        let error = "resnet50".parse::<Arch>().unwrap_err().to_string();
        assert!(error.contains("resnet50") && error.contains("iresnet50 (r50)"), "{error}");
        assert_eq!("IResNet-100".parse::<Arch>().unwrap(), Arch::Iresnet100);
        assert_eq!("mbf_large".parse::<Arch>().unwrap(), Arch::MobilefacenetLarge);
    }

    #[test]
    fn iresnet_options_are_refused_for_mobilefacenet() {
        let config = BackboneConfig { layout: IResNetLayout::Adaface, ..BackboneConfig::new(Arch::Mobilefacenet) };
        assert!(config.shape().unwrap_err().to_string().contains("layout"));
        let config = BackboneConfig { dropout: 0.2, ..BackboneConfig::new(Arch::Mobilefacenet) };
        assert!(config.shape().unwrap_err().to_string().contains("dropout"));
    }
}
