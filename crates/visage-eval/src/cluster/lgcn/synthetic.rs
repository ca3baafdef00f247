//! Synthetic identity mixtures whose spread is fitted to real embeddings,
//! for training L-GCN beyond the few hundred labelled real faces at hand.
//!
//! A face of identity `c` is `x = normalise(ĉ + s·ε)`: `ĉ` the identity's
//! unit centre, `ε` a tangent direction at `ĉ` with `E‖ε‖² = 1`, and `s`
//! the tangent of its angle to the centre — a von Mises–Fisher-like cap
//! whose shape follows the real within-class scatter. What is fitted
//! ([`fit_spread`]) from labelled unit embeddings:
//!
//! - centres: the mean and covariance of the real identities' unit centres
//!   (shrunk towards isotropic, since there are fewer identities than
//!   dimensions); a synthetic centre is a normalised Gaussian draw, so its
//!   cosines to other centres follow the real between-identity ones;
//! - within-class directions: the pooled covariance of the real tangent
//!   residuals `x − (x·ĉ)ĉ` (same shrinkage), so faces spread along the
//!   directions real faces of one person do (pose, light, age);
//! - per identity, `s` is log-normal with the mean and spread of the real
//!   identities' `log s` (`s² = n/(n−1) · mean tan²θ`: the centre is
//!   estimated from the same `n` faces, which pulls it towards them);
//! - per face, a further log-normal factor for faces far from their
//!   identity's typical spread (profile, blur).

use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::distance::normalize_rows;
use crate::EvalError;

/// Share of the isotropic part in the shrunk covariances.
const SHRINKAGE: f64 = 0.2;

/// What [`fit_spread`] measured, and draws from it ([`SpreadFit::scene`]).
#[derive(Debug, Clone)]
pub struct SpreadFit {
    centre_mean: Array1<f64>,
    centre_factor: Array2<f64>,
    within_factor: Array2<f64>,
    /// Mean of `log s` over the real identities.
    pub log_spread_mean: f64,
    /// Standard deviation of `log s` over the real identities.
    pub log_spread_std: f64,
    /// Standard deviation of a face's log deviation from its identity's `s`.
    pub face_log_std: f64,
    /// Identities with at least two faces that the fit used.
    pub identities: usize,
}

/// Sizes of a synthetic scene: how many identities, how many faces each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneConfig {
    /// Fewest identities in a scene.
    pub min_identities: usize,
    /// Most identities in a scene.
    pub max_identities: usize,
    /// A scene's mean faces per identity beyond the first is drawn uniformly from this range…
    pub extra_faces_mean: (f64, f64),
    /// …and each identity's count is 1 + geometric, at most this.
    pub max_faces: usize,
}

impl Default for SceneConfig {
    /// Photo collections like the real sets: 20–80 people, 1.5–7 photos each on average.
    fn default() -> Self {
        SceneConfig { min_identities: 20, max_identities: 80, extra_faces_mean: (0.5, 6.0), max_faces: 20 }
    }
}

