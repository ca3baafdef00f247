//! Inverse-mapped bilinear warp, the sampling `cv2.warpAffine` does with
//! `INTER_LINEAR` and `BORDER_CONSTANT` 0.
//!
//! Convention (OpenCV's, and the one the landmark coordinates use): pixel
//! `(col, row)` has its centre at the integer point `(col, row)`, no half-pixel
//! offset. Each output pixel `(x, y)` reads the source at `M·(x, y, 1)` with
//! `M` the destination-to-source map; a source neighbour outside the image
//! counts as 0, so faces near the border fade to black exactly as in OpenCV.

use image::RgbImage;

/// Renders a `width`×`height` image whose pixel `(x, y)` is `src` sampled
/// bilinearly at `dst_to_src · (x, y, 1)`.
pub fn warp_affine_bilinear(src: &RgbImage, dst_to_src: &[[f64; 3]; 2], width: u32, height: u32) -> RgbImage {
    let (src_w, src_h) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let texel = |col: i64, row: i64| -> [f64; 3] {
        if col < 0 || row < 0 || col >= src_w || row >= src_h {
            return [0.0; 3];
        }
        let at = ((row * src_w + col) * 3) as usize;
        [raw[at] as f64, raw[at + 1] as f64, raw[at + 2] as f64]
    };
    let [[m00, m01, m02], [m10, m11, m12]] = *dst_to_src;
    let mut out = RgbImage::new(width, height);
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        let (xf, yf) = (x as f64, y as f64);
        let sx = m00 * xf + m01 * yf + m02;
        let sy = m10 * xf + m11 * yf + m12;
        let (col, row) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - col, sy - row);
        let (col, row) = (col as i64, row as i64);
        let (p00, p01) = (texel(col, row), texel(col + 1, row));
        let (p10, p11) = (texel(col, row + 1), texel(col + 1, row + 1));
        for c in 0..3 {
            let top = p00[c] + fx * (p01[c] - p00[c]);
            let bottom = p10[c] + fx * (p11[c] - p10[c]);
            pixel.0[c] = (top + fy * (bottom - top)).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> RgbImage {
        RgbImage::from_fn(8, 6, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, 7]))
    }

    #[test]
    fn identity_copies_and_integer_shift_moves() {
        let src = ramp();
        assert_eq!(warp_affine_bilinear(&src, &[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], 8, 6), src);
        let shifted = warp_affine_bilinear(&src, &[[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]], 8, 6);
        assert_eq!(shifted.get_pixel(0, 0), src.get_pixel(2, 1));
        // Beyond the right/bottom edge every neighbour is outside: constant 0.
        assert_eq!(shifted.get_pixel(7, 5).0, [0, 0, 0]);
    }

    #[test]
    fn half_pixel_is_the_mean_and_the_border_blends_with_zero() {
        let src = ramp();
        let half = warp_affine_bilinear(&src, &[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]], 8, 6);
        assert_eq!(half.get_pixel(0, 0).0[0], 15); // (0 + 30) / 2
                                                   // Last column: neighbour col 8 is outside and counts as 0: (210 + 0) / 2.
        assert_eq!(half.get_pixel(7, 0).0[0], 105);
    }
}
