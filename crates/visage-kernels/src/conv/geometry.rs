//! The phase grid every kernel of this module works on.
//!
//! A convolution with stride `s` and padding `p` reads input pixel
//! `(o·s + k − p)` for output `o` and tap `k`. Splitting the zero-padded input
//! into its `s_h·s_w` *phases* (rows `≡ a mod s_h`, columns `≡ b mod s_w`), each
//! a `H_q × W_q` image with `H_q = ⌈(H + 2p_h)/s_h⌉`, `W_q = ⌈(W + 2p_w)/s_w⌉`,
//! turns every tap `(k_h, k_w)` into a *fixed offset* in one phase:
//! `(k_h / s_h)·W_q + k_w / s_w` in phase `(k_h mod s_h, k_w mod s_w)`.
//! Laying the output on the same grid width, output `(o_h, o_w)` at column
//! `o_h·W_q + o_w`, the whole convolution is, per image and tap, one matrix
//! product `out[C_out × L] += W_tap[C_out × C_in] · phase[C_in × L]` over
//! `L = (H_out − 1)·W_q + W_out` contiguous grid columns: no im2col, no
//! permuted copy, only the `W_q − W_out` columns per row that wrap around are
//! computed and dropped. The two gradients are the same products with the
//! operands exchanged (`kernels.rs`).

use burn::tensor::ops::ConvOptions;

/// Sizes of one conv2d (dense or depthwise, dilation 1) and its phase grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding on both sides, along height and width.
    pub padding: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
    /// Phase image height and width (`H_q`, `W_q`).
    pub phase: [usize; 2],
    /// Depthwise (groups = `C_in` = `C_out`, weight `[C, 1, K_h, K_w]`):
    /// channel `c` of the output reads channel `c` of the input only.
    pub depthwise: bool,
}

impl ConvGeometry {
    /// The geometry of `x: [N, C_in, H, W]` convolved with
    /// `weight: [C_out, C_in, K_h, K_w]`, or `None` for what the kernels do
    /// not cover (groups other than 1 or depthwise, dilation, an empty
    /// output, a kernel wider than the padded input).
    pub fn new(x: [usize; 4], weight: [usize; 4], options: &ConvOptions<2>) -> Option<Self> {
        let [batch, channels_in, height, width] = x;
        let [channels_out, weight_in, kernel_h, kernel_w] = weight;
        let depthwise = options.groups > 1 && options.groups == channels_in && channels_out == channels_in && weight_in == 1;
        if !(options.groups == 1 && weight_in == channels_in || depthwise) || options.dilation != [1, 1] {
            return None;
        }
        if [batch, channels_in, channels_out, height, width, kernel_h, kernel_w].contains(&0) || options.stride.contains(&0) {
            return None;
        }
        let padded = [height + 2 * options.padding[0], width + 2 * options.padding[1]];
        let kernel = [kernel_h, kernel_w];
        if kernel[0] > padded[0] || kernel[1] > padded[1] {
            return None;
        }
        let output = [0, 1].map(|d| (padded[d] - kernel[d]) / options.stride[d] + 1);
        let phase = [0, 1].map(|d| padded[d].div_ceil(options.stride[d]));
        Some(Self {
            batch,
            channels_in,
            channels_out,
            input: [height, width],
            kernel,
            stride: options.stride,
            padding: options.padding,
            output,
            phase,
            depthwise,
        })
    }

    /// Number of phases (`s_h·s_w`).
    pub fn phases(&self) -> usize {
        self.stride[0] * self.stride[1]
    }

    /// Elements of one channel of one phase (`H_q·W_q`).
    pub fn phase_len(&self) -> usize {
        self.phase[0] * self.phase[1]
    }

    /// Elements of the phase buffer of `images` images, laid out
    /// `[phase][C_in][image][H_q·W_q]` so that a tap's rows over all of them
    /// are one strided matrix.
    pub fn phased_len(&self, images: usize) -> usize {
        self.phases() * self.channels_in * images * self.phase_len()
    }

    /// Grid columns the output of `images` images spans: image `n`'s output
    /// `(o_h, o_w)` is column `n·H_q·W_q + o_h·W_q + o_w`.
    pub fn span(&self, images: usize) -> usize {
        (images - 1) * self.phase_len() + (self.output[0] - 1) * self.phase[1] + self.output[1]
    }

