//! conv2d forward, input gradient and weight gradient on contiguous f32
//! NCHW slices, as per-tap matrix products on the phase grid of
//! [`ConvGeometry`].
//!
//! Per chunk of images and tap `t` (`P_t`: the chunk's phase buffer at the
//! tap's offset, `[C_in × L]`; `G`: the output on the grid, `[C_out × L]`,
//! zero in the wrapped columns for the gradients):
//!
//! - forward: `G += W_t · P_t`, then the wrapped columns are dropped;
//! - input gradient: `∂P_t += W_tᵀ · ∂G`, then the phases are gathered back
//!   into `∂x` (padding cells dropped);
//! - weight gradient: `∂W_t += ∂G · P_tᵀ`, summed over the chunks.
//!
//! Chunks are spread over rayon's threads (each task keeps its own weight
//! gradient, summed at the end); with fewer images than threads the products
//! themselves are split. Nothing of size `taps × input` is ever built.

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::matmul::{matmul, Mat};
use super::winograd;

/// Depthwise convolutions (channel `c` reads channel `c` only): the same
/// phase grid, with each tap's product reduced to a scaled row
/// (`axpy`) or a dot product per channel.
mod depthwise {
    use super::ConvGeometry;

    /// Channel `c`'s grid row and the tap's phase row, both `L` long.
    fn rows(g: &ConvGeometry, images: usize, channel: usize, tap: usize) -> (usize, usize) {
        (channel * g.span(images), g.tap_start(tap, images) + channel * images * g.phase_len())
    }

    /// `G_c = Σ_t w[c, t] · P_{t,c}`.
    pub fn forward(g: &ConvGeometry, images: usize, weight: &[f32], phased: &[f32], grid: &mut [f32]) {
        let span = g.span(images);
        for channel in 0..g.channels_out {
            for tap in 0..g.taps() {
                let (grid_row, phase_row) = rows(g, images, channel, tap);
                let w = weight[channel * g.taps() + tap];
                let (target, source) = (&mut grid[grid_row..grid_row + span], &phased[phase_row..phase_row + span]);
                if tap == 0 {
                    target.iter_mut().zip(source).for_each(|(t, s)| *t = w * s);
                } else {
                    target.iter_mut().zip(source).for_each(|(t, s)| *t += w * s);
                }
            }
        }
    }

    /// `∂P_{t,c} += w[c, t] · ∂G_c`.
    pub fn input_grad(g: &ConvGeometry, images: usize, weight: &[f32], grid: &[f32], phased: &mut [f32]) {
        let span = g.span(images);
        for channel in 0..g.channels_out {
            for tap in 0..g.taps() {
                let (grid_row, phase_row) = rows(g, images, channel, tap);
                let w = weight[channel * g.taps() + tap];
                phased[phase_row..phase_row + span].iter_mut().zip(&grid[grid_row..grid_row + span]).for_each(|(t, s)| *t += w * s);
            }
        }
    }

    /// `∂w[c, t] += ⟨∂G_c, P_{t,c}⟩`.
    pub fn weight_grad(g: &ConvGeometry, images: usize, grid: &[f32], phased: &[f32], weight_grad: &mut [f32]) {
        let span = g.span(images);
        for channel in 0..g.channels_out {
            for tap in 0..g.taps() {
                let (grid_row, phase_row) = rows(g, images, channel, tap);
                weight_grad[channel * g.taps() + tap] += dot(&grid[grid_row..grid_row + span], &phased[phase_row..phase_row + span]);
            }
        }
    }

    /// A dot product over eight partial sums, which the compiler keeps in
    /// one vector register (a single running sum cannot be reordered).
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut sums = [0.0f32; 8];
        let (a_blocks, b_blocks) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = a_blocks.remainder().iter().zip(b_blocks.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in a_blocks.zip(b_blocks) {
            for lane in 0..8 {
                sums[lane] += x[lane] * y[lane];
            }
        }
        sums.iter().sum::<f32>() + tail
    }
}

/// The tap's weights as a contiguous `[C_out × C_in]` matrix inside the
/// tap-major weights `[K_h·K_w, C_out, C_in]` ([`tap_major`]).
fn weight_tap(g: &ConvGeometry, tap: usize) -> Mat {
    Mat { offset: tap * g.channels_out * g.channels_in, rows: g.channels_out, cols: g.channels_in, row_stride: g.channels_in, col_stride: 1 }
}

