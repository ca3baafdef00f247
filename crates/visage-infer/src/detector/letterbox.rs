//! Fitting a photo into a detector's input without distorting it: scale so
//! the whole photo fits, keep the aspect ratio, pad right and bottom with
//! zeros. Boxes and landmarks map back by dividing by the one scale.

use image::RgbImage;

/// A photo resized into the top-left corner of a `width × height` canvas.
pub struct Letterbox {
    /// The canvas, RGB, zero beyond the resized photo.
    pub canvas: RgbImage,
    /// Detector-input pixels per photo pixel (both axes).
    pub scale: f32,
}

impl Letterbox {
    /// Resizes `image` to fit `width × height`: `scale` is the ratio of the
    /// side that limits (canvas side / photo side), the other side becomes
    /// `round(side · scale)` pixels, and the resize samples by the ratio of
    /// the pixel sizes (`cv2.resize(img, (new_w, new_h))`). This is the
    /// geometry the reference pipeline uses: on its photos it reproduces the
    /// landmarks to < 0.1 input pixel where the alternatives (truncating the
    /// size, insightface's height ratio, sampling at exactly 1/scale) miss by
    /// up to 2 input pixels.
    pub fn new(image: &RgbImage, width: u32, height: u32) -> Self {
        let (w, h) = image.dimensions();
        let scale = (f64::from(width) / f64::from(w)).min(f64::from(height) / f64::from(h));
        let new_w = ((f64::from(w) * scale).round() as u32).clamp(1, width);
        let new_h = ((f64::from(h) * scale).round() as u32).clamp(1, height);
        let resized = resize_bilinear(image, new_w, new_h);
        let mut canvas = RgbImage::new(width, height);
        image::imageops::replace(&mut canvas, &resized, 0, 0);
        Self { canvas, scale: scale as f32 }
    }

    /// `image` scaled down to fit `max_width × max_height` (never up: the
    /// scale is at most 1), into the top-left corner of a canvas whose sides
    /// are the scaled sides rounded up to multiples of 32 (within the maximum
    /// when it is a multiple of 32, as configs require): the input of a model
    /// whose spatial dims are free (OpenCV runs YuNet on the photo's own size
    /// padded to a multiple of 32).
    pub fn fitted(image: &RgbImage, max_width: u32, max_height: u32) -> Self {
        let (w, h) = image.dimensions();
        let scale = (f64::from(max_width) / f64::from(w)).min(f64::from(max_height) / f64::from(h)).min(1.0);
        let new_w = ((f64::from(w) * scale).round() as u32).clamp(1, max_width);
        let new_h = ((f64::from(h) * scale).round() as u32).clamp(1, max_height);
        let canvas_w = new_w.div_ceil(32).max(1) * 32;
        let canvas_h = new_h.div_ceil(32).max(1) * 32;
        let resized = if (new_w, new_h) == (w, h) { image.clone() } else { resize_bilinear(image, new_w, new_h) };
        let mut canvas = RgbImage::new(canvas_w, canvas_h);
        image::imageops::replace(&mut canvas, &resized, 0, 0);
        Self { canvas, scale: scale as f32 }
    }

    /// A detector-input point in photo pixels.
    pub fn to_photo(&self, x: f32, y: f32) -> [f32; 2] {
        [x / self.scale, y / self.scale]
    }
}

/// Fixed-point weight scale of OpenCV's 8-bit `INTER_LINEAR` resize
/// (`INTER_RESIZE_COEF_BITS` = 11).
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// One axis of a `cv2.resize(..., INTER_LINEAR)`: pixel centres at half
/// integers, `src = (dst + 0.5) · src_len / dst_len − 0.5` (in single
/// precision, as OpenCV), clamped to the first and last pixel. Returns per
/// destination index the two source indices and their weights, rounded to
/// 11-bit fixed point as OpenCV does for 8-bit images.
fn axis_taps(src_len: u32, dst_len: u32) -> Vec<(usize, usize, i32, i32)> {
    let scale = f64::from(src_len) / f64::from(dst_len);
    let last = src_len as usize - 1;
    (0..dst_len)
        .map(|d| {
            let s = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let floor = s.floor();
            let (i, f) = if floor < 0.0 {
                (0, 0.0)
            } else if floor as usize >= last {
                (last, 0.0)
            } else {
                (floor as usize, s - floor)
            };
            let w1 = (f * COEF_SCALE).round() as i32;
            let w0 = ((1.0 - f) * COEF_SCALE).round() as i32;
            (i, (i + 1).min(last), w0, w1)
        })
        .collect()
}

/// Bilinear resize with `cv2.resize`'s 8-bit `INTER_LINEAR` arithmetic:
/// half-pixel centres (unlike `cv2.warpAffine`, see `warp.rs`), 11-bit
/// weights, a horizontal pass into integers, then a vertical pass rounded
/// back to 8 bits.
pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (xs, ys) = (axis_taps(image.width(), width), axis_taps(image.height(), height));
    let src = image.as_raw();
    let stride = image.width() as usize * 3;
    let horizontal = |row: usize| -> Vec<i32> {
        let line = &src[row * stride..][..stride];
        let mut out = Vec::with_capacity(xs.len() * 3);
        for &(x0, x1, w0, w1) in &xs {
            for c in 0..3 {
                out.push(i32::from(line[x0 * 3 + c]) * w0 + i32::from(line[x1 * 3 + c]) * w1);
            }
        }
        out
    };
    let mut out = RgbImage::new(width, height);
    let dst = out.as_mut();
    let row_len = width as usize * 3;
    let mut cache: Option<(usize, Vec<i32>, usize, Vec<i32>)> = None;
    for (row, &(y0, y1, v0, v1)) in ys.iter().enumerate() {
        let (top, bottom) = match &cache {
            Some((a, ta, b, tb)) if *a == y0 && *b == y1 => (ta.clone(), tb.clone()),
            _ => (horizontal(y0), horizontal(y1)),
        };
        let line = &mut dst[row * row_len..][..row_len];
        let half = 1i64 << (2 * COEF_BITS - 1);
        for (i, value) in line.iter_mut().enumerate() {
            let sum = i64::from(top[i]) * i64::from(v0) + i64::from(bottom[i]) * i64::from(v1);
            *value = ((sum + half) >> (2 * COEF_BITS)).clamp(0, 255) as u8;
        }
        cache = Some((y0, top, y1, bottom));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_pixel_pairs_like_cv2() {
        // cv2.resize of [0, 100, 200, 50] to 2 columns: src x = 0.5 and 2.5 → 50, 125.
        let img = RgbImage::from_fn(4, 1, |x, _| image::Rgb([[0, 100, 200, 50][x as usize]; 3]));
        let out = resize_bilinear(&img, 2, 1);
        assert_eq!(out.get_pixel(0, 0).0[0], 50);
        assert_eq!(out.get_pixel(1, 0).0[0], 125);
    }

    #[test]
    fn letterbox_keeps_aspect_and_pads_right_bottom() {
        let img = RgbImage::from_pixel(200, 100, image::Rgb([9, 9, 9]));
        let lb = Letterbox::new(&img, 64, 64);
        assert_eq!(lb.scale, 64.0 / 200.0);
        assert_eq!(lb.canvas.get_pixel(63, 31).0, [9, 9, 9]);
        assert_eq!(lb.canvas.get_pixel(63, 32).0, [0, 0, 0]);
        assert_eq!(lb.to_photo(32.0, 16.0), [100.0, 50.0]);
    }
}
