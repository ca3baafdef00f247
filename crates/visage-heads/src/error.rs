//! Errors of the margin heads. Each one names the input and what was expected,
//! so a training run or a `visage heads eval` call can say exactly what is wrong.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum HeadError {
    /// A parameter is outside the range where the head's formula is defined.
    #[error("{head}: parameter `{param}` = {value} is invalid: {reason}")]
    InvalidParameter { head: &'static str, param: &'static str, value: f64, reason: String },

    /// MagFace's convergence theorem needs `λ_g ≥ s·K / (−g'(l_a))`.
    #[error(
        "magface: lambda_g = {lambda_g} breaks the paper's bound lambda_g >= s*K/(-g'(l_a)) = \
         {s}*{slope_k:.6}/{neg_g_prime:.6} = {bound:.4} (K = (u_m-l_m)/(u_a-l_a), \
         g'(a) = 1/u_a^2 - 1/a^2); raise lambda_g to at least {bound:.4} or change s, l_m, u_m, l_a, u_a"
    )]
    MagFaceBound { lambda_g: f64, s: f64, slope_k: f64, neg_g_prime: f64, bound: f64 },

    /// Two inputs disagree on a dimension.
    #[error("shape mismatch: {what}")]
    Shape { what: String },

    /// A feature or class centre of zero length has no direction, so its cosine is undefined.
    #[error("{tensor} row {row} has zero norm: a zero vector has no direction, so its cosine to anything is undefined")]
    ZeroNorm { tensor: &'static str, row: usize },

    /// NaN or infinity in an input.
    #[error("{tensor} row {row} holds a non-finite value (NaN or infinity)")]
    NonFinite { tensor: &'static str, row: usize },

    #[error("labels[{index}] = {label} is out of range: there are {classes} classes (labels must be 0..{classes})")]
    LabelOutOfRange { index: usize, label: i64, classes: usize },

    /// AdaFace's running σ uses the Bessel-corrected standard deviation of the batch norms.
    #[error("adaface needs at least 2 samples per batch to update its running std (Bessel's correction), got {batch}")]
    BatchTooSmall { batch: usize },
}
