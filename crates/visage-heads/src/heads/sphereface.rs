//! SphereFace / A-Softmax (Liu et al. 2017): target logit `s·ψ(θ)` with
//! `ψ(θ) = (−1)^k·cos(mθ) − 2k`, `k = ⌊mθ/π⌋` — a monotonically decreasing
//! extension of `cos(mθ)` to the whole of [0, π].

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::check_scale;
use crate::angular::angle_from_cos;
use crate::error::HeadError;

/// SphereFace's parameters; missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SphereFaceConfig {
    /// Logit scale `s` multiplying every cosine logit; finite and > 0 (default 64).
    pub s: f64,
    /// Multiplicative angular margin; finite and ≥ 1, need not be an integer (default 4).
    pub m: f64,
}

impl Default for SphereFaceConfig {
    fn default() -> Self {
        Self { s: 64.0, m: 4.0 }
    }
}

/// Largest integer margin evaluated by Chebyshev recurrence; larger integers use `acos`.
const MAX_CHEBYSHEV_MARGIN: f64 = 16.0;

impl SphereFaceConfig {
    /// Checks `s > 0` and `m ≥ 1`; [`HeadError::InvalidParameter`] otherwise.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_scale("sphereface", self.s)?;
        if !(self.m.is_finite() && self.m >= 1.0) {
            return Err(HeadError::InvalidParameter {
                head: "sphereface",
                param: "m",
                value: self.m,
                reason: "the multiplicative margin must be a finite number ≥ 1".into(),
            });
        }
        Ok(())
    }

    /// `s·ψ(θ)` for the target cosines (`B×1`). `cos(mθ)` is the Chebyshev polynomial
    /// `T_m(cos θ)` for integer `m ≤ 16` (exact, finite gradient at ±1), else `cos(m·acos c)`
    /// with `c` clamped to `[−1 + 1e-6, 1 − 1e-6]`; `k` carries no gradient.
    pub fn target_logit<B: Backend>(&self, cos_target: Tensor<B, 2>) -> Tensor<B, 2> {
        let m = self.m;
        // k is piecewise constant in θ, so it carries no gradient.
        let theta = cos_target.clone().detach().clamp(-1.0, 1.0).acos();
        let k = (theta * (m / std::f64::consts::PI)).floor();
        // (−1)^k = 1 − 2·(k mod 2).
        let parity = k.clone() - (k.clone() * 0.5).floor() * 2.0;
        let sign = parity.neg() * 2.0 + 1.0;
        let cos_m_theta =
            if m.fract() == 0.0 && m <= MAX_CHEBYSHEV_MARGIN { chebyshev(cos_target, m as usize) } else { (angle_from_cos(cos_target) * m).cos() };
        (sign * cos_m_theta - k * 2.0) * self.s
    }
}

/// `cos(nθ) = T_n(cos θ)` by the recurrence `T_{j+1} = 2c·T_j − T_{j−1}`: exact for
/// integer n and, unlike `cos(n·acos c)`, with a finite gradient at `c = ±1`.
fn chebyshev<B: Backend>(c: Tensor<B, 2>, n: usize) -> Tensor<B, 2> {
    let mut previous = c.ones_like();
    let mut current = c.clone();
    if n == 0 {
        return previous;
    }
    for _ in 1..n {
        let next = c.clone() * current.clone() * 2.0 - previous;
        previous = current;
        current = next;
    }
    current
}
