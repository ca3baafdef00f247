//! Face embeddings from any insightface-format recogniser ONNX: aligned
//! 112×112 crops in, one feature vector (128-d, 512-d, whatever the model
//! says) per face out.

use std::path::Path;

use image::RgbImage;
use ndarray::{Array4, Axis};

use crate::checksum::verify_model_file;
use crate::config::RecognizerConfig;
use crate::error::{InferError, Result};
use crate::onnx_model::OnnxModel;
use crate::preprocess::Normalization;

/// Faces per inference call when the model's batch dimension is dynamic.
pub const DEFAULT_MAX_BATCH: usize = 32;

pub use visage_image::FaceEmbedding;

/// A recogniser model with its normalisation, flip-TTA setting and batch
/// size: aligned crops in, one [`FaceEmbedding`] per crop out.
pub struct Recognizer {
    model: OnnxModel,
    normalization: Normalization,
    flip_tta: bool,
    /// `Some(n)`: the model only accepts batches of exactly `n`.
    fixed_batch: Option<usize>,
    max_batch: usize,
    input_size: (u32, u32),
}

impl Recognizer {
    /// Loads the model a config names from `models_dir`, checking its sha256
    /// when the config gives one.
    pub fn from_config(config: &RecognizerConfig, models_dir: &Path) -> Result<Self> {
        Self::from_config_with_threads(config, models_dir, None)
    }

    /// [`Self::from_config`] with ONNX Runtime's intra-op thread count set
    /// (`None`: one per physical core), for services that run several
    /// recognisers side by side.
    pub fn from_config_with_threads(config: &RecognizerConfig, models_dir: &Path, intra_threads: Option<usize>) -> Result<Self> {
        let path = config.model_path(models_dir);
        verify_model_file(&path, config.sha256.as_deref(), &config.name)?;
        Self::new(OnnxModel::load_with_threads(&path, intra_threads)?, config.normalization(), config.flip_tta)
    }

    /// Wraps a loaded model; its input must be `[N, 3, H, W]` (N, H, W fixed or dynamic).
    pub fn new(model: OnnxModel, normalization: Normalization, flip_tta: bool) -> Result<Self> {
        let input = match model.inputs() {
            [input] => input.clone(),
            other => return Err(InferError::model(model.path(), format!("a recogniser has one input, this model has {}", other.len()))),
        };
        let bad = || InferError::model(model.path(), format!("input `{}` has dims {:?}, expected [N, 3, H, W]", input.name, input.dims));
        let [batch, channels, height, width] = input.dims[..] else { return Err(bad()) };
        if channels.is_some_and(|c| c != 3) {
            return Err(bad());
        }
        let side = crate::align::ALIGNED_SIZE as usize;
        let input_size = (width.unwrap_or(side) as u32, height.unwrap_or(side) as u32);
        Ok(Self { model, normalization, flip_tta, fixed_batch: batch, max_batch: DEFAULT_MAX_BATCH, input_size })
    }

    /// The same recogniser (model file, normalisation, flip TTA, batch) in a
    /// new ONNX Runtime session with `intra_threads`, for another thread.
    pub fn try_clone_with_threads(&self, intra_threads: Option<usize>) -> Result<Self> {
        Ok(Self { model: self.model.reload_with_threads(intra_threads)?, ..*self })
    }

    /// Faces per call for a dynamic-batch model (ignored for fixed batches).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Whether each face is embedded twice (itself and its mirror).
    pub fn flip_tta(&self) -> bool {
        self.flip_tta
    }

    /// Turns flip test-time augmentation on or off (overrides the config's
    /// `flip_tta`): on, each feature is the mean of the face's and its
    /// mirror's, at twice the inference cost.
    pub fn with_flip_tta(mut self, flip_tta: bool) -> Self {
        self.flip_tta = flip_tta;
        self
    }

    /// The `(width, height)` the model wants its aligned faces in.
    pub fn input_size(&self) -> (u32, u32) {
        self.input_size
    }

    /// Feature length, when the model declares it (`[N, D]` output with fixed D).
    pub fn embedding_dim(&self) -> Option<usize> {
        let output = self.model.outputs().first()?;
        match output.dims[..] {
            [_, dim, ..] => dim,
            _ => None,
        }
    }

    /// The underlying ONNX model (its path and tensor specs).
    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    /// Embeds aligned faces, in order.
    pub fn embed(&mut self, faces: &[RgbImage]) -> Result<Vec<FaceEmbedding>> {
        for (i, face) in faces.iter().enumerate() {
            if face.dimensions() != self.input_size {
                return Err(InferError::model(
                    self.model.path(),
                    format!("face {i} is {:?}, the model wants {:?} aligned crops", face.dimensions(), self.input_size),
                ));
            }
        }
        let chunk = self.fixed_batch.unwrap_or(self.max_batch);
        let mut embeddings = Vec::with_capacity(faces.len());
        for group in faces.chunks(chunk) {
            let mut features = self.features(group, false)?;
            if self.flip_tta {
                let mirrored = self.features(group, true)?;
                // The mean, not the sum: same direction, and the magnitude keeps
                // the scale quality thresholds were calibrated on.
                features.iter_mut().zip(mirrored).for_each(|(f, m)| f.iter_mut().zip(m).for_each(|(a, b)| *a = (*a + b) / 2.0));
            }
            embeddings.extend(features.into_iter().map(FaceEmbedding::from_feature));
        }
        Ok(embeddings)
    }

    /// Raw features of up to one batch of faces (zero-padded to a fixed batch).
    fn features(&mut self, faces: &[RgbImage], mirror: bool) -> Result<Vec<Vec<f32>>> {
        let (width, height) = self.input_size;
        let batch = self.fixed_batch.unwrap_or(faces.len());
        let mut input = Array4::<f32>::zeros((batch, 3, height as usize, width as usize));
        for (face, slot) in faces.iter().zip(input.outer_iter_mut()) {
            self.normalization.write_chw(face, slot, mirror);
        }
        let outputs = self.model.run_f32(input.view().into_dyn())?;
        let output = outputs.into_iter().next().ok_or_else(|| InferError::model(self.model.path(), "the model has no output"))?;
        if output.ndim() < 2 || output.shape()[0] != batch {
            return Err(InferError::model(self.model.path(), format!("output shape {:?}, expected [{batch}, D]", output.shape())));
        }
        let rows = output.to_shape((batch, output.len() / batch)).expect("contiguous output").to_owned();
        Ok(rows.axis_iter(Axis(0)).take(faces.len()).map(|row| row.to_vec()).collect())
    }
}
