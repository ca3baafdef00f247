//! [`BackboneConfig`] (a backbone as a training config names it) and
//! [`BackboneShape`] (the layer shapes it resolves to).

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::backbone::Backbone;
use crate::error::NnError;
use crate::iresnet::{IResNetConfig, IResNetLayout};
use crate::mobilefacenet::{self, MobileFaceNetConfig};

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
    /// Which network (`arch = "iresnet50"` or `"r50"`).
    pub arch: Arch,
    /// Length E of the feature vector the backbone outputs; default 512.
    #[serde(default = "default_embedding_size")]
    pub embedding_size: usize,
    /// Dropout probability before the FC layer, in [0, 1); default 0
    /// (insightface), AdaFace trains with 0.4. IResNet only: MobileFaceNet
    /// refuses anything but 0.
    #[serde(default)]
    pub dropout: f64,
    /// Whose IResNet module tree, shortcut rule and tensor names; default
    /// insightface's (also MagFace's). MobileFaceNet refuses `adaface`.
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
    /// An IResNet of either layout.
    IResNet(IResNetConfig),
    /// A MobileFaceNet (insightface's layout).
    MobileFaceNet(MobileFaceNetConfig),
}

impl BackboneConfig {
    /// `arch` with every other field at its default: 512-d features, no
    /// dropout, insightface layout, the arch's own width scale.
    pub fn new(arch: Arch) -> Self {
        Self { arch, embedding_size: default_embedding_size(), dropout: 0.0, layout: IResNetLayout::default(), width_scale: None }
    }

    /// The layer shapes, after checking the options fit the architecture.
    ///
    /// [`NnError::InvalidConfig`] naming the field when `width_scale` is set
    /// for an IResNet, `layout` or a non-zero `dropout` for a MobileFaceNet,
    /// or a value out of range (zero embedding size, dropout outside [0, 1)).
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

    /// [`Self::shape`], then [`BackboneShape::init`]: a fresh network with
    /// the reference's random initialisation, drawn lazily on first use.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Backbone<B>, NnError> {
        self.shape()?.init(device)
    }
}

impl BackboneShape {
    /// A fresh network of this shape on `device`, with the reference
    /// implementation's initialisation (see [`IResNetConfig::init`] and
    /// [`MobileFaceNetConfig::init`]); burn draws each parameter lazily, on
    /// first use. Fails with [`NnError::InvalidConfig`] on a shape that
    /// does not validate.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Backbone<B>, NnError> {
        Ok(match self {
            BackboneShape::IResNet(config) => Backbone::IResNet(config.init(device)?),
            BackboneShape::MobileFaceNet(config) => Backbone::MobileFaceNet(config.init(device)?),
        })
    }

    /// Side S of the square input in pixels: the network takes `[N, 3, S, S]` (112 for every published model).
    pub fn input_size(&self) -> usize {
        match self {
            BackboneShape::IResNet(config) => config.input_size,
            BackboneShape::MobileFaceNet(config) => config.input_size,
        }
    }

    /// Length E of the feature vector: the network returns `[N, E]`.
    pub fn embedding_size(&self) -> usize {
        match self {
            BackboneShape::IResNet(config) => config.embedding_size,
            BackboneShape::MobileFaceNet(config) => config.embedding_size,
        }
    }

    /// The reference implementation's state-dict key for a burn path inside
    /// the network (a path of the inner `IResNet`/`MobileFaceNet`, without
    /// the `Backbone` variant), e.g. `layer1.0.bn1.gamma` →
    /// `layer1.0.bn1.weight` for insightface's IResNet. `None`: the
    /// parameter has no stored counterpart (AdaFace's affine-free feature
    /// BatchNorm) and keeps its fixed value.
    pub fn torch_key(&self, burn_path: &str) -> Option<String> {
        match self {
            BackboneShape::IResNet(config) => config.torch_key(burn_path),
            BackboneShape::MobileFaceNet(_) => Some(mobilefacenet::mobilefacenet_key(burn_path)),
        }
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