/// The tap's weights transposed, `[C_in × C_out]`.
fn weight_tap_transposed(g: &ConvGeometry, tap: usize) -> Mat {
    transposed(weight_tap(g, tap))
}

/// Dense weights `[C_out, C_in, K_h, K_w]` as `[K_h·K_w, C_out, C_in]`, so
/// that every tap's matrix is contiguous: gemm reads and writes strided
/// matrices through extra copies, and the weight gradient's taps, written
/// once per chunk of images, are its largest strided operand.
fn tap_major(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let (taps, pairs) = (g.taps(), g.channels_out * g.channels_in);
    let mut out = vec![0.0; weight.len()];
    for (pair, values) in weight.chunks_exact(taps).enumerate() {
        for (tap, value) in values.iter().enumerate() {
            out[tap * pairs + pair] = *value;
        }
    }
    out
}

/// The inverse of [`tap_major`].
fn channel_major(g: &ConvGeometry, tap_major: &[f32]) -> Vec<f32> {
    let (taps, pairs) = (g.taps(), g.channels_out * g.channels_in);
    let mut out = vec![0.0; tap_major.len()];
    for (pair, values) in out.chunks_exact_mut(taps).enumerate() {
        for (tap, value) in values.iter_mut().enumerate() {
            *value = tap_major[tap * pairs + pair];
        }
    }
    out
}

/// The phase rows a tap reads, `[C_in × L]` inside the phase buffer of `images` images.
fn phase_rows(g: &ConvGeometry, tap: usize, images: usize) -> Mat {
    Mat { offset: g.tap_start(tap, images), rows: g.channels_in, cols: g.span(images), row_stride: images * g.phase_len(), col_stride: 1 }
}

/// The output grid of `images` images, `[C_out × L]`.
fn grid(g: &ConvGeometry, images: usize) -> Mat {
    Mat { offset: 0, rows: g.channels_out, cols: g.span(images), row_stride: g.span(images), col_stride: 1 }
}

fn transposed(m: Mat) -> Mat {
    Mat { offset: m.offset, rows: m.cols, cols: m.rows, row_stride: m.col_stride, col_stride: m.row_stride }
}

/// Writes the zero-padded phases of consecutive NCHW images,
/// `[phase][C_in][image][H_q·W_q]`.
fn fill_phases(g: &ConvGeometry, images: &[f32], phased: &mut [f32]) {
    let [height, width] = g.input;
    let [stride_h, stride_w] = g.stride;
    let [pad_h, pad_w] = g.padding;
    let [phase_h, phase_w] = g.phase;
    let count = images.len() / g.input_len();
    for (index, cell_block) in phased[..g.phased_len(count)].chunks_exact_mut(g.phase_len()).enumerate() {
        let (phase, channel, image) = (index / (g.channels_in * count), index / count % g.channels_in, index % count);
        let (a, b) = (phase / stride_w, phase % stride_w);
        let source = &images[image * g.input_len() + channel * height * width..][..height * width];
        for (i, row) in cell_block.chunks_exact_mut(phase_w).enumerate().take(phase_h) {
            let padded_row = i * stride_h + a;
            if padded_row < pad_h || padded_row - pad_h >= height {
                row.fill(0.0);
                continue;
            }
            let source_row = &source[(padded_row - pad_h) * width..][..width];
            if stride_w == 1 {
                row[..pad_w].fill(0.0);
                row[pad_w..pad_w + width].copy_from_slice(source_row);
                row[pad_w + width..].fill(0.0);
            } else {
                for (j, cell) in row.iter_mut().enumerate() {
                    let column = j * stride_w + b;
                    *cell = if column >= pad_w && column - pad_w < width { source_row[column - pad_w] } else { 0.0 };
                }
            }
        }
    }
}

/// The inverse of [`fill_phases`] for gradients: reads every input pixel's
/// cell back into the images (padding cells are dropped).
fn gather_phases(g: &ConvGeometry, phased: &[f32], images: &mut [f32]) {
    let [height, width] = g.input;
    let [stride_h, stride_w] = g.stride;
    let [pad_h, pad_w] = g.padding;
    let phase_w = g.phase[1];
    let count = images.len() / g.input_len();
    for (index, target) in images.chunks_exact_mut(height * width).enumerate() {
        let (image, channel) = (index / g.channels_in, index % g.channels_in);
        let cells = |phase: usize| ((phase * g.channels_in + channel) * count + image) * g.phase_len();
        for (row, target_row) in target.chunks_exact_mut(width).enumerate() {
            let padded_row = row + pad_h;
            let (a, i) = (padded_row % stride_h, padded_row / stride_h);
            if stride_w == 1 {
                let start = cells(a) + i * phase_w + pad_w;
                target_row.copy_from_slice(&phased[start..start + width]);
            } else {
                for (column, cell) in target_row.iter_mut().enumerate() {
                    let padded_column = column + pad_w;
                    let (b, j) = (padded_column % stride_w, padded_column / stride_w);
                    *cell = phased[cells(a * stride_w + b) + i * phase_w + j];
                }
            }
        }
    }
}

