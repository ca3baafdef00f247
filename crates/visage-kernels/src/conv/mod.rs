//! conv2d for the CPU backend: [`conv2d`] picks this module's kernels or
//! burn's own path per call.
//!
//! How a conv2d reaches flex without this module (burn 0.21): `Conv2d::forward`
//! → `burn::tensor::module::conv2d` → `Autodiff::conv2d` (records the op) →
//! `Flex::conv2d` (im2col + gemm, as a conv3d); backward →
//! `Flex::conv2d_x_backward` (a `conv_transpose3d`) and
//! `Flex::conv2d_weight_backward` (a conv3d over the input and the output
//! gradient with batch and channel axes swapped, materialised by a strided
//! copy). Here the forward pass is one custom autodiff operation on
//! `Autodiff<Flex>` whose backward step computes both gradients in one pass
//! (`kernels.rs`), so no permuted copy and no im2col buffer exist.

mod autodiff;
mod geometry;
mod kernels;
mod matmul;
mod winograd;

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::sync::OnceLock;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorPrimitive};

pub use geometry::ConvGeometry;
pub use kernels::{backward, forward, Wanted};
pub use winograd::with_winograd;

/// The environment variable that selects burn's own conv2d (`VISAGE_CONV=burn`).
pub const CONV_PATH_VARIABLE: &str = "VISAGE_CONV";

/// The environment variable that keeps 3×3 stride-1 convolutions on the
/// direct kernels instead of Winograd's F(2×2, 3×3) (`VISAGE_WINOGRAD=off`).
pub const WINOGRAD_VARIABLE: &str = "VISAGE_WINOGRAD";

/// Which implementation a CPU conv2d runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPath {
    /// This crate's kernels where they apply (the default).
    Kernels,
    /// burn's own conv2d everywhere (`VISAGE_CONV=burn`): the reference.
    Burn,
}

thread_local! {
    static PATH_OVERRIDE: Cell<Option<ConvPath>> = const { Cell::new(None) };
}

/// The path in force on this thread: [`with_conv_path`]'s, else the
/// environment's (read once), else [`ConvPath::Kernels`].
pub fn conv_path() -> ConvPath {
    static FROM_ENVIRONMENT: OnceLock<ConvPath> = OnceLock::new();
    PATH_OVERRIDE.with(Cell::get).unwrap_or_else(|| {
        *FROM_ENVIRONMENT.get_or_init(|| match std::env::var(CONV_PATH_VARIABLE) {
            Ok(value) if value.trim().eq_ignore_ascii_case("burn") => ConvPath::Burn,
            _ => ConvPath::Kernels,
        })
    })
}

/// Runs `work` with every conv2d called from this thread on `path` (tests
/// compare the two paths in one process this way).
pub fn with_conv_path<R>(path: ConvPath, work: impl FnOnce() -> R) -> R {
    struct Restore(Option<ConvPath>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PATH_OVERRIDE.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(PATH_OVERRIDE.with(|cell| cell.replace(Some(path))));
    work()
}

/// `burn::tensor::module::conv2d`, on this crate's kernels for f32 tensors of
/// `Autodiff<Flex>` and `Flex`, dense or depthwise, dilation 1, no bias; burn's
/// own conv2d otherwise, or when [`conv_path`] says so.
pub fn conv2d<B: Backend>(x: Tensor<B, 4>, weight: Tensor<B, 4>, bias: Option<Tensor<B, 1>>, options: ConvOptions<2>) -> Tensor<B, 4> {
    let geometry = ConvGeometry::new(x.dims(), weight.dims(), &options);
    let (Some(geometry), None, ConvPath::Kernels) = (geometry, &bias, conv_path()) else {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    };
    if x.dtype() != burn::tensor::DType::F32 || weight.dtype() != burn::tensor::DType::F32 {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    if TypeId::of::<B>() == TypeId::of::<Autodiff<Flex>>() {
        let (x, weight) = (concrete::<B, Autodiff<Flex>>(x), concrete::<B, Autodiff<Flex>>(weight));
        let output = autodiff::conv2d(x.into_primitive().tensor(), weight.into_primitive().tensor(), geometry);
        return concrete::<Autodiff<Flex>, B>(Tensor::from_primitive(TensorPrimitive::Float(output)));
    }
    if TypeId::of::<B>() == TypeId::of::<Flex>() {
        let (x, weight) = (concrete::<B, Flex>(x), concrete::<B, Flex>(weight));
        let output = autodiff::flex_forward(x.into_primitive().tensor(), weight.into_primitive().tensor(), &geometry);
        return concrete::<Flex, B>(Tensor::from_primitive(TensorPrimitive::Float(output)));
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// `tensor` as a tensor of backend `To`, which the caller has checked is `From`.
fn concrete<From: Backend, To: Backend>(tensor: Tensor<From, 4>) -> Tensor<To, 4> {
    let boxed: Box<dyn Any> = Box::new(tensor);
    *boxed.downcast::<Tensor<To, 4>>().unwrap_or_else(|_| unreachable!("the backends were compared by TypeId"))
}

#[cfg(test)]
mod tests;
