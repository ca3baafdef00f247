//! DBSCAN (Ester et al., KDD 1996): a point is *core* when at least
//! `min_samples` points (itself included) lie within `eps`; clusters are the
//! connected components of core points under the `eps` relation, border
//! points join a cluster of a core neighbour, the rest is noise (`-1`).
//!
//! Labelling rule, chosen to equal scikit-learn's `DBSCAN` exactly: clusters
//! are numbered in order of their lowest-index core point, and a border point
//! reachable from several clusters takes the lowest-numbered one (the one
//! scikit-learn's index-order expansion reaches first).

use super::distance::{Metric, Prepared};
use super::neighbors::radius_neighbors;
use super::union_find::UnionFind;
use ndarray::Array2;

/// DBSCAN parameters (scikit-learn's defaults: `eps = 0.5`, `min_samples = 5`).
#[derive(Debug, Clone, Copy)]
pub struct DbscanConfig {
    /// Neighbourhood radius, in the metric's units: `d(x, y) ≤ eps` makes
    /// neighbours (cosine distance lies in [0, 2]).
    pub eps: f64,
    /// Neighbours within `eps`, the point itself included, that make a core point.
    pub min_samples: usize,
    /// Distance between two embeddings.
    pub metric: Metric,
}

impl Default for DbscanConfig {
    fn default() -> Self {
        DbscanConfig { eps: 0.5, min_samples: 5, metric: Metric::Euclidean }
    }
}

/// DBSCAN labels of the rows of `x` (one embedding per row): clusters 0, 1, …
/// numbered as described above, `-1` for noise.
pub fn dbscan(x: &Array2<f64>, config: &DbscanConfig) -> Vec<i64> {
    let data = Prepared::new(x, config.metric);
    let neighbors = radius_neighbors(&data, config.eps);
    labels_from_neighbors(&neighbors, config.min_samples)
}

/// The graph part of DBSCAN, given each point's neighbourhood (indices,
/// itself included, as [`radius_neighbors`] returns them): the same labels
/// as [`dbscan`].
pub fn labels_from_neighbors(neighbors: &[Vec<u32>], min_samples: usize) -> Vec<i64> {
    let n = neighbors.len();
    let is_core: Vec<bool> = neighbors.iter().map(|nb| nb.len() >= min_samples).collect();
    let mut components = UnionFind::new(n);
    for (i, nb) in neighbors.iter().enumerate() {
        if is_core[i] {
            for &j in nb {
                if is_core[j as usize] {
                    components.union(i, j as usize);
                }
            }
        }
    }
    // number clusters by lowest core index: scanning i ascending meets each
    // component first at its lowest core
    let mut cluster_of_root: Vec<i64> = vec![-1; n];
    let mut labels = vec![-1i64; n];
    let mut next = 0i64;
    for i in 0..n {
        if is_core[i] {
            let root = components.find(i);
            if cluster_of_root[root] < 0 {
                cluster_of_root[root] = next;
                next += 1;
            }
            labels[i] = cluster_of_root[root];
        }
    }
    for i in 0..n {
        if !is_core[i] {
            labels[i] = neighbors[i].iter().filter(|&&j| is_core[j as usize]).map(|&j| labels[j as usize]).min().unwrap_or(-1);
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn two_chains_a_border_and_noise() {
        // 1-D points: cluster A at 0,1,2; cluster B at 10,11,12; 5 is noise;
        // with eps 1, min_samples 3 the cores are 1 and 11, the ends are borders.
        let x = array![[0.0], [1.0], [2.0], [5.0], [10.0], [11.0], [12.0]];
        let labels = dbscan(&x, &DbscanConfig { eps: 1.0, min_samples: 3, metric: Metric::Euclidean });
        assert_eq!(labels, vec![0, 0, 0, -1, 1, 1, 1]);
    }

    #[test]
    fn border_between_two_clusters_takes_the_first() {
        // point 3 (x=3) neighbours the cores 2 (cluster 0) and 4 (cluster 1)
        let neighbors = vec![vec![0, 1, 2], vec![0, 1, 2], vec![0, 1, 2, 3], vec![2, 3, 4], vec![3, 4, 5, 6], vec![4, 5, 6], vec![4, 5, 6]];
        let labels = labels_from_neighbors(&neighbors, 4); // cores: 2 and 4 only
        assert_eq!(labels, vec![0, 0, 0, 0, 1, 1, 1]);
    }
}
