//! Distances between embeddings, computed blockwise with a matrix product.
//!
//! Both metrics reduce to inner products: for cosine the rows are
//! L2-normalised first and `d = 1 − x̂·ŷ` (scikit-learn's `cosine_distances`);
//! for euclidean `d = √max(0, |x|² + |y|² − 2x·y)` (scikit-learn's
//! `euclidean_distances`, float64 path). Using the same expansions in float64
//! keeps our neighbourhoods and merge orders equal to the reference ones.

use std::ops::Range;

use ndarray::{s, Array2, ArrayView2, Axis};

/// Distance between embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `1 − cos(x, y)`: the usual face-embedding distance.
    Cosine,
    /// `‖x − y‖₂`.
    Euclidean,
}

/// Rows scaled to unit L2 norm; an all-zero row stays zero (as in scikit-learn's `normalize`).
pub fn normalize_rows(x: &Array2<f64>) -> Array2<f64> {
    let mut out = x.clone();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row.mapv_inplace(|v| v / norm);
        }
    }
    out
}

/// L2 norms of the rows (the MagFace "magnitude" of each face).
pub fn row_norms(x: &Array2<f64>) -> Vec<f64> {
    x.axis_iter(Axis(0)).map(|r| r.dot(&r).sqrt()).collect()
}

/// Embeddings prepared for a metric: normalised rows for cosine, and the
/// squared norms used by the euclidean expansion.
pub struct Prepared {
    /// The embeddings, L2-normalised for cosine, as given for euclidean.
    pub rows: Array2<f64>,
    /// Squared L2 norm of each row of `rows` (for cosine ≈ 1, or 0 for an all-zero row).
    pub sq_norms: Vec<f64>,
    /// The metric the rows were prepared for.
    pub metric: Metric,
}

impl Prepared {
    /// Copies `x` (one embedding per row), normalising the rows for cosine.
    pub fn new(x: &Array2<f64>, metric: Metric) -> Self {
        let rows = match metric {
            Metric::Cosine => normalize_rows(x),
            Metric::Euclidean => x.clone(),
        };
        let sq_norms = rows.axis_iter(Axis(0)).map(|r| r.dot(&r)).collect();
        Prepared { rows, sq_norms, metric }
    }

    /// Number of embeddings.
    pub fn len(&self) -> usize {
        self.rows.nrows()
    }

    /// Whether there are no embeddings.
    pub fn is_empty(&self) -> bool {
        self.rows.nrows() == 0
    }

    /// Distance from an inner product of rows `i` and `j`.
    #[inline]
    pub fn from_dot(&self, i: usize, j: usize, dot: f64) -> f64 {
        if i == j {
            return 0.0;
        }
        match self.metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Euclidean => (self.sq_norms[i] + self.sq_norms[j] - 2.0 * dot).max(0.0).sqrt(),
        }
    }

    /// Distances between rows `a` and rows `b` (a dense block).
    pub fn block(&self, a: Range<usize>, b: Range<usize>) -> Array2<f64> {
        let xa: ArrayView2<f64> = self.rows.slice(s![a.clone(), ..]);
        let xb: ArrayView2<f64> = self.rows.slice(s![b.clone(), ..]);
        let mut dots = super::product::a_bt(xa, xb);
        for (ri, mut row) in dots.axis_iter_mut(Axis(0)).enumerate() {
            let i = a.start + ri;
            for (cj, v) in row.iter_mut().enumerate() {
                *v = self.from_dot(i, b.start + cj, *v);
            }
        }
        dots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn cosine_and_euclidean_blocks() {
        let x = array![[3.0, 4.0], [0.0, 2.0], [-1.0, 0.0]];
        let cos = Prepared::new(&x, Metric::Cosine);
        let d = cos.block(0..3, 0..3);
        assert!((d[[0, 1]] - (1.0 - 0.8)).abs() < 1e-15);
        assert!((d[[0, 2]] - 1.6).abs() < 1e-15);
        assert_eq!(d[[1, 1]], 0.0);
        let euc = Prepared::new(&x, Metric::Euclidean);
        let d = euc.block(0..2, 1..3);
        assert!((d[[0, 0]] - (9.0f64 + 4.0).sqrt()).abs() < 1e-12);
        assert!((d[[1, 1]] - 5.0f64.sqrt()).abs() < 1e-12);
    }
}
