//! AdaFace (Kim et al., CVPR 2022): the margin adapts to image quality, using
//! the feature norm relative to running batch statistics as the quality proxy.
//! High-norm (good) samples get an angular margin, low-norm (hard) ones a
//! smaller additive margin, so unrecognisable faces are not over-emphasised.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::{check_angular_margin, check_scale};
use crate::error::HeadError;

/// AdaFace's parameters (`docs/spec/heads.md`, "AdaFace"); missing fields take the
/// defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaFaceConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
    /// Margin, radians, in [0, π) (default 0.4).
    pub m: f64,
    /// Concentration of the norm statistic: `ŝ = clip(h·(n − μ)/(σ + eps), −1, 1)`; > 0 (default 0.333).
    pub h: f64,
    /// Momentum of the running norm statistics, in (0, 1] (default 0.01).
    pub t_alpha: f64,
    /// Keeps cosines in `[−1 + eps, 1 − eps]` and the shifted angle in `[eps, π − eps]`,
    /// and is added to σ in `ŝ`; in (0, 0.5) (default 1e-3).
    pub eps: f64,
}

impl Default for AdaFaceConfig {
    fn default() -> Self {
        Self { s: 64.0, m: 0.4, h: 0.333, t_alpha: 0.01, eps: 1e-3 }
    }
}

/// Norms are clipped to this range before any statistic, as in AdaFace.
pub const NORM_CLIP: (f64, f64) = (0.001, 100.0);

/// The running mean and standard deviation of feature norms: AdaFace's only
/// state, saved with checkpoints (field names as in AdaFace's buffers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaFaceState {
    /// Running mean μ of the clipped feature norms (starts at 20).
    pub batch_mean: f64,
    /// Running standard deviation σ of the clipped feature norms (starts at 100).
    pub batch_std: f64,
}

impl Default for AdaFaceState {
    fn default() -> Self {
        Self { batch_mean: 20.0, batch_std: 100.0 }
    }
}

impl AdaFaceState {
    /// `μ ← α·mean(n) + (1−α)·μ`, `σ ← α·std(n) + (1−α)·σ`, std with Bessel's correction.
    ///
    /// # Errors
    /// [`HeadError::BatchTooSmall`] for fewer than 2 norms; the state is then unchanged.
    pub fn update(&mut self, clipped_norms: &[f64], t_alpha: f64) -> Result<(), HeadError> {
        let count = clipped_norms.len();
        if count < 2 {
            return Err(HeadError::BatchTooSmall { batch: count });
        }
        let mean = clipped_norms.iter().sum::<f64>() / count as f64;
        let variance = clipped_norms.iter().map(|n| (n - mean) * (n - mean)).sum::<f64>() / (count - 1) as f64;
        self.batch_mean = t_alpha * mean + (1.0 - t_alpha) * self.batch_mean;
        self.batch_std = t_alpha * variance.sqrt() + (1.0 - t_alpha) * self.batch_std;
        Ok(())
    }
}

impl AdaFaceConfig {
    /// Checks the ranges given on each field; [`HeadError::InvalidParameter`] names the first one broken.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("adaface", self.s)?;
        check_angular_margin("adaface", "m", self.m)?;
        let checks: [(&'static str, f64, bool, &str); 3] = [
            ("h", self.h, self.h > 0.0, "must be positive"),
            ("t_alpha", self.t_alpha, self.t_alpha > 0.0 && self.t_alpha <= 1.0, "a momentum must lie in (0, 1]"),
            ("eps", self.eps, self.eps > 0.0 && self.eps < 0.5, "must lie in (0, 0.5)"),
        ];
        for (param, value, ok, reason) in checks {
            if !(value.is_finite() && ok) {
                return Err(HeadError::InvalidParameter { head: "adaface", param, value, reason: reason.into() });
            }
        }
        Ok(())
    }

    /// Clip the (detached) norms, update `state` with them, and return the
    /// per-sample quality indicator `ŝ ∈ [−1, 1]` computed with the updated state.
    ///
    /// # Errors
    /// [`HeadError::BatchTooSmall`] for fewer than 2 norms, with `state` untouched.
    pub fn norm_indicator(&self, norms: &[f64], state: &mut AdaFaceState) -> Result<Vec<f64>, HeadError> {
        let clipped: Vec<f64> = norms.iter().map(|n| n.clamp(NORM_CLIP.0, NORM_CLIP.1)).collect();
        state.update(&clipped, self.t_alpha)?;
        Ok(clipped.iter().map(|n| (self.h * (n - state.batch_mean) / (state.batch_std + self.eps)).clamp(-1.0, 1.0)).collect())
    }

    /// Clamps cosines (every class, any shape) to `[−1 + eps, 1 − eps]`, so the `acos`
    /// in [`target_logit`](Self::target_logit) has a finite gradient.
    pub fn clamp_cosines<B: Backend, const D: usize>(&self, cos: Tensor<B, D>) -> Tensor<B, D> {
        cos.clamp(-1.0 + self.eps, 1.0 - self.eps)
    }

    /// Target logits for (already clamped) target cosines and the indicator `ŝ` (`B×1`):
    /// `θ' = clip(θ − m·ŝ, eps, π − eps)`, logit `s·(cos θ' − (m + m·ŝ))`.
    pub fn target_logit<B: Backend>(&self, cos_target: Tensor<B, 2>, indicator: Tensor<B, 2>) -> Tensor<B, 2> {
        let theta = cos_target.acos();
        let shifted = (theta - indicator.clone() * self.m).clamp(self.eps, std::f64::consts::PI - self.eps);
        (shifted.cos() - (indicator * self.m + self.m)) * self.s
    }
}
