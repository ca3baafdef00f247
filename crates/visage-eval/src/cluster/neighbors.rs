//! Radius neighbourhoods (`d(x, y) ≤ eps`, the point itself included), the
//! only geometric query DBSCAN needs.
//!
//! Blocks of query rows are compared with all rows through one matrix
//! product each, in parallel over blocks (rayon). Lists are kept as `u32`.

use rayon::prelude::*;

use super::distance::Prepared;

const BLOCK_ROWS: usize = 256;

/// For every row, the indices (ascending) of rows within `eps`.
pub fn radius_neighbors(data: &Prepared, eps: f64) -> Vec<Vec<u32>> {
    let n = data.len();
    let blocks: Vec<usize> = (0..n).step_by(BLOCK_ROWS).collect();
    let per_block: Vec<Vec<Vec<u32>>> = blocks
        .par_iter()
        .map(|&start| {
            let end = (start + BLOCK_ROWS).min(n);
            let mut lists = Vec::with_capacity(end - start);
            // columns in slabs to bound the block's memory on large n
            let mut acc: Vec<Vec<u32>> = vec![Vec::new(); end - start];
            for col in (0..n).step_by(8192) {
                let col_end = (col + 8192).min(n);
                let d = data.block(start..end, col..col_end);
                for (ri, row) in d.outer_iter().enumerate() {
                    for (cj, &v) in row.iter().enumerate() {
                        if v <= eps {
                            acc[ri].push((col + cj) as u32);
                        }
                    }
                }
            }
            lists.extend(acc);
            lists
        })
        .collect();
    per_block.into_iter().flatten().collect()
}
