//! MagFace's theory, checked numerically (Meng et al., CVPR 2021, §3.3).
//!
//! With `m(a)` increasing and convex, `g(a)` strictly convex with `g'(u_a) = 0`
//! and `λ_g ≥ s·K/(−g'(l_a))`, the per-sample loss has a unique minimiser `a*`
//! in `[l_a, u_a]` (Theorem 1), and `a*` rises as the sample's target angle
//! falls (Theorem 2): easier, better-quality faces end up with larger norms.
//! This module checks the conditions on a dense grid and finds `a*` for a
//! sweep of target angles, so users can see the theorem hold for their
//! parameters instead of taking it on trust.
//!
//! The monotonicity argument needs `θ + m(a) ≤ π/2` (the loss's slope in `a`
//! carries `sin(θ + m(a))`, increasing in θ only up to π/2), so it covers target
//! angles `θ ≤ π/2 − u_m`; beyond that `a*` sits near `l_a` and may wobble.

use serde::Serialize;

use crate::heads::magface::MagFaceConfig;

/// Points in the grid used for the numerical checks and to bracket `a*`.
const GRID_POINTS: usize = 2001;

/// One condition of the theorem and whether it holds.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionCheck {
    /// The condition as a formula in ASCII, e.g. `"g(a) strictly convex"`.
    pub condition: &'static str,
    /// Whether the numerical check passed.
    pub holds: bool,
    /// The measured quantities behind the verdict, for display.
    pub detail: String,
}

/// The non-target classes the per-sample loss sees: `count` classes, each at
/// cosine `cos` to the sample (the paper's proof holds them fixed).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NegativeClasses {
    /// Number of non-target classes (default 1000).
    pub count: usize,
    /// Cosine of each to the sample (default 0: orthogonal).
    pub cos: f64,
}

impl Default for NegativeClasses {
    fn default() -> Self {
        Self { count: 1000, cos: 0.0 }
    }
}

/// `a*` for one target angle.
#[derive(Debug, Clone, Serialize)]
pub struct Minimiser {
    /// The target angle θ, degrees.
    pub theta_deg: f64,
    /// The minimising magnitude.
    pub a_star: f64,
    /// The margin at `a*`, radians.
    pub margin_rad: f64,
    /// The per-sample loss ([`per_sample_loss`]) at `a*`.
    pub loss: f64,
    /// Whether `θ ≤ π/2 − u_m`, the range Theorem 2 speaks about.
    pub in_theorem_domain: bool,
}

/// The largest target angle (degrees) the monotonicity theorem covers: `90° − u_m`.
pub fn theorem_max_theta_deg(config: &MagFaceConfig) -> f64 {
    90.0 - config.u_m.to_degrees()
}

/// Evenly spaced target angles from `90° − u_m` down to 5°: the default sweep.
pub fn default_thetas_deg(config: &MagFaceConfig, count: usize) -> Vec<f64> {
    let top = theorem_max_theta_deg(config);
    let bottom = 5.0f64.min(top);
    (0..count).map(|i| top - (top - bottom) * i as f64 / (count.max(2) - 1) as f64).collect()
}

fn grid(config: &MagFaceConfig) -> impl Iterator<Item = f64> + '_ {
    let step = (config.u_a - config.l_a) / (GRID_POINTS - 1) as f64;
    (0..GRID_POINTS).map(move |i| config.l_a + step * i as f64)
}

