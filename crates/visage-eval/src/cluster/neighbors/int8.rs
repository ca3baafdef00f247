//! The radius search screened with 8-bit integer dot products (AVX-512
//! VNNI), exact by a proved error bound.
//!
//! Each row `x` is quantised with its own scale: `s = max|xₖ| / 127`,
//! `q = round(x / s)` ∈ [−127, 127]. With `x̃ = s·q`, `r = x − x̃` and the same
//! for `y`, exactly `x·y = sₓ·s_y·(q_x·q_y) + x̃·r_y + r_x·y`, so by
//! Cauchy–Schwarz `|x·y − sₓ·s_y·(q_x·q_y)| ≤ ‖x̃‖‖r_y‖ + ‖r_x‖‖y‖`: a bound
//! from four norms per row. Pairs whose integer estimate is farther than
//! that bound (plus a slack for the f64 rounding of the reference
//! expressions) from the `eps` cut are decided by it; the others, a few per
//! ten thousand on face embeddings, are decided by the f64 dot product, as
//! every pair is in the reference definition ([`Prepared::from_dot`]).
//!
//! Why it pays: one `vpdpbusd` does 64 multiply-adds where an f32 FMA does
//! 16, the rows take a quarter of the bytes, and the comparison with the
//! cut is fused into the kernel (one mask per 16 pairs), so the dot-product
//! matrix is never written out.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::super::distance::{Metric, Prepared};

/// Rows per tile of the kernel (accumulators: `MR × NV` of 32).
const MR: usize = 6;
/// 16-column panels per tile.
const NV: usize = 4;
/// Columns per tile.
const NC: usize = 16 * NV;
/// Rows (and columns) per parallel task: a multiple of `MR` and `NC`; the
/// task's 384 packed columns (192 KiB at d = 512) stay in L2.
const BLOCK: usize = 384;

/// Whether this CPU runs the kernel (AVX-512 F/BW and VNNI).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni")
}

/// Rows quantised to bytes, with what the error bound needs.
struct Quantised {
    /// Rows padded to a multiple of [`BLOCK`]; `q + 128` as unsigned bytes,
    /// `depth` per row (padding: 128, that is q = 0).
    rows_u8: Vec<u8>,
    /// The same rows as signed bytes in the kernel's column layout: per
    /// group of [`NC`] rows, per 4 dimensions, [`NV`] panels of 16 rows × 4 bytes.
    columns_i8: Vec<i8>,
    /// −128 · Σₖ qₖ per row: the accumulator's start, which removes the +128.
    offset: Vec<i32>,
    /// Dimensions padded to a multiple of 4.
    depth: usize,
    /// `s`, `‖x̃‖ = s‖q‖`, `‖r‖`, `‖x‖` per row (0 for padding).
    scale: Vec<f64>,
    approx_norm: Vec<f64>,
    residual_norm: Vec<f64>,
    norm: Vec<f64>,
}

