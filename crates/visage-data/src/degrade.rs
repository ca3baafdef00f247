//! Controlled image degradations for the magnitude-vs-quality experiment:
//! Gaussian blur, additive Gaussian noise and a grey occluding square, each
//! with one severity number, each a pure function of (image, severity,
//! image seed) so a run can be repeated pixel for pixel.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One kind of degradation; its severity unit is in the variant's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Degradation {
    /// Gaussian blur, severity = σ in pixels.
    Blur,
    /// Additive Gaussian noise, independent per pixel and channel, severity =
    /// standard deviation in 8-bit grey levels (clipped to 0–255 after).
    Noise,
    /// A mid-grey square at a per-image position, severity = fraction of the
    /// image area it covers: an object in front of the subject, not an
    /// erasure (a black square on the digits' black background erases
    /// strokes and leaves a plausible, thinner digit; see the README).
    Occlusion,
}

impl Degradation {
    /// Every kind, in the order reports and charts list them.
    pub const ALL: [Self; 3] = [Self::Blur, Self::Noise, Self::Occlusion];

    /// The lower-case name used in JSON, CSV headers and file names (`blur`, `noise`, `occlusion`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Blur => "blur",
            Self::Noise => "noise",
            Self::Occlusion => "occlusion",
        }
    }

    /// What the severity number measures, for tables and axes.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Blur => "σ (px)",
            Self::Noise => "noise σ (grey levels)",
            Self::Occlusion => "area occluded",
        }
    }

    /// Severities from clean to strong for a `side`×`side` image: blur up to
    /// σ = side/12 px (2.7 px at 32), noise up to σ = 100 grey levels,
    /// occlusion up to 40 % of the area, in `steps` equal steps after level 0.
    /// (Past 40 % the square is most of the picture and the digits demo is
    /// near chance: there is no face, or digit, left to judge.)
    pub fn default_severities(self, side: u32, steps: usize) -> Vec<f64> {
        let top = match self {
            Self::Blur => side as f64 / 12.0,
            Self::Noise => 100.0,
            Self::Occlusion => 0.4,
        };
        (0..=steps).map(|k| top * k as f64 / steps.max(1) as f64).collect()
    }

    /// `image` degraded at `severity` (0 leaves it untouched); `image_seed`
    /// fixes the noise and the occluder's position for this image.
    pub fn apply(self, image: &RgbImage, severity: f64, image_seed: u64) -> RgbImage {
        if severity <= 0.0 {
            return image.clone();
        }
        match self {
            // The blur visage-data's augmentation uses, so a σ means the same in both.
            Self::Blur => image::imageops::blur(image, severity as f32),
            Self::Noise => add_noise(image, severity, image_seed),
            Self::Occlusion => occlude(image, severity, image_seed),
        }
    }
}

fn add_noise(image: &RgbImage, sigma: f64, image_seed: u64) -> RgbImage {
    let mut state = image_seed ^ 0x6E6F_6973_6521_0001;
    let mut out = image.clone();
    let mut spare: Option<f64> = None;
    for value in out.iter_mut() {
        let gaussian = match spare.take() {
            Some(g) => g,
            None => {
                // Box–Muller: two uniforms in (0, 1] → two independent N(0, 1).
                let u1 = unit_interval(splitmix64(&mut state));
                let u2 = unit_interval(splitmix64(&mut state));
                let radius = (-2.0 * u1.ln()).sqrt();
                let angle = std::f64::consts::TAU * u2;
                spare = Some(radius * angle.sin());
                radius * angle.cos()
            }
        };
        *value = (f64::from(*value) + sigma * gaussian).round().clamp(0.0, 255.0) as u8;
    }
    out
}

fn occlude(image: &RgbImage, area_fraction: f64, image_seed: u64) -> RgbImage {
    let (width, height) = image.dimensions();
    let fraction = area_fraction.min(1.0);
    let square_w = ((width as f64 * fraction.sqrt()).round() as u32).clamp(1, width);
    let square_h = ((height as f64 * fraction.sqrt()).round() as u32).clamp(1, height);
    let mut state = image_seed ^ 0x6F63_636C_7564_6502;
    let left = (splitmix64(&mut state) % u64::from(width - square_w + 1)) as u32;
    let top = (splitmix64(&mut state) % u64::from(height - square_h + 1)) as u32;
    let mut out = image.clone();
    for y in top..top + square_h {
        for x in left..left + square_w {
            out.put_pixel(x, y, image::Rgb([128, 128, 128]));
        }
    }
    out
}

/// SplitMix64: a tiny, well-mixed generator; enough for reproducible noise.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The top 53 bits as a float in (0, 1] (never 0, so `ln` is finite).
fn unit_interval(bits: u64) -> f64 {
    ((bits >> 11) + 1) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(value: u8) -> RgbImage {
        RgbImage::from_pixel(32, 32, image::Rgb([value; 3]))
    }

    #[test]
    fn severity_zero_is_the_identity() {
        let image = RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 7]));
        for kind in Degradation::ALL {
            assert_eq!(kind.apply(&image, 0.0, 3), image, "{}", kind.name());
        }
    }

    #[test]
    fn noise_has_the_requested_spread_and_repeats() {
        let image = grey(128);
        let noisy = Degradation::Noise.apply(&image, 20.0, 11);
        let values: Vec<f64> = noisy.iter().map(|&v| f64::from(v) - 128.0).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        // 3072 draws: the sample std is within ~1.3 % of σ at 1 s.e.; rounding adds 1/12.
        assert!((std - 20.0).abs() < 1.0, "std {std}");
        assert!(mean.abs() < 1.5, "mean {mean}");
        assert_eq!(noisy, Degradation::Noise.apply(&image, 20.0, 11));
        assert_ne!(noisy, Degradation::Noise.apply(&image, 20.0, 12));
    }

    #[test]
    fn occlusion_covers_the_requested_area() {
        let image = grey(0);
        for (fraction, expected_side) in [(0.25, 16u32), (0.5, 23), (1.0, 32)] {
            let covered = Degradation::Occlusion.apply(&image, fraction, 5).pixels().filter(|p| p.0 == [128; 3]).count();
            assert_eq!(covered as u32, expected_side * expected_side, "fraction {fraction}");
        }
    }

    #[test]
    fn blur_spreads_a_point_as_a_gaussian() {
        let mut image = grey(0);
        image.put_pixel(16, 16, image::Rgb([255; 3]));
        let blurred = Degradation::Blur.apply(&image, 2.0, 0);
        // A unit impulse blurred by σ = 2: centre 255/(2πσ²) = 10.1, one pixel off × e^(−1/8).
        let centre = f64::from(blurred.get_pixel(16, 16).0[0]);
        let side = f64::from(blurred.get_pixel(17, 16).0[0]);
        assert!((centre - 10.1).abs() <= 1.0, "centre {centre}");
        assert!((side - 10.1 * (-1.0f64 / 8.0).exp()).abs() <= 1.0, "side {side}");
    }
}
