//! k-means (Lloyd's algorithm) with k-means++ seeding (Arthur & Vassilvitskii,
//! SODA 2007) and several restarts, keeping the run of lowest inertia —
//! the scheme of scikit-learn's `KMeans` (greedy k-means++ with
//! `2 + ⌊ln k⌋` candidate centres per step, tolerance relative to the mean
//! per-feature variance).
//!
//! For the cosine metric the rows are L2-normalised first and the same
//! squared-euclidean objective is minimised (on the unit sphere it orders
//! points like the cosine distance).

use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::distance::{normalize_rows, Metric};

/// k-means parameters; defaults are scikit-learn's (`n_init = 10` restarts is
/// its classic default, `max_iter = 300`, `tol = 1e-4`).
#[derive(Debug, Clone, Copy)]
pub struct KmeansConfig {
    /// Number of clusters; [`kmeans`] clamps it to `1 ..= rows`.
    pub k: usize,
    /// k-means++ seedings, each run to convergence; the lowest inertia wins
    /// (0 counts as 1).
    pub restarts: usize,
    /// Lloyd iterations per restart at most.
    pub max_iter: usize,
    /// Convergence: stop when the squared centre shift summed over centres is
    /// at most `tol` × the mean per-feature variance of the rows clustered.
    pub tol: f64,
    /// Seed of the generator shared by all restarts (same seed, same labels).
    pub seed: u64,
    /// Cosine clusters L2-normalised rows; euclidean the rows as given.
    pub metric: Metric,
}

impl KmeansConfig {
    /// `k` clusters under `metric` with the other parameters at their
    /// defaults: 10 restarts, 300 iterations, `tol` 1e-4, seed 0.
    pub fn new(k: usize, metric: Metric) -> Self {
        KmeansConfig { k, restarts: 10, max_iter: 300, tol: 1e-4, seed: 0, metric }
    }
}

/// Result of the best restart.
#[derive(Debug, Clone)]
pub struct KmeansFit {
    /// Cluster of each row, `0 .. k` (never `-1`); numbering follows the
    /// seeding, not the rows.
    pub labels: Vec<i64>,
    /// The k centres (k × columns), in the space clustered (unit rows'
    /// means for cosine, so not themselves unit length).
    pub centres: Array2<f64>,
    /// Sum of squared euclidean distances of the rows to their centres, in
    /// that space (scikit-learn's `inertia_`).
    pub inertia: f64,
}

/// Squared distances of every row to every centre, via `|x|² − 2x·c + |c|²`.
fn assign(x: &Array2<f64>, x_sq: &[f64], centres: &Array2<f64>) -> (Vec<usize>, Vec<f64>) {
    let c_sq: Vec<f64> = centres.axis_iter(Axis(0)).map(|c| c.dot(&c)).collect();
    let rows: Vec<usize> = (0..x.nrows()).step_by(1024).collect();
    let parts: Vec<(Vec<usize>, Vec<f64>)> = rows
        .par_iter()
        .map(|&start| {
            let end = (start + 1024).min(x.nrows());
            let dots = super::product::a_bt(x.slice(ndarray::s![start..end, ..]), centres.view());
            let mut labels = Vec::with_capacity(end - start);
            let mut dists = Vec::with_capacity(end - start);
            for (r, row) in dots.outer_iter().enumerate() {
                let (mut best, mut best_d) = (0, f64::INFINITY);
                for (c, &dot) in row.iter().enumerate() {
                    let d = (x_sq[start + r] - 2.0 * dot + c_sq[c]).max(0.0);
                    if d < best_d {
                        best = c;
                        best_d = d;
                    }
                }
                labels.push(best);
                dists.push(best_d);
            }
            (labels, dists)
        })
        .collect();
    let mut labels = Vec::with_capacity(x.nrows());
    let mut dists = Vec::with_capacity(x.nrows());
    for (l, d) in parts {
        labels.extend(l);
        dists.extend(d);
    }
    (labels, dists)
}

