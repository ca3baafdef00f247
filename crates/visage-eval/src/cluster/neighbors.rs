//! Radius neighbourhoods (`d(x, y) ≤ eps`, the point itself included), the
//! only geometric query DBSCAN needs.
//!
//! Cost is dominated by inner products of all pairs, so the search:
//! - visits only the upper triangle of blocks (each pair once, half the work
//!   of a full distance matrix);
//! - screens each block with one `f32` matrix product (twice the SIMD width
//!   of `f64`);
//! - re-checks in `f64` every pair whose `f32` distance lies within a
//!   safety margin of `eps`, so the result is exactly that of the `f64`
//!   definition in [`Prepared::from_dot`] (the margin bounds the `f32`
//!   rounding of a dot product of this length, generously).
//!
//! Blocks run in parallel (rayon); the neighbour lists are the only output.

use ndarray::{s, Array2};
use rayon::prelude::*;

use super::distance::{Metric, Prepared};

const BLOCK: usize = 512;

/// For every row, the indices (ascending) of rows within `eps`, itself included.
pub fn radius_neighbors(data: &Prepared, eps: f64) -> Vec<Vec<u32>> {
    let n = data.len();
    let d = data.rows.ncols();
    let rows32: Array2<f32> = data.rows.mapv(|v| v as f32);
    // f32 rounding of a length-d dot product of these rows: ≤ d·2⁻²³·|x||y| (worst case)
    let max_sq = data.sq_norms.iter().copied().fold(0.0f64, f64::max);
    let margin = (d as f64 * 1.2e-7 * max_sq * 4.0).max(1e-9);
    let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
    let block_pairs: Vec<(usize, usize)> =
        starts.iter().enumerate().flat_map(|(i, &a)| starts[i..].iter().map(move |&b| (a, b))).collect();
    let edges: Vec<Vec<(u32, u32)>> = block_pairs
        .par_iter()
        .map(|&(a0, b0)| {
            let (a1, b1) = ((a0 + BLOCK).min(n), (b0 + BLOCK).min(n));
            let dots = rows32.slice(s![a0..a1, ..]).dot(&rows32.slice(s![b0..b1, ..]).t());
            let mut found = Vec::new();
            for (ri, row) in dots.outer_iter().enumerate() {
                let i = a0 + ri;
                let from = if a0 == b0 { ri + 1 } else { 0 };
                for (cj, &dot32) in row.iter().enumerate().skip(from) {
                    let j = b0 + cj;
                    // compare in the squared/affine domain where f32 error is additive
                    let approx = approx_distance(data, i, j, dot32 as f64);
                    let inside = if (approx - eps).abs() <= margin_for(data.metric, margin, eps) {
                        let exact: f64 = data.rows.row(i).dot(&data.rows.row(j));
                        data.from_dot(i, j, exact) <= eps
                    } else {
                        approx <= eps
                    };
                    if inside {
                        found.push((i as u32, j as u32));
                    }
                }
            }
            found
        })
        .collect();
    let mut neighbors: Vec<Vec<u32>> = (0..n).map(|i| vec![i as u32]).collect();
    for block in edges {
        for (i, j) in block {
            neighbors[i as usize].push(j);
            neighbors[j as usize].push(i);
        }
    }
    neighbors.par_iter_mut().for_each(|v| v.sort_unstable());
    neighbors
}

#[inline]
fn approx_distance(data: &Prepared, i: usize, j: usize, dot: f64) -> f64 {
    data.from_dot(i, j, dot)
}

/// Margin in distance units: for cosine the dot error is the distance error;
/// for euclidean `d = √(d²)` shrinks an error δ on `d²` to about δ / (2·eps).
fn margin_for(metric: Metric, dot_margin: f64, eps: f64) -> f64 {
    match metric {
        Metric::Cosine => dot_margin,
        Metric::Euclidean => 2.0 * dot_margin / (2.0 * eps).max(1e-6) + dot_margin.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force f64 neighbourhoods equal the screened ones, including
    /// points placed exactly on the eps boundary.
    #[test]
    fn equals_exact_search() {
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let x = Array2::from_shape_fn((1100, 24), |_| next());
        for metric in [Metric::Cosine, Metric::Euclidean] {
            let data = Prepared::new(&x, metric);
            // eps = an actual pairwise distance, so one pair sits exactly on the boundary
            let eps = data.from_dot(3, 900, data.rows.row(3).dot(&data.rows.row(900)));
            let got = radius_neighbors(&data, eps);
            for i in (0..1100).step_by(37) {
                let want: Vec<u32> = (0..1100)
                    .filter(|&j| data.from_dot(i, j, data.rows.row(i).dot(&data.rows.row(j))) <= eps)
                    .map(|j| j as u32)
                    .collect();
                assert_eq!(got[i], want, "{metric:?} row {i}");
            }
            assert!(got[3].contains(&900) && got[900].contains(&3));
        }
    }
}