fn quantise(data: &Prepared) -> Quantised {
    let (n, d) = data.rows.dim();
    let padded = n.div_ceil(BLOCK) * BLOCK;
    let depth = d.div_ceil(4) * 4;
    let mut rows_u8 = vec![128u8; padded * depth];
    let mut scale = vec![0.0; padded];
    let mut approx_norm = vec![0.0; padded];
    let mut residual_norm = vec![0.0; padded];
    let mut norm = vec![0.0; padded];
    let mut offset = vec![0i32; padded];
    rows_u8
        .par_chunks_mut(depth)
        .zip(scale.par_iter_mut())
        .zip(approx_norm.par_iter_mut().zip(residual_norm.par_iter_mut()))
        .zip(norm.par_iter_mut().zip(offset.par_iter_mut()))
        .enumerate()
        .take(n)
        .for_each(|(i, (((bytes, s), (approx, residual)), (length, offset)))| {
            let row = data.rows.row(i);
            let max = row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let (mut q_sq, mut r_sq, mut sum) = (0.0f64, 0.0f64, 0i32);
            if max > 0.0 {
                *s = max / 127.0;
                for (byte, &v) in bytes.iter_mut().zip(row.iter()) {
                    let q = (v / *s).round().clamp(-127.0, 127.0);
                    *byte = (q as i32 + 128) as u8;
                    sum += q as i32;
                    q_sq += q * q;
                    r_sq += (v - *s * q).powi(2);
                }
            }
            *approx = *s * q_sq.sqrt();
            *residual = r_sq.sqrt();
            *length = data.sq_norms[i].sqrt();
            *offset = -128 * sum;
        });
    let mut columns_i8 = vec![0i8; padded * depth];
    columns_i8.par_chunks_mut(NC * depth).enumerate().for_each(|(group, out)| {
        for k4 in 0..depth / 4 {
            for col in 0..NC {
                let row = &rows_u8[(group * NC + col) * depth + 4 * k4..][..4];
                let at = k4 * NC * 4 + col * 4;
                for t in 0..4 {
                    out[at + t] = (row[t] as i32 - 128) as i8;
                }
            }
        }
    });
    Quantised { rows_u8, columns_i8, offset, depth, scale, approx_norm, residual_norm, norm }
}

