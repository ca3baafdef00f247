//! Sub-center ArcFace (Deng et al., TPAMI): K centres per class; a class's cosine
//! is the largest over its sub-centres, so noisy samples can gather around a
//! non-dominant sub-centre instead of pulling the clean one. The margin rule is
//! ArcFace's.

use serde::{Deserialize, Serialize};

use super::arcface::ArcFaceConfig;
use crate::error::HeadError;

/// Sub-center ArcFace's parameters: ArcFace's plus `k`, with ArcFace's defaults and
/// `k = 3`; unknown fields are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubCenterConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
    /// Additive angular margin, radians, in [0, π) (default 0.5).
    pub m: f64,
    /// ArcFace's `easy_margin`: margin only where `cos θ > 0` (default false).
    pub easy_margin: bool,
    /// Sub-centres per class, ≥ 1 (default 3); centre row `c·k + j` is sub-centre `j` of class `c`.
    pub k: usize,
}

impl Default for SubCenterConfig {
    fn default() -> Self {
        let arc = ArcFaceConfig::default();
        Self { s: arc.s, m: arc.m, easy_margin: arc.easy_margin, k: 3 }
    }
}

impl SubCenterConfig {
    /// The ArcFace rule applied after the max over sub-centres.
    pub fn arcface(&self) -> ArcFaceConfig {
        ArcFaceConfig { s: self.s, m: self.m, easy_margin: self.easy_margin }
    }

    /// Checks `k ≥ 1` and ArcFace's ranges; [`HeadError::InvalidParameter`] otherwise.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.k == 0 {
            return Err(HeadError::InvalidParameter {
                head: "subcenter",
                param: "k",
                value: 0.0,
                reason: "each class needs at least one sub-centre".into(),
            });
        }
        self.arcface().validate()
    }
}
