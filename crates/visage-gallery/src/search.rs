//! Exact top-k search by cosine similarity over one contiguous matrix.
//!
//! Every identity's pooled unit template is a row of one `rows × dim` f32
//! matrix, so a search is a single sequential pass over memory — the
//! access pattern the hardware prefetcher streams at full bandwidth. The
//! rows are cut into chunks that rayon spreads over the cores; each task
//! keeps, per query, a bounded min-heap of its best `k` rows (a row enters
//! only when it beats the heap's worst), and the per-task heaps are merged
//! at the end. Several queries (the faces of one photo) share one pass: each
//! row is read from memory once and dotted with every query while in cache.
//!
//! The dot product keeps 16 independent partial sums, which the compiler
//! turns into vector instructions; on x86-64 a copy compiled for AVX2+FMA
//! is chosen at run time when the CPU has it (plain Rust, no intrinsics).
//! At 10⁶ × 512 the pass reads 2 GB and is bound by memory bandwidth, not
//! arithmetic: `docs/benchmarks.md` ("Gallery search") measures how close
//! it comes.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use rayon::prelude::*;

use crate::model::IdentityId;

/// Rows per parallel task: 4096 × 512 × 4 B = 8 MiB, large enough that
/// task overhead vanishes, small enough to balance two to dozens of cores.
const CHUNK_ROWS: usize = 4096;

/// One search hit: a row's identity and its cosine similarity to the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// The identity whose pooled template the row holds.
    pub id: IdentityId,
    /// Dot product of the row and the query: their cosine for unit vectors.
    pub score: f32,
}

/// The pooled templates of a gallery, one row per identity. Row order is
/// insertion order until a removal moves the last row into the gap; ties in
/// [`TemplateMatrix::top_k`] go to the lower id (the identity enrolled
/// first, as the PostgreSQL store orders them), whatever the rows' order.
#[derive(Clone, Debug, Default)]
pub struct TemplateMatrix {
    dim: usize,
    values: Vec<f32>,
    ids: Vec<IdentityId>,
    row_of: HashMap<IdentityId, usize>,
}

impl TemplateMatrix {
    /// An empty matrix of `dim`-long rows.
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Self::default() }
    }

    /// A matrix over `values` (row-major, `ids.len()` rows of `dim`).
    /// Panics when the lengths disagree (a programming error).
    pub fn from_rows(dim: usize, values: Vec<f32>, ids: Vec<IdentityId>) -> Self {
        assert_eq!(values.len(), dim * ids.len(), "values must hold ids.len() rows of dim");
        let row_of = ids.iter().enumerate().map(|(row, &id)| (id, row)).collect();
        Self { dim, values, ids, row_of }
    }

    /// Length of every row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows (identities).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the matrix has no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row `row` (by position, not id); panics past the last row.
    pub fn row(&self, row: usize) -> &[f32] {
        &self.values[row * self.dim..(row + 1) * self.dim]
    }

    /// The identity of each row, in row order.
    pub fn ids(&self) -> &[IdentityId] {
        &self.ids
    }

    /// All rows, row-major (`len() × dim()` values).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Sets identity `id`'s row (appending a new row for a new identity).
    pub fn upsert(&mut self, id: IdentityId, template: &[f32]) {
        assert_eq!(template.len(), self.dim, "template length");
        match self.row_of.get(&id) {
            Some(&row) => self.values[row * self.dim..(row + 1) * self.dim].copy_from_slice(template),
            None => {
                self.row_of.insert(id, self.ids.len());
                self.ids.push(id);
                self.values.extend_from_slice(template);
            }
        }
    }

    /// Drops identity `id`'s row: the last row moves into its place.
    pub fn remove(&mut self, id: IdentityId) {
        let Some(row) = self.row_of.remove(&id) else { return };
        let last = self.ids.len() - 1;
        if row != last {
            let (head, tail) = self.values.split_at_mut(last * self.dim);
            head[row * self.dim..(row + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
            self.ids[row] = self.ids[last];
            self.row_of.insert(self.ids[row], row);
        }
        self.ids.pop();
        self.values.truncate(last * self.dim);
    }

    /// The `k` best rows for each query, best first (ties: the lower id).
    /// Every query must have length [`Self::dim`].
    pub fn top_k(&self, queries: &[&[f32]], k: usize) -> Vec<Vec<Scored>> {
        for query in queries {
            assert_eq!(query.len(), self.dim, "query length");
        }
        if k == 0 || self.is_empty() || queries.is_empty() {
            return vec![Vec::new(); queries.len()];
        }
        let dot = dot_kernel();
        let chunk_len = CHUNK_ROWS * self.dim;
        let heaps = self
            .values
            .par_chunks(chunk_len)
            .enumerate()
            .fold(
                || vec![TopK::new(k); queries.len()],
                |mut heaps, (chunk, values)| {
                    let first_row = chunk * CHUNK_ROWS;
                    for (offset, row) in values.chunks_exact(self.dim).enumerate() {
                        let id = self.ids[first_row + offset];
                        for (heap, query) in heaps.iter_mut().zip(queries) {
                            heap.offer(dot(row, query), id);
                        }
                    }
                    heaps
                },
            )
            .reduce(
                || vec![TopK::new(k); queries.len()],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        x.merge(y);
                    }
                    a
                },
            );
        heaps.into_iter().map(|heap| heap.into_sorted().into_iter().map(|c| Scored { id: c.id, score: c.score }).collect()).collect()
    }
}

