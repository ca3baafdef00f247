//! Image priors: smoothness (total variation) and small amplitude (L2).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Anisotropic squared total variation: the mean squared difference between
/// horizontally adjacent pixels plus that between vertically adjacent ones.
/// Penalises the high-frequency texture gradient ascent produces first.
pub fn total_variation<B: Backend>(images: Tensor<B, 4>) -> Tensor<B, 1> {
    let [n, c, h, w] = images.dims();
    let horizontal = images.clone().slice([0..n, 0..c, 0..h, 1..w]) - images.clone().slice([0..n, 0..c, 0..h, 0..w - 1]);
    let vertical = images.clone().slice([0..n, 0..c, 1..h, 0..w]) - images.slice([0..n, 0..c, 0..h - 1, 0..w]);
    horizontal.powi_scalar(2).mean() + vertical.powi_scalar(2).mean()
}

/// Mean squared value: keeps pixels away from saturation.
pub fn l2<B: Backend>(images: Tensor<B, 4>) -> Tensor<B, 1> {
    images.powi_scalar(2).mean()
}
