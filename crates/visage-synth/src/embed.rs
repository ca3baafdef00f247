//! Raw features of 8-bit face crops under a burn backbone, prepared exactly
//! as visage-infer prepares them for ONNX Runtime (through
//! [`visage_nn::embed::embed_faces`]).

use burn::tensor::backend::Backend;
use image::RgbImage;
use visage_image::Normalization;
use visage_nn::Backbone;

/// Faces embedded at most this many at a time.
const BATCH: usize = 32;

/// The raw (not normalised) feature of each face, in order. `network` runs
/// as it is: pass an inference-mode backbone (a non-autodiff backend).
pub fn embed_faces<B: Backend>(network: &Backbone<B>, normalization: &Normalization, faces: &[RgbImage], device: &B::Device) -> Vec<Vec<f32>> {
    visage_nn::embed::embed_faces(network, faces, normalization, false, BATCH, device).outer_iter().map(|row| row.to_vec()).collect()
}
