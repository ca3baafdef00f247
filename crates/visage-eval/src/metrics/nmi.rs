//! Normalised mutual information with arithmetic normalisation:
//! NMI = I(T; P) / ((H(T) + H(P)) / 2), natural logs — scikit-learn's
//! `normalized_mutual_info_score` default (`average_method="arithmetic"`),
//! including its limit cases: both labelings with one cluster → 1.0; zero
//! mutual information otherwise → 0.0.

use super::contingency::Contingency;

fn entropy(sizes: &[u64], n: f64) -> f64 {
    sizes
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// NMI of the two labelings of `table`, in [0, 1] (definition and limit
/// cases above).
pub fn nmi(table: &Contingency) -> f64 {
    let (k_t, k_p) = (table.truth_sizes.len(), table.pred_sizes.len());
    if (k_t == 1 && k_p == 1) || table.n == 0 {
        return 1.0;
    }
    let n = table.n as f64;
    // I = Σ (n_tp/n) · ln(n·n_tp / (a_t·b_p))
    let mut mi = 0.0f64;
    for (&count, &(t, p)) in table.cells.iter().zip(&table.cell_index) {
        let c = count as f64;
        let outer = table.truth_sizes[t] as f64 * table.pred_sizes[p] as f64;
        mi += c / n * ((c * n).ln() - outer.ln());
    }
    let mi = mi.max(0.0);
    if mi == 0.0 {
        return 0.0;
    }
    let normaliser = (entropy(&table.truth_sizes, n) + entropy(&table.pred_sizes, n)) / 2.0;
    if normaliser <= 0.0 {
        return 0.0;
    }
    mi / normaliser.max(f64::EPSILON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_and_independent() {
        let t = Contingency::new(&[0, 0, 1, 1], &[3, 3, 9, 9]);
        assert!((nmi(&t) - 1.0).abs() < 1e-15);
        // independent 2x2 split: MI = 0
        let t = Contingency::new(&[0, 0, 1, 1], &[0, 1, 0, 1]);
        assert_eq!(nmi(&t), 0.0);
    }

    #[test]
    fn hand_computed() {
        // truth {0,1,2}{3,4}, pred {0,1}{2,3,4}
        // cells: (0,a)=2,(0,b)=1,(1,b)=2; a_t = 3,2; b_p = 2,3; n = 5
        let t = Contingency::new(&[0, 0, 0, 1, 1], &[5, 5, 7, 7, 7]);
        let l = |x: f64| x.ln();
        let mi = 0.4 * l(5.0 * 2.0 / 6.0) + 0.2 * l(5.0 / 9.0) + 0.4 * l(10.0 / 6.0);
        let h = -(0.6 * l(0.6) + 0.4 * l(0.4));
        assert!((nmi(&t) - mi / h).abs() < 1e-14);
    }
}