/// Outputs `[image][C_out, H_out, W_out]` from the grid `[C_out × L]`.
fn grid_to_output(g: &ConvGeometry, grid: &[f32], outputs: &mut [f32]) {
    let [out_h, out_w] = g.output;
    let count = outputs.len() / g.output_len();
    let span = g.span(count);
    for (index, target) in outputs.chunks_exact_mut(out_h * out_w).enumerate() {
        let (image, channel) = (index / g.channels_out, index % g.channels_out);
        for (row, target_row) in target.chunks_exact_mut(out_w).enumerate() {
            let start = channel * span + image * g.phase_len() + row * g.phase[1];
            target_row.copy_from_slice(&grid[start..start + out_w]);
        }
    }
}

/// The grid `[C_out × L]` from output gradients, zero outside the outputs.
fn output_to_grid(g: &ConvGeometry, outputs: &[f32], grid: &mut [f32]) {
    let [out_h, out_w] = g.output;
    let count = outputs.len() / g.output_len();
    let span = g.span(count);
    grid[..g.channels_out * span].fill(0.0);
    for (index, source) in outputs.chunks_exact(out_h * out_w).enumerate() {
        let (image, channel) = (index / g.channels_out, index % g.channels_out);
        for (row, source_row) in source.chunks_exact(out_w).enumerate() {
            let start = channel * span + image * g.phase_len() + row * g.phase[1];
            grid[start..start + out_w].copy_from_slice(source_row);
        }
    }
}

/// conv2d of `x: [N, C_in, H, W]` with `weight: [C_out, C_in, K_h, K_w]`
/// (both contiguous), returning `[N, C_out, H_out, W_out]`: by Winograd's
/// F(2×2, 3×3) where it applies ([`super::winograd`]), else directly.
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    if winograd::applies(g) && winograd::enabled() {
        return winograd::forward(g, x, weight);
    }
    forward_direct(g, x, weight)
}

/// [`forward`] on the phase grid, whatever the shape.
pub(crate) fn forward_direct(g: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.input_len(), "conv2d input size");
    assert_eq!(weight.len(), g.weight_len(), "conv2d weight size");
    let threads = rayon::current_num_threads();
    let threaded = g.batch < threads;
    let per_product = g.images_per_product(threads);
    let tap_weights = if g.depthwise { Vec::new() } else { tap_major(g, weight) };
    let mut output = vec![0.0; g.batch * g.output_len()];
    let scratch = || {
        (
            vec![0.0; if g.input_is_phased(per_product) { 0 } else { g.phased_len(per_product) }],
            vec![0.0; if g.output_is_grid(per_product) { 0 } else { g.channels_out * g.span(per_product) }],
        )
    };
    output.par_chunks_mut(per_product * g.output_len()).zip(x.par_chunks(per_product * g.input_len())).for_each_init(
        scratch,
        |(phased, grid_buffer), (outputs, images)| {
            let count = images.len() / g.input_len();
            let phased: &[f32] = if g.input_is_phased(count) {
                images
            } else {
                fill_phases(g, images, phased);
                &phased[..g.phased_len(count)]
            };
            let direct = g.output_is_grid(count);
            let target: &mut [f32] = if direct { outputs } else { &mut grid_buffer[..g.channels_out * g.span(count)] };
            if g.depthwise {
                depthwise::forward(g, count, weight, phased, target);
            } else {
                for tap in 0..g.taps() {
                    matmul(target, grid(g, count), tap > 0, &tap_weights, weight_tap(g, tap), phased, phase_rows(g, tap, count), threaded);
                }
            }
            if !direct {
                grid_to_output(g, grid_buffer, outputs);
            }
        },
    );
    output
}

/// Which gradients [`backward`] computes.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// The gradient of the input.
    pub input: bool,
    /// The gradient of the weight.
    pub weight: bool,
}

