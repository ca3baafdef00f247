//! Combined margin (insightface): target logit `s·(cos(m1·θ + m2) − m3)`, taken as
//! is with no fallback branch. (1, m, 0) is ArcFace wherever `θ + m < π`,
//! (1, 0, m) is CosFace, (m, 0, 0) a SphereFace-like multiplicative margin.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::check_scale;
use crate::angular::{angle_from_cos, sin_from_cos};
use crate::error::HeadError;

/// The combined margin's parameters; missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CombinedConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
    /// Multiplicative angular margin; finite and > 0 (default 1.0).
    pub m1: f64,
    /// Additive angular margin, radians; any finite value (default 0.3).
    pub m2: f64,
    /// Additive cosine margin; any finite value (default 0.2).
    pub m3: f64,
}

impl Default for CombinedConfig {
    /// insightface's combined-margin recipe (1.0, 0.3, 0.2).
    fn default() -> Self {
        Self { s: 64.0, m1: 1.0, m2: 0.3, m3: 0.2 }
    }
}

impl CombinedConfig {
    /// Checks `s > 0`, all margins finite and `m1 > 0`; [`HeadError::InvalidParameter`] otherwise.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("combined", self.s)?;
        for (param, value) in [("m1", self.m1), ("m2", self.m2), ("m3", self.m3)] {
            if !value.is_finite() {
                return Err(HeadError::InvalidParameter { head: "combined", param, value, reason: "must be finite".into() });
            }
        }
        if self.m1 <= 0.0 {
            return Err(HeadError::InvalidParameter {
                head: "combined",
                param: "m1",
                value: self.m1,
                reason: "the multiplicative margin must be positive".into(),
            });
        }
        Ok(())
    }

    /// `s·(cos(m1·θ + m2) − m3)` for the target cosines (`B×1`). With `m1 = 1` it is
    /// evaluated without `acos` (finite gradient at `cos θ = ±1`); otherwise θ comes from
    /// `acos` of the cosine clamped to `[−1 + 1e-6, 1 − 1e-6]`.
    pub fn target_logit<B: Backend>(&self, cos_target: Tensor<B, 2>) -> Tensor<B, 2> {
        let shifted = if self.m1 == 1.0 {
            // Exact and acos-free: cos(θ + m2) = cos θ·cos m2 − sin θ·sin m2.
            let sin_target = sin_from_cos(cos_target.clone());
            cos_target * self.m2.cos() - sin_target * self.m2.sin()
        } else {
            (angle_from_cos(cos_target) * self.m1 + self.m2).cos()
        };
        (shifted - self.m3) * self.s
    }
}
