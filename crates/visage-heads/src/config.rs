//! Which head, with which parameters. Parsed from JSON (`visage heads eval`) or
//! TOML (training configs) with `kind` naming the head; unknown parameters are
//! refused so a typo never silently falls back to a default.

use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::heads::{
    adaface::AdaFaceConfig, arcface::ArcFaceConfig, combined::CombinedConfig, cosface::CosFaceConfig, magface::MagFaceConfig,
    normface::NormFaceConfig, softmax::SoftmaxConfig, sphereface::SphereFaceConfig, subcenter::SubCenterConfig, svam::SvAmConfig,
};

/// A head and its parameters, tagged by `kind` (one of [`HeadConfig::KINDS`]); each
/// variant's parameters default to the values in `docs/spec/heads.md`'s table, so
/// `{"kind": "arcface"}` alone is ArcFace with s = 64, m = 0.5.
///
/// Deserialising does not check ranges: call [`validate`](Self::validate) (or build a
/// [`MarginHead`](crate::MarginHead), which does).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HeadConfig {
    /// `softmax`: plain linear logits, no normalisation, scale or margin.
    Softmax(SoftmaxConfig),
    /// `normface`: `s·cos θ`, no margin.
    NormFace(NormFaceConfig),
    /// `sphereface`: multiplicative angular margin, `s·ψ(θ)`.
    SphereFace(SphereFaceConfig),
    /// `cosface`: additive cosine margin, `s·(cos θ − m)`.
    CosFace(CosFaceConfig),
    /// `arcface`: additive angular margin, `s·cos(θ + m)` with the paper's fallback.
    ArcFace(ArcFaceConfig),
    /// `combined`: insightface's `s·(cos(m1·θ + m2) − m3)`.
    Combined(CombinedConfig),
    /// `subcenter`: ArcFace over the best of K sub-centres per class.
    SubCenter(SubCenterConfig),
    /// `magface`: ArcFace with a magnitude-dependent margin plus a magnitude regulariser.
    MagFace(MagFaceConfig),
    /// `adaface`: a margin driven by the feature norm relative to running batch statistics.
    AdaFace(AdaFaceConfig),
    /// `svam`: SV-AM-Softmax, the CosFace target with the support vectors' logits weighted by `t`.
    SvAm(SvAmConfig),
}

impl HeadConfig {
    /// Every kind's name as written in configs.
    pub const KINDS: [&'static str; 10] =
        ["softmax", "normface", "sphereface", "cosface", "arcface", "combined", "subcenter", "magface", "adaface", "svam"];

    /// The `kind` tag this variant is written with (an entry of [`KINDS`](Self::KINDS)).
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
            Self::SvAm(_) => "svam",
        }
    }

    /// Checks every parameter's range (and MagFace's `λ_g` bound).
    ///
    /// # Errors
    /// [`HeadError::InvalidParameter`] naming the first parameter out of range, or
    /// [`HeadError::MagFaceBound`].
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
            Self::SvAm(c) => c.validate(),
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
            Self::SvAm(c) => Some(c.s),
        }
    }
}
