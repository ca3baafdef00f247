//! NormFace (Wang et al. 2017): cosine logits `s·cos θ` with no margin.

use serde::{Deserialize, Serialize};

use super::check_scale;
use crate::error::HeadError;

/// NormFace's only parameter; unknown fields are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormFaceConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
}

impl Default for NormFaceConfig {
    fn default() -> Self {
        Self { s: 64.0 }
    }
}

impl NormFaceConfig {
    /// Checks that `s` is finite and positive; [`HeadError::InvalidParameter`] otherwise.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("normface", self.s)
    }
}
