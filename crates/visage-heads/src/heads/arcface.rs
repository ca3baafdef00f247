//! ArcFace / additive angular margin (Deng et al. 2019): target logit `s·cos(θ + m)`.
//!
//! `cos(θ + m)` stops being monotonic in θ once `θ + m > π`; the paper (and
//! insightface) then falls back to the CosFace-like `cos θ − m·sin(π − m)`, which
//! meets `cos(θ + m)` continuously at `θ = π − m`. `easy_margin` instead applies
//! the margin only where `cos θ > 0`. The rule is shared with sub-center ArcFace
//! and MagFace, which supplies a per-sample margin.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::{check_angular_margin, check_scale};
use crate::angular::{per_row, sin_from_cos};
use crate::error::HeadError;

/// ArcFace's parameters; missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArcFaceConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
    /// Additive angular margin, radians, in [0, π) (default 0.5).
    pub m: f64,
    /// Apply the margin only where `cos θ > 0` and leave `s·cos θ` elsewhere, instead of
    /// the `cos θ − m·sin m` fallback (default false).
    pub easy_margin: bool,
}

impl Default for ArcFaceConfig {
    fn default() -> Self {
        Self { s: 64.0, m: 0.5, easy_margin: false }
    }
}

impl ArcFaceConfig {
    /// Checks `s > 0` and `m ∈ [0, π)`; [`HeadError::InvalidParameter`] otherwise.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("arcface", self.s)?;
        check_angular_margin("arcface", "m", self.m)
    }

    /// Scaled target logits for the target cosines (`B×1`).
    pub fn target_logit<B: Backend>(&self, cos_target: Tensor<B, 2>) -> Tensor<B, 2> {
        let [rows, _] = cos_target.dims();
        let margin_rad = per_row(self.m, rows, &cos_target.device());
        additive_angular_logit(cos_target, margin_rad, self.easy_margin, self.s)
    }
}

/// `s·cos(θ + m)` with the fallback described in the module docs, for a margin
/// that may differ per row (`margin_rad`, `B×1`).
///
/// `cos(θ + m) = cos θ·cos m − sin θ·sin m` is evaluated without `acos`, so the
/// gradient stays finite at `cos θ = ±1`.
pub fn additive_angular_logit<B: Backend>(cos_target: Tensor<B, 2>, margin_rad: Tensor<B, 2>, easy_margin: bool, s: f64) -> Tensor<B, 2> {
    let sin_target = sin_from_cos(cos_target.clone());
    let cos_m = margin_rad.clone().cos();
    let sin_m = margin_rad.clone().sin();
    let cos_theta_plus_m = cos_target.clone() * cos_m.clone() - sin_target * sin_m.clone();
    let logit = if easy_margin {
        let margin_applies = cos_target.clone().greater_elem(0.0);
        cos_target.mask_where(margin_applies, cos_theta_plus_m)
    } else {
        // θ + m < π  ⇔  cos θ > cos(π − m) = −cos m.
        let margin_applies = cos_target.clone().greater(cos_m.neg());
        // m·sin(π − m) = m·sin m.
        let fallback = cos_target - margin_rad * sin_m;
        fallback.mask_where(margin_applies, cos_theta_plus_m)
    };
    logit * s
}