    /// Taps in the kernel (`K_h·K_w`).
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Tap `t` (row-major over the kernel): where its rows start in the
    /// phase buffer of `images` images (phase start + offset inside the phase).
    pub fn tap_start(&self, tap: usize, images: usize) -> usize {
        let (kh, kw) = (tap / self.kernel[1], tap % self.kernel[1]);
        let phase = (kh % self.stride[0]) * self.stride[1] + kw % self.stride[1];
        phase * self.channels_in * images * self.phase_len() + (kh / self.stride[0]) * self.phase[1] + kw / self.stride[1]
    }

    /// Whether the phase buffer of one image is the image itself (stride 1, no
    /// padding: a 1×1 convolution's input needs no copy).
    pub fn input_is_phased(&self, images: usize) -> bool {
        images == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// Whether the output grid of one image is its output (no wrapped columns).
    pub fn output_is_grid(&self, images: usize) -> bool {
        images == 1 && self.phase[1] == self.output[1]
    }

    /// How many images one matrix product covers: enough for about 1024 grid
    /// columns (small feature maps make thin products otherwise, and the
    /// weight gradient would read and write its `C_out × C_in` tap matrices
    /// for a handful of columns each), but no fewer chunks than `threads`.
    pub fn images_per_product(&self, threads: usize) -> usize {
        const COLUMNS: usize = 1024;
        COLUMNS.div_ceil(self.phase_len()).min(self.batch.div_ceil(threads.max(1))).max(1)
    }

    /// Input elements per image.
    pub fn input_len(&self) -> usize {
        self.channels_in * self.input[0] * self.input[1]
    }

    /// Output elements per image.
    pub fn output_len(&self) -> usize {
        self.channels_out * self.output[0] * self.output[1]
    }

    /// Weight elements.
    pub fn weight_len(&self) -> usize {
        if self.depthwise {
            self.channels_out * self.taps()
        } else {
            self.channels_out * self.channels_in * self.taps()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(stride: usize, padding: usize) -> ConvOptions<2> {
        ConvOptions::new([stride, stride], [padding, padding], [1, 1], 1)
    }

    /// Every tap's rows stay inside their phase: the last grid column a tap
    /// reads is inside the phase image, for strides 1–3, kernels 1–7,
    /// paddings 0–3 and odd and even sizes.
    #[test]
    fn taps_stay_inside_their_phase() {
        for size in 1..12 {
            for kernel in 1..8 {
                for stride in 1..4 {
                    for padding in 0..4 {
                        let Some(g) = ConvGeometry::new([1, 1, size, size + 1], [1, 1, kernel, kernel], &options(stride, padding)) else {
                            continue;
                        };
                        for tap in 0..g.taps() {
                            let start = g.tap_start(tap, 1) % g.phase_len();
                            assert!(start + g.span(1) <= g.phase_len(), "{g:?} tap {tap}");
                            let (kh, kw) = (tap / kernel, tap % kernel);
                            // the last output reads padded pixel (o·s + k), which is phase cell ((o·s + k)/s).
                            let row = ((g.output[0] - 1) * stride + kh) / stride;
                            let col = ((g.output[1] - 1) * stride + kw) / stride;
                            assert_eq!(start + g.span(1) - 1, row * g.phase[1] + col);
                            assert!(g.tap_start(tap, 3) + g.span(3) <= g.phased_len(3));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn unsupported_options_are_refused() {
        let grouped = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
        assert!(ConvGeometry::new([1, 4, 8, 8], [4, 2, 3, 3], &grouped).is_none());
        let depthwise = ConvOptions::new([1, 1], [1, 1], [1, 1], 4);
        assert!(ConvGeometry::new([1, 4, 8, 8], [4, 1, 3, 3], &depthwise).is_some_and(|g| g.depthwise));
        assert!(ConvGeometry::new([1, 4, 8, 8], [8, 1, 3, 3], &depthwise).is_none());
        let dilated = ConvOptions::new([1, 1], [1, 1], [2, 2], 1);
        assert!(ConvGeometry::new([1, 4, 8, 8], [4, 4, 3, 3], &dilated).is_none());
        assert!(ConvGeometry::new([1, 4, 1, 1], [4, 4, 3, 3], &options(1, 0)).is_none());
        assert!(ConvGeometry::new([1, 4, 1, 1], [4, 4, 3, 3], &options(1, 1)).is_some());
    }
}
