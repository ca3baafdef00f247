//! 3×3, stride-1, padding-1 convolutions by Winograd's minimal filtering
//! F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016): forward, input gradient and weight gradient.
//!
//! The output is cut into 2×2 tiles; tile `(i, j)` reads the 4×4 input patch
//! at rows `2i − 1 … 2i + 2`, columns `2j − 1 … 2j + 2` (zero outside the
//! image). With `d` that patch and `g` a 3×3 filter,
//!
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`,
//!
//! so per transformed position `ξ` (16 of them) the channel sums are one
//! matrix product, `M_ξ = U_ξ · V_ξ` with `U_ξ = [C_out × C_in]` the
//! transformed filters and `V_ξ = [C_in × T]` the transformed patches of `T`
//! tiles: 16 products of `C_out·C_in·T` where the direct convolution needs
//! 9 of `C_out·C_in·4T`, 2.25× fewer multiplications.
//!
//! The backward pass is this map's adjoint: with `∂M_ξ = A ∂Y Aᵀ` at `ξ`,
//! `∂V_ξ = U_ξᵀ · ∂M_ξ`, `∂d = B ∂V Bᵀ` (added over the overlapping
//! patches) and `∂U_ξ = Σ_tiles ∂M_ξ · V_ξᵀ`, `∂g = Gᵀ ∂U G`. The
//! transforms' entries are 0, ±1 and ±½, so rounding stays at the level of
//! the direct path's (the tests bound both against the f64 definition).

use std::ops::Range;

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::kernels::Wanted;
use super::matmul::{matmul, Mat};

/// Transformed positions per tile (4×4).
const XI: usize = 16;

/// Convolutions with fewer channels than this (the stem's 3) stay on the
/// direct path: products with so short an inner dimension gain nothing.
const MIN_CHANNELS: usize = 16;

/// Tiles per matrix product: the transformed patches of a block of tiles
/// (`16 · C_in · T` floats) are built, multiplied and consumed before the
/// next block, so they stay near the cache.
const TILES_PER_BLOCK: usize = 512;

thread_local! {
    /// Scratch buffers kept by each thread between calls (see [`take`]).
    static POOL: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer of at least `len` floats, from this thread's pool: its
/// contents are whatever an earlier call left (every user overwrites before
/// reading, or zeroes), so a step does not pay for zeroing megabytes of
/// scratch per convolution. Buffers move out of the pool and back
/// ([`give_back`]), so a thread that takes more work while it waits inside a
/// threaded product gets another buffer, never the same one twice.
fn take(len: usize) -> Vec<f32> {
    let mut buffer = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let best = pool.iter().enumerate().max_by_key(|(_, b)| b.len()).map(|(i, _)| i);
        best.map(|i| pool.swap_remove(i)).unwrap_or_default()
    });
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    buffer
}

/// Buffers a thread keeps; past this, the smallest is freed.
const POOL_BUFFERS: usize = 6;

/// Returns a buffer from [`take`] to this thread's pool.
fn give_back(buffer: Vec<f32>) {
    if buffer.capacity() == 0 {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.push(buffer);
        if pool.len() > POOL_BUFFERS {
            let smallest = pool.iter().enumerate().min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
            if let Some(i) = smallest {
                pool.swap_remove(i);
            }
        }
    });
}

thread_local! {
    static OVERRIDE: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether Winograd's path is on: [`with_winograd`]'s choice on this thread,
/// else on unless `VISAGE_WINOGRAD=off` (read once).
pub(crate) fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    OVERRIDE
        .with(std::cell::Cell::get)
        .unwrap_or_else(|| *ON.get_or_init(|| !std::env::var(super::WINOGRAD_VARIABLE).is_ok_and(|value| value.trim().eq_ignore_ascii_case("off"))))
}

/// Runs `work` with Winograd's path on or off for every conv2d called from
/// this thread (tests compare both in one process this way).
pub fn with_winograd<R>(on: bool, work: impl FnOnce() -> R) -> R {
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|cell| cell.replace(Some(on))));
    work()
}

/// Whether [`forward`] and [`backward`] take this convolution.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    !g.depthwise && g.kernel == [3, 3] && g.stride == [1, 1] && g.padding == [1, 1] && g.channels_in >= MIN_CHANNELS && g.channels_out >= MIN_CHANNELS
}

/// How the batch is cut: units of whole images (each owns its slice of the
/// output and the input gradient, so units run in parallel), each unit a
/// sequence of blocks of tiles.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Tile rows and columns of one image.
    tile_rows: usize,
    tile_cols: usize,
    /// Images per unit (the last unit may have fewer).
    unit_images: usize,
    /// Tile rows per block when a unit is one image cut in bands; all rows otherwise.
    band_rows: usize,
}

impl Plan {
    fn new(g: &ConvGeometry, threads: usize, tiles_per_block: usize) -> Self {
        let (tile_rows, tile_cols) = (g.output[0].div_ceil(2), g.output[1].div_ceil(2));
        let per_image = tile_rows * tile_cols;
        let (unit_images, band_rows) = if per_image >= tiles_per_block {
            (1, (tiles_per_block / tile_cols).clamp(1, tile_rows))
        } else {
            let fill = tiles_per_block / per_image;
            (fill.min(g.batch.div_ceil(threads.max(1))).max(1), tile_rows)
        };
        Self { tile_rows, tile_cols, unit_images, band_rows }
    }

    /// The blocks of a unit of `images` images: (tile rows, tiles).
    fn blocks(&self, images: usize) -> impl Iterator<Item = (Range<usize>, usize)> + '_ {
        (0..self.tile_rows).step_by(self.band_rows).map(move |start| {
            let rows = start..(start + self.band_rows).min(self.tile_rows);
            let tiles = images * rows.len() * self.tile_cols;
            (rows, tiles)
        })
    }

    /// The most tiles any block holds.
    fn max_tiles(&self) -> usize {
        self.unit_images * self.band_rows.min(self.tile_rows) * self.tile_cols
    }
}

/// `U_ξ`, `[C_out × C_in]` inside the transformed filters `[16][C_out][C_in]`.
fn filters(g: &ConvGeometry, xi: usize) -> Mat {
    Mat { offset: xi * g.channels_out * g.channels_in, rows: g.channels_out, cols: g.channels_in, row_stride: g.channels_in, col_stride: 1 }
}

/// Row `xi` of a transformed block `[16][channels][tiles]`, `[channels × tiles]`.
fn plane(xi: usize, channels: usize, tiles: usize) -> Mat {
    Mat { offset: xi * channels * tiles, rows: channels, cols: tiles, row_stride: tiles, col_stride: 1 }
}

fn transposed(m: Mat) -> Mat {
    Mat { offset: m.offset, rows: m.cols, cols: m.rows, row_stride: m.col_stride, col_stride: m.row_stride }
}

/// `U = G g Gᵀ` for every filter: `[C_out, C_in, 3, 3]` → `[16][C_out][C_in]`.
#[inline(never)]
fn transform_filters(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let pairs = g.channels_out * g.channels_in;
    let mut out = take(XI * pairs);
    for (pair, f) in weight.chunks_exact(9).enumerate() {
        // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]; rows first.
        let mut rows = [[0.0f32; 3]; 4];
        for c in 0..3 {
            let (a, b, d) = (f[c], f[3 + c], f[6 + c]);
            rows[0][c] = a;
            rows[1][c] = 0.5 * (a + b + d);
            rows[2][c] = 0.5 * (a - b + d);
            rows[3][c] = d;
        }
        for (r, row) in rows.iter().enumerate() {
            let [a, b, d] = *row;
            let u = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
            for (c, value) in u.into_iter().enumerate() {
                out[(4 * r + c) * pairs + pair] = value;
            }
        }
    }
    out
}

/// The adjoint of [`transform_filters`]: `∂g = Gᵀ ∂U G`, `[16][C_out][C_in]`
/// → `[C_out, C_in, 3, 3]`.
#[inline(never)]
fn filters_adjoint(g: &ConvGeometry, transformed: &[f32]) -> Vec<f32> {
    let pairs = g.channels_out * g.channels_in;
    let mut out = vec![0.0; 9 * pairs];
    for (pair, f) in out.chunks_exact_mut(9).enumerate() {
        let u = |xi: usize| transformed[xi * pairs + pair];
        // Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]]; columns first.
        let mut rows = [[0.0f32; 3]; 4];
        for (r, row) in rows.iter_mut().enumerate() {
            let [a, b, c, d] = [u(4 * r), u(4 * r + 1), u(4 * r + 2), u(4 * r + 3)];
            *row = [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d];
        }
        for c in 0..3 {
            let [a, b, d, e] = [rows[0][c], rows[1][c], rows[2][c], rows[3][c]];
            f[c] = a + 0.5 * (b + d);
            f[3 + c] = 0.5 * (b - d);
            f[6 + c] = 0.5 * (b + d) + e;
        }
    }
    out
}

/// `Bᵀ d B` of a block's patches: `images` (NCHW, the unit's) → `v`,
/// `[16][C_in][tiles]`, tiles ordered (image, tile row, tile column).
#[inline(never)]
fn transform_patches(g: &ConvGeometry, plan: &Plan, images: &[f32], rows: &Range<usize>, tiles: usize, v: &mut [f32]) {
    let [height, width] = g.input;
    let padded = 2 * plan.tile_cols + 2;
    let count = images.len() / g.input_len();
    // Four zero-padded input rows (column c of the image at c + 1), then their
    // row transform Bᵀ: t0 = r0 − r2, t1 = r1 + r2, t2 = r2 − r1, t3 = r1 − r3.
    let mut source = vec![0.0f32; 4 * padded];
    let mut t = vec![0.0f32; 4 * padded];
    for channel in 0..g.channels_in {
        for image in 0..count {
            let plane_values = &images[image * g.input_len() + channel * height * width..][..height * width];
            for (band_row, tile_row) in rows.clone().enumerate() {
                for (k, row) in source.chunks_exact_mut(padded).enumerate() {
                    let input_row = (2 * tile_row + k).wrapping_sub(1);
                    if input_row < height {
                        row[0] = 0.0;
                        row[1..1 + width].copy_from_slice(&plane_values[input_row * width..][..width]);
                        row[1 + width..].fill(0.0);
                    } else {
                        row.fill(0.0);
                    }
                }
                let (r0, rest) = source.split_at(padded);
                let (r1, rest) = rest.split_at(padded);
                let (r2, r3) = rest.split_at(padded);
                let (t0, rest) = t.split_at_mut(padded);
                let (t1, rest) = rest.split_at_mut(padded);
                let (t2, t3) = rest.split_at_mut(padded);
                for c in 0..padded {
                    t0[c] = r0[c] - r2[c];
                    t1[c] = r1[c] + r2[c];
                    t2[c] = r2[c] - r1[c];
                    t3[c] = r1[c] - r3[c];
                }
                let first = (image * rows.len() + band_row) * plan.tile_cols;
                for (a, ta) in t.chunks_exact(padded).enumerate() {
                    // Columns: Bᵀ again, on columns 2j … 2j + 3 of the padded rows.
                    let base = |b: usize| ((4 * a + b) * g.channels_in + channel) * tiles + first;
                    let (o0, o1, o2, o3) = (base(0), base(1), base(2), base(3));
                    for j in 0..plan.tile_cols {
                        let (c0, c1, c2, c3) = (ta[2 * j], ta[2 * j + 1], ta[2 * j + 2], ta[2 * j + 3]);
                        v[o0 + j] = c0 - c2;
                        v[o1 + j] = c1 + c2;
                        v[o2 + j] = c2 - c1;
                        v[o3 + j] = c1 - c3;
                    }
                }
            }
        }
    }
}

/// `Aᵀ M A` of a block's products `m` (`[16][C_out][tiles]`) into the unit's
/// outputs (NCHW).
#[inline(never)]
fn transform_products(g: &ConvGeometry, plan: &Plan, m: &[f32], rows: &Range<usize>, tiles: usize, outputs: &mut [f32]) {
    let [height, width] = g.output;
    let cols = plan.tile_cols;
    let count = outputs.len() / g.output_len();
    let mut top = vec![0.0f32; 2 * cols];
    let mut bottom = vec![0.0f32; 2 * cols];
    for channel in 0..g.channels_out {
        for image in 0..count {
            let plane_values = &mut outputs[image * g.output_len() + channel * height * width..][..height * width];
            for (band_row, tile_row) in rows.clone().enumerate() {
                let first = (image * rows.len() + band_row) * cols;
                let at = |xi: usize| &m[(xi * g.channels_out + channel) * tiles + first..][..cols];
                let s: [&[f32]; XI] = std::array::from_fn(at);
                // Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]] on rows, then on columns.
                for j in 0..cols {
                    let p = |b: usize| s[b][j] + s[4 + b][j] + s[8 + b][j];
                    let q = |b: usize| s[4 + b][j] - s[8 + b][j] - s[12 + b][j];
                    let (p0, p1, p2, p3) = (p(0), p(1), p(2), p(3));
                    let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
                    top[2 * j] = p0 + p1 + p2;
                    top[2 * j + 1] = p1 - p2 - p3;
                    bottom[2 * j] = q0 + q1 + q2;
                    bottom[2 * j + 1] = q1 - q2 - q3;
                }
                let row = 2 * tile_row;
                plane_values[row * width..][..width].copy_from_slice(&top[..width]);
                if row + 1 < height {
                    plane_values[(row + 1) * width..][..width].copy_from_slice(&bottom[..width]);
                }
            }
        }
    }
}

/// `∂M = A ∂Y Aᵀ` of a block's output gradients (the unit's, NCHW) into
/// `dm`, `[16][C_out][tiles]`; outputs past the image's edge count as zero.
#[inline(never)]
fn transform_output_grads(g: &ConvGeometry, plan: &Plan, output_grads: &[f32], rows: &Range<usize>, tiles: usize, dm: &mut [f32]) {
    let [height, width] = g.output;
    let cols = plan.tile_cols;
    let count = output_grads.len() / g.output_len();
    let mut top = vec![0.0f32; 2 * cols];
    let mut bottom = vec![0.0f32; 2 * cols];
    for channel in 0..g.channels_out {
        for image in 0..count {
            let plane_values = &output_grads[image * g.output_len() + channel * height * width..][..height * width];
            for (band_row, tile_row) in rows.clone().enumerate() {
                let row = 2 * tile_row;
                top[..width].copy_from_slice(&plane_values[row * width..][..width]);
                if row + 1 < height {
                    bottom[..width].copy_from_slice(&plane_values[(row + 1) * width..][..width]);
                } else {
                    bottom[..width].fill(0.0);
                }
                let first = (image * rows.len() + band_row) * cols;
                let base = |xi: usize| (xi * g.channels_out + channel) * tiles + first;
                // A = [[1, 0], [1, 1], [1, −1], [0, −1]]: z_r = A·(row r of ∂Y),
                // then ∂M row a = A[a]·(z_0, z_1).
                for j in 0..cols {
                    let (y00, y01, y10, y11) = (top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]);
                    let z0 = [y00, y00 + y01, y00 - y01, -y01];
                    let z1 = [y10, y10 + y11, y10 - y11, -y11];
                    for b in 0..4 {
                        dm[base(b) + j] = z0[b];
                        dm[base(4 + b) + j] = z0[b] + z1[b];
                        dm[base(8 + b) + j] = z0[b] - z1[b];
                        dm[base(12 + b) + j] = -z1[b];
                    }
                }
            }
        }
    }
}

/// `∂d = B ∂V Bᵀ` of a block (`dv`, `[16][C_in][tiles]`), added into the
/// unit's zero-padded input gradient `[image][C_in][2·rows + 2][2·cols + 2]`.
#[inline(never)]
fn add_patch_grads(g: &ConvGeometry, plan: &Plan, dv: &[f32], rows: &Range<usize>, tiles: usize, count: usize, padded_grad: &mut [f32]) {
    let (padded_h, padded_w) = (2 * plan.tile_rows + 2, 2 * plan.tile_cols + 2);
    let cols = plan.tile_cols;
    for channel in 0..g.channels_in {
        for image in 0..count {
            let plane_values = &mut padded_grad[(image * g.channels_in + channel) * padded_h * padded_w..][..padded_h * padded_w];
            for (band_row, tile_row) in rows.clone().enumerate() {
                let first = (image * rows.len() + band_row) * cols;
                let at = |xi: usize| &dv[(xi * g.channels_in + channel) * tiles + first..][..cols];
                let s: [&[f32]; XI] = std::array::from_fn(at);
                for j in 0..cols {
                    // B = [[1, 0, 0, 0], [0, 1, −1, 1], [−1, 1, 1, 0], [0, 0, 0, −1]]
                    // on rows: r0 = v0, r1 = v1 − v2 + v3, r2 = −v0 + v1 + v2, r3 = −v3.
                    let v = |a: usize, b: usize| s[4 * a + b][j];
                    let mut r = [[0.0f32; 4]; 4];
                    for b in 0..4 {
                        r[0][b] = v(0, b);
                        r[1][b] = v(1, b) - v(2, b) + v(3, b);
                        r[2][b] = -v(0, b) + v(1, b) + v(2, b);
                        r[3][b] = -v(3, b);
                    }
                    for (k, rk) in r.iter().enumerate() {
                        let out = &mut plane_values[(2 * tile_row + k) * padded_w + 2 * j..][..4];
                        out[0] += rk[0];
                        out[1] += rk[1] - rk[2] + rk[3];
                        out[2] += -rk[0] + rk[1] + rk[2];
                        out[3] += -rk[3];
                    }
                }
            }
        }
    }
}

/// The input gradient without its padding: `[image][C_in][H][W]`.
#[inline(never)]
fn crop(g: &ConvGeometry, plan: &Plan, padded_grad: &[f32], input_grad: &mut [f32]) {
    let [height, width] = g.input;
    let (padded_h, padded_w) = (2 * plan.tile_rows + 2, 2 * plan.tile_cols + 2);
    for (plane_index, target) in input_grad.chunks_exact_mut(height * width).enumerate() {
        let source = &padded_grad[plane_index * padded_h * padded_w..][..padded_h * padded_w];
        for (row, target_row) in target.chunks_exact_mut(width).enumerate() {
            target_row.copy_from_slice(&source[(row + 1) * padded_w + 1..][..width]);
        }
    }
}

/// conv2d of `x: [N, C_in, H, W]` with `weight: [C_out, C_in, 3, 3]`, stride
/// 1, padding 1 ([`applies`]), returning `[N, C_out, H, W]`.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_with(g, x, weight, TILES_PER_BLOCK)
}

fn forward_with(g: &ConvGeometry, x: &[f32], weight: &[f32], tiles_per_block: usize) -> Vec<f32> {
    assert!(applies(g), "not a Winograd convolution: {g:?}");
    assert_eq!(x.len(), g.batch * g.input_len(), "conv2d input size");
    assert_eq!(weight.len(), g.weight_len(), "conv2d weight size");
    let threads = rayon::current_num_threads();
    let threaded = g.batch < threads;
    let plan = Plan::new(g, threads, tiles_per_block);
    let u = transform_filters(g, weight);
    let mut output = vec![0.0; g.batch * g.output_len()];
    output.par_chunks_mut(plan.unit_images * g.output_len()).zip(x.par_chunks(plan.unit_images * g.input_len())).for_each(|(outputs, images)| {
        let (mut v, mut m) = (take(XI * g.channels_in * plan.max_tiles()), take(XI * g.channels_out * plan.max_tiles()));
        let count = images.len() / g.input_len();
        for (rows, tiles) in plan.blocks(count) {
            transform_patches(g, &plan, images, &rows, tiles, &mut v);
            for xi in 0..XI {
                matmul(&mut m, plane(xi, g.channels_out, tiles), false, &u, filters(g, xi), &v, plane(xi, g.channels_in, tiles), threaded);
            }
            transform_products(g, &plan, &m, &rows, tiles, outputs);
        }
        give_back(v);
        give_back(m);
    });
    give_back(u);
    output
}

/// The gradients of [`forward`] with respect to `x` and `weight`, given the
/// output gradient (all contiguous, shapes as there).
pub(crate) fn backward(g: &ConvGeometry, x: &[f32], weight: &[f32], output_grad: &[f32], wanted: Wanted) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    backward_with(g, x, weight, output_grad, wanted, TILES_PER_BLOCK)
}

fn backward_with(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    wanted: Wanted,
    tiles_per_block: usize,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert!(applies(g), "not a Winograd convolution: {g:?}");
    assert_eq!(x.len(), g.batch * g.input_len(), "conv2d input size");
    assert_eq!(weight.len(), g.weight_len(), "conv2d weight size");
    assert_eq!(output_grad.len(), g.batch * g.output_len(), "conv2d output gradient size");
    let threads = rayon::current_num_threads();
    let threaded = g.batch < threads;
    let plan = Plan::new(g, threads, tiles_per_block);
    let units = g.batch.div_ceil(plan.unit_images);
    // Twice as many tasks as threads (a thread slowed by other work does not
    // hold up the step); each task sums its own filter gradient.
    let tasks = units.min(2 * threads).max(1);
    let task_images = units.div_ceil(tasks) * plan.unit_images;
    let u = if wanted.input { transform_filters(g, weight) } else { Vec::new() };
    let mut input_grad = if wanted.input { vec![0.0; g.batch * g.input_len()] } else { Vec::new() };
    let input_chunks: Vec<&mut [f32]> = if wanted.input {
        input_grad.chunks_mut(task_images * g.input_len()).collect()
    } else {
        (0..g.batch.div_ceil(task_images)).map(|_| &mut [][..]).collect()
    };
    let padded_plane = (2 * plan.tile_rows + 2) * (2 * plan.tile_cols + 2);

    // The tasks' filter gradients, summed in task order afterwards (the same
    // sum in every run, which exact resumption relies on).
    let filter_parts: Vec<Vec<f32>> = input_chunks
        .into_par_iter()
        .enumerate()
        .map(|(task, input_chunk)| {
            let images = task * task_images..((task + 1) * task_images).min(g.batch);
            // The filter gradient's first product overwrites (`summed` false), so
            // the buffer needs no zeroing.
            let mut du = if wanted.weight { take(XI * g.channels_out * g.channels_in) } else { Vec::new() };
            let mut summed = false;
            let mut dm = take(XI * g.channels_out * plan.max_tiles());
            let mut v = take(XI * g.channels_in * plan.max_tiles());
            let mut padded_grad = if wanted.input { take(plan.unit_images * g.channels_in * padded_plane) } else { Vec::new() };
            for first in images.clone().step_by(plan.unit_images) {
                let count = plan.unit_images.min(images.end - first);
                let grads = &output_grad[first * g.output_len()..][..count * g.output_len()];
                let inputs = &x[first * g.input_len()..][..count * g.input_len()];
                if wanted.input {
                    padded_grad[..count * g.channels_in * padded_plane].fill(0.0);
                }
                for (rows, tiles) in plan.blocks(count) {
                    transform_output_grads(g, &plan, grads, &rows, tiles, &mut dm);
                    if wanted.input {
                        // ∂V_ξ = U_ξᵀ · ∂M_ξ, in the patch buffer.
                        for xi in 0..XI {
                            let (d, l, r) = (plane(xi, g.channels_in, tiles), transposed(filters(g, xi)), plane(xi, g.channels_out, tiles));
                            matmul(&mut v, d, false, &u, l, &dm, r, threaded);
                        }
                        add_patch_grads(g, &plan, &v, &rows, tiles, count, &mut padded_grad);
                    }
                    if wanted.weight {
                        transform_patches(g, &plan, inputs, &rows, tiles, &mut v);
                        for xi in 0..XI {
                            let (d, l, r) = (filters(g, xi), plane(xi, g.channels_out, tiles), transposed(plane(xi, g.channels_in, tiles)));
                            matmul(&mut du, d, summed, &dm, l, &v, r, threaded);
                        }
                        summed = true;
                    }
                }
                if wanted.input {
                    let local = first - images.start;
                    crop(
                        g,
                        &plan,
                        &padded_grad[..count * g.channels_in * padded_plane],
                        &mut input_chunk[local * g.input_len()..][..count * g.input_len()],
                    );
                }
            }
            give_back(dm);
            give_back(v);
            give_back(padded_grad);
            du
        })
        .collect();
    give_back(u);

    let weight_grad = wanted.weight.then(|| {
        let len = XI * g.channels_out * g.channels_in;
        let mut parts = filter_parts.into_iter();
        let mut total = parts.next().expect("at least one task");
        for part in parts {
            total[..len].iter_mut().zip(&part[..len]).for_each(|(t, p)| *t += p);
        }
        let grad = filters_adjoint(g, &total);
        give_back(total);
        grad
    });
    (wanted.input.then_some(input_grad), weight_grad)
}

#[cfg(test)]
mod tests {
    use burn::tensor::ops::ConvOptions;

    use super::super::kernels;
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(2_246_822_519)) >> 9) as f32 / (1u32 << 23) as f32 - 0.5)
            .collect()
    }

    /// conv2d (3×3, stride 1, padding 1) and its two gradients for the loss
    /// `Σ conv(x, w) ⊙ r`, straight from the definition in f64.
    fn definition(g: &ConvGeometry, x: &[f32], w: &[f32], r: &[f32]) -> [Vec<f64>; 3] {
        let [h, wd] = g.input;
        let (ci_n, co_n) = (g.channels_in, g.channels_out);
        let mut out = vec![0.0f64; g.batch * g.output_len()];
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; w.len()];
        for n in 0..g.batch {
            for co in 0..co_n {
                for y in 0..h {
                    for z in 0..wd {
                        let o = ((n * co_n + co) * h + y) * wd + z;
                        for ci in 0..ci_n {
                            for kh in 0..3 {
                                for kw in 0..3 {
                                    let (a, b) = ((y + kh).wrapping_sub(1), (z + kw).wrapping_sub(1));
                                    if a < h && b < wd {
                                        let xi = ((n * ci_n + ci) * h + a) * wd + b;
                                        let wi = ((co * ci_n + ci) * 3 + kh) * 3 + kw;
                                        out[o] += x[xi] as f64 * w[wi] as f64;
                                        dx[xi] += r[o] as f64 * w[wi] as f64;
                                        dw[wi] += r[o] as f64 * x[xi] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        [out, dx, dw]
    }

    fn worst_relative(ours: &[f32], reference: &[f64]) -> f64 {
        assert_eq!(ours.len(), reference.len());
        let largest = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(largest > 0.0);
        ours.iter().zip(reference).fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs())) / largest
    }

    fn geometry(batch: usize, channels_in: usize, channels_out: usize, height: usize, width: usize) -> ConvGeometry {
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        ConvGeometry::new([batch, channels_in, height, width], [channels_out, channels_in, 3, 3], &options).expect("supported")
    }

    /// Against the f64 definition and against the direct kernels, on even and
    /// odd sizes, one image cut in bands, several images per block, and
    /// batches smaller and larger than the thread count; both gradients
    /// alone and together.
    #[test]
    fn matches_the_definition_and_the_direct_kernels() {
        let cases = [
            // (batch, C_in, C_out, H, W, tiles per block)
            (1, 16, 16, 6, 6, 512),
            (3, 16, 24, 7, 5, 512),
            (2, 20, 16, 9, 11, 4),
            (5, 16, 17, 3, 4, 8),
            (4, 32, 16, 1, 1, 512),
            (1, 16, 16, 2, 3, 1),
        ];
        for (batch, ci, co, h, w, tiles_per_block) in cases {
            let g = geometry(batch, ci, co, h, w);
            assert!(applies(&g));
            let x = values(g.batch * g.input_len(), 1);
            let weight = values(g.weight_len(), 2);
            let r = values(g.batch * g.output_len(), 3);
            let [out, dx, dw] = definition(&g, &x, &weight, &r);
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
                pool.install(|| {
                    let ours = forward_with(&g, &x, &weight, tiles_per_block);
                    let direct = kernels::forward_direct(&g, &x, &weight);
                    let (e, d) = (worst_relative(&ours, &out), worst_relative(&direct, &out));
                    assert!(e < 2e-6, "{g:?} forward: {e:e} (direct {d:e})");
                    let both = Wanted { input: true, weight: true };
                    let (gx, gw) = backward_with(&g, &x, &weight, &r, both, tiles_per_block);
                    let (gx, gw) = (gx.expect("input gradient"), gw.expect("weight gradient"));
                    let (ex, ew) = (worst_relative(&gx, &dx), worst_relative(&gw, &dw));
                    assert!(ex < 2e-6 && ew < 2e-6, "{g:?} gradients: input {ex:e}, weight {ew:e}");
                    let (alone_x, none) = backward_with(&g, &x, &weight, &r, Wanted { input: true, weight: false }, tiles_per_block);
                    assert!(none.is_none() && alone_x.as_deref() == Some(&gx[..]), "{g:?} input gradient alone");
                    let (none, alone_w) = backward_with(&g, &x, &weight, &r, Wanted { input: false, weight: true }, tiles_per_block);
                    assert!(none.is_none() && alone_w.as_deref() == Some(&gw[..]), "{g:?} weight gradient alone");
                });
            }
        }
    }

    /// The filter transform's adjoint is its transpose: `⟨G g Gᵀ, U⟩ = ⟨g, Gᵀ U G⟩`.
    #[test]
    fn filter_transform_and_adjoint_agree() {
        let g = geometry(1, 16, 16, 4, 4);
        let weight = values(g.weight_len(), 4);
        let other = values(XI * g.channels_out * g.channels_in, 5);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
        let (left, right) = (dot(&transform_filters(&g, &weight), &other), dot(&weight, &filters_adjoint(&g, &other)));
        assert!((left - right).abs() < 1e-4, "{left} vs {right}");
    }

    #[test]
    fn shapes_outside_its_reach_are_left_to_the_direct_path() {
        let stride = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        assert!(!applies(&ConvGeometry::new([1, 16, 8, 8], [16, 16, 3, 3], &stride).expect("valid")));
        let no_padding = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        assert!(!applies(&ConvGeometry::new([1, 16, 8, 8], [16, 16, 3, 3], &no_padding).expect("valid")));
        assert!(!applies(&geometry(1, 3, 64, 8, 8)), "the stem's 3 channels");
        let one_by_one = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        assert!(!applies(&ConvGeometry::new([1, 16, 8, 8], [16, 16, 1, 1], &one_by_one).expect("valid")));
    }
}