/// Fits the spread model to labelled embeddings (rows need not be unit
/// length; they are normalised). Needs at least two identities with two or
/// more faces; labels below 0 (noise) are left out.
pub fn fit_spread(x: &Array2<f64>, labels: &[i64]) -> Result<SpreadFit, EvalError> {
    if labels.len() != x.nrows() {
        return Err(EvalError::Invalid(format!("{} labels for {} embeddings", labels.len(), x.nrows())));
    }
    let unit = normalize_rows(x);
    let dim = unit.ncols();
    let mut members: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, &l) in labels.iter().enumerate().filter(|(_, l)| **l >= 0) {
        members.entry(l).or_default().push(i);
    }
    let mut centres = Vec::new();
    let mut residuals = Vec::new();
    let mut log_spreads = Vec::new();
    let mut face_logs = Vec::new();
    for rows in members.values().filter(|rows| rows.len() >= 2) {
        let mean = rows.iter().fold(Array1::<f64>::zeros(dim), |acc, &r| acc + unit.row(r));
        let norm = mean.dot(&mean).sqrt();
        if norm <= 1e-9 {
            continue;
        }
        let centre = mean / norm;
        let mut tan2 = Vec::new();
        for &r in rows {
            let row = unit.row(r);
            let cos = row.dot(&centre).max(1e-3);
            let residual = &row - &(&centre * cos);
            let sin2 = residual.dot(&residual);
            tan2.push(sin2 / (cos * cos));
            residuals.push(residual / cos);
        }
        let n = rows.len() as f64;
        let s2 = n / (n - 1.0) * tan2.iter().sum::<f64>() / n;
        if s2 > 0.0 {
            log_spreads.push(0.5 * s2.ln());
            face_logs.extend(tan2.iter().filter(|&&t| t > 0.0).map(|t| 0.5 * (t / (s2 * (n - 1.0) / n)).ln()));
        }
        centres.push(centre);
    }
    if centres.len() < 2 || log_spreads.is_empty() {
        return Err(EvalError::Invalid(format!("fitting needs two or more identities with two or more faces; found {}", centres.len())));
    }
    let stack = |rows: &[Array1<f64>]| Array2::from_shape_fn((rows.len(), dim), |(i, j)| rows[i][j]);
    let centres = stack(&centres);
    let centre_mean = centres.mean_axis(Axis(0)).expect("rows");
    let centre_cov = shrunk_covariance(&(&centres - &centre_mean), 1.0);
    let within_cov = shrunk_covariance(&stack(&residuals), 0.0);
    // unit trace: ε has E‖ε‖² = 1 and s alone carries the scale
    let within_cov = &within_cov / within_cov.diag().sum();
    let (log_spread_mean, log_spread_std) = mean_std(&log_spreads);
    let (_, face_log_std) = mean_std(&face_logs);
    Ok(SpreadFit {
        centre_mean,
        centre_factor: cholesky(&centre_cov),
        within_factor: cholesky(&within_cov),
        log_spread_mean,
        log_spread_std,
        face_log_std,
        identities: centres.nrows(),
    })
}

impl SpreadFit {
    /// One synthetic scene: embeddings (unit rows, identities in random
    /// order of faces) and their labels `0..`.
    pub fn scene(&self, config: &SceneConfig, seed: u64) -> (Array2<f64>, Vec<i64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let identities = rng.random_range(config.min_identities..=config.max_identities.max(config.min_identities));
        let extra_mean = rng.random_range(config.extra_faces_mean.0..=config.extra_faces_mean.1.max(config.extra_faces_mean.0));
        // geometric on {0, 1, …} with mean m: P(stop) = 1/(1+m)
        let stop = 1.0 / (1.0 + extra_mean);
        let dim = self.centre_mean.len();
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for identity in 0..identities {
            let centre = unit(&self.centre_mean + &self.centre_factor.dot(&gaussian(&mut rng, dim)));
            let spread = (self.log_spread_mean + self.log_spread_std * normal(&mut rng)).exp();
            let mut faces = 1;
            while faces < config.max_faces && rng.random::<f64>() >= stop {
                faces += 1;
            }
            for _ in 0..faces {
                let mut tangent = self.within_factor.dot(&gaussian(&mut rng, dim));
                tangent = &tangent - &(&centre * tangent.dot(&centre));
                let scale = spread * (self.face_log_std * normal(&mut rng)).exp();
                rows.push(unit(&centre + &(tangent * scale)));
                labels.push(identity as i64);
            }
        }
        let order = permutation(rows.len(), rng.random());
        let x = Array2::from_shape_fn((rows.len(), dim), |(i, j)| rows[order[i]][j]);
        (x, order.iter().map(|&i| labels[i]).collect())
    }

    /// Mean cosine between the fitted centre distribution's draws and
    /// between faces and their centre, over `draws` samples: what a test
    /// compares with the real set's own.
    pub fn centre_cosine_mean(&self, draws: usize, seed: u64) -> f64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dim = self.centre_mean.len();
        let mut draw = || unit(&self.centre_mean + &self.centre_factor.dot(&gaussian(&mut rng, dim)));
        (0..draws).map(|_| draw().dot(&draw())).sum::<f64>() / draws.max(1) as f64
    }
}

/// A random rotation of `dim`-space (Gram–Schmidt on Gaussian columns, so
/// uniform over orthogonal matrices): applied to a training scene, it keeps
/// every cosine and moves the identities to directions no real set had, so a
/// network cannot learn where particular people lie.
pub fn random_rotation(dim: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut q = Array2::<f64>::zeros((dim, dim));
    for j in 0..dim {
        let mut v = gaussian(&mut rng, dim);
        for k in 0..j {
            let column = q.column(k);
            let projection = v.dot(&column);
            v = &v - &(&column * projection);
        }
        q.column_mut(j).assign(&unit(v));
    }
    q
}

