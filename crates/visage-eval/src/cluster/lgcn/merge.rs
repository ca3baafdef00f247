//! Predicted linkages → clusters (L-GCN §3.4).
//!
//! Each pivot predicts a link likelihood to each of its 1-hop nodes, so a
//! pair is usually scored twice (once from each end); the two are averaged
//! (the authors' `pool='avg'`), a pair scored once keeps its one score. Links
//! at or above `threshold` join their faces (connected components, by
//! union–find). A component larger than `max_cluster_size` is cut again
//! with the threshold raised to `t + (1 − t)·step`, repeatedly, which is the
//! paper's pseudo-label propagation (authors' `graph_propagation`, whose
//! first round takes every link; here the first round already cuts at
//! `threshold`, since small sets are one component otherwise).

use std::collections::HashMap;

use super::super::union_find::UnionFind;

/// A predicted linkage from a pivot to one of its 1-hop nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// The pivot's row.
    pub pivot: usize,
    /// The 1-hop node's row.
    pub neighbour: usize,
    /// Predicted probability that both are one identity.
    pub probability: f64,
}

/// How links become clusters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergeConfig {
    /// Links with a pooled likelihood at or above this join their faces.
    pub threshold: f64,
    /// Components above this size are cut again at a higher threshold
    /// (the authors' IJB-B setting: 900).
    pub max_cluster_size: usize,
    /// Share of the remaining distance to 1 the threshold rises per cut
    /// (the authors' setting: 0.6).
    pub step: f64,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig { threshold: 0.5, max_cluster_size: 900, step: 0.6 }
    }
}

/// Labels `0..` (in order of first appearance) for `n` faces from `links`;
/// faces without a kept link are clusters of one.
pub fn merge_links(n: usize, links: &[Link], config: &MergeConfig) -> Vec<i64> {
    let mut pooled: HashMap<(usize, usize), (f64, u32)> = HashMap::new();
    for link in links.iter().filter(|l| l.pivot != l.neighbour && l.pivot < n && l.neighbour < n) {
        let key = (link.pivot.min(link.neighbour), link.pivot.max(link.neighbour));
        let entry = pooled.entry(key).or_insert((0.0, 0));
        entry.0 += link.probability;
        entry.1 += 1;
    }
    let mut pairs: Vec<((usize, usize), f64)> = pooled.into_iter().map(|(pair, (sum, count))| (pair, sum / count as f64)).collect();
    pairs.sort_by_key(|&(pair, _)| pair);

    // (cut round, union-find root) of each face's cluster, once decided
    let mut cluster_of: Vec<Option<(usize, usize)>> = vec![None; n];
    let mut threshold = config.threshold;
    let max_size = config.max_cluster_size.max(1);
    for round in 0.. {
        let mut sets = UnionFind::new(n);
        for &((a, b), p) in &pairs {
            if cluster_of[a].is_none() && cluster_of[b].is_none() && p >= threshold {
                sets.union(a, b);
            }
        }
        let open: Vec<usize> = (0..n).filter(|&i| cluster_of[i].is_none()).collect();
        let mut size = vec![0usize; n];
        for &i in &open {
            size[sets.find(i)] += 1;
        }
        let next = threshold + (1.0 - threshold) * config.step;
        // the last round: the threshold can rise no further
        let last = !(next > threshold && next <= 1.0);
        let mut any_left = false;
        for &i in &open {
            let root = sets.find(i);
            if size[root] <= max_size || last {
                cluster_of[i] = Some((round, root));
            } else {
                any_left = true;
            }
        }
        if !any_left {
            break;
        }
        threshold = next;
    }
    let mut label_of = HashMap::new();
    cluster_of
        .iter()
        .map(|cluster| {
            let next = label_of.len() as i64;
            *label_of.entry(cluster.expect("every face decided")).or_insert(next)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(pivot: usize, neighbour: usize, probability: f64) -> Link {
        Link { pivot, neighbour, probability }
    }

    #[test]
    fn both_directions_are_averaged_before_the_cut() {
        // 0–1: 0.9 and 0.3 → 0.6 (kept at 0.5); 1–2: 0.45 once (dropped);
        // 3–4: 0.5 exactly (kept: at or above); 2–5: 0.8 and 0.1 → 0.45 (dropped)
        let links = [link(0, 1, 0.9), link(1, 0, 0.3), link(1, 2, 0.45), link(3, 4, 0.5), link(2, 5, 0.8), link(5, 2, 0.1)];
        let labels = merge_links(6, &links, &MergeConfig::default());
        assert_eq!(labels, vec![0, 0, 1, 2, 2, 3]);
        let strict = MergeConfig { threshold: 0.61, ..MergeConfig::default() };
        assert_eq!(merge_links(6, &links, &strict), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn oversized_components_are_cut_at_a_raised_threshold() {
        // a chain 0–1–2–3–4 with weights 0.95 0.7 0.95 0.99, and 5–6 at 0.6;
        // max size 3: round 0 (t = 0.5) keeps {5,6}, the chain (5) is cut again
        // at t = 0.5 + 0.5·0.6 = 0.8: {0,1} {2,3,4}, each ≤ 3.
        let links = [link(0, 1, 0.95), link(1, 2, 0.7), link(2, 3, 0.95), link(3, 4, 0.99), link(5, 6, 0.6)];
        let config = MergeConfig { threshold: 0.5, max_cluster_size: 3, step: 0.6 };
        assert_eq!(merge_links(7, &links, &config), vec![0, 0, 1, 1, 1, 2, 2]);
        // max size 2: {2,3,4} is cut again at 0.8 + 0.2·0.6 = 0.92 — still one (0.95, 0.99),
        // then at 0.968: {2} {3,4}
        let config = MergeConfig { max_cluster_size: 2, ..config };
        assert_eq!(merge_links(7, &links, &config), vec![0, 0, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn a_clique_at_probability_one_ends() {
        let links: Vec<Link> = (0..4).flat_map(|a| (0..4).filter(move |&b| b != a).map(move |b| link(a, b, 1.0))).collect();
        let config = MergeConfig { threshold: 0.5, max_cluster_size: 2, step: 0.6 };
        assert_eq!(merge_links(4, &links, &config), vec![0, 0, 0, 0]);
        assert_eq!(merge_links(3, &[], &config), vec![0, 1, 2]);
    }
}
