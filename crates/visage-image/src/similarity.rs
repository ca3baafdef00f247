//! Least-squares similarity transform between two 2-D point sets (Umeyama 1991,
//! restricted to proper rotations).
//!
//! A 2-D similarity without reflection is multiplication by one complex number
//! plus a translation: `w = a·z + t` with `a = s·e^{iθ}`. Umeyama minimises
//! `Σ‖w_i − (sR z_i + t)‖²` over `R ∈ SO(2)`, `s > 0`, `t`; writing `sR` as
//! `[[a_re, −a_im], [a_im, a_re]]` turns that into *linear* least squares in
//! `(a, t)`, whose solution is closed form:
//!
//! ```text
//! t = w̄ − a·z̄,       a = Σ conj(z_i − z̄)·(w_i − w̄) / Σ |z_i − z̄|²
//! ```
//!
//! (the complex normal equations). This equals Umeyama's SVD solution with its
//! reflection correction, because both minimise the same objective over the same
//! set of transforms; it never returns a reflection, since `a·z` cannot mirror.

use crate::error::{ImageError, Result};

/// `x' = a_re·x − a_im·y + tx`, `y' = a_im·x + a_re·y + ty`: a rotation by
/// `atan2(a_im, a_re)`, a scale `|a|` and a translation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// Real part of `a = s·e^{iθ}`: `s·cos θ`.
    pub a_re: f64,
    /// Imaginary part of `a`: `s·sin θ`.
    pub a_im: f64,
    /// Translation along x, in destination pixels.
    pub tx: f64,
    /// Translation along y, in destination pixels.
    pub ty: f64,
}

impl Similarity {
    /// The similarity mapping `src` onto `dst` with the least sum of squared
    /// distances. Fails when fewer than two points are given, the lengths
    /// differ, or all `src` points coincide (no scale or rotation is defined).
    pub fn estimate(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Result<Self> {
        if src.len() != dst.len() || src.len() < 2 {
            return Err(ImageError::Alignment(format!(
                "similarity needs two equally long lists of at least 2 points, got {} and {}",
                src.len(),
                dst.len()
            )));
        }
        let n = src.len() as f64;
        let mean = |points: &[[f64; 2]]| {
            let (sx, sy) = points.iter().fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
            [sx / n, sy / n]
        };
        let (src_mean, dst_mean) = (mean(src), mean(dst));

        let (mut re, mut im, mut src_spread) = (0.0, 0.0, 0.0);
        for (z, w) in src.iter().zip(dst) {
            let (zx, zy) = (z[0] - src_mean[0], z[1] - src_mean[1]);
            let (wx, wy) = (w[0] - dst_mean[0], w[1] - dst_mean[1]);
            re += zx * wx + zy * wy;
            im += zx * wy - zy * wx;
            src_spread += zx * zx + zy * zy;
        }
        if !(src_spread > 1e-12) {
            return Err(ImageError::Alignment(format!(
                "the source points are all at one place ({:.3}, {:.3}): scale and rotation are undefined",
                src_mean[0], src_mean[1]
            )));
        }
        let (a_re, a_im) = (re / src_spread, im / src_spread);
        Ok(Self {
            a_re,
            a_im,
            tx: dst_mean[0] - (a_re * src_mean[0] - a_im * src_mean[1]),
            ty: dst_mean[1] - (a_im * src_mean[0] + a_re * src_mean[1]),
        })
    }

    /// Maps one point: `a·p + t`.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [self.a_re * p[0] - self.a_im * p[1] + self.tx, self.a_im * p[0] + self.a_re * p[1] + self.ty]
    }

    /// The inverse map: `z = conj(a)/|a|² · (w − t)`. Non-finite when the scale is 0, which
    /// [`estimate`](Self::estimate) can return (e.g. when every `dst` point coincides).
    pub fn inverse(&self) -> Self {
        let norm2 = self.a_re * self.a_re + self.a_im * self.a_im;
        let (a_re, a_im) = (self.a_re / norm2, -self.a_im / norm2);
        Self { a_re, a_im, tx: -(a_re * self.tx - a_im * self.ty), ty: -(a_im * self.tx + a_re * self.ty) }
    }