/// Pairs `(i, j)`, `i < j`, within `eps`, per task (the upper triangle of
/// [`BLOCK`]-row blocks), exactly as the f64 definition decides them.
///
/// `emulated` runs [`tile_portable`] instead of the AVX-512 kernel: the same
/// integers and masks on any CPU, slowly (the tests use it so the screen's
/// bounds are checked where VNNI is missing).
///
/// # Panics
/// If the CPU lacks the kernel's instructions and `emulated` is false
/// (callers check [`available`]).
pub(super) fn pairs_within(data: &Prepared, eps: f64, emulated: bool) -> Vec<Vec<(u32, u32)>> {
    assert!(emulated || available(), "the int8 screen needs AVX-512 VNNI");
    let n = data.len();
    let q = quantise(data);
    let blocks = q.scale.len() / BLOCK;
    let cosine = data.metric == Metric::Cosine;
    // Per block of columns: the extremes the screen's thresholds need.
    struct ColumnBlock {
        scale_max: f64,
        scale_min: f64,
        residual_max: f64,
        norm_max: f64,
        sq_min: f64,
    }
    let column_blocks: Vec<ColumnBlock> = (0..blocks)
        .map(|b| {
            let r = b * BLOCK..((b + 1) * BLOCK).min(n);
            let fold = |v: &[f64], f: fn(f64, f64) -> f64, init: f64| v[r.clone()].iter().copied().fold(init, f);
            ColumnBlock {
                scale_max: fold(&q.scale, f64::max, 0.0),
                scale_min: fold(&q.scale, f64::min, f64::INFINITY),
                residual_max: fold(&q.residual_norm, f64::max, 0.0),
                norm_max: fold(&q.norm, f64::max, 0.0),
                sq_min: data.sq_norms[r.clone()].iter().copied().fold(f64::INFINITY, f64::min),
            }
        })
        .collect();
    // Rounding of the f64 reference expressions, far below the int8 error.
    let slack = |i: usize, j: usize| 1e-9 * (1.0 + data.sq_norms[i] + data.sq_norms[j] + eps * eps);
    let margin = |i: usize, j: usize| (q.approx_norm[i] * q.residual_norm[j] + q.residual_norm[i] * q.norm[j]) * (1.0 + 1e-9) + slack(i, j);
    let cut = |i: usize, j: usize| if cosine { 1.0 - eps } else { (data.sq_norms[i] + data.sq_norms[j] - eps * eps) / 2.0 };
    let block_pairs: Vec<(usize, usize)> = (0..blocks).flat_map(|a| (a..blocks).map(move |b| (a, b))).collect();
    block_pairs
        .par_iter()
        .map(|&(a, b)| {
            let cols = &column_blocks[b];
            let mut found = Vec::new();
            // The integer threshold of each row: a pair can be within eps only
            // if sᵢ·sⱼ·Q ≥ cut − margin, so only if Q ≥ tᵢ for every column of
            // the block (the worst column's scale, margin and cut).
            let threshold: Vec<i32> = (a * BLOCK..(a + 1) * BLOCK)
                .map(|i| {
                    if i >= n {
                        return i32::MAX;
                    }
                    let s = q.scale[i];
                    let cut_low = if cosine { 1.0 - eps } else { (data.sq_norms[i] + cols.sq_min - eps * eps) / 2.0 };
                    let margin_max = (q.approx_norm[i] * cols.residual_max + q.residual_norm[i] * cols.norm_max) * (1.0 + 1e-9)
                        + 1e-9 * (1.0 + data.sq_norms[i] + cols.norm_max * cols.norm_max + eps * eps);
                    let low = cut_low - margin_max;
                    if s == 0.0 || cols.scale_min == 0.0 {
                        return i32::MIN;
                    }
                    let t = if low > 0.0 { low / (s * cols.scale_max) * (1.0 - 1e-9) } else { low / (s * cols.scale_min) * (1.0 + 1e-9) };
                    (t.floor() - 1.0).clamp(i32::MIN as f64, i32::MAX as f64) as i32
                })
                .collect();
            let mut tile = [[0i32; NC]; MR];
            for group in (b * BLOCK / NC)..((b + 1) * BLOCK / NC) {
                let columns = &q.columns_i8[group * NC * q.depth..][..NC * q.depth];
                let offsets = &q.offset[group * NC..][..NC];
                for r0 in (a * BLOCK..(a + 1) * BLOCK).step_by(MR) {
                    let rows = &q.rows_u8[r0 * q.depth..][..MR * q.depth];
                    let t = &threshold[r0 - a * BLOCK..][..MR];
                    let masks = if emulated {
                        tile_portable(rows, columns, offsets, t, q.depth, &mut tile)
                    } else {
                        // SAFETY: `available()` was checked above; the slices
                        // hold MR rows and NC columns of `depth` bytes.
                        unsafe { tile_kernel(rows, columns, offsets, t, q.depth, &mut tile) }
                    };
                    for (r, row_masks) in masks.iter().enumerate() {
                        let i = r0 + r;
                        for (v, &mask) in row_masks.iter().enumerate() {
                            let mut bits = mask;
                            while bits != 0 {
                                let lane = bits.trailing_zeros() as usize;
                                bits &= bits - 1;
                                let j = group * NC + 16 * v + lane;
                                if j <= i || j >= n {
                                    continue;
                                }
                                let estimate = q.scale[i] * q.scale[j] * tile[r][16 * v + lane] as f64;
                                let (c, m) = (cut(i, j), margin(i, j));
                                let inside = if estimate - m >= c {
                                    true
                                } else if estimate + m < c {
                                    false
                                } else {
                                    data.from_dot(i, j, data.rows.row(i).dot(&data.rows.row(j))) <= eps
                                };
                                if inside {
                                    found.push((i as u32, j as u32));
                                }
                            }
                        }
                    }
                }
            }
            found
        })
        .collect()
}

/// [`tile_kernel`]'s arithmetic in plain integers: `vpdpbusd` multiplies
/// unsigned bytes of the rows with signed bytes of the columns and adds each
/// group of four products to a 32-bit lane, without saturation. Column `c`'s
/// four bytes of dimension group `k4` sit in panel `c / 16`, lane `c % 16`.
fn tile_portable(rows: &[u8], columns: &[i8], offsets: &[i32], threshold: &[i32], depth: usize, tile: &mut [[i32; NC]; MR]) -> [[u16; NV]; MR] {
    let mut masks = [[0u16; NV]; MR];
    for r in 0..MR {
        for c in 0..NC {
            let mut acc = offsets[c];
            for k4 in 0..depth / 4 {
                let column = &columns[k4 * NC * 4 + 64 * (c / 16) + 4 * (c % 16)..][..4];
                let row = &rows[r * depth + 4 * k4..][..4];
                acc = acc.wrapping_add(row.iter().zip(column).map(|(&a, &b)| a as i32 * b as i32).sum::<i32>());
            }
            tile[r][c] = acc;
            if acc >= threshold[r] {
                masks[r][c / 16] |= 1 << (c % 16);
            }
        }
    }
    masks
}

