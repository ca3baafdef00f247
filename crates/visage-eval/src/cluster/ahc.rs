//! Agglomerative hierarchical clustering (average, complete or single
//! linkage) with the nearest-neighbour-chain algorithm (Murtagh 1983;
//! Müllner, "Modern hierarchical, agglomerative clustering algorithms",
//! 2011): O(n²) time on a square `f32` distance matrix (n² · 4 bytes).
//!
//! Merged distances follow the Lance–Williams updates:
//! single `min(d_ki, d_kj)`, complete `max(d_ki, d_kj)`,
//! average `(n_i d_ki + n_j d_kj) / (n_i + n_j)` (UPGMA).
//!
//! Stopping follows scikit-learn's `AgglomerativeClustering`: with a distance
//! threshold `T` every merge of height `< T` is applied; with `k` clusters
//! the `n − k` lowest merges are applied.

use rayon::prelude::*;

use super::distance::{Metric, Prepared};
use super::union_find::UnionFind;
use ndarray::Array2;

/// Cluster-to-cluster distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Linkage {
    /// Mean pairwise distance (UPGMA).
    Average,
    /// Largest pairwise distance.
    Complete,
    /// Smallest pairwise distance.
    Single,
}

/// Where to cut the dendrogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AhcStop {
    /// Apply merges whose linkage distance is below this value.
    DistanceThreshold(f64),
    /// Stop at this many clusters.
    Clusters(usize),
}

/// Parameters of [`ahc`] (scikit-learn's `AgglomerativeClustering` with
/// `linkage`, `metric` and either `distance_threshold` or `n_clusters`).
#[derive(Debug, Clone, Copy)]
pub struct AhcConfig {
    /// How the distance between two clusters follows from their members'.
    pub linkage: Linkage,
    /// Distance between two embeddings.
    pub metric: Metric,
    /// Where the dendrogram is cut.
    pub stop: AhcStop,
}

/// One merge of the dendrogram: the clusters holding points `a` and `b` joined at `height`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    /// A point (row index) of one of the two clusters.
    pub a: usize,
    /// A point (row index) of the other cluster.
    pub b: usize,
    /// Linkage distance of the two clusters when merged, in the metric's units.
    pub height: f64,
}

/// Pairwise distances as a square `f32` matrix (row-major, `+∞` on the
/// diagonal). Square rather than condensed so that every nearest-neighbour
/// scan of the chain reads one contiguous row (the condensed layout makes
/// half of each scan a cache miss per element); `f32` so it costs the memory
/// of a condensed `f64` matrix (n² · 4 bytes). Distances are computed in `f64`
/// and rounded once; the Lance–Williams updates are computed in `f64` from
/// the stored values, so merge heights carry a relative error of ~6e-8.
pub fn square_distances(data: &Prepared) -> Vec<f32> {
    let n = data.len();
    let mut out = vec![0.0f32; n * n];
    const BLOCK: usize = 128;
    // upper triangle (with diagonal block) by row blocks in parallel
    out.par_chunks_mut(BLOCK * n).enumerate().for_each(|(b, slab)| {
        let start = b * BLOCK;
        let rows = slab.len() / n;
        let block = data.block(start..start + rows, start..n);
        for r in 0..rows {
            let row = &mut slab[r * n..(r + 1) * n];
            for (c, v) in block.row(r).iter().enumerate() {
                row[start + c] = *v as f32;
            }
        }
    });
    // mirror into the lower triangle, tile by tile
    const TILE: usize = 64;
    let ptr = SharedMut(out.as_mut_ptr());
    (0..n.div_ceil(TILE)).into_par_iter().for_each(|ti| {
        let p = &ptr;
        for tj in 0..=ti {
            for i in ti * TILE..((ti + 1) * TILE).min(n) {
                for j in tj * TILE..((tj + 1) * TILE).min(n).min(i) {
                    // SAFETY: writes go to (i, j) with j < i (lower triangle), each
                    // written by exactly one tile row `ti`; reads come from the
                    // upper triangle, which no task writes any more.
                    unsafe { *p.0.add(i * n + j) = *p.0.add(j * n + i) };
                }
            }
        }
    });
    for i in 0..n {
        out[i * n + i] = f32::INFINITY;
    }
    out
}

struct SharedMut(*mut f32);
unsafe impl Sync for SharedMut {}

