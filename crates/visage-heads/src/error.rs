//! Errors of the margin heads. Each one names the input and what was expected,
//! so a training run or a `visage heads eval` call can say exactly what is wrong.

use thiserror::Error;

/// Why a head could not be built or could not run on a batch. Nothing is updated
/// when one is returned (AdaFace's running statistics included).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HeadError {
    /// A parameter is outside the range where the head's formula is defined.
    #[error("{head}: parameter `{param}` = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The head's `kind` as written in configs (`"arcface"`, …; `"partial_fc"` for Partial FC).
        head: &'static str,
        /// The parameter's field name (`"s"`, `"m"`, `"l_a"`, …).
        param: &'static str,
        /// The value given (`usize` parameters converted to `f64`).
        value: f64,
        /// The range the parameter must lie in, in words.
        reason: String,
    },

    /// MagFace's convergence theorem needs `λ_g ≥ s·K / (−g'(l_a))`.
    #[error(
        "magface: lambda_g = {lambda_g} breaks the paper's bound lambda_g >= s*K/(-g'(l_a)) = \
         {s}*{slope_k:.6}/{neg_g_prime:.6} = {bound:.4} (K = (u_m-l_m)/(u_a-l_a), \
         g'(a) = 1/u_a^2 - 1/a^2); raise lambda_g to at least {bound:.4} or change s, l_m, u_m, l_a, u_a"
    )]
    MagFaceBound {
        /// The `λ_g` given.
        lambda_g: f64,
        /// The logit scale `s`.
        s: f64,
        /// `K = (u_m − l_m)/(u_a − l_a)`, the margin's slope in radians per unit magnitude.
        slope_k: f64,
        /// `−g'(l_a) = 1/l_a² − 1/u_a²` (positive for valid ranges).
        neg_g_prime: f64,
        /// The smallest `λ_g` accepted: `s·K / (−g'(l_a))`.
        bound: f64,
    },

    /// Two inputs disagree on a dimension, or an input is empty.
    #[error("shape mismatch: {what}")]
    Shape {
        /// Which inputs and which sizes, in words.
        what: String,
    },

    /// A feature or class centre of zero length has no direction, so its cosine is undefined.
    #[error("{tensor} row {row} has zero norm: a zero vector has no direction, so its cosine to anything is undefined")]
    ZeroNorm {
        /// `"embeddings"` (features) or `"weights"` (class centres).
        tensor: &'static str,
        /// Row index; for `"weights"`, counted across the shards passed to the head
        /// (under Partial FC, among the sampled centres, not the full matrix).
        row: usize,
    },

    /// NaN or infinity in an input (detected through the row's norm).
    #[error("{tensor} row {row} holds a non-finite value (NaN or infinity)")]
    NonFinite {
        /// `"embeddings"` (features) or `"weights"` (class centres).
        tensor: &'static str,
        /// Row index, counted as for [`HeadError::ZeroNorm`].
        row: usize,
    },

    /// A label names a class that has no centre.
    #[error("labels[{index}] = {label} is out of range: there are {classes} classes (labels must be 0..{classes})")]
    LabelOutOfRange {
        /// Position of the label in the batch.
        index: usize,
        /// The label as given.
        label: i64,
        /// Number of classes (centre rows / K, summed over all shards).
        classes: usize,
    },

    /// The head cannot run in the way asked (SV-AM-Softmax with its class
    /// centres split across processes).
    #[error("{head}: {what}")]
    Unsupported {
        /// The head's `kind` as written in configs.
        head: &'static str,
        /// What it cannot do, and why.
        what: String,
    },

    /// AdaFace's running σ uses the Bessel-corrected standard deviation of the batch norms.
    #[error("adaface needs at least 2 samples per batch to update its running std (Bessel's correction), got {batch}")]
    BatchTooSmall {
        /// Samples in the batch (fewer than 2).
        batch: usize,
    },
}

impl HeadError {
    /// Always the input's fault (exit code 2 at the command line): the
    /// head's parameters or the batch given to it (shapes, labels, norms,
    /// non-finite values) are refused before anything is computed.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}