/// Checks every condition of the theorem numerically (finite differences on a grid).
pub fn check_conditions(config: &MagFaceConfig) -> Vec<ConditionCheck> {
    let points: Vec<f64> = grid(config).collect();
    let h = points[1] - points[0];
    let margins: Vec<f64> = points.iter().map(|&a| config.margin(a)).collect();
    let gs: Vec<f64> = points.iter().map(|&a| config.g(a)).collect();
    let first = |v: &[f64]| v.windows(2).map(|w| (w[1] - w[0]) / h).collect::<Vec<_>>();
    let second = |v: &[f64]| v.windows(3).map(|w| (w[2] - 2.0 * w[1] + w[0]) / (h * h)).collect::<Vec<_>>();
    let slope_k = config.margin_slope();
    let m_slopes = first(&margins);
    let (min_slope, max_slope) = m_slopes.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    let min_m_curvature = second(&margins).into_iter().fold(f64::INFINITY, f64::min);
    let min_g_curvature = second(&gs).into_iter().fold(f64::INFINITY, f64::min);
    let eps = 1e-6 * config.u_a;
    let g_prime_at_u = (config.g(config.u_a + eps) - config.g(config.u_a - eps)) / (2.0 * eps);
    let bound = config.lambda_g_lower_bound();
    // Relative tolerance for rounding in the finite differences of a linear function.
    let tol = 1e-7 * slope_k.abs().max(1e-12);
    vec![
        ConditionCheck {
            condition: "m(a) increasing on [l_a, u_a] with 0 < m'(a) <= K",
            holds: min_slope > 0.0 && max_slope <= slope_k + tol,
            detail: format!("m'(a) in [{min_slope:.6e}, {max_slope:.6e}], K = {slope_k:.6e}"),
        },
        ConditionCheck {
            condition: "m(a) convex",
            holds: min_m_curvature >= -1e-6,
            detail: format!("min second difference of m = {min_m_curvature:.3e}"),
        },
        ConditionCheck {
            condition: "g(a) strictly convex",
            holds: min_g_curvature > 0.0,
            detail: format!("min g''(a) = {min_g_curvature:.6e} (exact: 2/u_a^3 = {:.6e})", 2.0 / config.u_a.powi(3)),
        },
        ConditionCheck {
            condition: "g'(u_a) = 0",
            holds: g_prime_at_u.abs() < 1e-9,
            detail: format!("g'(u_a) = {g_prime_at_u:.3e} (central difference)"),
        },
        ConditionCheck {
            condition: "lambda_g >= s*K/(-g'(l_a))",
            holds: config.lambda_g >= bound,
            detail: format!("lambda_g = {}, bound = {bound:.6}", config.lambda_g),
        },
    ]
}

/// The per-sample loss as a function of the magnitude `a` for a fixed target
/// angle: softmax cross-entropy with the MagFace target logit plus `λ_g·g(a)`.
pub fn per_sample_loss(config: &MagFaceConfig, a: f64, theta_rad: f64, negatives: NegativeClasses) -> f64 {
    let m = config.margin(a);
    let cos_t = theta_rad.cos();
    let target = if config.easy_margin {
        if cos_t > 0.0 {
            (theta_rad + m).cos()
        } else {
            cos_t
        }
    } else if cos_t > (std::f64::consts::PI - m).cos() {
        (theta_rad + m).cos()
    } else {
        cos_t - m * m.sin()
    };
    let target_logit = config.s * target;
    let negative_logit = config.s * negatives.cos + (negatives.count as f64).ln();
    // log(e^t + e^n) − t, evaluated stably.
    let top = target_logit.max(negative_logit);
    let log_partition = top + ((target_logit - top).exp() + (negative_logit - top).exp()).ln();
    log_partition - target_logit + config.lambda_g * config.g(a)
}

/// The minimiser `a*` of [`per_sample_loss`] over `[l_a, u_a]`: bracketed on the
/// grid, then refined by golden-section search (the loss is unimodal there when
/// the conditions hold).
pub fn minimise_magnitude(config: &MagFaceConfig, theta_rad: f64, negatives: NegativeClasses) -> Minimiser {
    let loss = |a: f64| per_sample_loss(config, a, theta_rad, negatives);
    let points: Vec<f64> = grid(config).collect();
    let best = (0..points.len()).min_by(|&i, &j| loss(points[i]).total_cmp(&loss(points[j]))).expect("non-empty grid");
    let (mut lo, mut hi) = (points[best.saturating_sub(1)], points[(best + 1).min(points.len() - 1)]);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let x1 = hi - ratio * (hi - lo);
        let x2 = lo + ratio * (hi - lo);
        if loss(x1) <= loss(x2) {
            hi = x2
        } else {
            lo = x1
        }
    }
    let a_star = 0.5 * (lo + hi);
    let theta_deg = theta_rad.to_degrees();
    Minimiser {
        theta_deg,
        a_star,
        margin_rad: config.margin(a_star),
        loss: loss(a_star),
        in_theorem_domain: theta_deg <= theorem_max_theta_deg(config) + 1e-9,
    }
}

