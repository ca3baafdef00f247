//! Instance pivot subgraphs (L-GCN §3.2).
//!
//! For a pivot `p` the nodes are `p` itself, its `k1` nearest neighbours
//! (the 1-hop nodes, whose linkage to `p` the network predicts) and, for each
//! 1-hop node, its own `k2` nearest neighbours (2-hop nodes, context only).
//! Two nodes are joined when one is among the other's `u` nearest neighbours
//! (the paper's "u-nearest" linkage, made symmetric as in the authors' code,
//! `Zhongdao/gcn_clustering`, `feeder.py`). Node features are the embeddings
//! minus the pivot's, so the network sees the neighbourhood as seen from `p`
//! and the pivot itself is the zero vector.
//!
//! Neighbours are by cosine similarity of L2-normalised rows, exact (one
//! matrix product per block of rows), ties broken by the lower index so the
//! subgraphs do not depend on thread timing.

use ndarray::{s, Array2, Axis};
use rayon::prelude::*;

use super::super::distance::normalize_rows;

/// Sizes of an instance pivot subgraph. The paper's IJB-B setting is
/// `k1 = 200, k2 = 10, u = 10`, for sets of thousands of faces per identity
/// count; these defaults suit photo collections of tens to a few thousand
/// faces with a handful of photos per person (chosen on faces_dev,
/// docs/clustering.md). Each size is cut to `n − 1` for `n` faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IpsConfig {
    /// 1-hop neighbours per pivot: the candidates whose linkage is predicted.
    pub k1: usize,
    /// 2-hop neighbours taken from each 1-hop node.
    pub k2: usize,
    /// Edges join a node to those of its `u` nearest neighbours inside the subgraph.
    pub u: usize,
}

impl Default for IpsConfig {
    fn default() -> Self {
        IpsConfig { k1: 10, k2: 5, u: 5 }
    }
}

impl IpsConfig {
    /// The sizes cut to what `n` faces allow (each at most `n − 1`).
    pub fn clamped(&self, n: usize) -> IpsConfig {
        let most = n.saturating_sub(1);
        IpsConfig { k1: self.k1.min(most), k2: self.k2.min(most), u: self.u.min(most) }
    }

    /// How many neighbours per face the subgraphs read: `max(k1, k2, u)`.
    pub fn neighbours_needed(&self) -> usize {
        self.k1.max(self.k2).max(self.u)
    }
}

/// One pivot's subgraph, in positions into [`PivotSubgraph::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PivotSubgraph {
    /// The pivot's row.
    pub pivot: usize,
    /// Rows of the nodes: the pivot first, then the 1-hop nodes nearest
    /// first, then the 2-hop nodes in order of first appearance.
    pub nodes: Vec<usize>,
    /// Positions in `nodes` of the 1-hop nodes (`1 ..= k1`).
    pub one_hop: Vec<usize>,
    /// Undirected edges as position pairs `(i, j)`, `i < j`, ascending, no self-loops.
    pub edges: Vec<(usize, usize)>,
}

impl PivotSubgraph {
    /// The row-normalised adjacency `D⁻¹A` (mean aggregation, paper eq. 3),
    /// row-major `nodes × nodes`; a node without edges has a zero row.
    pub fn mean_adjacency(&self) -> Vec<f32> {
        let v = self.nodes.len();
        let mut a = vec![0f32; v * v];
        let mut degree = vec![0u32; v];
        for &(i, j) in &self.edges {
            a[i * v + j] = 1.0;
            a[j * v + i] = 1.0;
            degree[i] += 1;
            degree[j] += 1;
        }
        for (row, &d) in a.chunks_exact_mut(v).zip(&degree) {
            if d > 0 {
                row.iter_mut().for_each(|x| *x /= d as f32);
            }
        }
        a
    }

    /// Node features `x̂_v − x̂_p` (rows of `unit`, the L2-normalised
    /// embeddings), row-major `nodes × dim`.
    pub fn relative_features(&self, unit: &Array2<f64>) -> Vec<f32> {
        let pivot = unit.row(self.pivot);
        self.nodes.iter().flat_map(|&n| unit.row(n).iter().zip(pivot.iter()).map(|(x, p)| (x - p) as f32).collect::<Vec<_>>()).collect()
    }

    /// Whether each 1-hop node has the pivot's label (the training target).
    pub fn link_truth(&self, labels: &[i64]) -> Vec<bool> {
        self.one_hop.iter().map(|&i| labels[self.nodes[i]] == labels[self.pivot]).collect()
    }
}

/// For every row, the `k` rows of highest cosine similarity (itself
/// excluded), most similar first, ties to the lower index. `k` is cut to
/// `n − 1`.
pub fn knn_cosine(x: &Array2<f64>, k: usize) -> Vec<Vec<usize>> {
    const BLOCK: usize = 256;
    let n = x.nrows();
    let k = k.min(n.saturating_sub(1));
    let unit = normalize_rows(x);
    let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
    starts
        .par_iter()
        .flat_map_iter(|&start| {
            let end = (start + BLOCK).min(n);
            let sims = unit.slice(s![start..end, ..]).dot(&unit.t());
            let rows: Vec<Vec<usize>> = sims
                .axis_iter(Axis(0))
                .enumerate()
                .map(|(r, row)| {
                    let me = start + r;
                    let mut order: Vec<usize> = (0..n).filter(|&j| j != me).collect();
                    let better = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
                    if k < order.len() {
                        order.select_nth_unstable_by(k, better);
                        order.truncate(k);
                    }
                    order.sort_by(better);
                    order
                })
                .collect();
            rows
        })
        .collect()
}

