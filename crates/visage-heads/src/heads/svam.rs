//! SV-AM-Softmax (Wang et al. 2018, "Support Vector Guided Softmax Loss"; a
//! baseline in MagFace's recognition table): the AM-Softmax (CosFace) target
//! `s·(cos θ_y − m)`, and every non-target class that is a *support vector*
//! for the sample — `cos θ_k > cos θ_y − m`, a detached indicator — gets the
//! logit `s·(t·cos θ_k + t − 1)` instead of `s·cos θ_k`, so hard negatives
//! weigh more. With `t = 1` the head is CosFace.

use serde::{Deserialize, Serialize};

use super::check_scale;
use super::cosface::CosFaceConfig;
use crate::error::HeadError;

/// SV-AM-Softmax's parameters; missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SvAmConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 32).
    pub s: f64,
    /// Additive cosine margin of the target, in [0, 2) (default 0.35).
    pub m: f64,
    /// Weight of the support vectors' logits, finite and ≥ 1 (default 1.2; 1 is CosFace).
    pub t: f64,
}

impl Default for SvAmConfig {
    fn default() -> Self {
        Self { s: 32.0, m: 0.35, t: 1.2 }
    }
}

impl SvAmConfig {
    /// Checks `s > 0`, `m ∈ [0, 2)` and `t ≥ 1`; [`HeadError::InvalidParameter`] otherwise.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("svam", self.s)?;
        if !(self.m.is_finite() && (0.0..2.0).contains(&self.m)) {
            return Err(HeadError::InvalidParameter { head: "svam", param: "m", value: self.m, reason: "a cosine margin must lie in [0, 2)".into() });
        }
        if !(self.t.is_finite() && self.t >= 1.0) {
            return Err(HeadError::InvalidParameter {
                head: "svam",
                param: "t",
                value: self.t,
                reason: "t must be at least 1 (t < 1 would make hard negatives weigh less; t = 1 is CosFace)".into(),
            });
        }
        Ok(())
    }

    /// The CosFace head with the same `s` and `m`: SV-AM-Softmax's target rule.
    pub fn cosface(&self) -> CosFaceConfig {
        CosFaceConfig { s: self.s, m: self.m }
    }
}
