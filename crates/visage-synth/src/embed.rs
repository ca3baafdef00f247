//! Raw features of 8-bit face crops under a burn backbone, prepared exactly
//! as visage-infer prepares them for ONNX Runtime.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use ndarray::{s, Array4};
use visage_image::Normalization;
use visage_nn::Backbone;

/// Faces embedded at most this many at a time.
const BATCH: usize = 32;

/// The raw (not normalised) feature of each face, in order. `network` runs
/// as it is: pass an inference-mode backbone (a non-autodiff backend).
pub fn embed_faces<B: Backend>(network: &Backbone<B>, normalization: &Normalization, faces: &[RgbImage], device: &B::Device) -> Vec<Vec<f32>> {
    let mut features = Vec::with_capacity(faces.len());
    for chunk in faces.chunks(BATCH) {
        let (w, h) = chunk[0].dimensions();
        let mut input = Array4::<f32>::zeros((chunk.len(), 3, h as usize, w as usize));
        for (i, face) in chunk.iter().enumerate() {
            normalization.write_chw(face, input.slice_mut(s![i, .., .., ..]), false);
        }
        let shape = input.shape().to_vec();
        let tensor = Tensor::<B, 4>::from_data(TensorData::new(input.into_raw_vec_and_offset().0, shape), device);
        let output = network.forward(tensor);
        let [_, dim] = output.dims();
        let values = output.into_data().convert::<f32>().to_vec::<f32>().expect("f32 features");
        features.extend(values.chunks(dim).map(<[f32]>::to_vec));
    }
    features
}