/// A seeded permutation of `0..n` (Fisher–Yates): the order a trainer
/// visits its samples in.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}

fn unit(v: Array1<f64>) -> Array1<f64> {
    let norm = v.dot(&v).sqrt();
    if norm > 0.0 {
        v / norm
    } else {
        v
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn gaussian(rng: &mut StdRng, dim: usize) -> Array1<f64> {
    Array1::from_shape_fn(dim, |_| normal(rng))
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// `(1 − α)·S + α·tr(S)/d·I` of the rows' second moments (`centred`: rows
/// already have their mean removed; `ddof` 1 for a sample covariance).
fn shrunk_covariance(rows: &Array2<f64>, ddof: f64) -> Array2<f64> {
    let n = (rows.nrows() as f64 - ddof).max(1.0);
    let scatter = rows.t().dot(rows) / n;
    let dim = scatter.nrows();
    let iso = scatter.diag().sum() / dim as f64;
    let mut shrunk = scatter * (1.0 - SHRINKAGE);
    for i in 0..dim {
        shrunk[[i, i]] += SHRINKAGE * iso;
    }
    shrunk
}

/// Lower-triangular `L` with `L·Lᵀ = a` (a symmetric positive definite);
/// pivots that round to ≤ 0 are set to 0.
fn cholesky(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                l[[i, i]] = (a[[i, i]] - sum).max(0.0).sqrt();
            } else if l[[j, j]] > 0.0 {
                l[[i, j]] = (a[[i, j]] - sum) / l[[j, j]];
            }
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_of_a_hand_matrix() {
        let a = ndarray::array![[4.0, 2.0, 0.4], [2.0, 2.0, 0.2], [0.4, 0.2, 1.04]];
        let l = cholesky(&a);
        // by hand: l00 = 2, l10 = 1, l11 = 1, l20 = 0.2, l21 = 0, l22 = 1
        let want = ndarray::array![[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.2, 0.0, 1.0]];
        assert!((&l - &want).iter().all(|d| d.abs() < 1e-12), "{l}");
    }

    #[test]
    fn a_fit_to_synthetic_data_recovers_its_spread() {
        // Data drawn from a known fit must give back about the same spread:
        // identities with s = exp(−0.7 ± 0.2), faces ×exp(±0.15).
        let dim = 32;
        let truth = SpreadFit {
            centre_mean: Array1::zeros(dim),
            centre_factor: Array2::eye(dim) / (dim as f64).sqrt(),
            within_factor: Array2::eye(dim) / (dim as f64).sqrt(),
            log_spread_mean: -0.7,
            log_spread_std: 0.2,
            face_log_std: 0.15,
            identities: 0,
        };
        let config = SceneConfig { min_identities: 400, max_identities: 400, extra_faces_mean: (5.0, 5.0), max_faces: 20 };
        let (x, labels) = truth.scene(&config, 3);
        let fit = fit_spread(&x, &labels).unwrap();
        assert!((fit.log_spread_mean + 0.7).abs() < 0.05, "{}", fit.log_spread_mean);
        assert!((fit.log_spread_std - 0.2).abs() < 0.06, "{}", fit.log_spread_std);
        assert!(fit.face_log_std > 0.1 && fit.face_log_std < 0.6, "{}", fit.face_log_std);
        // isotropic centres in 32-d: mean cosine about 0
        assert!(fit.centre_cosine_mean(2000, 1).abs() < 0.02);
        let (again, _) = truth.scene(&config, 3);
        assert_eq!(x, again, "a scene is a function of its seed");
    }

    #[test]
    fn fitting_needs_two_identities() {
        let x = ndarray::array![[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]];
        assert!(fit_spread(&x, &[0, 0, 1]).unwrap_err().to_string().contains("found 1"));
        assert!(fit_spread(&x, &[0, 0]).is_err());
    }

    #[test]
    fn rotations_are_orthogonal() {
        let q = random_rotation(16, 4);
        let identity = q.t().dot(&q);
        assert!((&identity - &Array2::<f64>::eye(16)).iter().all(|d| d.abs() < 1e-12));
        assert_eq!(q, random_rotation(16, 4));
    }

    #[test]
    fn permutations_are_seeded() {
        let p = permutation(50, 9);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(p, permutation(50, 9));
        assert_ne!(p, permutation(50, 10));
    }
}
