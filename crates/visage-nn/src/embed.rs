//! Raw features of 8-bit face crops under a burn backbone, prepared exactly
//! as visage-infer prepares them for ONNX Runtime (the model's
//! [`Normalization`], NCHW float32). Training's verification and cleaning,
//! synthesis and the experiments all embed through this one function.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use ndarray::{Array2, Array4};
use visage_image::Normalization;

use crate::Backbone;

/// The raw (not normalised) feature of each face, one row per face in input
/// order: `[faces.len(), D]` (`[0, 0]` for no faces). Faces run `batch` at a
/// time (at least 1); all faces of a batch must have the first face's size.
/// `mirror` embeds each face's horizontal mirror instead. `backbone` runs as
/// it is: pass an inference-mode network (a non-autodiff backend, or
/// `.valid()`) for inference statistics.
pub fn embed_faces<B: Backend>(
    backbone: &Backbone<B>,
    faces: &[RgbImage],
    normalization: &Normalization,
    mirror: bool,
    batch: usize,
    device: &B::Device,
) -> Array2<f32> {
    let mut rows = Vec::new();
    let mut dim = 0;
    for chunk in faces.chunks(batch.max(1)) {
        let (w, h) = chunk[0].dimensions();
        let mut input = Array4::<f32>::zeros((chunk.len(), 3, h as usize, w as usize));
        for (face, slot) in chunk.iter().zip(input.outer_iter_mut()) {
            normalization.write_chw(face, slot, mirror);
        }
        let shape = [chunk.len(), 3, h as usize, w as usize];
        let tensor = Tensor::<B, 4>::from_data(TensorData::new(input.into_raw_vec_and_offset().0, shape), device);
        let features = backbone.forward(tensor);
        dim = features.dims()[1];
        rows.extend(features.into_data().convert::<f32>().to_vec::<f32>().expect("the backbone's features convert to f32"));
    }
    Array2::from_shape_vec((faces.len(), dim), rows).expect("one feature row per face")
}
