//! Angular building blocks shared by the heads: normalisation and a sine of the
//! angle whose gradient stays finite at `cos θ = ±1`.

use burn::tensor::{backend::Backend, Tensor};

/// Floor under `1 − cos²θ` before the square root. `d/dc √(1−c²)` is infinite at
/// `c = ±1`, and even a branch that `mask_where` discards would turn that infinity
/// into NaN in the backward pass (0 · ∞). Below the floor the clamp's gradient is 0,
/// so the sine's gradient is exactly 0 there and finite everywhere else; the value
/// changes by at most √floor = 1e-6, far below f32 resolution of the logits.
pub const SIN_SQ_FLOOR: f64 = 1e-12;

/// Interior clamp for `acos` where an angle itself is needed (SphereFace with a
/// non-integer m, combined margins with m1 ≠ 1): `acos'` is infinite at ±1, and
/// 1 − 1e-6 is exactly representable in f32 with `|acos'| ≈ 707` there.
pub const ACOS_INTERIOR: f64 = 1e-6;

/// `sin θ = √(1 − cos²θ)` for θ ∈ [0, π], with a finite gradient everywhere.
pub fn sin_from_cos<B: Backend, const D: usize>(cos: Tensor<B, D>) -> Tensor<B, D> {
    (cos.square().neg() + 1.0).clamp_min(SIN_SQ_FLOOR).sqrt()
}

/// `θ = acos(c)` with `c` clamped to `[−1 + δ, 1 − δ]` so the gradient is finite.
pub fn angle_from_cos<B: Backend, const D: usize>(cos: Tensor<B, D>) -> Tensor<B, D> {
    cos.clamp(-1.0 + ACOS_INTERIOR, 1.0 - ACOS_INTERIOR).acos()
}

/// Row-wise L2 norms (`B×1`) of a `B×D` matrix.
pub fn row_norms<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.square().sum_dim(1).sqrt()
}

/// Per-row constant as a `B×1` tensor, so constant and per-sample margins share one code path.
pub fn per_row<B: Backend>(value: f64, rows: usize, device: &B::Device) -> Tensor<B, 2> {
    Tensor::full([rows, 1], value, device)
}
