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
    let block_pairs: Vec<(usize, usize)> = starts.iter().enumerate().flat_map(|(i, &a)| starts[i..].iter().map(move |&b| (a, b))).collect();
    // `d(x, y) ≤ eps` as a bound on the dot product: cosine `x·y ≥ 1 − eps`;
    // euclidean `x·y ≥ (|x|² + |y|² − eps²) / 2`. One compare per pair; only
    // pairs within `margin` of the bound are decided in f64.
    let cosine = data.metric == Metric::Cosine;
    let cut = |i: usize, j: usize| -> f64 {
        if cosine {
            1.0 - eps
        } else {
            (data.sq_norms[i] + data.sq_norms[j] - eps * eps) / 2.0
        }
    };
    let edges: Vec<Vec<(u32, u32)>> = block_pairs
        .par_iter()
        .map(|&(a0, b0)| {
            let (a1, b1) = ((a0 + BLOCK).min(n), (b0 + BLOCK).min(n));
            let dots = super::product::a_bt(rows32.slice(s![a0..a1, ..]), rows32.slice(s![b0..b1, ..]));
            let mut found = Vec::new();
            // lowest cut of the block: a cheap first filter valid for every pair in it
            let block_low = if cosine {
                (1.0 - eps - margin) as f32
            } else {
                let min_sq = |r: std::ops::Range<usize>| data.sq_norms[r].iter().copied().fold(f64::INFINITY, f64::min);
                ((min_sq(a0..a1) + min_sq(b0..b1) - eps * eps) / 2.0 - margin) as f32
            };
            for (ri, row) in dots.outer_iter().enumerate() {
                let i = a0 + ri;
                let from = if a0 == b0 { ri + 1 } else { 0 };
                for (cj, &dot32) in row.iter().enumerate().skip(from) {
                    if dot32 < block_low {
                        continue;
                    }
                    let j = b0 + cj;
                    let c = cut(i, j);
                    let dot = dot32 as f64;
                    let inside = if dot >= c + margin {
                        true
                    } else if dot <= c - margin {
                        false
                    } else {
                        let exact: f64 = data.rows.row(i).dot(&data.rows.row(j));
                        data.from_dot(i, j, exact) <= eps
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
                let want: Vec<u32> =
                    (0..1100).filter(|&j| data.from_dot(i, j, data.rows.row(i).dot(&data.rows.row(j))) <= eps).map(|j| j as u32).collect();
                assert_eq!(got[i], want, "{metric:?} row {i}");
            }
            assert!(got[3].contains(&900) && got[900].contains(&3));
        }
    }
}
