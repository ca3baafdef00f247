//! Turning aligned RGB crops into a model's input tensor. Every model family
//! was trained with its own channel order and normalisation, and a mismatch
//! does not fail, it silently costs accuracy, so this is always a setting
//! taken from the model's config, never a constant.

use ndarray::{ArrayViewMut3, Axis};
use serde::{Deserialize, Serialize};

/// Channel order of the model input (OpenCV-trained models expect BGR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Channel 0 is red (`"rgb"` in configs).
    Rgb,
    /// Channel 0 is blue (`"bgr"` in configs).
    Bgr,
}

/// `value = (pixel − mean[c]) / std[c]`, pixel in 0–255, with `c` indexing
/// the model's channels (after reordering).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// The order the model's input channels are in.
    pub channel_order: ChannelOrder,
    /// Subtracted from each pixel value (0–255 scale), per model channel.
    pub mean: [f32; 3],
    /// Divides each centred pixel value, per model channel; must be non-zero.
    pub std: [f32; 3],
}

/// The training recipe a model comes from; it decides the default input
/// normalisation (insightface ONNX, MagFace and AdaFace checkpoints differ in
/// channel order and scale).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFamily {
    /// insightface ArcFace exports: RGB, (x − 127.5) / 127.5.
    Arcface,
    /// MagFace: BGR, x / 255; the feature's magnitude is a quality score.
    Magface,
    /// AdaFace: BGR, (x − 127.5) / 127.5.
    Adaface,
    /// Anything else: a recogniser config must give its own normalisation
    /// (insightface's is the fallback).
    Other,
}

impl ModelFamily {
    /// The family's input normalisation: the one mapping every crate uses.
    pub fn normalization(self) -> Normalization {
        match self {
            ModelFamily::Arcface | ModelFamily::Other => Normalization::ARCFACE,
            ModelFamily::Magface => Normalization::MAGFACE,
            ModelFamily::Adaface => Normalization::ADAFACE,
        }
    }
}

impl Normalization {
    /// insightface ArcFace ONNX exports: RGB, (x − 127.5) / 127.5.
    pub const ARCFACE: Self = Self { channel_order: ChannelOrder::Rgb, mean: [127.5; 3], std: [127.5; 3] };
    /// MagFace: BGR, x / 255.
    pub const MAGFACE: Self = Self { channel_order: ChannelOrder::Bgr, mean: [0.0; 3], std: [255.0; 3] };
    /// AdaFace: BGR, (x / 255 − 0.5) / 0.5 = (x − 127.5) / 127.5.
    pub const ADAFACE: Self = Self { channel_order: ChannelOrder::Bgr, mean: [127.5; 3], std: [127.5; 3] };

    /// Writes `face` into a 3×H×W slice of an NCHW tensor; `mirror` flips it
    /// left-right on the way (for flip test-time augmentation).
    ///
    /// # Panics
    /// When `out` is not `[3, height, width]` of `face`.
    pub fn write_chw(&self, face: &image::RgbImage, mut out: ArrayViewMut3<'_, f32>, mirror: bool) {
        let (width, height) = face.dimensions();
        assert_eq!(out.shape(), [3, height as usize, width as usize], "tensor slot and face size differ");
        let source_channel = match self.channel_order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        let row_bytes = 3 * width as usize;
        for c in 0..3 {
            // A byte has 256 values: the table holds (p − mean) / std for each,
            // the same arithmetic per pixel, without a division per pixel.
            let (mean, std) = (self.mean[c], self.std[c]);
            let table: [f32; 256] = std::array::from_fn(|p| (f32::from(p as u8) - mean) / std);
            let channel = source_channel[c];
            let mut plane = out.index_axis_mut(Axis(0), c);
            for (pixels, mut row) in face.as_raw().chunks_exact(row_bytes).zip(plane.outer_iter_mut()) {
                let values = pixels.chunks_exact(3).map(|pixel| table[usize::from(pixel[channel])]);
                if mirror {
                    row.iter_mut().zip(values.rev()).for_each(|(value, v)| *value = v);
                } else {
                    row.iter_mut().zip(values).for_each(|(value, v)| *value = v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn reorders_normalises_and_mirrors() {
        let face = image::RgbImage::from_fn(2, 1, |x, _| if x == 0 { image::Rgb([255, 0, 127]) } else { image::Rgb([0, 51, 255]) });
        let mut t = Array3::<f32>::zeros((3, 1, 2));
        Normalization::MAGFACE.write_chw(&face, t.view_mut(), false);
        assert_eq!(t.as_slice().unwrap(), &[127.0 / 255.0, 1.0, 0.0, 0.2, 1.0, 0.0]);
        let custom = Normalization { channel_order: ChannelOrder::Rgb, mean: [127.0; 3], std: [128.0; 3] };
        custom.write_chw(&face, t.view_mut(), true);
        // Mirrored: column 0 now holds the old column 1, (0, 51, 255).
        assert_eq!(t.as_slice().unwrap(), &[-127.0 / 128.0, 1.0, -76.0 / 128.0, -127.0 / 128.0, 1.0, 0.0]);
    }
}