/// The gradients of conv2d with respect to `x` (`[N, C_in, H, W]`) and
/// `weight` (`[C_out, C_in, K_h, K_w]`), given the output gradient
/// `[N, C_out, H_out, W_out]` (all contiguous). Each chunk's grid and phases
/// are built once and serve both gradients. Winograd's where [`forward`] is.
pub fn backward(g: &ConvGeometry, x: &[f32], weight: &[f32], output_grad: &[f32], wanted: Wanted) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    if winograd::applies(g) && winograd::enabled() {
        return winograd::backward(g, x, weight, output_grad, wanted);
    }
    backward_direct(g, x, weight, output_grad, wanted)
}

/// [`backward`] on the phase grid, whatever the shape.
pub(crate) fn backward_direct(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    wanted: Wanted,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert_eq!(x.len(), g.batch * g.input_len(), "conv2d input size");
    assert_eq!(weight.len(), g.weight_len(), "conv2d weight size");
    assert_eq!(output_grad.len(), g.batch * g.output_len(), "conv2d output gradient size");
    let threads = rayon::current_num_threads();
    let threaded = g.batch < threads;
    let per_product = g.images_per_product(threads);
    let chunks = g.batch.div_ceil(per_product);
    // Twice as many tasks as threads, so a thread slowed by other work does
    // not hold up the step; each task has its own weight gradient.
    let tasks = chunks.min(2 * threads).max(1);
    let tap_weights = if g.depthwise || !wanted.input { Vec::new() } else { tap_major(g, weight) };
    let images_per_task = chunks.div_ceil(tasks) * per_product;
    let mut input_grad = if wanted.input { vec![0.0; g.batch * g.input_len()] } else { Vec::new() };
    let input_chunks: Vec<&mut [f32]> = if wanted.input {
        input_grad.chunks_mut(images_per_task * g.input_len()).collect()
    } else {
        (0..g.batch.div_ceil(images_per_task)).map(|_| &mut [][..]).collect()
    };

    let weight_parts: Vec<Vec<f32>> = input_chunks
        .into_par_iter()
        .enumerate()
        .map(|(task, input_chunk)| {
            let task_images = task * images_per_task..((task + 1) * images_per_task).min(g.batch);
            let mut weight_grad = if wanted.weight { vec![0.0; g.weight_len()] } else { Vec::new() };
            let mut phased = vec![0.0; g.phased_len(per_product)];
            let mut grid_buffer = vec![0.0; g.channels_out * g.span(per_product)];
            for first in task_images.clone().step_by(per_product) {
                let count = per_product.min(task_images.end - first);
                let grads = &output_grad[first * g.output_len()..][..count * g.output_len()];
                let output_grid: &[f32] = if g.output_is_grid(count) {
                    grads
                } else {
                    output_to_grid(g, grads, &mut grid_buffer);
                    &grid_buffer[..g.channels_out * g.span(count)]
                };
                if wanted.input {
                    let phased = &mut phased[..g.phased_len(count)];
                    phased.fill(0.0);
                    if g.depthwise {
                        depthwise::input_grad(g, count, weight, output_grid, phased);
                    } else {
                        for tap in 0..g.taps() {
                            matmul(
                                phased,
                                phase_rows(g, tap, count),
                                true,
                                &tap_weights,
                                weight_tap_transposed(g, tap),
                                output_grid,
                                grid(g, count),
                                threaded,
                            );
                        }
                    }
                    let local = first - task_images.start;
                    gather_phases(g, phased, &mut input_chunk[local * g.input_len()..][..count * g.input_len()]);
                }
                if wanted.weight {
                    let images = &x[first * g.input_len()..][..count * g.input_len()];
                    let phased_images: &[f32] = if g.input_is_phased(count) {
                        images
                    } else {
                        fill_phases(g, images, &mut phased);
                        &phased[..g.phased_len(count)]
                    };
                    if g.depthwise {
                        depthwise::weight_grad(g, count, output_grid, phased_images, &mut weight_grad);
                    } else {
                        for tap in 0..g.taps() {
                            matmul(
                                &mut weight_grad,
                                weight_tap(g, tap),
                                true,
                                output_grid,
                                grid(g, count),
                                phased_images,
                                transposed(phase_rows(g, tap, count)),
                                threaded,
                            );
                        }
                    }
                }
            }
            weight_grad
        })
        .collect();

    let weight_grad = wanted.weight.then(|| {
        let mut parts = weight_parts.into_iter();
        let mut total = parts.next().unwrap_or_else(|| vec![0.0; g.weight_len()]);
        for part in parts {
            total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
        }
        // Dense weight gradients are summed tap-major (see `tap_major`).
        if g.depthwise {
            total
        } else {
            channel_major(g, &total)
        }
    });
    (wanted.input.then_some(input_grad), weight_grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::ops::ConvOptions;

    /// conv2d straight from its definition, in f64.
    fn naive(g: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f64> {
        let [h, w] = g.input;
        let [kh, kw] = g.kernel;
        let [oh, ow] = g.output;
        let mut out = vec![0.0; g.batch * g.output_len()];
        let weight_in = if g.depthwise { 1 } else { g.channels_in };
        for n in 0..g.batch {
            for co in 0..g.channels_out {
                for r in 0..oh {
                    for c in 0..ow {
                        let mut sum = 0.0f64;
                        let channels = if g.depthwise { co..co + 1 } else { 0..g.channels_in };
                        for ci in channels {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let (y, z) = (
                                        (r * g.stride[0] + i) as isize - g.padding[0] as isize,
                                        (c * g.stride[1] + j) as isize - g.padding[1] as isize,
                                    );
                                    if y >= 0 && z >= 0 && (y as usize) < h && (z as usize) < w {
                                        sum += x[((n * g.channels_in + ci) * h + y as usize) * w + z as usize] as f64
                                            * weight[((co * weight_in + if g.depthwise { 0 } else { ci }) * kh + i) * kw + j] as f64;
                                    }
                                }
                            }
                        }
                        out[((n * g.channels_out + co) * oh + r) * ow + c] = sum;
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed.wrapping_mul(40_503)) >> 8) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    /// The forward pass against the definition, and the gradients against the
    /// adjoint identity `⟨conv(x), r⟩ = ⟨x, ∂x⟩ = ⟨w, ∂w⟩` (exact for a
    /// bilinear map), on strides 1–3, paddings 0–2, kernels 1–7 and odd
    /// sizes, dense and depthwise.
    #[test]
    fn matches_the_definition_on_small_shapes() {
        let dense = [
            (1, 1, 1, 1, 1, 1, 1, 0),
            (2, 3, 5, 5, 7, 3, 1, 1),
            (1, 2, 3, 6, 6, 3, 2, 1),
            (3, 4, 2, 7, 5, 1, 2, 0),
            (1, 3, 2, 9, 8, 4, 3, 2),
            (2, 5, 3, 1, 1, 3, 1, 1),
            (1, 2, 2, 4, 4, 2, 1, 0),
            (5, 3, 4, 6, 5, 3, 2, 1),
        ]
        .map(|shape| (shape, false));
        let depthwise = [(1, 4, 4, 5, 7, 3, 1, 1), (5, 6, 6, 6, 5, 3, 2, 1), (2, 3, 3, 7, 7, 7, 1, 0)].map(|shape| (shape, true));
        for ((batch, ci, co, h, w, k, s, p), depthwise) in dense.into_iter().chain(depthwise) {
            let (groups, weight_in) = if depthwise { (ci, 1) } else { (1, ci) };
            let options = ConvOptions::new([s, s], [p, p], [1, 1], groups);
            let g = ConvGeometry::new([batch, ci, h, w], [co, weight_in, k, k], &options).expect("supported");
            let x = values(g.batch * g.input_len(), 1);
            let weight = values(g.weight_len(), 2);
            let reference = naive(&g, &x, &weight);
            let r = values(reference.len(), 3);
            let expected: f64 = reference.iter().zip(&r).map(|(a, b)| a * *b as f64).sum();
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
            // One thread: the whole batch in one product; three: chunks of one
            // image, products split over threads for batches of one or two.
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
                pool.install(|| {
                    let out = forward(&g, &x, &weight);
                    for (a, b) in out.iter().zip(&reference) {
                        assert!((*a as f64 - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
                    }
                    let (dx, dw) = backward(&g, &x, &weight, &r, Wanted { input: true, weight: true });
                    assert!((dot(&x, &dx.unwrap()) - expected).abs() < 1e-3, "{g:?} input gradient");
                    assert!((dot(&weight, &dw.unwrap()) - expected).abs() < 1e-3, "{g:?} weight gradient");
                    let (dx, dw) = backward(&g, &x, &weight, &r, Wanted { input: false, weight: true });
                    assert!(dx.is_none() && (dot(&weight, &dw.unwrap()) - expected).abs() < 1e-3, "{g:?} weight gradient alone");
                });
            }
        }
    }
}