/// `a*` for each target angle (degrees), in the order given.
pub fn sweep(config: &MagFaceConfig, thetas_deg: &[f64], negatives: NegativeClasses) -> Vec<Minimiser> {
    thetas_deg.iter().map(|&t| minimise_magnitude(config, t.to_radians(), negatives)).collect()
}

/// Theorem 2 on a sweep: within the theorem's domain, sorted by falling θ, `a*` never decreases.
pub fn is_monotone(minimisers: &[Minimiser]) -> bool {
    let mut sorted: Vec<&Minimiser> = minimisers.iter().filter(|m| m.in_theorem_domain).collect();
    sorted.sort_by(|a, b| b.theta_deg.total_cmp(&a.theta_deg));
    sorted.windows(2).all(|w| w[1].a_star >= w[0].a_star - 1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parameters_satisfy_every_condition() {
        let checks = check_conditions(&MagFaceConfig::default());
        assert_eq!(checks.len(), 5);
        for check in checks {
            assert!(check.holds, "{}: {}", check.condition, check.detail);
        }
    }

    #[test]
    fn a_small_lambda_fails_only_the_bound() {
        let config = MagFaceConfig { lambda_g: 10.0, ..MagFaceConfig::default() };
        let failing: Vec<_> = check_conditions(&config).into_iter().filter(|c| !c.holds).map(|c| c.condition).collect();
        assert_eq!(failing, vec!["lambda_g >= s*K/(-g'(l_a))"]);
    }

    #[test]
    fn the_minimiser_is_a_stationary_point_and_rises_as_theta_falls() {
        let config = MagFaceConfig::default();
        let negatives = NegativeClasses::default();
        let thetas = default_thetas_deg(&config, 9);
        assert!((thetas[0] - (90.0 - 0.8f64.to_degrees())).abs() < 1e-9 && thetas[8] == 5.0);
        let sweep = sweep(&config, &thetas, negatives);
        assert!(sweep.iter().all(|m| m.in_theorem_domain));
        assert!(is_monotone(&sweep), "{sweep:?}");
        assert!(sweep[4].a_star > sweep[0].a_star + 10.0, "a* must really move: {sweep:?}");
        for m in &sweep {
            let f = |a: f64| per_sample_loss(&config, a, m.theta_deg.to_radians(), negatives);
            // Interior minimiser: the derivative vanishes (central difference).
            if m.a_star > config.l_a + 0.1 && m.a_star < config.u_a - 0.1 {
                let h = 1e-4;
                let derivative = (f(m.a_star + h) - f(m.a_star - h)) / (2.0 * h);
                assert!(derivative.abs() < 1e-5, "θ = {}: L'(a*) = {derivative}", m.theta_deg);
            }
            // And it is the minimum over a dense independent grid.
            let grid_min = (0..=10_000).map(|i| f(config.l_a + (config.u_a - config.l_a) * i as f64 / 10_000.0)).fold(f64::INFINITY, f64::min);
            assert!(m.loss <= grid_min + 1e-9, "θ = {}: {} > grid {grid_min}", m.theta_deg, m.loss);
        }
    }
}

#[cfg(test)]
mod domain_tests {
    use super::*;

    #[test]
    fn angles_beyond_the_theorem_are_flagged_not_judged() {
        let config = MagFaceConfig::default();
        // At 80° and 70°, θ + m > 90°: a* may fall slightly with θ, and is_monotone ignores it.
        let sweep = sweep(&config, &[80.0, 70.0, 40.0, 20.0], NegativeClasses::default());
        assert!(!sweep[0].in_theorem_domain && !sweep[1].in_theorem_domain);
        assert!(sweep[2].in_theorem_domain && sweep[3].in_theorem_domain);
        assert!(is_monotone(&sweep));
    }
}