/// An identity and its score, ordered so that the heap's top is the worst
/// kept: lower score is worse; at equal score the higher id is worse.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    score: f32,
    id: IdentityId,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// "Greater" = worse, so `BinaryHeap` (a max-heap) keeps the worst on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(self.id.cmp(&other.id))
    }
}

/// The best `k` candidates seen so far.
#[derive(Clone, Debug)]
struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    #[inline]
    fn offer(&mut self, score: f32, id: IdentityId) {
        let candidate = Candidate { score, id };
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if candidate < *worst {
                *worst = candidate;
            }
        }
    }

    fn merge(&mut self, other: TopK) {
        for candidate in other.heap {
            self.offer(candidate.score, candidate.id);
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

/// Lanes of partial sums: 16 f32 = two AVX2 registers or one AVX-512.
const LANES: usize = 16;

/// `Σ aᵢbᵢ` with 16 independent partial sums (so the additions vectorise
/// without reordering a single chain), the remainder added at the end.
#[inline(always)]
fn dot_lanes<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    // Fixed-size blocks: no bounds checks inside, so the lane loop vectorises.
    let (a_blocks, a_rest) = a.as_chunks::<LANES>();
    let (b_blocks, b_rest) = b.as_chunks::<LANES>();
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        // Iterators, not `sums[lane]` indexing: LLVM turns this form into
        // full-width vector FMAs (checked in the assembly: ymm), the indexed
        // one into 2-lane pieces.
        for ((sum, &xv), &yv) in sums.iter_mut().zip(x).zip(y) {
            *sum = if FMA { xv.mul_add(yv, *sum) } else { *sum + xv * yv };
        }
    }
    let mut total = 0.0f32;
    for (x, y) in a_rest.iter().zip(b_rest) {
        total += x * y;
    }
    // A plain sum of the lanes: an in-place pairwise tree here stops LLVM
    // from vectorising the main loop at full width.
    total + sums.iter().sum::<f32>()
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<false>(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<true>(a, b)
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2_fma_checked(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only handed out by `dot_kernel` after the CPU reported AVX2 and FMA.
    unsafe { dot_avx2_fma(a, b) }
}

/// The fastest dot product this CPU runs.
pub fn dot_kernel() -> fn(&[f32], &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        return dot_avx2_fma_checked;
    }
    dot_portable
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_kernel()(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_unit_rows(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut values: Vec<f32> = (0..rows * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        for row in values.chunks_exact_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        values
    }

    #[test]
    fn dot_matches_f64_sum() {
        let values = random_unit_rows(2, 515, 1); // 515 = 32 lanes × 16 + 3: exercises the remainder
        let (a, b) = values.split_at(515);
        let reference: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        assert!((f64::from(dot(a, b)) - reference).abs() < 1e-6);
        assert!((f64::from(dot_portable(a, b)) - reference).abs() < 1e-6);
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    }

    #[test]
    fn top_k_equals_a_full_sort() {
        let (rows, dim, k) = (10_000, 64, 10); // spans three chunks of CHUNK_ROWS
        let values = random_unit_rows(rows, dim, 2);
        let ids: Vec<u64> = (0..rows as u64).map(|i| 1000 + i).collect();
        let matrix = TemplateMatrix::from_rows(dim, values.clone(), ids);
        let queries = random_unit_rows(3, dim, 3);
        let queries: Vec<&[f32]> = queries.chunks_exact(dim).collect();
        let found = matrix.top_k(&queries, k);
        for (query, hits) in queries.iter().zip(&found) {
            let mut all: Vec<(f64, u64)> = values
                .chunks_exact(dim)
                .enumerate()
                .map(|(r, row)| (row.iter().zip(*query).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum(), 1000 + r as u64))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), all[..k].iter().map(|a| a.1).collect::<Vec<_>>());
            for (hit, (score, _)) in hits.iter().zip(&all) {
                assert!((f64::from(hit.score) - score).abs() < 1e-5);
            }
        }
        // k beyond the rows: every row, best first.
        let small = TemplateMatrix::from_rows(2, vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8], vec![7, 8, 9]);
        let hits = small.top_k(&[&[0.0, 1.0]], 5);
        assert_eq!(hits[0].iter().map(|h| (h.id, h.score)).collect::<Vec<_>>(), vec![(8, 1.0), (9, 0.8), (7, 0.0)]);
    }

    #[test]
    fn ties_prefer_the_lower_id_whatever_the_row_order() {
        let matrix = TemplateMatrix::from_rows(1, vec![0.5, 0.5, 0.5], vec![1, 2, 3]);
        let hits = matrix.top_k(&[&[1.0]], 2);
        assert_eq!(hits[0].iter().map(|h| h.id).collect::<Vec<_>>(), vec![1, 2]);
        // Removing id 1 moves the last row (id 3) into row 0: id 2 still wins the tie.
        let mut moved = matrix.clone();
        moved.remove(1);
        assert_eq!(moved.ids(), &[3, 2]);
        let hits = moved.top_k(&[&[1.0]], 1);
        assert_eq!(hits[0][0].id, 2);
        // Rows given in any order.
        let reversed = TemplateMatrix::from_rows(1, vec![0.5, 0.5, 0.5], vec![9, 5, 7]);
        assert_eq!(reversed.top_k(&[&[1.0]], 3)[0].iter().map(|h| h.id).collect::<Vec<_>>(), vec![5, 7, 9]);
    }

    #[test]
    fn upsert_and_remove_keep_rows_and_ids_together() {
        let mut matrix = TemplateMatrix::new(2);
        matrix.upsert(1, &[1.0, 0.0]);
        matrix.upsert(2, &[0.0, 1.0]);
        matrix.upsert(3, &[0.6, 0.8]);
        matrix.upsert(1, &[0.8, 0.6]);
        matrix.remove(2);
        matrix.remove(42);
        assert_eq!(matrix.ids(), &[1, 3]);
        assert_eq!(matrix.values(), &[0.8, 0.6, 0.6, 0.8]);
        let hits = matrix.top_k(&[&[0.0, 1.0]], 1);
        assert_eq!((hits[0][0].id, hits[0][0].score), (3, 0.8));
        matrix.remove(1);
        matrix.remove(3);
        assert!(matrix.is_empty() && matrix.top_k(&[&[0.0, 1.0]], 3)[0].is_empty());
    }
}