    /// The 2×3 matrix as OpenCV's `warpAffine` and scikit-image's `params[:2]` hold it.
    pub fn matrix(&self) -> [[f64; 3]; 2] {
        [[self.a_re, -self.a_im, self.tx], [self.a_im, self.a_re, self.ty]]
    }

    /// The scale factor `|a|` (destination units per source unit).
    pub fn scale(&self) -> f64 {
        self.a_re.hypot(self.a_im)
    }

    /// The rotation angle `atan2(a_im, a_re)`, radians in (−π, π], counter-clockwise in
    /// x-right/y-up axes (so clockwise on screen, where y points down).
    pub fn rotation_rad(&self) -> f64 {
        self.a_im.atan2(self.a_re)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent check: the 4-parameter linear least squares
    /// `[x, −y, 1, 0; y, x, 0, 1]·(a_re, a_im, tx, ty) ≈ (x', y')` solved by its
    /// normal equations with Gaussian elimination.
    fn normal_equations(src: &[[f64; 2]], dst: &[[f64; 2]]) -> [f64; 4] {
        let mut m = [[0.0f64; 5]; 4];
        for (z, w) in src.iter().zip(dst) {
            for (row, rhs) in [([z[0], -z[1], 1.0, 0.0], w[0]), ([z[1], z[0], 0.0, 1.0], w[1])] {
                for i in 0..4 {
                    for j in 0..4 {
                        m[i][j] += row[i] * row[j];
                    }
                    m[i][4] += row[i] * rhs;
                }
            }
        }
        for col in 0..4 {
            let pivot = (col..4).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs())).unwrap();
            m.swap(col, pivot);
            for r in 0..4 {
                if r != col {
                    let f = m[r][col] / m[col][col];
                    for c in col..5 {
                        m[r][c] -= f * m[col][c];
                    }
                }
            }
        }
        [0, 1, 2, 3].map(|i| m[i][4] / m[i][i])
    }

    const FACE: [[f64; 2]; 5] = [[583.59, 518.23], [866.09, 522.53], [725.15, 693.44], [581.02, 775.60], [863.76, 780.37]];

    #[test]
    fn recovers_an_exact_similarity() {
        let truth = Similarity { a_re: 0.3 * 0.2f64.cos(), a_im: 0.3 * 0.2f64.sin(), tx: -12.5, ty: 40.25 };
        let dst: Vec<_> = FACE.iter().map(|&p| truth.apply(p)).collect();
        let est = Similarity::estimate(&FACE, &dst).unwrap();
        for (e, t) in [(est.a_re, truth.a_re), (est.a_im, truth.a_im), (est.tx, truth.tx), (est.ty, truth.ty)] {
            assert!((e - t).abs() < 1e-9, "{est:?} vs {truth:?}");
        }
        assert!((est.scale() - 0.3).abs() < 1e-12 && (est.rotation_rad() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn matches_the_normal_equations_on_real_landmarks() {
        let dst = crate::align::ARCFACE_TEMPLATE_112;
        let est = Similarity::estimate(&FACE, &dst).unwrap();
        let ls = normal_equations(&FACE, &dst);
        for (e, l) in [est.a_re, est.a_im, est.tx, est.ty].into_iter().zip(ls) {
            assert!((e - l).abs() < 1e-9 * (1.0 + l.abs()), "{est:?} vs {ls:?}");
        }
    }

    #[test]
    fn never_reflects() {
        // dst is src mirrored left-right: the best proper similarity is not a mirror.
        let dst: Vec<_> = FACE.iter().map(|p| [-p[0], p[1]]).collect();
        let est = Similarity::estimate(&FACE, &dst).unwrap();
        let m = est.matrix();
        assert!(m[0][0] * m[1][1] - m[0][1] * m[1][0] >= 0.0);
    }

    #[test]
    fn inverse_round_trips() {
        let s = Similarity::estimate(&FACE, &crate::align::ARCFACE_TEMPLATE_112).unwrap();
        for p in FACE {
            let q = s.inverse().apply(s.apply(p));
            assert!((q[0] - p[0]).abs() < 1e-9 && (q[1] - p[1]).abs() < 1e-9);
        }
    }

    #[test]
    fn refuses_coincident_points() {
        let err = Similarity::estimate(&[[1.0, 2.0]; 5], &crate::align::ARCFACE_TEMPLATE_112).unwrap_err();
        assert!(err.to_string().contains("all at one place"), "{err}");
    }
}
