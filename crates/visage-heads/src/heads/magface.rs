//! MagFace (Meng et al., CVPR 2021): a margin that grows with the feature
//! magnitude `a`, plus a regulariser `g(a)` that rewards large magnitudes. At the
//! optimum, easy (high-quality) samples sit at large `a`, so `‖x‖` of a trained
//! backbone ranks faces by quality.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::arcface::additive_angular_logit;
use super::{check_angular_margin, check_scale};
use crate::error::HeadError;

/// MagFace's parameters (`docs/spec/heads.md`, "MagFace"); missing fields take the
/// defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MagFaceConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
    /// Lower bound of the magnitude range; > 0 (default 10).
    pub l_a: f64,
    /// Upper bound of the magnitude range; > `l_a` (default 110).
    pub u_a: f64,
    /// Margin at `a = l_a`, radians, in [0, π) (default 0.45).
    pub l_m: f64,
    /// Margin at `a = u_a`, radians, in [0, π) and > `l_m` (default 0.8).
    pub u_m: f64,
    /// Weight of the magnitude regulariser `g`; at least
    /// [`lambda_g_lower_bound`](Self::lambda_g_lower_bound) (default 35).
    pub lambda_g: f64,
    /// ArcFace's `easy_margin`: margin only where `cos θ > 0` (default true).
    pub easy_margin: bool,
}

impl Default for MagFaceConfig {
    fn default() -> Self {
        Self { s: 64.0, l_a: 10.0, u_a: 110.0, l_m: 0.45, u_m: 0.8, lambda_g: 35.0, easy_margin: true }
    }
}

impl MagFaceConfig {
    /// Checks the ranges given on each field, then the paper's bound on `λ_g`.
    ///
    /// # Errors
    /// [`HeadError::InvalidParameter`] for a range, [`HeadError::MagFaceBound`] (with
    /// the bound's value) when `λ_g` is too small.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("magface", self.s)?;
        if !(self.l_a.is_finite() && self.l_a > 0.0) {
            return Err(invalid("l_a", self.l_a, "the magnitude range must start above 0 (g(a) has 1/a)"));
        }
        if !(self.u_a.is_finite() && self.u_a > self.l_a) {
            return Err(invalid("u_a", self.u_a, "must be greater than l_a"));
        }
        check_angular_margin("magface", "l_m", self.l_m)?;
        check_angular_margin("magface", "u_m", self.u_m)?;
        if self.u_m <= self.l_m {
            return Err(invalid("u_m", self.u_m, "must be greater than l_m: m(a) must be increasing"));
        }
        let bound = self.lambda_g_lower_bound();
        if !(self.lambda_g.is_finite() && self.lambda_g >= bound) {
            return Err(HeadError::MagFaceBound {
                lambda_g: self.lambda_g,
                s: self.s,
                slope_k: self.margin_slope(),
                neg_g_prime: -self.g_prime(self.l_a),
                bound,
            });
        }
        Ok(())
    }

    /// `K = (u_m − l_m)/(u_a − l_a)`: the slope of the linear margin, so `m'(a) = K`.
    pub fn margin_slope(&self) -> f64 {
        (self.u_m - self.l_m) / (self.u_a - self.l_a)
    }

    /// MagFace eq. 4: `m(a) = K·(a − l_a) + l_m`.
    pub fn margin(&self, a: f64) -> f64 {
        self.margin_slope() * (a - self.l_a) + self.l_m
    }

    /// MagFace eq. 5: `g(a) = a/u_a² + 1/a`.
    pub fn g(&self, a: f64) -> f64 {
        a / (self.u_a * self.u_a) + 1.0 / a
    }

    /// `g'(a) = 1/u_a² − 1/a²`, zero at `a = u_a`.
    pub fn g_prime(&self, a: f64) -> f64 {
        1.0 / (self.u_a * self.u_a) - 1.0 / (a * a)
    }

    /// The paper's convergence condition `λ_g ≥ s·K / (−g'(l_a))`.
    pub fn lambda_g_lower_bound(&self) -> f64 {
        self.s * self.margin_slope() / (-self.g_prime(self.l_a))
    }

    /// `a = clamp(‖x‖, l_a, u_a)` (not detached: the clamp passes gradient inside the range).
    fn magnitude<B: Backend>(&self, norms: Tensor<B, 2>) -> Tensor<B, 2> {
        norms.clamp(self.l_a, self.u_a)
    }

    /// Target logits (`B×1`) for raw feature norms `norms` (`B×1`): the ArcFace
    /// rule with the per-sample margin `m(a)`.
    pub fn target_logit<B: Backend>(&self, cos_target: Tensor<B, 2>, norms: Tensor<B, 2>) -> Tensor<B, 2> {
        let margin_rad = (self.magnitude(norms) - self.l_a) * self.margin_slope() + self.l_m;
        additive_angular_logit(cos_target, margin_rad, self.easy_margin, self.s)
    }

    /// The loss term `λ_g·mean g(a)` that rewards large magnitudes.
    pub fn regulariser<B: Backend>(&self, norms: Tensor<B, 2>) -> Tensor<B, 1> {
        let a = self.magnitude(norms);
        let g = a.clone() / (self.u_a * self.u_a) + a.recip();
        g.mean() * self.lambda_g
    }
}

fn invalid(param: &'static str, value: f64, reason: &str) -> HeadError {
    HeadError::InvalidParameter { head: "magface", param, value, reason: reason.into() }
}
