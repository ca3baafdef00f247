//! Sub-center ArcFace (Deng et al., TPAMI): K centres per class; a class's cosine
//! is the largest over its sub-centres, so noisy samples can gather around a
//! non-dominant sub-centre instead of pulling the clean one. The margin rule is
//! ArcFace's.

use serde::{Deserialize, Serialize};

use super::arcface::ArcFaceConfig;
use crate::error::HeadError;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubCenterConfig {
    pub s: f64,
    pub m: f64,
    pub easy_margin: bool,
    /// Sub-centres per class; centre row `c·k + j` is sub-centre `j` of class `c`.
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