/// The full dendrogram (n − 1 merges, in the order the chain found them),
/// from a [`square_distances`] matrix (consumed: it is updated in place).
pub fn nn_chain(mut dist: Vec<f32>, n: usize, linkage: Linkage) -> Vec<Merge> {
    assert_eq!(dist.len(), n * n);
    let mut size = vec![1usize; n];
    let mut active: Vec<usize> = (0..n).collect();
    let mut position: Vec<usize> = (0..n).collect(); // index in `active`
    let mut chain: Vec<usize> = Vec::new();
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    while merges.len() + 1 < n {
        if chain.is_empty() {
            chain.push(active[0]);
        }
        let (a, b, height) = loop {
            let a = *chain.last().unwrap();
            let row = &dist[a * n..(a + 1) * n];
            // retired clusters and the diagonal hold +∞, so a plain scan works
            let (mut best, mut best_d) = (usize::MAX, f32::INFINITY);
            for (k, &dk) in row.iter().enumerate() {
                if dk < best_d {
                    best = k;
                    best_d = dk;
                }
            }
            // ties prefer the chain predecessor, which guarantees termination
            let prev = if chain.len() >= 2 { Some(chain[chain.len() - 2]) } else { None };
            if let Some(p) = prev {
                if row[p] <= best_d {
                    chain.pop();
                    chain.pop();
                    break (a, p, row[p] as f64);
                }
            }
            chain.push(best);
        };
        merges.push(Merge { a, b, height });
        // the merged cluster lives in slot `keep`; slot `gone` is retired
        let (keep, gone) = (a.min(b), a.max(b));
        let (na, nb) = (size[keep] as f64, size[gone] as f64);
        for &k in &active {
            if k == keep || k == gone {
                continue;
            }
            let (dk_keep, dk_gone) = (dist[keep * n + k] as f64, dist[gone * n + k] as f64);
            let merged = match linkage {
                Linkage::Single => dk_keep.min(dk_gone),
                Linkage::Complete => dk_keep.max(dk_gone),
                Linkage::Average => (na * dk_keep + nb * dk_gone) / (na + nb),
            } as f32;
            dist[keep * n + k] = merged;
            dist[k * n + keep] = merged;
            dist[k * n + gone] = f32::INFINITY;
        }
        dist[keep * n + gone] = f32::INFINITY;
        size[keep] += size[gone];
        let pos = position[gone];
        active.swap_remove(pos);
        if pos < active.len() {
            position[active[pos]] = pos;
        }
    }
    merges
}

/// Flat labels of the `n` points from a dendrogram cut: merges applied from
/// the lowest height up (all below the threshold, or the `n − k` lowest),
/// clusters numbered 0, 1, … in order of their first point.
pub fn cut(merges: &[Merge], n: usize, stop: AhcStop) -> Vec<i64> {
    let mut order: Vec<&Merge> = merges.iter().collect();
    order.sort_by(|x, y| x.height.total_cmp(&y.height));
    let applied = match stop {
        AhcStop::DistanceThreshold(t) => order.iter().take_while(|m| m.height < t).count(),
        AhcStop::Clusters(k) => n.saturating_sub(k.max(1)).min(order.len()),
    };
    let mut sets = UnionFind::new(n);
    for m in &order[..applied] {
        sets.union(m.a, m.b);
    }
    sets.labels()
}

/// Clusters the rows of `x` (one embedding per row): labels 0, 1, … in order
/// of each cluster's first row; never `-1`. Needs n² · 4 bytes for the
/// distance matrix; 0 or 1 rows give all-zero labels.
pub fn ahc(x: &Array2<f64>, config: &AhcConfig) -> Vec<i64> {
    let n = x.nrows();
    if n <= 1 {
        return vec![0; n];
    }
    let data = Prepared::new(x, config.metric);
    let dist = square_distances(&data);
    drop(data);
    let merges = nn_chain(dist, n, config.linkage);
    cut(&merges, n, config.stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn heights(x: &Array2<f64>, linkage: Linkage) -> Vec<f64> {
        let data = Prepared::new(x, Metric::Euclidean);
        let mut h: Vec<f64> = nn_chain(square_distances(&data), x.nrows(), linkage).iter().map(|m| m.height).collect();
        h.sort_by(f64::total_cmp);
        h
    }

    /// Points 0, 1, 3, 7 on a line. Hand-computed merge heights:
    /// single: 1, 2, 4; complete: 1, 3 ({0,1}+3), 7;
    /// average: 1, ({0,1},3) = (3+2)/2 = 2.5, (7 to {0,1,3}) = (7+6+4)/3.
    #[test]
    fn hand_computed_heights() {
        let x = array![[0.0], [1.0], [3.0], [7.0]];
        assert_eq!(heights(&x, Linkage::Single), vec![1.0, 2.0, 4.0]);
        assert_eq!(heights(&x, Linkage::Complete), vec![1.0, 3.0, 7.0]);
        let avg = heights(&x, Linkage::Average);
        assert_eq!(&avg[..2], &[1.0, 2.5]);
        assert!((avg[2] - 17.0 / 3.0).abs() < 1e-6); // stored as f32
    }

    #[test]
    fn cut_by_threshold_and_by_k() {
        let x = array![[0.0], [1.0], [3.0], [7.0]];
        let base = AhcConfig { linkage: Linkage::Average, metric: Metric::Euclidean, stop: AhcStop::Clusters(2) };
        assert_eq!(ahc(&x, &base), vec![0, 0, 0, 1]);
        let t = AhcConfig { stop: AhcStop::DistanceThreshold(2.5), ..base };
        assert_eq!(ahc(&x, &t), vec![0, 0, 1, 2]); // 2.5 is not below 2.5
        let t = AhcConfig { stop: AhcStop::DistanceThreshold(2.6), ..base };
        assert_eq!(ahc(&x, &t), vec![0, 0, 0, 1]);
    }

    #[test]
    fn square_matches_direct() {
        let x = Array2::from_shape_fn((300, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64 * 0.1);
        let data = Prepared::new(&x, Metric::Euclidean);
        let d = square_distances(&data);
        for &(i, j) in &[(0usize, 1usize), (0, 299), (5, 200), (127, 128), (128, 129), (297, 299), (200, 5), (299, 0)] {
            let direct: f64 = (0..3).map(|k| (x[[i, k]] - x[[j, k]]).powi(2)).sum::<f64>().sqrt();
            assert!((d[i * 300 + j] as f64 - direct).abs() < 1e-6, "({i},{j})");
        }
        assert_eq!(d[7 * 300 + 7], f32::INFINITY);
    }
}