/// Integer dot products of [`MR`] rows with [`NC`] columns into `tile`, and
/// per row and panel the mask of columns with a product ≥ that row's
/// threshold.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VNNI; `rows` holds `MR × depth`
/// bytes, `columns` `NC × depth` in the packed layout, `depth % 4 == 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_kernel(rows: &[u8], columns: &[i8], offsets: &[i32], threshold: &[i32], depth: usize, tile: &mut [[i32; NC]; MR]) -> [[u16; NV]; MR] {
    debug_assert!(rows.len() >= MR * depth && columns.len() >= NC * depth && offsets.len() >= NC && threshold.len() >= MR);
    let mut acc = [[_mm512_setzero_si512(); NV]; MR];
    for v in 0..NV {
        let start = _mm512_loadu_si512(offsets.as_ptr().add(16 * v).cast());
        for row in acc.iter_mut() {
            row[v] = start;
        }
    }
    let (a, b) = (rows.as_ptr(), columns.as_ptr());
    for k4 in 0..depth / 4 {
        let panel = b.add(k4 * NC * 4);
        let bv: [__m512i; NV] = std::array::from_fn(|v| _mm512_loadu_si512(panel.add(64 * v).cast()));
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_epi32(a.add(r * depth + 4 * k4).cast::<i32>().read_unaligned());
            for v in 0..NV {
                row[v] = _mm512_dpbusd_epi32(row[v], av, bv[v]);
            }
        }
    }
    let mut masks = [[0u16; NV]; MR];
    for r in 0..MR {
        let t = _mm512_set1_epi32(threshold[r]);
        for v in 0..NV {
            masks[r][v] = _mm512_cmpge_epi32_mask(acc[r][v], t);
            _mm512_storeu_si512(tile[r].as_mut_ptr().add(16 * v).cast(), acc[r][v]);
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable tile against a dot product written out by hand (and,
    /// where the CPU has VNNI, against the AVX-512 kernel), on bytes that
    /// include the extremes (255 · −128).
    #[test]
    fn portable_tile_is_the_kernel_arithmetic() {
        let depth = 24;
        let mut state = 12345u32;
        let mut byte = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        let mut rows: Vec<u8> = (0..MR * depth).map(|_| byte()).collect();
        let mut columns: Vec<i8> = (0..NC * depth).map(|_| byte() as i8).collect();
        rows[..8].fill(255);
        columns[..8].fill(-128);
        let offsets: Vec<i32> = (0..NC as i32).map(|c| c * 1000 - 30_000).collect();
        let threshold: Vec<i32> = (0..MR as i32).map(|r| r * 5000 - 10_000).collect();
        let mut tile = [[0i32; NC]; MR];
        let masks = tile_portable(&rows, &columns, &offsets, &threshold, depth, &mut tile);
        for r in 0..MR {
            for c in 0..NC {
                let by_hand: i32 = offsets[c]
                    + (0..depth)
                        .map(|k| rows[r * depth + k] as i32 * columns[(k / 4) * NC * 4 + 64 * (c / 16) + 4 * (c % 16) + k % 4] as i32)
                        .sum::<i32>();
                assert_eq!(tile[r][c], by_hand, "row {r} column {c}");
                assert_eq!(masks[r][c / 16] >> (c % 16) & 1 == 1, by_hand >= threshold[r], "mask of row {r} column {c}");
            }
        }
        if available() {
            let mut kernel_tile = [[0i32; NC]; MR];
            // SAFETY: the CPU has the kernel's instructions; the slices have the sizes it reads.
            let kernel_masks = unsafe { tile_kernel(&rows, &columns, &offsets, &threshold, depth, &mut kernel_tile) };
            assert_eq!(kernel_tile, tile);
            assert_eq!(kernel_masks, masks);
        }
    }
}
