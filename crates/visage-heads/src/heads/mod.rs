//! One file per margin head, each holding the head's parameters (with the
//! papers' defaults) and its target-logit rule. `docs/spec/heads.md` is the
//! definition they follow.

pub mod adaface;
pub mod arcface;
pub mod combined;
pub mod cosface;
pub mod magface;
pub mod normface;
pub mod softmax;
pub mod sphereface;
pub mod subcenter;
pub mod svam;

use crate::error::HeadError;

/// Shared check: the scale `s` multiplies every cosine logit and must be positive.
pub(crate) fn check_scale(head: &'static str, s: f64) -> Result<(), HeadError> {
    if !(s.is_finite() && s > 0.0) {
        return Err(HeadError::InvalidParameter { head, param: "s", value: s, reason: "the logit scale must be a finite positive number".into() });
    }
    Ok(())
}

/// Shared check for an angular margin in radians.
pub(crate) fn check_angular_margin(head: &'static str, param: &'static str, m: f64) -> Result<(), HeadError> {
    if !(m.is_finite() && (0.0..std::f64::consts::PI).contains(&m)) {
        return Err(HeadError::InvalidParameter { head, param, value: m, reason: "an angular margin must lie in [0, π) radians".into() });
    }
    Ok(())
}
