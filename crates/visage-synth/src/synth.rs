//! The optimisation: noise → images whose embedding matches the targets.

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use visage_image::{FaceEmbedding, Normalization};
use visage_nn::{Backbone, BackboneShape};

use crate::canvas::{jitter, to_images, to_model_input};
use crate::embed::embed_faces;
use crate::frozen::FrozenStatistics;
use crate::priors::{l2, total_variation};

/// Why [`synthesize`] refused to start (it does not fail once running).
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A target embedding cannot be used: wrong length for the network, a
    /// NaN or infinite value, or the zero vector.
    #[error("target {index}: {message}")]
    Target {
        /// Position of the target in the list given.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A setting is out of range (`steps` 0, `lr` not positive and finite, a
    /// negative or non-finite weight), or no target was given (`targets`).
    #[error("synthesis setting `{field}`: {message}")]
    Config {
        /// The [`SynthConfig`] field at fault, or `targets`.
        field: &'static str,
        /// What it must be.
        message: String,
    },
}

impl SynthError {
    /// Always the input's fault (exit code 2 at the command line): a target
    /// or a setting the caller gave.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

/// The loss weights and the optimiser's settings. The defaults were chosen
/// on the bundled Paddle MobileFaceNet (docs/synth.md has the comparison).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Adam steps.
    pub steps: usize,
    /// Adam's learning rate at step 0 (canvas units, pixels in [−1, 1]);
    /// it decays to 0 along a half cosine.
    pub lr: f64,
    /// λ_bn, the weight of the BatchNorm-statistics prior (0 switches it off).
    pub bn_weight: f32,
    /// λ_tv, the weight of total variation.
    pub tv_weight: f32,
    /// λ_l2, the weight of the L2 image prior.
    pub l2_weight: f32,
    /// Largest random shift per step, in pixels (each axis).
    pub jitter: usize,
    /// Mirror the images on a random half of the steps.
    pub flip: bool,
    /// Seeds the starting noise and the augmentation.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self { steps: 400, lr: 0.1, bn_weight: 1.0, tv_weight: 5.0, l2_weight: 0.01, jitter: 4, flip: true, seed: 0 }
    }
}

impl SynthConfig {
    fn validate(&self) -> Result<(), SynthError> {
        let bad = |field, message: String| Err(SynthError::Config { field, message });
        if self.steps == 0 {
            return bad("steps", "must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("must be a positive number, got {}", self.lr));
        }
        for (field, weight) in [("bn_weight", self.bn_weight), ("tv_weight", self.tv_weight), ("l2_weight", self.l2_weight)] {
            if !(weight.is_finite() && weight >= 0.0) {
                return bad(field, format!("must be ≥ 0, got {weight}"));
            }
        }
        Ok(())
    }

    /// The learning rate of `step`: half-cosine decay from `lr` to 0.
    pub fn lr_at(&self, step: usize) -> f64 {
        0.5 * self.lr * (1.0 + (std::f64::consts::PI * step as f64 / self.steps as f64).cos())
    }
}

/// What one step did (means over the batch).
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// 0-based step index.
    pub step: usize,
    /// The total loss the step minimised (identity + weighted priors).
    pub loss: f32,
    /// Cosine to the targets of this step's (shifted, maybe mirrored) images.
    pub cosine: f32,
    /// The BatchNorm prior, mean over layers (reported even when its weight is 0).
    pub bn_prior: f32,
    /// Total variation of the canvas, unweighted (reported even when its weight is 0).
    pub total_variation: f32,
}

/// The result: one image per target.
#[derive(Clone, Debug)]
pub struct Synthesis {
    /// The synthesised faces, `input_size` × `input_size` RGB, in target order.
    pub images: Vec<RgbImage>,
    /// Cosine between each final 8-bit image's embedding (unshifted, under
    /// the same network in inference mode) and its target.
    pub cosines: Vec<f32>,
    /// One report per step, in order.
    pub history: Vec<StepReport>,
}

/// The images being optimised, as a module so burn's Adam can update them.
#[derive(Module, Debug)]
struct Canvas<B: burn::tensor::backend::Backend> {
    pixels: Param<Tensor<B, 4>>,
}

