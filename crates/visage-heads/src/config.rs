//! Which head, with which parameters. Parsed from JSON (`visage heads eval`) or
//! TOML (training configs) with `kind` naming the head; unknown parameters are
//! refused so a typo never silently falls back to a default.

use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::heads::{
    adaface::AdaFaceConfig, arcface::ArcFaceConfig, combined::CombinedConfig, cosface::CosFaceConfig, magface::MagFaceConfig,
    normface::NormFaceConfig, softmax::SoftmaxConfig, sphereface::SphereFaceConfig, subcenter::SubCenterConfig,
};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HeadConfig {
    Softmax(SoftmaxConfig),
    NormFace(NormFaceConfig),
    SphereFace(SphereFaceConfig),
    CosFace(CosFaceConfig),
    ArcFace(ArcFaceConfig),
    Combined(CombinedConfig),
    SubCenter(SubCenterConfig),
    MagFace(MagFaceConfig),
    AdaFace(AdaFaceConfig),
}

impl HeadConfig {
    /// Every kind's name as written in configs.
    pub const KINDS: [&'static str; 9] = ["softmax", "normface", "sphereface", "cosface", "arcface", "combined", "subcenter", "magface", "adaface"];

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Softmax(_) => "softmax",
            Self::NormFace(_) => "normface",
            Self::SphereFace(_) => "sphereface",
            Self::CosFace(_) => "cosface",
            Self::ArcFace(_) => "arcface",
            Self::Combined(_) => "combined",
            Self::SubCenter(_) => "subcenter",
            Self::MagFace(_) => "magface",
            Self::AdaFace(_) => "adaface",
        }
    }

    pub fn validate(&self) -> Result<(), HeadError> {
        match self {
            Self::Softmax(_) => Ok(()),
            Self::NormFace(c) => c.validate(),
            Self::SphereFace(c) => c.validate(),
            Self::CosFace(c) => c.validate(),
            Self::ArcFace(c) => c.validate(),
            Self::Combined(c) => c.validate(),
            Self::SubCenter(c) => c.validate(),
            Self::MagFace(c) => c.validate(),
            Self::AdaFace(c) => c.validate(),
        }
    }

    /// Rows of the centre matrix per class (K for sub-center ArcFace, else 1).
    pub fn centres_per_class(&self) -> usize {
        match self {
            Self::SubCenter(c) => c.k,
            _ => 1,
        }
    }

    /// The logit scale `s` of the cosine heads; `None` for plain softmax.
    pub fn scale(&self) -> Option<f64> {
        match self {
            Self::Softmax(_) => None,
            Self::NormFace(c) => Some(c.s),
            Self::SphereFace(c) => Some(c.s),
            Self::CosFace(c) => Some(c.s),
            Self::ArcFace(c) => Some(c.s),
            Self::Combined(c) => Some(c.s),
            Self::SubCenter(c) => Some(c.s),
            Self::MagFace(c) => Some(c.s),
            Self::AdaFace(c) => Some(c.s),
        }
    }
}
