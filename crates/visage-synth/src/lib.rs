//! visage-synth: face images that carry a given identity, made by
//! optimising the *input* of a frozen pretrained recogniser (the ArcFace
//! paper's generation from network gradients, in the DeepInversion form).
//!
//! Nothing is trained and there is no generator network. A batch of images
//! starts as noise and is updated by Adam to lower
//!
//! ```text
//! loss = mean_i (1 − cos(f(x_i), t_i))                       identity
//!      + λ_bn · mean_l (‖μ_l − μ̂_l‖₂ + ‖σ²_l − σ̂²_l‖₂)        BatchNorm-statistics prior
//!      + λ_tv · TV(x) + λ_l2 · mean(x²)                         image priors
//! ```
//!
//! where `f` is the recogniser in eval mode, `t_i` the target embeddings,
//! and `μ_l, σ²_l` the per-channel batch mean and (biased) variance of the
//! input of each spatial BatchNorm layer `l` on the synthetic batch, pulled
//! towards that layer's running statistics `μ̂_l, σ̂²_l` from training. The
//! prior is what makes the images face-like: the recogniser alone is
//! satisfied by adversarial texture. Each step sees a randomly shifted (and
//! mirrored) copy of the images, so the identity must survive small moves.
//!
//! - [`frozen`]: the forward hook that normalises with the running
//!   statistics under autodiff and accumulates the prior;
//! - [`priors`]: total variation and the L2 image prior;
//! - [`canvas`]: the images being optimised, their mapping into the
//!   recogniser's input normalisation, and back to pixels;
//! - [`synth`]: the optimisation loop and its settings;
//! - [`embed`]: embeddings of images under the burn network (targets and
//!   the final check), through the same normalisation as inference.

#![warn(missing_docs)]

pub mod canvas;
pub mod embed;
pub mod frozen;
pub mod priors;
pub mod synth;

pub use embed::embed_faces;
pub use synth::{objective, synthesize, Objective, StepReport, SynthConfig, SynthError, Synthesis};