/// Synthesises one `input_size`² face per target embedding through the
/// frozen `network` (its weights are not changed). `on_step` sees every step.
pub fn synthesize<B: AutodiffBackend>(
    network: &Backbone<B>,
    shape: &BackboneShape,
    normalization: &Normalization,
    targets: &[Vec<f32>],
    config: &SynthConfig,
    device: &B::Device,
    mut on_step: impl FnMut(&StepReport),
) -> Result<Synthesis, SynthError> {
    config.validate()?;
    let units = unit_targets(targets, shape.embedding_size())?;
    let count = units.len();
    let side = shape.input_size();
    let network = network.clone().no_grad();
    let target_tensor =
        Tensor::<B, 2>::from_data(TensorData::new(units.iter().flatten().copied().collect::<Vec<f32>>(), [count, shape.embedding_size()]), device);

    let mut rng = StdRng::seed_from_u64(config.seed);
    // Start from faint uniform noise around mid-grey.
    let start: Vec<f32> = (0..count * 3 * side * side).map(|_| rng.random_range(-0.3f32..0.3)).collect();
    let mut canvas =
        Canvas { pixels: Param::from_tensor(Tensor::<B, 4>::from_data(TensorData::new(start, [count, 3, side, side]), device).require_grad()) };
    let mut optimizer = AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).with_epsilon(1e-8).init::<B, Canvas<B>>();
    let mut history = Vec::with_capacity(config.steps);

    for step in 0..config.steps {
        let images = canvas.pixels.val();
        let reach = config.jitter as i64;
        let (dx, dy) = (rng.random_range(-reach..=reach), rng.random_range(-reach..=reach));
        let mirror = config.flip && rng.random_bool(0.5);
        let seen = jitter(images.clone(), dx, dy, mirror);
        let parts = objective(&network, normalization, seen, images, &target_tensor, config);
        let report = StepReport {
            step,
            loss: scalar(parts.loss.clone()),
            cosine: scalar(parts.cosines.mean()),
            bn_prior: scalar(parts.bn_prior),
            total_variation: scalar(parts.total_variation),
        };
        let gradients = GradientsParams::from_grads(parts.loss.backward(), &canvas);
        canvas = optimizer.step(config.lr_at(step), canvas, gradients);
        canvas.pixels = canvas.pixels.map(|pixels| Tensor::from_inner(pixels.inner().clamp(-1.0, 1.0)).require_grad());
        on_step(&report);
        history.push(report);
    }

    let images = to_images(canvas.pixels.val().inner());
    let features = embed_faces(&network.valid(), normalization, &images, device);
    let cosines = features
        .into_iter()
        .zip(&units)
        .map(|(feature, target)| FaceEmbedding::from_feature(feature).cosine(&FaceEmbedding::from_feature(target.clone())))
        .collect();
    Ok(Synthesis { images, cosines, history })
}

/// The loss of one step and its parts.
pub struct Objective<B: burn::tensor::backend::Backend> {
    /// The total loss, `[1]`, differentiable with respect to the images.
    pub loss: Tensor<B, 1>,
    /// Per image: cosine between its embedding and its (unit) target, `[N]`.
    pub cosines: Tensor<B, 1>,
    /// The BatchNorm-statistics prior averaged over spatial BatchNorm layers,
    /// `[1]`, unweighted (zero for a network without one).
    pub bn_prior: Tensor<B, 1>,
    /// Total variation of `images`, `[1]`, unweighted.
    pub total_variation: Tensor<B, 1>,
}

/// The loss (see the crate docs) of the canvas `images` as the network
/// `seen`s them (`seen` = `images`, or a shifted/mirrored copy of them), for
/// unit `targets` `[N, E]`. The priors on the image read `images` itself.
pub fn objective<B: burn::tensor::backend::Backend>(
    network: &Backbone<B>,
    normalization: &Normalization,
    seen: Tensor<B, 4>,
    images: Tensor<B, 4>,
    targets: &Tensor<B, 2>,
    config: &SynthConfig,
) -> Objective<B> {
    let count = targets.dims()[0];
    let mut frozen = FrozenStatistics::default();
    let features = network.forward_hooked(to_model_input(seen, normalization), &mut frozen);
    let cosines = (l2_normalize(features) * targets.clone()).sum_dim(1).reshape([count]);
    let identity = cosines.clone().neg().add_scalar(1.0).mean();
    let bn_prior = frozen.prior_mean().unwrap_or_else(|| Tensor::zeros([1], &images.device()));
    let total_variation = total_variation(images.clone());
    let loss = identity
        + bn_prior.clone().mul_scalar(config.bn_weight)
        + total_variation.clone().mul_scalar(config.tv_weight)
        + l2(images).mul_scalar(config.l2_weight);
    Objective { loss, cosines, bn_prior, total_variation }
}

/// Each target scaled to unit length, after checking its size and values.
fn unit_targets(targets: &[Vec<f32>], embedding_size: usize) -> Result<Vec<Vec<f32>>, SynthError> {
    if targets.is_empty() {
        return Err(SynthError::Config { field: "targets", message: "none given".into() });
    }
    targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let bad = |message: String| SynthError::Target { index, message };
            if target.len() != embedding_size {
                return Err(bad(format!("has {} values, the network's embedding has {embedding_size}", target.len())));
            }
            if target.iter().any(|v| !v.is_finite()) {
                return Err(bad("holds a NaN or infinite value".into()));
            }
            let norm = target.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm == 0.0 {
                return Err(bad("is the zero vector (no direction, no identity)".into()));
            }
            Ok(target.iter().map(|v| v / norm).collect())
        })
        .collect()
}

fn l2_normalize<B: burn::tensor::backend::Backend>(features: Tensor<B, 2>) -> Tensor<B, 2> {
    let norms = features.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    features / norms
}

fn scalar<B: burn::tensor::backend::Backend>(value: Tensor<B, 1>) -> f32 {
    value.into_scalar().elem()
}
