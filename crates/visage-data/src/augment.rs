//! Training augmentation on 8-bit RGB crops.
//!
//! insightface's arcface_torch trains with a random horizontal flip only; the
//! others are off by default and follow torchvision's definitions so settings
//! carry over from PyTorch recipes (AdaFace's photometric augmentation is
//! `ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5)`):
//! - crop/pad: `RandomCrop(size, padding=p)`: zero-pad by `p` on every side,
//!   cut a same-size window at a uniform offset;
//! - blur: Gaussian with σ uniform in a range (`GaussianBlur`'s default
//!   range 0.1–2.0), the image crate's separable kernel;
//! - colour jitter: factors uniform in `[1 − x, 1 + x]`; brightness scales,
//!   contrast blends with the mean grey level, saturation with each pixel's
//!   grey (ITU-R 601 luma, as PIL's `convert("L")`); applied in that fixed
//!   order (torchvision shuffles the order; a fixed one keeps a sample's
//!   result a function of its random draws), each result rounded to 8 bits.
//!
//! All random numbers of a sample are drawn up front by [`Augmentation::draw`]
//! in a fixed order, from the sample's own stream (see `loader`), so the
//! result does not depend on which augmentations happen to be on.

use image::RgbImage;
use rand::Rng;

use crate::error::{DataError, Result};

/// Which augmentations are on and how strong; [`Default`] is insightface's
/// flip-only setting, [`Augmentation::none`] turns everything off. Checked by
/// [`Augmentation::validate`] (the loader calls it).
#[derive(Clone, Debug, PartialEq)]
pub struct Augmentation {
    /// Probability of a left-right mirror (insightface: 0.5).
    pub horizontal_flip_probability: f32,
    /// Zero padding of the random crop, pixels; 0 = no crop.
    pub crop_padding_px: u32,
    /// Probability of a Gaussian blur, in [0, 1] (default 0: off).
    pub blur_probability: f32,
    /// Range of the blur's σ, pixels.
    pub blur_sigma_px: (f32, f32),
    /// Probability of colour jitter (all three factors at once), in [0, 1]
    /// (default 0: off).
    pub color_jitter_probability: f32,
    /// Brightness jitter strength x in [0, 1]: pixels are scaled by a factor
    /// uniform in [1 − x, 1 + x]; 0 = off.
    pub brightness: f32,
    /// Contrast jitter strength x in [0, 1]: pixels move away from (factor > 1)
    /// or towards the image's mean luma, factor uniform in [1 − x, 1 + x]; 0 = off.
    pub contrast: f32,
    /// Saturation jitter strength x in [0, 1]: pixels move away from or towards
    /// their own luma (a factor of 0 is grey), factor uniform in [1 − x, 1 + x]; 0 = off.
    pub saturation: f32,
}

impl Default for Augmentation {
    /// insightface arcface_torch: random horizontal flip only.
    fn default() -> Self {
        Self {
            horizontal_flip_probability: 0.5,
            crop_padding_px: 0,
            blur_probability: 0.0,
            blur_sigma_px: (0.1, 2.0),
            color_jitter_probability: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
        }
    }
}

/// The random outcome for one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AugmentDraw {
    /// Mirror left-right (applied by the caller when writing the tensor).
    pub mirror: bool,
    /// (left, top) of the window in the padded image, each in
    /// `0..=2 × crop_padding_px`; `None` when cropping is off.
    pub crop_offset: Option<(u32, u32)>,
    /// σ of the blur in pixels; `None` when this sample is not blurred.
    pub blur_sigma_px: Option<f32>,
    /// (brightness, contrast, saturation) factors; `None` when this sample
    /// is not jittered.
    pub jitter: Option<(f32, f32, f32)>,
}

impl AugmentDraw {
    /// The draw that leaves the image unchanged (no mirror, crop, blur or jitter).
    pub const IDENTITY: Self = Self { mirror: false, crop_offset: None, blur_sigma_px: None, jitter: None };
}

impl Augmentation {
    /// No augmentation at all (evaluation, or reproducing stored pixels).
    pub fn none() -> Self {
        Self { horizontal_flip_probability: 0.0, ..Self::default() }
    }