/// Every row's subgraph from the neighbour lists `knn` (each at least
/// [`IpsConfig::neighbours_needed`] long, or `n − 1`; [`knn_cosine`]).
pub fn pivot_subgraphs(knn: &[Vec<usize>], config: &IpsConfig) -> Vec<PivotSubgraph> {
    let config = config.clamped(knn.len());
    (0..knn.len()).into_par_iter().map(|pivot| pivot_subgraph(knn, pivot, &config)).collect()
}

fn pivot_subgraph(knn: &[Vec<usize>], pivot: usize, config: &IpsConfig) -> PivotSubgraph {
    let mut nodes = vec![pivot];
    let mut position = std::collections::HashMap::from([(pivot, 0usize)]);
    let mut add = |row: usize, nodes: &mut Vec<usize>| {
        position.entry(row).or_insert_with(|| {
            nodes.push(row);
            nodes.len() - 1
        });
    };
    let first: Vec<usize> = knn[pivot].iter().take(config.k1).copied().collect();
    for &row in &first {
        add(row, &mut nodes);
    }
    for &row in &first {
        for &second in knn[row].iter().take(config.k2) {
            add(second, &mut nodes);
        }
    }
    let one_hop = (1..=first.len()).collect();
    let mut edges = std::collections::BTreeSet::new();
    for (i, &row) in nodes.iter().enumerate() {
        for neighbour in knn[row].iter().take(config.u) {
            if let Some(&j) = position.get(neighbour) {
                if i != j {
                    edges.insert((i.min(j), i.max(j)));
                }
            }
        }
    }
    PivotSubgraph { pivot, nodes, one_hop, edges: edges.into_iter().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Six points on the unit circle at angles 0°, 10°, 30°, 100°, 110°, 210°.
    fn circle() -> Array2<f64> {
        let angles = [0.0f64, 10.0, 30.0, 100.0, 110.0, 210.0];
        Array2::from_shape_fn((6, 2), |(i, j)| {
            let a = angles[i].to_radians();
            if j == 0 {
                a.cos()
            } else {
                a.sin()
            }
        })
    }

    #[test]
    fn knn_orders_by_angle_and_breaks_ties_by_index() {
        let knn = knn_cosine(&circle(), 3);
        // by hand: angular distances from 0°: 10, 30, 100, 110, 150
        assert_eq!(knn[0], vec![1, 2, 3]);
        // from 100°: 110 (10), 30 (70), 10 (90), 0 (100), 210 (110)
        assert_eq!(knn[3], vec![4, 2, 1]);
        assert_eq!(knn_cosine(&circle(), 5)[3], vec![4, 2, 1, 0, 5]);
        // duplicates tie: the lower index first
        let twins = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
        assert_eq!(knn_cosine(&twins, 2)[2], vec![0, 1]);
        assert_eq!(knn_cosine(&twins, 9)[3].len(), 3);
    }

    #[test]
    fn subgraph_matches_a_hand_built_example() {
        // Neighbour lists given directly (not geometric) so every rule shows.
        let knn = vec![
            vec![1, 2, 3], // 0
            vec![0, 4, 2], // 1
            vec![5, 0, 1], // 2
            vec![4, 0, 5], // 3
            vec![3, 1, 0], // 4
            vec![2, 3, 4], // 5
        ];
        let g = pivot_subgraphs(&knn, &IpsConfig { k1: 2, k2: 2, u: 1 }).remove(0);
        // pivot 0; 1-hop {1, 2}; 2-hop: knn[1][..2] = {0, 4}, knn[2][..2] = {5, 0}
        assert_eq!(g.nodes, vec![0, 1, 2, 4, 5]);
        assert_eq!(g.one_hop, vec![1, 2]);
        // u = 1: 0→1, 1→0, 2→5, 4→3 (absent), 5→2 → {(0,1), (2,4)} in positions
        assert_eq!(g.edges, vec![(0, 1), (2, 4)]);
        let labels = [7, 7, 8, 7, 8, 8];
        assert_eq!(g.link_truth(&labels), vec![true, false]);
        let a = g.mean_adjacency();
        assert_eq!(&a[0..5], &[0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(&a[15..20], &[0.0, 0.0, 0.0, 0.0, 0.0]); // position 3 (row 4): no edge
                                                            // u = 2 adds 0→2, 1→4, 2→0, 4→1, 5→3 (absent)
        let g = pivot_subgraphs(&knn, &IpsConfig { k1: 2, k2: 2, u: 2 }).remove(0);
        assert_eq!(g.edges, vec![(0, 1), (0, 2), (1, 3), (2, 4)]);
        let a = g.mean_adjacency();
        assert_eq!(&a[0..5], &[0.0, 0.5, 0.5, 0.0, 0.0]);
        assert_eq!(&a[15..20], &[0.0, 1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn features_are_relative_to_the_pivot() {
        let x = array![[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]];
        let unit = normalize_rows(&x);
        let g = pivot_subgraphs(&knn_cosine(&x, 2), &IpsConfig { k1: 1, k2: 1, u: 1 }).remove(1);
        // pivot 1 = (0,1); nearest is row 2 (45°), whose nearest are 0 and 1 (tie at 45°): row 0 joins
        assert_eq!(g.nodes, vec![1, 2, 0]);
        let f = g.relative_features(&unit);
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let want = [0.0, 0.0, h, h - 1.0, 1.0, -1.0];
        assert!(f.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{f:?}");
    }

    #[test]
    fn sizes_are_cut_to_the_set() {
        let g = pivot_subgraphs(&knn_cosine(&circle(), 20), &IpsConfig { k1: 200, k2: 10, u: 10 });
        assert!(g.iter().all(|g| g.one_hop.len() == 5 && g.nodes.len() == 6));
        // every pair is among each other's 5 nearest: the complete graph
        assert_eq!(g[0].edges.len(), 15);
    }
}
