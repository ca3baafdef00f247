//! The images being optimised: `[N, 3, S, S]`, RGB, each value in [−1, 1]
//! (pixel = 127.5·(v + 1)), whatever the recogniser's own input convention.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::{Rgb, RgbImage};
use visage_image::{ChannelOrder, Normalization};

/// Maps canvas values into the recogniser's input: channel order, then
/// `(pixel − mean) / std` per model channel. Linear, so gradients pass.
pub fn to_model_input<B: Backend>(canvas: Tensor<B, 4>, normalization: &Normalization) -> Tensor<B, 4> {
    let device = canvas.device();
    let ordered = match normalization.channel_order {
        ChannelOrder::Rgb => canvas,
        ChannelOrder::Bgr => canvas.flip([1]),
    };
    // value = (127.5·(v + 1) − mean) / std = v·(127.5/std) + (127.5 − mean)/std
    let scale: Vec<f32> = normalization.std.iter().map(|std| 127.5 / std).collect();
    let offset: Vec<f32> = normalization.mean.iter().zip(normalization.std).map(|(mean, std)| (127.5 - mean) / std).collect();
    let per_channel = |values: Vec<f32>| Tensor::<B, 4>::from_data(TensorData::new(values, [1, 3, 1, 1]), &device);
    ordered * per_channel(scale) + per_channel(offset)
}

/// The canvas as 8-bit images (values clamped to [−1, 1], rounded).
pub fn to_images<B: Backend>(canvas: Tensor<B, 4>) -> Vec<RgbImage> {
    let [n, _, h, w] = canvas.dims();
    let values = canvas.into_data().convert::<f32>().to_vec::<f32>().expect("f32 canvas");
    let plane = h * w;
    (0..n)
        .map(|i| {
            let image = &values[i * 3 * plane..(i + 1) * 3 * plane];
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let at = y as usize * w + x as usize;
                let pixel = |c: usize| (127.5 * (image[c * plane + at].clamp(-1.0, 1.0) + 1.0)).round() as u8;
                Rgb([pixel(0), pixel(1), pixel(2)])
            })
        })
        .collect()
}

/// 8-bit images back onto the canvas scale (the inverse of [`to_images`]
/// up to rounding).
pub fn from_images<B: Backend>(images: &[RgbImage], device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = images.first().map(|image| image.dimensions()).unwrap_or((0, 0));
    let plane = (w * h) as usize;
    let mut values = vec![0f32; images.len() * 3 * plane];
    for (i, image) in images.iter().enumerate() {
        for (x, y, pixel) in image.enumerate_pixels() {
            for c in 0..3 {
                values[(i * 3 + c) * plane + (y * w + x) as usize] = f32::from(pixel.0[c]) / 127.5 - 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(values, [images.len(), 3, h as usize, w as usize]), device)
}

/// Shifts the images by `(dx, dy)` pixels with wrap-around, and mirrors them
/// left-right when `mirror`: the per-step augmentation that keeps the
/// optimisation from fitting one exact pixel grid.
pub fn jitter<B: Backend>(canvas: Tensor<B, 4>, dx: i64, dy: i64, mirror: bool) -> Tensor<B, 4> {
    let shifted = canvas.roll_dim(dy, 2).roll_dim(dx, 3);
    if mirror {
        shifted.flip([3])
    } else {
        shifted
    }
}
