//! CosFace / large-margin cosine loss (Wang et al. 2018): target logit `s·(cos θ − m)`.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::check_scale;
use crate::error::HeadError;

/// CosFace's parameters; missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CosFaceConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
    /// Additive cosine margin, in [0, 2) (default 0.4).
    pub m: f64,
}

impl Default for CosFaceConfig {
    fn default() -> Self {
        Self { s: 64.0, m: 0.4 }
    }
}

impl CosFaceConfig {
    /// Checks `s > 0` and `m ∈ [0, 2)`; [`HeadError::InvalidParameter`] otherwise.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("cosface", self.s)?;
        if !(self.m.is_finite() && (0.0..2.0).contains(&self.m)) {
            return Err(HeadError::InvalidParameter {
                head: "cosface",
                param: "m",
                value: self.m,
                reason: "a cosine margin must lie in [0, 2)".into(),
            });
        }
        Ok(())
    }

    /// `s·(cos θ − m)` for the target cosines (`B×1`).
    pub fn target_logit<B: Backend>(&self, cos_target: Tensor<B, 2>) -> Tensor<B, 2> {
        (cos_target - self.m) * self.s
    }
}