fn sq_dist(a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Greedy k-means++: each new centre is the best (lowest potential) of
/// `2 + ⌊ln k⌋` candidates drawn with probability ∝ D(x)².
fn kmeans_plus_plus(x: &Array2<f64>, k: usize, rng: &mut StdRng) -> Array2<f64> {
    let n = x.nrows();
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centres = Array2::zeros((k, x.ncols()));
    let first = rng.random_range(0..n);
    centres.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = (0..n).into_par_iter().map(|i| sq_dist(x.row(i), x.row(first))).collect();
    for c in 1..k {
        let potential: f64 = closest.iter().sum();
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for _ in 0..trials {
            let target = rng.random::<f64>() * potential;
            let mut acc = 0.0;
            let mut cand = n - 1;
            for (i, &d) in closest.iter().enumerate() {
                acc += d;
                if acc > target {
                    cand = i;
                    break;
                }
            }
            let updated: Vec<f64> = (0..n).into_par_iter().map(|i| closest[i].min(sq_dist(x.row(i), x.row(cand)))).collect();
            let pot: f64 = updated.iter().sum();
            if best.as_ref().is_none_or(|b| pot < b.1) {
                best = Some((cand, pot, updated));
            }
        }
        let (cand, _, updated) = best.unwrap();
        centres.row_mut(c).assign(&x.row(cand));
        closest = updated;
    }
    centres
}

fn lloyd(x: &Array2<f64>, x_sq: &[f64], mut centres: Array2<f64>, config: &KmeansConfig, tol_abs: f64) -> KmeansFit {
    let k = centres.nrows();
    let mut labels = Vec::new();
    for _ in 0..config.max_iter {
        let (assigned, dists) = assign(x, x_sq, &centres);
        let mut sums = Array2::<f64>::zeros(centres.raw_dim());
        let mut counts = vec![0usize; k];
        for (i, &c) in assigned.iter().enumerate() {
            let mut row = sums.row_mut(c);
            row += &x.row(i);
            counts[c] += 1;
        }
        let mut new_centres = centres.clone();
        for (c, &count) in counts.iter().enumerate() {
            if count > 0 {
                new_centres.row_mut(c).assign(&(&sums.row(c) / count as f64));
            } else {
                // empty cluster: move it to the point farthest from its centre
                let far = dists.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
                new_centres.row_mut(c).assign(&x.row(far));
            }
        }
        let shift: f64 = (&new_centres - &centres).mapv(|v| v * v).sum();
        centres = new_centres;
        labels = assigned;
        if shift <= tol_abs {
            break;
        }
    }
    let (final_labels, dists) = assign(x, x_sq, &centres);
    if !labels.is_empty() {
        labels = final_labels;
    }
    KmeansFit { labels: labels.iter().map(|&l| l as i64).collect(), centres, inertia: dists.iter().sum() }
}

/// Runs `config.restarts` seeded k-means and keeps the lowest inertia.
pub fn kmeans(x: &Array2<f64>, config: &KmeansConfig) -> KmeansFit {
    let x = match config.metric {
        Metric::Cosine => normalize_rows(x),
        Metric::Euclidean => x.clone(),
    };
    let k = config.k.clamp(1, x.nrows());
    let x_sq: Vec<f64> = x.axis_iter(Axis(0)).map(|r| r.dot(&r)).collect();
    let variance: Array1<f64> = x.var_axis(Axis(0), 0.0);
    let tol_abs = variance.mean().unwrap_or(0.0) * config.tol;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut best: Option<KmeansFit> = None;
    for _ in 0..config.restarts.max(1) {
        let init = kmeans_plus_plus(&x, k, &mut rng);
        let fit = lloyd(&x, &x_sq, init, config, tol_abs);
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    best.unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn separates_two_obvious_groups() {
        let x = array![[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [10.0, 10.0], [10.1, 10.0], [10.0, 10.1]];
        let fit = kmeans(&x, &KmeansConfig::new(2, Metric::Euclidean));
        assert_eq!(fit.labels[0], fit.labels[1]);
        assert_eq!(fit.labels[1], fit.labels[2]);
        assert_eq!(fit.labels[3], fit.labels[4]);
        assert_ne!(fit.labels[0], fit.labels[3]);
        // each triangle, mean (1/30, 1/30): squared distances 2/900 + 5/900 + 5/900
        let expected = 2.0 * 12.0 / 900.0;
        assert!((fit.inertia - expected).abs() < 1e-9, "{} vs {}", fit.inertia, expected);
    }
}
