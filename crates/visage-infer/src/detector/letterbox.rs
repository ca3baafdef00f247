//! Fitting a photo into a detector's input without distorting it: scale so
//! the whole photo fits, keep the aspect ratio, pad right and bottom with
//! zeros. Boxes and landmarks map back by dividing by the one scale.

use image::RgbImage;

/// A photo resized into the top-left corner of a `width × height` canvas.
pub struct Letterbox {
    /// The canvas, RGB, zero beyond the resized photo.
    pub canvas: RgbImage,
    /// Detector-input pixels per photo pixel, `(x, y)`: each axis's exact
    /// resize ratio. The integer truncation of the shorter side makes them
    /// differ slightly; one shared ratio (insightface uses the height's)
    /// moves landmarks by up to half an input pixel on these photos.
    pub scale: (f32, f32),
}

impl Letterbox {
    /// Resizes `image` to fit `width × height`: the side that limits fills
    /// the canvas, the other keeps the aspect ratio, truncated to an integer.
    pub fn new(image: &RgbImage, width: u32, height: u32) -> Self {
        let (w, h) = image.dimensions();
        let photo_ratio = h as f64 / w as f64;
        let canvas_ratio = height as f64 / width as f64;
        let (new_w, new_h) = if photo_ratio > canvas_ratio {
            (((height as f64 / photo_ratio) as u32).max(1), height)
        } else {
            (width, ((width as f64 * photo_ratio) as u32).max(1))
        };
        let resized = resize_bilinear(image, new_w, new_h);
        let mut canvas = RgbImage::new(width, height);
        image::imageops::replace(&mut canvas, &resized, 0, 0);
        Self { canvas, scale: ((new_w as f64 / w as f64) as f32, (new_h as f64 / h as f64) as f32) }
    }

    /// A detector-input point in photo pixels.
    pub fn to_photo(&self, x: f32, y: f32) -> [f32; 2] {
        [x / self.scale.0, y / self.scale.1]
    }
}

/// One axis of a `cv2.resize(..., INTER_LINEAR)`: pixel centres at half
/// integers, `src = (dst + 0.5) · src_len / dst_len − 0.5`, clamped to the
/// first and last pixel. Returns per destination index the two source
/// indices and the weight of the second.
fn axis_taps(src_len: u32, dst_len: u32) -> Vec<(usize, usize, f32)> {
    let scale = src_len as f64 / dst_len as f64;
    let last = src_len as usize - 1;
    (0..dst_len)
        .map(|d| {
            let s = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let i = s.floor() as usize;
            if i >= last {
                (last, last, 0.0)
            } else {
                (i, i + 1, (s - i as f64) as f32)
            }
        })
        .collect()
}

/// Bilinear resize with `cv2.resize`'s `INTER_LINEAR` geometry (half-pixel
/// centres; unlike `cv2.warpAffine`, see `warp.rs`), rounded to 8 bits.
pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (xs, ys) = (axis_taps(image.width(), width), axis_taps(image.height(), height));
    let src = image.as_raw();
    let stride = image.width() as usize * 3;
    let mut out = RgbImage::new(width, height);
    let dst = out.as_mut();
    for (row, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (r0, r1) = (&src[y0 * stride..][..stride], &src[y1 * stride..][..stride]);
        let line = &mut dst[row * width as usize * 3..][..width as usize * 3];
        for (col, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = f32::from(r0[x0 * 3 + c]) * (1.0 - fx) + f32::from(r0[x1 * 3 + c]) * fx;
                let bottom = f32::from(r1[x0 * 3 + c]) * (1.0 - fx) + f32::from(r1[x1 * 3 + c]) * fx;
                line[col * 3 + c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
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
        assert_eq!(lb.scale, (64.0 / 200.0, 32.0 / 100.0));
        assert_eq!(lb.canvas.get_pixel(63, 31).0, [9, 9, 9]);
        assert_eq!(lb.canvas.get_pixel(63, 32).0, [0, 0, 0]);
        assert_eq!(lb.to_photo(32.0, 16.0), [100.0, 50.0]);
    }
}
