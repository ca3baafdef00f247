//! Agglomerative hierarchical clustering (average, complete or single
//! linkage) with the nearest-neighbour-chain algorithm (Murtagh 1983;
//! Müllner, "Modern hierarchical, agglomerative clustering algorithms",
//! 2011): O(n²) time on a condensed distance matrix (n(n−1)/2 `f64`s).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
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

#[derive(Debug, Clone, Copy)]
pub struct AhcConfig {
    pub linkage: Linkage,
    pub metric: Metric,
    pub stop: AhcStop,
}

/// One merge of the dendrogram: the clusters holding points `a` and `b` joined at `height`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    pub a: usize,
    pub b: usize,
    pub height: f64,
}

/// Index of pair (i, j), i < j, in the condensed upper triangle.
#[inline]
fn condensed_index(n: usize, i: usize, j: usize) -> usize {
    debug_assert!(i < j);
    i * n - i * (i + 1) / 2 + (j - i - 1)
}

/// All pairwise distances, upper triangle row by row, computed in parallel
/// row blocks (each block one matrix product).
pub fn condensed_distances(data: &Prepared) -> Vec<f64> {
    let n = data.len();
    let total = n * n.saturating_sub(1) / 2;
    let mut out = vec![0.0f64; total];
    const BLOCK: usize = 128;
    let mut slices: Vec<(usize, usize, &mut [f64])> = Vec::new();
    let mut rest: &mut [f64] = &mut out;
    let mut start = 0;
    while start + 1 < n {
        let end = (start + BLOCK).min(n - 1);
        let len = condensed_index(n, end - 1, n - 1) + 1 - condensed_index(n, start, start + 1);
        let (head, tail) = rest.split_at_mut(len);
        slices.push((start, end - start, head));
        rest = tail;
        start = end;
    }
    slices.into_par_iter().for_each(|(start, rows, slab)| {
        let block = data.block(start..start + rows, start..n);
        let mut pos = 0;
        for r in 0..rows {
            let i = start + r;
            let width = n - i - 1;
            for (w, v) in slab[pos..pos + width].iter_mut().enumerate() {
                *v = block[[r, i + 1 - start + w]];
            }
            pos += width;
        }
    });
    out
}

/// The full dendrogram (n − 1 merges, in the order the chain found them).
pub fn nn_chain(mut dist: Vec<f64>, n: usize, linkage: Linkage) -> Vec<Merge> {
    let d = |dist: &Vec<f64>, i: usize, j: usize| -> f64 {
        if i < j {
            dist[condensed_index(n, i, j)]
        } else {
            dist[condensed_index(n, j, i)]
        }
    };
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
            let prev = if chain.len() >= 2 { Some(chain[chain.len() - 2]) } else { None };
            // ties prefer the chain predecessor, which guarantees termination
            let (mut best, mut best_d) = match prev {
                Some(p) => (p, d(&dist, a, p)),
                None => (usize::MAX, f64::INFINITY),
            };
            for &k in &active {
                if k != a {
                    let dk = d(&dist, a, k);
                    if dk < best_d {
                        best = k;
                        best_d = dk;
                    }
                }
            }
            if Some(best) == prev {
                chain.pop();
                chain.pop();
                break (a, best, best_d);
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
            let (dk_keep, dk_gone) = (d(&dist, k, keep), d(&dist, k, gone));
            let merged = match linkage {
                Linkage::Single => dk_keep.min(dk_gone),
                Linkage::Complete => dk_keep.max(dk_gone),
                Linkage::Average => (na * dk_keep + nb * dk_gone) / (na + nb),
            };
            let idx = if k < keep { condensed_index(n, k, keep) } else { condensed_index(n, keep, k) };
            dist[idx] = merged;
        }
        size[keep] += size[gone];
        let pos = position[gone];
        active.swap_remove(pos);
        if pos < active.len() {
            position[active[pos]] = pos;
        }
    }
    merges
}

/// Flat labels from a dendrogram cut.
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

/// Clusters the rows of `x`.
pub fn ahc(x: &Array2<f64>, config: &AhcConfig) -> Vec<i64> {
    let n = x.nrows();
    if n <= 1 {
        return vec![0; n];
    }
    let data = Prepared::new(x, config.metric);
    let dist = condensed_distances(&data);
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
        let mut h: Vec<f64> = nn_chain(condensed_distances(&data), x.nrows(), linkage).iter().map(|m| m.height).collect();
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
        assert!((avg[2] - 17.0 / 3.0).abs() < 1e-12);
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
    fn condensed_matches_direct() {
        let x = Array2::from_shape_fn((300, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64 * 0.1);
        let data = Prepared::new(&x, Metric::Euclidean);
        let c = condensed_distances(&data);
        for &(i, j) in &[(0usize, 1usize), (0, 299), (5, 200), (127, 128), (128, 129), (297, 299)] {
            let direct: f64 = (0..3).map(|k| (x[[i, k]] - x[[j, k]]).powi(2)).sum::<f64>().sqrt();
            assert!((c[condensed_index(300, i, j)] - direct).abs() < 1e-12);
        }
    }
}
