//! Contingency table of two labelings — the one sufficient statistic of every
//! external clustering metric here (pairwise, B-cubed, NMI).

use std::collections::HashMap;

/// Label value that marks DBSCAN noise. Each noise item counts as its own
/// singleton cluster, not as one big "noise" cluster: noise means "not
/// grouped", and pooling it would score every two noise faces as grouped
/// together.
pub const NOISE: i64 = -1;

/// Sparse contingency table: `cells[(t, p)] = n_tp`, row sums `truth_sizes`,
/// column sums `pred_sizes`.
#[derive(Debug, Clone)]
pub struct Contingency {
    /// Number of items labelled.
    pub n: u64,
    /// Item counts of the non-zero cells, in order of first occurrence.
    pub cells: Vec<u64>,
    /// Size of each true class (dense ids in order of first occurrence).
    pub truth_sizes: Vec<u64>,
    /// Size of each predicted cluster (same numbering scheme).
    pub pred_sizes: Vec<u64>,
    /// For each non-zero cell, its (truth index, pred index).
    pub cell_index: Vec<(usize, usize)>,
}

/// Dense ids for labels, giving every noise item a fresh id.
fn dense_ids(labels: &[i64]) -> (Vec<usize>, usize) {
    let mut map: HashMap<i64, usize> = HashMap::new();
    let mut next = 0usize;
    let ids = labels
        .iter()
        .map(|&l| {
            if l == NOISE {
                next += 1;
                next - 1
            } else {
                *map.entry(l).or_insert_with(|| {
                    next += 1;
                    next - 1
                })
            }
        })
        .collect();
    (ids, next)
}

impl Contingency {
    /// The table of `truth` against `pred` (one label per item in each).
    /// Panics when the lengths differ (callers check and report it).
    pub fn new(truth: &[i64], pred: &[i64]) -> Self {
        assert_eq!(truth.len(), pred.len(), "labelings of different lengths");
        let (t_ids, n_t) = dense_ids(truth);
        let (p_ids, n_p) = dense_ids(pred);
        let mut truth_sizes = vec![0u64; n_t];
        let mut pred_sizes = vec![0u64; n_p];
        let mut cell_map: HashMap<(usize, usize), usize> = HashMap::new();
        let mut cells = Vec::new();
        let mut cell_index = Vec::new();
        for (&t, &p) in t_ids.iter().zip(&p_ids) {
            truth_sizes[t] += 1;
            pred_sizes[p] += 1;
            let idx = *cell_map.entry((t, p)).or_insert_with(|| {
                cells.push(0);
                cell_index.push((t, p));
                cells.len() - 1
            });
            cells[idx] += 1;
        }
        Contingency { n: truth.len() as u64, cells, truth_sizes, pred_sizes, cell_index }
    }
}
