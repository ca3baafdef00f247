//! A bounds-checked front for the `gemm` crate's strided matrix product.
//!
//! `gemm::gemm` takes raw pointers and strides; [`Mat`] describes a strided
//! matrix inside a slice, and [`matmul`] checks that every element the three
//! descriptions address lies inside their slices before the one `unsafe`
//! call. gemm picks its AVX-512 or AVX2 micro-kernels at run time.

/// A strided `rows × cols` matrix inside a slice, starting at `offset`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat {
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Mat {
    /// One past the largest index the matrix addresses (`offset` when empty).
    fn end(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return self.offset;
        }
        self.offset + (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` with `accumulate`.
///
/// `threaded` lets gemm split the product over rayon's threads; callers that
/// already run one product per thread pass `false`.
///
/// # Panics
/// When the shapes disagree or a matrix reaches outside its slice.
#[allow(clippy::too_many_arguments)] // three (slice, matrix) pairs and two switches
pub(crate) fn matmul(dst: &mut [f32], d: Mat, accumulate: bool, lhs: &[f32], l: Mat, rhs: &[f32], r: Mat, threaded: bool) {
    assert!(d.rows == l.rows && d.cols == r.cols && l.cols == r.rows, "matmul shapes: {d:?} = {l:?} · {r:?}");
    assert!(d.end() <= dst.len() && l.end() <= lhs.len() && r.end() <= rhs.len(), "matmul bounds: {d:?} = {l:?} · {r:?}");
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    if l.cols == 0 {
        if !accumulate {
            for row in 0..d.rows {
                for col in 0..d.cols {
                    dst[d.offset + row * d.row_stride + col * d.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = if threaded { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // Strides of matrices built from `usize` sizes of allocated slices fit in `isize`.
    let stride = |s: usize| s as isize;
    // SAFETY: the asserts above put every element of the three matrices inside
    // its slice (the largest index is `end() - 1`); `dst` is borrowed mutably,
    // so it overlaps neither `lhs` nor `rhs`; the strides are those the
    // bounds were checked with.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            l.cols,
            dst.as_mut_ptr().add(d.offset),
            stride(d.col_stride),
            stride(d.row_stride),
            accumulate,
            lhs.as_ptr().add(l.offset),
            stride(l.col_stride),
            stride(l.row_stride),
            rhs.as_ptr().add(r.offset),
            stride(r.col_stride),
            stride(r.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_product_and_accumulation() {
        // lhs 2×3 row-major, rhs 3×2 column-major, dst 2×2 with a gap column.
        let lhs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let rhs = [1.0, 0.0, 2.0, -1.0, 1.0, 0.5];
        let mut dst = [9.0; 6];
        let d = Mat { offset: 0, rows: 2, cols: 2, row_stride: 3, col_stride: 1 };
        let l = Mat { offset: 0, rows: 2, cols: 3, row_stride: 3, col_stride: 1 };
        let r = Mat { offset: 0, rows: 3, cols: 2, row_stride: 1, col_stride: 3 };
        matmul(&mut dst, d, false, &lhs, l, &rhs, r, false);
        assert_eq!(dst, [7.0, 2.5, 9.0, 16.0, 4.0, 9.0]);
        matmul(&mut dst, d, true, &lhs, l, &rhs, r, false);
        assert_eq!(dst, [14.0, 5.0, 9.0, 32.0, 8.0, 9.0]);
    }

    #[test]
    #[should_panic(expected = "matmul bounds")]
    fn out_of_bounds_is_refused() {
        let mut dst = [0.0; 3];
        let m = Mat { offset: 0, rows: 2, cols: 2, row_stride: 2, col_stride: 1 };
        matmul(&mut dst, m, false, &[0.0; 4], m, &[0.0; 4], m, false);
    }
}