    /// Checks the settings: probabilities in [0, 1], `0 < σ low <= σ high`
    /// (finite), jitter strengths in [0, 1]. The [`DataError::Config`]
    /// message names the offending field.
    pub fn validate(&self) -> Result<()> {
        let probability = |name: &str, p: f32| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(DataError::Config(format!("augmentation: {name} = {p} is not a probability in [0, 1]")))
            }
        };
        probability("horizontal_flip_probability", self.horizontal_flip_probability)?;
        probability("blur_probability", self.blur_probability)?;
        probability("color_jitter_probability", self.color_jitter_probability)?;
        let (low, high) = self.blur_sigma_px;
        if !(low > 0.0 && low <= high && high.is_finite()) {
            return Err(DataError::Config(format!("augmentation: blur_sigma_px ({low}, {high}) must satisfy 0 < low <= high")));
        }
        for (name, x) in [("brightness", self.brightness), ("contrast", self.contrast), ("saturation", self.saturation)] {
            if !(0.0..=1.0).contains(&x) {
                return Err(DataError::Config(format!("augmentation: {name} = {x} must be in [0, 1] (factor range [1 − x, 1 + x])")));
            }
        }
        Ok(())
    }

    /// Draws every random number of one sample, always the same ones in the
    /// same order.
    pub fn draw(&self, rng: &mut impl Rng) -> AugmentDraw {
        let flip: f32 = rng.random();
        let crop_span = 2 * self.crop_padding_px + 1;
        let (left, top) = (rng.random_range(0..crop_span), rng.random_range(0..crop_span));
        let blur: f32 = rng.random();
        let sigma_t: f32 = rng.random();
        let jitter: f32 = rng.random();
        let factors: [f32; 3] = [rng.random(), rng.random(), rng.random()];
        let factor = |strength: f32, t: f32| 1.0 - strength + 2.0 * strength * t;
        let (low, high) = self.blur_sigma_px;
        AugmentDraw {
            mirror: flip < self.horizontal_flip_probability,
            crop_offset: (self.crop_padding_px > 0).then_some((left, top)),
            blur_sigma_px: (blur < self.blur_probability).then_some(low + (high - low) * sigma_t),
            jitter: (jitter < self.color_jitter_probability).then_some((
                factor(self.brightness, factors[0]),
                factor(self.contrast, factors[1]),
                factor(self.saturation, factors[2]),
            )),
        }
    }

    /// Applies crop, blur and jitter; the mirror is left to the caller, who
    /// folds it into the tensor write (`Normalization::write_chw`).
    pub fn apply(&self, draw: &AugmentDraw, image: RgbImage) -> RgbImage {
        let mut image = match draw.crop_offset {
            Some((left, top)) => pad_and_crop(&image, self.crop_padding_px, left, top),
            None => image,
        };
        if let Some(sigma) = draw.blur_sigma_px {
            image = image::imageops::blur(&image, sigma);
        }
        if let Some((brightness, contrast, saturation)) = draw.jitter {
            color_jitter(&mut image, brightness, contrast, saturation);
        }
        image
    }
}

