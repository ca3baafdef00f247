//! Approximate top-k for large galleries: an HNSW graph (Malkov & Yashunin
//! 2018) from the `instant-distance` crate over the pooled templates.
//!
//! Distance is `1 − cosine` (templates are unit vectors), so the nearest
//! neighbours are the highest cosines and a hit's score is `1 − distance`.
//! `ef_search` trades recall for speed; the recall against exact search is
//! measured, not assumed (tests on random data, `visage bench gallery`).

use std::sync::Arc;

use instant_distance::{Builder, HnswMap, Search};

use crate::model::IdentityId;
use crate::search::{dot, Scored, TemplateMatrix};

/// HNSW settings. Defaults are the crate's own (`ef_construction` 100,
/// `ef_search` 100) with a fixed seed, so an index is reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Candidate-list size while inserting: higher = better graph, slower build.
    pub ef_construction: usize,
    /// Candidate-list size while searching: higher = better recall, slower search (≥ k).
    pub ef_search: usize,
    /// Seed of the builder's random level assignment. PostgreSQL's index
    /// ignores it and `ef_construction` (pgvector builds with its own defaults).
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self { ef_construction: 100, ef_search: 100, seed: 0x5eed }
    }
}

/// A template as an HNSW point: the matrix it lives in and its row (no copy).
#[derive(Clone)]
struct Row {
    values: Arc<[f32]>,
    start: usize,
    dim: usize,
}

impl Row {
    fn slice(&self) -> &[f32] {
        &self.values[self.start..self.start + self.dim]
    }
}

impl instant_distance::Point for Row {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(self.slice(), other.slice())
    }
}

/// An HNSW index over a [`TemplateMatrix`] snapshot.
pub struct HnswIndex {
    map: Option<HnswMap<Row, IdentityId>>,
    dim: usize,
    params: HnswParams,
}

impl HnswIndex {
    /// Builds the graph over every row (in parallel inside the crate).
    pub fn build(matrix: &TemplateMatrix, params: HnswParams) -> Self {
        let dim = matrix.dim();
        if matrix.is_empty() {
            return Self { map: None, dim, params };
        }
        let values: Arc<[f32]> = Arc::from(matrix.values());
        let points = (0..matrix.len()).map(|row| Row { values: values.clone(), start: row * dim, dim }).collect();
        let map = Builder::default()
            .ef_construction(params.ef_construction)
            .ef_search(params.ef_search)
            .seed(params.seed)
            .build(points, matrix.ids().to_vec());
        Self { map: Some(map), dim, params }
    }

    /// The parameters the index was built with (the embedded store rebuilds
    /// its cached index when a search asks for others).
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The approximate `k` best rows for `query`, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Scored> {
        assert_eq!(query.len(), self.dim, "query length");
        let Some(map) = &self.map else { return Vec::new() };
        let point = Row { values: Arc::from(query), start: 0, dim: self.dim };
        let mut search = Search::default();
        map.search(&point, &mut search).take(k).map(|item| Scored { id: *item.value, score: 1.0 - item.distance }).collect()
    }
}

/// Fraction of the exact top-k ids that the approximate top-k found,
/// averaged over queries (recall@k).
pub fn recall_at_k(exact: &[Vec<Scored>], approximate: &[Vec<Scored>]) -> f64 {
    let mut found = 0usize;
    let mut total = 0usize;
    for (truth, guess) in exact.iter().zip(approximate) {
        total += truth.len();
        found += truth.iter().filter(|t| guess.iter().any(|g| g.id == t.id)).count();
    }
    if total == 0 {
        1.0
    } else {
        found as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Random data with structure, as face templates have: `clusters`
    /// centres, each row a centre plus noise, renormalised. (Uniform random
    /// unit vectors in high dimension are all nearly orthogonal, a case no
    /// real gallery is and graph indexes handle worst.)
    pub(crate) fn clustered_unit_rows(rows: usize, dim: usize, clusters: usize, noise: f32, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mut values = Vec::with_capacity(rows * dim);
        for _ in 0..rows {
            let c = rng.random_range(0..clusters);
            let start = values.len();
            values.extend((0..dim).map(|j| centres[c * dim + j] + noise * rng.random_range(-1.0f32..1.0)));
            let norm = values[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
            values[start..].iter_mut().for_each(|x| *x /= norm);
        }
        values
    }

    #[test]
    fn recall_at_10_against_exact_on_random_data() {
        let (rows, dim, k) = (4000, 64, 10);
        let values = clustered_unit_rows(rows, dim, 50, 0.8, 11);
        let matrix = TemplateMatrix::from_rows(dim, values, (1..=rows as u64).collect());
        let queries = clustered_unit_rows(100, dim, 50, 0.8, 11 + 1);
        let queries: Vec<&[f32]> = queries.chunks_exact(dim).collect();
        let exact = matrix.top_k(&queries, k);
        let index = HnswIndex::build(&matrix, HnswParams::default());
        let approximate: Vec<Vec<Scored>> = queries.iter().map(|q| index.search(q, k)).collect();
        let recall = recall_at_k(&exact, &approximate);
        eprintln!("HNSW recall@10 on {rows} clustered random 64-d unit vectors, ef_search 100: {recall:.4}");
        assert!(recall >= 0.95, "recall@10 {recall}");
        // Scores are true cosines of the rows found.
        for (query, hits) in queries.iter().zip(&approximate) {
            assert_eq!(hits.len(), k);
            for hit in hits {
                let row = matrix.row(hit.id as usize - 1);
                assert!((dot(row, query) - hit.score).abs() < 1e-5);
            }
        }
        // A starved search (ef_search 1... k) finds less: recall is measured, not constant.
        let weak = HnswIndex::build(&matrix, HnswParams { ef_construction: 4, ef_search: 1, seed: 1 });
        let weak_hits: Vec<Vec<Scored>> = queries.iter().map(|q| weak.search(q, k)).collect();
        assert!(recall_at_k(&exact, &weak_hits) < recall, "a weak index should not match a good one");
    }

    #[test]
    fn recall_counts_shared_ids() {
        let s = |ids: &[u64]| ids.iter().map(|&id| Scored { id, score: 0.0 }).collect::<Vec<_>>();
        assert_eq!(recall_at_k(&[s(&[1, 2, 3, 4])], &[s(&[4, 9, 1, 8])]), 0.5);
        assert_eq!(recall_at_k(&[], &[]), 1.0);
    }
}
