//! Radius neighbourhoods (`d(x, y) ≤ eps`, the point itself included), the
//! only geometric query DBSCAN needs.
//!
//! Cost is dominated by inner products of all pairs, so the search:
//! - visits only the upper triangle of blocks (each pair once, half the work
//!   of a full distance matrix);
//! - screens each block with low-precision dot products: 8-bit integers
//!   where the CPU has AVX-512 VNNI ([`int8`], about 4× the f32 rate
//!   with the cut compared inside the kernel), else one `f32` matrix product;
//! - re-checks in `f64` every pair whose screened distance lies within a
//!   proved error bound of `eps`, so the result is exactly that of the `f64`
//!   definition in [`Prepared::from_dot`] whichever screen ran.
//!
//! Pruning by bounds (pivots, ball trees, sorted projections) does not pay
//! here: on 512-d face embeddings the cut (cosine 0.5, 60°) is wider than
//! the angular radius of an identity, so triangle-inequality bounds reject
//! almost no block; the work left to cut is the cost per pair.
//!
//! Blocks run in parallel (rayon); the neighbour lists are the only output.

use ndarray::{s, Array2};
use rayon::prelude::*;

use super::distance::{Metric, Prepared};

#[cfg(target_arch = "x86_64")]
mod int8;

const BLOCK: usize = 512;

/// How [`radius_neighbors_screened`] screens pairs before the f64 check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// 8-bit integer dot products (AVX-512 VNNI) where the CPU has them, else [`Screen::F32`].
    Fastest,
    /// One f32 matrix product per block.
    F32,
    /// The 8-bit integer screen's arithmetic in portable code, on any CPU:
    /// slow, for checking its bounds where AVX-512 VNNI is missing.
    Int8Emulated,
}

/// For every row, the indices (ascending) of rows within `eps`, itself included.
pub fn radius_neighbors(data: &Prepared, eps: f64) -> Vec<Vec<u32>> {
    radius_neighbors_screened(data, eps, Screen::Fastest)
}

/// Whether [`Screen::Fastest`] runs the 8-bit integer screen on this CPU.
pub fn int8_screen_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return int8::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// [`radius_neighbors`] with the screen chosen: the same neighbourhoods
/// whichever runs (tests compare them).
pub fn radius_neighbors_screened(data: &Prepared, eps: f64, screen: Screen) -> Vec<Vec<u32>> {
    let edges = match screen {
        #[cfg(target_arch = "x86_64")]
        Screen::Fastest if int8::available() => int8::pairs_within(data, eps, false),
        #[cfg(target_arch = "x86_64")]
        Screen::Int8Emulated => int8::pairs_within(data, eps, true),
        _ => pairs_within_f32(data, eps),
    };
    let n = data.len();
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

/// Pairs `(i, j)`, `i < j`, within `eps`, per block pair, screened by an f32
/// matrix product: a dot product within a margin of the f32 rounding of the
/// cut is decided in f64.
fn pairs_within_f32(data: &Prepared, eps: f64) -> Vec<Vec<(u32, u32)>> {
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
    block_pairs
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
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lcg(u64);
    impl Lcg {
        /// Uniform in [−0.5, 0.5).
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    /// Every row's neighbourhood by brute force in f64: the definition.
    fn brute_force(data: &Prepared, eps: f64) -> Vec<Vec<u32>> {
        let n = data.len();
        (0..n).map(|i| (0..n).filter(|&j| data.from_dot(i, j, data.rows.row(i).dot(&data.rows.row(j))) <= eps).map(|j| j as u32).collect()).collect()
    }

    /// Brute-force f64 neighbourhoods equal the screened ones, for both
    /// screens, including points placed exactly on the eps boundary.
    #[test]
    fn equals_exact_search() {
        let mut rng = Lcg(7);
        let x = Array2::from_shape_fn((1100, 24), |_| rng.next());
        for metric in [Metric::Cosine, Metric::Euclidean] {
            let data = Prepared::new(&x, metric);
            // eps = an actual pairwise distance, so one pair sits exactly on the boundary
            let eps = data.from_dot(3, 900, data.rows.row(3).dot(&data.rows.row(900)));
            let want = brute_force(&data, eps);
            for screen in [Screen::Fastest, Screen::F32, Screen::Int8Emulated] {
                let got = radius_neighbors_screened(&data, eps, screen);
                assert_eq!(got, want, "{metric:?} {screen:?}");
                assert!(got[3].contains(&900) && got[900].contains(&3));
            }
        }
    }

    /// Face-like data — identities of a few close rows, magnitudes 1–30,
    /// unstructured rows, exact duplicates, all-zero rows, a dimension that
    /// is not a multiple of 4 — at cuts inside, between and beyond the
    /// identities, and at distances that occur exactly: both screens give
    /// the brute-force neighbourhoods, thousands of pairs on each side.
    #[test]
    fn clustered_rows_equal_exact_search_at_every_cut() {
        let (n, d) = (900, 37);
        let mut rng = Lcg(19);
        let centres: Vec<Vec<f64>> = (0..60).map(|_| (0..d).map(|_| rng.next()).collect()).collect();
        let mut x = Array2::<f64>::zeros((n, d));
        for i in 0..n {
            let magnitude = 1.0 + 29.0 * (rng.next() + 0.5);
            match i % 10 {
                0 => x.row_mut(i).iter_mut().for_each(|v| *v = rng.next() * magnitude),
                1 if i > 100 => {
                    let copy = x.row(i - 50).to_owned();
                    x.row_mut(i).assign(&copy);
                }
                2 if i % 100 == 2 => {}
                _ => {
                    let c = &centres[i % 60];
                    x.row_mut(i).iter_mut().zip(c).for_each(|(v, &c)| *v = (c + 0.15 * rng.next()) * magnitude);
                }
            }
        }
        for metric in [Metric::Cosine, Metric::Euclidean] {
            let data = Prepared::new(&x, metric);
            let observed = |i: usize, j: usize| data.from_dot(i, j, data.rows.row(i).dot(&data.rows.row(j)));
            let scale = if metric == Metric::Cosine { 1.0 } else { 10.0 };
            // the most balanced cut's smaller side: pairs inside or outside
            let mut balance = 0;
            for eps in [0.0, 0.05 * scale, 0.2 * scale, 0.5 * scale, 1.2 * scale, observed(13, 73), observed(5, 6)] {
                let want = brute_force(&data, eps);
                let pairs: usize = want.iter().map(|nb| nb.len() - 1).sum();
                for screen in [Screen::Fastest, Screen::F32, Screen::Int8Emulated] {
                    assert_eq!(radius_neighbors_screened(&data, eps, screen), want, "{metric:?} eps {eps} {screen:?}");
                }
                balance = balance.max(pairs.min(n * (n - 1) - pairs));
            }
            assert!(balance > 20_000, "{metric:?}: no cut with over 20000 pairs on each side ({balance})");
        }
    }
}
