//! B-cubed precision / recall / F (Bagga & Baldwin 1998; Amigó et al. 2009).
//!
//! Per item i with predicted cluster C(i) and identity L(i):
//! precision_i = |C(i) ∩ L(i)| / |C(i)|, recall_i = |C(i) ∩ L(i)| / |L(i)|,
//! averaged over items. Through the contingency table:
//! P = (1/n) Σ_cells n_tp² / |pred_p|, R = (1/n) Σ_cells n_tp² / |truth_t|.
//! F is the harmonic mean of the averaged P and R.

use super::contingency::Contingency;
use super::pairwise::harmonic;

/// `(precision, recall, f)`.
pub fn bcubed_prf(table: &Contingency) -> (f64, f64, f64) {
    let mut precision = 0.0f64;
    let mut recall = 0.0f64;
    for (&count, &(t, p)) in table.cells.iter().zip(&table.cell_index) {
        let sq = (count as f64) * (count as f64);
        precision += sq / table.pred_sizes[p] as f64;
        recall += sq / table.truth_sizes[t] as f64;
    }
    let n = table.n as f64;
    let (precision, recall) = (precision / n, recall / n);
    (precision, recall, harmonic(precision, recall))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // truth {0,1,2}{3,4}, pred {0,1}{2,3,4}
        // precision: items 0,1: 2/2; item 2: 1/3; items 3,4: 2/3 → (2 + 1/3 + 4/3)/5 = 11/15
        // recall: items 0,1: 2/3; item 2: 1/3; items 3,4: 2/2 → (4/3 + 1/3 + 2)/5 = 11/15
        let t = Contingency::new(&[0, 0, 0, 1, 1], &[5, 5, 7, 7, 7]);
        let (p, r, f) = bcubed_prf(&t);
        assert!((p - 11.0 / 15.0).abs() < 1e-15);
        assert!((r - 11.0 / 15.0).abs() < 1e-15);
        assert!((f - 11.0 / 15.0).abs() < 1e-15);
    }
}