/// The window at (left, top) of `image` zero-padded by `padding` on every side,
/// same size as `image`.
pub fn pad_and_crop(image: &RgbImage, padding: u32, left: u32, top: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    RgbImage::from_fn(width, height, |x, y| {
        let (source_x, source_y) = (i64::from(x + left) - i64::from(padding), i64::from(y + top) - i64::from(padding));
        if (0..i64::from(width)).contains(&source_x) && (0..i64::from(height)).contains(&source_y) {
            *image.get_pixel(source_x as u32, source_y as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

fn luma(pixel: &[u8; 3]) -> f32 {
    (299.0 * f32::from(pixel[0]) + 587.0 * f32::from(pixel[1]) + 114.0 * f32::from(pixel[2])) / 1000.0
}

fn to_u8(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// Brightness: x·b. Contrast: m + c·(x − m), m the image's mean luma.
/// Saturation: l + s·(x − l), l the pixel's luma. Each step rounds to 8 bits.
pub fn color_jitter(image: &mut RgbImage, brightness: f32, contrast: f32, saturation: f32) {
    for pixel in image.pixels_mut() {
        pixel.0 = pixel.0.map(|v| to_u8(f32::from(v) * brightness));
    }
    let pixel_count = (image.width() * image.height()).max(1) as f32;
    let mean_luma = image.pixels().map(|p| luma(&p.0)).sum::<f32>() / pixel_count;
    for pixel in image.pixels_mut() {
        pixel.0 = pixel.0.map(|v| to_u8(mean_luma + contrast * (f32::from(v) - mean_luma)));
    }
    for pixel in image.pixels_mut() {
        let grey = luma(&pixel.0);
        pixel.0 = pixel.0.map(|v| to_u8(grey + saturation * (f32::from(v) - grey)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use rand::SeedableRng;

    fn ramp() -> RgbImage {
        // 3×2: R = 10·x + 100·y, G = x, B = 200.
        RgbImage::from_fn(3, 2, |x, y| Rgb([(10 * x + 100 * y) as u8, x as u8, 200]))
    }

    #[test]
    fn pad_and_crop_shifts_with_zero_fill() {
        // padding 1, window at (0, 2): source pixel = (x − 1, y + 1).
        let out = pad_and_crop(&ramp(), 1, 0, 2);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0], "left of the image: padding");
        assert_eq!(out.get_pixel(1, 0).0, [100, 0, 200], "source (0, 1)");
        assert_eq!(out.get_pixel(2, 0).0, [110, 1, 200], "source (1, 1)");
        assert_eq!(out.get_pixel(1, 1).0, [0, 0, 0], "below the image: padding");
        // The centred window (padding, padding) is the identity.
        assert_eq!(pad_and_crop(&ramp(), 2, 2, 2), ramp());
    }

    #[test]
    fn color_jitter_matches_hand_computed_pixels() {
        let mut image = RgbImage::from_raw(2, 1, vec![100, 50, 0, 200, 250, 10]).unwrap();
        color_jitter(&mut image, 1.2, 1.0, 1.0);
        // brightness 1.2: 120 60 0 | 240 300→255 12; contrast 1 and saturation 1 keep it.
        assert_eq!(image.as_raw(), &[120, 60, 0, 240, 255, 12]);

        let mut image = RgbImage::from_raw(2, 1, vec![100, 50, 0, 200, 250, 10]).unwrap();
        color_jitter(&mut image, 1.0, 0.5, 1.0);
        // lumas: 0.299·100 + 0.587·50 = 59.25; 0.299·200 + 0.587·250 + 0.114·10 = 207.69;
        // mean 133.47; 133.47 + 0.5·(x − 133.47): 116.7 91.7 66.7 | 166.7 191.7 71.7
        assert_eq!(image.as_raw(), &[117, 92, 67, 167, 192, 72]);

        let mut image = RgbImage::from_raw(1, 1, vec![100, 50, 0]).unwrap();
        color_jitter(&mut image, 1.0, 1.0, 0.0);
        assert_eq!(image.as_raw(), &[59, 59, 59], "saturation 0: the pixel's luma 59.25");
    }

    #[test]
    fn blur_keeps_a_constant_image() {
        let aug = Augmentation { blur_probability: 1.0, ..Augmentation::none() };
        let draw = AugmentDraw { blur_sigma_px: Some(1.5), ..AugmentDraw::IDENTITY };
        let flat = RgbImage::from_pixel(9, 9, Rgb([40, 90, 200]));
        assert_eq!(aug.apply(&draw, flat.clone()), flat);
    }

    #[test]
    fn draws_respect_probabilities_and_ranges() {
        let aug = Augmentation {
            horizontal_flip_probability: 0.5,
            crop_padding_px: 4,
            blur_probability: 0.25,
            color_jitter_probability: 1.0,
            brightness: 0.5,
            ..Augmentation::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draws: Vec<AugmentDraw> = (0..4000).map(|_| aug.draw(&mut rng)).collect();
        let mirrored = draws.iter().filter(|d| d.mirror).count() as f64 / 4000.0;
        let blurred = draws.iter().filter(|d| d.blur_sigma_px.is_some()).count() as f64 / 4000.0;
        // Binomial(4000, p): 4 standard deviations are 0.032 (p = 0.5) and 0.027 (p = 0.25).
        assert!((mirrored - 0.5).abs() < 0.032, "{mirrored}");
        assert!((blurred - 0.25).abs() < 0.028, "{blurred}");
        assert!(draws.iter().all(|d| d.crop_offset.is_some_and(|(l, t)| l <= 8 && t <= 8)));
        assert!(draws.iter().any(|d| d.crop_offset == Some((8, 0))));
        assert!(draws.iter().filter_map(|d| d.blur_sigma_px).all(|s| (0.1..=2.0).contains(&s)));
        let (b, c, s) = draws[0].jitter.unwrap();
        assert!((0.5..=1.5).contains(&b) && c == 1.0 && s == 1.0, "{b} {c} {s}");
    }

    #[test]
    fn invalid_settings_are_refused_by_name() {
        let err = Augmentation { blur_probability: 1.5, ..Augmentation::default() }.validate().unwrap_err();
        assert_eq!(err.to_string(), "augmentation: blur_probability = 1.5 is not a probability in [0, 1]");
    }
}
